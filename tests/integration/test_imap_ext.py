"""IMAP extensions of issue 3's second slice, spoken over raw TLS sockets:
QUOTA (RFC 9208), LIST-EXTENDED (RFC 5258) with SPECIAL-USE (RFC 6154),
CREATE-SPECIAL-USE (RFC 6154 3), MULTIAPPEND (RFC 3502), APPEND keywords
committed with the message, and LITERAL+ (RFC 7888) at the limits.

Each account is its own, so the tests share one server."""

import itertools
import re
import socket

import pytest

PASSWORD = "ext-secret-1"
MAX_MESSAGE = 100 * 1024
_seq = itertools.count(1)


class Raw:
    """A line-level IMAP client on a TLS socket."""

    def __init__(self, srv):
        sock = socket.create_connection(("127.0.0.1", srv.imaps_port), 20)
        self.sock = srv.context().wrap_socket(sock, server_hostname="localhost")
        self.buf = b""
        self.tags = itertools.count(1)
        self.readline()

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def readline(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def until(self, tag):
        lines = []
        while True:
            lines.append(self.readline())
            if lines[-1].startswith(tag + b" "):
                return lines

    def cmd(self, text):
        tag = b"t%d" % next(self.tags)
        self.send(tag + b" " + (text.encode() if isinstance(text, str) else text) + b"\r\n")
        lines = self.until(tag)
        return lines[:-1], lines[-1][len(tag) + 1:]

    def ok(self, text):
        untagged, done = self.cmd(text)
        assert done.startswith(b"OK"), (text, untagged, done)
        return untagged


@pytest.fixture(scope="module")
def srv(yubin_module_factory):
    return yubin_module_factory({"mail": {"max_message_size": str(MAX_MESSAGE)}})


def account(srv, *opts):
    """A new account; returns a logged-in client."""
    addr = "ext%d@example.test" % next(_seq)
    srv.add_user(addr, PASSWORD, *opts)
    c = Raw(srv)
    c.ok('LOGIN "%s" "%s"' % (addr, PASSWORD))
    c.addr = addr
    return c


def message(n, size=2000):
    head = b"From: a@example.org\r\nSubject: ext %d\r\n\r\n" % n
    return head + b"x" * (size - len(head) - 2) + b"\r\n"


def append_plus(c, mailbox, *msgs, extra=b""):
    """APPEND with LITERAL+ literals (one or several: MULTIAPPEND)."""
    tag = b"a%d" % next(c.tags)
    line = tag + b" APPEND " + mailbox.encode()
    for m in msgs:
        line += extra + b" {%d+}\r\n" % len(m) + m
    c.send(line + b"\r\n")
    lines = c.until(tag)
    return lines[:-1], lines[-1][len(tag) + 1:]


def status(c, mailbox, items="MESSAGES UIDNEXT"):
    line = c.ok("STATUS %s (%s)" % (mailbox, items))[0]
    return {k.decode(): int(v) for k, v in re.findall(rb"([A-Z-]+) (\d+)", line)}


def lists(untagged):
    """LIST lines -> {name: (attributes, extended data)}."""
    out = {}
    for line in untagged:
        m = re.match(rb'\* LIST \(([^)]*)\) "/" ("[^"]*"|\S+)(?: (.*))?$', line)
        if m:
            name = m.group(2).strip(b'"').decode()
            out[name] = (set(m.group(1).decode().split()), (m.group(3) or b"").decode())
    return out


# ---- CAPABILITY ------------------------------------------------------------

def test_capabilities(srv):
    """Announced only once working; LITERAL+ alone (RFC 7888 4: it is
    the superset of LITERAL-, a server announces one), no QUOTASET
    (RFC 9208 4.1.3: users cannot set quotas)."""
    c = account(srv)
    caps = c.ok("CAPABILITY")[0].split()
    for cap in (b"QUOTA", b"QUOTA=RES-STORAGE", b"QUOTA=RES-MESSAGE", b"LIST-EXTENDED",
                b"MULTIAPPEND", b"CREATE-SPECIAL-USE", b"LITERAL+", b"SPECIAL-USE"):
        assert cap in caps, cap
    assert b"LITERAL-" not in caps and b"QUOTASET" not in caps
    c.close()


# ---- QUOTA (RFC 9208) --------------------------------------------------------

def test_quota_root_and_usage(srv):
    """4.1.1/4.1.2: the account's root "", STORAGE in 1024-octet units
    (rounded up), MESSAGE as a count, both over every mailbox."""
    c = account(srv, "--quota", "20k", "--quota-messages", "5")
    untagged = c.ok("GETQUOTAROOT INBOX")
    assert untagged == [b'* QUOTAROOT INBOX ""', b'* QUOTA "" (STORAGE 0 20 MESSAGE 0 5)']
    assert append_plus(c, "INBOX", message(1, 1500))[1].startswith(b"OK")
    c.ok("CREATE Work")
    assert append_plus(c, "Work", message(2, 1000))[1].startswith(b"OK")
    untagged = c.ok('GETQUOTA ""')
    assert untagged == [b'* QUOTA "" (STORAGE 3 20 MESSAGE 2 5)']  # 2500 octets
    # a mailbox that does not exist yet has the root it would get
    assert c.ok("GETQUOTAROOT Later")[0] == b'* QUOTAROOT Later ""'
    _, done = c.cmd('GETQUOTA "other"')
    assert done.startswith(b"NO [NONEXISTENT]")
    _, done = c.cmd('SETQUOTA "" (STORAGE 99999)')
    assert done.startswith(b"NO [NOPERM]")
    assert c.ok('GETQUOTA ""') == [b'* QUOTA "" (STORAGE 3 20 MESSAGE 2 5)']
    _, done = c.cmd("GETQUOTA")
    assert done.startswith(b"BAD")
    c.close()


def test_quota_unlimited_and_admin_change(srv):
    """No limit: the root is named but has no QUOTA (RFC 9208 cannot say
    "unlimited"); a limit set by the administrator applies without a new
    login."""
    c = account(srv)
    assert c.ok("GETQUOTAROOT INBOX") == [b'* QUOTAROOT INBOX ""']
    assert c.ok('GETQUOTA ""') == []
    r = srv.run("user", "quota", c.addr, "1k", "1")
    assert r.returncode == 0, r.stderr
    assert c.ok('GETQUOTA ""') == [b'* QUOTA "" (STORAGE 0 1 MESSAGE 0 1)']
    _, done = append_plus(c, "INBOX", message(1, 2000))
    assert done.startswith(b"NO [OVERQUOTA]"), done
    c.close()


def test_overquota_append_copy_move(srv):
    """4.3: APPEND and COPY that would exceed get NO [OVERQUOTA] and
    change nothing; MOVE does not change the usage and works."""
    c = account(srv, "--quota-messages", "3")
    assert append_plus(c, "INBOX", message(1))[1].startswith(b"OK")
    assert append_plus(c, "INBOX", message(2))[1].startswith(b"OK")
    c.ok("CREATE Box")
    c.ok("SELECT INBOX")
    _, done = c.cmd("COPY 1:2 Box")
    assert done.startswith(b"NO [OVERQUOTA]"), done
    assert status(c, "Box")["MESSAGES"] == 0
    c.ok("COPY 1 Box")
    _, done = append_plus(c, "INBOX", message(4))
    assert done.startswith(b"NO [OVERQUOTA]"), done
    _, done = c.cmd("MOVE 1:2 Box")
    assert done.startswith(b"OK"), done
    assert status(c, "Box")["MESSAGES"] == 3
    assert c.ok('GETQUOTA ""') == [b'* QUOTA "" (MESSAGE 3 3)']
    c.close()


def test_status_deleted_storage(srv):
    """4.2: STATUS DELETED and DELETED-STORAGE (octets an EXPUNGE frees)."""
    c = account(srv, "--quota", "1m")
    for n, size in ((1, 1000), (2, 3000), (3, 5000)):
        assert append_plus(c, "INBOX", message(n, size))[1].startswith(b"OK")
    assert status(c, "INBOX", "DELETED DELETED-STORAGE") == {"DELETED": 0,
                                                             "DELETED-STORAGE": 0}
    c.ok("SELECT INBOX")
    c.ok("STORE 2:3 +FLAGS (\\Deleted)")
    assert status(c, "INBOX", "DELETED-STORAGE MESSAGES") == {
        "DELETED-STORAGE": 8000, "MESSAGES": 3}
    untagged = c.ok('LIST "" INBOX RETURN (STATUS (DELETED DELETED-STORAGE))')
    assert any(b"DELETED 2 DELETED-STORAGE 8000" in line for line in untagged), untagged
    c.close()


# ---- LIST-EXTENDED (RFC 5258) -------------------------------------------------

@pytest.fixture(scope="module")
def tree(srv):
    """Fruit, Fruit/Apple, Fruit/Banana, Veg, Deep, Deep/Er, Deep/Er/Est;
    subscribed: INBOX, Fruit/Banana, Fruit/Peach and Ghost/Town (do not
    exist), Veg, Deep/Er/Est."""
    c = account(srv)
    for name in ("Fruit/Apple", "Fruit/Banana", "Veg", "Deep/Er/Est"):
        c.ok("CREATE %s" % name)
    # the store subscribes new mailboxes: start from none
    for line in c.ok('LSUB "" "*"'):
        c.ok("UNSUBSCRIBE %s" % line.split(b" ")[-1].decode())
    for name in ("INBOX", "Fruit/Banana", "Fruit/Peach", "Veg", "Deep/Er/Est", "Ghost/Town"):
        c.ok("SUBSCRIBE %s" % name)
    yield c
    c.close()


def test_list_subscribed(tree):
    """3.1 SUBSCRIBED: exactly the subscribed names, \\Subscribed, a
    name that does not exist as \\NonExistent."""
    got = lists(tree.ok('LIST (SUBSCRIBED) "" "*"'))
    assert set(got) == {"INBOX", "Fruit/Banana", "Fruit/Peach", "Veg", "Deep/Er/Est",
                        "Ghost/Town"}
    assert "\\Subscribed" in got["Fruit/Banana"][0]
    assert {"\\Subscribed", "\\NonExistent"} <= got["Fruit/Peach"][0]
    assert "\\NonExistent" not in got["Veg"][0]
    assert all(ext == "" for _, ext in got.values())
    # without RECURSIVEMATCH a parent that is not subscribed is not listed
    assert set(lists(tree.ok('LIST (SUBSCRIBED) "" "%"'))) == {"INBOX", "Veg"}


def test_list_recursivematch(tree):
    """3.1 RECURSIVEMATCH: parents with a subscribed descendant come
    with CHILDINFO ("SUBSCRIBED"), also when they do not exist."""
    got = lists(tree.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)'))
    assert set(got) == {"INBOX", "Fruit", "Veg", "Deep", "Ghost"}
    assert got["Fruit"] == ({"\\HasChildren"}, '("CHILDINFO" ("SUBSCRIBED"))')
    assert got["Ghost"] == ({"\\NonExistent", "\\HasNoChildren"},
                            '("CHILDINFO" ("SUBSCRIBED"))')
    assert "\\Subscribed" in got["Veg"][0] and got["Veg"][1] == ""
    got = lists(tree.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "Deep/%"'))
    assert got == {"Deep/Er": ({"\\HasChildren"}, '("CHILDINFO" ("SUBSCRIBED"))')}


def test_list_return_subscribed_and_patterns(tree):
    """RETURN (SUBSCRIBED) marks subscribed mailboxes among all of them;
    several patterns in parentheses are matched together."""
    got = lists(tree.ok('LIST "" "*" RETURN (SUBSCRIBED CHILDREN)'))
    assert "Fruit/Peach" not in got
    assert "\\Subscribed" in got["Fruit/Banana"][0]
    assert "\\Subscribed" not in got["Fruit/Apple"][0]
    assert "\\Subscribed" not in lists(tree.ok('LIST "" "Veg"'))["Veg"][0]
    got = lists(tree.ok('LIST "" ("Fruit/*" "Veg" "NoSuch")'))
    assert set(got) == {"Fruit/Apple", "Fruit/Banana", "Veg"}
    got = lists(tree.ok('LIST (REMOTE) "" ("INBOX")'))
    assert set(got) == {"INBOX"}


def test_list_extended_errors(tree):
    """RECURSIVEMATCH alone (or with REMOTE) and unknown options are BAD."""
    for bad in ('LIST (RECURSIVEMATCH) "" "*"', 'LIST (REMOTE RECURSIVEMATCH) "" "*"',
                'LIST (BOGUS) "" "*"', 'LIST "" "*" RETURN (BOGUS)', 'LIST "" ()'):
        assert tree.cmd(bad)[1].startswith(b"BAD"), bad
    assert tree.cmd("NOOP")[1].startswith(b"OK")


def test_lsub_still_works(tree):
    untagged = tree.ok('LSUB "" "*"')
    assert b'* LSUB () "/" Fruit/Peach' in untagged
    assert len(untagged) == 6


# ---- SPECIAL-USE and CREATE-SPECIAL-USE (RFC 6154) ---------------------------

def test_list_special_use_selection(srv):
    """5.1: LIST (SPECIAL-USE) gives only mailboxes with a use."""
    c = account(srv)
    got = lists(c.ok('LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)'))
    assert got == {"Archive": ({"\\HasNoChildren", "\\Archive"}, ""),
                   "Drafts": ({"\\HasNoChildren", "\\Drafts"}, ""),
                   "Junk": ({"\\HasNoChildren", "\\Junk"}, ""),
                   "Sent": ({"\\HasNoChildren", "\\Sent"}, ""),
                   "Trash": ({"\\HasNoChildren", "\\Trash"}, "")}
    c.close()


def test_create_special_use(srv):
    """3: CREATE name (USE (...)) keeps the use; it shows in LIST, moves
    with RENAME and outlives the session."""
    c = account(srv)
    assert c.ok('CREATE "Sent Items" (USE (\\Sent))') == []
    c.ok('CREATE Both (USE (\\Drafts \\junk))')
    got = lists(c.ok('LIST (SPECIAL-USE) "" "*"'))
    assert "\\Sent" in got["Sent Items"][0] and "\\Sent" in got["Sent"][0]
    assert {"\\Drafts", "\\Junk"} <= got["Both"][0]
    got = lists(c.ok('LIST "" "*"'))
    assert "\\Sent" not in got["Both"][0] and "\\Drafts" not in got["Sent Items"][0]
    c.close()


def test_create_special_use_survives(srv):
    """The use moves with RENAME, outlives the session and goes with
    DELETE."""
    c = account(srv)
    c.ok('CREATE Outbox (USE (\\Sent))')
    c.ok('RENAME Outbox "Sent Mail"')
    addr = c.addr
    c.close()
    c = Raw(srv)
    c.ok('LOGIN "%s" "%s"' % (addr, PASSWORD))
    got = lists(c.ok('LIST "" "*"'))
    assert "\\Sent" in got["Sent Mail"][0] and "Outbox" not in got
    c.ok("DELETE \"Sent Mail\"")
    c.ok("CREATE \"Sent Mail\"")
    assert "\\Sent" not in lists(c.ok('LIST "" "Sent Mail"'))["Sent Mail"][0]
    c.close()


def test_create_special_use_refused(srv):
    """3: an attribute that cannot be given is NO [USEATTR] and no
    mailbox is created; an unknown CREATE parameter is BAD."""
    c = account(srv)
    for attr in ("\\All", "\\Flagged", "\\Bogus"):
        _, done = c.cmd("CREATE X (USE (%s))" % attr)
        assert done.startswith(b"NO [USEATTR]"), (attr, done)
    assert c.cmd("CREATE X (COLOR (red))")[1].startswith(b"BAD")
    assert c.cmd("CREATE X (USE Sent)")[1].startswith(b"BAD")
    assert lists(c.ok('LIST "" "X"')) == {}
    c.ok("CREATE X (USE ())")
    assert lists(c.ok('LIST "" "X"'))["X"][0] == {"\\HasNoChildren"}
    c.close()


# ---- MULTIAPPEND (RFC 3502) and APPEND keywords --------------------------------

def test_multiappend(srv):
    """3: several messages, each with its own flags and date, one
    APPENDUID with a UID set (RFC 4315)."""
    c = account(srv)
    c.ok("CREATE Work")
    tag = b"m1"
    m1, m2, m3 = message(1), message(2, 500), message(3, 700)
    c.send(tag + b" APPEND Work (\\Seen $Label1) {%d}\r\n" % len(m1))
    assert c.readline().startswith(b"+")
    c.send(m1 + b' (\\Flagged) "01-Feb-2024 10:00:00 +0000" {%d}\r\n' % len(m2))
    assert c.readline().startswith(b"+")
    c.send(m2 + b" {%d+}\r\n" % len(m3) + m3 + b"\r\n")
    done = c.until(tag)[-1]
    m = re.match(rb"m1 OK \[APPENDUID (\d+) 1:3\]", done)
    assert m, done
    c.ok("SELECT Work")
    flags = b"\n".join(c.ok("FETCH 1:3 (UID FLAGS INTERNALDATE RFC822.SIZE)"))
    assert re.search(rb"1 FETCH \(UID 1 FLAGS \(\\Seen \$Label1\)", flags), flags
    assert b'2 FETCH (UID 2 FLAGS (\\Flagged) INTERNALDATE " 1-Feb-2024 10:00:00 +0000"' \
        in flags
    assert b"3 FETCH (UID 3 FLAGS () " in flags and b"RFC822.SIZE 700" in flags
    c.close()


def test_multiappend_all_or_nothing(srv):
    """3: if one message cannot be appended, none is: over quota at the
    end, and a too large third literal refused before its bytes."""
    c = account(srv, "--quota-messages", "3")
    assert append_plus(c, "INBOX", message(1))[1].startswith(b"OK")
    before = status(c, "INBOX")
    _, done = append_plus(c, "INBOX", message(2), message(3), message(4))
    assert done.startswith(b"NO [OVERQUOTA]"), done
    assert status(c, "INBOX") == before
    # a literal over [mail] max_message_size: NO [TOOBIG] at once, the rest
    # of the line is skipped and the connection stays in step
    big = b"y" * (MAX_MESSAGE + 10)
    _, done = append_plus(c, "INBOX", message(5), big)
    assert done.startswith(b"NO [TOOBIG]"), done
    assert c.cmd("NOOP")[1].startswith(b"OK")
    assert status(c, "INBOX") == before
    # with synchronizing literals the refused one gets no continuation
    m = message(6)
    c.send(b"s1 APPEND INBOX {%d}\r\n" % len(m))
    assert c.readline().startswith(b"+")
    c.send(m + b" {%d}\r\n" % len(big))
    assert c.readline().startswith(b"s1 NO [TOOBIG]")
    assert c.cmd("NOOP")[1].startswith(b"OK")
    assert status(c, "INBOX") == before
    # and two that fit are both kept
    _, done = append_plus(c, "INBOX", message(7), message(8))
    assert re.match(rb"OK \[APPENDUID \d+ 2:3\]", done), done
    c.close()


def test_append_keyword_limit_keeps_nothing(srv):
    """Keywords are committed with the message: the mailbox's 101st
    keyword fails the APPEND with NO [LIMIT] and no message is kept."""
    c = account(srv)
    hundred = " ".join("k%d" % i for i in range(100)).encode()
    _, done = append_plus(c, "INBOX", message(1), extra=b" (" + hundred + b")")
    assert done.startswith(b"OK"), done
    before = status(c, "INBOX")
    _, done = append_plus(c, "INBOX", message(2), extra=b" (k5 one-more)")
    assert done.startswith(b"NO [LIMIT]"), done
    assert status(c, "INBOX") == before
    _, done = append_plus(c, "INBOX", message(3), extra=b" (\\Seen K7 k8)")
    assert done.startswith(b"OK"), done
    c.ok("SELECT INBOX")
    assert b"FLAGS (\\Seen k7 k8)" in c.ok("FETCH 2 FLAGS")[0]
    c.close()


# ---- LITERAL+ at the limits (RFC 7888) -----------------------------------------

def test_nonsync_literals_over_the_limits(srv):
    """A {n+} literal the server will not take is read and dropped, the
    command answered, and the next command runs normally."""
    c = account(srv)
    big = b"z" * (MAX_MESSAGE + 1)
    _, done = append_plus(c, "INBOX", big)
    assert done.startswith(b"NO [TOOBIG]"), done
    assert c.cmd("NOOP")[1].startswith(b"OK")
    # an argument literal beyond [imap] max_line_length (64k): BAD
    long_name = b"n" * (70 * 1024)
    c.send(b"x1 STATUS {%d+}\r\n" % len(long_name) + long_name + b" (MESSAGES)\r\n")
    assert c.readline().startswith(b"x1 BAD")
    assert c.cmd("NOOP")[1].startswith(b"OK")
    assert status(c, "INBOX")["MESSAGES"] == 0
    c.close()
    srv.assert_no_sanitizer()
