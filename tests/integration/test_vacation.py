"""Vacation (issue 5 item 5; RFC 5230, RFC 3834): the first mail from a
sender is answered, the second within the period is not, nor list, bulk,
auto-submitted mail or a bounce; after the period it is again. Replies
are read from the outbound queue (what would be sent)."""

import re
import time

import pytest

from yubin_fixture import DEMO

SCRIPT = '''require ["vacation", "vacation-seconds"];
vacation :seconds 2 :subject "Away until Monday" :handle "away"
  "I am away. Your mail will be read later.";
'''


def message(sender, subject="Question", extra=b""):
    return (b"Return-Path: <" + sender.encode() + b">\r\n"
            b"From: <" + (sender or "mailer-daemon@remote.test").encode() + b">\r\n"
            b"To: Demo <demo@example.test>\r\nSubject: " + subject.encode() + b"\r\n"
            b"Message-ID: <q1@remote.test>\r\nReferences: <q0@remote.test>\r\n"
            + extra + b"\r\nHello\r\n")


def replies(srv):
    """[(envelope sender, rcpt, message bytes)] queued so far."""
    out = []
    qdir = srv.data / "queue"
    listing = srv.run("queue", "list").stdout.decode()
    for m in re.finditer(r"^(\S+)\s+\S+\s+\S+ \S+\s+<([^>]*)>\n\s+\w+\s+<([^>]*)>",
                         listing, re.M):
        out.append((m.group(2), m.group(3), (qdir / (m.group(1) + ".msg")).read_bytes()))
    return out


@pytest.fixture
def srv(yubin_factory):
    s = yubin_factory({"vacation": {"min_period": "1s"}}, start=False)
    put(s, SCRIPT)
    return s


def put(srv, text):
    assert srv.run("sieve", "put", DEMO, "away", "-", input=text.encode()).returncode == 0
    assert srv.run("sieve", "activate", DEMO, "away").returncode == 0


def test_first_answered_second_not_then_again_after_period(srv):
    assert srv.deliver(DEMO, message("alice@remote.test")).returncode == 0
    (sender, rcpt, reply), = replies(srv)
    assert sender == "" and rcpt == "alice@remote.test"
    head = reply.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nAuto-Submitted: auto-replied" in b"\r\n" + head
    assert b"Subject: Away until Monday" in head
    assert b"In-Reply-To: <q1@remote.test>" in head
    assert re.search(rb"References: <q0@remote.test>\r\n <q1@remote.test>", head)
    assert b"From: <demo@example.test>" in head and b"To: <alice@remote.test>" in head
    assert b"I am away." in reply
    assert srv.deliver(DEMO, message("alice@remote.test")).returncode == 0
    assert len(replies(srv)) == 1
    # another sender is answered on its own
    assert srv.deliver(DEMO, message("carol@remote.test")).returncode == 0
    assert len(replies(srv)) == 2
    time.sleep(2.5)
    assert srv.deliver(DEMO, message("alice@remote.test")).returncode == 0
    assert len(replies(srv)) == 3
    assert len(srv.message_files(DEMO)) == 4  # every message is delivered


@pytest.mark.parametrize("sender,extra", [
    ("alice@remote.test", b"List-Id: <talk.lists.remote.test>\r\n"),
    ("alice@remote.test", b"Precedence: bulk\r\n"),
    ("alice@remote.test", b"Auto-Submitted: auto-generated\r\n"),
    ("", b""),                                   # a bounce: the null sender
    ("owner-talk@remote.test", b""),
    ("talk-request@remote.test", b""),
    ("MAILER-DAEMON@remote.test", b""),
])
def test_not_answered(srv, sender, extra):
    assert srv.deliver(DEMO, message(sender, extra=extra)).returncode == 0
    assert replies(srv) == []
    assert len(srv.message_files(DEMO)) == 1


def test_sender_given_on_the_command_line(srv):
    """`yubin deliver --from` (what Postfix's pipe passes as ${sender})
    wins over a Return-Path field; "<>" is the null sender."""
    msg = message("mallory@remote.test")
    r = srv.run("deliver", "--from", "bob@remote.test", DEMO, input=msg)
    assert r.returncode == 0, r.stderr
    (sender, rcpt, _), = replies(srv)
    assert rcpt == "bob@remote.test"
    r = srv.run("deliver", "--from", "<>", DEMO, input=message("carol@remote.test"))
    assert r.returncode == 0, r.stderr
    assert len(replies(srv)) == 1  # a bounce is never answered
    assert len(srv.message_files(DEMO)) == 2


def test_not_answered_when_not_addressed(srv):
    msg = message("alice@remote.test").replace(b"To: Demo <demo@example.test>",
                                                b"To: list@remote.test")
    assert srv.deliver(DEMO, msg).returncode == 0
    assert replies(srv) == []


def test_non_ascii_subject_is_encoded(srv):
    put(srv, 'require "vacation";\nvacation "Ich bin weg. Grüße";\n')
    assert srv.deliver(DEMO, message("alice@remote.test", subject="Frage")).returncode == 0
    (_, _, reply), = replies(srv)
    assert b"Subject: Auto: Frage" in reply
    assert b"Content-Transfer-Encoding: quoted-printable" in reply
    assert b"Gr=C3=BC=C3=9Fe" in reply


def test_answered_over_smtp(yubin_factory):
    """Mail from the MX: the serve worker queues the reply itself."""
    import smtplib
    srv = yubin_factory({"vacation": {"min_period": "1s"},
                         "queue": {"retry_first": "1h"}})
    put(srv, SCRIPT)
    with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=30) as c:
        c.sendmail("dave@remote.test", [DEMO],
                   message("dave@remote.test").split(b"\r\n", 1)[1])
    assert len(srv.message_files(DEMO)) == 1
    deadline = time.time() + 10
    while time.time() < deadline and "dave@remote.test" not in srv.log_text():
        time.sleep(0.2)
    assert re.search(r"event=vacation_sent", srv.log_text()), srv.log_text()[-2000:]
