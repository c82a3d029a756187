"""Forwarding, closed accounts and vacation set with `yubin user` (issue 5,
item 3, and "Routing settings per account"; docs/forwarding.md):

- forward-and-keep and forward-only: the local copy lands (or not) and the
  forwarded message reaches Postfix's smtp-sink, through a [transport]
  route, byte-identical after the Delivered-To line and yubin's Received;
- its envelope sender is an SRS0 address of the forwarding domain, and a
  bounce sent to that address at our MX reaches the original sender;
  a forged or altered SRS address is refused at RCPT (550 5.1.1);
- two accounts forwarding to each other: exactly one bounce, no storm;
- a closed account: 550 at RCPT with its reason, nothing stored;
- vacation set with the CLI answers.
"""

import email
import email.policy
import os
import re
import smtplib
import time

import pytest

from test_queue import SINK, Sink, crlf, route, sinks, wait_for, wait_inbox  # noqa: F401
from yubin_fixture import DEMO, DOMAIN

FAST = {"queue": {"retry_first": "1s", "retry_max": "2s"}}
PW = "fwd-Passw0rd!"

pytestmark = pytest.mark.skipif(not os.path.exists(SINK),
                                reason="smtp-sink (postfix) is not installed")


def message(subject, sender=DEMO):
    return (b"Date: Sun, 22 Nov 2026 10:00:00 +0900\r\n"
            b"Message-ID: <%s@example.org>\r\n"
            b"From: %s\r\n"
            b"To: someone\r\n"
            b"Subject: %s\r\n"
            b"\r\n"
            b"body of %s\r\n"
            b".a line with a leading dot\r\n"
            b"trailing space \r\n"
            b"\xe6\x97\xa5\xe6\x9c\xac 8-bit\r\n"
            b"end\r\n" % (subject.encode(), sender.encode(), subject.encode(),
                          subject.encode()))


def mx_send(srv, sender, rcpts, data):
    with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=30) as s:
        s.ehlo("client.example.org")
        return s.sendmail(sender, rcpts, data)


def user(srv, *args):
    r = srv.run("user", *args)
    assert r.returncode == 0, (args, r.returncode, r.stderr.decode())
    return r.stdout.decode()


def sink_envelope(path):
    """MAIL FROM and RCPT TO of a smtp-sink dump (its X-Mail-Args and
    X-Rcpt-Args lines)."""
    text = path.read_bytes().decode("latin-1")
    mail = re.search(r"(?m)^X-Mail-Args: <([^>]*)>", text)
    rcpts = re.findall(r"(?m)^X-Rcpt-Args: <([^>]*)>", text)
    return (mail.group(1) if mail else None), rcpts


def strip_added(data: bytes, account):
    """The forwarded bytes without the lines yubin adds in front: the
    Delivered-To line of the forwarding account and the MX's Received."""
    first, rest = data.split(b"\r\n", 1)
    assert first == b"Delivered-To: " + account.encode(), data[:200]
    assert rest.startswith(b"Received: "), rest[:200]
    lines = rest.split(b"\r\n")
    i = 1
    while lines[i][:1] in (b" ", b"\t"):
        i += 1
    return b"\r\n".join(lines[i:])


@pytest.mark.yubin_config(FAST)
def test_forward_and_keep(yubin, sinks):
    sink = sinks()
    route(yubin, "remote.test", sink.port)
    yubin.restart()
    fwd = "keeper@" + DOMAIN
    yubin.add_user(fwd, PW)
    out = user(yubin, "forward", fwd, "--keep", "Far.Away+tag@Remote.TEST")
    assert "far.away+tag@remote.test" in out.lower() and "keep a copy" in out
    assert "forward to Far.Away+tag@remote.test and keep a copy" in user(yubin, "show", fwd)
    msg = message("keep one")
    mx_send(yubin, DEMO, [fwd], msg)
    # the local copy
    local = wait_inbox(yubin, fwd, 1)
    stored = local[0].read_bytes()
    assert stored.endswith(msg)
    # the forwarded copy: the same bytes after what yubin added
    got = sink.wait_count(1)
    assert strip_added(got[0], fwd) == msg
    env_from, rcpts = sink_envelope(sink.files()[0])
    assert rcpts == ["Far.Away+tag@remote.test"]
    assert re.fullmatch(r"SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=example\.test=demo@example\.test",
                        env_from), env_from


@pytest.mark.yubin_config(FAST)
def test_forward_only_keeps_nothing_and_srs_bounce_returns(yubin, sinks):
    sink = sinks()
    route(yubin, "remote.test", sink.port)
    yubin.restart()
    fwd = "mover@" + DOMAIN
    yubin.add_user(fwd, PW)
    user(yubin, "forward", fwd, "--no-keep", "new@remote.test")
    msg = message("move one")
    mx_send(yubin, DEMO, [fwd], msg)
    got = sink.wait_count(1)
    assert strip_added(got[0], fwd) == msg
    env_from, _ = sink_envelope(sink.files()[0])
    assert env_from.startswith("SRS0=") and env_from.endswith("@" + DOMAIN)
    time.sleep(1)
    assert yubin.message_files(fwd) == []
    # The target's MTA bounces to the SRS address: our MX takes it and
    # the original sender (demo) gets it.
    bounce = (b"From: MAILER-DAEMON@remote.test\r\nTo: %s\r\n"
              b"Subject: Undelivered Mail Returned to Sender\r\n\r\n"
              b"new@remote.test: mailbox unavailable\r\n" % env_from.encode())
    mx_send(yubin, "", [env_from], bounce)
    files = wait_inbox(yubin, DEMO, 1)
    assert files[0].read_bytes().endswith(bounce)
    # case folded by some MTA on the way: still ours
    mx_send(yubin, "", [env_from.lower()], bounce)
    wait_inbox(yubin, DEMO, 2)
    # a tampered hash or an address we never made: 550 5.1.1 at RCPT
    h = env_from[5:9]
    forged = env_from.replace(h, "AAAA" if h.upper() != "AAAA" else "BBBB", 1)
    for bad in (forged, "SRS0=abcd=AA=example.org=x@" + DOMAIN):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            mx_send(yubin, "", [bad], bounce)
        code, text = e.value.recipients[bad]
        assert code == 550 and text.startswith(b"5.1.1"), (code, text)


@pytest.mark.yubin_config(FAST)
def test_forwarding_loop_ends_in_one_bounce(yubin):
    a, b = "ping@" + DOMAIN, "pong@" + DOMAIN
    yubin.add_user(a, PW)
    yubin.add_user(b, PW)
    user(yubin, "forward", a, "--no-keep", b)
    user(yubin, "forward", b, "--no-keep", a)
    mx_send(yubin, DEMO, [a], message("round and round"))
    files = wait_inbox(yubin, DEMO, 1, timeout=30)
    # let the queue settle: nothing more arrives
    wait_for("an empty queue", lambda: not any(
        p.name.endswith(".env") for p in (yubin.data / "queue").glob("*")), srv=yubin)
    time.sleep(2)
    files = yubin.message_files(DEMO)
    assert len(files) == 1
    report = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.compat32)
    assert report.get_content_type() == "multipart/report"
    assert b"forwarding loop" in files[0].read_bytes()
    # the bounce names the failure with RFC 3463's code for a loop
    assert b"Status: 5.4.6" in files[0].read_bytes()
    assert yubin.message_files(a) == [] and yubin.message_files(b) == []
    log = yubin.log_text()
    assert log.count("status=loop") == 1
    # no storm: ping forwards once, pong once; then the bounce and its two
    # SRS hops back (SRS1 -> SRS0 -> demo) are all that is queued
    assert log.count("event=redirected") == 2, log
    assert log.count("event=srs_pass_back ") == 2, log
    assert log.count("event=queued") == 5, log


def test_closed_account_refused_at_rcpt(yubin):
    gone = "gone@" + DOMAIN
    yubin.add_user(gone, PW)
    out = user(yubin, "close", gone, "--reason", "Gone has left; write to office@example.test")
    assert "Closed" in out
    assert "closed (Gone has left" in user(yubin, "show", gone)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        mx_send(yubin, DEMO, [gone], message("to the closed one"))
    code, text = e.value.recipients[gone]
    assert code == 550
    assert text == b"5.2.1 Gone has left; write to office@example.test"
    # through `yubin deliver` (an alias or an MTA in front): refused too
    r = yubin.deliver(gone, message("deliver to closed"))
    assert r.returncode == 77, r.stderr
    assert yubin.message_files(gone) == []
    # reopened: mail lands again
    user(yubin, "reopen", gone)
    mx_send(yubin, DEMO, [gone], message("back again"))
    wait_inbox(yubin, gone, 1)


def test_cli_checks_targets_and_limits(yubin):
    acct = "checker@" + DOMAIN
    yubin.add_user(acct, PW)
    assert yubin.run("user", "forward", acct, "not-an-address").returncode == 65
    assert yubin.run("user", "forward", acct, "a@b@c.example").returncode == 65
    assert yubin.run("user", "forward", acct, "x@bad_domain!").returncode == 65
    assert yubin.run("user", "forward", acct, "x\n@remote.test").returncode == 65
    six = ["t%d@remote.test" % i for i in range(6)]
    r = yubin.run("user", "forward", acct, *six)
    assert r.returncode == 65 and b"max_addresses" in r.stderr
    assert yubin.run("user", "forward", "nobody@" + DOMAIN, "x@remote.test").returncode == 67
    assert yubin.run("user", "forward", acct, "--keep", "--no-keep",
                     "x@remote.test").returncode == 64
    # nothing was stored by the refusals
    assert "routing:  normal" in user(yubin, "show", acct)
    user(yubin, "forward", acct, *six[:5])
    assert "forward to " + ", ".join(six[:5]) in user(yubin, "show", acct)
    # --no-keep alone changes the copy setting; --off ends it
    assert "(no copy kept)" in user(yubin, "forward", acct, "--no-keep")
    assert "Forwarding of %s is off" % acct in user(yubin, "forward", acct, "--off")
    assert "routing:  normal" in user(yubin, "show", acct)
    # closing needs a one-line reason
    assert yubin.run("user", "close", acct, "--reason", "two\nlines").returncode == 65
    assert yubin.run("user", "reopen", acct).returncode == 1
    # vacation needs its text, days within 1-365
    assert yubin.run("user", "vacation", acct, "--on").returncode == 65
    assert yubin.run("user", "vacation", acct, "--on", "--days", "0",
                     "--message-file", "-", input=b"away\n").returncode == 65
    assert yubin.run("user", "vacation", acct, "--on", "--off").returncode == 64
    assert "vacation: off" in user(yubin, "show", acct)
    help_text = yubin.run("help", "user").stdout.decode()
    for word in ("forward", "close", "reopen", "vacation", "backscatter", "--no-keep"):
        assert word in help_text


@pytest.mark.yubin_config(FAST)
def test_vacation_set_with_cli_answers(yubin, sinks):
    sink = sinks()
    route(yubin, "remote.test", sink.port)
    yubin.restart()
    away = "away@" + DOMAIN
    yubin.add_user(away, PW)
    r = yubin.run("user", "vacation", away, "--on", "--days", "3", "--subject",
                  "Away \"until\" Monday", "--message-file", "-",
                  input="I am away.\nBack on Monday \\o/ \u3055\u3088\u3046\u306a\u3089\n"
                  .encode())
    assert r.returncode == 0, r.stderr
    assert b"backscatter" in r.stderr
    assert "vacation: on, once per sender every 3 days" in user(yubin, "show", away)
    msg = (b"From: Friend <friend@remote.test>\r\nTo: %s\r\n"
           b"Subject: hello\r\nMessage-ID: <hello-1@remote.test>\r\n\r\nhi\r\n" % away.encode())
    mx_send(yubin, "friend@remote.test", [away], msg)
    wait_inbox(yubin, away, 1)
    got = sink.wait_count(1)
    env_from, rcpts = sink_envelope(sink.files()[0])
    assert env_from == "" and rcpts == ["friend@remote.test"]
    reply = email.message_from_bytes(got[0], policy=email.policy.default)
    assert reply["Subject"] == 'Away "until" Monday'
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["In-Reply-To"] == "<hello-1@remote.test>"
    assert "Back on Monday \\o/ \u3055\u3088\u3046\u306a\u3089" in reply.get_content()
    # the second mail within the period: no reply
    mx_send(yubin, "friend@remote.test", [away], msg.replace(b"hello-1", b"hello-2"))
    wait_inbox(yubin, away, 2)
    time.sleep(2)
    assert len(sink.files()) == 1
    # off: nothing more
    assert "vacation: off" in user(yubin, "vacation", away, "--off")
