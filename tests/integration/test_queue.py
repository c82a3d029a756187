"""The outbound queue, its runner process and `yubin send` / `yubin queue`
(issue 4, "Queue" and "CLI"): messages handed in by `yubin send` reach a
local Maildir or a remote SMTP server (Postfix's smtp-sink, reached through
a [transport] route) byte for byte; temporary failures wait and retry; a
permanent 5xx bounces to the sender as an RFC 3464 report; restarts and a
SIGKILL of the runner lose nothing.
"""

import email
import email.policy
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from yubin_fixture import DEMO, free_port

SINK = "/usr/sbin/smtp-sink"
FAST_RETRY = {"queue": {"retry_first": "1s", "retry_max": "2s"}}

pytestmark = pytest.mark.skipif(not os.path.exists(SINK),
                                reason="smtp-sink (postfix) is not installed")


class Sink:
    """A real smtp-sink on loopback that dumps each message to a file."""

    def __init__(self, folder: Path, port=None, options=()):
        self.dir = folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o777)
        self.port = port or free_port()
        self.options = list(options)
        self.proc = None

    def start(self):
        cmd = [SINK]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        cmd += self.options + ["-d", str(self.dir) + "/%M.",
                               "127.0.0.1:%d" % self.port, "100"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("smtp-sink does not listen")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.proc = None

    def files(self):
        return sorted(p for p in self.dir.iterdir() if p.is_file())

    def messages(self):
        """Each dumped message as the bytes the client sent (CRLF), without
        smtp-sink's own X- and Received: lines and its trailing empty line."""
        out = []
        for path in self.files():
            lines = path.read_bytes().split(b"\n")
            i = 0
            while i < len(lines) and lines[i].startswith(b"X-"):
                i += 1
            if i < len(lines) and lines[i].startswith(b"Received: "):
                i += 1
                while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
                    i += 1
            body = lines[i:]
            if body and body[-1] == b"":
                body = body[:-1]
            if body and body[-1] == b"":
                body = body[:-1]
            out.append(b"\r\n".join(body) + b"\r\n")
        return out

    def wait_count(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.files()) >= n:
                time.sleep(0.2)   # the dump is written before the reply
                return self.messages()
            time.sleep(0.05)
        raise AssertionError("sink has %d of %d messages" % (len(self.files()), n))


@pytest.fixture
def sinks():
    # smtp-sink drops to nobody, which must reach the dump folder: not
    # under pytest's private tmp_path.
    base = Path(tempfile.mkdtemp(prefix="yubin-sink-"))
    base.chmod(0o755)
    made = []

    def make(options=(), port=None, start=True):
        s = Sink(base / ("sink%d" % len(made)), port=port, options=options)
        made.append(s)
        return s.start() if start else s
    yield make
    for s in made:
        s.stop()
    shutil.rmtree(base, ignore_errors=True)


def route(srv, domain, port):
    srv.edit_config("transport", "routes", "%s=[127.0.0.1]:%d" % (domain, port))


def send(srv, message: bytes, *args):
    r = srv.run("send", *args, input=message)
    assert r.returncode == 0, "send failed (%d): %s" % (
        r.returncode, r.stderr.decode(errors="replace"))
    m = re.search(rb"queued as ([0-9a-f-]+)", r.stdout)
    assert m, r.stdout
    return m.group(1).decode()


def queue_ids(srv):
    d = srv.data / "queue"
    if not d.is_dir():
        return []
    return sorted(p.name[:-4] for p in d.iterdir() if p.name.endswith(".env"))


def wait_for(what, fn, timeout=20, srv=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s\n%s" % (
        what, srv.diagnostics() if srv else ""))


def wait_inbox(srv, addr, count, timeout=20):
    return wait_for("%d message(s) for %s" % (count, addr),
                    lambda: len(srv.message_files(addr)) >= count
                    and srv.message_files(addr), timeout, srv)


def message(subject, extra=b""):
    return (b"Date: Sun, 22 Nov 2026 10:00:00 +0900\n"
            b"Message-ID: <%s@example.test>\n"
            b"From: demo@example.test\n"
            b"To: someone\n"
            b"Subject: %s\n" % (subject.encode(), subject.encode())
            + extra + b"\nbody of " + subject.encode()
            + b"\n.a line with a leading dot\n..two dots\n.\nend\n")


def crlf(data: bytes) -> bytes:
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


# ---- local delivery --------------------------------------------------------

def test_send_to_local_user_lands_in_maildir(yubin):
    """`yubin send` to a hosted account: the runner delivers it through
    deliver (not over SMTP to itself), byte for byte with CRLF line ends."""
    msg = message("local one")
    send(yubin, msg, "-f", DEMO, DEMO)
    files = wait_inbox(yubin, DEMO, 1)
    assert files[0].read_bytes() == crlf(msg)
    wait_for("an empty queue", lambda: queue_ids(yubin) == [], srv=yubin)
    assert "relay=local" in yubin.log_text()


def test_send_t_takes_to_cc_bcc_and_removes_bcc(yubin):
    for u in ("ann", "ben", "cat"):
        yubin.add_user("%s@example.test" % u, "pw-%s-secret1" % u)
    msg = (b"From: demo@example.test\nTo: Ann <ann@example.test>\n"
           b"Cc: ben@example.test\nBcc: cat@example.test,\n  demo@example.test\n"
           b"Subject: t\n\nhello\n")
    send(yubin, msg, "-t", "-f", DEMO)
    for u in ("ann", "ben", "cat", "demo"):
        files = wait_inbox(yubin, "%s@example.test" % u, 1)
        data = files[0].read_bytes()
        assert b"Bcc" not in data and b"cat@example.test" not in data, data
        assert b"Subject: t\r\n" in data and b"Date: " in data and b"Message-ID: " in data


def test_send_refuses_bad_input(yubin):
    assert yubin.run("send", DEMO, input=b"").returncode == 65
    assert yubin.run("send", "not-an-address", input=b"x\n").returncode == 65
    assert yubin.run("send", input=b"Subject: x\n\nno rcpt\n").returncode == 64
    assert yubin.run("send", "-f", input=b"x\n").returncode == 64
    assert queue_ids(yubin) == []


def test_unknown_local_user_bounces_to_sender(yubin):
    send(yubin, message("to nobody"), "-f", DEMO, "nobody@example.test")
    files = wait_inbox(yubin, DEMO, 1)
    check_bounce(files[0].read_bytes(), "nobody@example.test", "5.1.1")
    wait_for("an empty queue", lambda: queue_ids(yubin) == [], srv=yubin)


def test_null_sender_never_bounces(yubin):
    send(yubin, message("null"), "-f", "", "nobody@example.test")
    wait_for("the failure", lambda: "event=bounced" in yubin.log_text(), srv=yubin)
    wait_for("an empty queue", lambda: queue_ids(yubin) == [], srv=yubin)
    time.sleep(0.5)
    assert yubin.message_files(DEMO) == []
    assert "event=dsn " not in yubin.log_text()


# ---- remote delivery -------------------------------------------------------

def check_bounce(data: bytes, rcpt, status, remote=None):
    """An RFC 3464 report (RFC 6522 multipart/report) as a mail reader
    sees it."""
    m = email.message_from_bytes(data, policy=email.policy.compat32)
    assert m.get_content_type() == "multipart/report", data[:500]
    assert m.get_param("report-type") == "delivery-status"
    parts = m.get_payload()
    assert parts[0].get_content_type() == "text/plain"
    assert parts[1].get_content_type() == "message/delivery-status"
    assert parts[2].get_content_type() in ("message/rfc822", "text/rfc822-headers")
    blocks = parts[1].get_payload()     # per-message, then per-recipient
    per_msg = blocks[0]
    assert per_msg["Reporting-MTA"].startswith("dns; ")
    assert per_msg["Arrival-Date"]
    per_rcpt = blocks[1]
    assert per_rcpt["Final-Recipient"] == "rfc822; " + rcpt
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == status
    # RFC 3464 2.3.6: type "smtp" only for text in the form of an SMTP reply
    diag_type, _, diag_text = per_rcpt["Diagnostic-Code"].partition("; ")
    assert diag_type == ("smtp" if re.match(r"[2-5]\d\d[ -]", diag_text) else "X-Yubin")
    if remote:
        assert per_rcpt["Remote-MTA"] == "dns; " + remote
    return m


@pytest.mark.yubin_config(FAST_RETRY)
def test_remote_delivery_is_byte_identical(yubin, sinks):
    sink = sinks()
    route(yubin, "remote.test", sink.port)
    yubin.restart()
    msg = message("remote one")
    send(yubin, msg, "-f", DEMO, "carol@remote.test", "dave@remote.test")
    got = sink.wait_count(1)
    assert got == [crlf(msg)]
    dump = sink.files()[0].read_text()
    assert "X-Mail-Args: <demo@example.test>" in dump
    # one transaction for both recipients of the domain
    assert "X-Rcpt-Args: <carol@remote.test>\n" in dump
    assert "X-Rcpt-Args: <dave@remote.test>\n" in dump
    wait_for("an empty queue", lambda: queue_ids(yubin) == [], srv=yubin)


@pytest.mark.yubin_config(FAST_RETRY)
def test_mixed_local_and_remote_recipients(yubin, sinks):
    sink = sinks()
    route(yubin, "remote.test", sink.port)
    yubin.restart()
    msg = message("mixed")
    send(yubin, msg, "-f", DEMO, DEMO, "carol@remote.test")
    assert sink.wait_count(1) == [crlf(msg)]
    assert wait_inbox(yubin, DEMO, 1)[0].read_bytes() == crlf(msg)
    wait_for("an empty queue", lambda: queue_ids(yubin) == [], srv=yubin)


@pytest.mark.yubin_config(FAST_RETRY)
def test_5xx_bounces_to_sender_inbox(yubin, sinks):
    sink = sinks(options=["-f", "RCPT", "-B",
                          "550 5.1.1 <carol@remote.test>: User unknown"])
    route(yubin, "remote.test", sink.port)
    yubin.restart()
    send(yubin, message("to be bounced"), "-f", DEMO, "carol@remote.test")
    files = wait_inbox(yubin, DEMO, 1)
    m = check_bounce(files[0].read_bytes(), "carol@remote.test", "5.1.1",
                     remote="127.0.0.1")
    assert "User unknown" in m.get_payload()[1].get_payload()[1]["Diagnostic-Code"]
    returned = m.get_payload()[2].as_bytes()
    assert b"body of to be bounced" in returned
    # smtp-sink opens its dump at MAIL; no message data reached it
    assert all(b"body of" not in f.read_bytes() for f in sink.files())
    wait_for("an empty queue", lambda: queue_ids(yubin) == [], srv=yubin)


# ---- the queue CLI ---------------------------------------------------------

def queue_cmd(srv, *args, rc=0):
    r = srv.run("queue", *args)
    assert r.returncode == rc, "queue %s: %d %s%s" % (
        args, r.returncode, r.stdout.decode(errors="replace"),
        r.stderr.decode(errors="replace"))
    return r.stdout.decode()


@pytest.mark.yubin_config({"queue": {"retry_first": "1h", "retry_max": "2h"}})
def test_queue_list_show_hold_release_delete_flush(yubin, sinks):
    down = free_port()                      # nothing listens: connection refused
    route(yubin, "remote.test", down)
    yubin.restart()
    qid = send(yubin, message("waiting"), "-f", DEMO, "carol@remote.test")
    wait_for("a failed attempt",
             lambda: "attempts=1" in queue_cmd(yubin, "list"), srv=yubin)
    out = queue_cmd(yubin, "list")
    assert qid in out and "pending" in out and "<carol@remote.test>" in out
    assert "1 message in the queue" in out
    show = queue_cmd(yubin, "show", qid)
    assert "Subject: waiting" in show and "origin: send uid=" in show
    queue_cmd(yubin, "show", "0000000000aaaa-00000000", rc=66)
    queue_cmd(yubin, "show", "../../etc/passwd", rc=64)
    queue_cmd(yubin, "frobnicate", rc=64)

    assert "1 recipient held" in queue_cmd(yubin, "hold", qid)
    assert "held" in queue_cmd(yubin, "list")
    # a flush does not touch held recipients; a held message waits
    sink = sinks(port=down)
    queue_cmd(yubin, "flush")
    time.sleep(1.5)
    assert sink.files() == [] and qid in queue_ids(yubin)

    assert "1 recipient released" in queue_cmd(yubin, "release", qid)
    assert sink.wait_count(1)[0] == crlf(message("waiting"))
    wait_for("an empty queue", lambda: queue_ids(yubin) == [], srv=yubin)

    # delete: gone without a bounce
    sink.stop()
    qid2 = send(yubin, message("deleted"), "-f", DEMO, "carol@remote.test")
    wait_for("a failed attempt",
             lambda: "attempts=1" in queue_cmd(yubin, "list"), srv=yubin)
    assert "deleted" in queue_cmd(yubin, "delete", qid2)
    assert queue_ids(yubin) == [] and not (yubin.data / "queue" / (qid2 + ".msg")).exists()
    queue_cmd(yubin, "delete", qid2, rc=66)

    # flush: a pending message retried now, not in an hour
    qid3 = send(yubin, message("flushed"), "-f", DEMO, "carol@remote.test")
    wait_for("a failed attempt",
             lambda: "attempts=1" in queue_cmd(yubin, "list"), srv=yubin)
    sink2 = sinks(port=down)
    assert "1 recipient flushed" in queue_cmd(yubin, "flush", qid3)
    assert sink2.wait_count(1)[0] == crlf(message("flushed"))
    time.sleep(0.5)
    assert yubin.message_files(DEMO) == []    # no bounce for the deleted one


# ---- restarts and crashes --------------------------------------------------

@pytest.mark.yubin_config({"queue": {"retry_first": "1h", "retry_max": "2h"}})
def test_restart_resumes_pending_and_held(yubin, sinks):
    sink = sinks(start=False)
    route(yubin, "remote.test", sink.port)
    yubin.stop()
    pending = send(yubin, message("pending"), "-f", DEMO, "p@remote.test")
    held = send(yubin, message("held"), "-f", DEMO, "h@remote.test")
    queue_cmd(yubin, "hold", held)
    sink.start()
    yubin.start()
    got = sink.wait_count(1)
    assert got == [crlf(message("pending"))]
    assert queue_ids(yubin) == [held]
    yubin.restart()
    time.sleep(1)
    assert len(sink.files()) == 1
    queue_cmd(yubin, "release", held)
    got = sink.wait_count(2)
    assert sorted(got) == sorted([crlf(message("pending")), crlf(message("held"))])
    wait_for("an empty queue", lambda: queue_ids(yubin) == [], srv=yubin)


@pytest.mark.yubin_config({"queue": {"retry_first": "1s", "retry_max": "1s",
                                     "max_parallel": "10"}})
def test_sigkill_of_runner_mid_delivery_loses_nothing(yubin, sinks):
    """smtp-sink waits before answering DATA, so deliveries are in flight
    when the runner is killed; the master restarts it, it resumes, and
    every message arrives (some maybe twice, none lost)."""
    sink = sinks(options=["-w", "1"])
    route(yubin, "remote.test", sink.port)
    yubin.restart()
    n = 60
    for i in range(n):
        send(yubin, message("seq-%03d" % i), "-f", DEMO, "r%d@remote.test" % i)
    kills = 0
    for _ in range(3):
        time.sleep(1.2)
        pid = yubin.queue_runner()
        os.kill(pid, signal.SIGKILL)
        kills += 1
        wait_for("a new runner", lambda: yubin.queue_runner() != pid, srv=yubin)
    wait_for("an empty queue", lambda: queue_ids(yubin) == [], timeout=90, srv=yubin)
    seqs = set()
    for m in sink.messages():
        s = re.search(rb"Subject: (seq-\d+)", m)
        assert s, m[:300]
        seqs.add(s.group(1))
    assert len(seqs) == n, "lost: %s" % sorted(
        {b"seq-%03d" % i for i in range(n)} - seqs)
    assert kills == 3
    assert yubin.log_text().count("service queue pid=") >= 3


def test_runner_is_supervised_and_stops_with_the_server(yubin):
    pid = yubin.queue_runner()
    assert pid not in yubin.workers()
    os.kill(pid, signal.SIGKILL)
    new = wait_for("a restarted runner",
                   lambda: yubin.queue_runner() != pid and yubin.queue_runner(),
                   srv=yubin)
    assert new != pid
    yubin.signal(signal.SIGHUP)
    wait_for("a runner replaced on reload",
             lambda: yubin.queue_runner() not in (pid, new), srv=yubin)
    assert yubin.stop() == 0
    assert yubin.wait_group_gone() == []


@pytest.mark.yubin_config({"queue": {"retry_first": "1s", "retry_max": "1s",
                                     "delay_warning": "2s", "lifetime": "6s"}})
def test_delay_notice_then_expiry_bounce(yubin):
    """RFC 3464 end to end: a destination that never answers gives the
    sender one delay notice (Action: delayed) once delay_warning has
    passed, then, at the end of the lifetime, a bounce with 4.4.7."""
    route(yubin, "remote.test", free_port())   # nothing listens there
    yubin.restart()
    send(yubin, message("never-delivered"), "-f", DEMO, "carol@remote.test")
    files = wait_inbox(yubin, DEMO, 1, timeout=20)
    delay = email.message_from_bytes(files[0].read_bytes(),
                                     policy=email.policy.compat32)
    assert delay.get_content_type() == "multipart/report"
    status = delay.get_payload()[1].get_payload()[1]
    assert status["Action"] == "delayed"
    assert status["Status"].startswith("4.")
    assert "Will-Retry-Until" in status
    files = wait_inbox(yubin, DEMO, 2, timeout=30)
    reports = [email.message_from_bytes(f.read_bytes(), policy=email.policy.compat32)
               for f in files]
    actions = sorted(r.get_payload()[1].get_payload()[1]["Action"] for r in reports)
    assert actions == ["delayed", "failed"], actions
    final = next(r for r in reports
                 if r.get_payload()[1].get_payload()[1]["Action"] == "failed")
    check_bounce(final.as_bytes(), "carol@remote.test", "4.4.7")
    wait_for("an empty queue", lambda: queue_ids(yubin) == [], srv=yubin)
    time.sleep(1.5)
    assert len(yubin.message_files(DEMO)) == 2, "more than one delay notice"
