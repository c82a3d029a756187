"""Issue 3, item 5: MOVE of 100,000 messages between folders over IMAP
succeeds, is atomic when the whole server (master and workers) is killed
mid-way (each message in one folder or the other, exactly once), and the
Maildir and the index agree afterwards.

INBOX is filled by writing Maildir files directly and running `yubin index
rebuild` (100,000 APPENDs would take minutes). Every message carries a
unique `X-Token: tok-N` header, checked in the Maildir files and through
IMAP FETCH. The kills are placed by watching the store's phases in the
file system (docs/store.md, "Copy and move"): links appearing in the
destination's tmp/ (early), renames into its cur/ (middle). $YUBIN_FAST_BIN
(no sanitizers) runs the server when set; $YUBIN_MOVE_N changes the count."""

import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest

from yubin_fixture import DEMO, DEMO_PASSWORD, fast_bin

N = int(os.environ.get("YUBIN_MOVE_N", "100000"))
TOKEN_RE = re.compile(rb"X-Token: tok-(\d+)")
FILE_UID_RE = re.compile(r",U=(\d+)")


def last_line(data):
    return data.rsplit(b"\r\n", 1)[-1]


class Raw:
    """Just enough IMAP over TLS for large replies, parsed in bulk."""

    def __init__(self, srv, timeout=300):
        s = socket.create_connection(("127.0.0.1", srv.imaps_port), timeout)
        self.sock = srv.context().wrap_socket(s, server_hostname="localhost")
        self.buf = b""
        self.readline()
        r = self.cmd(b"l", b'LOGIN "%s" "%s"' % (DEMO.encode(), DEMO_PASSWORD.encode()))
        assert last_line(r).startswith(b"l OK"), r[-300:]

    def readline(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def until_tagged(self, tag):
        """Everything up to the tagged line (literals included: the tokens
        in them never start a line with the tag)."""
        end = b"\r\n" + tag + b" "
        data = b"\r\n" + self.buf
        while end not in data:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("server closed the connection")
            data += chunk
        at = data.index(end)
        nl = data.index(b"\r\n", at + 2)
        self.buf = data[nl + 2:]
        return data[2:nl]

    def send(self, line):
        self.sock.sendall(line + b"\r\n")

    def cmd(self, tag, rest):
        self.send(tag + b" " + rest)
        return self.until_tagged(tag)

    def close(self):
        self.sock.close()


def fill_inbox(srv, n):
    """n small messages straight into INBOX's new/, then an index rebuild."""
    root = srv.maildir(DEMO)
    st = os.stat(root)
    new = root / "new"
    for i in range(n):
        fd = os.open(str(new / ("1700000000.M%dP1.fill" % i)),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"From: fill@example.org\r\nSubject: move %d\r\n"
                 b"X-Token: tok-%d\r\n\r\nbody %d\r\n" % (i, i, i))
        if os.geteuid() == 0:
            os.fchown(fd, st.st_uid, st.st_gid)
        os.close(fd)
    r = srv.run("index", "rebuild", DEMO, timeout=600)
    assert r.returncode == 0, r.stderr
    assert b"%d messages" % n in r.stdout, r.stdout


FOLDERS = {"INBOX": "", "Dest": ".Dest"}


def maildir_tokens(srv):
    """{folder: {token: [relative file names]}} and tmp/ leftovers."""
    out, tmp_left = {}, {}
    for name, sub in FOLDERS.items():
        base = srv.maildir(DEMO) / sub if sub else srv.maildir(DEMO)
        found = {}
        for d in ("cur", "new"):
            for entry in os.scandir(base / d):
                with open(entry.path, "rb") as f:
                    m = TOKEN_RE.search(f.read())
                assert m, "no token in %s" % entry.path
                found.setdefault(int(m.group(1)), []).append(d + "/" + entry.name)
        out[name] = found
        tmp_left[name] = os.listdir(base / "tmp")
    return out, tmp_left


INDEX_SCRIPT = r"""
import json, sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=30)
rows = db.execute("SELECT b.name, m.uid, m.filename FROM messages m "
                  "JOIN mailboxes b ON b.id = m.mailbox_id").fetchall()
print(json.dumps(rows))
"""


def index_rows(srv):
    """(mailbox, uid, filename) rows of index.db, read as the account's
    owner so that no root-owned -shm file is left behind."""
    db = srv.maildir(DEMO) / "index.db"
    kw = {}
    if os.geteuid() == 0:
        st = os.stat(db)
        kw = {"user": st.st_uid, "group": st.st_gid, "extra_groups": []}
    r = subprocess.run(["/usr/bin/python3", "-c", INDEX_SCRIPT, str(db)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, **kw)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def imap_tokens(srv, folder):
    c = Raw(srv)
    r = c.cmd(b"s", b"EXAMINE " + folder.encode())
    assert last_line(r).startswith(b"s OK"), r[-300:]
    exists = int(re.search(rb"\* (\d+) EXISTS", r).group(1))
    if exists == 0:
        c.close()
        return exists, []
    r = c.cmd(b"f", b"FETCH 1:* (BODY.PEEK[HEADER.FIELDS (X-Token)])")
    assert last_line(r).startswith(b"f OK"), r[-300:]
    c.close()
    return exists, [int(t) for t in TOKEN_RE.findall(r)]


def check_consistent(srv, n):
    """Every token in exactly one folder, once, in the Maildir and over
    IMAP; the index lists exactly the Maildir's files with their UIDs;
    no link left in tmp/. Returns {folder: count}."""
    # The first session after the crash opens the store, which recovers
    # the dead MOVE's journal (rolls it back or forward).
    Raw(srv).close()
    files, tmp_left = maildir_tokens(srv)
    seen = {}
    for folder, found in files.items():
        for tok, names in found.items():
            assert len(names) == 1, "token %d twice in %s: %s" % (tok, folder, names)
            assert tok not in seen, "token %d in %s and %s" % (tok, seen[tok], folder)
            seen[tok] = folder
    missing = set(range(n)) - set(seen)
    assert not missing, "%d messages lost, e.g. %s" % (len(missing), sorted(missing)[:5])
    assert len(seen) == n
    assert not any(tmp_left.values()), "links left in tmp/: %s" % {
        k: v[:3] for k, v in tmp_left.items()}
    rows = index_rows(srv)
    for folder, found in files.items():
        on_disk = {name for names in found.values() for name in names}
        in_index = {fn: uid for (mbox, uid, fn) in rows if mbox == folder}
        assert set(in_index) == on_disk, (
            "%s: index and Maildir differ: %d only in the index, %d only on disk"
            % (folder, len(set(in_index) - on_disk), len(on_disk - set(in_index))))
        for fn, uid in in_index.items():
            m = FILE_UID_RE.search(fn)
            assert m is None or int(m.group(1)) == uid, (fn, uid)
    counts = {}
    for folder, found in files.items():
        exists, toks = imap_tokens(srv, folder)
        assert exists == len(found), (folder, exists, len(found))
        assert sorted(toks) == sorted(found), "%s: IMAP and Maildir differ" % folder
        counts[folder] = exists
    return counts


def status_counts(srv):
    c = Raw(srv)
    out = {}
    for folder in FOLDERS:
        r = c.cmd(b"t", b"STATUS %s (MESSAGES UIDNEXT)" % folder.encode())
        out[folder] = int(re.search(rb"MESSAGES (\d+)", r).group(1))
    c.close()
    return out


def start_move(srv, src, dst):
    """Sends UID MOVE 1:* and returns the connection without waiting."""
    c = Raw(srv)
    r = c.cmd(b"s", b"SELECT " + src.encode())
    assert b"* %d EXISTS" % N in r, r[-300:]
    c.send(b"m UID MOVE 1:* " + dst.encode())
    return c


def count_entries(folder_dir, subs):
    n = 0
    for sub in subs:
        try:
            n += sum(1 for _ in os.scandir(folder_dir / sub))
        except FileNotFoundError:
            pass
    return n


def wait_until(pred, deadline_s):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.005)
    return False


def index_agrees_after_rebuild(srv):
    """A rebuild from the Maildir gives the same (mailbox, uid, file) rows
    and keeps UIDVALIDITY: nothing was out of step."""
    before = sorted(map(tuple, index_rows(srv)))
    r = srv.run("index", "rebuild", DEMO, timeout=600)
    assert r.returncode == 0, r.stderr
    assert b"UIDVALIDITY changed" not in r.stdout, r.stdout
    after = sorted(map(tuple, index_rows(srv)))
    assert before == after, "index rebuild changed %d rows" % len(set(before) ^ set(after))


@pytest.mark.slow
def test_move_100k_and_sigkill(yubin_factory):
    srv = yubin_factory({"mail": {"quota": "0", "quota_messages": "0"}}, binary=fast_bin())
    t0 = time.monotonic()
    c = Raw(srv)
    assert last_line(c.cmd(b"c", b"CREATE Dest")).startswith(b"c OK")
    c.close()
    fill_inbox(srv, N)
    print("fill + rebuild %.1fs" % (time.monotonic() - t0))

    # (a) The whole MOVE over IMAP: COPYUID, one EXPUNGE each, exact counts.
    t1 = time.monotonic()
    c = start_move(srv, "INBOX", "Dest")
    r = c.until_tagged(b"m")
    took = time.monotonic() - t1
    last = last_line(r)
    assert last.startswith(b"m OK"), last
    assert r.count(b" EXPUNGE\r\n") + last.count(b" EXPUNGE") == N
    assert b"[COPYUID " in r
    r = c.cmd(b"n", b"NOOP")
    assert b"EXISTS" not in r or b"* 0 EXISTS" in r
    c.close()
    print("MOVE of %d: %.1fs" % (N, took))
    assert status_counts(srv) == {"INBOX": 0, "Dest": N}
    assert check_consistent(srv, N) == {"INBOX": 0, "Dest": N}
    index_agrees_after_rebuild(srv)

    # (b) Back again, killing the whole server mid-way: early (links
    # appearing in the destination's tmp/), in the middle (renames into its
    # cur/ and new/) and late (the source's files being unlinked).
    src, dst = "Dest", "INBOX"
    inbox = srv.maildir(DEMO)
    dirs = {"INBOX": inbox, "Dest": inbox / ".Dest"}
    phases = (
        ("early", lambda s, d: count_entries(dirs[d], ("tmp",)) >= N // 10),
        ("middle", lambda s, d: count_entries(dirs[d], ("cur", "new")) >= N // 2),
        ("late", lambda s, d: count_entries(dirs[s], ("cur", "new")) <= N // 2),
    )
    for phase, reached in phases:
        c = start_move(srv, src, dst)
        hit = wait_until(lambda: reached(src, dst), max(60, 6 * took))
        srv.kill_all()
        c.close()
        assert hit, "%s: the move %s -> %s never got there" % (phase, src, dst)
        srv.start()
        counts = check_consistent(srv, N)
        print("killed %s (%s -> %s): %s" % (phase, src, dst, counts))
        assert sorted(counts.values()) == [0, N], counts
        assert status_counts(srv) == counts
        # Go on from wherever the messages are now.
        if counts[src] != N:
            src, dst = dst, src
    index_agrees_after_rebuild(srv)
    print("total %.1fs" % (time.monotonic() - t0))
