"""Helpers for the integration suites: a real `yubin serve` in a temporary
folder, and real clients (poplib, ssl, raw sockets) to talk to it.

Nothing here is mocked: every test drives the built binary ($YUBIN_BIN,
default <repo>/build/yubin) through its CLI and its network ports.
"""

import os
import poplib
import pwd
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"

DOMAIN = "example.test"
DEMO = "demo@example.test"
DEMO_PASSWORD = "demo-Passw0rd!"

# Sanitizer output that must never appear in a log or on stderr.
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                     "UndefinedBehaviorSanitizer", "ThreadSanitizer")

# Corpus messages have lines far longer than poplib's 2048-byte default.
poplib._MAXLINE = 1 << 26

# Settings every test server gets (a test may override any of them).
DEFAULT_OVERRIDES = {
    "server": {"workers": "2", "shutdown_grace": "3s"},
    "auth": {"failure_delay": "1s"},
    "log": {"level": "info"},
}


def _run_as():
    """subprocess arguments that run every yubin command as
    $YUBIN_TEST_USER (for a root shell that wants to test an unprivileged
    installation). By default yubin runs as whoever runs the tests: as root
    (CI) that exercises init's `[server] user` and the privilege drop."""
    name = os.environ.get("YUBIN_TEST_USER")
    if not name or os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam(name)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


RUN_AS = _run_as()


def make_root(base: Path, name: str) -> Path:
    """A new folder for one server that the user yubin runs as (or drops
    to) can enter."""
    root = Path(tempfile.mkdtemp(prefix=name + "-", dir=str(base)))
    root.chmod(0o755)
    if RUN_AS:
        os.chown(root, RUN_AS["user"], RUN_AS["group"])
    return root


def yubin_bin():
    return os.environ.get("YUBIN_BIN", str(REPO / "build" / "yubin"))


def fast_bin():
    """A non-sanitizer build for the load-heavy tests, when one is given."""
    return os.environ.get("YUBIN_FAST_BIN") or yubin_bin()


_GIVEN_PORTS = set()


def free_port():
    """A free loopback port, never one handed out before in this run (the
    kernel may offer a just-released port again, and one server takes
    seven)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port


def sanitizer_text(text):
    """The sanitizer report in text (from its first marker), or ''."""
    positions = [text.find(m) for m in SANITIZER_MARKERS if m in text]
    if not positions:
        return ""
    start = text.rfind("\n", 0, min(positions)) + 1
    return text[start:start + 6000]


def crlf_normalise(data: bytes) -> bytes:
    """What POP3 must send for stored bytes: every lone LF becomes CRLF and
    a final CRLF is added to a non-empty message that lacks one."""
    out = re.sub(rb"(?<!\r)\n", b"\r\n", data)
    if out and not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out


def set_option(text, section, key, value):
    """Sets `key = value` in [section] of a yubin.conf text (replacing an
    existing uncommented line, else adding it under the section header, else
    adding the section)."""
    lines = text.split("\n")
    norm = " ".join(section.split())
    header = re.compile(r"^\s*\[\s*" + r"\s+".join(map(re.escape, norm.split()))
                        + r"\s*\]\s*$")
    any_header = re.compile(r"^\s*\[.*\]\s*$")
    keyline = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
    start = next((i for i, l in enumerate(lines) if header.match(l)), None)
    if start is None:
        if lines and lines[-1] != "":
            lines.append("")
        lines += ["[%s]" % norm, "%s = %s" % (key, value), ""]
        return "\n".join(lines)
    end = next((i for i in range(start + 1, len(lines))
                if any_header.match(lines[i])), len(lines))
    for i in range(start + 1, end):
        if keyline.match(lines[i]):
            lines[i] = "%s = %s" % (key, value)
            return "\n".join(lines)
    lines.insert(start + 1, "%s = %s" % (key, value))
    return "\n".join(lines)


def merge_overrides(*layers):
    out = {}
    for layer in layers:
        for section, kv in (layer or {}).items():
            out.setdefault(section, {}).update(kv)
    return out


def proc_children(pid):
    """PIDs whose parent is pid (from /proc/*/stat)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name is in parentheses and may hold spaces
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 2 and int(fields[1]) == pid and fields[0] != b"Z":
            kids.append(int(entry))
    return sorted(kids)


def proc_comm(pid):
    """/proc/PID/comm (the process name), or ''."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def proc_status_kb(pid, field):
    """A kB field of /proc/PID/status (VmRSS, RssAnon, VmHWM...), or 0."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def client_context(cafile):
    """Trusts exactly the server's certificate; the name is not checked
    because tests connect to 127.0.0.1."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.check_hostname = False
    return ctx


def insecure_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class YubinServer:
    """One yubin instance: its folder, config, CLI and `serve` process."""

    def __init__(self, root: Path, binary=None, overrides=None):
        self.root = Path(root)
        self.bin = binary or yubin_bin()
        self.conf = self.root / "yubin.conf"
        self.data = self.root / "data"
        self.cert = self.data / "tls" / "cert.pem"
        self.key = self.data / "tls" / "key.pem"
        self.log = self.root / "yubin.log"
        self.stdout_path = self.root / "serve.stdout"
        self.stderr_path = self.root / "serve.stderr"
        self.cli_errors = []          # sanitizer reports seen in CLI runs
        self.proc = None
        self.pop3_port = free_port()
        self.pop3s_port = free_port()
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.smtp_port = free_port()
        self.submission_port = free_port()
        self.submissions_port = free_port()
        self.managesieve_port = free_port()
        if not Path(self.bin).exists():
            raise AssertionError(
                "yubin binary %s does not exist: build it (make, or "
                "ninja -C build) or set YUBIN_BIN" % self.bin)
        self._init(merge_overrides(DEFAULT_OVERRIDES, overrides))

    # ---- set-up ----------------------------------------------------------
    def _init(self, overrides):
        self.root.mkdir(parents=True, exist_ok=True)
        r = self.run_raw("init", str(self.root), "--domain", DOMAIN,
                         "--hostname", "localhost", with_config=False)
        assert r.returncode == 0, "yubin init failed (%d): %s" % (
            r.returncode, r.stderr.decode(errors="replace"))
        assert self.conf.exists(), "yubin init wrote no %s" % self.conf
        text = self.conf.read_text()
        text, n1 = re.subn(r"(?m)^(\s*port\s*=\s*)2110\s*$",
                           r"\g<1>%d" % self.pop3_port, text)
        text, n2 = re.subn(r"(?m)^(\s*port\s*=\s*)2995\s*$",
                           r"\g<1>%d" % self.pop3s_port, text)
        assert n1 == 1 and n2 == 1, (
            "init config lacks `port = 2110` / `port = 2995`:\n" + text)
        text, n3 = re.subn(r"(?m)^(\s*port\s*=\s*)2143\s*$",
                           r"\g<1>%d" % self.imap_port, text)
        text, n4 = re.subn(r"(?m)^(\s*port\s*=\s*)2993\s*$",
                           r"\g<1>%d" % self.imaps_port, text)
        assert n3 == 1 and n4 == 1, (
            "init config lacks `port = 2143` / `port = 2993`:\n" + text)
        for demo, port in ((2525, self.smtp_port),
                           (2587, self.submission_port),
                           (2465, self.submissions_port)):
            text, n = re.subn(r"(?m)^(\s*port\s*=\s*)%d\s*$" % demo,
                              r"\g<1>%d" % port, text)
            assert n == 1, "init config lacks `port = %d`:\n%s" % (demo, text)
        # ManageSieve's demo port, when the binary's init writes one
        text = re.sub(r"(?m)^(\s*port\s*=\s*)4190\s*$",
                      r"\g<1>%d" % self.managesieve_port, text)
        text = set_option(text, "log", "target", str(self.log))
        for section, kv in overrides.items():
            for key, value in kv.items():
                text = set_option(text, section, key, value)
        self.conf.write_text(text)
        self.add_user(DEMO, DEMO_PASSWORD)

    def edit_config(self, section, key, value):
        self.conf.write_text(set_option(self.conf.read_text(), section, key,
                                        value))

    # ---- CLI -------------------------------------------------------------
    def run_raw(self, *args, input=b"", timeout=300, with_config=True,
                binary=None, env=None):
        cmd = [binary or self.bin]
        if with_config:
            cmd += ["-c", str(self.conf)]
        cmd += [str(a) for a in args]
        r = subprocess.run(cmd, input=input, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, env=env,
                           **RUN_AS)
        report = sanitizer_text(r.stderr.decode(errors="replace"))
        if report:
            self.cli_errors.append("%s:\n%s" % (" ".join(cmd), report))
        return r

    def run(self, *args, **kw):
        """Runs `yubin -c CONF args...`; a sanitizer report fails the test."""
        r = self.run_raw(*args, **kw)
        report = sanitizer_text(r.stderr.decode(errors="replace"))
        assert not report, "sanitizer report from %s:\n%s" % (args, report)
        return r

    def add_user(self, addr, password, *opts):
        r = self.run("user", "add", addr, *opts,
                     input=(password + "\n").encode())
        assert r.returncode == 0, "user add %s failed (%d): %s%s" % (
            addr, r.returncode, r.stdout.decode(errors="replace"),
            r.stderr.decode(errors="replace"))
        return r

    def deliver(self, addr, data: bytes, binary=None):
        return self.run("deliver", addr, input=data, binary=binary)

    # ---- files -----------------------------------------------------------
    def maildir(self, addr=DEMO):
        local, domain = addr.split("@")
        return self.data / "mail" / domain / local

    def message_files(self, addr=DEMO):
        """Complete message files of INBOX (new/ and cur/)."""
        root = self.maildir(addr)
        return sorted(p for d in ("new", "cur") if (root / d).is_dir()
                      for p in (root / d).iterdir() if p.is_file())

    def tmp_files(self, addr=DEMO):
        tmp = self.maildir(addr) / "tmp"
        return sorted(tmp.iterdir()) if tmp.is_dir() else []

    # ---- the server process ---------------------------------------------
    def start(self, timeout=10):
        assert self.proc is None or self.proc.poll() is not None
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [self.bin, "-c", str(self.conf), "serve"], stdin=subprocess.DEVNULL,
            stdout=out, stderr=err, start_new_session=True, **RUN_AS)
        out.close()
        err.close()
        self.wait_listening(timeout)
        return self

    def wait_listening(self, timeout=10):
        deadline = time.monotonic() + timeout
        pending = {self.pop3_port, self.pop3s_port, self.imap_port,
                   self.imaps_port, self.smtp_port, self.submission_port,
                   self.submissions_port}
        while pending:
            if self.proc.poll() is not None:
                raise AssertionError("yubin serve exited with %s before "
                                     "listening\n%s" % (self.proc.returncode,
                                                        self.diagnostics()))
            for port in list(pending):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.5).close()
                    pending.discard(port)
                except OSError:
                    pass
            if pending and time.monotonic() > deadline:
                raise AssertionError("yubin serve does not listen on %s "
                                     "after %ss\n%s" % (sorted(pending),
                                                        timeout,
                                                        self.diagnostics()))
            if pending:
                time.sleep(0.05)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        """SIGTERM, wait; returns the exit status (None if it hung)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            return None

    def kill_all(self):
        """SIGKILL to the master and every process of its group (a crash of
        the whole server)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        # the workers are gone too (they held the listening sockets)
        deadline = time.monotonic() + 5
        while self.group_members() and time.monotonic() < deadline:
            time.sleep(0.01)

    def restart(self, timeout=10):
        rc = self.stop()
        assert rc == 0, "yubin serve exited with %s on SIGTERM\n%s" % (
            rc, self.diagnostics())
        left = self.wait_group_gone()
        assert not left, "processes %s outlived the master's exit" % left
        return self.start(timeout)

    def wait_group_gone(self, timeout=3):
        """Waits for the server's processes to go; kills and returns those
        still alive after timeout seconds."""
        deadline = time.monotonic() + timeout
        while self.group_members() and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.leftover_group_kill()

    def group_members(self):
        """Live (not zombie) processes of the server's process group."""
        if self.proc is None:
            return []
        alive = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry, "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2:].split()
            if fields[0] != b"Z" and int(fields[2]) == self.proc.pid:
                alive.append(int(entry))
        return alive

    def leftover_group_kill(self):
        """Processes of the server's group still alive (killed; returned)."""
        alive = self.group_members()
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return alive

    def workers(self):
        """The worker processes (children of the master that are not a
        service such as the queue runner, which names itself yubin-*)."""
        return [p for p in self.children() if not proc_comm(p).startswith("yubin-")]

    def children(self):
        return proc_children(self.proc.pid) if self.proc else []

    def queue_runner(self, timeout=10):
        """PID of the queue runner service, waiting for it to exist."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [p for p in self.children() if proc_comm(p) == "yubin-queue"]
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError("no queue runner\n" + self.diagnostics())

    def wait_workers(self, count, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            w = self.workers()
            if len(w) >= count:
                return w
            time.sleep(0.02)
        raise AssertionError("expected %d workers, have %s\n%s" % (
            count, self.workers(), self.diagnostics()))

    # ---- logs ------------------------------------------------------------
    def read_text(self, path):
        try:
            return Path(path).read_text(errors="replace")
        except OSError:
            return ""

    def log_text(self):
        return self.read_text(self.log)

    def sanitizer_reports(self):
        reports = list(self.cli_errors)
        for path in (self.log, self.stderr_path, self.stdout_path):
            rep = sanitizer_text(self.read_text(path))
            if rep:
                reports.append("%s:\n%s" % (path, rep))
        return "\n".join(reports)

    def assert_no_sanitizer(self):
        rep = self.sanitizer_reports()
        assert not rep, "sanitizer report:\n" + rep

    def diagnostics(self):
        return "--- stderr:\n%s\n--- log (tail):\n%s" % (
            self.read_text(self.stderr_path)[-4000:],
            self.log_text()[-4000:])

    # ---- clients ---------------------------------------------------------
    def context(self):
        return client_context(self.cert)

    def pop3_stls(self, user=DEMO, password=DEMO_PASSWORD, timeout=30):
        p = poplib.POP3("127.0.0.1", self.pop3_port, timeout=timeout)
        p.stls(self.context())
        if user is not None:
            p.user(user)
            p.pass_(password)
        return p

    def pop3_ssl(self, user=DEMO, password=DEMO_PASSWORD, timeout=30):
        p = poplib.POP3_SSL("127.0.0.1", self.pop3s_port, timeout=timeout,
                            context=self.context())
        if user is not None:
            p.user(user)
            p.pass_(password)
        return p

    def raw(self, tls=False, timeout=10):
        """A RawPop3 on the STLS port (tls=False) or the implicit TLS port."""
        if tls:
            return RawPop3(self.pop3s_port, self.context(), timeout)
        return RawPop3(self.pop3_port, None, timeout)

    def login_retry(self, fn, seconds=5):
        """Logs in, retrying while the server still holds the mailbox of a
        session that was just dropped ([IN-USE])."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                return fn()
            except poplib.error_proto as e:
                if b"[IN-USE]" not in e.args[0] or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


class RawPop3:
    """A line-level POP3 client on a raw socket, for what poplib will not
    send: pipelined bytes, garbage, AUTH exchanges, STLS injection."""

    def __init__(self, port, ctx=None, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        if ctx is not None:
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.greeting = self.readline()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def readline(self) -> bytes:
        """One line without its CRLF; EOFError when the server closed."""
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line[:-1] if line.endswith(b"\r") else line

    def cmd(self, line) -> bytes:
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.readline()

    def read_multi(self):
        """The lines of a multi-line answer up to '.', dot-unstuffed."""
        lines = []
        while True:
            line = self.readline()
            if line == b".":
                return lines
            lines.append(line[1:] if line.startswith(b".") else line)

    def login(self, user=DEMO, password=DEMO_PASSWORD):
        r = self.cmd("USER " + user)
        assert r.startswith(b"+OK"), r
        r = self.cmd("PASS " + password)
        assert r.startswith(b"+OK"), r

    def starttls(self, ctx):
        r = self.cmd("STLS")
        assert r.startswith(b"+OK"), r
        assert self.buf == b"", "plaintext after +OK to STLS: %r" % self.buf
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")

    def closed_within(self, seconds):
        """True when the server closes within seconds (lines it sends
        meanwhile are collected in self.trailing)."""
        self.trailing = []
        deadline = time.monotonic() + seconds
        self.sock.settimeout(0.2)
        try:
            while time.monotonic() < deadline:
                try:
                    self._fill()
                except socket.timeout:
                    continue
                except (ConnectionResetError, BrokenPipeError,
                        ssl.SSLError):
                    return True
                while b"\n" in self.buf:
                    line, self.buf = self.buf.split(b"\n", 1)
                    self.trailing.append(line)
        except EOFError:
            return True
        return False

    def nothing_within(self, seconds):
        """Bytes that arrive within seconds (b'' = none; EOF counts as none)."""
        self.sock.settimeout(seconds)
        got = self.buf
        self.buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                got += chunk
                self.sock.settimeout(0.2)
        except (socket.timeout, ssl.SSLError, OSError):
            pass
        self.sock.settimeout(10)
        return got
