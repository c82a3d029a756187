"""SEARCH with the full-text index (issue 3, SEARCH and item 6): Japanese
mail in ISO-2022-JP, Shift_JIS and EUC-JP found through SEARCH CHARSET
UTF-8 / ISO-2022-JP / Shift_JIS / EUC-JP (RFC 9051 6.4.4), the index kept
up to date at delivery and APPEND and caught up at SEARCH time, short
terms, CONDSTORE's MODSEQ search key (RFC 7162 3.1.5) and SEARCHRES
(RFC 5182). The exact index-versus-scan comparison over the whole corpus
is tests/unit/test-fts.c."""

import re
import sqlite3

import pytest

from test_imap import RawImap
from yubin_fixture import CORPUS, DEMO

TERM = "研究室"


def japanese(charset, cte, n):
    """A message whose Subject (RFC 2047) and body are in charset."""
    import base64
    subj = base64.b64encode(("%sの連絡 %d" % (TERM, n)).encode(charset)).decode()
    body = ("%sで会議があります。MEETING %d\n" % (TERM, n)).encode(charset)
    if cte == "base64":
        body = base64.encodebytes(body)
    head = ("From: sensei@example.jp\nTo: %s\nSubject: =?%s?B?%s?=\n"
            "Date: Tue, 4 Feb 2025 09:00:00 +0900\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=%s\nContent-Transfer-Encoding: %s\n\n"
            % (DEMO, charset, subj, charset, cte))
    return head.encode() + body


MESSAGES = [
    japanese("iso-2022-jp", "7bit", 1),
    japanese("shift_jis", "8bit", 2),
    japanese("euc-jp", "base64", 3),
    b"From: bob@example.org\nTo: demo@example.test\nSubject: lunch\n\nab cd Lunch at noon\n",
]
CORPUS_JP = ["joruri-mail/charset/iso-2022-jp.eml", "joruri-mail/charset/shift_jis.eml",
             "joruri-mail/charset/euc-jp.eml"]


def index_db(srv):
    return sqlite3.connect(str(srv.maildir() / "index.db"))


def fts_count(srv):
    db = index_db(srv)
    try:
        return db.execute("SELECT count(*) FROM fts_msgs").fetchone()[0]
    finally:
        db.close()


@pytest.fixture(scope="module")
def search_server(yubin_module_factory):
    srv = yubin_module_factory()
    for data in MESSAGES:
        assert srv.deliver(DEMO, data).returncode == 0
    for name in CORPUS_JP:
        path = CORPUS / name
        if path.is_file():
            assert srv.deliver(DEMO, path.read_bytes()).returncode == 0
    return srv


def session(srv, mailbox=b"INBOX"):
    c = RawImap(srv.imaps_port, srv.context())
    c.login()
    assert c.cmd(b"s", b"SELECT " + mailbox)[-1].startswith(b"s OK")
    return c


def search(c, rest: bytes):
    """(numbers, the untagged SEARCH/ESEARCH line, the tagged line)."""
    lines = c.cmd(b"q", rest)
    found = [l for l in lines if l.startswith((b"* SEARCH", b"* ESEARCH"))]
    nums = []
    if found and found[0].startswith(b"* SEARCH"):
        nums = [int(x) for x in re.sub(rb"\(MODSEQ \d+\)", b"", found[0][8:]).split()]
    return nums, (found[0] if found else None), lines[-1]


def literal(data: bytes) -> bytes:
    return b"{%d+}\r\n" % len(data) + data


def test_indexed_at_delivery(search_server):
    """Delivery indexes each message before any SEARCH runs."""
    assert fts_count(search_server) == len(MESSAGES) + len(
        [n for n in CORPUS_JP if (CORPUS / n).is_file()])


def test_charset_utf8_text_finds_every_japanese_charset(search_server):
    c = session(search_server)
    nums, _, done = search(c, b"SEARCH CHARSET UTF-8 TEXT " + literal(TERM.encode()))
    assert done.startswith(b"q OK") and nums == [1, 2, 3]
    nums, _, _ = search(c, b"SEARCH CHARSET UTF-8 BODY " + literal(TERM.encode()))
    assert nums == [1, 2, 3]
    # header only: TEXT finds it, BODY does not
    nums, _, _ = search(c, b"SEARCH CHARSET UTF-8 BODY " + literal("の連絡".encode()))
    assert nums == []
    nums, _, _ = search(c, b"SEARCH CHARSET UTF-8 TEXT " + literal("の連絡".encode()))
    assert nums == [1, 2, 3]
    c.close()


@pytest.mark.parametrize("charset", ["ISO-2022-JP", "Shift_JIS", "CP932", "EUC-JP"])
def test_charset_japanese_search_strings(search_server, charset):
    """The search string arrives in charset (a literal) and is converted."""
    enc = {"CP932": "cp932"}.get(charset, charset)
    c = session(search_server)
    nums, _, done = search(c, b"SEARCH CHARSET " + charset.encode() + b" SUBJECT " +
                           literal(TERM.encode(enc)))
    assert done.startswith(b"q OK") and nums == [1, 2, 3]
    nums, _, _ = search(c, b"UID SEARCH CHARSET " + charset.encode() + b" TEXT " +
                        literal("会議".encode(enc)))
    assert len(nums) == 3
    c.close()


def test_corpus_japanese_mail_found(search_server):
    present = [n for n in CORPUS_JP if (CORPUS / n).is_file()]
    if not present:
        pytest.skip("corpus not found")
    c = session(search_server)
    want = list(range(len(MESSAGES) + 1, len(MESSAGES) + 1 + len(present)))
    term = "エンコードテスト"
    nums, _, _ = search(c, b"SEARCH CHARSET UTF-8 SUBJECT " + literal(term.encode()))
    assert nums == want
    nums, _, _ = search(c, b"SEARCH CHARSET ISO-2022-JP BODY " +
                        literal(term.encode("iso-2022-jp")))
    assert nums == want
    c.close()


def test_badcharset_lists_charsets(search_server):
    c = session(search_server)
    _, _, done = search(c, b"SEARCH CHARSET KOI8-R TEXT x")
    assert done == (b"q NO [BADCHARSET (UTF-8 US-ASCII ISO-2022-JP Shift_JIS CP932 "
                    b"Windows-31J EUC-JP)] Unsupported charset")
    c.close()


def test_short_terms_and_ascii_case(search_server):
    """Terms under three characters do not use trigrams but still match."""
    c = session(search_server)
    assert search(c, b"SEARCH CHARSET UTF-8 BODY " + literal("研".encode()))[0] == [1, 2, 3]
    assert search(c, b"SEARCH BODY \"ab\"")[0] == [4]
    assert search(c, b"SEARCH BODY \"b c\"")[0] == [4]
    assert search(c, b"SEARCH BODY meeting")[0] == [1, 2, 3]
    assert search(c, b"SEARCH TEXT LUNCH")[0] == [4]
    assert search(c, b"SEARCH NOT BODY lunch 1:4")[0] == [1, 2, 3]
    assert search(c, b"SEARCH BODY zzzz")[0] == []
    c.close()


def test_append_indexed_and_catch_up(yubin):
    """APPEND indexes at once; mail without index rows (an index from
    before, a rebuild) is indexed by the first SEARCH that needs it."""
    for data in MESSAGES:
        assert yubin.deliver(DEMO, data).returncode == 0
    c = session(yubin)
    before = fts_count(yubin)
    msg = b"Subject: appended\r\n\r\nappended body with kenkyuu\r\n"
    r = c.cmd(b"a", b"APPEND INBOX " + literal(msg))
    assert r[-1].startswith(b"a OK")
    assert fts_count(yubin) == before + 1
    db = index_db(yubin)
    db.executescript("DELETE FROM fts_text; DELETE FROM fts_docs; DELETE FROM fts_msgs;")
    db.close()
    assert fts_count(yubin) == 0
    nums, _, _ = search(c, b"SEARCH BODY kenkyuu")
    assert nums == [5]
    assert fts_count(yubin) == 5
    assert search(c, b"SEARCH CHARSET UTF-8 TEXT " + literal(TERM.encode()))[0] == [1, 2, 3]
    c.close()


def test_modseq_search(yubin):
    """RFC 7162 3.1.5: MODSEQ key, (MODSEQ n) after SEARCH, MODSEQ in
    ESEARCH; with no match there is none."""
    for data in MESSAGES:
        assert yubin.deliver(DEMO, data).returncode == 0
    c = session(yubin)
    nums, line, _ = search(c, b"SEARCH MODSEQ 0")
    assert nums == [1, 2, 3, 4]
    top = int(re.search(rb"\(MODSEQ (\d+)\)$", line).group(1))
    assert c.cmd(b"f", b"STORE 2 +FLAGS.SILENT (\\Flagged)")[-1].startswith(b"f OK")
    nums, line, _ = search(c, b"SEARCH MODSEQ %d" % (top + 1))
    assert nums == [2]
    new = int(re.search(rb"\(MODSEQ (\d+)\)$", line).group(1))
    assert new > top
    nums, line, _ = search(c, b'SEARCH MODSEQ "/flags/\\\\flagged" all %d FLAGGED' % new)
    assert nums == [2] and line.endswith(b"(MODSEQ %d)" % new)
    _, line, _ = search(c, b"UID SEARCH RETURN (ALL) MODSEQ 1")
    assert line.endswith(b"UID ALL 1:4 MODSEQ %d" % new)
    # with only MIN, the MODSEQ is that message's (RFC 4731 3.2)
    _, line, _ = search(c, b"SEARCH 1 MODSEQ 0")
    first = int(re.search(rb"\(MODSEQ (\d+)\)$", line).group(1))
    assert first < new
    _, line, _ = search(c, b"SEARCH RETURN (MIN) MODSEQ 1")
    assert line.endswith(b"MIN 1 MODSEQ %d" % first)
    nums, line, _ = search(c, b"SEARCH MODSEQ %d" % (new + 100))
    assert line == b"* SEARCH"
    for bad in [b"SEARCH MODSEQ", b"SEARCH MODSEQ x", b'SEARCH MODSEQ "/flags/x" mine 1',
                b"SEARCH MODSEQ 9223372036854775808"]:
        assert c.cmd(b"b", bad)[-1].startswith(b"b BAD")
    c.close()


def test_searchres(yubin):
    """RFC 5182: SAVE, "$" in FETCH/STORE/SEARCH/UID commands, MIN/MAX
    saving, a NO empties it, expunged messages drop out, SELECT clears."""
    for data in MESSAGES:
        assert yubin.deliver(DEMO, data).returncode == 0
    c = session(yubin)
    caps = c.cmd(b"c", b"CAPABILITY")[0]
    assert b" SEARCHRES" in caps
    r = c.cmd(b"a", b"SEARCH RETURN (SAVE) BODY meeting")
    assert r[-1].startswith(b"a OK") and not [l for l in r if b"ESEARCH" in l]
    r = c.cmd(b"b", b"FETCH $ (UID)")
    assert [l for l in r if b"FETCH" in l] == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 2)",
                                               b"* 3 FETCH (UID 3)"]
    assert search(c, b"SEARCH $ NOT 2")[0] == [1, 3]
    assert search(c, b"UID SEARCH UID $")[0] == [1, 2, 3]
    r = c.cmd(b"d", b"UID STORE $ +FLAGS.SILENT (\\Deleted)")
    assert r[-1].startswith(b"d OK")
    assert search(c, b"SEARCH DELETED")[0] == [1, 2, 3]
    # SAVE with MIN and MAX keeps those two only; the ESEARCH still comes
    r = c.cmd(b"e", b"SEARCH RETURN (SAVE MIN MAX) DELETED")
    assert [l for l in r if l.startswith(b"* ESEARCH")][0].endswith(b"MIN 1 MAX 3")
    assert search(c, b"SEARCH $")[0] == [1, 3]
    # an expunged message drops out of "$"
    assert c.cmd(b"x", b"UID EXPUNGE 1")[-1].startswith(b"x OK")
    assert search(c, b"UID SEARCH $")[0] == [3]
    # a NO (BADCHARSET) empties it; a BAD leaves it
    assert c.cmd(b"g", b"SEARCH RETURN (SAVE) CHARSET X-UNKNOWN ALL")[-1].startswith(b"g NO")
    assert search(c, b"SEARCH $")[0] == []
    assert c.cmd(b"h", b"SEARCH RETURN (SAVE) ALL")[-1].startswith(b"h OK")
    assert c.cmd(b"i", b"SEARCH RETURN (SAVE) NOSUCHKEY")[-1].startswith(b"i BAD")
    assert search(c, b"SEARCH $")[0] == [1, 2, 3]
    # SELECT starts with an empty result
    assert c.cmd(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
    assert search(c, b"SEARCH $")[0] == []
    r = c.cmd(b"j", b"FETCH $ (UID)")
    assert r[-1].startswith(b"j OK") and not [l for l in r if b"FETCH (" in l]
    assert c.cmd(b"k", b"FETCH $,1 (UID)")[-1].startswith(b"k BAD")
    c.close()
