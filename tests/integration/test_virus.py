"""Virus scanning with a REAL clamd (docs/virus.md): each test starts its
own `clamd` in the foreground on a unix socket in a temporary folder, with
a tiny database the test writes (a signature for a test pattern of ours and
one for EICAR), and points [virus] clamd at it. Mail sent over SMTP, through
`yubin deliver` and through the queue arrives with the infected part
replaced by a notice, the Subject prefixed and every other byte unchanged;
with clamd down nothing is stored and the sender (SMTP 451, exit 75) or the
queue retries; on_failure = accept lets mail through unscanned."""

import base64
import os
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from yubin_fixture import DEMO, DEMO_PASSWORD, free_port, insecure_context

CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"
SINK = "/usr/sbin/smtp-sink"

pytestmark = pytest.mark.skipif(
    not os.path.exists(CLAMD),
    reason="clamd is not installed (Debian package clamav-daemon; scripts/deps.sh test)")

EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!"
         b"$H+H*")
PATTERN = b"YUBIN-CUSTOM-VIRUS-PATTERN-7f3a9c5e"
PREFIX = b"[WARNING: VIRUS REMOVED] "
FAST_RETRY = {"queue": {"retry_first": "1s", "retry_max": "2s"}}


class Clamd:
    """A clamd in the foreground with a database of two signatures."""

    def __init__(self, folder: Path):
        self.dir = folder
        self.sock = folder / "clamd.sock"
        db = folder / "db"
        db.mkdir(parents=True)
        # .ndb: name:target type (0 = any file):offset:hex signature
        (db / "yubin-test.ndb").write_text(
            "Yubin.Test.Pattern:0:*:%s\nEicar-Test-Signature:0:0:%s\n"
            % (PATTERN.hex(), EICAR.hex()))
        self.conf = folder / "clamd.conf"
        self.port = free_port()
        self.conf.write_text(
            "Foreground yes\nLocalSocket %s\nLocalSocketMode 666\n"
            "TCPSocket %d\nTCPAddr 127.0.0.1\n"
            "DatabaseDirectory %s\nLogFile %s\nLogTime yes\n"
            "StreamMaxLength 2M\nSelfCheck 3600\nLogClean yes\n"
            % (self.sock, self.port, db, folder / "clamd.log"))
        folder.chmod(0o755)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([CLAMD, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("clamd exited: %s" % self.proc.stderr.read())
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(self.sock))
                    s.sendall(b"zPING\0")
                    if s.recv(16).startswith(b"PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("clamd does not answer on %s" % self.sock)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None
        deadline = time.monotonic() + 5
        while self.sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def clamd():
    folder = Path(tempfile.mkdtemp(prefix="yubin-clamd-"))
    c = Clamd(folder).start()
    yield c
    c.stop()
    shutil.rmtree(folder, ignore_errors=True)


def make_server(yubin_factory, overrides, start=True):
    """A yubin whose every listener has a port of its own (a listener that
    `yubin init` writes with a fixed port the fixture does not know yet,
    such as ManageSieve's 4190, gets a free one)."""
    srv = yubin_factory(overrides, start=False)
    srv.conf.write_text(re.sub(r"(?m)^(\s*port\s*=\s*)4190\s*$",
                               lambda m: m.group(1) + str(free_port()),
                               srv.conf.read_text()))
    return srv.start() if start else srv


def virus_config(clamd, **extra):
    cfg = {"virus": {"clamd": str(clamd.sock), "timeout": "5s"}}
    cfg["virus"].update(extra)
    cfg.update(FAST_RETRY)
    return cfg


# ---- messages --------------------------------------------------------------

CLEAN_PDF = bytes(range(256)) * 8


def b64(data):
    text = base64.b64encode(data)
    return b"\r\n".join(text[i:i + 76] for i in range(0, len(text), 76)) + b"\r\n"


def infected(subject, payload, filename=b"invoice.exe"):
    """(message, head, infected part, tail): message = head + part + tail;
    head and tail are what must stay byte-identical (but the Subject)."""
    head = (b"From: Mallory <mallory@outside.test>\r\n"
            b"To: <demo@example.test>\r\n"
            b"Subject: " + subject + b"\r\n"
            b"Date: Sun, 22 Nov 2026 10:00:00 +0900\r\n"
            b"Message-ID: <" + subject.replace(b" ", b".") + b"@outside.test>\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"=-b1\"\r\n\r\n"
            b"preamble\r\n--=-b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            b"Please pay the attached invoice.\r\n\r\n--=-b1\r\n")
    part = (b"Content-Type: application/x-msdownload; name=\"" + filename + b"\"\r\n"
            b"Content-Disposition: attachment; filename=\"" + filename + b"\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(payload))
    tail = (b"\r\n--=-b1\r\nContent-Type: application/pdf; name=\"ok.pdf\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(CLEAN_PDF) +
            b"\r\n--=-b1--\r\n")
    return head + part + tail, head, part, tail


def custom_payload():
    return b"MZ fake program\x00\x01" + PATTERN + b"\x00 more bytes"


def check_stripped(stored: bytes, head, part, tail, virus_re, filename=b"invoice.exe"):
    """The stored message is head (Subject prefixed) + a notice + tail."""
    want_head = head.replace(b"Subject: ", b"Subject: " + PREFIX, 1)
    i = stored.find(want_head)
    assert i >= 0, "head not kept byte for byte (Subject prefixed):\n%r" % stored[:600]
    assert stored.endswith(tail), "the clean parts after the virus changed"
    notice = stored[i + len(want_head):len(stored) - len(tail)]
    assert notice.startswith(b"Content-Type: text/plain; charset=utf-8\r\n"), notice
    assert b"File name: " + filename + b"\r\n" in notice, notice
    assert b"Content type: application/x-msdownload\r\n" in notice, notice
    assert re.search(rb"Virus: " + virus_re + rb"\r\n", notice), notice
    assert part not in stored


def wait_for(what, fn, timeout=20, srv=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s\n%s" % (
        what, srv.diagnostics() if srv else ""))


def wait_inbox(srv, count, addr=DEMO):
    return wait_for("%d message(s) for %s" % (count, addr),
                    lambda: len(srv.message_files(addr)) >= count
                    and srv.message_files(addr), srv=srv)


def smtp_send(srv, message: bytes, rcpts=(DEMO,)):
    with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=30) as s:
        s.sendmail("mallory@outside.test", list(rcpts), message)


def received_stripped(stored: bytes) -> bytes:
    """The message without the Received header yubin put on top."""
    assert stored.startswith(b"Received: ")
    m = re.match(rb"Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", stored)
    return stored[m.end():]


def log_lines(srv, pattern):
    return [ln for ln in srv.log_text().splitlines() if re.search(pattern, ln)]


# ---- found and removed ---------------------------------------------------------

def test_smtp_custom_signature_is_stripped(yubin_factory, clamd):
    srv = make_server(yubin_factory, virus_config(clamd))
    msg, head, part, tail = infected(b"custom one", custom_payload())
    smtp_send(srv, msg)
    stored = wait_inbox(srv, 1)[0].read_bytes()
    check_stripped(stored, head, part, tail, rb"Yubin\.Test\.Pattern(\.UNOFFICIAL)?")
    found = log_lines(srv, r"virus found")
    assert len(found) == 1, found
    assert re.search(r'virus="Yubin\.Test\.Pattern(\.UNOFFICIAL)?" part=2 '
                     r'filename="invoice\.exe" from="Mallory <mallory@outside\.test>" '
                     r'message-id="<custom\.one@outside\.test>"', found[0]), found


def test_deliver_eicar_and_custom_signature(yubin_factory, clamd):
    srv = make_server(yubin_factory, virus_config(clamd), start=False)
    msg, head, part, tail = infected(b"=?UTF-8?B?5pel5pys6Kqe?=", EICAR + b"\r\n",
                                     filename=b"eicar.com")
    r = srv.deliver(DEMO, msg)
    assert r.returncode == 0, r.stderr
    files = srv.message_files()
    assert len(files) == 1
    stored = files[0].read_bytes()
    check_stripped(stored, head, part, tail, rb"Eicar-Test-Signature", b"eicar.com")
    # an encoded Subject stays valid: the prefix goes before the encoded word
    assert b"Subject: [WARNING: VIRUS REMOVED] =?UTF-8?B?5pel5pys6Kqe?=\r\n" in stored

    msg, head, part, tail = infected(b"custom two", custom_payload())
    assert srv.deliver(DEMO, msg).returncode == 0
    stored = [f.read_bytes() for f in srv.message_files() if f not in files][0]
    check_stripped(stored, head, part, tail, rb"Yubin\.Test\.Pattern(\.UNOFFICIAL)?")
    assert len(log_lines(srv, r"virus found")) == 2


def test_clean_message_arrives_unchanged(yubin_factory, clamd):
    srv = make_server(yubin_factory, virus_config(clamd))
    msg, _, _, _ = infected(b"clean", b"just an ordinary attachment\r\n")
    smtp_send(srv, msg)
    stored = wait_inbox(srv, 1)[0].read_bytes()
    assert received_stripped(stored) == msg
    assert srv.deliver(DEMO, msg).returncode == 0
    stored = [f.read_bytes() for f in srv.message_files()]
    assert msg in stored
    assert not log_lines(srv, r"virus (found|scan)")
    # clamd really saw each part: one INSTREAM per non-empty leaf part,
    # three per message, once per message (SMTP and `yubin deliver`)
    assert (clamd.dir / "clamd.log").read_text().count("instream(local): OK") == 6


@pytest.mark.skipif(not os.path.exists(SINK), reason="smtp-sink (postfix) is not installed")
def test_local_and_remote_copy_scanned_once(yubin_factory, clamd):
    """Submission to a local and a remote recipient: the local copy and the
    queued one are both clean, and the message was scanned once."""
    from test_queue import Sink
    sink_dir = Path(tempfile.mkdtemp(prefix="yubin-sink-"))
    sink_dir.chmod(0o755)
    sink = Sink(sink_dir / "sink").start()
    try:
        srv = make_server(yubin_factory, virus_config(clamd), start=False)
        srv.edit_config("transport", "routes", "remote.test=[127.0.0.1]:%d" % sink.port)
        srv.start()
        msg, head, part, tail = infected(b"both ways", custom_payload())
        msg = msg.replace(b"From: Mallory <mallory@outside.test>", b"From: <demo@example.test>")
        head = head.replace(b"From: Mallory <mallory@outside.test>", b"From: <demo@example.test>")
        with smtplib.SMTP("127.0.0.1", srv.submission_port, timeout=30) as s:
            s.starttls(context=insecure_context())
            s.login(DEMO, DEMO_PASSWORD)
            s.sendmail(DEMO, [DEMO, "carol@remote.test"], msg)
        local = wait_inbox(srv, 1)[0].read_bytes()
        check_stripped(local, head, part, tail, rb"Yubin\.Test\.Pattern(\.UNOFFICIAL)?")
        remote = sink.wait_count(1)[0]
        check_stripped(remote, head, part, tail, rb"Yubin\.Test\.Pattern(\.UNOFFICIAL)?")
        assert len(log_lines(srv, r"virus found")) == 1
    finally:
        sink.stop()
        shutil.rmtree(sink_dir, ignore_errors=True)


# ---- clamd down ------------------------------------------------------------------

def test_clamd_down_tempfails_then_delivers(yubin_factory, clamd):
    srv = make_server(yubin_factory, virus_config(clamd))
    clamd.stop()
    msg, head, part, tail = infected(b"while down", custom_payload())
    with pytest.raises(smtplib.SMTPDataError) as exc:
        smtp_send(srv, msg)
    assert exc.value.smtp_code == 451
    assert b"4.7.1" in exc.value.smtp_error
    r = srv.deliver(DEMO, msg)
    assert r.returncode == 75, (r.returncode, r.stderr)
    # the queue's local copy waits too
    r = srv.run("send", "-f", "mallory@outside.test", DEMO, input=msg)
    assert r.returncode == 0, r.stderr
    wait_for("a deferred queue delivery",
             lambda: log_lines(srv, r"deliver status=deferred reason=virus_scan"), srv=srv)
    assert srv.message_files() == [] and srv.tmp_files() == []
    assert log_lines(srv, r"virus scan incomplete .*action=tempfail")

    clamd.start()
    # the queue retries on its own; the SMTP sender and the caller of
    # `yubin deliver` send again
    stored = wait_inbox(srv, 1)[0].read_bytes()
    check_stripped(stored, head, part, tail, rb"Yubin\.Test\.Pattern(\.UNOFFICIAL)?")
    smtp_send(srv, msg)
    assert srv.deliver(DEMO, msg).returncode == 0
    files = wait_inbox(srv, 3)
    assert len(files) == 3 and srv.tmp_files() == []
    for f in files:
        check_stripped(f.read_bytes(), head, part, tail,
                       rb"Yubin\.Test\.Pattern(\.UNOFFICIAL)?")


def test_on_failure_accept_delivers_unscanned(yubin_factory, clamd):
    srv = make_server(yubin_factory, virus_config(clamd, on_failure="accept"))
    clamd.stop()
    msg, _, _, _ = infected(b"accepted", custom_payload())
    smtp_send(srv, msg)
    stored = wait_inbox(srv, 1)[0].read_bytes()
    assert received_stripped(stored) == msg
    assert log_lines(srv, r"virus scan incomplete .*action=accept_unscanned")
    # the built-in EICAR check does not need clamd
    msg, head, part, tail = infected(b"eicar anyway", EICAR, filename=b"eicar.com")
    assert srv.deliver(DEMO, msg).returncode == 0
    stored = [f.read_bytes() for f in srv.message_files()]
    assert any(PREFIX in s and EICAR not in s for s in stored)


# ---- the other ways to reach clamd, and its limits ------------------------------

def test_clamd_over_tcp(yubin_factory, clamd):
    cfg = virus_config(clamd)
    cfg["virus"]["clamd"] = "127.0.0.1:%d" % clamd.port
    srv = make_server(yubin_factory, cfg, start=False)
    msg, head, part, tail = infected(b"over tcp", custom_payload())
    assert srv.deliver(DEMO, msg).returncode == 0
    check_stripped(srv.message_files()[0].read_bytes(), head, part, tail,
                   rb"Yubin\.Test\.Pattern(\.UNOFFICIAL)?")


def test_silent_clamd_times_out(yubin_factory, tmp_path):
    """A clamd that takes the connection and never answers: the scan gives
    up after [virus] timeout and the message waits (451, exit 75)."""
    folder = Path(tempfile.mkdtemp(prefix="yubin-clamd-"))
    folder.chmod(0o755)
    path = folder / "silent.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    path.chmod(0o666)
    listener.listen(16)
    try:
        srv = make_server(yubin_factory, {"virus": {"clamd": str(path), "timeout": "1s"}})
        msg, _, _, _ = infected(b"silent", custom_payload())
        start = time.monotonic()
        with pytest.raises(smtplib.SMTPDataError) as exc:
            smtp_send(srv, msg)
        assert exc.value.smtp_code == 451
        assert 0.9 < time.monotonic() - start < 10
        assert srv.deliver(DEMO, msg).returncode == 75
        assert srv.message_files() == []
        assert log_lines(srv, r'virus scan failed .*error="clamd timed out"')
    finally:
        listener.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_part_over_stream_limit(yubin_factory, clamd):
    """clamd refuses a stream over its StreamMaxLength (2M here) with an
    ERROR: the message waits. With max_scan_size under that limit the big
    part is not sent (logged) and the message is delivered."""
    big = custom_payload() + os.urandom(3 * 1024 * 1024)
    msg, _, _, _ = infected(b"big", big)
    srv = make_server(yubin_factory, virus_config(clamd), start=False)
    r = srv.deliver(DEMO, msg)
    assert r.returncode == 75, r.stderr
    assert srv.message_files() == []
    srv.edit_config("virus", "max_scan_size", "2M")
    assert srv.deliver(DEMO, msg).returncode == 0
    assert srv.message_files()[0].read_bytes() == msg
    assert log_lines(srv, r"virus scan part=2 size=\d+ max_scan_size=2097152 "
                          r"event=not_sent_to_clamd")
