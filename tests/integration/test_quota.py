"""Issue 2, item 5: over-quota delivery fails with the configured code
(sysexits 77 EX_NOPERM-style permanent, or 75 EX_TEMPFAIL when
quota_tempfail = yes), stores nothing, and the account is otherwise
unharmed."""

import pytest

QUOTA_USER = "q@example.test"
QUOTA_PASSWORD = "quota-secret-1"


def message(n, size=4000):
    head = b"From: a@example.org\r\nSubject: quota %d\r\n\r\n" % n
    line = b"q" * 78 + b"\r\n"
    body = line * ((size - len(head)) // len(line))
    body += b"z" * (size - len(head) - len(body) - 2) + b"\r\n"
    data = head + body
    assert len(data) == size
    return data


def state(srv):
    """(files in new/+cur/, files in tmp/, POP3 STAT count)."""
    pop = srv.login_retry(lambda: srv.pop3_stls(QUOTA_USER, QUOTA_PASSWORD))
    count = pop.stat()[0]
    pop.quit()
    return len(srv.message_files(QUOTA_USER)), len(srv.tmp_files(QUOTA_USER)), \
        count


def fill_and_overflow(srv, expect_rc):
    for n in (1, 2):
        r = srv.deliver(QUOTA_USER, message(n))
        assert r.returncode == 0, r.stderr
    before = state(srv)
    assert before == (2, 0, 2)
    r = srv.deliver(QUOTA_USER, message(3))
    assert r.returncode == expect_rc, (r.returncode, r.stderr)
    assert b"quota" in r.stderr.lower() or b"full" in r.stderr.lower(), \
        "the refusal does not say it is the quota: %r" % r.stderr
    assert state(srv) == before, "an over-quota delivery left something behind"


def still_works(srv):
    pop = srv.login_retry(lambda: srv.pop3_stls(QUOTA_USER, QUOTA_PASSWORD))
    lines = pop.retr(1)[1]
    assert lines[1] == b"Subject: quota 1"
    pop.dele(1)
    pop.quit()
    r = srv.deliver(QUOTA_USER, message(4))
    assert r.returncode == 0, r.stderr
    pop = srv.login_retry(lambda: srv.pop3_stls(QUOTA_USER, QUOTA_PASSWORD))
    assert pop.stat()[0] == 2
    subjects = [pop.top(i, 0)[1][1] for i in (1, 2)]
    assert subjects == [b"Subject: quota 2", b"Subject: quota 4"]
    pop.quit()


def test_byte_quota_permanent(yubin):
    yubin.add_user(QUOTA_USER, QUOTA_PASSWORD, "--quota", "10k")
    fill_and_overflow(yubin, 77)
    still_works(yubin)


@pytest.mark.yubin_config({"mail": {"quota_tempfail": "yes"}})
def test_byte_quota_tempfail(yubin):
    yubin.add_user(QUOTA_USER, QUOTA_PASSWORD, "--quota", "10k")
    fill_and_overflow(yubin, 75)
    still_works(yubin)


def test_message_count_quota(yubin):
    yubin.add_user(QUOTA_USER, QUOTA_PASSWORD, "--quota-messages", "2")
    fill_and_overflow(yubin, 77)
    still_works(yubin)


def test_quota_to_several_recipients_is_per_account(yubin):
    """One full account does not stop delivery to the others."""
    yubin.add_user(QUOTA_USER, QUOTA_PASSWORD, "--quota-messages", "1")
    assert yubin.deliver(QUOTA_USER, message(1)).returncode == 0
    r = yubin.run("deliver", QUOTA_USER, "demo@example.test",
                  input=message(2))
    assert r.returncode != 0, "a refused recipient was not reported"
    pop = yubin.pop3_stls()
    assert pop.stat()[0] == 1, "the other recipient did not get the message"
    pop.quit()
    assert len(yubin.message_files(QUOTA_USER)) == 1


@pytest.mark.yubin_config({"mail": {"max_message_size": "8k"}})
def test_max_message_size(yubin):
    r = yubin.deliver("demo@example.test", message(1, size=9000))
    assert r.returncode == 77, (r.returncode, r.stderr)
    assert r.stderr.strip(), "refused without a message"
    assert yubin.message_files() == []
    assert yubin.deliver("demo@example.test", message(2, size=4000)).returncode == 0
