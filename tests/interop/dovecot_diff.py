"""Differential test of yubin's IMAP FETCH against Debian's Dovecot (issue 3,
item 2): every corpus message goes into both servers (the same bytes, in the
same order, by APPEND), and one imaplib client asks both the same FETCH
items and compares what it parses.

Per message: ENVELOPE, BODYSTRUCTURE, RFC822.SIZE, BODY[]; for every part n
(of either server's BODYSTRUCTURE) BODY[n], BODY[n.MIME] for parts below
the root, BINARY[n] and BINARY.SIZE[n] for leaf parts. A difference fails
unless known-differences.txt lists it; an entry that matches nothing fails
too, so the list stays exact.

As a program (from the repository root, as root or as the user dovecot may
run as):

    /usr/bin/python3 tests/interop/dovecot_diff.py --yubin-bin build/yubin \
        [--only NAME-SUBSTRING] [--report FILE]
"""

import argparse
import os
import pwd
import grp
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
INTEGRATION = HERE.parent / "integration"
if str(INTEGRATION) not in sys.path:
    sys.path.insert(0, str(INTEGRATION))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from imapwire import Atom, Client, render  # noqa: E402
from yubin_fixture import free_port  # noqa: E402

KNOWN_FILE = HERE / "known-differences.txt"
DOVECOT_TEMPLATE = HERE / "dovecot.conf.in"
USER = "demo@example.test"
PASSWORD = "interop-Passw0rd!"
ITEMS_PER_FETCH = 120       # section items in one FETCH command


def dovecot_binary():
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK)
        else None)


# ---- Dovecot in a temporary folder --------------------------------------
class Dovecot:
    """`dovecot -F -c DIR/dovecot.conf`: plaintext IMAP on a free port of
    127.0.0.1, one passwd-file user, Maildir under DIR/home."""

    def __init__(self, folder: Path, binary=None):
        self.dir = Path(folder)
        self.bin = binary or dovecot_binary()
        self.port = free_port()
        self.conf = self.dir / "dovecot.conf"
        self.log = self.dir / "dovecot.log"
        self.proc = None

    def _identities(self):
        """(internal user, its group, login user, mail uid, mail gid)."""
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            return ("dovecot", grp.getgrgid(pwd.getpwnam("dovecot").pw_gid)
                    .gr_name, "dovenull", nobody.pw_uid, nobody.pw_gid)
        me = pwd.getpwuid(os.geteuid())
        return (me.pw_name, grp.getgrgid(me.pw_gid).gr_name, me.pw_name,
                me.pw_uid, me.pw_gid)

    def write_config(self):
        internal, group, login, uid, gid = self._identities()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        home = self.dir / "home" / USER.split("@")[0]
        home.mkdir(parents=True, exist_ok=True)
        for path in (home.parent, home):
            os.chown(path, uid, gid)
        fields = {"DIR": str(self.dir), "PORT": str(self.port),
                  "INTERNAL_USER": internal, "INTERNAL_GROUP": group,
                  "LOGIN_USER": login, "MAIL_UID": str(uid),
                  "MAIL_GID": str(gid)}
        text = DOVECOT_TEMPLATE.read_text()
        for key, value in fields.items():
            text = text.replace("@%s@" % key, value)
        assert "@" not in re.sub(r"(?m)#.*$", "", text).replace(
            USER, ""), "unfilled field in %s" % self.conf
        self.conf.write_text(text)
        (self.dir / "passwd").write_text("%s:{PLAIN}%s\n" % (USER, PASSWORD))

    def start(self, timeout=15):
        self.write_config()
        self.proc = subprocess.Popen([self.bin, "-F", "-c", str(self.conf)],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited with %s:\n%s\n%s" % (
                    self.proc.returncode, self.proc.stdout.read().decode(
                        errors="replace"), self.log_tail()))
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("dovecot does not listen on %d:\n%s"
                                       % (self.port, self.log_tail()))
                time.sleep(0.05)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def log_tail(self):
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def client(self):
        return Client(self.port, USER, PASSWORD)


# ---- which parts a BODYSTRUCTURE has -------------------------------------
def is_multipart(body):
    return isinstance(body, tuple) and body and isinstance(body[0], tuple)


def is_message(body):
    """A body-type-msg: MESSAGE/RFC822 (or GLOBAL) with its envelope and
    body (RFC 3501 7.4.2), as opposed to a message/* shown as basic."""
    return (isinstance(body, tuple) and len(body) >= 10
            and isinstance(body[0], bytes) and isinstance(body[1], bytes)
            and body[0].lower() == b"message"
            and isinstance(body[7], tuple) and isinstance(body[8], tuple))


def part_paths(body, prefix="", out=None, root=True):
    """{path: is_leaf} for the parts of a BODYSTRUCTURE (RFC 3501 6.4.5
    numbering: a message/rfc822 part's own multipart children are n.1,
    n.2...; part 1 of a non-multipart message is its body)."""
    if out is None:
        out = {}
    if is_multipart(body):
        n = 0
        for child in body:
            if not isinstance(child, tuple):
                break       # the subtype: the parts are done
            n += 1
            path = prefix + str(n)
            out[path] = not (is_multipart(child) or is_message(child))
            part_paths_inner(child, path, out)
        return out
    if root:
        out["1"] = not is_message(body)
        part_paths_inner(body, "1", out)
    return out


def part_paths_inner(body, path, out):
    if is_multipart(body):
        part_paths(body, path + ".", out, root=False)
    elif is_message(body):
        inner = body[8]
        if is_multipart(inner):
            part_paths(inner, path + ".", out, root=False)
        else:
            out[path + ".1"] = not is_message(inner)
            part_paths_inner(inner, path + ".1", out)


def section_items(parts, single_part):
    """(BODY items, BINARY items) for a message's part paths."""
    body, binary = [], []
    for path in sorted(parts, key=lambda p: [int(x) for x in p.split(".")]):
        body.append("BODY.PEEK[%s]" % path)
        if not (single_part and path == "1"):
            body.append("BODY.PEEK[%s.MIME]" % path)
        if parts[path]:
            binary.append("BINARY.PEEK[%s]" % path)
            binary.append("BINARY.SIZE[%s]" % path)
    return body, binary


def reply_name(item):
    """The name a server answers a FETCH item with."""
    return item.replace(".PEEK", "")


# ---- fetching --------------------------------------------------------------
def response_code(typ, text):
    """What a failed FETCH is compared as: NO with its response code, BAD,
    or BYE (the connection was closed)."""
    if typ != "NO":
        return typ
    m = re.match(r"\s*\[([^\]]*)\]", text or "")
    return "NO [%s]" % m.group(1).split(" ")[0] if m else "NO"


def fetch_items(client, seq, items):
    """{name: value} for items of message seq. A NO answer gives each item
    the value 'NO [CODE]', a closed connection 'BYE' (then the client
    reconnects); when several items were asked, each is retried alone, so
    one bad part does not hide the others."""
    out = {}
    for i in range(0, len(items), ITEMS_PER_FETCH):
        chunk = items[i:i + ITEMS_PER_FETCH]
        typ, got, text = client.fetch(str(seq), "(%s)" % " ".join(chunk))
        if typ == "BYE":
            client.reconnect()
        if typ == "OK":
            out.update(got.get(seq, {}))
            continue
        if len(chunk) == 1:
            out[reply_name(chunk[0])] = response_code(typ, text)
            continue
        for item in chunk:
            out.update(fetch_items(client, seq, [item]))
    return out


def structure(client, count):
    typ, got, text = client.fetch("1:%d" % count,
                                  "(RFC822.SIZE ENVELOPE BODYSTRUCTURE)")
    assert typ == "OK", "FETCH 1:* structure failed: %s" % text
    return got


# ---- known differences -----------------------------------------------------
class Known:
    """known-differences.txt: `message<TAB>item<TAB>reason` per line; message
    and item may use `*` (nothing else is special: corpus names hold `[`)."""

    def __init__(self, path=KNOWN_FILE):
        self.entries = []
        for lineno, line in enumerate(path.read_text().split("\n"), 1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 3 or not fields[2].strip():
                raise ValueError("%s:%d: want message<TAB>item<TAB>reason"
                                 % (path, lineno))
            self.entries.append({
                "line": lineno, "message": fields[0], "item": fields[1],
                "reason": fields[2].strip(), "used": 0,
                "re": (self._glob(fields[0]), self._glob(fields[1]))})

    @staticmethod
    def _glob(pattern):
        return re.compile("^" + ".*".join(map(re.escape, pattern.split("*")))
                          + "$", re.S)

    def match(self, name, item):
        for e in self.entries:
            if e["re"][0].match(name) and e["re"][1].match(item):
                e["used"] += 1
                return e
        return None

    def unused(self):
        return [e for e in self.entries if not e["used"]]


# ---- the comparison --------------------------------------------------------
class Result:
    def __init__(self):
        self.messages = 0
        self.items = 0
        self.same = 0
        self.explained = []        # (name, item, entry)
        self.unexplained = []      # (name, item, ours, theirs)
        self.refused = []          # (name, yubin reply, dovecot reply)

    def summary(self):
        return ("%d messages, %d items compared: %d identical, %d listed "
                "differences, %d unexplained; %d refused by both"
                % (self.messages, self.items, self.same, len(self.explained),
                   len(self.unexplained), len(self.refused)))


def load(clients, messages, result):
    """APPENDs every message to every client's INBOX; returns the names of
    the messages both took, in order. A message only one server takes is
    an unexplained difference (item APPEND)."""
    kept = []
    for name, data in messages:
        replies = [c.append("INBOX", data) for c in clients]
        ok = [typ == "OK" for typ, _ in replies]
        if all(ok):
            kept.append(name)
        elif not any(ok):
            result.refused.append((name, replies[0][1], replies[1][1]))
        else:
            raise AssertionError(
                "%s: APPEND taken by one server only: yubin %r, dovecot %r"
                " (the message numbers would no longer match)"
                % (name, replies[0], replies[1]))
    return kept


def compare_values(name, ours, theirs, known, result):
    for item in sorted(set(ours) | set(theirs)):
        a, b = ours.get(item, "(absent)"), theirs.get(item, "(absent)")
        result.items += 1
        if a == b:
            result.same += 1
            continue
        entry = known.match(name, item)
        if entry:
            result.explained.append((name, item, entry))
        else:
            result.unexplained.append((name, item, a, b))


def compare_message(name, seq, clients, structs, known, result):
    bodies = [s.get(seq, {}).get("BODYSTRUCTURE") for s in structs]
    parts = {}
    for body in bodies:
        for path, leaf in part_paths(body).items():
            parts[path] = parts.get(path, True) and leaf
    single = not any(is_multipart(b) for b in bodies)
    body_items, binary_items = section_items(parts, single)
    items = ["BODY.PEEK[]"] + body_items + binary_items
    got = []
    for client, struct in zip(clients, structs):
        values = dict(struct.get(seq, {}))
        values.pop("FLAGS", None)
        values.update(fetch_items(client, seq, items))
        for unasked in ("FLAGS", "UID"):
            values.pop(unasked, None)
        got.append(values)
    compare_values(name, got[0], got[1], known, result)


def run(yubin_client, dovecot_client, messages, known, progress=None):
    """Loads messages into both servers and compares them; returns a
    Result. messages: [(name, bytes)]."""
    result = Result()
    clients = [yubin_client, dovecot_client]
    names = load(clients, messages, result)
    counts = [c.select("INBOX") for c in clients]
    assert counts == [len(names)] * 2, (
        "INBOX holds %s messages (yubin, dovecot), %d were appended"
        % (counts, len(names)))
    structs = [structure(c, len(names)) for c in clients]
    for seq, name in enumerate(names, 1):
        compare_message(name, seq, clients, structs, known, result)
        result.messages += 1
        if progress and seq % 200 == 0:
            progress("%d/%d messages" % (seq, len(names)))
    return result


def report(result, known):
    """The text a failing run shows (and --report writes)."""
    lines = [result.summary()]
    for name, item, a, b in result.unexplained:
        lines.append("DIFF %s\t%s\n  yubin:   %s\n  dovecot: %s"
                     % (name, item, render(a), render(b)))
    for e in known.unused():
        lines.append("UNUSED known-differences.txt:%d %s\t%s (matches no "
                     "difference any more: remove it)"
                     % (e["line"], e["message"], e["item"]))
    return "\n".join(lines)


def corpus_for_test(only=None):
    """[(name, bytes)] of every corpus message (mbox files split), minus
    empty files (APPEND of zero bytes is meaningless to both)."""
    from test_corpus import corpus_messages
    out = []
    for name, data, _may_refuse in corpus_messages():
        if not data:
            continue
        if only and only not in name:
            continue
        out.append((name, data))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--yubin-bin", default=None)
    ap.add_argument("--only", help="compare the corpus messages whose name "
                    "contains this")
    ap.add_argument("--report", help="also write the report to this file")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary folder")
    args = ap.parse_args()
    if not dovecot_binary():
        sys.exit("dovecot is not installed (scripts/deps.sh test)")
    from yubin_fixture import YubinServer, DEMO, DEMO_PASSWORD
    known = Known()
    base = Path(tempfile.mkdtemp(prefix="yubin-interop-"))
    base.chmod(0o755)
    (base / "yubin").mkdir(mode=0o755)
    srv = YubinServer(base / "yubin", binary=args.yubin_bin,
                      overrides=YUBIN_OVERRIDES).start()
    try:
        dove = Dovecot(base / "dovecot").start()
    except RuntimeError:
        srv.stop()
        raise
    try:
        ours = Client(srv.imap_port, DEMO, DEMO_PASSWORD)
        theirs = dove.client()
        t0 = time.monotonic()
        result = run(ours, theirs, corpus_for_test(args.only), known,
                     progress=lambda s: print(s, file=sys.stderr))
        ours.close()
        theirs.close()
    finally:
        srv.stop()
        dove.stop()
    text = report(result, known) + "\n(%.1f s)" % (time.monotonic() - t0)
    print(text)
    if args.report:
        Path(args.report).write_text(text + "\n")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    sys.exit(1 if result.unexplained else 0)


# yubin for the comparison: plaintext LOGIN (Dovecot is plaintext too), a
# size limit above the largest corpus message.
YUBIN_OVERRIDES = {"auth": {"allow_plaintext": "yes"},
                   "mail": {"max_message_size": "100M"}}


if __name__ == "__main__":
    main()
