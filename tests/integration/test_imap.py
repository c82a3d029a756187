"""The IMAP server (issue 3, first slice) with real clients: Python's
imaplib, curl, and a raw socket for what imaplib will not send.

Each test names the RFC section or the user story it checks."""

import imaplib
import re
import socket
import ssl
import subprocess
import time

import pytest

from yubin_fixture import CORPUS, DEMO, DEMO_PASSWORD

imaplib._MAXLINE = 1 << 26


def bare_lf_to_crlf(data: bytes) -> bytes:
    """What IMAP sends for stored bytes: each LF not after CR as CRLF,
    nothing added at the end (RFC 9051 2.2: lines end in CRLF)."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def imap_stls(srv, user=DEMO, password=DEMO_PASSWORD):
    c = imaplib.IMAP4("127.0.0.1", srv.imap_port, timeout=30)
    c.starttls(srv.context())
    if user is not None:
        c.login(user, password)
    return c


def imap_ssl(srv, user=DEMO, password=DEMO_PASSWORD):
    c = imaplib.IMAP4_SSL("127.0.0.1", srv.imaps_port, ssl_context=srv.context(),
                          timeout=30)
    if user is not None:
        c.login(user, password)
    return c


def fetch_parts(data):
    """imaplib's FETCH data -> {seq: {item-name: value}}: literals by the
    name before them, and the simple items of the last line as text."""
    out = {}
    for entry in data:
        if isinstance(entry, tuple):
            head, lit = entry
            m = re.match(rb"(?:(\d+) \()?.*?([A-Z0-9.]+(?:\[[^\]]*\])?(?:<\d+>)?) ~?\{\d+\}$",
                         head)
            seq = int(m.group(1)) if m.group(1) else last
            last = seq
            out.setdefault(seq, {})[m.group(2).decode()] = lit
    return out


class RawImap:
    """A line-level IMAP client on a raw socket."""

    def __init__(self, port, ctx=None, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        if ctx is not None:
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.greeting = self.readline()

    def close(self):
        self.sock.close()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def readline(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def until_tagged(self, tag: bytes):
        lines = []
        while True:
            line = self.readline()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def cmd(self, tag: bytes, rest: bytes):
        self.send(tag + b" " + rest + b"\r\n")
        return self.until_tagged(tag)

    def starttls(self, ctx):
        assert self.cmd(b"s", b"STARTTLS")[-1].startswith(b"s OK")
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")

    def login(self):
        r = self.cmd(b"l", b'LOGIN "%s" "%s"' % (DEMO.encode(), DEMO_PASSWORD.encode()))
        assert r[-1].startswith(b"l OK"), r


@pytest.fixture(scope="module")
def mail_server(yubin_module_factory):
    """One server with a few known messages in INBOX."""
    srv = yubin_module_factory()
    for data in SAMPLES:
        assert srv.deliver(DEMO, data).returncode == 0
    return srv


JAPANESE = ("From: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <yamada@example.jp>\n"
            "To: demo@example.test\n"
            "Subject: =?UTF-8?B?56CU56m25a6k44Gu44GK55+l44KJ44Gb?=\n"
            "Date: Tue, 4 Feb 2025 09:00:00 +0900\n"
            "Message-ID: <jp1@example.jp>\n"
            "\n"
            "本文です。\n").encode()

MULTIPART = (b"From: Alice <alice@example.org>\n"
             b"To: demo@example.test\n"
             b"Subject: nested parts\n"
             b"Date: Mon, 3 Feb 2025 10:00:00 +0000\n"
             b"MIME-Version: 1.0\n"
             b"Content-Type: multipart/mixed; boundary=outer\n"
             b"\n"
             b"--outer\n"
             b"Content-Type: multipart/alternative; boundary=inner\n"
             b"\n"
             b"--inner\n"
             b"Content-Type: text/plain\n"
             b"\n"
             b"plain text\n"
             b"--inner\n"
             b"Content-Type: text/html\n"
             b"\n"
             b"<p>html text</p>\n"
             b"--inner--\n"
             b"--outer\n"
             b"Content-Type: application/octet-stream\n"
             b"Content-Transfer-Encoding: base64\n"
             b"\n"
             b"AAECAwQ=\n"
             b"--outer--\n")

PLAIN = (b"From: bob@example.org\nTo: demo@example.test\nSubject: hello there\n"
         b"Date: Wed, 5 Feb 2025 12:00:00 +0000\n\nJust a short note\nwith two lines\n")

SAMPLES = [JAPANESE, MULTIPART, PLAIN]


# ---- session, TLS, authentication (RFC 9051 6.1, 6.2) -----------------------

def test_greeting_and_logindisabled_before_starttls(mail_server):
    """RFC 9051 6.2.3 / 7.1: without TLS the greeting announces STARTTLS and
    LOGINDISABLED, and LOGIN is refused."""
    raw = RawImap(mail_server.imap_port)
    assert raw.greeting.startswith(b"* OK [CAPABILITY ")
    assert b"STARTTLS" in raw.greeting and b"LOGINDISABLED" in raw.greeting
    assert b"AUTH=PLAIN" not in raw.greeting
    r = raw.cmd(b"a1", b'LOGIN "%s" "%s"' % (DEMO.encode(), DEMO_PASSWORD.encode()))
    assert r[-1].startswith(b"a1 NO [PRIVACYREQUIRED]"), r
    r = raw.cmd(b"a2", b"AUTHENTICATE PLAIN AGRlbW8AcHc=")
    assert r[-1].startswith(b"a2 NO"), r
    raw.close()


def test_login_over_starttls_and_tls(mail_server):
    """Both listeners: STARTTLS (143-style) and implicit TLS (993-style)."""
    for conn in (imap_stls(mail_server), imap_ssl(mail_server)):
        typ, caps = conn.capability()
        assert b"IMAP4rev2" in caps[0] and b"LOGINDISABLED" not in caps[0]
        typ, data = conn.select("INBOX")
        assert typ == "OK" and int(data[0]) == len(SAMPLES)
        conn.logout()


def test_starttls_discards_pipelined_plaintext(mail_server):
    """RFC 9051 11.1: bytes sent after STARTTLS in plaintext are dropped."""
    raw = RawImap(mail_server.imap_port)
    raw.send(b"s STARTTLS\r\nx CAPABILITY\r\n")
    assert raw.until_tagged(b"s")[-1].startswith(b"s OK")
    raw.sock = mail_server.context().wrap_socket(raw.sock, server_hostname="localhost")
    raw.buf = b""
    r = raw.cmd(b"y", b"NOOP")
    assert r == [b"y OK NOOP completed"], r
    raw.close()


def test_authenticate_plain_sasl_ir_and_continuation(mail_server):
    """RFC 4959 SASL-IR and the RFC 9051 6.2.2 continuation exchange."""
    import base64
    token = base64.b64encode(b"\0" + DEMO.encode() + b"\0" + DEMO_PASSWORD.encode())
    raw = RawImap(mail_server.imaps_port, mail_server.context())
    r = raw.cmd(b"a", b"AUTHENTICATE PLAIN " + token)
    assert r[-1].startswith(b"a OK"), r
    raw.close()
    raw = RawImap(mail_server.imaps_port, mail_server.context())
    raw.send(b"b AUTHENTICATE PLAIN\r\n")
    assert raw.readline().startswith(b"+")
    raw.send(token + b"\r\n")
    assert raw.until_tagged(b"b")[-1].startswith(b"b OK")
    raw.send(b"c AUTHENTICATE LOGIN\r\n")
    raw.close()


def test_wrong_password_answered_after_delay(mail_server):
    """A failed login waits auth.failure_delay (1s in tests) and answers
    NO [AUTHENTICATIONFAILED] (RFC 5530)."""
    conn = imaplib.IMAP4_SSL("127.0.0.1", mail_server.imaps_port,
                             ssl_context=mail_server.context(), timeout=30)
    start = time.monotonic()
    with pytest.raises(imaplib.IMAP4.error) as exc:
        conn.login(DEMO, "wrong password")
    assert time.monotonic() - start >= 0.9
    assert "AUTHENTICATIONFAILED" in str(exc.value)
    conn.login(DEMO, DEMO_PASSWORD)
    conn.logout()


def test_capability_noop_id_namespace_enable(mail_server):
    conn = imap_ssl(mail_server)
    typ, caps = conn.capability()
    for cap in (b"UIDPLUS", b"NAMESPACE", b"SPECIAL-USE", b"ESEARCH", b"BINARY",
                b"LIST-STATUS", b"ENABLE", b"ID"):
        assert cap in caps[0].split(), cap
    assert conn.noop()[0] == "OK"
    typ, data = conn.xatom("ID", '("name" "pytest")')
    assert typ == "OK"
    assert conn.untagged_responses.pop("ID")[0].startswith(b'("name" "yubin"')
    typ, data = conn.namespace()
    assert data == [b'(("" "/")) NIL NIL']
    typ, data = conn._simple_command("ENABLE", "IMAP4rev2")
    assert typ == "OK"
    assert conn.untagged_responses.pop("ENABLED") == [b"IMAP4rev2"]
    conn.logout()


# ---- mailboxes (RFC 9051 6.3, RFC 6154) -------------------------------------

def test_list_special_use_and_children(mail_server):
    conn = imap_ssl(mail_server)
    typ, data = conn.list()
    lines = {l.rsplit(b" ", 1)[1]: l for l in data}
    assert b"\\HasNoChildren" in lines[b"INBOX"]
    for name, use in ((b"Sent", b"\\Sent"), (b"Drafts", b"\\Drafts"), (b"Trash", b"\\Trash"),
                      (b"Junk", b"\\Junk"), (b"Archive", b"\\Archive")):
        assert use in lines[name], lines[name]
    typ, data = conn.list('""', '""')
    assert data == [b'(\\Noselect) "/" ""']
    typ, data = conn._simple_command("LIST", "(SPECIAL-USE)", '""', "*")
    got = conn.untagged_responses.pop("LIST")
    assert len(got) == 5 and all(b"\\HasNoChildren \\" in l for l in got)
    conn.logout()


def test_create_hierarchy_utf7_and_status(mail_server):
    """Modified UTF-7 names (RFC 9051 5.1.3), '/' hierarchy, CHILDREN, STATUS
    with SIZE (RFC 8438) and LIST-STATUS (RFC 5819)."""
    conn = imap_ssl(mail_server)
    # "&eDB6dluk-" is the modified UTF-7 form of "研究室"
    assert conn.create("&eDB6dluk-/2025")[0] == "OK"
    typ, data = conn.list('""', "&eDB6dluk-*")
    assert b'(\\HasChildren) "/" &eDB6dluk-' in data
    assert b'(\\HasNoChildren) "/" &eDB6dluk-/2025' in data
    assert conn.create("&eDB6dluk-")[0] == "NO"  # exists
    assert conn.create("bad&name")[0] == "NO"    # invalid modified UTF-7
    typ, data = conn.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)")
    assert typ == "OK" and b"MESSAGES 3" in data[0] and b"SIZE " in data[0]
    typ, data = conn._simple_command("LIST", '""', "INBOX", "RETURN", "(STATUS (MESSAGES))")
    assert conn.untagged_responses.pop("STATUS") == [b"INBOX (MESSAGES 3)"]
    assert conn.select("Nonexistent")[0] == "NO"
    conn.logout()


def test_select_examine_responses(mail_server):
    """RFC 9051 6.3.2: FLAGS, EXISTS, UIDVALIDITY, UIDNEXT, PERMANENTFLAGS,
    READ-WRITE; EXAMINE is READ-ONLY and refuses STORE."""
    conn = imap_ssl(mail_server)
    typ, data = conn.select("inbox")
    assert typ == "OK"
    u = conn.untagged_responses
    assert u["EXISTS"] == [b"3"]
    assert b"\\Seen" in u["FLAGS"][0]
    assert int(u["UIDVALIDITY"][0]) > 0 and int(u["UIDNEXT"][0]) == 4
    assert "READ-WRITE" in u
    typ, data = conn.select("INBOX", readonly=True)
    assert typ == "OK" and "READ-ONLY" in conn.untagged_responses
    typ, data = conn.store("1", "+FLAGS", "(\\Flagged)")
    assert typ == "NO"
    typ, data = conn._simple_command("UNSELECT")
    assert typ == "OK"
    with pytest.raises(imaplib.IMAP4.error, match="No mailbox selected"):
        conn.fetch("1", "FLAGS")
    conn.logout()


# ---- FETCH (RFC 9051 6.4.5, RFC 3516) ----------------------------------------

def test_fetch_structure_and_sections(mail_server):
    conn = imap_ssl(mail_server)
    conn.select("INBOX", readonly=True)
    typ, data = conn.fetch("2", "(UID RFC822.SIZE BODYSTRUCTURE ENVELOPE)")
    line = data[0]
    assert b"UID 2" in line and b"RFC822.SIZE %d" % len(bare_lf_to_crlf(MULTIPART)) in line
    assert b'(("text" "plain"' in line and b'"alternative"' in line and b'"mixed"' in line
    assert b'"nested parts"' in line and b'"alice" "example.org"' in line
    typ, data = conn.fetch("2", "(BODY.PEEK[1.2] BODY.PEEK[1.1.MIME] BODY.PEEK[HEADER.FIELDS (Subject To)] "
                               "BODY.PEEK[TEXT]<0.7> BINARY.PEEK[2] BINARY.SIZE[2])")
    parts = fetch_parts(data)[2]
    assert parts["BODY[1.2]"] == b"<p>html text</p>"
    assert parts["BODY[1.1.MIME]"] == b"Content-Type: text/plain\r\n\r\n"
    assert parts["BODY[HEADER.FIELDS (Subject To)]"] == (
        b"To: demo@example.test\r\nSubject: nested parts\r\n\r\n")
    assert parts["BODY[TEXT]<0>"] == b"--outer"
    assert parts["BINARY[2]"] == b"\x00\x01\x02\x03\x04"
    assert b"BINARY.SIZE[2] 5" in data[-1]
    conn.logout()


def test_fetch_sets_seen_unless_peek(yubin):
    yubin.deliver(DEMO, PLAIN)
    conn = imap_ssl(yubin)
    conn.select("INBOX")
    typ, data = conn.fetch("1", "(BODY.PEEK[] FLAGS)")
    assert b"\\Seen" not in data[-1]
    typ, data = conn.fetch("1", "(BODY[])")
    assert data[0][1] == bare_lf_to_crlf(PLAIN)
    assert b"FLAGS (\\Seen)" in data[-1]
    conn.logout()


def corpus_sample():
    files = sorted(p for p in CORPUS.rglob("*.eml") if p.is_file())
    return files[::max(1, len(files) // 40)][:40]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="no corpus at %s" % CORPUS)
def test_fetch_corpus_messages_exact(yubin):
    """Issue 3 item 2 (first part): BODY[] of delivered corpus messages is
    the stored bytes with LF as CRLF; RFC822.SIZE is its length; the
    BODYSTRUCTURE parses and a second FETCH gives the same bytes."""
    sample = [p.read_bytes() for p in corpus_sample()]
    delivered = [d for d in sample if yubin.deliver(DEMO, d).returncode == 0]
    assert len(delivered) >= 20
    conn = imap_ssl(yubin)
    conn.select("INBOX", readonly=True)
    for round_ in range(2):
        typ, data = conn.fetch("1:*", "(RFC822.SIZE BODY.PEEK[] BODYSTRUCTURE)")
        assert typ == "OK"
        bodies = [e for e in data if isinstance(e, tuple)]
        assert len(bodies) == len(delivered)
        for i, (head, body) in enumerate(bodies):
            want = bare_lf_to_crlf(delivered[i])
            assert body == want, "message %d differs" % (i + 1)
            assert b"RFC822.SIZE %d " % len(want) in head
    conn.logout()


def test_fetch_large_message_streams(yubin):
    """A 30 MB message streams (on_drain) with the exact literal size."""
    body = b"".join(b"line %07d of a long message\n" % i for i in range(1_000_000))
    data = b"Subject: big\n\n" + body
    assert yubin.deliver(DEMO, data).returncode == 0
    conn = imap_ssl(yubin)
    conn.select("INBOX", readonly=True)
    typ, got = conn.fetch("1", "(BODY.PEEK[])")
    assert got[0][1] == bare_lf_to_crlf(data)
    typ, got = conn.fetch("1", "(BODY.PEEK[TEXT]<1000.50>)")
    assert got[0][1] == bare_lf_to_crlf(body)[1000:1050]
    conn.logout()


# ---- STORE, EXPUNGE, sessions agree (RFC 9051 6.4.3, 6.4.6, 7.4.1) -----------

def test_store_seen_by_second_session_and_expunge(yubin):
    for data in SAMPLES:
        yubin.deliver(DEMO, data)
    a = imap_ssl(yubin)
    b = imap_stls(yubin)
    a.select("INBOX")
    b.select("INBOX")
    typ, data = a.store("2", "+FLAGS", "(\\Deleted \\Flagged)")
    assert typ == "OK" and b"\\Deleted" in data[0]
    typ, data = b.noop()
    assert b"2 (FLAGS (\\Flagged \\Deleted))" in b.untagged_responses.pop("FETCH")
    typ, data = a.expunge()
    assert data == [b"2"]
    b.noop()
    assert b.untagged_responses.pop("EXPUNGE") == [b"2"]
    typ, data = b.fetch("1:*", "UID")
    assert [re.search(rb"UID (\d+)", d).group(1) for d in data] == [b"1", b"3"]
    # a new message shows up as EXISTS after NOOP
    yubin.deliver(DEMO, PLAIN)
    b.untagged_responses.pop("EXISTS", None)
    b.noop()
    assert b.untagged_responses.pop("EXISTS") == [b"3"]
    a.logout()
    b.logout()


def test_uid_commands(yubin):
    """UID FETCH / STORE / SEARCH / EXPUNGE (RFC 9051 6.4.9, RFC 4315)."""
    for data in SAMPLES:
        yubin.deliver(DEMO, data)
    c = imap_ssl(yubin)
    c.select("INBOX")
    typ, data = c.uid("FETCH", "2:*", "(FLAGS)")
    assert [re.search(rb"UID (\d+)", d).group(1) for d in data] == [b"2", b"3"]
    typ, data = c.uid("STORE", "1,3", "+FLAGS.SILENT", "(\\Deleted)")
    assert typ == "OK" and data == [None]
    typ, data = c.uid("SEARCH", "DELETED")
    assert data == [b"1 3"]
    typ, data = c.uid("EXPUNGE", "3")
    assert typ == "OK" and c.untagged_responses.pop("EXPUNGE") == [b"3"]
    typ, data = c.uid("SEARCH", "ALL")
    assert data == [b"1 2"]
    typ, data = c.uid("FETCH", "99", "(FLAGS)")
    assert typ == "OK" and data == [None]
    c.logout()


def test_append_then_fetch(yubin):
    """RFC 9051 6.3.12 with APPENDUID (RFC 4315), flags and date."""
    c = imap_ssl(yubin)
    msg = b"From: me@example.test\r\nSubject: appended\r\n\r\nbody\r\n"
    typ, data = c.append("Drafts", "(\\Draft \\Seen)", '"05-Feb-2025 12:30:00 +0900"', msg)
    assert typ == "OK"
    m = re.match(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
    assert m and m.group(2) == b"1"
    c.select("Drafts")
    typ, data = c.fetch("1", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert data[0][1] == msg
    assert b"\\Draft" in data[0][0] and b"\\Seen" in data[0][0]
    assert b'INTERNALDATE " 5-Feb-2025 03:30:00 +0000"' in data[0][0]
    typ, data = c.append("NoSuchBox", None, None, msg)
    assert typ == "NO" and b"TRYCREATE" in data[0]
    c.logout()


# ---- SEARCH (RFC 9051 6.4.4, RFC 4731) ---------------------------------------

def test_search_keys(mail_server):
    c = imap_ssl(mail_server)
    c.select("INBOX", readonly=True)
    c.literal = "研究室".encode()
    typ, data = c.search("UTF-8", "SUBJECT")
    assert data == [b"1"]
    c.literal = "山田".encode()
    typ, data = c.search("UTF-8", "FROM")
    assert data == [b"1"]
    c.literal = "本文".encode()
    typ, data = c.search("UTF-8", "BODY")
    assert data == [b"1"]
    assert c.search(None, "TEXT", '"html TEXT"')[1] == [b"2"]
    assert c.search(None, "SUBJECT", "HELLO")[1] == [b"3"]
    assert c.search(None, "OR", "FROM", "alice", "FROM", "bob")[1] == [b"2 3"]
    assert c.search(None, "NOT", "(FROM alice)", "2:*")[1] == [b"3"]
    assert c.search(None, "SENTSINCE", "5-Feb-2025")[1] == [b"3"]
    assert c.search(None, "SENTBEFORE", "4-Feb-2025")[1] == [b"2"]
    assert c.search(None, "LARGER", "400", "UNSEEN")[1] == [b"2"]
    assert c.search(None, "HEADER", "Message-ID", "jp1@")[1] == [b"1"]
    typ, data = c.search("KOI8-R", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0]
    typ, data = c._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT)", "ALL")
    assert c.untagged_responses.pop("ESEARCH")[0].endswith(b"MIN 1 MAX 3 COUNT 3")
    c.logout()


def test_curl_imaps_listing(mail_server):
    """Issue 3 item 1: curl over imaps:// lists the mailbox and fetches."""
    url = "imaps://127.0.0.1:%d/" % mail_server.imaps_port
    r = subprocess.run(["curl", "-sk", "--max-time", "20", url, "-u",
                        "%s:%s" % (DEMO, DEMO_PASSWORD)], capture_output=True)
    assert r.returncode == 0, r.stderr
    assert b"INBOX" in r.stdout and b"\\Sent" in r.stdout
    r = subprocess.run(["curl", "-sk", "--max-time", "20", url + "INBOX;UID=3", "-u",
                        "%s:%s" % (DEMO, DEMO_PASSWORD)], capture_output=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == bare_lf_to_crlf(PLAIN)


# ---- bad input (issue 3 item 7) ----------------------------------------------

def test_overlong_line_unbalanced_and_bad_sets(mail_server):
    raw = RawImap(mail_server.imaps_port, mail_server.context())
    raw.send(b"a " + b"X" * 20000 + b"\r\n")
    r = raw.until_tagged(b"a")
    assert r[-1].startswith(b"a BAD"), r
    assert raw.cmd(b"b", b"NOOP")[-1] == b"b OK NOOP completed"
    raw.login()
    raw.cmd(b"c", b"SELECT INBOX")
    assert raw.cmd(b"d", b"FETCH 1 (FLAGS")[-1].startswith(b"d BAD")
    assert raw.cmd(b"e", b"FETCH 1 FLAGS)")[-1].startswith(b"e BAD")
    assert raw.cmd(b"f", b"FETCH 0:x FLAGS")[-1].startswith(b"f BAD")
    assert raw.cmd(b"g", b"FETCH 99 FLAGS")[-1].startswith(b"g BAD")
    assert raw.cmd(b"h", b"SEARCH (FROM")[-1].startswith(b"h BAD")
    assert raw.cmd(b"i", b"NOSUCH")[-1].startswith(b"i BAD")
    assert raw.cmd(b"j", b"NOOP")[-1] == b"j OK NOOP completed"
    raw.close()


def test_huge_literal_refused_before_reading(mail_server):
    """A literal beyond the limit gets no continuation: BAD/NO at once."""
    raw = RawImap(mail_server.imaps_port, mail_server.context())
    raw.send(b"a LOGIN {999999999}\r\n")
    r = raw.readline()
    assert r.startswith(b"a BAD [TOOBIG]"), r
    raw.login()
    raw.send(b"b APPEND INBOX {99999999999}\r\n")
    r = raw.readline()
    assert r.startswith(b"b NO [TOOBIG]"), r
    raw.send(b"c APPEND INBOX {5+}\r\nhello\r\n")
    r = raw.until_tagged(b"c")
    assert r[-1].startswith(b"c OK [APPENDUID"), r
    assert raw.cmd(b"d", b"NOOP")[-1] == b"d OK NOOP completed"
    raw.close()


def test_too_many_bad_commands_closes(yubin):
    raw = RawImap(yubin.imap_port)
    with pytest.raises((EOFError, OSError)):
        for i in range(40):
            raw.cmd(b"t%d" % i, b"BOGUS")
    raw.close()
    yubin.assert_no_sanitizer()


# ---- COPY, MOVE and mailbox management (RFC 9051 6.3.5-6.3.9, 6.4.7, 6.4.8) --

def test_copy_move_with_copyuid(yubin):
    for data in SAMPLES:
        yubin.deliver(DEMO, data)
    c = imap_ssl(yubin)
    c.select("INBOX")
    typ, data = c.copy("1:2", "Archive")
    assert typ == "OK" and re.match(rb"\[COPYUID \d+ 1:2 1:2\]", data[0]), data
    typ, data = c.uid("MOVE", "3", "Trash")
    assert typ == "OK"
    assert re.match(rb"\[COPYUID \d+ 3 1\]", c.untagged_responses.pop("OK")[-1])
    assert c.untagged_responses.pop("EXPUNGE") == [b"3"]
    typ, data = c._simple_command("MOVE", "1", "Archive")
    assert typ == "OK" and c.untagged_responses.pop("EXPUNGE") == [b"1"]
    assert c.status("Archive", "(MESSAGES)")[1] == [b"Archive (MESSAGES 3)"]
    assert c.status("Trash", "(MESSAGES)")[1] == [b"Trash (MESSAGES 1)"]
    typ, data = c.copy("1", "NoSuchBox")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    c.select("Trash")
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == bare_lf_to_crlf(PLAIN)
    c.logout()


def test_delete_rename_subscribe(yubin):
    c = imap_ssl(yubin)
    assert c.create("Projects/2025")[0] == "OK"
    assert c.rename("Projects/2025", "Projects/2026")[0] == "OK"
    typ, data = c.list('""', "Projects/*")
    assert data == [b'(\\HasNoChildren) "/" Projects/2026']
    typ, data = c.delete("Projects")
    assert typ == "NO" and b"HASCHILDREN" in data[0]
    assert c.subscribe("Projects/2026")[0] == "OK"
    typ, data = c.lsub('""', "Proj*")
    assert b'() "/" Projects/2026' in data
    assert c.unsubscribe("Projects/2026")[0] == "OK"
    assert b'() "/" Projects/2026' not in c.lsub('""', "Proj*")[1]
    assert c.delete("Projects/2026")[0] == "OK"
    assert c.delete("Projects")[0] == "OK"
    assert c.delete("INBOX")[0] == "NO"
    assert c.list('""', "Projects*")[1] == [None]
    c.logout()


# ---- keywords (RFC 9051 2.3.2, 6.4.6, 7.3.2) ---------------------------------

def flags_of(data):
    """The FLAGS list of a FETCH reply line, as a set of bytes."""
    m = re.search(rb"FLAGS \(([^)]*)\)", data if isinstance(data, bytes) else data[0])
    return set(m.group(1).split())


def test_keywords_store_fetch_select_search(yubin):
    for data in SAMPLES:
        yubin.deliver(DEMO, data)
    a = imap_ssl(yubin)
    b = imap_stls(yubin)
    typ, caps = a.capability()
    assert b" OBJECTID" in caps[0] and b" SAVEDATE" in caps[0]
    a.select("INBOX")
    u = a.untagged_responses
    assert b"\\*" in u["PERMANENTFLAGS"][0]
    b.select("INBOX")
    # a mixed list sets a system flag and keywords at once; a new keyword
    # gives the session an untagged FLAGS first
    typ, data = a.store("1", "+FLAGS", "(\\Flagged $Junk Project-X)")
    assert typ == "OK"
    assert flags_of(data[0]) == {b"\\Flagged", b"$Junk", b"Project-X"}
    assert b"Project-X" in a.untagged_responses.pop("FLAGS")[-1]
    # another session sees it after NOOP, with the new keywords in FLAGS
    b.noop()
    assert b"$Junk" in b.untagged_responses.pop("FLAGS")[-1]
    assert flags_of(b.untagged_responses.pop("FETCH")[-1]) == {b"\\Flagged", b"$Junk",
                                                               b"Project-X"}
    typ, data = b.fetch("1", "(FLAGS)")
    assert flags_of(data[0]) == {b"\\Flagged", b"$Junk", b"Project-X"}
    # the spelling the mailbox first saw is kept; matching ignores case
    a.store("2", "+FLAGS", "(project-x)")
    typ, data = a.fetch("2", "(FLAGS)")
    assert flags_of(data[0]) == {b"Project-X"}
    assert a.search(None, "KEYWORD", "project-X")[1] == [b"1 2"]
    assert a.search(None, "KEYWORD", "$Junk")[1] == [b"1"]
    assert a.search(None, "UNKEYWORD", "$Junk")[1] == [b"2 3"]
    # a new session's SELECT lists them in FLAGS and PERMANENTFLAGS
    c = imap_stls(yubin)
    c.select("INBOX")
    for name in ("FLAGS", "PERMANENTFLAGS"):
        line = c.untagged_responses[name][0]
        assert b"$Junk" in line and b"Project-X" in line and b"\\Seen" in line, line
    assert b"\\*" in c.untagged_responses["PERMANENTFLAGS"][0]
    c.logout()
    # removing, and FLAGS replacing keywords too
    typ, data = a.store("1", "-FLAGS", "($Junk)")
    assert flags_of(data[0]) == {b"\\Flagged", b"Project-X"}
    typ, data = a.uid("STORE", "2", "FLAGS", "(\\Seen)")
    assert flags_of(data[0]) == {b"\\Seen"}
    assert a.search(None, "KEYWORD", "$Junk")[1] == [b""]
    assert a.search(None, "KEYWORD", "Project-X")[1] == [b"1"]
    # an invalid keyword is BAD and changes nothing
    for bad in ("(a\\b)", "(" + "k" * 101 + ")"):
        with pytest.raises(imaplib.IMAP4.error, match="BAD"):
            a.store("1", "+FLAGS", bad)
    typ, data = a.fetch("1", "(FLAGS)")
    assert flags_of(data[0]) == {b"\\Flagged", b"Project-X"}
    a.logout()
    b.logout()


def test_keyword_limit_is_no_limit(yubin):
    yubin.deliver(DEMO, PLAIN)
    c = imap_ssl(yubin)
    c.select("INBOX")
    for i in range(0, 100, 20):
        words = " ".join("kw%d" % k for k in range(i, i + 20))
        assert c.store("1", "+FLAGS.SILENT", "(%s)" % words)[0] == "OK"
    typ, data = c.store("1", "+FLAGS", "(one-too-many)")
    assert typ == "NO" and b"[LIMIT]" in data[0]
    c.logout()


def test_append_with_keywords(yubin):
    c = imap_ssl(yubin)
    msg = b"From: me@example.test\r\nSubject: kw\r\n\r\nbody\r\n"
    assert c.append("Drafts", "(\\Draft $Forwarded Urgent)", None, msg)[0] == "OK"
    c.select("Drafts")
    assert b"Urgent" in c.untagged_responses["FLAGS"][0]
    typ, data = c.fetch("1", "(FLAGS)")
    assert flags_of(data[0]) == {b"\\Draft", b"$Forwarded", b"Urgent"}
    assert c.search(None, "KEYWORD", "urgent")[1] == [b"1"]
    c.logout()


# ---- OBJECTID (RFC 8474) and SAVEDATE (RFC 8514) ----------------------------

def test_objectid_stable_and_kept_by_copy(yubin):
    for data in SAMPLES:
        yubin.deliver(DEMO, data)
    a = imap_ssl(yubin)
    typ, data = a.create("Lab")
    assert typ == "OK"
    created = re.search(rb"\[MAILBOXID \((M[0-9a-f]{24})\)\]", data[0]).group(1)
    a.select("INBOX")
    inbox_id = re.search(rb"(M[0-9a-f]{24})", a.untagged_responses["MAILBOXID"][0]).group(1)
    typ, data = a.fetch("1:3", "(EMAILID THREADID)")
    ids = [re.search(rb"EMAILID \((E[0-9a-f]{24})\)", d).group(1) for d in data]
    assert len(set(ids)) == 3 and all(b"THREADID NIL" in d for d in data)
    assert a.copy("2", "Lab")[0] == "OK"
    a.logout()
    # another session: the same ids; the copy keeps its EMAILID
    b = imap_stls(yubin)
    typ, data = b.status("Lab", "(MAILBOXID MESSAGES)")
    assert data[0] == b"Lab (MESSAGES 1 MAILBOXID (%s))" % created
    b.select("INBOX", readonly=True)
    assert inbox_id in b.untagged_responses["MAILBOXID"][0]
    typ, data = b.fetch("1:3", "(EMAILID)")
    assert [re.search(rb"EMAILID \((E[0-9a-f]{24})\)", d).group(1) for d in data] == ids
    assert b.search(None, "EMAILID", ids[2])[1] == [b"3"]
    assert b.search(None, "THREADID", "T0123")[1] == [b""]
    b.select("Lab")
    assert created in b.untagged_responses["MAILBOXID"][0]
    typ, data = b.fetch("1", "(EMAILID)")
    assert re.search(rb"EMAILID \((E[0-9a-f]{24})\)", data[0]).group(1) == ids[1]
    b.logout()


def test_savedate_fetch_and_search(yubin):
    yubin.deliver(DEMO, PLAIN)
    c = imap_ssl(yubin)
    c.select("INBOX")
    typ, data = c.fetch("1", "(SAVEDATE INTERNALDATE)")
    m = re.search(rb'SAVEDATE "([^"]+)"', data[0])
    assert m, data
    saved = time.strptime(m.group(1).decode().strip(), "%d-%b-%Y %H:%M:%S +0000")
    assert abs(time.mktime(saved) - time.mktime(time.gmtime())) < 120
    today = time.strftime("%d-%b-%Y", time.gmtime())
    assert c.search(None, "SAVEDON", today)[1] == [b"1"]
    assert c.search(None, "SAVEDSINCE", today)[1] == [b"1"]
    assert c.search(None, "SAVEDBEFORE", today)[1] == [b""]
    assert c.search(None, "SAVEDATESUPPORTED")[1] == [b"1"]
    c.logout()
