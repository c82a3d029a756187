"""Sieve at delivery (issue 5 item 1): scripts run by `yubin deliver`
against real messages; results checked in the Maildir, over IMAP and in
the outbound queue (what would be sent)."""

import imaplib
import re
import ssl
import time

import pytest

from yubin_fixture import DEMO, DEMO_PASSWORD

SENDER = "alice@remote.test"


def message(subject, extra=b"", body=b"Hello there.\r\n", sender=SENDER):
    return (b"Return-Path: <" + sender.encode() + b">\r\n"
            b"From: Alice <alice@remote.test>\r\nTo: demo@example.test\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Date: Mon, 02 Mar 2026 10:00:00 +0100\r\n"
            b"Message-ID: <m-" + re.sub(r"\W", "", subject).encode() + b"@remote.test>\r\n"
            + extra + b"\r\n" + body)


def put_script(srv, text, name="main"):
    """Stores the demo account's script and activates it, with the CLI."""
    r = srv.run("sieve", "put", DEMO, name, "-", input=text.encode())
    assert r.returncode == 0, r.stderr.decode()
    r = srv.run("sieve", "activate", DEMO, name)
    assert r.returncode == 0, r.stderr.decode()


def write_script(srv, text, name):
    """A script stored behind the CLI's back (one that no longer compiles,
    e.g. after [sieve] limits changed): <root>/sieve/NAME.sieve + active."""
    d = srv.maildir(DEMO) / "sieve"
    d.mkdir(exist_ok=True)
    (d / (name + ".sieve")).write_text(text)
    (d / "active").write_text(name + "\n")


def folder_files(srv, folder):
    root = srv.maildir(DEMO) / ("." + folder.replace("/", "."))
    return sorted(p for d in ("new", "cur") if (root / d).is_dir()
                  for p in (root / d).iterdir() if p.is_file())


def queued(srv):
    """[(sender, [rcpts], bytes)] of the queue, via `yubin queue list`."""
    out = srv.run("queue", "list").stdout.decode()
    items = []
    for block in re.split(r"\n(?=\S)", out.strip()):
        m = re.match(r"(\S+)\s+\S+\s+\S+ \S+\s+<([^>]*)>", block)
        if not m:
            continue
        rcpts = re.findall(r"^\s+\w+\s+<([^>]*)>", block, re.M)
        data = (srv.data / "queue" / (m.group(1) + ".msg")).read_bytes()
        items.append((m.group(2), rcpts, data))
    return items


@pytest.fixture
def srv(yubin_factory):
    return yubin_factory(start=False)


def test_fileinto_create_matches_and_flags_over_imap(yubin_factory):
    srv = yubin_factory()
    put_script(srv, r'''require ["fileinto", "mailbox", "variables", "imap4flags"];
if header :matches "Subject" "report for *" {
    addflag ["\\Flagged", "work"];
    fileinto :create "Reports/${1}";
}
''')
    assert srv.deliver(DEMO, message("report for March")).returncode == 0
    files = folder_files(srv, "Reports/March")
    assert len(files) == 1 and srv.message_files(DEMO) == []
    assert files[0].name.endswith(":2,F")
    c = imaplib.IMAP4("127.0.0.1", srv.imap_port, timeout=30)
    c.starttls(ssl._create_unverified_context())
    c.login(DEMO, DEMO_PASSWORD)
    typ, names = c.list()
    assert any(b"Reports/March" in n for n in names), names
    assert c.select('"Reports/March"')[0] == "OK"
    typ, data = c.fetch("1", "(FLAGS)")
    flags = data[0].decode()
    assert "\\Flagged" in flags and "work" in flags, flags
    c.logout()


def test_fileinto_missing_mailbox_without_create_keeps_in_inbox(srv):
    put_script(srv, 'require "fileinto";\nfileinto "Nowhere";\n')
    assert srv.deliver(DEMO, message("lost?")).returncode == 0
    assert len(srv.message_files(DEMO)) == 1
    assert not (srv.maildir(DEMO) / ".Nowhere").exists()


def test_fileinto_twice_stores_once_and_keep(srv):
    put_script(srv, 'require ["fileinto", "mailbox"];\nfileinto :create "A";\nfileinto "A";\nkeep;\n')
    assert srv.deliver(DEMO, message("twice")).returncode == 0
    assert len(folder_files(srv, "A")) == 1
    assert len(srv.message_files(DEMO)) == 1


def test_reject_exits_77_with_reason_and_stores_nothing(srv):
    put_script(srv, 'require "reject";\nreject "Not from you, thanks.";\n')
    r = srv.deliver(DEMO, message("unwanted"))
    assert r.returncode == 77
    assert b"Not from you, thanks." in r.stderr
    assert srv.message_files(DEMO) == []
    assert queued(srv) == []  # the MTA answers, never a mail of ours


def test_redirect_copy_queues_identical_bytes_with_srs_and_delivered_to(srv):
    put_script(srv, 'require "copy";\nredirect :copy "bob@remote.test";\n')
    msg = message("forward me", body=b"Line one\r\nLine two\r\n")
    assert srv.deliver(DEMO, msg).returncode == 0
    assert len(srv.message_files(DEMO)) == 1
    (sender, rcpts, data), = queued(srv)
    assert rcpts == ["bob@remote.test"]
    assert re.match(r"SRS0=[^=]+=[^=]+=remote\.test=alice@example\.test$", sender), sender
    assert data == b"Delivered-To: demo@example.test\r\n" + msg


def test_redirect_without_copy_keeps_nothing(srv):
    put_script(srv, 'redirect "bob@remote.test";\n')
    assert srv.deliver(DEMO, message("away")).returncode == 0
    assert srv.message_files(DEMO) == []
    assert [q[1] for q in queued(srv)] == [["bob@remote.test"]]


def test_discard(srv):
    put_script(srv, 'if header :contains "subject" "junk" { discard; }\n')
    assert srv.deliver(DEMO, message("pure junk")).returncode == 0
    assert srv.message_files(DEMO) == []
    assert srv.deliver(DEMO, message("fine")).returncode == 0
    assert len(srv.message_files(DEMO)) == 1


def test_body_text_and_date(srv):
    put_script(srv, r'''require ["body", "date", "fileinto", "mailbox", "relational", "comparator-i;ascii-numeric"];
if body :text :contains "invoice" { fileinto :create "Bills"; }
if date :value "lt" :comparator "i;ascii-numeric" "date" "year" "2000" { fileinto :create "Old"; }
if currentdate :value "ge" :comparator "i;ascii-numeric" "year" "2020" { addflag_dummy_never_used; }
'''.replace('if currentdate :value "ge" :comparator "i;ascii-numeric" "year" "2020" { addflag_dummy_never_used; }\n',
            'if currentdate :value "ge" :comparator "i;ascii-numeric" "year" "2020" { fileinto :create "Now"; }\n'))
    assert srv.deliver(DEMO, message("march", body=b"Your invoice is attached.\r\n")).returncode == 0
    assert len(folder_files(srv, "Bills")) == 1
    assert len(folder_files(srv, "Now")) == 1
    old = message("old").replace(b"Mon, 02 Mar 2026", b"Fri, 01 Jan 1999")
    assert srv.deliver(DEMO, old).returncode == 0
    assert len(folder_files(srv, "Old")) == 1


def test_editheader_edit_is_stored(srv):
    put_script(srv, 'require "editheader";\naddheader "X-Filtered" "yes";\n'
                    'deleteheader "X-Junk";\n')
    msg = message("edit", extra=b"X-Junk: 1\r\n", body=b"unchanged body\r\n")
    assert srv.deliver(DEMO, msg).returncode == 0
    (f,) = srv.message_files(DEMO)
    stored = f.read_bytes()
    head, body = stored.split(b"\r\n\r\n", 1)
    assert b"X-Filtered: yes" in head and b"X-Junk" not in head
    assert body == b"unchanged body\r\n"


def notices(srv):
    return [f.read_bytes() for f in srv.message_files(DEMO)
            if b"MAILER-DAEMON" in f.read_bytes()]


def test_script_that_no_longer_compiles_keeps_and_notifies_once(srv):
    write_script(srv, 'require "fileinto";\nif header :is "subject" "x" {\n  fileinta "x";\n}\n',
                 name="broken")
    assert srv.deliver(DEMO, message("first")).returncode == 0
    texts = [f.read_bytes() for f in srv.message_files(DEMO)]
    assert len(texts) == 2
    (notice,) = notices(srv)
    assert b'"broken"' in notice and b"line 3:" in notice
    assert b"Auto-Submitted: auto-generated" in notice
    assert any(b"Subject: first" in t for t in texts)
    assert srv.deliver(DEMO, message("second")).returncode == 0
    assert len(srv.message_files(DEMO)) == 3  # the message, no second notice
    assert len(notices(srv)) == 1


def test_runtime_error_keeps_in_inbox_and_drops_the_actions(srv):
    # six redirects: over [sieve] max_redirects (4) at run time
    put_script(srv, "".join('redirect "r%d@remote.test";\n' % i for i in range(6)),
               name="many")
    assert srv.deliver(DEMO, message("runtime")).returncode == 0
    assert queued(srv) == []
    assert len(srv.message_files(DEMO)) == 2
    (notice,) = notices(srv)
    assert b'"many"' in notice


def test_no_script_delivers_to_inbox(srv):
    assert srv.deliver(DEMO, message("plain")).returncode == 0
    assert len(srv.message_files(DEMO)) == 1


def test_smtp_reject_is_550_with_reason_and_fileinto_works(yubin_factory):
    import smtplib
    srv = yubin_factory()
    put_script(srv, 'require ["reject", "fileinto", "envelope"];\n'
                    'if envelope :domain :is "from" "spam.test" { reject "No mail from spam.test"; }\n'
                    'elsif envelope :localpart :is "from" "alice" { fileinto "Archive"; }\n')
    with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=30) as c:
        with pytest.raises(smtplib.SMTPDataError) as e:
            # no Return-Path: the envelope test sees the SMTP sender
            c.sendmail("eve@spam.test", [DEMO],
                       message("buy now", sender="x@y.test").split(b"\r\n", 1)[1])
        assert e.value.smtp_code == 550
        assert b"5.7.1 No mail from spam.test" in e.value.smtp_error
        c.sendmail(SENDER, [DEMO], message("via smtp").split(b"\r\n", 1)[1])
    assert srv.message_files(DEMO) == []
    assert len(folder_files(srv, "Archive")) == 1


def test_smtp_reject_among_several_recipients_bounces_with_reason(yubin_factory):
    import smtplib
    srv = yubin_factory()
    bob = "bob@example.test"
    srv.add_user(bob, "bob-Passw0rd!")
    put_script(srv, 'require "reject";\nreject "Closed for the holidays";\n')
    carol = "carol@example.test"
    srv.add_user(carol, "carol-Passw0rd!")
    with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=30) as c:
        c.sendmail(bob, [DEMO, carol], message("two rcpts", sender=bob).split(b"\r\n", 1)[1])
    assert len(srv.message_files(carol)) == 1
    deadline = time.time() + 30
    while time.time() < deadline and not srv.message_files(bob):
        time.sleep(0.2)
    (bounce,) = srv.message_files(bob)
    text = bounce.read_bytes()
    assert b"Closed for the holidays" in text and b"Status: 5.7.1" in text
    assert srv.message_files(DEMO) == []
