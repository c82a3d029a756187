"""SORT and THREAD (RFC 5256) and SORT=DISPLAY (RFC 5957) with Python's
imaplib and a raw socket: exact answers on a crafted message set, and on
the shared corpus every message exactly once in every SORT and THREAD."""

import imaplib
import re

import pytest

from yubin_fixture import CORPUS, DEMO, DEMO_PASSWORD

imaplib._MAXLINE = 1 << 26

# (internal date, message); the comments give what the keys see.
CRAFTED = [
    # 1: base subject PROJECT PLAN, sent Feb 3 10:00, from zed, display
    #    "Aaron Zulu", to alice, cc carol
    ("05-Feb-2025 10:00:00 +0000",
     "From: \"Aaron Zulu\" <zed@example.org>\nTo: alice@example.org\n"
     "Cc: carol@example.org\nSubject: Project plan\n"
     "Date: Mon, 3 Feb 2025 10:00:00 +0000\nMessage-ID: <p1@example.org>\n\nplan\n"),
    # 2: a reply to 1
    ("01-Feb-2025 10:00:00 +0000",
     "From: Alice <alice@example.org>\nTo: zed@example.org\n"
     "Subject: Re: Project plan\nDate: Mon, 3 Feb 2025 12:00:00 +0000\n"
     "Message-ID: <p2@example.org>\nIn-Reply-To: <p1@example.org>\n"
     "References: <p1@example.org>\n\nok, with a somewhat longer body than the others\n"),
    # 3: RFC 2047 subject (kaigi), a date with a zone: Feb 2 00:00 UTC
    ("03-Feb-2025 10:00:00 +0000",
     "From: bob@example.org\nTo: Team <team@example.org>\n"
     "Subject: =?UTF-8?B?5Lya6K2w?=\nDate: Sun, 2 Feb 2025 09:00:00 +0900\n"
     "Message-ID: <m1@example.org>\n\nmeeting\n"),
    # 4: a reply to 2 behind a list tag
    ("02-Feb-2025 10:00:00 +0000",
     "From: Carol <carol@example.org>\nTo: alice@example.org\n"
     "Subject: [list] Re: Project plan\nDate: Tue, 4 Feb 2025 08:00:00 +0000\n"
     "Message-ID: <p3@example.org>\nReferences: <p1@example.org> <p2@example.org>\n\nyes\n"),
    # 5: no Date (sent = internal date Feb 4 12:00), parent missing
    ("04-Feb-2025 12:00:00 +0000",
     "From: dave@example.org\nSubject: Fwd: lunch\nMessage-ID: <l1@example.org>\n"
     "References: <gone@example.org>\n\nlunch?\n"),
    # 6: same missing parent; "(fwd)" trailer; Feb 5 12:00 UTC
    ("06-Feb-2025 10:00:00 +0000",
     "From: erin@example.org\nCc: Bob <bob@example.org>\nSubject: lunch (fwd)\n"
     "Date: Wed, 5 Feb 2025 07:00:00 -0500\nMessage-ID: <l2@example.org>\n"
     "References: <gone@example.org>\n\nsure\n"),
    # 7: the same subject as 1, not a reply, no references
    ("07-Feb-2025 10:00:00 +0000",
     "From: <frank@example.org>\nTo: zed@example.org\nSubject: Project plan\n"
     "Date: Thu, 6 Feb 2025 10:00:00 +0000\nMessage-ID: <p4@example.org>\n\nagain\n"),
]


def imap_ssl(srv):
    c = imaplib.IMAP4_SSL("127.0.0.1", srv.imaps_port, ssl_context=srv.context(),
                          timeout=60)
    c.login(DEMO, DEMO_PASSWORD)
    return c


@pytest.fixture(scope="module")
def sorted_server(yubin_module_factory):
    srv = yubin_module_factory()
    c = imap_ssl(srv)
    c.create("Sort")
    for date, text in CRAFTED:
        typ, _ = c.append("Sort", None, '"%s"' % date, text.encode())
        assert typ == "OK"
    c.logout()
    return srv


@pytest.fixture
def conn(sorted_server):
    c = imap_ssl(sorted_server)
    assert c.select("Sort", readonly=True)[0] == "OK"
    yield c
    c.logout()


def one(typ_data, name):
    typ, data = typ_data
    assert typ == "OK", data
    assert len(data) == 1, data
    return (data[0] or b"").decode()


def nums(text):
    return [int(x) for x in text.split()]


def test_capabilities(conn):
    """RFC 5256 1 / RFC 5957 2: what is built is announced."""
    caps = one(conn.capability(), "CAPABILITY").split()
    for cap in ("SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES"):
        assert cap in caps


@pytest.mark.parametrize("criteria,want", [
    # RFC 5256 2.1: Re:, [list], (fwd), Fwd: removed; RFC 2047 decoded
    ("(SUBJECT)", "5 6 1 2 4 7 3"),
    ("(SUBJECT REVERSE DATE)", "6 5 7 4 2 1 3"),
    # 2.2: the Date: field in UTC; 5 has none and uses its internal date
    ("(DATE)", "3 1 2 4 5 6 7"),
    ("(REVERSE DATE)", "7 6 5 4 2 1 3"),
    # section 3: addr-mailbox of the first address, "" when missing
    ("(FROM)", "2 3 4 5 6 7 1"),
    ("(TO)", "5 6 1 4 3 2 7"),
    ("(CC)", "2 3 4 5 7 6 1"),
    # REVERSE reverses one key only, not the sequence order of ties
    ("(REVERSE CC)", "1 6 2 3 4 5 7"),
    # RFC 5957: the display name, else the address
    ("(DISPLAYFROM)", "1 2 3 4 5 6 7"),
    ("(DISPLAYTO)", "5 6 1 4 3 2 7"),
    ("(ARRIVAL)", "2 4 3 5 1 6 7"),
])
def test_sort_keys(conn, criteria, want):
    assert one(conn.sort(criteria, "UTF-8", "ALL"), "SORT") == want


def test_sort_size_follows_rfc822_size(conn):
    typ, data = conn.fetch("1:*", "(RFC822.SIZE)")
    sizes = {int(m.group(1)): int(m.group(2))
             for m in (re.match(rb"(\d+) \(RFC822.SIZE (\d+)\)", d) for d in data)}
    want = sorted(sizes, key=lambda seq: (sizes[seq], seq))
    assert nums(one(conn.sort("(SIZE)", "UTF-8", "ALL"), "SORT")) == want
    rwant = sorted(sizes, key=lambda seq: (-sizes[seq], seq))
    assert nums(one(conn.sort("(REVERSE SIZE)", "UTF-8", "ALL"), "SORT")) == rwant


def uid_map(conn):
    typ, data = conn.fetch("1:*", "(UID)")
    return {int(m.group(1)): int(m.group(2))
            for m in (re.match(rb"(\d+) \(UID (\d+)\)", d) for d in data)}


def test_uid_sort_and_search_keys(conn):
    uids = uid_map(conn)
    got = one(conn.uid("SORT", "(SUBJECT)", "UTF-8", "ALL"), "SORT")
    assert nums(got) == [uids[s] for s in (5, 6, 1, 2, 4, 7, 3)]
    # the search keys after the charset select the messages
    assert one(conn.sort("(DATE)", "UTF-8", "SUBJECT", "plan"), "SORT") == "1 2 4 7"
    assert one(conn.sort("(REVERSE ARRIVAL)", "US-ASCII", "NOT", "FROM", "example.org"),
               "SORT") == ""
    assert one(conn.sort("(DATE)", "UTF-8", "2:4"), "SORT") == "3 2 4"


def test_thread_references(conn):
    """RFC 5256 2.2 REFERENCES: 2 and 4 below 1 (References, In-Reply-To),
    5 and 6 under the dummy of their missing parent, 7 joins 1 by subject
    under a new dummy (neither is a reply); roots by date."""
    assert one(conn.thread("REFERENCES", "UTF-8", "ALL"), "THREAD") == \
        "(3)((1 2 4)(7))((5)(6))"
    uids = uid_map(conn)
    want = "(%d)((%d %d %d)(%d))((%d)(%d))" % tuple(uids[s] for s in (3, 1, 2, 4, 7, 5, 6))
    assert one(conn.uid("THREAD", "REFERENCES", "UTF-8", "ALL"), "THREAD") == want
    # without 2 its place is a dummy, pruned: 4 hangs below 1
    assert one(conn.thread("REFERENCES", "UTF-8", "NOT", "FROM", "alice"), "THREAD") == \
        "(3)((1 4)(7))((5)(6))"


def test_thread_orderedsubject(conn):
    """RFC 5256 3 ORDEREDSUBJECT: by base subject, the first message the
    parent of the rest, threads by their first message's date."""
    assert one(conn.thread("ORDEREDSUBJECT", "UTF-8", "ALL"), "THREAD") == \
        "(3)(1 (2)(4)(7))(5 6)"
    assert one(conn.thread("ORDEREDSUBJECT", "UTF-8", "1:2"), "THREAD") == "(1 2)"


def test_errors_and_empty_results(sorted_server):
    from test_imap import RawImap
    raw = RawImap(sorted_server.imaps_port, sorted_server.context())
    raw.login()
    assert raw.cmd(b"a", b"SORT (SUBJECT) UTF-8 ALL")[-1].startswith(b"a BAD")
    assert raw.cmd(b"b", b"EXAMINE Sort")[-1].startswith(b"b OK")
    cases = [
        (b"SORT (FOO) UTF-8 ALL", b"BAD"),
        (b"SORT (REVERSE) UTF-8 ALL", b"BAD"),
        (b"SORT () UTF-8 ALL", b"BAD"),
        (b"SORT SUBJECT UTF-8 ALL", b"BAD"),
        (b"SORT (SUBJECT) UTF-8", b"BAD"),
        (b"SORT (SUBJECT) KOI8-R ALL", b"NO [BADCHARSET (UTF-8 US-ASCII"),
        (b"THREAD FOO UTF-8 ALL", b"BAD"),
        (b"THREAD REFERENCES KOI8-R ALL", b"NO [BADCHARSET (UTF-8 US-ASCII"),
        (b"THREAD REFERENCES UTF-8 BOGUS", b"BAD"),
    ]
    for i, (cmd, want) in enumerate(cases):
        tag = b"e%d" % i
        lines = raw.cmd(tag, cmd)
        assert lines[-1].startswith(tag + b" " + want), (cmd, lines)
        assert len(lines) == 1, (cmd, lines)
    # the charset is SEARCH's: a Japanese string sent in ISO-2022-JP
    jis = "\u4f1a\u8b70".encode("iso-2022-jp")
    assert raw.cmd(b"h", b"SORT (DATE) ISO-2022-JP SUBJECT {%d+}\r\n%s" % (len(jis), jis)) == \
        [b"* SORT 3", b"h OK Sort completed"]
    assert raw.cmd(b"f", b"SORT (SUBJECT) UTF-8 SUBJECT nomatch") == \
        [b"* SORT", b"f OK Sort completed"]
    assert raw.cmd(b"g", b"UID THREAD REFERENCES UTF-8 SUBJECT nomatch") == \
        [b"* THREAD", b"g OK Thread completed"]
    raw.close()


def thread_numbers(text):
    """Every number of a THREAD response, after checking its syntax
    (RFC 5256 4: thread-list = "(" (thread-members / thread-nested) ")")."""
    assert re.fullmatch(r"[()0-9 ]*", text), text
    assert "()" not in text and " )" not in text and "( " not in text, text
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        assert depth >= 0, text
    assert depth == 0, text
    return [int(x) for x in re.findall(r"\d+", text)]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="no corpus at %s" % CORPUS)
def test_corpus_each_message_once(sorted_server):
    """Every corpus message appears exactly once in every SORT and THREAD
    answer; SIZE and ARRIVAL agree with FETCH; nothing crashes. A third of
    the corpus, from every source (each APPEND is fsync'd: all of it
    would take a minute; the sort itself takes milliseconds)."""
    c = imap_ssl(sorted_server)
    c.create("Corpus")
    files = sorted(p for p in CORPUS.rglob("*.eml") if p.is_file())[::3]
    stored = 0
    for path in files:
        data = path.read_bytes()
        if c.append("Corpus", None, None, data)[0] == "OK":
            stored += 1
    assert stored >= 0.9 * len(files)
    assert c.select("Corpus", readonly=True)[0] == "OK"
    every = list(range(1, stored + 1))
    for crit in ("(SUBJECT)", "(DATE)", "(FROM)", "(TO)", "(CC)", "(DISPLAYFROM)",
                 "(DISPLAYTO)", "(REVERSE SUBJECT DATE)"):
        got = nums(one(c.sort(crit, "UTF-8", "ALL"), "SORT"))
        assert sorted(got) == every, crit
    typ, data = c.fetch("1:*", "(RFC822.SIZE)")
    sizes = [int(re.search(rb"RFC822.SIZE (\d+)", d).group(1)) for d in data]
    got = nums(one(c.sort("(SIZE)", "UTF-8", "ALL"), "SORT"))
    assert got == sorted(every, key=lambda s: (sizes[s - 1], s))
    uids = sorted(uid_map(c).values())
    assert sorted(nums(one(c.uid("SORT", "(ARRIVAL)", "UTF-8", "ALL"), "SORT"))) == uids
    for alg in ("REFERENCES", "ORDEREDSUBJECT"):
        got = thread_numbers(one(c.thread(alg, "UTF-8", "ALL"), "THREAD"))
        assert sorted(got) == every, alg
        got = thread_numbers(one(c.uid("THREAD", alg, "UTF-8", "ALL"), "THREAD"))
        assert sorted(got) == uids, alg
    assert c.noop()[0] == "OK"
    c.logout()
