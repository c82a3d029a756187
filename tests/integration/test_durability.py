"""Issue 2, item 4 (and DESIGN.md, Data): 4 parallel loops run 5,000
`yubin deliver` calls while deliver processes and the whole server are
killed with SIGKILL. Every delivery that exited 0 must be present exactly
once and whole; no partial file may ever be visible, in the Maildir's new/
and cur/ or over POP3 (also while the deliveries run).

$YUBIN_FAST_BIN (a build without sanitizers) is used when set, for speed;
$YUBIN_DURABILITY_N changes the number of deliveries (default 5000)."""

import hashlib
import os
import poplib
import random
import re
import signal
import ssl
import subprocess
import threading
import time

import pytest

from yubin_fixture import DEMO, RUN_AS, fast_bin

TOTAL = int(os.environ.get("YUBIN_DURABILITY_N", "5000"))
LOOPS = 4
SERIAL_RE = re.compile(rb"^X-Serial: (\d+)\r$", re.M)


def make_message(serial, rnd):
    if rnd.random() < 0.03:
        lines = rnd.randrange(1000, 4000)      # 70-280 KB: a wide write window
    else:
        lines = rnd.randrange(1, 60)
    head = (b"From: loop@example.org\r\nTo: demo@example.test\r\n"
            b"Subject: durability %d\r\nX-Serial: %d\r\n"
            b"Message-ID: <dur-%d@example.org>\r\n\r\n" % (serial, serial,
                                                           serial))
    body = b"".join(b"%d-%d %s\r\n" % (serial, i,
                                       rnd.randbytes(30).hex().encode())
                    for i in range(lines))
    content = head + body
    return content + b"X-Checksum: %s\r\n" % (
        hashlib.sha256(content).hexdigest().encode())


def check_whole(data):
    """(serial, None) for a whole message, (serial or None, why) if not."""
    m = SERIAL_RE.search(data)
    serial = int(m.group(1)) if m else None
    if not data.endswith(b"\r\n"):
        return serial, "does not end with CRLF (%d bytes)" % len(data)
    cut = data.rfind(b"X-Checksum: ", 0)
    if cut < 0 or (cut > 0 and data[cut - 2:cut] != b"\r\n"):
        return serial, "no checksum line (%d bytes)" % len(data)
    want = data[cut + 12:-2].decode(errors="replace")
    if hashlib.sha256(data[:cut]).hexdigest() != want:
        return serial, "checksum mismatch (%d bytes)" % len(data)
    if serial is None:
        return None, "no X-Serial header"
    return serial, None


class Run:
    """The deliveries, the deliver-killer and the POP3 watcher."""

    def __init__(self, srv, binary):
        self.srv = srv
        self.binary = binary
        self.lock = threading.Lock()
        self.next_serial = 1
        self.done = 0
        self.results = {}          # serial -> exit status
        self.running = {}          # serial -> Popen
        self.killed = 0
        self.finished = threading.Event()
        self.server_down = threading.Event()
        self.pop3_problems = []
        self.pop3_checked = 0
        self.stderr_samples = {}

    def take(self):
        with self.lock:
            if self.next_serial > TOTAL:
                return None
            s = self.next_serial
            self.next_serial += 1
            return s

    def loop(self, seed):
        rnd = random.Random(seed)
        while True:
            serial = self.take()
            if serial is None:
                return
            data = make_message(serial, rnd)
            p = subprocess.Popen(
                [self.binary, "-c", str(self.srv.conf), "deliver", DEMO],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, **RUN_AS)
            with self.lock:
                self.running[serial] = p
            try:
                _, err = p.communicate(data, timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
            with self.lock:
                del self.running[serial]
                self.results[serial] = p.returncode
                self.done += 1
                if p.returncode not in (0, -signal.SIGKILL):
                    self.stderr_samples.setdefault(p.returncode, err[-400:])

    def killer(self):
        rnd = random.Random(7)
        while not self.finished.is_set():
            time.sleep(rnd.uniform(0.02, 0.08))
            with self.lock:
                victims = list(self.running.values())
            if victims:
                try:
                    rnd.choice(victims).send_signal(signal.SIGKILL)
                    self.killed += 1
                except ProcessLookupError:
                    pass

    def watcher(self):
        """POP3 sessions while mail arrives: every message it sees is whole."""
        rnd = random.Random(11)
        while not self.finished.is_set():
            if self.server_down.is_set():
                time.sleep(0.05)
                continue
            try:
                pop = self.srv.pop3_stls(timeout=20)
            except (OSError, EOFError, poplib.error_proto, ssl.SSLError):
                time.sleep(0.1)
                continue
            try:
                listing = pop.list()[1]
                picks = rnd.sample(listing, min(5, len(listing)))
                for entry in picks:
                    num, size = (int(x) for x in entry.split())
                    lines = pop.retr(num)[1]
                    data = b"".join(l + b"\r\n" for l in lines)
                    serial, why = check_whole(data)
                    self.pop3_checked += 1
                    if why or len(data) != size:
                        self.pop3_problems.append(
                            "during the run, POP3 message %d (serial %s, LIST "
                            "%d, RETR %d): %s" % (num, serial, size,
                                                  len(data), why))
                pop.quit()
            except (OSError, EOFError, poplib.error_proto, ssl.SSLError):
                pass
            finally:
                try:
                    pop.close()
                except Exception:
                    pass


@pytest.mark.slow
def test_deliveries_survive_sigkill(yubin_factory):
    binary = fast_bin()
    srv = yubin_factory({"mail": {"quota": "0", "quota_messages": "0"}},
                        binary=binary)
    run = Run(srv, binary)
    threads = [threading.Thread(target=run.loop, args=(i,))
               for i in range(LOOPS)]
    helpers = [threading.Thread(target=run.killer),
               threading.Thread(target=run.watcher)]
    t0 = time.monotonic()
    for t in threads + helpers:
        t.start()
    server_kills = 0
    try:
        for mark in (TOTAL // 3, 2 * TOTAL // 3):
            while run.done < mark and any(t.is_alive() for t in threads):
                time.sleep(0.05)
            run.server_down.set()
            srv.kill_all()
            server_kills += 1
            srv.start()
            run.server_down.clear()
        for t in threads:
            t.join()
    finally:
        run.finished.set()
        for t in helpers:
            t.join()
    elapsed = time.monotonic() - t0

    ok = {s for s, rc in run.results.items() if rc == 0}
    killed = {s for s, rc in run.results.items() if rc == -signal.SIGKILL}
    other = {s: rc for s, rc in run.results.items()
             if rc != 0 and rc != -signal.SIGKILL}
    summary = ("%d deliveries in %.0fs: %d exited 0, %d killed, %d other %s; "
               "server killed %d times; POP3 checked %d messages during the run"
               % (len(run.results), elapsed, len(ok), len(killed), len(other),
                  sorted(set(other.values())), server_kills, run.pop3_checked))
    print(summary)
    assert len(run.results) == TOTAL
    assert server_kills == 2
    assert not [rc for rc in other.values() if rc < 0], \
        "deliver died of a signal we did not send: %s" % other
    assert len(other) <= len(ok) // 100 + 5, (
        "too many deliveries failed without being killed: %s\n%s\nstderr "
        "samples: %s" % (summary, other if len(other) < 50 else "",
                         run.stderr_samples))

    # The Maildir after the crashes (the server restarts once more first,
    # so it has the chance to recover whatever it needs to).
    t1 = time.monotonic()
    srv.restart()
    print("restart %.1fs" % (time.monotonic() - t1))
    present = {}
    partial = []
    for path in srv.message_files(DEMO):
        serial, why = check_whole(path.read_bytes())
        if why:
            partial.append("%s: %s" % (path.name, why))
        present.setdefault(serial, []).append(path.name)
    dupes = {s: n for s, n in present.items() if len(n) > 1}
    lost = sorted(ok - set(present))
    assert not partial, "partial files in new/ or cur/:\n" + "\n".join(
        partial[:30])
    assert not dupes, "delivered more than once: %s" % dict(
        list(dupes.items())[:20])
    assert not lost, "%d acknowledged deliveries are missing, e.g. %s\n%s" % (
        len(lost), lost[:20], summary)

    # POP3 shows exactly the same set, every message whole
    print("maildir scan %.1fs" % (time.monotonic() - t1))
    pop = srv.login_retry(lambda: srv.pop3_stls(timeout=120), seconds=10)
    print("login %.1fs" % (time.monotonic() - t1))
    seen = {}
    bad = []
    for entry in pop.list()[1]:
        num, size = (int(x) for x in entry.split())
        data = b"".join(l + b"\r\n" for l in pop.retr(num)[1])
        serial, why = check_whole(data)
        if why or len(data) != size:
            bad.append("POP3 message %d (serial %s, LIST %d, RETR %d): %s"
                       % (num, serial, size, len(data), why))
        seen[serial] = seen.get(serial, 0) + 1
    pop.quit()
    print("fetch %.1fs" % (time.monotonic() - t1))
    assert not bad, "\n".join(bad[:30])
    assert not run.pop3_problems, "\n".join(run.pop3_problems[:30])
    assert all(n == 1 for n in seen.values()), "POP3 shows duplicates"
    assert set(seen) == set(present), (
        "POP3 and the Maildir disagree: only in POP3 %s, only in the "
        "Maildir %s" % (sorted(set(seen) - set(present))[:20],
                        sorted(set(present) - set(seen))[:20]))
