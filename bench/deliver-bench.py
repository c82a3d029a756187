#!/usr/bin/python3
"""Delivery throughput with and without a 20-rule Sieve script (issue 5
item 7). Two ways mail arrives: N `yubin deliver` runs (a process per
message, as behind Postfix's pipe) and N messages over SMTP, 50 per
session (the serve workers). Each mode is run with no script, then with a 20-rule
script that does not match (every rule is tested, the message lands in
INBOX), alternating rounds so that machine noise hits both alike.

    /usr/bin/python3 bench/deliver-bench.py --yubin-bin build/yubin -n 300

Prints messages/s and CPU ms per message (the `yubin deliver` processes,
or every process of `yubin serve`) per case, medians over the rounds, and
the ratios script/no-script. On a shared machine the CPU figure is the
steadier one."""

import argparse
import os
import re
import resource
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
from pathlib import Path

RULES = 20
ACCOUNT = "bench@example.test"


def script():
    lines = ['require ["fileinto", "mailbox", "imap4flags", "variables", "body"];']
    for i in range(RULES):
        kind = i % 4
        if kind == 0:
            lines.append('if header :contains "Subject" "project-%d" { fileinto :create "P%d"; stop; }' % (i, i))
        elif kind == 1:
            lines.append('if address :domain :is "from" "list%d.example" { fileinto :create "L%d"; }' % (i, i))
        elif kind == 2:
            lines.append('if header :matches "List-Id" "*<team%d.*>" { set "l" "${1}"; fileinto :create "T${l}"; }' % i)
        else:
            lines.append('if allof (size :over 10M, header :contains "X-Tag" "t%d") { addflag "big"; }' % i)
    return "\n".join(lines) + "\n"


def message(i):
    return ("From: Sender <sender@remote.test>\r\nTo: %s\r\n"
            "Subject: benchmark message %d\r\nMessage-ID: <b%d@remote.test>\r\n"
            "Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\n" % (ACCOUNT, i, i)
            + "A line of body text for the benchmark.\r\n" * 40).encode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Root:
    def __init__(self, binary, base):
        self.bin = binary
        self.dir = Path(tempfile.mkdtemp(prefix="deliver-bench-", dir=base))
        self.dir.chmod(0o755)  # started as root, yubin runs as [server] user
        subprocess.run([binary, "init", str(self.dir), "--domain", "example.test",
                        "--hostname", "localhost"], check=True, capture_output=True)
        self.conf = self.dir / "yubin.conf"
        self.port = free_port()
        text = self.conf.read_text()
        text = re.sub(r"(?m)^(\s*port\s*=\s*)2525\s*$", r"\g<1>%d" % self.port, text)
        for p in (2110, 2995, 2143, 2993, 2587, 2465):
            text = re.sub(r"(?m)^(\s*port\s*=\s*)%d\s*$" % p, r"\g<1>%d" % free_port(), text)
        text = text.replace("[log]", "[log]\ntarget = %s" % (self.dir / "yubin.log"), 1)
        self.conf.write_text(text)
        self.cli("user", "add", ACCOUNT, input=b"bench-Passw0rd!\n")
        self.sieve = self.dir / "data" / "mail" / "example.test" / "bench" / "sieve"

    def cli(self, *args, input=b""):
        return subprocess.run([self.bin, "-c", str(self.conf)] + list(args), input=input,
                              check=True, capture_output=True)

    def set_script(self, on):
        if on:
            self.sieve.mkdir(exist_ok=True)
            (self.sieve / "bench.sieve").write_text(script())
            (self.sieve / "active").write_text("bench\n")
        elif (self.sieve / "active").exists():
            (self.sieve / "active").unlink()


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def group_cpu(pgid):
    """CPU seconds (user + system) of the live processes of a process group."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = Path("/proc/%s/stat" % pid).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def run_deliver(root, n):
    """(messages/s, CPU ms per message) of n `yubin deliver` processes."""
    t, cpu = time.monotonic(), children_cpu()
    for i in range(n):
        root.cli("deliver", ACCOUNT, input=message(i))
    return n / (time.monotonic() - t), (children_cpu() - cpu) * 1000 / n


def run_smtp(root, n, per_connection=50):
    """Sessions of per_connection messages ([smtp] max_messages is 100)."""
    t, cpu = time.monotonic(), group_cpu(root.pgid)
    for start in range(0, n, per_connection):
        with smtplib.SMTP("127.0.0.1", root.port, timeout=60) as c:
            for i in range(start, min(n, start + per_connection)):
                c.sendmail("sender@remote.test", [ACCOUNT], message(i))
    return n / (time.monotonic() - t), (group_cpu(root.pgid) - cpu) * 1000 / n


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def wait_port(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("yubin serve does not listen on %d" % port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--yubin-bin", default="build/yubin")
    ap.add_argument("-n", type=int, default=300, help="messages per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--base", default="/tmp")
    ap.add_argument("--modes", default="deliver,smtp", help="deliver, smtp or both")
    args = ap.parse_args()
    root = Root(os.path.abspath(args.yubin_bin), args.base)
    serve = subprocess.Popen([root.bin, "-c", str(root.conf), "serve"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    root.pgid = serve.pid
    try:
        wait_port(root.port)
        results = {}
        for rnd in range(args.rounds):
            for mode, fn in (("deliver", run_deliver), ("smtp", run_smtp)):
                if mode not in args.modes.split(","):
                    continue
                for on in (False, True):
                    root.set_script(on)
                    results.setdefault((mode, on), []).append(fn(root, args.n))
        for mode in args.modes.split(","):
            print("%-8s %s" % (mode, "   ".join(
                "%s %7.1f msg/s %6.2f ms CPU/msg" % (label, median([r[0] for r in results[(mode, on)]]),
                                                    median([r[1] for r in results[(mode, on)]]))
                for on, label in ((False, "no script"), (True, "%d rules" % RULES)))))
            rate = median([r[0] for r in results[(mode, True)]]) / median([r[0] for r in results[(mode, False)]])
            cpu = median([r[1] for r in results[(mode, True)]]) / median([r[1] for r in results[(mode, False)]])
            print("%-8s script/no-script: rate %.3f, CPU %.3f" % (mode, rate, cpu))
    finally:
        serve.terminate()
        serve.wait(timeout=30)
        shutil.rmtree(root.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
