#!/usr/bin/python3
"""POP3 benchmark: yubin against Debian's Dovecot, side by side.

Both servers get the same accounts, the same password hash, the same messages
and the same certificate, run on this machine with only one of them under load
at any moment (they never compete for the cores), and meet the same load:

  throughput  C clients (default 50) each log in to their own account, then
              all at once RETR every message of it (default 1,000; no DELE)
              and QUIT. Timed from the moment all are logged in until the
              last QUIT answer: messages/s, MB/s, and CPU seconds the server
              and the client spent. The servers take turns, round after
              round, so that other work on the machine weighs on both.
  idle        N sessions (default 1,000, one per account) log in and stay
              idle; the server's total memory (PSS and RSS summed over the
              master and all its children, from /proc/PID/smaps_rollup) is
              read before and after: bytes per idle session.

Every figure is printed with the yubin/Dovecot ratio. Plaintext (USER/PASS on
the plain port) and implicit TLS (POP3S) are both measured unless --transport
says otherwise. Nothing is asserted: this measures, it does not test.

Run as root (Dovecot drops to its own users; yubin stays root unless its
config names a user). See bench/README.md and docs/performance.md.
"""

import argparse
import base64
import hashlib
import json
import math
import multiprocessing
import os
import random
import re
import resource
import shutil
import signal
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

HERE = os.path.dirname(os.path.abspath(__file__))
DOMAIN = "example.test"
PASSWORD = "bench-password-1"
TERMINATOR = b"\r\n.\r\n"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- messages

WORDS = ("the of and to in is that for it as was with be by on not he this "
         "are or his from at which but have an they you were her she there "
         "mail server campus student lecture report deadline meeting room "
         "library exam schedule thesis seminar budget network password "
         "yubin dovecot postfix maildir index quota delivery message").split()


def text_lines(rng, count):
    """A pool of wrapped text lines; some start with '.' to make the servers
    dot-stuff (RFC 1939 3)."""
    lines = []
    for i in range(count):
        words, n = [], 0
        limit = rng.randint(20, 76)
        while n < limit:
            w = rng.choice(WORDS)
            words.append(w)
            n += len(w) + 1
        line = " ".join(words)
        if i % 37 == 0:
            line = "." + line
        lines.append(line)
    return lines


def message_sizes(rng, count, avg):
    """Log-normal sizes (most mail is small, a few messages are large),
    clipped to [800 B, 40 * avg] and scaled so the mean is avg."""
    sigma = 1.1
    mu = math.log(avg) - sigma * sigma / 2
    sizes = [min(max(rng.lognormvariate(mu, sigma), 800), 40 * avg)
             for _ in range(count)]
    scale = avg * count / sum(sizes)
    return [max(800, int(s * scale)) for s in sizes]


def make_message(rng, i, size, pool):
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0900",
                         time.gmtime(1700000000 + i * 3600))
    head = (f"Return-Path: <sender{i % 17}@example.org>\n"
            f"From: Sender {i % 17} <sender{i % 17}@example.org>\n"
            f"To: Bench User <bench@{DOMAIN}>\n"
            f"Subject: Benchmark message {i}\n"
            f"Date: {date}\n"
            f"Message-ID: <bench.{i}@example.org>\n"
            "MIME-Version: 1.0\n")
    attach = i % 3 == 0 and size > 4000
    text = []
    n = len(head) + 200
    target = size // 3 if attach else size
    while n < target:
        line = rng.choice(pool)
        text.append(line)
        n += len(line) + 1
    body = "\n".join(text) + "\n"
    if not attach:
        msg = (head + "Content-Type: text/plain; charset=us-ascii\n\n"
               + body)
        return msg.encode()
    blob = rng.randbytes(max(1, (size - n) * 3 // 4))
    b64 = base64.encodebytes(blob).decode()
    msg = (head
           + 'Content-Type: multipart/mixed; boundary="b-' + str(i) + '"\n\n'
           + f"--b-{i}\nContent-Type: text/plain; charset=us-ascii\n\n"
           + body
           + f"\n--b-{i}\nContent-Type: application/octet-stream\n"
           + f'Content-Disposition: attachment; filename="data{i}.bin"\n'
           + "Content-Transfer-Encoding: base64\n\n"
           + b64
           + f"\n--b-{i}--\n")
    return msg.encode()


def make_messages(count, avg, seed):
    rng = random.Random(seed)
    pool = text_lines(rng, 4000)
    sizes = message_sizes(rng, count, avg)
    return [make_message(rng, i, s, pool) for i, s in enumerate(sizes)]


def wire_length(msg):
    """Bytes of a RETR answer after the +OK line: CRLF line ends, dot
    stuffing, and the terminating '.' line."""
    lines = msg.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    n = sum(len(line) + 2 for line in lines)
    n += sum(1 for line in lines if line.startswith(b"."))
    return n + 3


# ---------------------------------------------------------------- processes


def proc_children():
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d))
    return children


def proc_tree(root):
    children = proc_children()
    pids, i = [root], 0
    while i < len(pids):
        pids.extend(children.get(pids[i], []))
        i += 1
    return pids


def proc_cpu(pids):
    """CPU seconds (user+system) of pids, including their reaped children."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])
    return total / tick


def proc_memory(pids):
    """(PSS, RSS, process count) in bytes, summed over pids."""
    pss = rss = count = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                text = f.read()
        except OSError:
            continue
        m = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
        r = re.search(r"^Rss:\s+(\d+) kB", text, re.M)
        if not m or not r:
            continue  # zombie or kernel thread
        pss += int(m.group(1)) * 1024
        rss += int(r.group(1)) * 1024
        count += 1
    return pss, rss, count


def system_busy():
    """CPU seconds the whole machine has spent busy (not idle or iowait)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / \
        os.sysconf("SC_CLK_TCK")


def wait_quiet(limit):
    """Waits up to limit seconds for a 2-second window in which the
    machine is less than 10 % busy (this script's servers are idle
    then, so whatever runs is someone else's)."""
    deadline = time.monotonic() + limit
    ncpu = os.cpu_count() or 1
    while time.monotonic() < deadline:
        b0 = system_busy()
        time.sleep(2)
        if (system_busy() - b0) / (2 * ncpu) < 0.1:
            return True
    return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, tls, proc, timeout=30):
    """Until a POP3 greeting comes from port (through TLS if tls)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            Pop(port, tls, client_context(), timeout=5).close()
            return
        except (OSError, PopError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answers on port {port}")


def run(cmd, **kw):
    kw.setdefault("check", True)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    try:
        return subprocess.run(cmd, **kw)
    except subprocess.CalledProcessError as e:
        err = (e.stderr or b"").decode(errors="replace").strip()
        raise RuntimeError(f"{' '.join(map(str, cmd))}: exit "
                           f"{e.returncode}: {err}") from None


def parallel(jobs, fn, workers):
    with ThreadPoolExecutor(workers) as ex:
        for _ in ex.map(fn, jobs):
            pass


def yescrypt_hash(password):
    salt = "".join(random.SystemRandom().choice(
        string.ascii_letters + string.digits + "./") for _ in range(16))
    h = crypt.crypt(password, "$y$j9T$" + salt + "$")
    if not h or not h.startswith("$y$"):
        raise RuntimeError("libxcrypt has no yescrypt")
    return h


# ---------------------------------------------------------------- servers


class Server:
    """One server under test: prepared in its own folder, started, measured
    through its process tree, stopped."""

    name = "?"

    def __init__(self, root, opts):
        self.root = root
        self.opts = opts
        os.makedirs(root, exist_ok=True)
        self.proc = None
        self.port = {"plain": free_port(), "tls": free_port()}

    def start(self):
        with open(os.path.join(self.root, "serve.log"), "ab") as logf:
            self.proc = subprocess.Popen(self.command(), stdout=logf,
                                         stderr=subprocess.STDOUT,
                                         start_new_session=True)
        for transport, port in self.port.items():
            wait_port(port, transport == "tls", self.proc)

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def pids(self):
        return proc_tree(self.proc.pid)

    def memory(self):
        return proc_memory(self.pids())

    def cpu(self):
        return proc_cpu(self.pids())


class Yubin(Server):
    name = "yubin"

    def __init__(self, root, opts):
        super().__init__(root, opts)
        self.bin = os.path.abspath(opts.yubin_bin)
        self.conf = os.path.join(root, "yubin.conf")

    def yubin(self, *args, **kw):
        return run([self.bin, "-c", self.conf, *args], **kw)

    def version(self):
        out = run([self.bin, "--version"]).stdout.decode().strip()
        return out.splitlines()[0] if out else "?"

    def init(self):
        run([self.bin, "init", self.root, "--domain", DOMAIN,
             "--hostname", "localhost"])

    def configure(self):
        """Ports and limits for this run (also on a folder from --cache)."""
        text = open(self.conf).read()
        text = conf_set(text, "listener pop3", "port", self.port["plain"])
        text = conf_set(text, "listener pop3s", "port", self.port["tls"])
        text = conf_set(text, "auth", "allow_plaintext", "yes")
        limit = self.opts.idle + self.opts.clients + 100
        text = conf_set(text, "server", "max_connections", limit)
        text = conf_set(text, "server", "max_connections_per_ip", limit)
        text = conf_set(text, "pop3", "login_delay", "0")
        if self.opts.yubin_workers:
            text = conf_set(text, "server", "workers",
                            self.opts.yubin_workers)
        with open(self.conf, "w") as f:
            f.write(text)
        self.yubin("check")

    def certificate(self):
        text = open(self.conf).read()
        cert = conf_get(text, "tls", ("cert", "cert_file"))
        key = conf_get(text, "tls", ("key", "key_file"))
        return (os.path.join(self.root, cert), os.path.join(self.root, key))

    def add_users(self, users):
        def add(user):
            self.yubin("user", "add", user,
                       input=(PASSWORD + "\n").encode())
        parallel(users, add, os.cpu_count() or 2)

    def password_hashes(self, users):
        """The hashes yubin stored, so that Dovecot checks the very same
        ones; {} when yubin.db does not have them where expected."""
        import sqlite3
        db = os.path.join(self.root, "data", "yubin.db")
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            rows = dict(con.execute(
                "SELECT address, password_hash FROM accounts"))
            con.close()
        except sqlite3.Error as e:
            log(f"yubin: cannot read hashes from yubin.db: {e}")
            return {}
        hashes = {u: rows.get(u) for u in users}
        sample = hashes[users[0]] or ""
        if None in hashes.values() or \
           crypt.crypt(PASSWORD, sample) != sample:
            log("yubin: unexpected hashes in yubin.db")
            return {}
        return hashes

    def maildir(self, user):
        local = user.split("@")[0]
        return os.path.join(self.root, "data", "mail", DOMAIN, local)

    def fill(self, users, messages):
        """Every user gets every message, in order. --yubin-fill deliver
        (default) runs `yubin deliver USER... < msg` once per message;
        maildir drops the files into new/, which yubin adopts when a
        session opens the mailbox."""
        if self.opts.yubin_fill == "maildir":
            for user in users:
                maildir_fill(self.maildir(user), messages, None)
            return
        # Groups of recipients run in parallel; within one, the messages
        # go in one at a time, in order, so UIDs follow the same order as
        # on the Dovecot side.
        per = min(200, max(1, math.ceil(len(users) / self.opts.fill_jobs)))
        groups = [users[i:i + per] for i in range(0, len(users), per)]

        def deliver(group):
            for msg in messages:
                self.yubin("deliver", *group, input=msg)
        parallel(groups, deliver, self.opts.fill_jobs)

    def command(self):
        return [self.bin, "-c", self.conf, "serve"]


class Dovecot(Server):
    name = "dovecot"

    def __init__(self, root, opts):
        super().__init__(root, opts)
        os.chmod(root, 0o755)
        self.conf = os.path.join(root, "dovecot.conf")
        self.users = []

    def version(self):
        out = run(["/usr/sbin/dovecot", "--version"]).stdout.decode()
        return "Dovecot " + out.strip()

    def configure(self, cert, key):
        sessions = self.opts.idle + self.opts.clients + 100
        perf = self.opts.dovecot_login == "performance"
        fields = {
            "root": self.root, "cert": cert, "key": key,
            "port_plain": self.port["plain"],
            "port_tls": self.port["tls"],
            "sessions": sessions,
            "clients_limit": sessions * 3,
            "login_mode": self.opts.dovecot_login,
            "login_service_count": 0 if perf else 1,
            "login_min_avail": (os.cpu_count() or 2) if perf else 0,
        }
        with open(os.path.join(HERE, "dovecot.conf.in")) as f:
            text = string.Template(f.read()).substitute(fields)
        with open(self.conf, "w") as f:
            f.write(text)
        run(["/usr/sbin/dovecot", "-c", self.conf, "-n"])

    def write_passwd(self, hashes):
        """passwd-file: user:{CRYPT}hash:uid:gid::home:: (mail as the
        dovecot user)."""
        import pwd
        pw = pwd.getpwnam("dovecot")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        lines = []
        for user, h in hashes.items():
            home = self.home(user)
            lines.append(f"{user}:{{CRYPT}}{h}:{self.uid}:{self.gid}"
                         f"::{home}::\n")
        path = os.path.join(self.root, "passwd")
        with open(path, "w") as f:
            f.writelines(lines)
        os.chmod(path, 0o644)

    def home(self, user):
        return os.path.join(self.root, "home", user.split("@")[0])

    def fill(self, users, messages):
        for user in users:
            maildir_fill(os.path.join(self.home(user), "Maildir"),
                         messages, (self.uid, self.gid))
        for user in users:
            os.chown(self.home(user), self.uid, self.gid)
        os.chown(os.path.join(self.root, "home"), self.uid, self.gid)

    def command(self):
        return ["/usr/sbin/dovecot", "-c", self.conf, "-F"]


def maildir_fill(path, messages, owner):
    """Writes messages into path/new like a delivery agent would."""
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    for i, msg in enumerate(messages):
        name = f"{1700000000 + i}.M{i}P{os.getpid()}.bench"
        with open(os.path.join(path, "new", name), "wb") as f:
            f.write(msg)
        if owner:
            os.chown(os.path.join(path, "new", name), *owner)
    if owner:
        for sub in ("", "cur", "new", "tmp"):
            os.chown(os.path.join(path, sub), *owner)


def conf_set(text, section, key, value):
    """Sets key = value inside [section] of a yubin.conf, adding the key or
    the section when missing."""
    lines = text.splitlines()
    out, in_sec, done, seen = [], False, False, False
    for line in lines:
        head = re.match(r"\s*\[([^\]]+)\]", line)
        if head:
            if in_sec and not done:
                # Before the blank and comment lines that lead into the
                # next section.
                at = len(out)
                while at > 0 and re.match(r"\s*(#|$)", out[at - 1]):
                    at -= 1
                out.insert(at, f"{key} = {value}")
                done = True
            in_sec = head.group(1).strip() == section
            seen = seen or in_sec
        elif in_sec and re.match(rf"\s*{re.escape(key)}\s*=", line):
            if not done:
                out.append(f"{key} = {value}")
                done = True
            continue
        out.append(line)
    if in_sec and not done:
        out.append(f"{key} = {value}")
        done = True
    if not seen:
        out += ["", f"[{section}]", f"{key} = {value}"]
    return "\n".join(out) + "\n"


def conf_get(text, section, keys):
    """The value of the first of keys found in [section]."""
    in_sec = False
    for line in text.splitlines():
        head = re.match(r"\s*\[([^\]]+)\]", line)
        if head:
            in_sec = head.group(1).strip() == section
        elif in_sec:
            m = re.match(r"\s*([\w.]+)\s*=\s*(.*?)\s*$", line)
            if m and m.group(1) in keys:
                return m.group(2)
    raise RuntimeError(f"no {keys[0]} in [{section}] of yubin.conf")


# ---------------------------------------------------------------- client


class PopError(Exception):
    pass


class Pop:
    """Minimal POP3 client on a raw socket: poplib costs more CPU than the
    servers it would measure."""

    def __init__(self, port, tls, ctx, timeout=120):
        s = socket.create_connection(("127.0.0.1", port), timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            s = ctx.wrap_socket(s, server_hostname="localhost")
        self.sock = s
        self.buf = bytearray()
        self.ok(self.line(), b"greeting")

    def fill(self):
        data = self.sock.recv(262144)
        if not data:
            raise PopError("connection closed")
        self.buf += data

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            self.fill()

    @staticmethod
    def ok(line, what):
        if not line.startswith(b"+OK"):
            raise PopError(f"{what}: {line[:200]!r}")

    def cmd(self, command):
        self.sock.sendall(command + b"\r\n")
        line = self.line()
        self.ok(line, command.split()[0].decode())
        return line

    def login(self, user, password):
        self.cmd(b"USER " + user.encode())
        self.cmd(b"PASS " + password.encode())

    def multiline(self):
        """Reads a multi-line answer; returns its length in bytes."""
        if self.buf.startswith(b".\r\n"):
            del self.buf[:3]
            return 3
        start = 0
        while True:
            i = self.buf.find(TERMINATOR, start)
            if i >= 0:
                n = i + len(TERMINATOR)
                del self.buf[:n]
                return n
            start = max(0, len(self.buf) - len(TERMINATOR) + 1)
            self.fill()

    def retr(self, number):
        self.cmd(b"RETR %d" % number)
        return self.multiline()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def load_client(port, tls, user, expect, barrier, results):
    """One throughput client (a process): log in, wait for all, RETR every
    message, QUIT."""
    out = {"user": user, "error": None, "messages": 0, "bytes": 0,
           "mismatch": 0}
    try:
        pop = Pop(port, tls, client_context())
        pop.login(user, PASSWORD)
    except Exception as e:  # report, then still meet the barrier
        out["error"] = f"login: {e}"
        pop = None
    try:
        barrier.wait(300)
    except Exception:
        out["error"] = out["error"] or "barrier broken"
        pop = None
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    out["start"] = time.perf_counter()
    try:
        for i, want in enumerate(expect, 1):
            if pop is None:
                break
            n = pop.retr(i)
            out["messages"] += 1
            out["bytes"] += n
            out["mismatch"] += n != want
        if pop:
            pop.cmd(b"QUIT")
    except Exception as e:
        out["error"] = f"after {out['messages']} messages: {e}"
    out["end"] = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu"] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if pop:
        pop.close()
    results.put(out)


def throughput(server, transport, users, expect):
    """C clients at once; returns a dict of figures."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(users) + 1)
    results = ctx.Queue()
    port = server.port[transport]
    procs = [ctx.Process(target=load_client,
                         args=(port, transport == "tls", u, expect,
                               barrier, results))
             for u in users]
    for p in procs:
        p.start()
    barrier.wait(300)
    cpu0 = server.cpu()
    busy0 = system_busy()
    t0 = time.perf_counter()
    outs = [results.get(timeout=1800) for _ in procs]
    t1 = time.perf_counter()
    cpu1 = server.cpu()
    busy1 = system_busy()
    for p in procs:
        p.join()
    start = min(o["start"] for o in outs)
    end = max(o["end"] for o in outs)
    wall = max(end - start, 1e-9)
    msgs = sum(o["messages"] for o in outs)
    nbytes = sum(o["bytes"] for o in outs)
    errors = [f"{o['user']}: {o['error']}" for o in outs if o["error"]]
    client_cpu = sum(o["cpu"] for o in outs)
    ncpu = os.cpu_count() or 1
    return {
        "clients": len(users),
        "messages": msgs,
        "bytes": nbytes,
        "seconds": wall,
        "messages_per_s": msgs / wall,
        "mb_per_s": nbytes / wall / 1e6,
        "server_cpu_s": cpu1 - cpu0,
        "client_cpu_s": client_cpu,
        "server_cpu_share": (cpu1 - cpu0) / (wall * ncpu),
        "client_cpu_share": client_cpu / (wall * ncpu),
        # Whatever else ran meanwhile (other users of the machine, kernel
        # threads, this script's own bookkeeping).
        "other_cpu_share": max(0.0, (busy1 - busy0) - (cpu1 - cpu0)
                               - client_cpu) / ((t1 - t0) * ncpu),
        "server_cpu_ms_per_mb": (cpu1 - cpu0) * 1e3 / max(nbytes / 1e6,
                                                          1e-9),
        # Uneven service shows as a spread between the first and the
        # last client to finish.
        "client_seconds_min": min(o["end"] - o["start"] for o in outs),
        "client_seconds_max": max(o["end"] - o["start"] for o in outs),
        "size_mismatches": sum(o["mismatch"] for o in outs),
        "errors": errors[:5],
        "error_count": len(errors),
        "collect_seconds": t1 - t0,
    }


def settle(server, seconds):
    """Waits until the server's process count stops changing."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        n = len(server.pids())
        if n == last:
            return
        last = n
        time.sleep(1)


def idle(server, transport, users, opts):
    """N sessions log in and stay; returns memory figures."""
    ctx = client_context()
    port = server.port[transport]
    settle(server, 10)
    before = server.memory()
    errors = []

    def open_session(user):
        try:
            pop = Pop(port, transport == "tls", ctx)
            pop.login(user, PASSWORD)
            return pop
        except Exception as e:
            errors.append(f"{user}: {e}")
            return None
    t0 = time.perf_counter()
    with ThreadPoolExecutor(opts.login_threads) as ex:
        sessions = list(ex.map(open_session, users))
    login_s = time.perf_counter() - t0
    live = [s for s in sessions if s]
    time.sleep(opts.idle_settle)
    after = server.memory()
    # Are they all still there? A NOOP on each.
    alive = 0
    for s in live:
        try:
            s.cmd(b"NOOP")
            alive += 1
        except Exception:
            pass
    for s in live:
        try:
            s.sock.sendall(b"QUIT\r\n")
        except OSError:
            pass
    for s in live:
        s.close()
    n = max(len(live), 1)
    return {
        "sessions": len(live),
        "alive_after": alive,
        "login_seconds": login_s,
        "logins_per_s": len(live) / login_s if login_s else 0,
        "pss_before": before[0], "rss_before": before[1],
        "procs_before": before[2],
        "pss_after": after[0], "rss_after": after[1],
        "procs_after": after[2],
        "pss_per_session": (after[0] - before[0]) / n,
        "rss_per_session": (after[1] - before[1]) / n,
        "errors": errors[:5],
        "error_count": len(errors),
    }


# ---------------------------------------------------------------- report


def mb(n):
    return f"{n / 1e6:.1f} MB"


def kib(n):
    return f"{n / 1024:.1f} KiB"


def ratio(a, b):
    return a / b if b else float("nan")


def print_report(res, servers, transports):
    print()
    m = res["machine"]
    print(f"machine: {m['cpus']} CPUs ({m['cpu_model']}), "
          f"{m['mem_gb']:.1f} GB RAM; load average "
          f"{m['loadavg_start'][0]:.1f} before the run")
    print(f"load: {res['params']['clients']} clients x "
          f"{res['params']['messages']} messages "
          f"({mb(res['params']['mailbox_bytes'])} per mailbox, "
          f"avg {res['params']['mailbox_bytes'] // res['params']['messages']}"
          f" B); idle: {res['params']['idle']} sessions")
    for s in servers:
        rest = res["results"].get(s, {}).get("rest", {})
        tls = res["results"].get(s, {}).get("tls_info")
        tls = f"; {tls['version']} {tls['cipher']}" if tls else ""
        print(f"{s}: {res['versions'][s]}; at rest "
              f"{rest.get('pss', 0) / 1048576:.1f} MiB PSS in "
              f"{rest.get('procs', 0)} processes{tls}")
    for t in transports:
        print()
        print(f"== {t} ==")
        hdr = f"{'':28}" + "".join(f"{s:>14}" for s in servers)
        if len(servers) == 2:
            hdr += f"{'yubin/dovecot':>16}"
        print(hdr)
        rows = [
            ("throughput", "messages/s (median pass)", "messages_per_s",
             "{:.0f}"),
            ("throughput", "  slowest pass", "min_messages_per_s",
             "{:.0f}"),
            ("throughput", "  fastest pass", "max_messages_per_s",
             "{:.0f}"),
            ("throughput", "MB/s", "mb_per_s", "{:.1f}"),
            ("throughput", "server CPU ms/MB", "server_cpu_ms_per_mb",
             "{:.2f}"),
            ("throughput", "server CPU share", "server_cpu_share",
             "{:.0%}"),
            ("throughput", "client CPU share", "client_cpu_share",
             "{:.0%}"),
            ("throughput", "other CPU share", "other_cpu_share",
             "{:.0%}"),
            ("throughput", "fastest client s", "client_seconds_min",
             "{:.1f}"),
            ("throughput", "slowest client s", "client_seconds_max",
             "{:.1f}"),
            ("idle", "PSS/idle session KiB", "pss_per_session", None),
            ("idle", "RSS/idle session KiB", "rss_per_session", None),
            ("idle", "PSS before idle test MiB", "pss_before", None),
            ("idle", "logins/s", "logins_per_s", "{:.0f}"),
        ]
        for test, label, key, fmt in rows:
            vals = []
            for s in servers:
                v = res["results"].get(s, {}).get(t, {}).get(
                    test, {}).get(key)
                vals.append(v)
            cells = []
            for v in vals:
                if v is None:
                    cells.append(f"{'-':>14}")
                elif fmt is None and "before" in key:
                    cells.append(f"{v / 1048576:>14.1f}")
                elif fmt is None:
                    cells.append(f"{v / 1024:>14.1f}")
                else:
                    cells.append(f"{fmt.format(v):>14}")
            line = f"{label:28}" + "".join(cells)
            if len(servers) == 2 and None not in vals:
                line += f"{ratio(vals[0], vals[1]):>16.2f}"
            print(line)
        ratios = res["results"].get("round_ratios", {}).get(t)
        if ratios:
            print("messages/s ratio in each round: "
                  + ", ".join(f"{x:.2f}" for x in ratios)
                  + f" (median {sorted(ratios)[(len(ratios) - 1) // 2]:.2f})")
        for s in servers:
            r = res["results"].get(s, {}).get(t, {})
            other = r.get("throughput", {}).get("max_other_cpu_share", 0)
            if other > 0.1:
                print(f"  {s}: up to {other:.0%} of the CPU went to other "
                      "work during a timed pass: the machine was not quiet")
            for test in ("throughput", "idle"):
                e = r.get(test, {})
                if e.get("error_count"):
                    print(f"  {s} {test}: {e['error_count']} "
                          f"errors, e.g. {e['errors'][0]}")
                if e.get("size_mismatches"):
                    print(f"  {s} {test}: {e['size_mismatches']}"
                          " RETR answers of unexpected size")
            if r.get("idle", {}).get("alive_after") is not None and \
               r["idle"]["alive_after"] != r["idle"]["sessions"]:
                print(f"  {s}: only {r['idle']['alive_after']} of "
                      f"{r['idle']['sessions']} idle sessions "
                      "answered NOOP afterwards")
    print()
    if "yubin" in servers and "dovecot" in servers:
        print("ratios > 1 mean yubin is higher: better for messages/s "
              "and MB/s, worse for CPU and memory.")


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) * 1024
    return {"cpus": os.cpu_count(), "cpu_model": model,
            "mem_gb": mem / 1e9, "kernel": os.uname().release}


# ---------------------------------------------------------------- main


def parse_args():
    p = argparse.ArgumentParser(
        description="yubin POP3 against Dovecot POP3, side by side.")
    p.add_argument("--yubin-bin",
                   default=os.environ.get("YUBIN_BIN", "build/yubin"),
                   help="yubin binary, a release build (default $YUBIN_BIN "
                   "or build/yubin)")
    p.add_argument("--servers", default="yubin,dovecot",
                   help="comma-separated: yubin, dovecot (default both)")
    p.add_argument("--transport", default="plain,tls",
                   help="comma-separated: plain, tls (default both)")
    p.add_argument("--clients", type=int, default=50,
                   help="concurrent throughput clients (default 50)")
    p.add_argument("--messages", type=int, default=1000,
                   help="messages per load mailbox (default 1000)")
    p.add_argument("--avg-size", type=int, default=20000,
                   help="average message size in bytes (default 20000)")
    p.add_argument("--idle", type=int, default=1000,
                   help="idle sessions (default 1000)")
    p.add_argument("--idle-messages", type=int, default=10,
                   help="messages in each idle account (default 10)")
    p.add_argument("--idle-settle", type=float, default=3,
                   help="seconds idle before reading memory (default 3)")
    p.add_argument("--login-threads", type=int, default=16,
                   help="parallel logins in the idle test (default 16)")
    p.add_argument("--rounds", type=int, default=3,
                   help="timed throughput passes; the median is reported "
                   "(default 3)")
    p.add_argument("--quiet-wait", type=float, default=0, metavar="S",
                   help="before each timed pass, wait up to S seconds for "
                   "the machine to be quiet (default 0: do not wait)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--yubin-fill", choices=("deliver", "maildir"),
                   default="deliver",
                   help="how yubin's mailboxes are filled (default deliver)")
    p.add_argument("--yubin-workers", type=int, default=0,
                   help="yubin workers (default 0 = one per core)")
    p.add_argument("--dovecot-login", choices=("performance", "security"),
                   default="performance",
                   help="Dovecot login process mode (default performance)")
    p.add_argument("--fill-jobs", type=int, default=4,
                   help="parallel yubin deliver processes (default 4)")
    p.add_argument("--workdir", default=None,
                   help="parent of the temporary folder (default $TMPDIR)")
    p.add_argument("--cache", metavar="DIR",
                   help="keep yubin's prepared accounts and mailboxes in "
                   "DIR and copy them from there on later runs with the "
                   "same parameters and binary (preparing them through "
                   "`yubin user add` and `yubin deliver` takes minutes)")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary folder")
    p.add_argument("--json", metavar="FILE",
                   help="also write every figure to FILE as JSON")
    return p.parse_args()


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def yubin_prepare(y, opts, load_users, idle_users, messages):
    """The slow part: accounts and mail through yubin's own CLI."""
    log(f"yubin: init and {len(load_users) + len(idle_users)} accounts")
    y.init()
    y.configure()
    t = time.monotonic()
    y.add_users(load_users + idle_users)
    log(f"yubin: accounts added in {time.monotonic() - t:.1f} s")
    t = time.monotonic()
    y.fill(load_users, messages)
    y.fill(idle_users, messages[:opts.idle_messages])
    log(f"yubin: mailboxes filled ({opts.yubin_fill}) in "
        f"{time.monotonic() - t:.1f} s")


def cache_path(opts, y):
    """Where --cache keeps yubin's prepared folder for these parameters
    and this very binary (a rebuild may change the store's format), or
    None."""
    if not opts.cache:
        return None
    with open(y.bin, "rb") as f:
        binary = hashlib.sha256(f.read()).hexdigest()
    key = "|".join(str(v) for v in (
        binary, opts.clients,
        opts.messages, opts.avg_size, opts.seed, opts.idle,
        opts.idle_messages, opts.yubin_fill))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return os.path.join(os.path.abspath(opts.cache), f"yubin-{digest}")


def setup(opts, tmp, names, messages):
    """Creates both servers' folders, accounts and mailboxes."""
    load_users = [f"load{i:03d}@{DOMAIN}" for i in range(opts.clients)]
    idle_users = [f"idle{i:04d}@{DOMAIN}" for i in range(opts.idle)]
    servers = {}
    cert = key = None
    hashes = {}
    if "yubin" in names:
        y = Yubin(os.path.join(tmp, "yubin"), opts)
        cached = cache_path(opts, y)
        if cached and os.path.isdir(cached):
            log(f"yubin: copying the prepared folder {cached}")
            os.rmdir(y.root)
            run(["cp", "-a", cached, y.root])
            y.configure()
        else:
            yubin_prepare(y, opts, load_users, idle_users, messages)
            if cached:
                log(f"yubin: saving the prepared folder to {cached}")
                os.makedirs(os.path.dirname(cached), exist_ok=True)
                run(["cp", "-a", y.root, cached + ".new"])
                os.rename(cached + ".new", cached)
        cert, key = y.certificate()
        hashes = y.password_hashes(load_users + idle_users)
        servers["yubin"] = y
    if "dovecot" in names:
        d = Dovecot(os.path.join(tmp, "dovecot"), opts)
        if cert is None:
            cert, key = self_signed(d.root)
        if not hashes:
            h = yescrypt_hash(PASSWORD)
            hashes = {u: h for u in load_users + idle_users}
        d.configure(cert, key)
        d.write_passwd(hashes)
        t = time.monotonic()
        d.fill(load_users, messages)
        d.fill(idle_users, messages[:opts.idle_messages])
        log(f"dovecot: mailboxes filled in {time.monotonic() - t:.1f} s")
        servers["dovecot"] = d
    return servers, load_users, idle_users, hashes


def self_signed(folder):
    """Only when yubin is not benchmarked: otherwise its own certificate
    (made by `yubin init`) is used for both."""
    cert = os.path.join(folder, "cert.pem")
    key = os.path.join(folder, "key.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj",
         "/CN=localhost", "-keyout", key, "-out", cert])
    os.chmod(key, 0o644)
    return cert, key


def idle_phase(server, opts, transports, idle_users):
    """Each idle test on a freshly started server: memory that a previous
    test left in malloc's free lists would hide the growth."""
    res = {t: {} for t in transports}
    for t in transports if idle_users else ():
        log(f"{server.name}: starting")
        server.start()
        try:
            if "rest" not in res:
                rest = server.memory()
                res["rest"] = {"pss": rest[0], "rss": rest[1],
                               "procs": rest[2]}
            if opts.quiet_wait and not wait_quiet(opts.quiet_wait):
                log("the machine is busy with other work")
            log(f"{server.name} {t}: idle test, {len(idle_users)} "
                "sessions")
            res[t]["idle"] = r = idle(server, t, idle_users, opts)
            log(f"{server.name} {t}: {kib(r['pss_per_session'])} PSS "
                f"per idle session ({r['error_count']} errors)")
        finally:
            server.stop()
    return res


def throughput_phase(servers, opts, transports, load_users, expect, res):
    """Both servers run at once (an idle server costs nothing) and take
    turns: round by round, transport by transport, one server then the
    other. Whatever else the machine is doing then weighs on both alike,
    and each round gives a ratio of its own."""
    names = list(servers)
    try:
        for n in names:
            log(f"{n}: starting")
            servers[n].start()
        for n in names:
            server = servers[n]
            if "tls" in transports:
                pop = Pop(server.port["tls"], True, client_context())
                res[n]["tls_info"] = {"version": pop.sock.version(),
                                      "cipher": pop.sock.cipher()[0]}
                pop.close()
            # Both servers build their indexes on this pass and may record
            # \Seen (Dovecot moves new/ to cur/ and renames every file),
            # so the timed passes all do the same steady-state work.
            log(f"{n} {transports[0]}: warm-up pass")
            res[n]["warmup"] = throughput(server, transports[0],
                                          load_users, expect)
        passes = {(n, t): [] for n in names for t in transports}
        for i in range(opts.rounds):
            for t in transports:
                for n in names:
                    if opts.quiet_wait and not wait_quiet(opts.quiet_wait):
                        log("the machine is busy with other work")
                    r = throughput(servers[n], t, load_users, expect)
                    log(f"{n} {t} pass {i + 1}: "
                        f"{r['messages_per_s']:.0f} msg/s, "
                        f"{r['mb_per_s']:.1f} MB/s, other CPU "
                        f"{r['other_cpu_share']:.0%} "
                        f"({r['error_count']} errors)")
                    passes[(n, t)].append(r)
    finally:
        for n in names:
            servers[n].stop()
    for (n, t), rounds in passes.items():
        res[n][t]["throughput"] = median_pass(rounds)
    if len(names) == 2:
        res["round_ratios"] = {}
        for t in transports:
            a, b = passes[(names[0], t)], passes[(names[1], t)]
            res["round_ratios"][t] = [
                ra["messages_per_s"] / rb["messages_per_s"]
                for ra, rb in zip(a, b)]


def median_pass(rounds):
    """The median pass stands for the server; the spread is kept."""
    rounds = sorted(rounds, key=lambda r: r["messages_per_s"])
    med = dict(rounds[(len(rounds) - 1) // 2])
    med["rounds_messages_per_s"] = [r["messages_per_s"] for r in rounds]
    med["min_messages_per_s"] = rounds[0]["messages_per_s"]
    med["max_messages_per_s"] = rounds[-1]["messages_per_s"]
    med["max_other_cpu_share"] = max(r["other_cpu_share"] for r in rounds)
    med["passes"] = [{k: r[k] for k in (
        "messages_per_s", "mb_per_s", "server_cpu_ms_per_mb",
        "server_cpu_share", "client_cpu_share", "other_cpu_share")}
        for r in rounds]
    return med


def main():
    opts = parse_args()
    if os.geteuid() != 0:
        sys.exit("pop3-bench: run as root (Dovecot needs it to drop "
                 "to its own users)")
    asked = [s for s in opts.servers.split(",") if s]
    names = [n for n in ("yubin", "dovecot") if n in asked]
    transports = [t for t in opts.transport.split(",") if t]
    for n in asked:
        if n not in ("yubin", "dovecot"):
            sys.exit(f"pop3-bench: unknown server {n}")
    for t in transports:
        if t not in ("plain", "tls"):
            sys.exit(f"pop3-bench: unknown transport {t}")
    if "yubin" in names and not os.access(opts.yubin_bin, os.X_OK):
        sys.exit(f"pop3-bench: no yubin binary at {opts.yubin_bin} "
                 "(build one: meson setup build-release "
                 "--buildtype=release && ninja -C build-release)")
    nofile = raise_nofile()
    if nofile < opts.idle * 2 + opts.clients + 200:
        log(f"warning: RLIMIT_NOFILE is only {nofile}")

    t_start = time.monotonic()
    load0 = os.getloadavg()
    messages = make_messages(opts.messages, opts.avg_size, opts.seed)
    expect = [wire_length(m) for m in messages]
    tmp = tempfile.mkdtemp(prefix="pop3-bench-", dir=opts.workdir)
    os.chmod(tmp, 0o755)
    log(f"working in {tmp}")
    servers = {}
    try:
        servers, load_users, idle_users, hashes = setup(
            opts, tmp, names, messages)
        res = {
            "machine": machine(),
            "params": {k: v for k, v in vars(opts).items()},
            "versions": {n: servers[n].version() for n in names},
            "results": {},
        }
        res["params"]["mailbox_bytes"] = sum(len(m) for m in messages)
        res["params"]["hash"] = next(iter(hashes.values()))[:7] + "..."
        res["params"]["command"] = " ".join(sys.argv)
        for n in names:
            res["results"][n] = idle_phase(servers[n], opts, transports,
                                           idle_users)
        throughput_phase(servers, opts, transports, load_users, expect,
                         res["results"])
        res["seconds"] = time.monotonic() - t_start
        res["machine"]["loadavg_start"] = load0
        print_report(res, names, transports)
        print(f"total run time {res['seconds']:.0f} s")
        if opts.json:
            with open(opts.json, "w") as f:
                json.dump(res, f, indent=2)
    finally:
        for s in servers.values():
            s.stop()
        if opts.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
