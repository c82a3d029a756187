"""Issue 2, item 8: bad input on POP3 gets -ERR and neither the session nor
the server crashes. After each case a new session must still work and no
sanitizer report may appear in the log (RFC 1939 section 3: unknown or bad
commands get -ERR)."""

import random
import socket
import ssl
import threading
import time

import pytest

from yubin_fixture import DEMO


@pytest.fixture(scope="module")
def srv(yubin_module):
    r = yubin_module.deliver(DEMO, b"Subject: one\r\n\r\nbody\r\n")
    assert r.returncode == 0
    return yubin_module


@pytest.fixture(autouse=True)
def still_serving(srv):
    """After every case: a fresh session logs in and reads, no worker died
    (same PIDs as before the case), no sanitizer report."""
    before = srv.wait_workers(2)
    yield
    pop = srv.login_retry(srv.pop3_stls, seconds=10)
    assert pop.stat()[0] == 1
    assert pop.retr(1)[1] == [b"Subject: one", b"", b"body"]
    pop.quit()
    srv.assert_no_sanitizer()
    assert srv.proc.poll() is None, "the server died\n" + srv.diagnostics()
    assert srv.workers() == before, (
        "a worker died during the case (workers %s, now %s)\n%s"
        % (before, srv.workers(), srv.diagnostics()))


def tls_session(srv, login=True):
    raw = srv.raw(tls=True)
    if login:
        raw.login()
    return raw


def send_tolerant(raw, data):
    """Sends data; the server may close the connection while it does."""
    try:
        raw.send(data)
        return True
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
        return False


def test_line_of_10k(srv):
    with srv.raw() as raw:
        r = raw.cmd(b"USER " + b"a" * 10240)
        assert r.startswith(b"-ERR"), r
        # the session goes on
        assert raw.cmd("CAPA").startswith(b"+OK")
        raw.read_multi()


def test_line_of_10k_after_login(srv):
    with tls_session(srv) as raw:
        r = raw.cmd(b"RETR " + b"1" * 10240)
        assert r.startswith(b"-ERR"), r
        assert raw.cmd("NOOP").startswith(b"+OK")
        assert raw.cmd("QUIT").startswith(b"+OK")


def test_one_megabyte_without_newline(srv):
    with srv.raw(timeout=20) as raw:
        sent = send_tolerant(raw, b"A" * (1 << 20))
        if sent:
            send_tolerant(raw, b"\r\n")
        # an -ERR for the over-long line, or a close; never silence or a hang
        try:
            r = raw.readline()
            assert r.startswith(b"-ERR"), r
        except (EOFError, ConnectionResetError):
            pass


def test_one_megabyte_inside_tls(srv):
    with tls_session(srv, login=False) as raw:
        raw.sock.settimeout(20)
        if send_tolerant(raw, b"B" * (1 << 20) + b"\r\n"):
            try:
                assert raw.readline().startswith(b"-ERR")
            except (EOFError, ConnectionResetError, ssl.SSLError):
                pass


@pytest.mark.parametrize("line", [
    b"NOOP\0",
    b"US\0ER demo@example.test",
    b"USER demo@example.test\0extra",
    b"\0\0\0\0",
    b"CAPA\0",
])
def test_nul_bytes(srv, line):
    with srv.raw() as raw:
        r = raw.cmd(line)
        assert r.startswith(b"-ERR"), r


def test_nul_in_password_does_not_log_in(srv):
    with tls_session(srv, login=False) as raw:
        assert raw.cmd("USER " + DEMO).startswith(b"+OK")
        r = raw.cmd(b"PASS demo-Passw0rd!\0trailing")
        assert r.startswith(b"-ERR"), r


@pytest.mark.parametrize("tls", [False, True])
def test_random_binary(srv, tls):
    rnd = random.Random(20240601 + tls)
    garbage = bytes(rnd.getrandbits(8) for _ in range(10240))
    with srv.raw(tls=tls) as raw:
        send_tolerant(raw, garbage + b"\r\n")
        raw.closed_within(2)
        for line in raw.trailing:
            assert line.startswith(b"-ERR") or line.startswith(b"+OK"), line


@pytest.mark.parametrize("command", [
    b"RETR 99999999999999999999",
    b"RETR 18446744073709551617",
    b"RETR 4294967297",         # wraps to 1 in 32 bits
    b"RETR -1",
    b"RETR 0",
    b"RETR +1",
    b"RETR 1x",
    b"RETR 0x1",
    b"RETR",
    b"RETR 1 2 3 4 5 6 7 8 9",
    b"LIST 0",
    b"LIST -1",
    b"LIST 99999999999999999999",
    b"DELE 0",
    b"DELE 4294967297",
    b"UIDL 0",
    b"UIDL 2",
    b"TOP 1",
    b"TOP 1 -1",
    b"TOP 0 0",
    b"TOP 4294967297 0",
    b"TOP 1 x",
    b"XYZZY",
    b"",
    b" ",
])
def test_bad_numbers_and_arguments(srv, command):
    with tls_session(srv) as raw:
        r = raw.cmd(command)
        assert r.startswith(b"-ERR"), (command, r)
        # nothing was deleted by a wrapped number
        assert raw.cmd("STAT").split()[:2] == [b"+OK", b"1"]
        assert raw.cmd("RSET").startswith(b"+OK")
        assert raw.cmd("QUIT").startswith(b"+OK")


@pytest.mark.parametrize("command", [
    b"STAT", b"LIST", b"LIST 1", b"RETR 1", b"DELE 1", b"RSET", b"NOOP",
    b"UIDL", b"TOP 1 0", b"PASS secret",
])
def test_transaction_commands_before_login(srv, command):
    with tls_session(srv, login=False) as raw:
        r = raw.cmd(command)
        assert r.startswith(b"-ERR"), (command, r)


@pytest.mark.parametrize("command", [
    b"USER demo@example.test", b"PASS x", b"AUTH PLAIN AGRlbW8AeA==",
    b"STLS", b"APOP demo 0123456789abcdef0123456789abcdef",
])
def test_authorization_commands_after_login(srv, command):
    with tls_session(srv) as raw:
        r = raw.cmd(command)
        assert r.startswith(b"-ERR"), (command, r)
        assert raw.cmd("STAT").startswith(b"+OK")
        assert raw.cmd("QUIT").startswith(b"+OK")


def test_many_bad_commands_end_the_session(srv):
    with srv.raw() as raw:
        answers = []
        for i in range(100):
            if not send_tolerant(raw, b"BOGUS%d\r\n" % i):
                break
            try:
                answers.append(raw.readline())
            except (EOFError, ConnectionResetError):
                break
        else:
            pytest.fail("still open after 100 bad commands")
        assert answers and all(a.startswith(b"-ERR") for a in answers), \
            answers[:5]


def test_http_request_is_closed(srv):
    with srv.raw() as raw:
        send_tolerant(raw, b"GET / HTTP/1.1\r\nHost: localhost\r\n"
                      b"User-Agent: curl/7.88\r\nAccept: */*\r\n\r\n")
        assert raw.closed_within(5), "an HTTP request kept the session open"
        for line in raw.trailing:
            assert line.startswith(b"-ERR"), line


def test_tls_handshake_garbage(srv):
    """Non-TLS bytes on the implicit TLS port are dropped, not fatal."""
    s = socket.create_connection(("127.0.0.1", srv.pop3s_port), 5)
    try:
        s.sendall(b"USER demo\r\n" + bytes(range(256)) * 4)
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except (socket.timeout, ConnectionResetError):
            pass
    finally:
        s.close()


def test_abrupt_disconnects_mid_command(srv):
    """Connections dropped in every phase: before the greeting, in the
    TLS handshake, in the middle of a line and in the middle of a RETR."""
    socket.create_connection(("127.0.0.1", srv.pop3_port), 5).close()
    socket.create_connection(("127.0.0.1", srv.pop3s_port), 5).close()
    s = socket.create_connection(("127.0.0.1", srv.pop3s_port), 5)
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    s.close()
    with srv.raw() as raw:
        raw.send(b"USER half-a-li")
    with tls_session(srv) as raw:
        raw.send(b"RETR 1\r\n")
    time.sleep(0.3)


def test_many_parallel_garbage_sessions(srv):
    errors = []

    def one(seed):
        rnd = random.Random(seed)
        try:
            with srv.raw(tls=bool(seed % 2)) as raw:
                for _ in range(20):
                    n = rnd.randrange(1, 300)
                    send_tolerant(raw, bytes(rnd.getrandbits(8)
                                             for _ in range(n)) + b"\n")
                raw.closed_within(0.5)
        except (OSError, EOFError, ssl.SSLError):
            pass
        except Exception as e:      # a test bug, not a server finding
            errors.append(repr(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


@pytest.mark.yubin_config({"pop3": {"idle_timeout": "2s"}})
def test_idle_timeout_closes_with_err(yubin):
    for tls, login in ((False, False), (True, True)):
        with yubin.raw(tls=tls, timeout=10) as raw:
            if login:
                raw.login()
            t0 = time.monotonic()
            assert raw.closed_within(8), "idle session not closed after 8s"
            elapsed = time.monotonic() - t0
            assert 1.5 <= elapsed <= 6, "closed after %.1fs" % elapsed
            assert raw.trailing and raw.trailing[-1].startswith(b"-ERR"), \
                raw.trailing
