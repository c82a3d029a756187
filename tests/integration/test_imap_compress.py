"""IMAP COMPRESS=DEFLATE (RFC 4978) with a Python client that speaks raw
DEFLATE (zlib, wbits=-15) both ways, over STARTTLS and implicit TLS.

Each test names the RFC section or the user story it checks."""

import imaplib
import os
import re
import socket
import time
import zlib

import pytest

from yubin_fixture import DEMO, DEMO_PASSWORD, fast_bin, proc_children, proc_status_kb

imaplib._MAXLINE = 1 << 26

LITERAL_RE = re.compile(rb"\{(\d+)\}$")


class ZImap:
    """A line-level IMAP client on a raw socket that can switch to DEFLATE
    after a tagged OK (RFC 4978 3: the server compresses from the byte after
    the OK's CRLF, the client from its next command)."""

    def __init__(self, srv, tls, timeout=20):
        self.srv = srv
        port = srv.imaps_port if tls == "implicit" else srv.imap_port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        if tls == "implicit":
            self.sock = srv.context().wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.comp = self.decomp = None
        self.greeting = self.readline()
        if tls == "starttls":
            assert self.cmd(b"s", b"STARTTLS")[-1].startswith(b"s OK")
            self.sock = srv.context().wrap_socket(self.sock, server_hostname="localhost")

    def close(self):
        self.sock.close()

    def send(self, data: bytes):
        if self.comp is not None:
            data = self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the connection")
        if self.decomp is not None:
            chunk = self.decomp.decompress(chunk)
        self.buf += chunk

    def readline(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def until_tagged(self, tag: bytes):
        """Lines up to the tagged one; a literal is kept as bytes right
        after the line that announced it."""
        out = []
        while True:
            line = self.readline()
            out.append(line)
            m = LITERAL_RE.search(line)
            if m:
                out.append(self.read_exact(int(m.group(1))))
                continue
            if line.startswith(tag + b" "):
                return out

    def cmd(self, tag: bytes, rest: bytes):
        self.send(tag + b" " + rest + b"\r\n")
        return self.until_tagged(tag)

    def login(self):
        r = self.cmd(b"l", b'LOGIN "%s" "%s"' % (DEMO.encode(), DEMO_PASSWORD.encode()))
        assert r[-1].startswith(b"l OK"), r

    def start_compress(self, tag=b"z", pipelined=b""):
        """COMPRESS DEFLATE; pipelined is sent compressed in the same
        segment (a client that does not wait, which the server tolerates)."""
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        extra = b""
        if pipelined:
            extra = comp.compress(pipelined) + comp.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(tag + b" COMPRESS DEFLATE\r\n" + extra)
        # The OK is the last uncompressed line: read it byte-exactly.
        while b"\r\n" not in self.buf:
            self.buf += self.sock.recv(1)
        line, rest = self.buf.split(b"\r\n", 1)
        assert not rest
        assert line == tag + b" OK DEFLATE active", line
        self.buf = b""
        self.comp = comp
        self.decomp = zlib.decompressobj(-15)


def imap_plain_fetch(srv, seq):
    c = imaplib.IMAP4_SSL("127.0.0.1", srv.imaps_port, ssl_context=srv.context(), timeout=30)
    c.login(DEMO, DEMO_PASSWORD)
    c.select("INBOX", readonly=True)
    typ, data = c.fetch(seq, "(BODY.PEEK[])")
    assert typ == "OK"
    c.logout()
    return data[0][1]


def big_message():
    lines = [b"From: big@example.org", b"To: demo@example.test",
             b"Subject: a large message for COMPRESS", b"Message-ID: <big-z@example.org>", b""]
    rnd = os.urandom(600_000).hex().encode()   # incompressible half
    for i in range(40_000):                      # compressible half
        lines.append(b"line %06d of a compressible body, the same words again" % i)
    for i in range(0, len(rnd), 76):
        lines.append(rnd[i:i + 76])
    return b"\n".join(lines) + b"\n"


@pytest.fixture(scope="module")
def zsrv(yubin_module_factory):
    srv = yubin_module_factory()
    assert srv.deliver(DEMO, b"From: a@example.org\nSubject: small\n\nhello\n").returncode == 0
    assert srv.deliver(DEMO, big_message()).returncode == 0
    return srv


def capabilities(lines):
    for line in lines:
        if line.startswith(b"* CAPABILITY "):
            return line.split()[2:]
    raise AssertionError(lines)


def test_capability_only_after_login(zsrv):
    """RFC 4978 3 (command-auth): COMPRESS needs an authenticated session,
    as in Dovecot; the capability is announced only then."""
    c = ZImap(zsrv, "starttls")
    assert b"COMPRESS=DEFLATE" not in capabilities(c.cmd(b"a", b"CAPABILITY"))
    assert c.cmd(b"b", b"COMPRESS DEFLATE")[-1].startswith(b"b BAD")
    c.login()
    assert b"COMPRESS=DEFLATE" in capabilities(c.cmd(b"c", b"CAPABILITY"))
    assert c.cmd(b"d", b"COMPRESS")[-1].startswith(b"d BAD")
    assert c.cmd(b"e", b"COMPRESS GZIP")[-1].startswith(b"e NO")
    # Still uncompressed after the refusals.
    assert c.cmd(b"f", b"NOOP")[-1] == b"f OK NOOP completed"
    c.close()


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_compressed_session(zsrv, tls):
    """RFC 4978 3: after the OK every byte both ways is DEFLATE, above TLS;
    LIST, SELECT, a large FETCH (byte-identical to the uncompressed one),
    APPEND with a synchronizing literal, a second COMPRESS refused with
    COMPRESSIONACTIVE, LOGOUT."""
    want = imap_plain_fetch(zsrv, "2")
    c = ZImap(zsrv, tls)
    c.login()
    c.start_compress()
    assert b"COMPRESS=DEFLATE" in capabilities(c.cmd(b"a", b"CAPABILITY"))
    r = c.cmd(b"b", b'LIST "" "*"')
    assert r[-1].startswith(b"b OK") and any(b'"INBOX"' in l or b" INBOX" in l for l in r), r
    r = c.cmd(b"c", b"SELECT INBOX")
    assert r[-1].startswith(b"c OK") and b"* 2 EXISTS" in r, r
    t0 = time.monotonic()
    r = c.cmd(b"d", b"FETCH 2 (BODY.PEEK[])")
    assert r[-1].startswith(b"d OK"), r[-1]
    assert r[1] == want, "compressed FETCH differs from the plain one"
    assert len(want) > 2_000_000
    assert time.monotonic() - t0 < 20
    msg = b"From: z@example.org\r\nSubject: appended compressed\r\n\r\nbody " + tls.encode() + b"\r\n"
    c.send(b"e APPEND INBOX {%d}\r\n" % len(msg))
    assert c.readline().startswith(b"+")
    c.send(msg + b"\r\n")
    r = c.until_tagged(b"e")
    assert r[-1].startswith(b"e OK [APPENDUID"), r
    uid = r[-1].split()[4].rstrip(b"]")
    r = c.cmd(b"f", b"UID FETCH %s (BODY.PEEK[])" % uid)
    assert r[-1].startswith(b"f OK") and msg in r, r
    r = c.cmd(b"g", b"COMPRESS DEFLATE")
    assert r[-1].startswith(b"g NO [COMPRESSIONACTIVE]"), r
    r = c.cmd(b"h", b"UID STORE %s +FLAGS (\\Deleted)" % uid)
    assert r[-1].startswith(b"h OK"), r
    assert c.cmd(b"i", b"EXPUNGE")[-1].startswith(b"i OK")
    r = c.cmd(b"j", b"LOGOUT")
    assert r[0].startswith(b"* BYE") and r[-1].startswith(b"j OK"), r
    c.close()


def test_pipelined_after_compress(zsrv):
    """A client that sends compressed commands right behind COMPRESS gets
    them inflated, not parsed as plaintext."""
    c = ZImap(zsrv, "implicit")
    c.login()
    c.start_compress(pipelined=b"n NOOP\r\n")
    assert c.until_tagged(b"n")[-1] == b"n OK NOOP completed"
    assert c.cmd(b"m", b"NOOP")[-1] == b"m OK NOOP completed"
    c.close()


def test_idle_while_compressed(zsrv):
    """RFC 4978 4: the server flushes each response, so an IDLE update
    arrives at once (not held in the compressor)."""
    c = ZImap(zsrv, "implicit")
    c.login()
    c.start_compress()
    r = c.cmd(b"s", b"SELECT INBOX")
    exists = [int(l.split()[1]) for l in r if l.endswith(b" EXISTS")][0]
    c.send(b"i IDLE\r\n")
    assert c.readline().startswith(b"+ ")
    t0 = time.monotonic()
    assert zsrv.deliver(DEMO, b"Subject: while idle\n\nnew mail\n").returncode == 0
    c.sock.settimeout(5)
    line = c.readline()
    assert line == b"* %d EXISTS" % (exists + 1), line
    assert time.monotonic() - t0 < 3
    c.send(b"DONE\r\n")
    assert c.until_tagged(b"i")[-1].startswith(b"i OK")
    c.close()


def worker_rss(srv):
    return sum(proc_status_kb(pid, "VmRSS") for pid in proc_children(srv.proc.pid))


def other_session_works(srv):
    c = ZImap(srv, "implicit")
    c.login()
    assert c.cmd(b"a", b"NOOP")[-1] == b"a OK NOOP completed"
    c.close()


def test_corrupt_stream_closes_cleanly(zsrv):
    """Bytes that are not DEFLATE end that connection (no crash); the
    server keeps serving others."""
    c = ZImap(zsrv, "starttls")
    c.login()
    c.start_compress()
    assert c.cmd(b"a", b"NOOP")[-1] == b"a OK NOOP completed"
    c.comp = None
    c.sock.sendall(b"\x00\x05\x00\x00\x00garbage, not deflate\r\n")
    c.sock.settimeout(5)
    with pytest.raises((EOFError, ConnectionResetError)):
        while True:
            c._fill()
    c.close()
    other_session_works(zsrv)
    deadline = time.monotonic() + 5
    while "reason=deflate-error" not in zsrv.log_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "reason=deflate-error" in zsrv.log_text()


def sanitized(binary):
    """ASan keeps freed memory in quarantine (256 MB): RSS says nothing."""
    with open(binary, "rb") as f:
        return b"AddressSanitizer" in f.read()


def test_decompression_bomb_is_cut_off(yubin_factory):
    """A 200 MB line that compresses to ~200 KB meets the same line limit
    as plain input (BAD), is skipped without being buffered, and the
    session goes on; worker memory does not grow with it (measured on
    $YUBIN_FAST_BIN, the build without sanitizers)."""
    zsrv = yubin_factory(binary=fast_bin())
    c = ZImap(zsrv, "implicit")
    c.login()
    c.start_compress()
    before = worker_rss(zsrv)
    chunk = b"A" * (1 << 20)
    data = bytearray(c.comp.compress(b"b "))
    for _ in range(200):
        data += c.comp.compress(chunk)
    data += c.comp.compress(b"\r\nn NOOP\r\n") + c.comp.flush(zlib.Z_SYNC_FLUSH)
    assert len(data) < 1_000_000
    c.sock.sendall(bytes(data))
    c.sock.settimeout(60)
    r = c.until_tagged(b"n")
    assert any(l.startswith(b"b BAD") or l.startswith(b"* BAD") for l in r), r
    assert r[-1] == b"n OK NOOP completed", r
    grown = worker_rss(zsrv) - before
    if not sanitized(zsrv.bin):
        assert grown < 64 * 1024, "workers grew by %d kB" % grown
    c.close()
    other_session_works(zsrv)
