"""Interop with Debian's Postfix on loopback (issue 4, check 4):

(a) Postfix delivers to yubin's MX: a message handed to Postfix's smtpd
    for a yubin user is relayed by Postfix (transport_maps) to yubin's MX
    port and lands in the user's Maildir byte for byte, under a Received
    chain that shows both servers.
(b) yubin relays through Postfix as a smarthost: a message a yubin user
    submits for an outside domain goes over STARTTLS to Postfix ([relay]),
    and Postfix passes it to a final smtp-sink, which holds it byte for
    byte.
(c) a 10,000-message queue run: 10,000 distinct messages submitted to
    yubin for a remote domain are delivered by the queue runner to
    smtp-sink through a [transport] route; every one arrives exactly once
    and the queue folder is left empty.

Postfix runs as its own instance in a temporary folder (config_directory,
queue_directory, data_directory, log file); nothing of /etc/postfix is read
except Postfix's own meta files (postfix-files, dynamicmaps.cf). It needs
root (Postfix's master refuses anything else) and the `postfix` user and
`postdrop` group of the Debian package; otherwise the tests are skipped
with the reason shown.
"""

import os
import pwd
import grp
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from yubin_fixture import (DEMO, DEMO_PASSWORD, fast_bin, free_port,
                           insecure_context)

POSTFIX = "/usr/sbin/postfix"
POSTFIX_MASTER = "/usr/lib/postfix/sbin/master"
SINK = "/usr/sbin/smtp-sink"
POSTFIX_HOST = "postfix.test"


def postfix_unusable():
    """Why Debian's Postfix cannot run here, or ''."""
    for path in (POSTFIX, POSTFIX_MASTER, SINK):
        if not os.path.exists(path):
            return ("POSTFIX NOT INSTALLED: %s is missing (scripts/deps.sh "
                    "test installs postfix)" % path)
    if os.geteuid() != 0:
        return ("POSTFIX NEEDS ROOT: Postfix's master only runs as root "
                "(it drops to mail_owner itself); run the tests as root")
    try:
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError:
        return ("POSTFIX USER MISSING: the Debian package's `postfix` user "
                "or `postdrop` group does not exist")
    return ""


pytestmark = pytest.mark.skipif(bool(postfix_unusable()),
                                reason=postfix_unusable() or "-")


# ---- Postfix in a folder ---------------------------------------------------

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60    1 pickup
cleanup   unix  n - n -     0 cleanup
qmgr      unix  n - n 300   1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -     - trivial-rewrite
bounce    unix  - - n -     0 bounce
defer     unix  - - n -     0 bounce
trace     unix  - - n -     0 bounce
verify    unix  - - n -     1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -     - proxymap
smtp      unix  - - n -     - smtp
relay     unix  - - n -     - smtp
showq     unix  n - n -     - showq
error     unix  - - n -     - error
retry     unix  - - n -     - error
discard   unix  - - n -     - discard
anvil     unix  - - n -     1 anvil
scache    unix  - - n -     1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

# Everything that would change the bytes of a relayed message is off
# (no header rewriting, no added Message-ID/Date), so that what arrives can
# be compared byte for byte; mynetworks lets the loopback relay without
# AUTH (Postfix's SASL would need Dovecot or Cyrus).
MAIN_CF = """\
compatibility_level = 3.6
config_directory = {dir}/conf
queue_directory = {dir}/queue
data_directory = {dir}/data
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
mail_owner = postfix
setgid_group = postdrop
myhostname = {host}
mydomain = {host}
myorigin = {host}
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
local_header_rewrite_clients =
always_add_missing_headers = no
smtp_tls_security_level = may
smtp_tls_loglevel = 1
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
relayhost = {relayhost}
transport_maps = {transport_maps}
{extra}
"""


class Postfix:
    """One Postfix instance (master and its daemons) in its own folder."""

    def __init__(self, folder: Path, port, relayhost="", transports=None,
                 cert=None, key=None):
        self.dir = Path(folder)
        self.port = port
        self.proc = None
        self.dir.chmod(0o755)
        for sub in ("conf", "queue", "data"):
            (self.dir / sub).mkdir(exist_ok=True)
        shutil.chown(self.dir / "data", "postfix")
        maps = ""
        if transports:
            maps = "inline:{ %s }" % ", ".join(
                "%s=%s" % kv for kv in sorted(transports.items()))
        extra = ""
        if not relayhost:
            # Postfix's own bounces go nowhere instead of to a DNS lookup
            extra = "default_transport = discard:no DNS in this test\n"
        if cert:
            extra += ("smtpd_tls_security_level = may\n"
                     "smtpd_tls_cert_file = %s\nsmtpd_tls_key_file = %s\n"
                     % (cert, key))
        (self.dir / "conf" / "main.cf").write_text(MAIN_CF.format(
            dir=self.dir, host=POSTFIX_HOST, relayhost=relayhost,
            transport_maps=maps, extra=extra))
        (self.dir / "conf" / "master.cf").write_text(
            MASTER_CF.format(port=port))

    def postfix(self, *args, timeout=60):
        return subprocess.run([POSTFIX, "-c", str(self.dir / "conf")]
                              + list(args), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout)

    def log(self):
        try:
            return (self.dir / "maillog").read_text(errors="replace")
        except OSError:
            return ""

    def diagnostics(self):
        out = ""
        if self.proc is not None and self.proc.poll() is not None:
            out = self.proc.stdout.read().decode(errors="replace")
        return "--- postfix output:\n%s\n--- maillog (tail):\n%s" % (
            out[-3000:], self.log()[-5000:])

    def start(self):
        # `check` creates the queue's subfolders with the right owners
        # (post-install create-missing) and fails on a bad config.
        r = self.postfix("check")
        assert r.returncode == 0, "postfix check failed:\n%s\n%s" % (
            r.stdout.decode(errors="replace"), self.log())
        self.proc = subprocess.Popen(
            [POSTFIX, "-c", str(self.dir / "conf"), "start-fg"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("postfix start-fg exited with %s\n%s" % (
                    self.proc.returncode, self.diagnostics()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), 1) as s:
                    if s.recv(512).startswith(b"220"):
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("Postfix does not answer on port %d\n%s" % (
            self.port, self.diagnostics()))

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.postfix("stop")
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                # the master did not exit: end its process group
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def queue_files(self):
        """Messages still in Postfix's queue (any of its queues)."""
        found = []
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            d = self.dir / "queue" / sub
            if d.is_dir():
                found += [p for p in d.rglob("*") if p.is_file()]
        return found


@pytest.fixture
def postfixes(yubin_base):
    made = []

    def make(**kw):
        folder = Path(tempfile.mkdtemp(prefix="postfix-", dir=str(yubin_base)))
        pf = Postfix(folder, free_port(), **kw)
        made.append(pf)
        return pf.start()
    yield make
    for pf in made:
        pf.stop()


# ---- smtp-sink ---------------------------------------------------------------

class Sink:
    """smtp-sink on loopback writing one file per message under per-second
    folders (its file names carry 31 random bits, so 10,000 in one folder
    could collide)."""

    def __init__(self, folder: Path):
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o777)
        self.port = free_port()
        self.proc = subprocess.Popen(
            [SINK, "-u", "nobody", "-d", str(self.dir) + "/%H%M%S/%M.",
             "127.0.0.1:%d" % self.port, "1000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("smtp-sink does not listen")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)

    def files(self):
        return sorted(p for p in self.dir.rglob("*") if p.is_file())

    def wait_files(self, n, timeout=60, why=""):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.files()) >= n:
                time.sleep(0.3)      # the dump is written before the reply
                return self.files()
            time.sleep(0.1)
        raise AssertionError("sink has %d of %d messages\n%s" % (
            len(self.files()), n, why() if why else ""))


@pytest.fixture
def sink_dir():
    # smtp-sink drops to nobody, which must reach the folder
    base = Path(tempfile.mkdtemp(prefix="yubin-pfsink-"))
    base.chmod(0o755)
    sinks = []

    def make():
        s = Sink(base / ("sink%d" % len(sinks)))
        sinks.append(s)
        return s
    yield make
    for s in sinks:
        s.stop()
    shutil.rmtree(base, ignore_errors=True)


def split_dump(data: bytes):
    """smtp-sink's dump of one message: (X- attribute lines, the message
    lines as received, LF-separated, its own Received header removed)."""
    lines = data.split(b"\n")
    i = 0
    while i < len(lines) and lines[i].startswith(b"X-"):
        i += 1
    attrs = lines[:i]
    assert lines[i].startswith(b"Received: ") and b"smtp-sink" in b"".join(
        lines[i:i + 3]), data[:500]
    i += 1
    while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
        i += 1
    return attrs, lines[i:]


def pop_received(lines):
    """Removes the first header field (a Received) of a line list; returns
    it unfolded as bytes."""
    assert lines[0].startswith(b"Received: "), lines[:3]
    end = 1
    while end < len(lines) and lines[end][:1] in (b" ", b"\t"):
        end += 1
    field = b" ".join(l.strip() for l in lines[:end])
    del lines[:end]
    return field


def crlf_lines(data: bytes):
    assert data.endswith(b"\r\n")
    return data[:-2].split(b"\r\n")


def wait_for(what, fn, timeout=30, why=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s\n%s" % (
        what, why() if why else ""))


def queue_leftovers(srv):
    """Files of yubin's queue folder other than its lock and wake-up file."""
    d = srv.data / "queue"
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir()
                  if p.name not in (".lock", ".yubin-notify"))


def message(subject, sender, to, body):
    """A complete message (Date and Message-ID present, so neither server
    adds them), CRLF line ends."""
    head = ("Date: Sun, 22 Nov 2026 10:00:00 +0900\r\n"
            "Message-ID: <%s@interop.test>\r\n"
            "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
            % (re.sub(r"\W", "-", subject), sender, to, subject))
    return head.encode() + body


BODY = ("first line\r\n"
        ".a line that starts with a dot\r\n"
        "..two dots\r\n"
        ".\r\n"
        "trailing spaces   \r\n"
        "\tleading tab\r\n"
        "日本語の本文 (8-bit UTF-8)\r\n"
        "\r\n"
        "last line\r\n").encode()


# ---- (a) Postfix delivers to yubin's MX ------------------------------------

# 1 MB of short lines, a tenth of them starting with dots (Postfix's
# smtp client wraps lines over 998 bytes, so none is longer)
BIG_BODY = b"".join(b"%s%06d %s\r\n" % (b".." if n % 10 == 0 else b"", n,
                                          b"x" * 60) for n in range(15000))


@pytest.mark.parametrize("body", [BODY, BIG_BODY], ids=["small", "1MB"])
def test_postfix_delivers_to_yubin_mx(yubin_factory, postfixes, body):
    """Issue 4 check 4, first half: Postfix (transport_maps to yubin's MX
    port, opportunistic STARTTLS) hands a message to yubin's MX; it lands
    in the Maildir byte for byte below a Received chain of both servers
    (RFC 5321 4.4: each hop prepends its own)."""
    srv = yubin_factory()
    pf = postfixes(transports={
        "example.test": "smtp:[127.0.0.1]:%d" % srv.smtp_port})
    sent = message("via postfix", "someone@outside.test", DEMO, body)
    with smtplib.SMTP("127.0.0.1", pf.port, timeout=30) as s:
        s.ehlo("client.outside.test")
        s.sendmail("someone@outside.test", [DEMO], sent)
    files = wait_for("the message in demo's Maildir",
                     lambda: srv.message_files(DEMO), timeout=30,
                     why=lambda: pf.diagnostics() + "\n" + srv.diagnostics())
    assert len(files) == 1
    stored = files[0].read_bytes()
    lines = crlf_lines(stored)
    by_yubin = pop_received(lines)
    by_postfix = pop_received(lines)
    # what the client sent, unchanged by either server
    assert b"\r\n".join(lines) + b"\r\n" == sent
    # yubin's trace: the Postfix host over STARTTLS, one recipient
    assert re.match(rb"Received: from postfix\.test \(.*\[127\.0\.0\.1\]\) "
                    rb"\(using TLS.*\) by localhost \(yubin\) with ESMTPS id "
                    rb"\S+ for <demo@example\.test>; ", by_yubin), by_yubin
    # Postfix's trace: our client, Postfix's host and queue id
    m = re.match(rb"Received: from client\.outside\.test \(.*\[127\.0\.0\.1\]\)"
                 rb" by postfix\.test \(Postfix\) with ESMTP id (\w+) "
                 rb"for <demo@example\.test>; ", by_postfix)
    assert m, by_postfix
    queue_id = m.group(1).decode()
    # the file is in place before yubin's 250 reaches Postfix
    sent_line = wait_for("Postfix's status=sent", lambda: [
        l for l in pf.log().splitlines()
        if queue_id in l and "status=sent" in l], why=pf.diagnostics)
    log = pf.log()
    assert ("relay=127.0.0.1[127.0.0.1]:%d" % srv.smtp_port
            in sent_line[0]), log[-3000:]
    assert ("TLS connection established to 127.0.0.1[127.0.0.1]:%d"
            % srv.smtp_port) in log
    wait_for("Postfix's queue to empty", lambda: not pf.queue_files())
    # readable by a mail client too
    p = srv.pop3_stls()
    _, got, _ = p.retr(1)
    p.quit()
    assert b"\r\n".join(got) + b"\r\n" == stored


def test_postfix_to_unknown_yubin_user_bounces_in_postfix(yubin_factory,
                                                            postfixes):
    """yubin's 550 5.1.1 at RCPT reaches Postfix as a permanent failure
    (Postfix bounces; nothing is stored at yubin)."""
    srv = yubin_factory()
    pf = postfixes(transports={
        "example.test": "smtp:[127.0.0.1]:%d" % srv.smtp_port})
    with smtplib.SMTP("127.0.0.1", pf.port, timeout=30) as s:
        s.sendmail("", ["nobody@example.test"],
                   message("unknown", "x@outside.test", "nobody@example.test",
                           b"x\r\n"))
    wait_for("Postfix's bounce", lambda: "status=bounced" in pf.log(),
             why=pf.diagnostics)
    line = [l for l in pf.log().splitlines() if "status=bounced" in l][0]
    assert "to=<nobody@example.test>" in line and "dsn=5.1.1" in line, line
    assert srv.message_files(DEMO) == []


def test_postfix_pipelines_several_recipients_to_yubin(yubin_factory,
                                                        postfixes):
    """One Postfix transaction with three recipients (PIPELINING, RFC
    2920): yubin takes the two users, refuses the unknown one at RCPT; both
    copies are identical, Postfix sends the rest once and bounces one."""
    srv = yubin_factory()
    srv.add_user("alice@example.test", "alice-Passw0rd!")
    pf = postfixes(transports={
        "example.test": "smtp:[127.0.0.1]:%d" % srv.smtp_port})
    rcpts = [DEMO, "alice@example.test", "ghost@example.test"]
    sent = message("three", "someone@outside.test", DEMO, BODY)
    with smtplib.SMTP("127.0.0.1", pf.port, timeout=30) as s:
        s.sendmail("someone@outside.test", rcpts, sent)
    wait_for("three outcomes in Postfix's log", lambda: len(re.findall(
        r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*status=(?:sent|bounced)"
        % srv.smtp_port, pf.log())) == 3, why=pf.diagnostics)
    log = pf.log()
    for rcpt, status in ((DEMO, "sent"), ("alice@example.test", "sent"),
                         ("ghost@example.test", "bounced")):
        assert re.search(r"to=<%s>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, "
                         r".*status=%s" % (re.escape(rcpt), srv.smtp_port,
                                           status), log), (rcpt, log[-3000:])
    copies = [srv.message_files(a) for a in (DEMO, "alice@example.test")]
    assert [len(c) for c in copies] == [1, 1]
    data = [c[0].read_bytes() for c in copies]
    assert data[0] == data[1] and data[0].endswith(b"\r\n\r\n" + BODY)
    # several recipients: no `for` clause in yubin's trace (RFC 5321 7.2)
    first = crlf_lines(data[0])
    assert b"for <" not in pop_received(first)
    # one session from Postfix to yubin, one transaction
    assert log.count("Untrusted TLS connection established to 127.0.0.1") == 1


# ---- (b) yubin relays through Postfix --------------------------------------

@pytest.mark.parametrize("body", [BODY, BIG_BODY], ids=["small", "1MB"])
def test_yubin_relays_through_postfix_smarthost(yubin_factory, sink_dir, body):
    """Issue 4 check 4, second half: a yubin user's message for an outside
    domain goes through [relay] (STARTTLS required, Postfix's certificate
    verified) to Postfix, which relays it (mynetworks, no AUTH) to its
    relayhost, a smtp-sink; the sink holds it byte for byte below the
    Received headers of yubin and Postfix."""
    sink = sink_dir()
    pf_port = free_port()
    srv = yubin_factory({
        "relay": {"host": "127.0.0.1", "port": str(pf_port),
                  "tls": "starttls", "verify": "yes"},
        "queue": {"retry_first": "1s", "retry_max": "2s"},
    }, start=False)
    srv.edit_config("smtp_client", "ca_file", str(srv.cert))
    pf = Postfix(Path(tempfile.mkdtemp(prefix="postfix-",
                                       dir=str(srv.root.parent))),
                 pf_port, relayhost="[127.0.0.1]:%d" % sink.port,
                 cert=srv.cert, key=srv.key)
    try:
        pf.start()
        srv.start()
        sent = message("via relay", DEMO, "carol@remote.test", body)
        with smtplib.SMTP("127.0.0.1", srv.submission_port, timeout=30) as s:
            s.starttls(context=insecure_context())
            s.login(DEMO, DEMO_PASSWORD)
            s.sendmail(DEMO, ["carol@remote.test"], sent)
        files = sink.wait_files(
            1, why=lambda: pf.diagnostics() + "\n" + srv.diagnostics())
        assert len(files) == 1
        attrs, lines = split_dump(files[0].read_bytes())
        assert any(a.startswith(b"X-Mail-Args: <demo@example.test>")
                   for a in attrs), attrs
        assert any(a.startswith(b"X-Rcpt-Args: <carol@remote.test>")
                   for a in attrs), attrs
        assert any(a == b"X-Helo-Args: postfix.test" for a in attrs), attrs
        by_postfix = pop_received(lines)
        by_yubin = pop_received(lines)
        # smtp-sink writes LF line ends and a final empty line
        assert lines[-1] == b"" and lines[-2] == b""
        body = b"\r\n".join(lines[:-2]) + b"\r\n"
        assert body == sent
        assert re.match(rb"Received: from localhost \(.*\[127\.0\.0\.1\]\) "
                        rb"\(using TLS.*\) .*by postfix\.test \(Postfix\) "
                        rb"with ESMTPS id \w+ for <carol@remote\.test>; ",
                        by_postfix), by_postfix
        assert re.match(rb"Received: from \S+ \(.*\[127\.0\.0\.1\]\) "
                        rb"\(using TLS.*\) by localhost \(yubin\) with ESMTPSA "
                        rb"id \S+ for <carol@remote\.test>; ", by_yubin), by_yubin
        relayed = "relay=127.0.0.1[127.0.0.1]:%d" % sink.port
        wait_for("Postfix's status=sent", lambda: relayed in pf.log(),
                 why=pf.diagnostics)
        assert re.search(r"Anonymous TLS connection established from "
                         r"\S+\[127\.0\.0\.1\]", pf.log()), pf.log()[-3000:]
        wait_for("an empty yubin queue", lambda: not queue_leftovers(srv),
                 why=srv.diagnostics)
        assert re.search(r"smtpc domain=remote\.test host=127\.0\.0\.1 "
                         r"addr=127\.0\.0\.1 tls=yes .* reply=250",
                         srv.log_text()), srv.log_text()[-3000:]
    finally:
        pf.stop()


def test_relay_with_unverifiable_postfix_certificate_waits(yubin_factory,
                                                            sink_dir):
    """The same relay with `verify = yes` but only the system's CAs (which
    do not know Postfix's self-signed certificate): the handshake is
    refused, nothing reaches Postfix's queue or the sink, and the message
    waits in yubin's queue as a temporary failure (docs/smtp-client.md)."""
    sink = sink_dir()
    pf_port = free_port()
    srv = yubin_factory({
        "relay": {"host": "127.0.0.1", "port": str(pf_port),
                  "tls": "starttls", "verify": "yes"},
        "queue": {"retry_first": "1h", "retry_max": "2h"},
    }, start=False)
    pf = Postfix(Path(tempfile.mkdtemp(prefix="postfix-",
                                       dir=str(srv.root.parent))),
                 pf_port, relayhost="[127.0.0.1]:%d" % sink.port,
                 cert=srv.cert, key=srv.key)
    try:
        pf.start()
        srv.start()
        with smtplib.SMTP("127.0.0.1", srv.submission_port, timeout=30) as s:
            s.starttls(context=insecure_context())
            s.login(DEMO, DEMO_PASSWORD)
            s.sendmail(DEMO, ["carol@remote.test"],
                       message("unverified", DEMO, "carol@remote.test", BODY))
        listing = wait_for("a failed attempt", lambda: (
            lambda out: "attempts=1" in out and out)(
                srv.run("queue", "list").stdout.decode()),
            why=srv.diagnostics)
        assert "pending" in listing and "<carol@remote.test>" in listing
        assert pf.queue_files() == [] and sink.files() == []
        assert "client=" not in pf.log()     # no mail transaction at Postfix
        assert re.search(r"event=deferred rcpt=carol@remote\.test .*reply=\""
                         r"TLS handshake failed \(certificate verify failed\)",
                         srv.log_text()), srv.log_text()[-3000:]
    finally:
        pf.stop()


# ---- (c) 10,000 messages through the queue ---------------------------------

RUN_COUNT = int(os.environ.get("YUBIN_PF_QUEUE_RUN", "10000"))
SUBMITTERS = 4


def submit_many(srv, first, count, errors):
    """Submits count messages (tokens first..first+count-1) over one
    authenticated submission session."""
    try:
        with smtplib.SMTP("127.0.0.1", srv.submission_port, timeout=60) as s:
            s.starttls(context=insecure_context())
            s.login(DEMO, DEMO_PASSWORD)
            for n in range(first, first + count):
                token = "run-token-%05d" % n
                s.sendmail(DEMO, ["r%d@remote.test" % (n % 50)],
                           message(token, DEMO, "r@remote.test",
                                   b"message %s\r\n" % token.encode()))
    except Exception as e:    # reported by the test, not lost in a thread
        errors.append("%s: %r" % (first, e))


@pytest.mark.slow
def test_queue_run_of_10000_messages_to_smtp_sink(yubin_factory, sink_dir):
    """Issue 4 check 4, third part: 10,000 messages submitted for a remote
    domain, delivered by the queue runner over a [transport] route to
    smtp-sink: each arrives exactly once, and the queue ends empty."""
    sink = sink_dir()
    srv = yubin_factory({
        "transport": {"routes": "remote.test=[127.0.0.1]:%d" % sink.port},
        "smtp": {"max_messages": "100000"},
        "queue": {"retry_first": "1s", "retry_max": "2s"},
        "log": {"level": "warn"},
    }, binary=fast_bin())
    start = time.monotonic()
    errors = []
    per = RUN_COUNT // SUBMITTERS
    threads = [threading.Thread(target=submit_many,
                                args=(srv, i * per,
                                      per if i < SUBMITTERS - 1
                                      else RUN_COUNT - i * per, errors))
               for i in range(SUBMITTERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    submitted = time.monotonic() - start
    assert not errors, errors
    sink.wait_files(RUN_COUNT, timeout=600,
                    why=lambda: "queue: %d files\n%s" % (
                        len(queue_leftovers(srv)), srv.diagnostics()))
    wait_for("an empty yubin queue", lambda: not queue_leftovers(srv),
             timeout=60, why=lambda: str(queue_leftovers(srv)[:10]))
    total = time.monotonic() - start
    seen = {}
    for path in sink.files():
        for token in re.findall(rb"Subject: (run-token-\d+)\n",
                                path.read_bytes()):
            seen[token] = seen.get(token, 0) + 1
    want = {b"run-token-%05d" % n for n in range(RUN_COUNT)}
    lost = sorted(want - set(seen))
    dup = sorted(t for t, c in seen.items() if c > 1)
    assert not lost, "%d lost, e.g. %s" % (len(lost), lost[:5])
    assert not dup, "%d duplicated, e.g. %s" % (len(dup), dup[:5])
    assert set(seen) == want and len(sink.files()) == RUN_COUNT
    assert not queue_leftovers(srv)
    print("\n%d messages: submitted in %.1fs, all delivered after %.1fs"
          % (RUN_COUNT, submitted, total))
