"""Issue 2, item 7: `yubin check` finds every error in a broken config,
each as `file:line: what is wrong`; bad CLI input gets a clear message and a
non-zero exit; the account commands do what they say."""

import poplib
import re
import textwrap

import pytest

from yubin_fixture import DEMO, DEMO_PASSWORD, REPO

BROKEN = textwrap.dedent("""\
    # a config with one error of each kind
    [server]
    workers = 2
    bogus_key = 1

    [nosuchsection]
    foo = bar

    [mail]
    max_message_size = 12Q

    [pop3]
    idle_timeout = soon

    [listener pop3]
    protocol = pop3
    address = 127.0.0.1
    port = 99999
    tls = starttls

    [listener pop3s]
    protocol = pop3
    address = 127.0.0.1
    tls = implicit

    [listener pop3]
    protocol = pop3
    address = 127.0.0.1
    port = 2111
    tls = none

    [auth]
    allow_plaintext = maybe
    failure_delay = -1s
""")

# line -> words of which the error line must contain one (lower case)
EXPECTED = {
    4: ("bogus_key",),
    6: ("nosuchsection", "section"),
    10: ("12q", "size", "max_message_size"),
    13: ("soon", "duration", "idle_timeout"),
    18: ("99999", "port"),
    26: ("duplicate", "already", "twice", "pop3"),
    33: ("maybe", "allow_plaintext", "bool", "yes"),
    34: ("-1s", "failure_delay", "duration"),
}
MISSING_PORT_LINES = range(21, 25)      # the [listener pop3s] section


@pytest.fixture(scope="module")
def cli(yubin_module_factory):
    return yubin_module_factory(start=False)


def out(r):
    return (r.stdout + r.stderr).decode(errors="replace")


def assert_clear_failure(r, *words):
    text = out(r).lower()
    assert r.returncode > 0, "exit %d: %s" % (r.returncode, text)
    assert text.strip(), "failed without saying why"
    assert any(w.lower() in text for w in words), \
        "message does not say what was wrong (want one of %s): %s" % (
            words, text)


# ---- check -----------------------------------------------------------------

def test_check_accepts_init_config(cli):
    r = cli.run("check")
    assert r.returncode == 0, out(r)


def test_check_reports_every_error_with_its_line(cli):
    path = cli.root / "broken.conf"
    path.write_text(BROKEN)
    r = cli.run_raw("-c", str(path), "check", with_config=False)
    assert r.returncode != 0, out(r)
    errors = {}
    for line in out(r).splitlines():
        m = re.match(r"^(.*?):(\d+): (.+)$", line)
        if m and m.group(1).endswith("broken.conf"):
            errors.setdefault(int(m.group(2)), []).append(m.group(3).lower())
    problems = []
    for lineno, words in EXPECTED.items():
        msgs = errors.get(lineno, [])
        if not any(w in m for m in msgs for w in words):
            problems.append("line %d: want an error naming one of %s, got %s"
                            % (lineno, words, msgs))
    if not any("port" in m for n in MISSING_PORT_LINES
               for m in errors.get(n, [])):
        problems.append("missing port of [listener pop3s] (lines 21-24) not "
                        "reported")
    assert not problems, "\n".join(problems) + "\n--- output:\n" + out(r)


def test_check_missing_file(cli):
    r = cli.run_raw("-c", str(cli.root / "nope.conf"), "check",
                    with_config=False)
    assert_clear_failure(r, "nope.conf")


def test_check_reports_errors_as_file_line(cli):
    path = cli.root / "one.conf"
    path.write_text((cli.conf.read_text() + "\n[log]\nlevel = chatty\n"))
    n = path.read_text().count("\n")
    r = cli.run_raw("-c", str(path), "check", with_config=False)
    assert r.returncode != 0
    assert re.search(r"one\.conf:%d: .*(chatty|level)" % n, out(r)), out(r)


def test_example_config_is_valid(cli):
    path = REPO / "etc" / "yubin.conf.example"
    assert path.exists(), "etc/yubin.conf.example is missing"
    r = cli.run_raw("-c", str(path), "check", with_config=False)
    # the example's data folder and certificate need not exist here: only
    # its syntax and values must be right
    bad = [l for l in out(r).splitlines()
           if re.match(r"^.*yubin\.conf\.example:\d+: ", l)
           and not re.search(r"no such file|cannot (open|load|read)|not found"
                             r"|does not exist", l, re.I)]
    assert not bad, "\n".join(bad)


# ---- front door --------------------------------------------------------------

def test_version(cli):
    r = cli.run_raw("--version", with_config=False)
    assert r.returncode == 0, out(r)
    assert re.search(r"yubin\D*\d+\.\d+", out(r)), out(r)


def test_help(cli):
    r = cli.run_raw("help", with_config=False)
    assert r.returncode == 0, out(r)
    text = out(r)
    for command in ("init", "serve", "user", "domain", "alias", "deliver",
                    "index", "check"):
        assert command in text, "help does not mention %s:\n%s" % (command,
                                                                   text)


def test_help_user(cli):
    r = cli.run_raw("help", "user", with_config=False)
    assert r.returncode == 0, out(r)
    for sub in ("add", "del", "list", "show", "passwd", "--quota"):
        assert sub in out(r), "help user does not mention %s:\n%s" % (sub,
                                                                      out(r))


def test_help_unknown_command(cli):
    assert_clear_failure(cli.run_raw("help", "frobnicate", with_config=False),
                         "frobnicate", "unknown")


def test_unknown_command(cli):
    assert_clear_failure(cli.run("frobnicate"), "frobnicate", "unknown")


def test_unknown_subcommand(cli):
    assert_clear_failure(cli.run("user", "frobnicate"), "frobnicate",
                         "unknown")


def test_no_command(cli):
    r = cli.run_raw(with_config=False)
    assert r.returncode > 0 and out(r).strip(), out(r)


def test_unknown_option(cli):
    assert_clear_failure(cli.run("user", "add", "x@example.test",
                                 "--frobnicate", input=b"pw\n"),
                         "frobnicate", "unknown", "option")


# ---- user --------------------------------------------------------------------

def test_user_add_unknown_domain(cli):
    r = cli.run("user", "add", "someone@nodomain.test", input=b"secret-pw\n")
    assert_clear_failure(r, "domain")


@pytest.mark.parametrize("addr", ["not-an-address", "a@@example.test",
                                  "@example.test", "user@", "a b@example.test",
                                  "../x@example.test", "x/../y@example.test",
                                  ""])
def test_user_add_malformed_address(cli, addr):
    r = cli.run("user", "add", addr, input=b"secret-pw\n")
    assert_clear_failure(r, "address", "invalid", "malformed")
    assert not list((cli.data / "mail").rglob("*..*")) if (
        cli.data / "mail").exists() else True


def test_user_add_missing_password(cli):
    r = cli.run("user", "add", "nopw@example.test", input=b"")
    assert_clear_failure(r, "password")
    r = cli.run("user", "list")
    assert "nopw@example.test" not in out(r)


def test_user_add_bad_quota(cli):
    r = cli.run("user", "add", "badq@example.test", "--quota", "lots",
                input=b"secret-pw\n")
    assert_clear_failure(r, "quota", "lots", "size")


def test_user_add_twice(cli):
    r = cli.run("user", "add", DEMO, input=b"another-pw\n")
    assert_clear_failure(r, "exist", "already")


def test_user_list_and_show(cli):
    r = cli.run("user", "list")
    assert r.returncode == 0 and DEMO in out(r), out(r)
    r = cli.run("user", "show", DEMO)
    assert r.returncode == 0 and DEMO in out(r), out(r)
    assert DEMO_PASSWORD not in out(r) and "$y$" not in out(r), \
        "user show reveals the password or its hash"
    assert_clear_failure(cli.run("user", "show", "ghost@example.test"),
                         "ghost@example.test", "unknown", "no such", "not")


def test_user_passwd_and_del(yubin):
    yubin.add_user("pw@example.test", "first-secret")
    r = yubin.run("user", "passwd", "pw@example.test", input=b"second-secret\n")
    assert r.returncode == 0, out(r)
    assert b"second-secret" not in r.stdout + r.stderr
    pop = yubin.pop3_stls("pw@example.test", "second-secret")
    pop.quit()
    with pytest.raises(poplib.error_proto):
        yubin.pop3_stls("pw@example.test", "first-secret")
    r = yubin.run("user", "del", "pw@example.test")
    assert r.returncode == 0, out(r)
    assert yubin.deliver("pw@example.test", b"Subject: x\r\n\r\nx\r\n"
                         ).returncode == 67
    with pytest.raises(poplib.error_proto):
        yubin.pop3_stls("pw@example.test", "second-secret")
    assert_clear_failure(yubin.run("user", "del", "pw@example.test"),
                         "pw@example.test", "unknown", "no such", "not")


# ---- deliver, domain, alias, index ------------------------------------------------

def test_deliver_unknown_user_is_67(cli):
    r = cli.run("deliver", "ghost@example.test",
                input=b"Subject: x\r\n\r\nbody\r\n")
    assert r.returncode == 67, out(r)
    assert "ghost@example.test" in out(r), out(r)
    r = cli.run("deliver", "someone@elsewhere.test",
                input=b"Subject: x\r\n\r\nbody\r\n")
    assert r.returncode == 67, out(r)


def test_deliver_without_recipient(cli):
    r = cli.run("deliver", input=b"Subject: x\r\n\r\nbody\r\n")
    assert r.returncode > 0 and out(r).strip(), out(r)
    assert r.returncode != 67 or "recipient" in out(r).lower()


def test_domain_add_list(cli):
    r = cli.run("domain", "add", "other.test")
    assert r.returncode == 0, out(r)
    r = cli.run("domain", "list")
    assert "other.test" in out(r) and "example.test" in out(r), out(r)
    assert_clear_failure(cli.run("domain", "add", "other.test"),
                         "exist", "already")
    assert_clear_failure(cli.run("domain", "add", "bad..domain"),
                         "domain", "invalid")
    cli.add_user("x@other.test", "x-secret-pw")


def test_alias_delivers_to_target(yubin):
    r = yubin.run("alias", "add", "postmaster@example.test", DEMO)
    assert r.returncode == 0, out(r)
    r = yubin.run("alias", "list")
    assert "postmaster@example.test" in out(r), out(r)
    data = b"Subject: to the alias\r\n\r\nhello\r\n"
    r = yubin.deliver("postmaster@example.test", data)
    assert r.returncode == 0, out(r)
    pop = yubin.pop3_stls()
    assert b"".join(l + b"\r\n" for l in pop.retr(1)[1]) == data
    pop.quit()
    r = yubin.run("alias", "del", "postmaster@example.test")
    assert r.returncode == 0, out(r)
    assert yubin.deliver("postmaster@example.test", data).returncode == 67
    # an alias address must be in a hosted domain (its targets may be
    # anywhere: forwarding)
    assert_clear_failure(yubin.run("alias", "add", "a@nowhere.test", DEMO),
                         "nowhere.test", "domain", "hosted")
    assert_clear_failure(yubin.run("alias", "add", "bad address", DEMO),
                         "address", "invalid")


def test_index_rebuild_unknown_account(cli):
    assert_clear_failure(cli.run("index", "rebuild", "ghost@example.test"),
                         "ghost@example.test", "unknown", "no such", "not")


def test_init_does_not_clobber(cli):
    before = cli.conf.read_text()
    r = cli.run_raw("init", str(cli.root), "--domain", "example.test",
                    with_config=False)
    assert cli.conf.read_text() == before, "init overwrote an existing config"
    if r.returncode != 0:
        assert out(r).strip()
    assert DEMO in out(cli.run("user", "list"))
