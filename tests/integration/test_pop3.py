"""Issue 2, item 3 and the POP3 RFCs: RFC 1939 (commands and states),
RFC 2449 (CAPA, RESP-CODES, LOGIN-DELAY), RFC 2595 (STLS), RFC 5034 (AUTH,
SASL initial response), RFC 3206 ([AUTH], [SYS/TEMP]), RFC 4616 (PLAIN)."""

import base64
import hashlib
import poplib
import socket
import threading
import time

import pytest

from yubin_fixture import (DEMO, DEMO_PASSWORD, crlf_normalise, fast_bin,
                           proc_status_kb)


def message(n, body_lines=5, extra=b""):
    head = (b"From: sender%d@example.org\r\nTo: demo@example.test\r\n"
            b"Subject: message %d\r\nMessage-ID: <m%d@example.org>\r\n" % (
                n, n, n)) + extra + b"\r\n"
    body = b"".join(b"line %d of message %d\r\n" % (i, n)
                    for i in range(1, body_lines + 1))
    return head + body


def deliver_n(srv, count, start=1):
    msgs = []
    for n in range(start, start + count):
        data = message(n)
        r = srv.deliver(DEMO, data)
        assert r.returncode == 0, r.stderr
        msgs.append(data)
    return msgs


def capa_lines(raw):
    r = raw.cmd("CAPA")
    assert r.startswith(b"+OK"), r
    return [l.decode() for l in raw.read_multi()]


def capa_names(lines):
    return {l.split()[0].upper() for l in lines if l.strip()}


def err_text(exc):
    return exc.value.args[0] if hasattr(exc, "value") else exc.args[0]


# ---- RFC 2595: no authentication before STLS --------------------------------

def test_user_pass_before_stls_refused_with_clear_text(yubin):
    with yubin.raw() as raw:
        assert raw.greeting.startswith(b"+OK"), raw.greeting
        r = raw.cmd("USER " + DEMO)
        if r.startswith(b"+OK"):        # refusing at PASS is allowed too
            r = raw.cmd("PASS " + DEMO_PASSWORD)
        assert r.startswith(b"-ERR"), r
        # a clear text, not a bare -ERR
        assert len(r) > len(b"-ERR ") + 8, r
        assert any(w in r.lower() for w in (b"tls", b"plaintext",
                                            b"encrypt", b"stls")), r
        # and it did not log in: a transaction command is refused
        assert raw.cmd("STAT").startswith(b"-ERR")


def test_auth_before_stls_refused(yubin):
    token = base64.b64encode(b"\0" + DEMO.encode() + b"\0"
                             + DEMO_PASSWORD.encode())
    with yubin.raw() as raw:
        r = raw.cmd(b"AUTH PLAIN " + token)
        assert r.startswith(b"-ERR"), r
        assert raw.cmd("STAT").startswith(b"-ERR")


def test_stls_then_login_works(yubin):
    deliver_n(yubin, 2)
    pop = yubin.pop3_stls()
    assert pop.sock.version() in ("TLSv1.2", "TLSv1.3")
    assert pop.stat()[0] == 2
    pop.quit()


def test_implicit_tls_login_works(yubin):
    deliver_n(yubin, 1)
    pop = yubin.pop3_ssl()
    assert pop.stat()[0] == 1
    pop.quit()


# ---- RFC 3206 [AUTH] and the failure delay ----------------------------------

def test_wrong_password_gets_auth_code_after_delay(yubin):
    pop = yubin.pop3_stls(user=None)
    pop.user(DEMO)
    t0 = time.monotonic()
    with pytest.raises(poplib.error_proto) as e:
        pop.pass_("wrong password")
    elapsed = time.monotonic() - t0
    assert err_text(e).startswith(b"-ERR [AUTH]"), err_text(e)
    assert elapsed >= 0.9, "failed login answered after %.2fs, " \
        "failure_delay is 1s" % elapsed
    assert yubin.log_text().find("wrong password") < 0, \
        "the log holds the password"
    pop.close()


def test_unknown_user_gets_auth_error_after_delay(yubin):
    pop = yubin.pop3_stls(user=None)
    t0 = time.monotonic()
    with pytest.raises(poplib.error_proto) as e:
        pop.user("nobody@example.test")     # may refuse here or at PASS
        pop.pass_(DEMO_PASSWORD)
    assert err_text(e).startswith(b"-ERR [AUTH]"), err_text(e)
    assert time.monotonic() - t0 >= 0.9
    pop.close()


# ---- RFC 5034 AUTH ------------------------------------------------------------

def _tls_raw(srv):
    raw = srv.raw()
    raw.starttls(srv.context())
    return raw


def test_auth_plain_with_initial_response(yubin):
    token = base64.b64encode(b"\0" + DEMO.encode() + b"\0"
                             + DEMO_PASSWORD.encode())
    with _tls_raw(yubin) as raw:
        r = raw.cmd(b"AUTH PLAIN " + token)
        assert r.startswith(b"+OK"), r
        assert raw.cmd("STAT").startswith(b"+OK")
        assert raw.cmd("QUIT").startswith(b"+OK")


def test_auth_plain_without_initial_response(yubin):
    token = base64.b64encode(b"\0" + DEMO.encode() + b"\0"
                             + DEMO_PASSWORD.encode())
    with _tls_raw(yubin) as raw:
        r = raw.cmd("AUTH PLAIN")
        assert r.startswith(b"+"), r
        assert not r.startswith(b"+OK"), r
        r = raw.cmd(token)
        assert r.startswith(b"+OK"), r
        assert raw.cmd("QUIT").startswith(b"+OK")


def test_auth_login(yubin):
    with _tls_raw(yubin) as raw:
        r = raw.cmd("AUTH LOGIN")
        assert r.startswith(b"+ "), r
        r = raw.cmd(base64.b64encode(DEMO.encode()))
        assert r.startswith(b"+ "), r
        r = raw.cmd(base64.b64encode(DEMO_PASSWORD.encode()))
        assert r.startswith(b"+OK"), r
        assert raw.cmd("STAT").startswith(b"+OK")
        assert raw.cmd("QUIT").startswith(b"+OK")


def test_auth_plain_wrong_password_and_cancel(yubin):
    token = base64.b64encode(b"\0" + DEMO.encode() + b"\0wrong")
    with _tls_raw(yubin) as raw:
        r = raw.cmd(b"AUTH PLAIN " + token)
        assert r.startswith(b"-ERR [AUTH]"), r
        # RFC 5034 section 4: "*" cancels the exchange
        r = raw.cmd("AUTH LOGIN")
        assert r.startswith(b"+ "), r
        assert raw.cmd("*").startswith(b"-ERR"), "cancel not refused"
        # bad base64 is an error, not a crash
        assert raw.cmd("AUTH PLAIN %%%notbase64").startswith(b"-ERR")
        assert raw.cmd("AUTH NOSUCHMECH").startswith(b"-ERR")
        # and the session still logs in
        raw.login()


# ---- RFC 2449 CAPA ----------------------------------------------------------

COMMON_CAPS = {"RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "UIDL", "TOP"}


def test_capa_before_and_after_stls(yubin):
    with yubin.raw() as raw:
        before = capa_lines(raw)
        names = capa_names(before)
        assert COMMON_CAPS <= names, before
        assert "STLS" in names, before
        assert "USER" not in names, "USER offered before TLS: %s" % before
        raw.starttls(yubin.context())
        after = capa_lines(raw)
        names = capa_names(after)
        assert COMMON_CAPS <= names, after
        assert "STLS" not in names, after
        assert "USER" in names, after
        sasl = [l.upper().split() for l in after if l.upper().startswith("SASL")]
        assert sasl and {"PLAIN", "LOGIN"} <= set(sasl[0][1:]), after
        # STLS a second time is refused
        assert raw.cmd("STLS").startswith(b"-ERR")


def test_capa_on_implicit_tls(yubin):
    with yubin.raw(tls=True) as raw:
        names = capa_names(capa_lines(raw))
        assert COMMON_CAPS | {"USER", "SASL"} <= names
        assert "STLS" not in names
        assert raw.cmd("STLS").startswith(b"-ERR")


# ---- RFC 1939 DELE / RSET / QUIT / UPDATE -----------------------------------

def test_dele_quit_removes(yubin):
    msgs = deliver_n(yubin, 3)
    files_before = yubin.message_files()
    assert len(files_before) == 3
    pop = yubin.pop3_stls()
    assert pop.dele(2).startswith(b"+OK")
    # RFC 1939: a deleted message may not be referenced any more
    with pytest.raises(poplib.error_proto):
        pop.retr(2)
    with pytest.raises(poplib.error_proto):
        pop.dele(2)
    assert pop.stat()[0] == 2
    assert [l.split()[0] for l in pop.list()[1]] == [b"1", b"3"]
    # nothing is removed before QUIT
    assert len(yubin.message_files()) == 3
    assert pop.quit().startswith(b"+OK")
    files_after = yubin.message_files()
    assert len(files_after) == 2
    contents = [p.read_bytes() for p in files_after]
    assert msgs[1] not in contents and msgs[0] in contents and msgs[2] in contents
    pop = yubin.login_retry(yubin.pop3_stls)
    assert pop.stat()[0] == 2
    got = [b"".join(l + b"\r\n" for l in pop.retr(i)[1]) for i in (1, 2)]
    assert got == [msgs[0], msgs[2]]
    pop.quit()


def test_dele_rset_restores(yubin):
    deliver_n(yubin, 3)
    pop = yubin.pop3_stls()
    pop.dele(1)
    pop.dele(3)
    assert pop.stat()[0] == 1
    assert pop.rset().startswith(b"+OK")
    assert pop.stat()[0] == 3
    assert len(pop.list()[1]) == 3
    pop.retr(1)
    pop.quit()
    assert len(yubin.message_files()) == 3
    pop = yubin.login_retry(yubin.pop3_stls)
    assert pop.stat()[0] == 3
    pop.quit()


def test_dele_without_quit_removes_nothing(yubin):
    deliver_n(yubin, 3)
    pop = yubin.pop3_stls()
    pop.dele(1)
    pop.dele(2)
    # drop the connection without QUIT: no UPDATE state
    pop.sock.shutdown(socket.SHUT_RDWR)
    pop.close()
    time.sleep(0.3)
    pop = yubin.login_retry(yubin.pop3_stls)
    assert pop.stat()[0] == 3
    pop.quit()
    assert len(yubin.message_files()) == 3


def test_stat_list_sizes_are_crlf_octets(yubin):
    bare_lf = b"From: a@example.org\nSubject: lf\n\nbody one\nbody two\n"
    no_final = b"From: a@example.org\r\nSubject: x\r\n\r\nno final newline"
    dotted = b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nend\r\n"
    for m in (bare_lf, no_final, dotted):
        assert yubin.deliver(DEMO, m).returncode == 0
    pop = yubin.pop3_stls()
    count, total = pop.stat()
    want = [crlf_normalise(m) for m in (bare_lf, no_final, dotted)]
    got = [b"".join(l + b"\r\n" for l in pop.retr(i)[1]) for i in (1, 2, 3)]
    sizes = [int(l.split()[1]) for l in pop.list()[1]]
    # bare LF, no final newline, dot-stuffing: LIST = octets RETR sends
    assert sizes == [len(g) for g in got], "LIST sizes vs RETR octets"
    assert count == 3 and total == sum(len(w) for w in want)
    assert sizes == [len(w) for w in want]
    assert pop.list(2).split()[2] == str(len(want[1])).encode()
    for i, w in enumerate(want, 1):
        assert b"".join(l + b"\r\n" for l in pop.retr(i)[1]) == w
    pop.quit()


# ---- UIDL (RFC 1939 section 7) -----------------------------------------------

def _uidls(pop):
    out = {}
    for entry in pop.uidl()[1]:
        num, uid = entry.split()
        out[int(num)] = uid
    return out


def _uidl_by_content(pop):
    """UIDL -> sha256 of the message, to show UIDLs stay with their bytes."""
    out = {}
    for num, uid in _uidls(pop).items():
        out[uid] = hashlib.sha256(b"\n".join(pop.retr(num)[1])).hexdigest()
    return out


def test_uidl_format_and_single(yubin):
    deliver_n(yubin, 3)
    pop = yubin.pop3_stls()
    uidls = _uidls(pop)
    assert len(set(uidls.values())) == 3
    for uid in uidls.values():
        # RFC 1939: 1 to 70 characters in 0x21..0x7E
        assert 1 <= len(uid) <= 70 and all(0x21 <= c <= 0x7E for c in uid)
    one = pop.uidl(2).split()
    assert one[0] == b"+OK" and one[2] == uidls[2]
    pop.quit()


def test_uidl_stable_across_sessions_restart_and_rebuild(yubin):
    deliver_n(yubin, 5)
    pop = yubin.pop3_stls()
    first = _uidl_by_content(pop)
    pop.quit()
    pop = yubin.login_retry(yubin.pop3_ssl)
    assert _uidl_by_content(pop) == first, "UIDL changed between sessions"
    pop.quit()
    yubin.restart()
    pop = yubin.pop3_stls()
    assert _uidl_by_content(pop) == first, "UIDL changed across a restart"
    pop.quit()
    r = yubin.run("index", "rebuild", DEMO)
    assert r.returncode == 0, r.stderr
    pop = yubin.login_retry(yubin.pop3_stls)
    assert _uidl_by_content(pop) == first, "UIDL changed across index rebuild"
    pop.quit()


def test_uidl_survives_rebuild_of_a_lost_index(yubin):
    deliver_n(yubin, 4)
    pop = yubin.pop3_stls()
    pop.dele(2)             # a gap, so numbering alone cannot hide a change
    pop.quit()
    pop = yubin.login_retry(yubin.pop3_stls)
    first = _uidl_by_content(pop)
    pop.quit()
    assert yubin.stop() == 0
    root = yubin.maildir()
    for name in ("index.db", "index.db-wal", "index.db-shm"):
        if (root / name).exists():
            (root / name).unlink()
    r = yubin.run("index", "rebuild", DEMO)
    assert r.returncode == 0, r.stderr
    yubin.start()
    pop = yubin.pop3_stls()
    assert _uidl_by_content(pop) == first, \
        "UIDL changed after rebuilding a lost index"
    pop.quit()


# ---- one session per mailbox, snapshot semantics -----------------------------

def test_second_session_gets_in_use(yubin):
    deliver_n(yubin, 1)
    first = yubin.pop3_stls()
    second = yubin.pop3_ssl(user=None)
    second.user(DEMO)
    with pytest.raises(poplib.error_proto) as e:
        second.pass_(DEMO_PASSWORD)
    assert err_text(e).startswith(b"-ERR [IN-USE]"), err_text(e)
    second.close()
    assert first.noop().startswith(b"+OK")
    first.quit()
    third = yubin.login_retry(yubin.pop3_ssl)
    third.quit()


def test_message_delivered_during_session_waits_for_next(yubin):
    deliver_n(yubin, 2)
    pop = yubin.pop3_stls()
    assert pop.stat()[0] == 2
    assert yubin.deliver(DEMO, message(99)).returncode == 0
    assert pop.stat()[0] == 2
    assert len(pop.list()[1]) == 2
    assert len(pop.uidl()[1]) == 2
    with pytest.raises(poplib.error_proto):
        pop.retr(3)
    pop.quit()
    pop = yubin.login_retry(yubin.pop3_stls)
    assert pop.stat()[0] == 3
    pop.quit()


# ---- TOP (RFC 1939 section 7) ------------------------------------------------

def test_top(yubin):
    data = message(1, body_lines=5, extra=b"X-Folded: a\r\n\tb\r\n")
    assert yubin.deliver(DEMO, data).returncode == 0
    head, body = data.split(b"\r\n\r\n", 1)
    pop = yubin.pop3_stls()
    lines = pop.top(1, 0)[1]
    assert lines == head.split(b"\r\n") + [b""]
    lines = pop.top(1, 2)[1]
    assert lines == head.split(b"\r\n") + [b"", b"line 1 of message 1",
                                           b"line 2 of message 1"]
    lines = pop.top(1, 1000)[1]
    assert b"".join(l + b"\r\n" for l in lines) == data
    with pytest.raises(poplib.error_proto):
        pop.top(2, 0)
    pop.quit()


# ---- RFC 2449 LOGIN-DELAY ----------------------------------------------------

@pytest.mark.yubin_config({"pop3": {"login_delay": "10m"}})
def test_login_delay_announced_and_enforced(yubin):
    with yubin.raw() as raw:
        lines = capa_lines(raw)
        raw.starttls(yubin.context())
        lines += capa_lines(raw)
        raw.login()
        lines += capa_lines(raw)
        assert raw.cmd("QUIT").startswith(b"+OK")
    assert any(l.split() == ["LOGIN-DELAY", "600"] for l in lines), lines
    pop = yubin.pop3_stls(user=None)
    pop.user(DEMO)
    with pytest.raises(poplib.error_proto) as e:
        pop.pass_(DEMO_PASSWORD)
    assert err_text(e).startswith(b"-ERR [LOGIN-DELAY]"), err_text(e)
    pop.close()


# ---- RFC 2595 section 4 / DESIGN.md: STLS throws away pipelined plaintext ---

def test_stls_discards_pipelined_plaintext(yubin):
    with yubin.raw() as raw:
        raw.send(b"STLS\r\nCAPA\r\n")
        r = raw.readline()
        assert r.startswith(b"+OK"), r
        leaked = raw.nothing_within(0.5)
        assert leaked == b"", "server answered injected plaintext: %r" % leaked
        raw.sock = yubin.context().wrap_socket(raw.sock,
                                                server_hostname="localhost")
        leaked = raw.nothing_within(1.0)
        assert leaked == b"", "server answered the injected CAPA inside TLS: " \
            "%r" % leaked
        r = raw.cmd("NOOP")     # not logged in: refused, but answered once
        assert r.startswith(b"-ERR") or r.startswith(b"+OK"), r
        assert raw.nothing_within(0.5) == b""
        lines = capa_lines(raw)
        assert "USER" in capa_names(lines)
        raw.login()


def test_pipelining(yubin):
    msgs = deliver_n(yubin, 3)
    with yubin.raw(tls=True) as raw:
        raw.send(("USER %s\r\nPASS %s\r\nSTAT\r\nRETR 1\r\nRETR 3\r\n"
                  "NOOP\r\n" % (DEMO, DEMO_PASSWORD)).encode())
        assert raw.readline().startswith(b"+OK")
        assert raw.readline().startswith(b"+OK")
        assert raw.readline().split()[:2] == [b"+OK", b"3"]
        for i in (0, 2):
            assert raw.readline().startswith(b"+OK")
            got = b"".join(l + b"\r\n" for l in raw.read_multi())
            assert got == msgs[i]
        assert raw.readline().startswith(b"+OK")
        assert raw.cmd("QUIT").startswith(b"+OK")


# ---- RETR latency -----------------------------------------------------------

def test_retr_of_small_message_is_not_delayed(yubin):
    """A small RETR answers as fast as TOP does: no timer or Nagle/delayed-ACK
    stall between the status line and the message (PIPELINING clients and
    the benchmark depend on it)."""
    for size in (3000, 16000):
        data = b"Subject: %d\r\n\r\n" % size + (b"x" * 98 + b"\r\n") * (
            size // 100)
        assert yubin.deliver(DEMO, data).returncode == 0
    pop = yubin.pop3_stls()
    timings = {}
    for name, fn in (("TOP", lambda: pop.top(2, 0)),
                     ("RETR 3 KB", lambda: pop.retr(1)),
                     ("RETR 16 KB", lambda: pop.retr(2))):
        samples = []
        for _ in range(15):
            t0 = time.monotonic()
            fn()
            samples.append(time.monotonic() - t0)
        timings[name] = sorted(samples)[len(samples) // 2] * 1000
    pop.quit()
    slow = {k: round(v, 1) for k, v in timings.items() if v >= 20}
    assert not slow, "median answer times (ms): %s" % {
        k: round(v, 1) for k, v in timings.items()}


# ---- RETR of a large message streams ------------------------------------------

@pytest.mark.slow
def test_large_retr_streams_without_growing_memory(yubin_factory):
    # the build without sanitizers when there is one: ASan's quarantine keeps
    # freed buffers resident, which would look like growth
    yubin = yubin_factory({"mail": {"max_message_size": "200M", "quota": "0"}},
                          binary=fast_bin())
    size = 50 << 20
    line = b"." + b"x" * 73 + b"\r\n"   # every line dot-stuffed on the wire
    data = (b"Subject: big\r\n\r\n" + line * (size // len(line)))
    r = yubin.deliver(DEMO, data)
    assert r.returncode == 0, r.stderr
    workers = yubin.wait_workers(2)

    def rss():
        return sum(proc_status_kb(p, "RssAnon") for p in workers)

    with yubin.raw(tls=True, timeout=60) as raw:
        raw.login()
        time.sleep(0.3)
        base = rss()
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss())
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            raw.send(b"RETR 1\r\n")
            status = raw.readline()
            assert status.startswith(b"+OK"), status
            # read a little, then stall: a server without back-pressure
            # would now pull the whole message into memory
            got = bytearray(raw.buf)
            raw.buf = b""
            while len(got) < (1 << 20):
                got += raw.sock.recv(65536)
            time.sleep(2)
            while not got.endswith(b"\r\n.\r\n"):
                chunk = raw.sock.recv(1 << 20)
                assert chunk, "connection closed during RETR"
                got += chunk
        finally:
            stop.set()
            sampler.join()
        growth_mb = (peak[0] - base) / 1024
        body = bytes(got[:-3]).replace(b"\r\n..", b"\r\n.")
        if body.startswith(b".."):
            body = body[1:]
        assert body == data, "50 MB message changed on the way"
        assert growth_mb < 30, ("worker anonymous memory grew by %.1f MB "
                                "during a 50 MB RETR" % growth_mb)
        assert raw.cmd("QUIT").startswith(b"+OK")
