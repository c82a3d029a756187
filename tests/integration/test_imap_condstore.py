"""CONDSTORE and QRESYNC (RFC 7162) over raw TLS sockets: what a client
that caches a mailbox sees when it comes back, conditional STORE, FETCH
CHANGEDSINCE, STATUS HIGHESTMODSEQ, VANISHED instead of EXPUNGE, and
HIGHESTMODSEQ that never goes back (issue 3, item 3).

Each test names the RFC section it checks."""

import re
import socket

import pytest

from yubin_fixture import DEMO, DEMO_PASSWORD


def msg(n):
    return (b"From: sender%d@example.org\nTo: demo@example.test\n"
            b"Subject: message %d\nDate: Mon, 3 Feb 2025 10:00:00 +0000\n\n"
            b"body %d\n" % (n, n, n))


class Imap:
    """A line-level IMAP client on the implicit TLS port."""

    def __init__(self, srv, login=True):
        sock = socket.create_connection(("127.0.0.1", srv.imaps_port), 10)
        self.sock = srv.context().wrap_socket(sock, server_hostname="localhost")
        self.buf = b""
        self.n = 0
        assert self.readline().startswith("* OK")
        if login:
            self.ok('LOGIN "%s" "%s"' % (DEMO, DEMO_PASSWORD))

    def readline(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def cmd(self, text):
        """(untagged lines, tagged line)"""
        self.n += 1
        tag = "c%d" % self.n
        self.sock.sendall(("%s %s\r\n" % (tag, text)).encode())
        lines = []
        while True:
            line = self.readline()
            if line.startswith(tag + " "):
                return lines, line[len(tag) + 1:]
            lines.append(line)

    def ok(self, text):
        lines, tagged = self.cmd(text)
        assert tagged.startswith("OK"), (text, lines, tagged)
        return lines, tagged

    def close(self):
        try:
            self.cmd("LOGOUT")
        except (OSError, EOFError):
            pass
        self.sock.close()


def code(lines, name):
    """The value of response code [name value] in the lines, or None."""
    for line in lines:
        m = re.search(r"\[%s ([^\]]*)\]" % name, line)
        if m:
            return m.group(1)
    return None


def select_state(c, mailbox="INBOX"):
    """SELECT with CONDSTORE: (uidvalidity, highestmodseq, {uid: modseq})."""
    lines, _ = c.ok("SELECT %s (CONDSTORE)" % mailbox)
    uidvalidity = int(code(lines, "UIDVALIDITY"))
    highest = int(code(lines, "HIGHESTMODSEQ"))
    lines, _ = c.ok("UID FETCH 1:* (MODSEQ)")
    mods = {int(m.group(1)): int(m.group(2)) for m in
            (re.search(r"UID (\d+) MODSEQ \((\d+)\)", x) for x in lines) if m}
    return uidvalidity, highest, mods


def fetch_lines(lines):
    return [x for x in lines if re.match(r"\* \d+ FETCH ", x)]


@pytest.fixture
def six(yubin):
    """INBOX with UIDs 1..6."""
    for i in range(1, 7):
        assert yubin.deliver(DEMO, msg(i)).returncode == 0
    return yubin


# ---- capabilities and ENABLE (RFC 7162 3.1, 3.2.3; RFC 5161) ---------------

def test_capability_and_enable(yubin):
    c = Imap(yubin, login=False)
    lines, _ = c.ok("CAPABILITY")
    assert "CONDSTORE" not in lines[0]
    c.ok('LOGIN "%s" "%s"' % (DEMO, DEMO_PASSWORD))
    lines, _ = c.ok("CAPABILITY")
    assert " CONDSTORE" in lines[0] and " QRESYNC" in lines[0]
    lines, _ = c.ok("ENABLE QRESYNC")
    assert lines == ["* ENABLED QRESYNC"]
    # QRESYNC implies CONDSTORE: nothing new to enable
    lines, _ = c.ok("ENABLE CONDSTORE")
    assert lines == ["* ENABLED"]
    c.close()
    c = Imap(yubin)
    lines, _ = c.ok("ENABLE CONDSTORE")
    assert lines == ["* ENABLED CONDSTORE"]
    # QRESYNC in SELECT without ENABLE QRESYNC is BAD (RFC 7162 3.2.5)
    _, tagged = c.cmd("SELECT INBOX (QRESYNC (1 1))")
    assert tagged.startswith("BAD")
    c.close()


# ---- HIGHESTMODSEQ in SELECT and STATUS (RFC 7162 3.1.2.1, 3.1.8) ----------

def test_select_and_status_highestmodseq(six):
    c = Imap(six)
    lines, _ = c.ok("STATUS INBOX (MESSAGES HIGHESTMODSEQ)")
    m = re.match(r"\* STATUS INBOX \(MESSAGES 6 HIGHESTMODSEQ (\d+)\)", lines[0])
    assert m, lines
    status_h = int(m.group(1))
    lines, _ = c.ok("EXAMINE INBOX")
    assert int(code(lines, "HIGHESTMODSEQ")) == status_h
    c.ok("SELECT INBOX")
    # STATUS enabled CONDSTORE: flag changes now carry UID and MODSEQ
    lines, _ = c.ok("STORE 2 +FLAGS (\\Flagged)")
    m = re.match(r"\* 2 FETCH \(UID 2 FLAGS \(\\Flagged\) MODSEQ \((\d+)\)\)$", lines[0])
    assert m, lines
    assert int(m.group(1)) > status_h
    lines, _ = c.ok("STATUS INBOX (HIGHESTMODSEQ)")
    assert lines[-1] == "* STATUS INBOX (HIGHESTMODSEQ %s)" % m.group(1)
    c.close()


def test_fetch_modseq_enables_condstore_while_selected(six):
    c = Imap(six)
    lines, _ = c.ok("SELECT INBOX")
    h = code(lines, "HIGHESTMODSEQ")
    lines, _ = c.ok("FETCH 1 (MODSEQ)")
    # the first CONDSTORE enabling command while selected reports it
    assert "* OK [HIGHESTMODSEQ %s] Highest" % h in lines
    assert re.match(r"\* 1 FETCH \(MODSEQ \(\d+\)\)$", fetch_lines(lines)[0])
    # \Seen set by a body fetch comes with UID and MODSEQ (RFC 7162 3.1)
    lines, _ = c.ok("FETCH 3 (BODY[TEXT])")
    assert re.search(r"FLAGS \(\\Seen\) UID 3 MODSEQ \((\d+)\)\)$", lines[-1]), lines
    c.close()


# ---- QRESYNC on reconnect (RFC 7162 3.2.5) ---------------------------------

def change_from_other_session(srv):
    """Another client flags UIDs 2 and 4, expunges 3 and 5; a new message
    (UID 7) is delivered."""
    b = Imap(srv)
    b.ok("SELECT INBOX")
    b.ok("UID STORE 2,4 +FLAGS (\\Flagged)")
    b.ok("UID STORE 3,5 +FLAGS.SILENT (\\Deleted)")
    b.ok("UID EXPUNGE 3,5")
    b.close()
    assert srv.deliver(DEMO, msg(7)).returncode == 0


def qresync_select(srv, params):
    c = Imap(srv)
    c.ok("ENABLE QRESYNC")
    lines, tagged = c.ok("SELECT INBOX (QRESYNC (%s))" % params)
    c.close()
    return lines, tagged


def test_qresync_reconnect_gets_exactly_what_changed(six):
    a = Imap(six)
    a.ok("ENABLE QRESYNC")
    uidvalidity, highest, mods = select_state(a)
    assert sorted(mods) == [1, 2, 3, 4, 5, 6]
    a.close()
    change_from_other_session(six)

    lines, tagged = qresync_select(six, "%d %d 1:6" % (uidvalidity, highest))
    assert tagged.startswith("OK [READ-WRITE]")
    assert int(code(lines, "HIGHESTMODSEQ")) > highest
    assert [x for x in lines if "VANISHED" in x] == ["* VANISHED (EARLIER) 3,5"]
    got = fetch_lines(lines)
    assert len(got) == 2, lines
    assert re.match(r"\* 2 FETCH \(UID 2 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$", got[0])
    assert re.match(r"\* 3 FETCH \(UID 4 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$", got[1])
    # VANISHED and FETCH come after the SELECT data, before the tagged OK
    assert lines.index("* VANISHED (EARLIER) 3,5") > lines.index("* 5 EXISTS")

    # without known-uids every change counts, the new message too
    lines, _ = qresync_select(six, "%d %d" % (uidvalidity, highest))
    assert [x for x in lines if "VANISHED" in x] == ["* VANISHED (EARLIER) 3,5"]
    assert [re.search(r"UID (\d+)", x).group(1) for x in fetch_lines(lines)] == \
        ["2", "4", "7"]

    # known-uids limit both answers
    lines, _ = qresync_select(six, "%d %d 1:4" % (uidvalidity, highest))
    assert [x for x in lines if "VANISHED" in x] == ["* VANISHED (EARLIER) 3"]
    assert [re.search(r"UID (\d+)", x).group(1) for x in fetch_lines(lines)] == \
        ["2", "4"]

    # nothing changed since the current HIGHESTMODSEQ
    c = Imap(six)
    c.ok("ENABLE QRESYNC")
    now = int(code(c.ok("SELECT INBOX")[0], "HIGHESTMODSEQ"))
    lines, _ = c.ok("SELECT INBOX (QRESYNC (%d %d 1:7))" % (uidvalidity, now))
    assert lines[0] == "* OK [CLOSED] Previous mailbox closed"
    assert not fetch_lines(lines) and not [x for x in lines if "VANISHED" in x]
    c.close()

    # another UIDVALIDITY: the client must resync in full, nothing is sent
    lines, _ = qresync_select(six, "%d %d 1:6" % (uidvalidity + 1, highest))
    assert not fetch_lines(lines) and not [x for x in lines if "VANISHED" in x]


def test_bad_qresync_parameters(six):
    c = Imap(six)
    c.ok("ENABLE QRESYNC")
    for params in ["(QRESYNC (0 5))", "(QRESYNC (1))", "(QRESYNC (1 x))",
                   "(QRESYNC (1 1 1:*))", "(QRESYNC (1 1 1:4 (1:2)))", "(FOO)",
                   "(CONDSTORE CONDSTORE)"]:
        _, tagged = c.cmd("SELECT INBOX %s" % params)
        assert tagged.startswith("BAD"), (params, tagged)
    c.close()


# ---- FETCH CHANGEDSINCE and VANISHED (RFC 7162 3.1.4.1, 3.2.6) -------------

def test_fetch_changedsince_and_vanished(six):
    c = Imap(six)
    uidvalidity, highest, _ = select_state(c)
    c.close()
    change_from_other_session(six)
    c = Imap(six)
    c.ok("SELECT INBOX")
    lines, _ = c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % highest)
    assert [re.search(r"UID (\d+)", x).group(1) for x in fetch_lines(lines)] == \
        ["2", "4", "7"]
    assert all(re.search(r"MODSEQ \(\d+\)", x) for x in fetch_lines(lines))
    lines, _ = c.ok("FETCH 1:* (UID) (CHANGEDSINCE %d)" % highest)
    assert len(fetch_lines(lines)) == 3
    # VANISHED needs ENABLE QRESYNC, UID FETCH and CHANGEDSINCE
    _, tagged = c.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % highest)
    assert tagged.startswith("BAD")
    c.ok("ENABLE QRESYNC")
    _, tagged = c.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % highest)
    assert tagged.startswith("BAD")
    _, tagged = c.cmd("UID FETCH 1:* (FLAGS) (VANISHED)")
    assert tagged.startswith("BAD")
    lines, _ = c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % highest)
    assert lines[0] == "* VANISHED (EARLIER) 3,5"
    assert len(fetch_lines(lines)) == 3
    lines, _ = c.ok("UID FETCH 4:6 (FLAGS) (CHANGEDSINCE %d VANISHED)" % highest)
    assert lines[0] == "* VANISHED (EARLIER) 5"
    assert [re.search(r"UID (\d+)", x).group(1) for x in fetch_lines(lines)] == ["4"]
    c.close()


# ---- STORE UNCHANGEDSINCE (RFC 7162 3.1.3) ---------------------------------

def test_store_unchangedsince_and_modified(six):
    c = Imap(six)
    _, _, mods = select_state(c)
    other = Imap(six)
    other.ok("SELECT INBOX")
    other.ok("STORE 2 +FLAGS (\\Answered)")
    other.close()
    # message 2 changed after the session looked: it fails, 1 and 3 pass
    lines, tagged = c.ok("STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)"
                         % max(mods.values()))
    assert tagged.startswith("OK [MODIFIED 2]"), tagged
    got = fetch_lines(lines)
    assert [x.split()[1] for x in got[:2]] == ["1", "3"], lines
    assert re.match(r"\* 1 FETCH \(UID 1 FLAGS \(\\Seen\) MODSEQ \((\d+)\)\)$", got[0])
    # the sync after the command reports the other session's change
    assert re.match(r"\* 2 FETCH \(UID 2 FLAGS \(\\Answered\) MODSEQ \(\d+\)\)$", got[2])
    m1 = int(re.search(r"MODSEQ \((\d+)\)", got[0]).group(1))
    assert m1 > mods[1]
    # .SILENT still gives the new MODSEQ, without FLAGS; UID STORE names UIDs
    lines, tagged = c.ok("UID STORE 1,4 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Deleted)"
                         % mods[4])
    assert tagged.startswith("OK [MODIFIED 1]"), tagged
    assert len(lines) == 1 and re.match(r"\* 4 FETCH \(UID 4 MODSEQ \((\d+)\)\)$", lines[0])
    # UNCHANGEDSINCE 0 always fails (RFC 7162 3.1.3)
    lines, tagged = c.ok("STORE 5:6 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)")
    assert tagged.startswith("OK [MODIFIED 5:6]") and not lines
    # a plain .SILENT STORE with CONDSTORE on still reports the MODSEQ
    lines, _ = c.ok("STORE 6 +FLAGS.SILENT (\\Seen)")
    assert re.match(r"\* 6 FETCH \(UID 6 MODSEQ \(\d+\)\)$", lines[0])
    _, tagged = c.cmd("STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)")
    assert tagged.startswith("BAD")
    c.close()


# ---- VANISHED instead of EXPUNGE (RFC 7162 3.2.10) -------------------------

def test_vanished_replaces_expunge(six):
    a = Imap(six)
    a.ok("ENABLE QRESYNC")
    a.ok("SELECT INBOX")
    b = Imap(six)
    b.ok("SELECT INBOX")
    b.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    lines, _ = a.ok("NOOP")
    assert "* VANISHED 2,4" in lines and not [x for x in lines if "EXPUNGE" in x], lines
    # flag changes seen by sync carry UID and MODSEQ
    b.ok("STORE 1 +FLAGS (\\Flagged)")
    lines, _ = a.ok("NOOP")
    assert re.match(r"\* 1 FETCH \(UID 1 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$", lines[0])
    # the session's own EXPUNGE and MOVE
    a.ok("UID STORE 5,6 +FLAGS.SILENT (\\Deleted)")
    lines, tagged = a.ok("EXPUNGE")
    assert lines == ["* VANISHED 5:6"], lines
    assert re.match(r"OK \[HIGHESTMODSEQ \d+\]", tagged)
    lines, tagged = a.ok("MOVE 1 Archive")
    assert lines[-1] == "* VANISHED 1" and "EXPUNGE" not in " ".join(lines)
    b.close()
    a.close()
    # without QRESYNC the same change is an EXPUNGE
    a = Imap(six)
    a.ok("SELECT INBOX")
    b = Imap(six)
    b.ok("SELECT INBOX")
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    lines, _ = a.ok("NOOP")
    assert "* 1 EXPUNGE" in lines
    a.close()
    b.close()


# ---- HIGHESTMODSEQ never goes back (RFC 7162 3.1.2.1; DESIGN "Data") -------

def current_highest(srv):
    c = Imap(srv)
    lines, _ = c.ok("STATUS INBOX (HIGHESTMODSEQ UIDVALIDITY)")
    c.close()
    m = re.search(r"HIGHESTMODSEQ (\d+)", lines[0])
    return int(m.group(1)), int(re.search(r"UIDVALIDITY (\d+)", lines[0]).group(1))


def test_highestmodseq_survives_restart_and_rebuild(six):
    c = Imap(six)
    c.ok("SELECT INBOX")
    c.ok("STORE 1:6 +FLAGS (\\Seen)")
    c.ok("UID STORE 3,6 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")  # the highest MODSEQ now belongs to no message
    c.close()
    before, uidvalidity = current_highest(six)
    six.restart()
    after_restart, _ = current_highest(six)
    assert after_restart >= before
    r = six.run("index", "rebuild", DEMO)
    assert r.returncode == 0, r.stderr
    after_rebuild, uidvalidity2 = current_highest(six)
    assert uidvalidity2 == uidvalidity
    assert after_rebuild >= after_restart
    c = Imap(six)
    c.ok("SELECT INBOX (CONDSTORE)")
    lines, _ = c.ok("STORE 1 +FLAGS (\\Flagged)")
    assert int(re.search(r"MODSEQ \((\d+)\)", lines[0]).group(1)) > after_rebuild
    c.close()
    later, _ = current_highest(six)
    assert later > after_rebuild
    # The expunge log did not survive the rebuild: QRESYNC from before it
    # names every known UID that is gone (RFC 7162 3.2.5.2 allows that) ...
    lines, _ = qresync_select(six, "%d %d" % (uidvalidity, before - 1))
    assert [x for x in lines if "VANISHED" in x] == ["* VANISHED (EARLIER) 3,6"]
    lines, _ = qresync_select(six, "%d %d 4:6" % (uidvalidity, before - 1))
    assert [x for x in lines if "VANISHED" in x] == ["* VANISHED (EARLIER) 6"]
    # ... except below a message number / UID pair that still matches
    lines, _ = qresync_select(six, "%d %d 1:6 (1:4 1,2,4,5)" % (uidvalidity, before - 1))
    assert [x for x in lines if "VANISHED" in x] == ["* VANISHED (EARLIER) 6"]
    lines, _ = qresync_select(six, "%d %d 1:6 (1:4 1,2,3,5)" % (uidvalidity, before - 1))
    assert [x for x in lines if "VANISHED" in x] == ["* VANISHED (EARLIER) 3,6"]
