"""Issue 2, item 6 (DESIGN.md, process model): a worker killed with SIGKILL
is restarted by the master within a second while the other workers keep
their sessions; SIGTERM exits cleanly and closes the ports; SIGHUP picks up
a new certificate for new connections without dropping open ones."""

import hashlib
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

from yubin_fixture import insecure_context


def server_pid_of(srv, client_sock):
    """The worker PID that holds the server end of client_sock's TCP
    connection (matched through /proc/net/tcp and /proc/PID/fd)."""
    cport = client_sock.getsockname()[1]
    sports = {srv.pop3_port, srv.pop3s_port}
    inode = None
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local_port = int(fields[1].split(":")[1], 16)
            remote_port = int(fields[2].split(":")[1], 16)
            if local_port in sports and remote_port == cport:
                inode = fields[9]
    if inode is None:
        return None
    target = "socket:[%s]" % inode
    for pid in srv.workers():
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == target:
                        return pid
                except OSError:
                    pass
        except OSError:
            pass
    return None


def fingerprint(der):
    return hashlib.sha256(der).hexdigest()


def presented_cert(port, stls=False):
    s = socket.create_connection(("127.0.0.1", port), 10)
    if stls:
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        s.sendall(b"STLS\r\n")
        assert f.readline().startswith(b"+OK")
    t = insecure_context().wrap_socket(s, server_hostname="localhost")
    der = t.getpeercert(binary_form=True)
    t.close()
    return fingerprint(der)


def pem_fingerprint(path):
    der = ssl.PEM_cert_to_DER_cert(path.read_text())
    return fingerprint(der)


@pytest.mark.yubin_config({"server": {"workers": "2"}})
def test_worker_sigkill_restarted_others_keep_sessions(yubin):
    workers = yubin.wait_workers(2)
    assert len(workers) == 2, workers
    sessions = []          # (pop, worker pid)
    holders = set()
    for i in range(16):
        user = "u%d@example.test" % i
        yubin.add_user(user, "pw-%d-secret" % i)
        pop = (yubin.pop3_stls if i % 2 else yubin.pop3_ssl)(user, "pw-%d-secret" % i)
        pid = server_pid_of(yubin, pop.sock)
        assert pid in workers, "session %d on unknown process %s" % (i, pid)
        sessions.append((pop, pid))
        holders.add(pid)
        if len(holders) == 2 and i >= 3:
            break
    # kill a worker that holds sessions when both do; else the idle one
    if len(holders) == 2:
        victim = sessions[0][1]
    else:
        victim = next(w for w in workers if w not in holders)
    survivors = [p for p, pid in sessions if pid != victim]
    assert survivors, "no session on the surviving worker"
    t0 = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    replacement = None
    while time.monotonic() - t0 < 3:
        now = yubin.workers()
        new = [w for w in now if w not in workers]
        if new and len(now) == 2:
            replacement = new[0]
            break
        time.sleep(0.01)
    elapsed = time.monotonic() - t0
    assert replacement, "no new worker 3 s after SIGKILL: %s\n%s" % (
        yubin.workers(), yubin.diagnostics())
    assert elapsed <= 1.1, "worker replaced after %.2fs (> 1 s)" % elapsed
    for pop in survivors:
        assert pop.noop().startswith(b"+OK")
        assert pop.stat()[0] == 0
    for pop, pid in sessions:
        if pid == victim:
            with pytest.raises(Exception):
                pop.noop()
    # new connections work, on both listeners
    for opener in (yubin.pop3_stls, yubin.pop3_ssl):
        for _ in range(4):
            pop = yubin.login_retry(opener)
            assert pop.stat()[0] == 0
            pop.quit()
    for pop in survivors:
        pop.quit()
    assert yubin.proc.poll() is None
    assert str(victim) in yubin.log_text(), \
        "the worker's death (pid %d) is not in the log" % victim


def test_sigterm_exits_cleanly_and_closes_ports(yubin):
    pop = yubin.pop3_stls()
    pop.quit()
    yubin.signal(signal.SIGTERM)
    rc = yubin.proc.wait(10)
    assert rc == 0, "exit status %s\n%s" % (rc, yubin.diagnostics())
    assert yubin.wait_group_gone() == [], "workers outlived the master"
    for port in (yubin.pop3_port, yubin.pop3s_port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), 2).close()


@pytest.mark.yubin_config({"server": {"shutdown_grace": "2s"}})
def test_sigterm_with_open_session_stops_within_grace(yubin):
    pop = yubin.pop3_stls()
    t0 = time.monotonic()
    yubin.signal(signal.SIGTERM)
    time.sleep(0.5)
    # no new sessions once stopping
    try:
        s = socket.create_connection(("127.0.0.1", yubin.pop3_port), 2)
        s.settimeout(3)
        greeting = s.recv(100)
        s.close()
        assert not greeting.startswith(b"+OK"), \
            "a new session was greeted after SIGTERM"
    except (ConnectionRefusedError, ConnectionResetError, socket.timeout):
        pass
    rc = yubin.proc.wait(10)
    elapsed = time.monotonic() - t0
    assert rc == 0, "exit status %s\n%s" % (rc, yubin.diagnostics())
    assert elapsed < 2 + 3, "took %.1fs with a 2s grace" % elapsed
    pop.close()


def make_cert(directory):
    cert = directory / "new-cert.pem"
    key = directory / "new-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_sighup_reloads_certificate(yubin, tmp_path):
    old_fp = pem_fingerprint(yubin.cert)
    assert presented_cert(yubin.pop3s_port) == old_fp
    assert presented_cert(yubin.pop3_port, stls=True) == old_fp
    before = yubin.pop3_stls()          # opened before the HUP
    master = yubin.proc.pid
    cert, key = make_cert(tmp_path)
    yubin.cert.write_bytes(cert.read_bytes())
    yubin.key.write_bytes(key.read_bytes())
    new_fp = pem_fingerprint(yubin.cert)
    assert new_fp != old_fp
    yubin.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    seen = None
    while time.monotonic() < deadline:
        seen = presented_cert(yubin.pop3s_port)
        if seen == new_fp:
            break
        time.sleep(0.1)
    assert seen == new_fp, "new connections still get the old certificate"
    assert presented_cert(yubin.pop3_port, stls=True) == new_fp
    assert before.noop().startswith(b"+OK"), "open session dropped by SIGHUP"
    before.quit()
    assert yubin.proc.pid == master and yubin.proc.poll() is None
    # the client context built from the new file verifies
    pop = yubin.login_retry(yubin.pop3_ssl)
    pop.quit()


def test_sighup_with_broken_config_keeps_serving(yubin):
    good = yubin.conf.read_text()
    yubin.conf.write_text(good + "\n[pop3]\nno_such_key = 1\n")
    yubin.signal(signal.SIGHUP)
    time.sleep(1)
    assert yubin.proc.poll() is None, "a bad config on SIGHUP killed the " \
        "server\n" + yubin.diagnostics()
    pop = yubin.pop3_stls()
    pop.quit()
    yubin.conf.write_text(good)
    yubin.signal(signal.SIGHUP)
    time.sleep(0.5)
    pop = yubin.login_retry(yubin.pop3_ssl)
    pop.quit()


@pytest.mark.yubin_config({"server": {"max_connections_per_ip": "3"}})
def test_per_ip_connection_limit(yubin):
    time.sleep(1)       # the fixture's probe connections are closed
    held = [socket.create_connection(("127.0.0.1", yubin.pop3_port), 5)
            for _ in range(3)]
    for s in held:
        s.settimeout(5)
        assert s.recv(100).startswith(b"+OK")
    extra = socket.create_connection(("127.0.0.1", yubin.pop3_port), 5)
    extra.settimeout(5)
    try:
        data = extra.recv(200)
    except ConnectionResetError:
        data = b""
    assert not data.startswith(b"+OK"), "4th connection from one IP served"
    extra.close()
    for s in held:
        s.close()
    time.sleep(0.5)
    pop = yubin.login_retry(yubin.pop3_stls)
    pop.quit()


def max_open_files(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError("no open-files line")


def test_workers_raise_open_file_limit_to_hard(yubin_factory):
    """A server started with the usual soft limit of 1,024 open files (one
    IMAP session holds four) raises it to the hard limit for its workers."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= 1024:
        pytest.skip(f"hard open-file limit is only {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        srv = yubin_factory(None, start=False)
        srv.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    workers = srv.wait_workers(1)
    assert workers
    for pid in [srv.proc.pid] + workers:
        assert max_open_files(pid) == hard
    assert f"open_files={hard}" in srv.log_text()
