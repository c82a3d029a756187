"""The SMTP server: MX (RFC 5321) and submission (RFC 6409, RFC 8314),
driven with Python's smtplib, swaks and raw sockets against a real
`yubin serve`. Each test names the RFC section or the story it checks."""

import email
import imaplib
import poplib
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

import threading

from yubin_fixture import (DEMO, DEMO_PASSWORD, fast_bin, insecure_context,
                           proc_status_kb)

ALICE = "alice@example.test"
ALICE_PASSWORD = "alice-Passw0rd!"


def msg(subject="hello", sender=DEMO, to=DEMO, extra=b"", body=b"body line\r\n"):
    return (b"From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n%s\r\n" %
            (sender.encode(), to.encode(), subject.encode(), extra)) + body


class RawSmtp:
    """A line-level SMTP client that sends exactly the bytes given."""

    def __init__(self, port, tls=False, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        if tls:
            self.sock = insecure_context().wrap_socket(self.sock)
        self.buf = b""
        self.greeting = self.reply()

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

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed; got %r" % self.buf)
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        """(code, [lines]) of one possibly multi-line reply."""
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line[3:4] != b"-":
                return int(line[:3]), lines

    def cmd(self, line):
        self.send(line.encode() + b"\r\n" if isinstance(line, str)
                  else line + b"\r\n")
        return self.reply()

    def starttls(self):
        code, _ = self.cmd("STARTTLS")
        assert code == 220
        self.sock = insecure_context().wrap_socket(self.sock)
        self.buf = b""

    def closed(self, timeout=5):
        """True when the server closed the connection."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            return True


def inbox(srv, addr=DEMO):
    return [p.read_bytes() for p in srv.message_files(addr)]


def submission(srv, user=ALICE, password=ALICE_PASSWORD):
    s = smtplib.SMTP("127.0.0.1", srv.submission_port, timeout=10)
    s.starttls(context=insecure_context())
    s.login(user, password)
    return s


@pytest.fixture
def srv(yubin):
    yubin.add_user(ALICE, ALICE_PASSWORD)
    return yubin


# ---- MX delivery (RFC 5321 3.3, issue 4 check 1) ------------------------

def test_mx_delivery_lands_in_maildir_pop3_and_imap(srv):
    with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=10) as s:
        s.sendmail("someone@remote.test", [DEMO], msg("mx-1", "someone@remote.test"))
    files = inbox(srv)
    assert len(files) == 1 and b"Subject: mx-1" in files[0]
    p = srv.pop3_stls()
    _, lines, _ = p.retr(1)
    assert b"Subject: mx-1" in lines
    p.quit()
    m = imaplib.IMAP4("127.0.0.1", srv.imap_port)
    m.starttls(insecure_context())
    m.login(DEMO, DEMO_PASSWORD)
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and b"mx-1" in data[0][1]
    m.logout()


def test_unknown_user_refused_at_rcpt_550_511(srv):
    with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=10) as s:
        s.ehlo("client.test")
        s.mail("a@remote.test")
        code, text = s.rcpt("nobody@example.test")
        assert (code, text[:5]) == (550, b"5.1.1")


def test_swaks_delivers_to_mx(srv):
    if shutil.which("swaks") is None:
        pytest.skip("swaks not installed")
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port",
                        str(srv.smtp_port), "--to", DEMO, "--from",
                        "x@remote.test", "--header", "Subject: via-swaks",
                        "--helo", "swaks.test"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    files = inbox(srv)
    assert len(files) == 1 and b"Subject: via-swaks" in files[0]
    assert b"Received: from swaks.test ([127.0.0.1])" in files[0]


# ---- open relay (issue 4 check 1: 20 classic tricks) --------------------

RELAY_TRICKS = [
    "<user@other.test>",
    "<USER@OTHER.TEST>",
    "<user%other.test@example.test>",
    "<user%other.test>",
    "<@example.test:user@other.test>",
    "<@example.test,@example.test:user@other.test>",
    '<"user@other.test"@example.test>',
    '<"user%other.test"@example.test>',
    '<"user@other.test">',
    "<user@other.test@example.test>",
    "<user@example.test@other.test>",
    "<other.test!user@example.test>",
    "<user!other.test@example.test>",
    "<user@[127.0.0.1]>",
    "<user@[IPv6:::1]>",
    "<demo@[127.0.0.1]>",
    "<user@other.test.>",
    "<demo@example.test.>",
    "<user@sub.example.test>",
    "<user@example.test.other.test>",
    "<user@other.test%example.test>",
    "user@other.test",
    "<user@localhost>",
    "<user@127.0.0.1>",
]


@pytest.mark.parametrize("path", RELAY_TRICKS)
def test_open_relay_trick_refused(srv, path):
    with RawSmtp(srv.smtp_port) as c:
        assert c.cmd("EHLO relay.test")[0] == 250
        assert c.cmd("MAIL FROM:<spammer@remote.test>")[0] == 250
        code, lines = c.cmd("RCPT TO:" + path)
        assert 500 <= code < 600, (path, lines)
        code, _ = c.cmd("DATA")
        assert code in (503, 554), "DATA accepted after a refused RCPT"
    assert inbox(srv) == []


def test_relay_refused_554_571(srv):
    with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=10) as s:
        s.ehlo("x.test")
        s.mail("a@remote.test")
        assert s.rcpt("b@other.test") == (554, b"5.7.1 Relay access denied")


# ---- submission (RFC 6409, RFC 8314, RFC 4954; issue 4 check 2) ---------

def test_submission_auth_only_after_starttls(srv):
    s = smtplib.SMTP("127.0.0.1", srv.submission_port, timeout=10)
    s.ehlo("client.test")
    assert not s.has_extn("auth") and s.has_extn("starttls")
    code, text = s.docmd("AUTH", "PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZS1QYXNzdzByZCE=")
    assert code == 538
    code, _ = s.docmd("MAIL", "FROM:<%s>" % ALICE)
    assert code == 530
    s.starttls(context=insecure_context())
    s.ehlo("client.test")
    assert "PLAIN" in s.esmtp_features["auth"]
    s.login(ALICE, ALICE_PASSWORD)
    s.sendmail(ALICE, [DEMO], msg("sub-1", ALICE))
    s.quit()
    files = inbox(srv)
    assert len(files) == 1
    assert b"with ESMTPSA id" in files[0]
    assert b"(using TLSv1." in files[0]


def test_submissions_implicit_tls_auth_at_once(srv):
    s = smtplib.SMTP_SSL("127.0.0.1", srv.submissions_port, timeout=10,
                         context=insecure_context())
    s.ehlo("client.test")
    assert "LOGIN" in s.esmtp_features["auth"]
    assert not s.has_extn("starttls")
    s.login(ALICE, ALICE_PASSWORD)
    s.sendmail(ALICE, [DEMO], msg("subs", ALICE))
    s.quit()
    assert len(inbox(srv)) == 1


def test_submission_wrong_password_535(srv):
    s = smtplib.SMTP("127.0.0.1", srv.submission_port, timeout=10)
    s.starttls(context=insecure_context())
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        s.login(ALICE, "wrong")
    assert e.value.smtp_code == 535


def test_submission_foreign_envelope_sender_refused(srv):
    s = submission(srv)
    code, text = s.mail(DEMO)
    assert (code, text[:5]) == (553, b"5.7.1")
    assert s.mail("someone@remote.test")[0] == 553
    assert s.mail(ALICE.upper())[0] == 250


def test_submission_foreign_from_header_refused(srv):
    s = submission(srv)
    with pytest.raises(smtplib.SMTPDataError) as e:
        s.sendmail(ALICE, [DEMO], msg("spoof", sender=DEMO))
    assert e.value.smtp_code == 550 and e.value.smtp_error.startswith(b"5.7.1")
    assert inbox(srv) == []


@pytest.mark.yubin_config({"smtp": {"any_sender_accounts": "nobody@example.test, " + ALICE}})
def test_submission_any_sender_account(yubin):
    """[smtp] any_sender_accounts relaxes the check for the accounts it
    names, and only for them."""
    yubin.add_user(ALICE, ALICE_PASSWORD)
    s = submission(yubin)
    s.sendmail("forms@remote.test", [DEMO], msg("any", sender="web-form@remote.test"))
    s.quit()
    assert len(inbox(yubin)) == 1
    s = submission(yubin, DEMO, DEMO_PASSWORD)
    assert s.mail(ALICE)[0] == 553
    s.quit()


def test_submission_alias_sender_allowed(srv):
    r = srv.run("alias", "add", "al@example.test", ALICE)
    assert r.returncode == 0, r.stderr
    s = submission(srv)
    s.sendmail("al@example.test", [DEMO], msg("alias", sender="al@example.test"))
    assert len(inbox(srv)) == 1


def test_submission_adds_message_id_and_date(srv):
    s = submission(srv)
    s.sendmail(ALICE, [DEMO], b"From: <alice@example.test>\r\nSubject: bare\r\n\r\nx\r\n")
    m = email.message_from_bytes(inbox(srv)[0])
    assert m["Message-ID"].startswith("<") and m["Message-ID"].endswith("@localhost>")
    assert email.utils.parsedate_tz(m["Date"]) is not None


def test_submission_remote_recipient_queued(srv):
    s = submission(srv)
    code, text = s.docmd("MAIL", "FROM:<%s>" % ALICE)
    assert code == 250
    assert s.rcpt("bob@remote.test")[0] == 250
    assert s.rcpt(DEMO)[0] == 250
    code, text = s.data(msg("split", ALICE, "bob@remote.test"))
    assert code == 250 and b"queued as" in text, text
    assert len(inbox(srv)) == 1


# ---- ESMTP extensions ---------------------------------------------------

def test_ehlo_extensions_and_enhanced_codes(srv):
    with RawSmtp(srv.smtp_port) as c:
        code, lines = c.cmd("EHLO client.test")
        names = {l[4:].split(b" ")[0] for l in lines[1:]}
        assert {b"PIPELINING", b"SIZE", b"8BITMIME", b"ENHANCEDSTATUSCODES",
                b"STARTTLS", b"SMTPUTF8", b"CHUNKING", b"BINARYMIME",
                b"DSN"} <= names
        assert b"AUTH" not in names
        for line in ("NOOP", "VRFY demo", "RSET", "MAIL FROM:<a@b.test>",
                     "RCPT TO:<nobody@example.test>", "DATA", "BOGUS"):
            code, lines = c.cmd(line)
            assert lines[-1][4:5].isdigit() and lines[-1][5:6] == b".", lines


def test_pipelining_replies_in_order(srv):
    with RawSmtp(srv.smtp_port) as c:
        c.cmd("EHLO client.test")
        c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<demo@example.test>\r\n"
               b"RCPT TO:<nobody@example.test>\r\nRCPT TO:<x@other.test>\r\nDATA\r\n")
        codes = [c.reply()[0] for _ in range(5)]
        assert codes == [250, 250, 550, 554, 354]
        c.send(b"Subject: piped\r\n\r\nx\r\n.\r\nNOOP\r\nQUIT\r\n")
        assert [c.reply()[0] for _ in range(3)] == [250, 250, 221]
    assert len(inbox(srv)) == 1


@pytest.mark.yubin_config({"smtp": {"max_message_size": "10k"}})
def test_size_refused_at_mail_and_on_data(yubin):
    with RawSmtp(yubin.smtp_port) as c:
        code, lines = c.cmd("EHLO client.test")
        assert b"250-SIZE 10240" in lines
        code, lines = c.cmd("MAIL FROM:<a@remote.test> SIZE=20000")
        assert code == 552 and lines[0].startswith(b"552 5.3.4")
        assert c.cmd("MAIL FROM:<a@remote.test> SIZE=100")[0] == 250
        assert c.cmd("RCPT TO:<demo@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 30 + b".\r\n")
        code, lines = c.reply()
        assert code == 552 and lines[0].startswith(b"552 5.3.4")
        assert c.cmd("NOOP")[0] == 250
    assert yubin.message_files() == []


@pytest.mark.yubin_config({"listener smtp": {"max_message_size": "5k"}})
def test_size_per_listener(yubin):
    """A listener's own limit (the MX smaller than submission)."""
    with RawSmtp(yubin.smtp_port) as c:
        code, lines = c.cmd("EHLO client.test")
        assert b"250-SIZE 5120" in lines
        assert c.cmd("MAIL FROM:<a@remote.test> SIZE=6000")[0] == 552
    s = smtplib.SMTP("127.0.0.1", yubin.submission_port, timeout=10)
    s.ehlo("client.test")
    s.starttls(context=insecure_context())
    s.ehlo("client.test")
    assert s.esmtp_features.get("size") == str(35 * 1024 * 1024)
    s.quit()


# ---- SMTP smuggling (CVE-2023-51764 family) -----------------------------

SMUGGLING = [
    b"Subject: a\r\n\r\nx\n.\nMAIL FROM:<s@remote.test>\r\n",
    b"Subject: a\r\n\r\nx\r\n.\nMAIL FROM:<s@remote.test>\r\n",
    b"Subject: a\r\n\r\nx\n.\r\nMAIL FROM:<s@remote.test>\r\n",
    b"Subject: a\r\n\r\nx\r.\rMAIL FROM:<s@remote.test>\r\n",
    b"Subject: a\r\n\r\nx\r\n.\rMAIL FROM:<s@remote.test>\r\n",
    b"Subject: a\r\n\r\nbare lf\nhere\r\n",
    b"Subject: a\r\n\r\nbare cr\rhere\r\n",
]


@pytest.mark.parametrize("body", SMUGGLING)
def test_smuggling_refused_never_split(srv, body):
    with RawSmtp(srv.smtp_port) as c:
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 250
        assert c.cmd("RCPT TO:<demo@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(body + b"\r\n.\r\n")
        code, lines = c.reply()
        assert code == 554 and lines[0].startswith(b"554 5.6.0"), lines
        # the smuggled MAIL was data, not a command: a MAIL now is not nested
        assert c.cmd("MAIL FROM:<b@remote.test>")[0] == 250
    assert inbox(srv) == []


def test_dot_unstuffing(srv):
    with RawSmtp(srv.smtp_port) as c:
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@remote.test>")
        c.cmd("RCPT TO:<demo@example.test>")
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: dots\r\n\r\n..leading\r\n...\r\n.x\r\n.\r\n")
        assert c.reply()[0] == 250
    assert inbox(srv)[0].endswith(b"\r\n\r\n.leading\r\n..\r\nx\r\n")


# ---- CHUNKING / BINARYMIME (RFC 3030) ---------------------------------

def test_bdat_chunks(srv):
    part1 = b"Subject: bdat\r\n\r\nfirst "
    part2 = b"second\r\n.\r\n"
    with RawSmtp(srv.smtp_port) as c:
        c.cmd("EHLO client.test")
        c.send(b"MAIL FROM:<a@remote.test> BODY=BINARYMIME\r\n"
               b"RCPT TO:<demo@example.test>\r\n")
        assert [c.reply()[0] for _ in range(2)] == [250, 250]
        c.send(b"BDAT %d\r\n" % len(part1) + part1)
        assert c.reply()[0] == 250
        c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
        code, lines = c.reply()
        assert code == 250, lines
    assert inbox(srv)[0].endswith(b"\r\n\r\nfirst second\r\n.\r\n")


def test_bdat_without_mail_consumes_chunk(srv):
    with RawSmtp(srv.smtp_port) as c:
        c.cmd("EHLO client.test")
        c.send(b"BDAT 12 LAST\r\nNOOP\r\nNOOP\r\n")
        assert c.reply()[0] == 503
        assert c.cmd("NOOP")[0] == 250


def test_data_refused_for_binarymime(srv):
    with RawSmtp(srv.smtp_port) as c:
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@remote.test> BODY=BINARYMIME")
        c.cmd("RCPT TO:<demo@example.test>")
        assert c.cmd("DATA")[0] == 503


# ---- SMTPUTF8 (RFC 6531) and DSN (RFC 3461) -----------------------------

def test_smtputf8_sender_delivered(srv):
    sender = "用户@例子.test"
    with RawSmtp(srv.smtp_port) as c:
        c.cmd("EHLO client.test")
        assert c.cmd(("MAIL FROM:<%s>" % sender).encode())[0] == 553
        assert c.cmd(("MAIL FROM:<%s> SMTPUTF8" % sender).encode())[0] == 250
        assert c.cmd("RCPT TO:<demo@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(("From: <%s>\r\nSubject: ünïcödé\r\n\r\nこんにちは\r\n.\r\n"
                % sender).encode())
        assert c.reply()[0] == 250
    data = inbox(srv)[0]
    assert "こんにちは".encode() in data and b"with UTF8SMTP id" in data


def test_dsn_parameters_accepted_and_validated(srv):
    with RawSmtp(srv.smtp_port) as c:
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<a@remote.test> RET=HDRS ENVID=QQ+2B1")[0] == 250
        assert c.cmd("RCPT TO:<demo@example.test> NOTIFY=SUCCESS,FAILURE "
                     "ORCPT=rfc822;demo@example.test")[0] == 250
        assert c.cmd("RCPT TO:<demo@example.test> NOTIFY=NEVER,SUCCESS")[0] == 501
        assert c.cmd("RCPT TO:<demo@example.test> NOTIFY=SOMETIMES")[0] == 501
        assert c.cmd("RCPT TO:<demo@example.test> ORCPT=nosemicolon")[0] == 501
        assert c.cmd("RCPT TO:<demo@example.test> FOO=BAR")[0] == 555
        c.cmd("RSET")
        assert c.cmd("MAIL FROM:<a@remote.test> RET=MAYBE")[0] == 501
        assert c.cmd("MAIL FROM:<a@remote.test> ENVID=bad+zz")[0] == 501
        assert c.cmd("MAIL FROM:<a@remote.test> RET=FULL RET=HDRS")[0] == 501


# ---- trace header (RFC 5321 4.4) ---------------------------------------

def test_received_header_mx_starttls(srv):
    s = smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=10)
    s.starttls(context=insecure_context())
    s.ehlo("helo.example")
    s.sendmail("a@remote.test", [DEMO], msg("trace"))
    s.quit()
    data = inbox(srv)[0]
    hdr = data.split(b"\r\n\r\n")[0].decode()
    received = hdr.split("\r\nFrom:")[0]
    assert received.startswith("Received: from helo.example ([127.0.0.1])")
    assert "(using TLSv1." in received and "with cipher" in received
    assert "by localhost (yubin) with ESMTPS id " in received
    assert "for <demo@example.test>;" in received
    m = email.message_from_bytes(data)
    date = m["Received"].split(";")[-1].strip()
    assert email.utils.parsedate_tz(date) is not None


# ---- STARTTLS (RFC 3207; CVE-2011-0411) --------------------------------

def test_pipelined_plaintext_after_starttls_discarded(srv):
    with RawSmtp(srv.smtp_port) as c:
        c.cmd("EHLO client.test")
        c.send(b"STARTTLS\r\nMAIL FROM:<injected@remote.test>\r\n")
        code, _ = c.reply()
        assert code == 220
        c.sock = insecure_context().wrap_socket(c.sock)
        c.buf = b""
        code, lines = c.cmd("EHLO client.test")
        assert code == 250
        # had the injected MAIL run, this would be "503 nested MAIL"
        assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 250
        assert c.cmd("NOOP")[0] == 250


def test_commands_need_ehlo(srv):
    with RawSmtp(srv.smtp_port) as c:
        assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 503


# ---- limits -------------------------------------------------------------

@pytest.mark.yubin_config({"smtp": {"max_recipients": "3"}})
def test_recipient_limit_452(yubin):
    with RawSmtp(yubin.smtp_port) as c:
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@remote.test>")
        for _ in range(3):
            assert c.cmd("RCPT TO:<demo@example.test>")[0] == 250
        code, lines = c.cmd("RCPT TO:<demo@example.test>")
        assert code == 452 and lines[0].startswith(b"452 4.5.3")


@pytest.mark.yubin_config({"smtp": {"max_messages": "2"}})
def test_messages_per_connection_limit(yubin):
    with RawSmtp(yubin.smtp_port) as c:
        c.cmd("EHLO client.test")
        for _ in range(2):
            assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 250
            assert c.cmd("RCPT TO:<demo@example.test>")[0] == 250
            assert c.cmd("DATA")[0] == 354
            assert c.cmd(b"Subject: n\r\n\r\nx\r\n.")[0] == 250
        assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 421
        assert c.closed()
    assert len(yubin.message_files()) == 2


@pytest.mark.yubin_config({"smtp": {"max_errors": "3"}})
def test_error_limit_disconnects_421(yubin):
    with RawSmtp(yubin.smtp_port) as c:
        c.cmd("EHLO client.test")
        assert c.cmd("BOGUS")[0] == 500
        assert c.cmd("BOGUS")[0] == 500
        c.send(b"BOGUS\r\n")
        assert c.reply()[0] == 500
        code, lines = c.reply()
        assert code == 421 and lines[0].startswith(b"421 4.7.0")
        assert c.closed()


def test_long_line_and_nul_refused(srv):
    with RawSmtp(srv.smtp_port) as c:
        c.cmd("EHLO client.test")
        assert c.cmd(b"NOOP " + b"x" * 1000000)[0] == 500
        assert c.cmd(b"NOOP \x00")[0] == 500
        assert c.cmd("NOOP")[0] == 250


def test_many_rcpts_bounded(srv):
    with RawSmtp(srv.smtp_port) as c:
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@remote.test>")
        c.send(b"RCPT TO:<demo@example.test>\r\n" * 1005)
        codes = [c.reply()[0] for _ in range(1005)]
        assert codes.count(250) == 1000 and codes[1000:] == [452] * 5


@pytest.mark.yubin_config({"smtp": {"command_timeout": "1s"}})
def test_idle_timeout_421(yubin):
    with RawSmtp(yubin.smtp_port) as c:
        time.sleep(2.5)
        code, lines = c.reply()
        assert code == 421 and lines[0].startswith(b"421 4.4.2")


@pytest.mark.yubin_config({"server": {"hostname": "mail.example.test"}})
def test_postmaster_without_domain_accepted(yubin):
    """RFC 5321 4.5.1: <Postmaster> is the postmaster of the server's domain."""
    r = yubin.run("alias", "add", "postmaster@example.test", DEMO)
    assert r.returncode == 0, r.stderr
    with RawSmtp(yubin.smtp_port) as c:
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<a@remote.test>")
        assert c.cmd("RCPT TO:<Postmaster>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        assert c.cmd(b"Subject: pm\r\n\r\nx\r\n.")[0] == 250
    assert len(yubin.message_files()) == 1


def test_swaks_submission_starttls_auth(srv):
    if shutil.which("swaks") is None:
        pytest.skip("swaks not installed")
    base = ["swaks", "--server", "127.0.0.1", "--port", str(srv.submission_port),
            "--to", DEMO, "--from", ALICE, "--helo", "swaks.test",
            "--header", "From: <%s>" % ALICE, "--header", "Subject: swaks-sub"]
    r = subprocess.run(base + ["--auth", "LOGIN", "--auth-user", ALICE,
                               "--auth-password", ALICE_PASSWORD],
                       capture_output=True, timeout=30)
    assert r.returncode != 0, "AUTH succeeded without TLS"
    r = subprocess.run(base + ["--tls", "--auth", "PLAIN", "--auth-user", ALICE,
                               "--auth-password", ALICE_PASSWORD],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    files = inbox(srv)
    assert len(files) == 1 and b"swaks-sub" in files[0]


def _sanitized(binary):
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def test_pipelining_abuse_memory_bounded(yubin_factory):
    """A client that pipelines 24 MB of commands and reads nothing: the
    server stops reading when its replies pile up (56 MB of them would
    otherwise wait in memory), and answers all once the client reads
    (issue 4 check 6)."""
    srv = yubin_factory(binary=fast_bin())
    count = 4000000
    reply = b"250 2.0.0 Ok\r\n"
    with RawSmtp(srv.smtp_port, timeout=120) as c:
        c.cmd("EHLO client.test")
        before = max(proc_status_kb(p, "VmRSS") for p in srv.workers())
        sender = threading.Thread(target=c.send, args=(b"NOOP\r\n" * count,))
        sender.start()
        time.sleep(4)
        # the server stopped reading: the client's send is stuck
        assert sender.is_alive()
        during = max(proc_status_kb(p, "VmRSS") for p in srv.workers())
        want = len(reply) * count
        got = len(c.buf)
        while got < want:
            data = c.sock.recv(1 << 20)
            assert data, "connection closed after %d bytes" % got
            got += len(data)
        sender.join()
        assert got == want
        c.buf = b""
        assert c.cmd("QUIT")[0] == 221
    # ASan's quarantine keeps freed replies: RSS says nothing there
    if not _sanitized(srv.bin):
        assert during - before < 20000, (before, during)


# ---- a local copy that fails after DATA (RFC 5321 4.2.5, 6.1) -----------

def wait_for(pred, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    return pred()


def test_local_copy_failing_for_good_is_bounced_not_lost(srv):
    """One reply covers all recipients: demo over quota (permanent) must not
    make alice's copy fail or be sent twice; 250, alice has one copy, and
    the sender (bob, local) gets an RFC 3464 bounce naming demo."""
    srv.add_user("bob@example.test", "bob-Passw0rd!")
    srv.run("user", "quota", DEMO, "1k")  # below one message
    big = msg("after-data", "bob@example.test", extra=b"X-Pad: " + b"x" * 2000 + b"\r\n")
    with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=10) as s:
        refused = s.sendmail("bob@example.test", [ALICE, DEMO], big)
    assert refused == {}
    assert len(inbox(srv, ALICE)) == 1
    assert inbox(srv, DEMO) == []
    bounces = wait_for(lambda: inbox(srv, "bob@example.test"))
    assert len(bounces) == 1, "the sender got no bounce for the failed copy"
    m = email.message_from_bytes(bounces[0])
    assert m.get_content_type() == "multipart/report"
    status = m.get_payload()[1].get_payload()[1]
    assert status["Final-Recipient"] == "rfc822; " + DEMO
    assert status["Action"] == "failed"
    assert len(inbox(srv, ALICE)) == 1, "alice got the message twice"


@pytest.mark.yubin_config({"mail": {"quota_tempfail": "yes"}})
def test_local_copy_failing_for_now_waits_in_queue(yubin):
    """A temporary local failure is retried from the queue, not by making
    the client resend to everyone."""
    yubin.add_user(ALICE, ALICE_PASSWORD)
    yubin.run("user", "quota", DEMO, "1k")
    big = msg("after-data-temp", "someone@remote.test",
              extra=b"X-Pad: " + b"x" * 2000 + b"\r\n")
    with smtplib.SMTP("127.0.0.1", yubin.smtp_port, timeout=10) as s:
        assert s.sendmail("someone@remote.test", [ALICE, DEMO], big) == {}
    assert len(inbox(yubin, ALICE)) == 1 and inbox(yubin, DEMO) == []
    listing = wait_for(lambda: DEMO.encode() in yubin.run("queue", "list").stdout and
                       yubin.run("queue", "list").stdout)
    assert DEMO.encode() in listing, listing
    yubin.run("user", "quota", DEMO, "0")
    yubin.run("queue", "flush")
    assert wait_for(lambda: inbox(yubin, DEMO)), "the queued copy was not delivered"
    assert len(inbox(yubin, ALICE)) == 1
