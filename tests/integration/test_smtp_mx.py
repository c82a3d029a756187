"""Two yubin instances and a real DNS server (issue 4, check 3): mail from
alice@a.test to bob@b.test goes by MX lookup (RFC 5321 5.1) over STARTTLS
(RFC 3207); while b.test is down it waits in a.test's queue and is
delivered after b.test is back and the queue is flushed; a permanent 550
from b.test and a null MX (RFC 7505) come back to alice as RFC 3464
reports in her INBOX.

DNS is a real `unbound` (non-daemon, temp config, free loopback port) that
serves the MX and A records; both servers' `[dns] servers` point at it.
MX hosts are on port 25 in real life; the test servers listen on free
ports, so a.test's `[transport] routes` says `b.test=b.test:PORT`, which
the client documents as "look up b.test's MX records, use PORT"
(docs/smtp-client.md): the MX lookup still decides where mail goes.
"""

import email
import email.policy
import imaplib
import os
import random
import re
import shutil
import smtplib
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from yubin_fixture import free_port, insecure_context

UNBOUND = "/usr/sbin/unbound"

pytestmark = pytest.mark.skipif(not os.path.exists(UNBOUND),
                                reason="unbound is not installed")

ALICE, ALICE_PW = "alice@a.test", "alice-Passw0rd!"
BOB, BOB_PW = "bob@b.test", "bob-Passw0rd!"

RECORDS = """\
  local-zone: "test." static
  local-data: "a.test. MX 10 mx.a.test."
  local-data: "mx.a.test. A 127.0.0.1"
  local-data: "b.test. MX 10 mx.b.test."
  local-data: "mx.b.test. A 127.0.0.1"
  local-data: "c.test. MX 0 ."
  local-data: "c.test. A 127.0.0.1"
"""


# ---- a real unbound ----------------------------------------------------------

def dns_query(port, name, qtype=15, timeout=0.5):
    """(rcode, answer count) of one UDP query to 127.0.0.1:port."""
    qid = random.randrange(65536)
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        packet += bytes([len(label)]) + label.encode()
    packet += b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, ("127.0.0.1", port))
        reply = s.recv(4096)
    rid, flags, _, ancount = struct.unpack(">HHHH", reply[:8])
    assert rid == qid
    return flags & 0xF, ancount


@pytest.fixture(scope="module")
def unbound():
    folder = Path(tempfile.mkdtemp(prefix="yubin-unbound-"))
    port = free_port()
    conf = folder / "unbound.conf"
    conf.write_text(
        "server:\n  interface: 127.0.0.1\n  port: %d\n  do-daemonize: no\n"
        "  chroot: \"\"\n  username: \"\"\n  pidfile: \"\"\n"
        "  directory: \"%s\"\n  use-syslog: no\n  do-ip6: no\n"
        "  num-threads: 1\n  module-config: \"iterator\"\n"
        "  access-control: 127.0.0.0/8 allow\n%s"
        "remote-control:\n  control-enable: no\n" % (port, folder, RECORDS))
    log = open(folder / "unbound.log", "wb")
    proc = subprocess.Popen([UNBOUND, "-d", "-c", str(conf)],
                            stdout=log, stderr=log)
    log.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            if dns_query(port, "b.test") == (0, 1):
                break
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, (
            "unbound does not answer:\n" +
            (folder / "unbound.log").read_text(errors="replace"))
        time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(5)
    shutil.rmtree(folder, ignore_errors=True)


# ---- two yubin instances -----------------------------------------------------

def make_site(factory, domain, dns_port):
    srv = factory({
        "server": {"hostname": "mx." + domain},
        "dns": {"servers": "127.0.0.1:%d" % dns_port, "timeout": "500ms",
                "tries": "2"},
        # a retry never comes by itself during the test: only the first
        # attempt and `yubin queue flush` deliver
        "queue": {"retry_first": "1h", "retry_max": "2h"},
    }, start=False)
    r = srv.run("domain", "add", domain)
    assert r.returncode == 0, r.stderr
    return srv


@pytest.fixture(scope="module")
def sites(yubin_module_factory, unbound):
    a = make_site(yubin_module_factory, "a.test", unbound)
    b = make_site(yubin_module_factory, "b.test", unbound)
    a.add_user(ALICE, ALICE_PW)
    b.add_user(BOB, BOB_PW)
    a.edit_config("transport", "routes", "b.test=b.test:%d" % b.smtp_port)
    b.edit_config("transport", "routes", "a.test=a.test:%d" % a.smtp_port)
    a.start()
    b.start()
    return a, b


@pytest.fixture
def ab(sites):
    """Both sites running (a test that stopped b may have failed)."""
    a, b = sites
    for srv in sites:
        if srv.proc is None or srv.proc.poll() is not None:
            srv.start()
    return a, b


# ---- helpers -----------------------------------------------------------------

def message(subject, to=BOB):
    """A message as alice's client sends it: 8-bit UTF-8 text, lines that
    need dot-stuffing on both hops, its own Date and Message-ID (so that
    submission adds nothing)."""
    body = ("こんにちは、ボブさん。\r\n"
            ".a line with a leading dot\r\n"
            "..two dots\r\n"
            ".\r\n"
            + "".join("line %04d of the body, long enough to fill a block\r\n" % i
                      for i in range(2000))
            + "end\r\n").encode()
    head = ("From: Alice <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Date: Sun, 22 Nov 2026 10:00:00 +0900\r\n"
            "Message-ID: <%s@a.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
            % (ALICE, to, subject, subject.replace(" ", "-"))).encode()
    return head, body


def submit(a, to, head, body):
    """alice submits over 587-style submission: STARTTLS, AUTH, 8BITMIME."""
    with smtplib.SMTP("127.0.0.1", a.submission_port, timeout=10) as s:
        s.starttls(context=insecure_context())
        s.login(ALICE, ALICE_PW)
        refused = s.sendmail(ALICE, [to], head + body,
                             mail_options=["BODY=8BITMIME"])
        assert refused == {}


def imap_inbox(srv, user, password):
    """Every INBOX message of user, as IMAP returns it (BODY.PEEK[])."""
    m = imaplib.IMAP4("127.0.0.1", srv.imap_port, timeout=10)
    try:
        m.starttls(insecure_context())
        m.login(user, password)
        typ, _ = m.select("INBOX", readonly=True)
        assert typ == "OK"
        typ, data = m.search(None, "ALL")
        out = []
        for num in data[0].split():
            typ, d = m.fetch(num, "(BODY.PEEK[])")
            assert typ == "OK"
            out.append(d[0][1])
        return out
    finally:
        m.logout()


def wait_for(what, fn, srv, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s\n%s" % (what, srv.diagnostics()))


def wait_message(srv, addr, password, needle):
    """The INBOX message of addr (read over IMAP) that contains needle,
    once its file is in the Maildir."""
    wait_for("%r for %s" % (needle, addr),
             lambda: any(needle in p.read_bytes() for p in srv.message_files(addr)),
             srv)
    found = [m for m in imap_inbox(srv, addr, password) if needle in m]
    assert len(found) == 1, "%d messages with %r" % (len(found), needle)
    return found[0]


def queue_ids(srv):
    d = srv.data / "queue"
    return sorted(p.name[:-4] for p in d.iterdir() if p.name.endswith(".env")) \
        if d.is_dir() else []


def queue_list(srv):
    r = srv.run("queue", "list")
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def headers_and_body(raw: bytes):
    head, _, body = raw.partition(b"\r\n\r\n")
    return head, body


def received_headers(raw: bytes):
    """The Received fields of raw, unfolded, top first."""
    head, _ = headers_and_body(raw)
    unfolded = re.sub(rb"\r\n[ \t]+", b" ", head)
    return [line for line in unfolded.split(b"\r\n") if line.startswith(b"Received:")]


def bounce_for(a, rcpt):
    """alice's RFC 3464 report about rcpt: (message, per-recipient fields)."""
    needle = ("Final-Recipient: rfc822; %s" % rcpt).encode()
    raw = wait_message(a, ALICE, ALICE_PW, needle)
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert m.get_content_type() == "multipart/report", raw[:600]
    assert m.get_param("report-type") == "delivery-status"
    assert m["Auto-Submitted"] == "auto-replied"
    parts = m.get_payload()
    assert [p.get_content_type() for p in parts[:2]] == [
        "text/plain", "message/delivery-status"]
    per_msg, per_rcpt = parts[1].get_payload()[:2]
    assert per_msg["Reporting-MTA"] == "dns; mx.a.test"
    assert per_msg["Arrival-Date"]
    assert per_rcpt["Final-Recipient"] == "rfc822; " + rcpt
    assert per_rcpt["Action"] == "failed"
    return m, per_rcpt


# ---- 1. MX lookup, STARTTLS, byte-identical delivery ---------------------------

def test_mx_delivery_over_starttls(ab):
    a, b = ab
    head, body = message("mx over tls")
    submit(a, BOB, head, body)
    raw = wait_message(b, BOB, BOB_PW, b"Subject: mx over tls")

    # The message as alice sent it, untouched, under the two trace fields.
    assert raw.endswith(head + body)
    assert headers_and_body(raw)[1] == body
    received = received_headers(raw)
    assert len(received) == 2, received
    # b's: from a's EHLO name, over TLS, ESMTPS (RFC 3848)
    assert received[0].startswith(b"Received: from mx.a.test ([127.0.0.1])"), received[0]
    assert b"(using TLSv1." in received[0] and b"with cipher" in received[0]
    assert b"by mx.b.test (yubin) with ESMTPS id" in received[0]
    assert b"for <bob@b.test>;" in received[0]
    # a's: submission over STARTTLS with AUTH (ESMTPSA)
    assert b"by mx.a.test (yubin) with ESMTPSA id" in received[1]

    # a found b.test's MX through unbound and used TLS
    wait_for("a's delivery log line", lambda: re.search(
        r"smtpc domain=b\.test host=mx\.b\.test addr=127\.0\.0\.1 "
        r"tls=yes size=\d+ accepted=1 reply=250", a.log_text()), a)
    assert re.search(r"event=delivered rcpt=bob@b\.test relay=mx\.b\.test", a.log_text())
    wait_for("a's empty queue", lambda: queue_ids(a) == [], a)


# ---- 2. b.test down: the message waits, flush delivers it ---------------------

def test_peer_down_message_waits_then_flush_delivers(ab):
    a, b = ab
    assert b.stop() == 0
    head, body = message("while b was down")
    submit(a, BOB, head, body)

    out = wait_for("a failed attempt in `queue list`",
                   lambda: "attempts=1" in queue_list(a) and queue_list(a), a)
    (qid,) = queue_ids(a)
    assert qid in out and "<alice@a.test>" in out
    lines = out.splitlines()
    rcpt = next(i for i, l in enumerate(lines) if "<bob@b.test>" in l)
    assert lines[rcpt].split()[0] == "pending", out
    # the temporary reason is listed under the recipient
    assert "Connection refused" in lines[rcpt + 1], out
    log = a.log_text()
    assert re.search(r'smtpc domain=b\.test host=mx\.b\.test addr=127\.0\.0\.1 '
                     r'error="connection error: Connection refused"', log)
    assert re.search(r"event=deferred rcpt=bob@b\.test \S+ status=4\.4\.1 attempts=1", log)

    b.start()
    time.sleep(1.5)           # the retry is an hour away: nothing moves
    assert queue_ids(a) == [qid]
    assert not any(b"while b was down" in p.read_bytes()
                   for p in b.message_files(BOB))

    r = a.run("queue", "flush")
    assert r.returncode == 0, r.stderr
    raw = wait_message(b, BOB, BOB_PW, b"Subject: while b was down")
    assert raw.endswith(head + body)
    wait_for("a's empty queue", lambda: queue_ids(a) == [], a)


# ---- 3. 550 5.1.1 at RCPT: an RFC 3464 bounce ---------------------------------

def test_unknown_user_at_b_bounces_to_alice(ab):
    a, b = ab
    head, body = message("to nobody at b", to="nobody@b.test")
    submit(a, "nobody@b.test", head, body)
    m, rcpt = bounce_for(a, "nobody@b.test")
    assert rcpt["Status"] == "5.1.1"
    assert rcpt["Remote-MTA"] == "dns; mx.b.test"
    assert re.match(r"smtp; 550 5\.1\.1 ", rcpt["Diagnostic-Code"]), rcpt["Diagnostic-Code"]
    assert "nobody@b.test" in m.get_payload()[0].get_payload(decode=True).decode()
    # the original comes back (RET default: the whole message)
    original = m.get_payload()[2]
    assert original.get_content_type() == "message/rfc822"
    assert b"Subject: to nobody at b" in original.as_bytes()
    # b refused it at RCPT: nothing was stored there
    assert re.search(r'event=rcpt_refused rcpt="nobody@b\.test" reply="550"', b.log_text())
    assert not any(b"to nobody at b" in p.read_bytes() for p in b.message_files(BOB))
    wait_for("a's empty queue", lambda: queue_ids(a) == [], a)


# ---- 4. null MX: an immediate bounce, no retry --------------------------------

def test_null_mx_bounces_at_once_with_5_1_10(ab):
    a, _ = ab
    start = time.monotonic()
    head, body = message("to a null mx", to="carol@c.test")
    submit(a, "carol@c.test", head, body)
    _, rcpt = bounce_for(a, "carol@c.test")
    assert time.monotonic() - start < 15
    assert rcpt["Status"] == "5.1.10"
    assert "Remote-MTA" not in rcpt     # no server was ever asked
    wait_for("a's empty queue", lambda: queue_ids(a) == [], a)
    log = a.log_text()
    assert re.search(r"event=bounced rcpt=carol@c\.test .*status=5\.1\.10", log), log[-3000:]
    assert not re.search(r"event=deferred rcpt=carol@c\.test", log)
    # c.test's A record was not used as an implicit MX
    assert not re.search(r"smtpc domain=c\.test host=\S+ addr=", log)
