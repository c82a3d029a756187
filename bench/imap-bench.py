#!/usr/bin/python3
"""IMAP benchmark: yubin against Debian's Dovecot (dovecot-imapd), side by side.

Both servers get the same accounts, password hash, messages (hard links of the
same files) and certificate, and meet the same load from bench/imapload (a C
epoll client, compiled here with cc):

  fetch-envelope  SELECT + UID FETCH 1:* (FLAGS UID ENVELOPE) on the big
                  mailbox (default 100,000 messages); the first round (cold:
                  Dovecot builds its index on that SELECT) is reported apart
                  from the warm ones
  search-text     SEARCH TEXT "<word>" on the big mailbox, first and warm
  fetch-body      C clients FETCH BODY[] every message of the big mailbox
                  (EXAMINE, so nothing changes): messages/s, MB/s
  mixed           100 clients, each on its own account, doing a mix of
                  SELECT, FETCH of the newest 50 headers, FETCH BODY[],
                  STORE \\Seen, SEARCH, NOOP and a short IDLE: operations/s
  idle            N connections (default 10,000) log in, SELECT, IDLE; the
                  server's memory (PSS summed over its process tree) is read
                  before and after; then one message is delivered to every
                  account and the script counts the sessions that saw it

Run as root (Dovecot drops to its own users). See bench/README.md and
docs/performance.md. Nothing is asserted: this measures, it does not test.
"""

import argparse
import contextlib
import ctypes
import hashlib
import importlib.util
import json
import os
import shlex
import shutil
import signal
import socket
import sqlite3
import string
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "pop3_bench", os.path.join(HERE, "pop3-bench.py"))
pb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pb)

DOMAIN = pb.DOMAIN
PASSWORD = pb.PASSWORD
BIG = "big@" + DOMAIN
RARE = "zebrafish"
log = pb.log
run = pb.run


# ---------------------------------------------------------------- messages


def add_rare_word(msg, i, every):
    """One message in `every` gets a line with RARE in its first text part,
    so SEARCH TEXT has a selective word (the generated text repeats a small
    vocabulary: any of its words is in nearly every message)."""
    if i % every:
        return msg
    mark = b"charset=us-ascii\n\n"
    at = msg.find(mark)
    if at < 0:
        return msg
    at += len(mark)
    line = b"Reminder: the %s seminar moved to room %d.\n" % (
        RARE.encode(), i % 50)
    return msg[:at] + line + msg[at:]


def message_files(opts):
    """Generates the messages once into a cache folder (one file each,
    mtime = internal date, names in delivery order) and returns its path."""
    key = f"{opts.messages}|{opts.avg_size}|{opts.seed}|{opts.rare_every}|v1"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = os.path.join(os.path.abspath(opts.cache), f"messages-{digest}")
    if os.path.exists(os.path.join(path, "complete")):
        return path
    log(f"generating {opts.messages} messages into {path}")
    t = time.monotonic()
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    rng = pb.random.Random(opts.seed)
    pool = pb.text_lines(rng, 4000)
    sizes = pb.message_sizes(rng, opts.messages, opts.avg_size)
    total = 0
    for i, size in enumerate(sizes):
        msg = add_rare_word(pb.make_message(rng, i, size, pool), i,
                            opts.rare_every)
        name = os.path.join(path, file_name(i))
        with open(name, "wb") as f:
            f.write(msg)
        os.utime(name, (1700000000 + i, 1700000000 + i))
        total += len(msg)
    with open(os.path.join(path, "complete"), "w") as f:
        json.dump({"messages": opts.messages, "bytes": total}, f)
    log(f"messages generated in {time.monotonic() - t:.0f} s")
    return path


def file_name(i):
    # Both servers number new files in this order: by the leading time
    # (Dovecot) and by (mtime, name) (yubin's rebuild).
    return f"{1700000000 + i}.M{i:06d}P1.bench"


def link_messages(src, maildir, count, owner):
    """Hard links of the first count cached messages into maildir/cur (both
    servers only ever rename them, so they can share the files)."""
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    cur = os.path.join(maildir, "cur")
    for i in range(count):
        os.link(os.path.join(src, file_name(i)),
                os.path.join(cur, file_name(i) + ":2,"))
    if owner:
        for sub in ("", "cur", "new", "tmp"):
            os.chown(os.path.join(maildir, sub), *owner)


def cheap_hash(password):
    """yescrypt at libxcrypt's lowest cost: both servers check the same
    hash, and 10,000 logins at the default cost would take minutes of the
    run without telling anything about IMAP."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong,
                                  ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = lib.crypt_gensalt(b"$y$", 1, None, 0)
    h = lib.crypt(password.encode(), salt).decode()
    if not h.startswith("$y$"):
        raise RuntimeError("libxcrypt has no yescrypt")
    return h


# ---------------------------------------------------------------- servers


def wait_imap(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), 5) as s:
                if s.recv(200).startswith(b"* OK"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no IMAP greeting on port {port}")


class Server:
    name = "?"

    def __init__(self, root, opts):
        self.root = root
        self.opts = opts
        os.makedirs(root, exist_ok=True)
        os.chmod(root, 0o755)
        self.proc = None
        self.port = {"plain": pb.free_port(), "tls": pb.free_port()}

    def start(self):
        with open(os.path.join(self.root, "serve.log"), "ab") as logf:
            self.proc = subprocess.Popen(self.command(), stdout=logf,
                                         stderr=subprocess.STDOUT,
                                         start_new_session=True)
        wait_imap(self.port["plain"], self.proc)

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def pids(self):
        return pb.proc_tree(self.proc.pid)

    def memory(self):
        return pb.proc_memory(self.pids())

    def cpu(self):
        return pb.proc_cpu(self.pids())


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

    def prepare(self, users, files, counts, pw_hash):
        run([self.bin, "init", self.root, "--domain", DOMAIN,
             "--hostname", "localhost"])
        text = open(self.conf).read()
        text = pb.conf_set(text, "listener imap", "port", self.port["plain"])
        text = pb.conf_set(text, "listener imaps", "port", self.port["tls"])
        text = pb.conf_set(text, "auth", "allow_plaintext", "yes")
        limit = self.opts.idle + self.opts.mixed_clients + 1000
        text = pb.conf_set(text, "server", "max_connections", limit)
        text = pb.conf_set(text, "server", "max_connections_per_ip", limit)
        if self.opts.yubin_workers:
            text = pb.conf_set(text, "server", "workers",
                               self.opts.yubin_workers)
        with open(self.conf, "w") as f:
            f.write(text)
        self.yubin("check")
        pb.parallel(users, lambda u: self.yubin(
            "user", "add", u, input=(PASSWORD + "\n").encode()),
            os.cpu_count() or 2)
        db = sqlite3.connect(os.path.join(self.root, "data", "yubin.db"))
        with db:
            db.executemany("UPDATE accounts SET password_hash = ? "
                           "WHERE address = ?", [(pw_hash, u) for u in users])
        db.close()
        for u in users:
            link_messages(files, self.maildir(u), counts[u], None)
        times = {}
        for u in users:
            t = time.monotonic()
            self.yubin("index", "rebuild", u)
            times[u] = time.monotonic() - t
        return {"rebuild_big_s": times[BIG],
                "rebuild_all_s": sum(times.values())}

    def maildir(self, user):
        return os.path.join(self.root, "data", "mail", DOMAIN,
                            user.split("@")[0])

    def deliver(self, users, msg):
        self.yubin("deliver", *users, input=msg)

    def certificate(self):
        text = open(self.conf).read()
        return tuple(os.path.join(self.root, pb.conf_get(text, "tls", (k,)))
                     for k in ("cert", "key"))

    def command(self):
        return [self.bin, "-c", self.conf, "serve"]


class Dovecot(Server):
    name = "dovecot"

    def __init__(self, root, opts):
        super().__init__(root, opts)
        self.conf = os.path.join(root, "dovecot.conf")
        import pwd
        pw = pwd.getpwnam("dovecot")
        self.owner = (pw.pw_uid, pw.pw_gid)

    def version(self):
        out = run(["/usr/sbin/dovecot", "--version"]).stdout.decode()
        return "Dovecot " + out.strip()

    def home(self, user):
        return os.path.join(self.root, "home", user.split("@")[0])

    def maildir(self, user):
        return os.path.join(self.home(user), "Maildir")

    def prepare(self, users, files, counts, pw_hash, cert, key):
        sessions = self.opts.idle + self.opts.mixed_clients + 1000
        fields = {"root": self.root, "cert": cert, "key": key,
                  "port_plain": self.port["plain"],
                  "port_tls": self.port["tls"], "sessions": sessions,
                  "clients_limit": sessions * 3,
                  "cores": os.cpu_count() or 2}
        with open(os.path.join(HERE, "dovecot-imap.conf.in")) as f:
            text = string.Template(f.read()).substitute(fields)
        with open(self.conf, "w") as f:
            f.write(text)
        run(["/usr/sbin/dovecot", "-c", self.conf, "-n"])
        uid, gid = self.owner
        with open(os.path.join(self.root, "passwd"), "w") as f:
            for u in users:
                f.write(f"{u}:{{CRYPT}}{pw_hash}:{uid}:{gid}::"
                        f"{self.home(u)}::\n")
        os.chmod(os.path.join(self.root, "passwd"), 0o644)
        os.makedirs(os.path.join(self.root, "home"), exist_ok=True)
        os.chown(os.path.join(self.root, "home"), uid, gid)
        for u in users:
            os.makedirs(self.home(u), exist_ok=True)
            os.chown(self.home(u), uid, gid)
            link_messages(files, self.maildir(u), counts[u], self.owner)
        return {}

    def deliver(self, users, msg):
        """What a Maildir delivery agent does: tmp/, then rename to new/."""
        for i, u in enumerate(users):
            name = f"{int(time.time())}.M{i}P{os.getpid()}.deliver"
            tmp = os.path.join(self.maildir(u), "tmp", name)
            with open(tmp, "wb") as f:
                f.write(msg)
            os.chown(tmp, *self.owner)
            os.rename(tmp, os.path.join(self.maildir(u), "new", name))

    def command(self):
        return ["/usr/sbin/dovecot", "-c", self.conf, "-F"]


# ---------------------------------------------------------------- imapload


def build_imapload(opts, tmp):
    out = os.path.join(tmp, "imapload")
    cc = shlex.split(os.environ.get("CC", "cc"))
    run([*cc, "-std=c17", "-O2", "-D_GNU_SOURCE", "-Wall", "-Wextra",
         "-Werror", "-Wshadow", "-Wstrict-prototypes",
         "-Wmissing-prototypes", "-Wno-unused-parameter", "-o", out,
         os.path.join(HERE, "imapload.c"), "-lssl", "-lcrypto"])
    return out


def load_args(server, transport, user, *extra):
    return ["--port", str(server.port[transport]), "--user", user,
            "--password", PASSWORD, *(["--tls"] if transport == "tls" else
                                      []), *map(str, extra)]


def imapload(opts, server, transport, scenario, user, *extra):
    """Runs one scenario; returns its JSON line plus the server's CPU
    seconds and the machine's other work during it."""
    cmd = [opts.imapload, *load_args(server, transport, user, *extra),
           scenario]
    cpu0, busy0, t0 = server.cpu(), pb.system_busy(), time.monotonic()
    r0 = os.times()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    r1 = os.times()
    t1, busy1, cpu1 = time.monotonic(), pb.system_busy(), server.cpu()
    lines = p.stdout.decode().strip().splitlines()
    if not lines:
        raise RuntimeError(f"imapload {scenario}: exit {p.returncode}: "
                           f"{p.stderr.decode().strip()}")
    res = json.loads(lines[-1])
    client = (r1.children_user - r0.children_user) + \
        (r1.children_system - r0.children_system)
    ncpu = os.cpu_count() or 1
    res["server_cpu_s"] = cpu1 - cpu0
    res["client_cpu_s"] = client
    res["wall_s"] = t1 - t0
    res["other_cpu_share"] = max(0.0, (busy1 - busy0) - (cpu1 - cpu0) -
                                 client) / ((t1 - t0) * ncpu)
    if res.get("errors") or res.get("failed"):
        log(f"{server.name} {scenario}: {res.get('errors')} errors, "
            f"{res.get('failed')} failed: {res.get('first_error')}")
    return res


def quiet(opts):
    if opts.quiet_wait and not pb.wait_quiet(opts.quiet_wait):
        log("the machine is busy with other work")


def median(xs):
    xs = sorted(xs)
    return xs[(len(xs) - 1) // 2] if xs else None


# ---------------------------------------------------------------- scenarios


def sc_envelope(opts, s, t):
    r = imapload(opts, s, t, "fetch-envelope", BIG, "--repeat",
                 opts.rounds + 1)
    sel, fet = r["select_ms"], r["fetch_ms"]
    return {"first_select_ms": sel[0], "first_fetch_ms": fet[0],
            "select_ms": median(sel[1:]), "fetch_ms": median(fet[1:]),
            "fetch_responses": r["fetch_responses"][-1],
            "fetch_bytes": r["fetch_bytes"][-1], "raw": r}


def sc_search(opts, s, t):
    r = imapload(opts, s, t, "search-text", BIG, "--repeat",
                 opts.rounds + 1, "--word", opts.word)
    ms = r["search_ms"]
    return {"first_search_ms": ms[0], "search_ms": median(ms[1:]),
            "results": r["results"][-1], "raw": r}


def sc_body(opts, s, t):
    extra = ["--clients", opts.body_clients, "--batch", opts.body_batch]
    if opts.body_limit:
        extra += ["--limit", opts.body_limit]
    r = imapload(opts, s, t, "fetch-body", BIG, *extra)
    r["server_cpu_ms_per_mb"] = r["server_cpu_s"] * 1e3 / max(
        r["body_bytes"] / 1e6, 1e-9)
    return r


def sc_mixed(opts, s, t, duration):
    return imapload(opts, s, t, "mixed", "mix#@" + DOMAIN, "--accounts",
                    opts.mixed_clients, "--clients", opts.mixed_clients,
                    "--duration", duration, "--word", "message 4")


def sc_idle(opts, s, t, users):
    """N IDLE sessions on a freshly started server; memory before/after;
    then one delivery to every account, seen (or not) by each session."""
    pb.settle(s, 10)
    time.sleep(2)
    before = s.memory()
    cmd = [opts.imapload, *load_args(s, t, "mix#@" + DOMAIN),
           "--accounts", str(opts.mixed_clients), "--clients",
           str(opts.idle), "--parallel", str(opts.idle_parallel),
           "--notify-timeout", str(opts.idle_notify_timeout), "idle"]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        up = json.loads(p.stdout.readline() or b"{}")
        if up.get("event") != "idling":
            raise RuntimeError(f"imapload idle: {p.stderr.read().decode()}")
        time.sleep(opts.idle_settle)
        after = s.memory()
        p.stdin.write(b"mark\n")
        p.stdin.flush()
        json.loads(p.stdout.readline())
        t0 = time.monotonic()
        s.deliver(users, idle_message())
        deliver_s = time.monotonic() - t0
        notified = json.loads(p.stdout.readline())
        p.stdin.write(b"done\n")
        p.stdin.close()
        end = json.loads(p.stdout.readline() or b"{}")
        p.wait(120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    n = max(up.get("idling", 0), 1)
    return {"sessions": up.get("idling", 0), "failed": up.get("failed"),
            "first_error": up.get("first_error"),
            "open_seconds": up.get("seconds"),
            "pss_before": before[0], "rss_before": before[1],
            "procs_before": before[2], "pss_after": after[0],
            "rss_after": after[1], "procs_after": after[2],
            "pss_per_session": (after[0] - before[0]) / n,
            "rss_per_session": (after[1] - before[1]) / n,
            "deliver_seconds": deliver_s, "notified": notified,
            "end": end}


def idle_message():
    return (f"From: Notifier <n@example.org>\nTo: <all@{DOMAIN}>\n"
            f"Subject: new mail for the IDLE test\nDate: "
            f"{time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}"
            f"\nMessage-ID: <idle.{time.time()}@example.org>\n\nHello.\n"
            ).encode()


# ---------------------------------------------------------------- phases


def load_phase(servers, opts, t, res):
    """Both servers run (an idle one costs nothing) and take turns, so
    other work on the machine weighs on both alike."""
    names = list(servers)
    try:
        for n in names:
            log(f"{n}: starting")
            servers[n].start()
        for label, fn in (("fetch-envelope", sc_envelope),
                          ("search-text", sc_search)):
            for n in names if label in opts.scenarios else ():
                quiet(opts)
                log(f"{n} {t}: {label}")
                res[n][label] = r = fn(opts, servers[n], t)
                log(f"{n} {t}: {label}: " + ", ".join(
                    f"{k} {v:.0f}" for k, v in r.items()
                    if k.endswith("_ms") and v is not None))
        rounds = {n: [] for n in names}
        for i in range(opts.rounds if "fetch-body" in opts.scenarios else 0):
            for n in names:
                quiet(opts)
                r = sc_body(opts, servers[n], t)
                log(f"{n} {t}: fetch-body pass {i + 1}: "
                    f"{r['messages_per_s']:.0f} msg/s, "
                    f"{r['mb_per_s']:.1f} MB/s, other CPU "
                    f"{r['other_cpu_share']:.0%}")
                rounds[n].append(r)
        for n in names if rounds[names[0]] else ():
            res[n]["fetch-body"] = pick_median(rounds[n], "messages_per_s")
        if "mixed" not in opts.scenarios:
            return
        for n in names:
            log(f"{n} {t}: mixed warm-up ({opts.mixed_warmup} s)")
            sc_mixed(opts, servers[n], t, opts.mixed_warmup)
        rounds = {n: [] for n in names}
        for i in range(opts.rounds):
            for n in names:
                quiet(opts)
                r = sc_mixed(opts, servers[n], t, opts.mixed_duration)
                log(f"{n} {t}: mixed pass {i + 1}: {r['ops_per_s']:.0f} "
                    f"ops/s, other CPU {r['other_cpu_share']:.0%}")
                rounds[n].append(r)
        for n in names:
            res[n]["mixed"] = pick_median(rounds[n], "ops_per_s")
    finally:
        for n in names:
            servers[n].stop()


def pick_median(rounds, key):
    rounds = sorted(rounds, key=lambda r: r[key])
    med = dict(rounds[(len(rounds) - 1) // 2])
    med["rounds"] = [r[key] for r in rounds]
    med["max_other_cpu_share"] = max(r["other_cpu_share"] for r in rounds)
    return med


INOTIFY_INSTANCES = "/proc/sys/fs/inotify/max_user_instances"


@contextlib.contextmanager
def inotify_instances(opts, server):
    """Dovecot's imap processes want an inotify instance each; Linux
    allows 128 per user by default, and beyond that Dovecot only sees
    new mail at its 30 s poll. Raised for Dovecot's idle test only (it is
    a system-wide setting) and put back afterwards; yubin uses one
    instance per worker and runs with the system's value."""
    want = opts.inotify_instances
    if want < 0:
        want = opts.idle + 1000
    old = None
    if server.name == "dovecot" and want > 0:
        try:
            with open(INOTIFY_INSTANCES) as f:
                old = int(f.read())
            if old < want:
                with open(INOTIFY_INSTANCES, "w") as f:
                    f.write(str(want))
            else:
                old = None
        except OSError as e:
            log(f"warning: cannot raise {INOTIFY_INSTANCES}: {e}")
            old = None
    try:
        with open(INOTIFY_INSTANCES) as f:
            yield int(f.read())
    finally:
        if old is not None:
            with open(INOTIFY_INSTANCES, "w") as f:
                f.write(str(old))


def idle_phase(server, opts, t, users, res):
    log(f"{server.name}: starting for the idle test")
    with inotify_instances(opts, server) as instances:
        server.start()
        try:
            quiet(opts)
            log(f"{server.name} {t}: opening {opts.idle} IDLE sessions "
                f"(fs.inotify.max_user_instances {instances})")
            res["idle"] = r = sc_idle(opts, server, t, users)
            r["inotify_max_user_instances"] = instances
            nt = r["notified"]
            log(f"{server.name} {t}: {r['sessions']} idling, "
                f"{r['pss_per_session'] / 1024:.1f} KiB PSS each; delivery "
                f"seen by {nt.get('received')} within "
                f"{opts.idle_notify_timeout} s (p50 {nt.get('p50_ms')} ms)")
        finally:
            server.stop()


# ---------------------------------------------------------------- report

SCENARIOS = ("fetch-envelope", "search-text", "fetch-body", "mixed", "idle")

ROWS = [
    # (label, scenario, key, format, better: "high" or "low")
    ("SELECT 100k, first (ms)", "fetch-envelope", "first_select_ms",
     "{:.0f}", "low"),
    ("FETCH 1:* ENVELOPE, first (ms)", "fetch-envelope", "first_fetch_ms",
     "{:.0f}", "low"),
    ("SELECT, warm (ms)", "fetch-envelope", "select_ms", "{:.0f}", "low"),
    ("FETCH 1:* ENVELOPE, warm (ms)", "fetch-envelope", "fetch_ms",
     "{:.0f}", "low"),
    ("  bytes received", "fetch-envelope", "fetch_bytes", "{:.0f}", None),
    ("SEARCH TEXT, first (ms)", "search-text", "first_search_ms", "{:.0f}",
     "low"),
    ("SEARCH TEXT, warm (ms)", "search-text", "search_ms", "{:.0f}", "low"),
    ("  results", "search-text", "results", "{:.0f}", None),
    ("FETCH BODY[] messages/s", "fetch-body", "messages_per_s", "{:.0f}",
     "high"),
    ("FETCH BODY[] MB/s", "fetch-body", "mb_per_s", "{:.1f}", "high"),
    ("  server CPU ms/MB", "fetch-body", "server_cpu_ms_per_mb", "{:.2f}",
     "low"),
    ("mixed: operations/s", "mixed", "ops_per_s", "{:.0f}", "high"),
    ("IDLE sessions", "idle", "sessions", "{:.0f}", None),
    ("  PSS per IDLE session (KiB)", "idle", "pss_per_session", "kib",
     "low"),
    ("  RSS per IDLE session (KiB)", "idle", "rss_per_session", "kib",
     "low"),
    ("  seconds to open them", "idle", "open_seconds", "{:.1f}", "low"),
]


def value(res, server, t, scenario, key):
    return res["results"].get(server, {}).get(t, {}).get(scenario, {}).get(
        key)


def print_report(res, names, transports):
    m = res["machine"]
    p = res["params"]
    print()
    print(f"machine: {m['cpus']} CPUs ({m['cpu_model']}), "
          f"{m['mem_gb']:.1f} GB RAM, load average {m['loadavg_start'][0]:.1f}"
          f" at the start")
    print(f"big mailbox: {p['messages']} messages, "
          f"{p['mailbox_bytes'] / 1e6:.0f} MB; mixed: {p['mixed_clients']} "
          f"clients x {p['mixed_messages']} messages; idle: {p['idle']}")
    for n in names:
        print(f"{n}: {res['versions'][n]}")
    for t in transports:
        print(f"\n== {t} ==")
        hdr = f"{'':34}" + "".join(f"{n:>12}" for n in names)
        if len(names) == 2:
            hdr += f"{'yubin/dovecot':>15}"
        print(hdr)
        for label, sc, key, fmt, _ in ROWS:
            vals = [value(res, n, t, sc, key) for n in names]
            cells = []
            for v in vals:
                if v is None:
                    cells.append(f"{'-':>12}")
                elif fmt == "kib":
                    cells.append(f"{v / 1024:>12.1f}")
                else:
                    cells.append(f"{fmt.format(v):>12}")
            line = f"{label:34}" + "".join(cells)
            if len(names) == 2 and None not in vals and vals[1]:
                line += f"{vals[0] / vals[1]:>15.2f}"
            print(line)
        for n in names:
            r = res["results"].get(n, {}).get(t, {})
            for sc in ("fetch-body", "mixed"):
                o = r.get(sc, {}).get("max_other_cpu_share", 0)
                if o > 0.1:
                    print(f"  {n} {sc}: up to {o:.0%} of the CPU went to "
                          "other work: the machine was not quiet")
            nt = r.get("idle", {}).get("notified")
            if nt:
                inst = r["idle"].get("inotify_max_user_instances", "?")
                print(f"  {n}: the delivery reached {nt['received']} of "
                      f"{nt['idling']} IDLE sessions (p50 "
                      f"{nt.get('p50_ms') or 0:.0f} ms, max "
                      f"{nt.get('max_ms') or 0:.0f} ms after the delivery "
                      f"began; "
                      f"fs.inotify.max_user_instances {inst})")
    print("\nratios: yubin / Dovecot. For ms, CPU and memory lower is "
          "better for yubin; for /s higher is better.")


# ---------------------------------------------------------------- main


def parse_args():
    p = argparse.ArgumentParser(
        description="yubin IMAP against Dovecot IMAP, side by side.")
    p.add_argument("--yubin-bin",
                   default=os.environ.get("YUBIN_BIN", "build-release/yubin"))
    p.add_argument("--servers", default="yubin,dovecot")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help="comma-separated subset of: " + ", ".join(SCENARIOS))
    p.add_argument("--transport", default="plain",
                   help="comma-separated: plain, tls (default plain)")
    p.add_argument("--messages", type=int, default=100000,
                   help="messages in the big mailbox (default 100000)")
    p.add_argument("--avg-size", type=int, default=6000,
                   help="average message size in bytes (default 6000)")
    p.add_argument("--rare-every", type=int, default=100,
                   help=f"one message in N holds the word {RARE!r}")
    p.add_argument("--word", default=RARE, help="SEARCH TEXT word")
    p.add_argument("--rounds", type=int, default=3,
                   help="timed rounds per scenario; the median is reported")
    p.add_argument("--body-clients", type=int, default=4)
    p.add_argument("--body-batch", type=int, default=1,
                   help="messages per FETCH BODY[] command (default 1)")
    p.add_argument("--body-limit", type=int, default=20000,
                   help="fetch only the first N messages (default 20000; "
                   "0: all)")
    p.add_argument("--mixed-clients", type=int, default=100)
    p.add_argument("--mixed-messages", type=int, default=1000)
    p.add_argument("--mixed-duration", type=float, default=20)
    p.add_argument("--mixed-warmup", type=float, default=5)
    p.add_argument("--idle", type=int, default=10000,
                   help="IDLE connections (default 10000)")
    p.add_argument("--idle-parallel", type=int, default=64)
    p.add_argument("--idle-settle", type=float, default=5)
    p.add_argument("--idle-notify-timeout", type=float, default=10)
    p.add_argument("--inotify-instances", type=int, default=-1, metavar="N",
                   help="fs.inotify.max_user_instances during Dovecot's "
                   "idle test (default: IDLE count + 1000; 0: leave the "
                   "system's value)")
    p.add_argument("--yubin-workers", type=int, default=0)
    p.add_argument("--quiet-wait", type=float, default=0, metavar="S")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cache", default="/var/tmp/imap-bench-cache",
                   help="where the generated messages are kept")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run of about 2 minutes: 10,000 messages, "
                   "20 mixed clients, 500 IDLE, 1 round")
    p.add_argument("--workdir", default=None)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--json", metavar="FILE")
    opts = p.parse_args()
    if opts.quick:
        opts.messages = min(opts.messages, 10000)
        opts.mixed_clients = min(opts.mixed_clients, 20)
        opts.mixed_messages = min(opts.mixed_messages, 200)
        opts.mixed_duration = min(opts.mixed_duration, 5)
        opts.mixed_warmup = min(opts.mixed_warmup, 2)
        opts.idle = min(opts.idle, 500)
        opts.rounds = 1
    opts.mixed_messages = min(opts.mixed_messages, opts.messages)
    opts.scenarios = [x for x in opts.scenarios.split(",") if x]
    for x in opts.scenarios:
        if x not in SCENARIOS:
            p.error(f"unknown scenario {x}")
    return opts


def setup(opts, tmp, names):
    files = message_files(opts)
    mix = [f"mix{i:03d}@{DOMAIN}" for i in range(opts.mixed_clients)]
    users = [BIG] + mix
    counts = {u: opts.mixed_messages for u in mix}
    counts[BIG] = opts.messages
    pw_hash = cheap_hash(PASSWORD)
    servers, prep = {}, {}
    cert = key = None
    if "yubin" in names:
        y = Yubin(os.path.join(tmp, "yubin"), opts)
        log("yubin: init, accounts, hard links, index rebuild")
        prep["yubin"] = y.prepare(users, files, counts, pw_hash)
        log(f"yubin: index rebuild of the big mailbox took "
            f"{prep['yubin']['rebuild_big_s']:.1f} s")
        cert, key = y.certificate()
        servers["yubin"] = y
    if "dovecot" in names:
        d = Dovecot(os.path.join(tmp, "dovecot"), opts)
        if cert is None:
            cert, key = pb.self_signed(d.root)
        log("dovecot: config, accounts, hard links")
        prep["dovecot"] = d.prepare(users, files, counts, pw_hash, cert, key)
        servers["dovecot"] = d
    with open(os.path.join(files, "complete")) as f:
        total = json.load(f)["bytes"]
    return servers, mix, prep, total


def main():
    opts = parse_args()
    if os.geteuid() != 0:
        sys.exit("imap-bench: run as root (Dovecot needs it)")
    names = [n for n in ("yubin", "dovecot") if n in opts.servers.split(",")]
    transports = [t for t in opts.transport.split(",") if t]
    if not names or any(t not in ("plain", "tls") for t in transports):
        sys.exit("imap-bench: bad --servers or --transport")
    if "yubin" in names and not os.access(opts.yubin_bin, os.X_OK):
        sys.exit(f"imap-bench: no yubin binary at {opts.yubin_bin}")
    nofile = pb.raise_nofile()
    if nofile < opts.idle + opts.mixed_clients + 200:
        log(f"warning: RLIMIT_NOFILE is only {nofile}")
    t_start = time.monotonic()
    load0 = os.getloadavg()
    tmp = tempfile.mkdtemp(prefix="imap-bench-", dir=opts.workdir)
    os.chmod(tmp, 0o755)
    log(f"working in {tmp}")
    servers = {}
    try:
        opts.imapload = build_imapload(opts, tmp)
        servers, mix, prep, total = setup(opts, tmp, names)
        res = {"machine": pb.machine(), "params": dict(vars(opts)),
               "versions": {n: servers[n].version() for n in names},
               "prepare": prep, "results": {n: {} for n in names}}
        res["params"]["mailbox_bytes"] = total
        res["params"]["command"] = " ".join(sys.argv)
        res["machine"]["loadavg_start"] = load0
        for t in transports:
            per = {n: {} for n in names}
            load_phase(servers, opts, t, per)
            if opts.idle and "idle" in opts.scenarios:
                for n in names:
                    idle_phase(servers[n], opts, t, mix, per[n])
            for n in names:
                res["results"][n][t] = per[n]
        res["seconds"] = time.monotonic() - t_start
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
