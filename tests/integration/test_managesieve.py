"""Issue 5, item 2 and RFC 5804 (ManageSieve): the capability list
before and after STARTTLS (1.8, 2.2), AUTHENTICATE PLAIN with and
without an initial response, literals and cancelling (2.1), PUTSCRIPT
with compile errors (2.6), LISTSCRIPTS (2.7), SETACTIVE (2.8),
GETSCRIPT (2.9), DELETESCRIPT of the active script (2.10), RENAMESCRIPT
(2.11), CHECKSCRIPT (2.12), NOOP (2.13), HAVESPACE and the quotas (1.6,
2.5), UNAUTHENTICATE (2.14.1); and `yubin sieve`.

The client below speaks the protocol raw over Python's socket and ssl,
as Thunderbird's sieve add-on and Roundcube's managesieve plugin do:
STARTTLS, then CAPABILITY, then AUTHENTICATE "PLAIN" with the initial
response as a quoted string or a {n+} literal."""

import base64
import re
import socket
import ssl
import time

import pytest

from yubin_fixture import DEMO, DEMO_PASSWORD

ERROR_SCRIPT = b'require "fileinto";\r\nif true {\r\n  fileinta "x";\r\n}\r\n'
GOOD_SCRIPT = (b'require ["fileinto"];\r\n'
               b'# sort the lists\r\n'
               b'if header :contains "subject" "[list]" {\r\n'
               b'  fileinto "Junk";\r\n'
               b'}\r\n')


class Response:
    def __init__(self, status, code, text, data):
        self.status = status      # "OK", "NO", "BYE"
        self.code = code          # "QUOTA/MAXSIZE", "TAG x" or None
        self.text = text          # bytes or None
        self.data = data          # token lists of the lines before

    def __repr__(self):
        return "Response(%s, %r, %r, %r)" % (self.status, self.code,
                                              self.text, self.data)


class SieveClient:
    """A raw ManageSieve client: tokens are ("atom", b"..."),
    ("string", b"...") or ("(",) / (")",)."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.buf = b""
        self.greeting = self.response()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        assert line.endswith(b"\r"), "line without CRLF: %r" % line
        return line[:-1]

    def _bytes(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def tokens(self):
        """One logical line (literals read in place) as tokens."""
        out = []
        line = self._line()
        i = 0
        while True:
            if i >= len(line):
                return out
            c = line[i:i + 1]
            if c == b" ":
                i += 1
            elif c in (b"(", b")"):
                out.append((c.decode(),))
                i += 1
            elif c == b'"':
                j, val = i + 1, b""
                while line[j:j + 1] != b'"':
                    if line[j:j + 1] == b"\\":
                        j += 1
                    val += line[j:j + 1]
                    j += 1
                out.append(("string", val))
                i = j + 1
            elif c == b"{":
                m = re.match(rb"\{(\d+)\}$", line[i:])
                assert m, "bad literal header in %r" % line
                out.append(("string", self._bytes(int(m.group(1)))))
                line, i = self._line(), 0
            else:
                m = re.match(rb"[^ ()\"{]+", line[i:])
                out.append(("atom", m.group(0)))
                i += len(m.group(0))

    def response(self):
        data = []
        while True:
            toks = self.tokens()
            if toks and toks[0][0] == "atom" and \
                    toks[0][1].upper() in (b"OK", b"NO", b"BYE"):
                break
            data.append(toks)
        status = toks[0][1].upper().decode()
        rest, code, text = toks[1:], None, None
        if rest and rest[0] == ("(",):
            end = rest.index((")",))
            code = " ".join(t[1].decode(errors="replace") for t in rest[1:end])
            rest = rest[end + 1:]
        if rest:
            text = rest[0][1]
        return Response(status, code, text, data)

    def send(self, data):
        self.sock.sendall(data)

    def cmd(self, line, *literals):
        """Sends a command line; each literal becomes a {n+} literal after
        the line's text (the line ends where the first one starts)."""
        if isinstance(line, str):
            line = line.encode()
        data = line
        for lit in literals:
            data += b" {%d+}\r\n" % len(lit) + lit
        self.send(data + b"\r\n")
        return self.response()

    def capabilities(self, resp=None):
        resp = resp or self.cmd("CAPABILITY")
        assert resp.status == "OK", resp
        caps = {}
        for toks in resp.data:
            name = toks[0][1].decode().upper()
            caps[name] = toks[1][1].decode() if len(toks) > 1 else None
        return caps

    def starttls(self, ctx):
        r = self.cmd("STARTTLS")
        assert r.status == "OK", r
        assert self.buf == b"", "plaintext after OK to STARTTLS: %r" % self.buf
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        # RFC 5804 2.2: the capabilities again, unasked
        return self.capabilities(self.response())

    def login(self, user=DEMO, password=DEMO_PASSWORD, literal=False):
        token = base64.b64encode(b"\0" + user.encode() + b"\0" +
                                 password.encode())
        if literal:
            return self.cmd('AUTHENTICATE "PLAIN"', token)
        return self.cmd('AUTHENTICATE "PLAIN" "%s"' % token.decode())


def sieve_tls(srv, login=True):
    c = SieveClient(srv.managesieve_port)
    c.starttls(srv.context())
    if login:
        r = c.login()
        assert r.status == "OK", r
    return c


def quoted(name):
    return '"%s"' % name.replace("\\", "\\\\").replace('"', '\\"')


# ---- RFC 5804 1.8, 2.2: capabilities, STARTTLS ------------------------------

def test_capabilities_before_and_after_starttls(yubin):
    with SieveClient(yubin.managesieve_port) as c:
        before = c.capabilities(c.greeting)
        assert before["IMPLEMENTATION"] == "yubin"
        assert before["VERSION"] == "1.0"
        assert "STARTTLS" in before
        # no mechanism over plaintext: PLAIN would give the password away
        assert before.get("SASL", "") == ""
        sieve = before["SIEVE"].split()
        for ext in ("fileinto", "reject", "vacation", "variables", "envelope"):
            assert ext in sieve, before["SIEVE"]
        assert int(before["MAXREDIRECTS"]) >= 1
        assert c.capabilities() == before
        after = c.starttls(yubin.context())
        assert "STARTTLS" not in after
        assert set(after["SASL"].split()) >= {"PLAIN", "LOGIN"}
        assert after["SIEVE"] == before["SIEVE"]
        # Roundcube asks again after STARTTLS
        assert c.capabilities() == after
        r = c.login()
        assert r.status == "OK", r
        owned = c.capabilities()
        assert owned["OWNER"] == DEMO
        assert "SASL" not in owned and "STARTTLS" not in owned
        assert c.cmd("LOGOUT").status == "OK"


def test_authenticate_refused_before_starttls(yubin):
    with SieveClient(yubin.managesieve_port) as c:
        r = c.login()
        assert r.status == "NO", r
        assert r.code == "ENCRYPT-NEEDED", r
        assert b"STARTTLS" in r.text
        # nothing else works without a login
        r = c.cmd("LISTSCRIPTS")
        assert r.status == "NO", r
        # the session goes on: STARTTLS and a login still work
        c.starttls(yubin.context())
        assert c.login().status == "OK"


def test_second_starttls_and_authenticate_refused(yubin):
    with sieve_tls(yubin) as c:
        assert c.cmd("STARTTLS").status == "NO"
        assert c.login().status == "NO"
        assert c.cmd("NOOP").status == "OK"


# ---- RFC 5804 2.1: AUTHENTICATE ---------------------------------------------

def test_authenticate_plain_initial_response_as_literal(yubin):
    """Thunderbird's sieve add-on sends the initial response as a
    literal."""
    with sieve_tls(yubin, login=False) as c:
        r = c.login(literal=True)
        assert r.status == "OK", r
        assert c.cmd("LISTSCRIPTS").status == "OK"


def test_authenticate_plain_with_continuation(yubin):
    with sieve_tls(yubin, login=False) as c:
        c.send(b'AUTHENTICATE "PLAIN"\r\n')
        toks = c.tokens()
        assert toks == [("string", b"")], toks
        token = base64.b64encode(b"\0" + DEMO.encode() + b"\0" +
                                 DEMO_PASSWORD.encode())
        c.send(b'"' + token + b'"\r\n')
        r = c.response()
        assert r.status == "OK", r


def test_authenticate_login_with_literal_responses(yubin):
    with sieve_tls(yubin, login=False) as c:
        c.send(b'AUTHENTICATE "LOGIN"\r\n')
        assert base64.b64decode(c.tokens()[0][1]).lower().startswith(b"user")
        user = base64.b64encode(DEMO.encode())
        c.send(b"{%d+}\r\n%s\r\n" % (len(user), user))
        assert base64.b64decode(c.tokens()[0][1]).lower().startswith(b"pass")
        c.send(b'"%s"\r\n' % base64.b64encode(DEMO_PASSWORD.encode()))
        assert c.response().status == "OK"


def test_authenticate_cancelled(yubin):
    with sieve_tls(yubin, login=False) as c:
        c.send(b'AUTHENTICATE "PLAIN"\r\n')
        c.tokens()
        c.send(b'"*"\r\n')
        r = c.response()
        assert r.status == "NO", r
        assert c.login().status == "OK"


def test_unknown_mechanism(yubin):
    with sieve_tls(yubin, login=False) as c:
        r = c.cmd('AUTHENTICATE "GSSAPI"')
        assert r.status == "NO", r
        assert c.login().status == "OK"


def test_wrong_password_fails_after_delay(yubin):
    with sieve_tls(yubin, login=False) as c:
        t0 = time.monotonic()
        r = c.login(password="wrong password")
        elapsed = time.monotonic() - t0
        assert r.status == "NO", r
        assert elapsed >= 0.9, "failed login answered after %.2fs, " \
            "failure_delay is 1s" % elapsed
        # a pipelined command waits for the delayed answer too
        t0 = time.monotonic()
        c.send(b'AUTHENTICATE "PLAIN" "%s"\r\nNOOP\r\n' % base64.b64encode(
            b"\0" + DEMO.encode() + b"\0nope"))
        assert c.response().status == "NO"
        assert c.response().status == "OK"
        assert time.monotonic() - t0 >= 0.9
        assert c.login().status == "OK"
    assert "wrong password" not in yubin.log_text()
    assert "event=auth" in yubin.log_text() or "auth" in yubin.log_text()


# ---- RFC 5804 2.6-2.12: the scripts ------------------------------------------

def test_putscript_error_has_line_and_column_and_stores_nothing(yubin):
    with sieve_tls(yubin) as c:
        r = c.cmd('PUTSCRIPT "broken"', ERROR_SCRIPT)
        assert r.status == "NO", r
        assert re.match(rb"line 3: column \d+: ", r.text), r.text
        assert b"fileinta" in r.text
        r = c.cmd("LISTSCRIPTS")
        assert r.status == "OK" and r.data == [], r
        r = c.cmd("CHECKSCRIPT", ERROR_SCRIPT)
        assert r.status == "NO" and r.text.startswith(b"line 3: "), r
        r = c.cmd("CHECKSCRIPT", GOOD_SCRIPT)
        assert r.status == "OK", r
        # an unsupported extension in require is an error too
        r = c.cmd("CHECKSCRIPT", b'require "x-nonsense";\r\nkeep;\r\n')
        assert r.status == "NO", r


def test_script_lifecycle(yubin):
    with sieve_tls(yubin) as c:
        assert c.cmd('PUTSCRIPT "main"', GOOD_SCRIPT).status == "OK"
        assert c.cmd('PUTSCRIPT "other"', b"keep;\r\n").status == "OK"
        # a quoted script works too
        assert c.cmd('PUTSCRIPT "third" "discard;"').status == "OK"
        r = c.cmd("LISTSCRIPTS")
        assert r.status == "OK"
        assert sorted(t[0][1] for t in r.data) == [b"main", b"other", b"third"]
        assert all(len(t) == 1 for t in r.data)          # none active yet

        assert c.cmd('SETACTIVE "main"').status == "OK"
        r = c.cmd("LISTSCRIPTS")
        active = [t[0][1] for t in r.data if len(t) == 2]
        assert active == [b"main"]
        assert all(t[1] == ("atom", b"ACTIVE") for t in r.data if len(t) == 2)

        # GETSCRIPT returns the bytes exactly, as a literal
        r = c.cmd('GETSCRIPT "main"')
        assert r.status == "OK", r
        assert r.data == [[("string", GOOD_SCRIPT)]]

        r = c.cmd('DELETESCRIPT "main"')
        assert r.status == "NO" and r.code == "ACTIVE", r
        assert c.cmd('GETSCRIPT "main"').status == "OK"

        r = c.cmd('RENAMESCRIPT "main" "other"')
        assert r.status == "NO" and r.code == "ALREADYEXISTS", r
        r = c.cmd('RENAMESCRIPT "gone" "new"')
        assert r.status == "NO" and r.code == "NONEXISTENT", r
        # the renamed active script stays active (2.11)
        assert c.cmd('RENAMESCRIPT "main" "filters"').status == "OK"
        r = c.cmd("LISTSCRIPTS")
        assert [t[0][1] for t in r.data if len(t) == 2] == [b"filters"]
        assert c.cmd('GETSCRIPT "main"').code == "NONEXISTENT"

        r = c.cmd('SETACTIVE "nope"')
        assert r.status == "NO" and r.code == "NONEXISTENT", r
        assert c.cmd('SETACTIVE ""').status == "OK"
        assert c.cmd('SETACTIVE ""').status == "OK"      # not an error
        assert all(len(t) == 1 for t in c.cmd("LISTSCRIPTS").data)
        assert c.cmd('DELETESCRIPT "filters"').status == "OK"
        r = c.cmd('DELETESCRIPT "filters"')
        assert r.status == "NO" and r.code == "NONEXISTENT", r

        r = c.cmd('NOOP "sync-42"')
        assert r.status == "OK" and r.code == 'TAG sync-42', r
    root = yubin.maildir() / "sieve"
    assert sorted(p.name for p in root.iterdir()) == ["other.sieve",
                                                     "third.sieve"]


def test_script_names(yubin):
    with sieve_tls(yubin) as c:
        for bad in ("../x", "a/b", ".hidden", "tab\there", "del\x7f", ""):
            r = c.cmd("PUTSCRIPT %s" % quoted(bad), b"keep;")
            assert r.status == "NO", (bad, r)
        # a control character inside a literal name
        r = c.cmd("PUTSCRIPT {3+}\r\na\x01b", b"keep;")
        assert r.status == "NO", r
        name = "日本語 filters \"quoted\""
        r = c.cmd(b"PUTSCRIPT " + quoted(name).encode(), b"keep;")
        assert r.status == "OK", r
        r = c.cmd("LISTSCRIPTS")
        assert [t[0][1] for t in r.data] == [name.encode()]
        # an atom is no script name
        r = c.cmd("GETSCRIPT main")
        assert r.status == "NO", r
    files = list((yubin.maildir() / "sieve").iterdir())
    assert len(files) == 1
    assert not (yubin.maildir() / "x.sieve").exists()


@pytest.mark.yubin_config({"sieve": {"max_scripts": "2", "max_storage": "100"}})
def test_havespace_and_quota(yubin):
    with sieve_tls(yubin) as c:
        r = c.cmd('HAVESPACE "a" 101')
        assert r.status == "NO" and r.code == "QUOTA/MAXSIZE", r
        assert c.cmd('HAVESPACE "a" 100').status == "OK"
        assert c.cmd('PUTSCRIPT "a"', b"keep; # " + b"x" * 50).status == "OK"
        assert c.cmd('PUTSCRIPT "b"', b"keep;").status == "OK"
        r = c.cmd('HAVESPACE "c" 1')
        assert r.status == "NO" and r.code == "QUOTA/MAXSCRIPTS", r
        r = c.cmd('PUTSCRIPT "c"', b"keep;")
        assert r.status == "NO" and r.code == "QUOTA/MAXSCRIPTS", r
        # replacing is no new script, but the bytes still count
        r = c.cmd('PUTSCRIPT "b"', b"keep; # " + b"y" * 50)
        assert r.status == "NO" and r.code == "QUOTA/MAXSIZE", r
        assert c.cmd('GETSCRIPT "b"').data == [[("string", b"keep;")]]
        # a literal over the limit is refused before its bytes are read
        r = c.cmd('PUTSCRIPT "d"', b"#" * 5000)
        assert r.status == "NO" and r.code == "QUOTA/MAXSIZE", r
        assert c.cmd("NOOP").status == "OK"
        assert sorted(t[0][1] for t in c.cmd("LISTSCRIPTS").data) == [b"a", b"b"]


def test_huge_literal_refused_without_reading(yubin):
    """A {n+} larger than any script: NO at once; the session goes on after
    the client sends the announced bytes."""
    with sieve_tls(yubin) as c:
        c.send(b'PUTSCRIPT "big" {4000000000+}\r\n')
        r = c.response()
        assert r.status == "NO" and r.code == "QUOTA/MAXSIZE", r
        c.close()
    with sieve_tls(yubin) as c:
        assert c.cmd("LISTSCRIPTS").data == []


def test_bad_syntax_gets_clear_no(yubin):
    with sieve_tls(yubin) as c:
        for line in (b'PUTSCRIPT "unterminated', b"PUTSCRIPT {x+}",
                     b'GETSCRIPT "a""b"', b"BOGUS", b'HAVESPACE "a" -1',
                     b'PUTSCRIPT "a" "b" "c"', b'"quoted-command"'):
            c.send(line + b"\r\n")
            r = c.response()
            assert r.status == "NO" and r.text, (line, r)
        assert c.cmd("NOOP").status == "OK"


def test_too_many_bad_commands_closes(yubin):
    with SieveClient(yubin.managesieve_port) as c:
        c.send(b"BOGUS\r\n" * 40)
        with pytest.raises((EOFError, ConnectionResetError)):
            while True:
                r = c.response()
                if r.status == "BYE":
                    c._fill()


def test_unauthenticate(yubin):
    with sieve_tls(yubin) as c:
        assert c.cmd("UNAUTHENTICATE").status == "OK"
        assert c.cmd("LISTSCRIPTS").status == "NO"
        assert c.login().status == "OK"
        assert c.cmd("LISTSCRIPTS").status == "OK"


# ---- yubin sieve -------------------------------------------------------------

def test_cli_put_list_get_activate_check(yubin):
    srv = yubin
    script = srv.root / "filters.sieve"
    script.write_bytes(GOOD_SCRIPT)
    broken = srv.root / "broken.sieve"
    broken.write_bytes(ERROR_SCRIPT)

    r = srv.run("sieve", "check", str(broken))
    assert r.returncode == 65, r
    assert re.search(rb"line 3, column \d+: .*fileinta", r.stderr), r.stderr
    assert srv.run("sieve", "check", str(script)).returncode == 0

    r = srv.run("sieve", "put", DEMO, "broken", str(broken))
    assert r.returncode == 65 and b"line 3, column" in r.stderr, r
    r = srv.run("sieve", "put", DEMO, "main", str(script))
    assert r.returncode == 0, r.stderr
    r = srv.run("sieve", "put", DEMO, "stdin", input=b"keep;\n")
    assert r.returncode == 0, r.stderr
    r = srv.run("sieve", "put", DEMO, "../evil", input=b"keep;\n")
    assert r.returncode == 65, r
    r = srv.run("sieve", "put", "nobody@example.test", "x", input=b"keep;\n")
    assert r.returncode == 67, r

    assert srv.run("sieve", "activate", DEMO, "main").returncode == 0
    r = srv.run("sieve", "list", DEMO)
    assert r.stdout == b"main (active)\nstdin\n", r.stdout
    r = srv.run("sieve", "get", DEMO, "main")
    assert r.returncode == 0 and r.stdout == GOOD_SCRIPT
    assert srv.run("sieve", "get", DEMO, "nope").returncode == 1
    assert srv.run("sieve", "delete", DEMO, "main").returncode == 1
    assert srv.run("sieve", "deactivate", DEMO).returncode == 0
    assert srv.run("sieve", "delete", DEMO, "main").returncode == 0
    assert srv.run("sieve", "list", DEMO).stdout == b"stdin\n"

    # the CLI and ManageSieve share one storage
    with sieve_tls(srv) as c:
        assert [t[0][1] for t in c.cmd("LISTSCRIPTS").data] == [b"stdin"]
    r = srv.run("help", "sieve")
    assert r.returncode == 0 and b"yubin sieve put ADDRESS NAME" in r.stdout


# ---- issue 5, item 2: the next delivered message follows the script --------

def test_activated_script_runs_on_next_delivery(yubin):
    with sieve_tls(yubin) as c:
        r = c.cmd('PUTSCRIPT "lists"', ERROR_SCRIPT)
        assert r.status == "NO" and r.text.startswith(b"line 3: column"), r
        assert c.cmd('PUTSCRIPT "lists"', GOOD_SCRIPT).status == "OK"
        assert c.cmd('SETACTIVE "lists"').status == "OK"
    msg = (b"From: a@example.org\r\nTo: demo@example.test\r\n"
           b"Subject: [list] weekly news\r\nMessage-ID: <l1@example.org>\r\n"
           b"\r\nbody\r\n")
    r = yubin.deliver(DEMO, msg)
    assert r.returncode == 0, r.stderr
    junk = yubin.maildir() / ".Junk"
    filed = [p for d in ("new", "cur") if (junk / d).is_dir()
             for p in (junk / d).iterdir()]
    assert len(filed) == 1, "the script did not file the message"
    assert filed[0].read_bytes().endswith(b"\r\nbody\r\n")
    assert yubin.message_files() == []
    # a message the script does not match stays in INBOX
    r = yubin.deliver(DEMO, msg.replace(b"[list] ", b""))
    assert r.returncode == 0, r.stderr
    assert len(yubin.message_files()) == 1
