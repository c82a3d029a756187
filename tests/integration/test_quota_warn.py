"""Quota warnings (issue 5, "Quota warnings"): when a delivery takes an
account past a percentage of [mail] quota_warnings, one notice from the
domain's postmaster lands in its INBOX; each crossing is told once, and
again only after usage fell below it and rose again.
"""

import email
import email.policy
import imaplib
import re

import pytest

from yubin_fixture import DOMAIN

USER = "full@" + DOMAIN
PASSWORD = "quota-Passw0rd!"


def message(n, size=400):
    head = b"From: someone@example.org\nTo: %s\nSubject: filler %d\n\n" % (
        USER.encode(), n)
    return head + b"x" * (size - len(head) - 1) + b"\n"


def uid_of(path):
    m = re.search(r",U=(\d+)", path.name)
    assert m, path.name
    return int(m.group(1))


def notices(srv):
    """The Subjects of the quota notices in the INBOX, in arrival order."""
    out = []
    # arrival order is UID order (the U= in the file name); the file's
    # mtime is the internal date, in whole seconds, so it cannot tell two
    # notices of the same second apart
    for path in sorted(srv.message_files(USER), key=uid_of):
        m = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if m["From"] and "postmaster@" + DOMAIN in m["From"]:
            out.append(m)
    return out


def deliver_until(srv, want_notices, start, limit=60):
    """Delivers fillers until the INBOX holds want_notices notices (or the
    box refuses more); returns the next filler number."""
    n = start
    while len(notices(srv)) < want_notices and n < start + limit:
        r = srv.deliver(USER, message(n))
        assert r.returncode in (0, 77), r.stderr
        n += 1
        if r.returncode == 77:
            break
    return n


@pytest.mark.yubin_config({"mail": {"quota_warnings": "80,95"}})
def test_thresholds_warn_once_each(yubin):
    yubin.add_user(USER, PASSWORD, "--quota", "10K")
    # below 80%: nothing
    for n in range(10):
        assert yubin.deliver(USER, message(n)).returncode == 0
    assert notices(yubin) == []
    n = deliver_until(yubin, 1, 10)
    got = notices(yubin)
    assert len(got) == 1
    first = got[0]
    assert first["Subject"] == "Your mailbox is 80% full"
    assert USER in first["To"]
    assert first["Auto-Submitted"] == "auto-generated"
    assert first.get_content_type() == "text/plain"
    assert first.get_content_charset() == "utf-8"
    text = first.get_content()
    assert "80%" in text and USER in text and "KB of 10.0 KB" in text
    # the next delivery stays between 80% and 95%, or crosses 95%: never
    # a second 80% notice
    n = deliver_until(yubin, 2, n)
    subjects = [m["Subject"] for m in notices(yubin)]
    assert subjects == ["Your mailbox is 80% full", "Your mailbox is 95% full"], subjects
    # more deliveries (accepted or refused as over quota) repeat nothing
    for k in range(3):
        r = yubin.deliver(USER, message(n + k, size=200))
        assert r.returncode in (0, 77)
    assert len(notices(yubin)) == 2
    assert yubin.log_text().count("event=quota_warning ") == 2


@pytest.mark.yubin_config({"mail": {"quota_warnings": "80"}})
def test_warns_again_after_usage_fell(yubin):
    yubin.add_user(USER, PASSWORD, "--quota", "10K")
    n = deliver_until(yubin, 1, 0)
    assert len(notices(yubin)) == 1
    # the user cleans up over IMAP: everything goes
    imap = imaplib.IMAP4("127.0.0.1", yubin.imap_port)
    imap.starttls(yubin.context())
    imap.login(USER, PASSWORD)
    imap.select("INBOX")
    imap.store("1:*", "+FLAGS", "\\Deleted")
    imap.expunge()
    imap.logout()
    # a small delivery resets the memory; crossing 80% again tells again
    assert yubin.deliver(USER, message(n)).returncode == 0
    assert notices(yubin) == []
    deliver_until(yubin, 1, n + 1)
    got = notices(yubin)
    assert [m["Subject"] for m in got] == ["Your mailbox is 80% full"]


@pytest.mark.yubin_config({"mail": {"quota_warnings": ""}})
def test_no_thresholds_no_notice(yubin):
    yubin.add_user(USER, PASSWORD, "--quota", "10K")
    for n in range(30):
        if yubin.deliver(USER, message(n)).returncode != 0:
            break
    assert notices(yubin) == []


def test_unlimited_account_gets_no_notice(yubin):
    yubin.add_user(USER, PASSWORD)
    for n in range(30):
        assert yubin.deliver(USER, message(n)).returncode == 0
    assert notices(yubin) == []
