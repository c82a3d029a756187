"""Issue 3 item 1 with real clients: curl over imap:// with STARTTLS
(--ssl-reqd) and over imaps:// does LIST, EXAMINE, FETCH by UID, SEARCH,
STORE, COPY, MOVE, APPEND and EXPUNGE; mutt in batch mode reads a mailbox
over imaps:// and over imap:// with STARTTLS. (imaplib over STARTTLS/TLS,
IDLE: test_imap.py and test_imap_idle.py.)"""

import shutil
import subprocess

import pytest

from yubin_fixture import DEMO, DEMO_PASSWORD

SUBJECTS = ["first curl message", "second mutt message", "third one"]


def message(subject):
    return ("From: Alice <alice@example.org>\r\nTo: %s\r\nSubject: %s\r\n"
            "Date: Mon, 3 Feb 2025 10:00:00 +0000\r\nMessage-ID: <%s@x>\r\n"
            "\r\nbody of %s\r\n" % (DEMO, subject, subject.replace(" ", "."),
                                   subject)).encode()


@pytest.fixture(scope="module")
def srv(yubin_module_factory):
    s = yubin_module_factory()
    for subject in SUBJECTS:
        assert s.deliver(DEMO, message(subject)).returncode == 0
    return s


def urls(srv):
    """(imap:// with STARTTLS required, imaps://)."""
    return [("imap://127.0.0.1:%d/" % srv.imap_port, ["--ssl-reqd"]),
            ("imaps://127.0.0.1:%d/" % srv.imaps_port, [])]


def curl(srv, url, *args, tls=()):
    cmd = ["curl", "-s", "-S", "--max-time", "20", "--cacert", str(srv.cert),
           "-k",
           "-u", "%s:%s" % (DEMO, DEMO_PASSWORD), *tls, *args, url]
    r = subprocess.run(cmd, capture_output=True, timeout=30)
    assert r.returncode == 0, (cmd, r.returncode, r.stderr)
    return r.stdout


@pytest.mark.parametrize("which", ["starttls", "imaps"])
def test_curl_commands(srv, which):
    url, tls = urls(srv)[0 if which == "starttls" else 1]
    box = "Curl-" + which
    # LIST
    out = curl(srv, url, tls=tls)
    assert b"INBOX" in out and b"\\Sent" in out, out
    # FETCH by UID (curl SELECTs the mailbox, then UID FETCH BODY[])
    out = curl(srv, url + "INBOX;UID=1", tls=tls)
    assert out == message(SUBJECTS[0])
    # SEARCH
    out = curl(srv, url + "INBOX", "-X", 'SEARCH SUBJECT "mutt"', tls=tls)
    assert out.strip() == b"* SEARCH 2", out
    # EXAMINE
    out = curl(srv, url, "-X", "EXAMINE INBOX", tls=tls)
    assert b"3 EXISTS" in out, out
    # APPEND (upload) into a new mailbox, then FETCH it back
    curl(srv, url, "-X", "CREATE " + box, tls=tls)
    upload = srv.root / ("upload-%s.eml" % which)
    upload.write_bytes(message("appended"))
    curl(srv, url + box, "-T", str(upload), tls=tls)
    assert curl(srv, url + box + ";UID=1", tls=tls) == message("appended")
    # COPY from INBOX, STORE \Deleted, EXPUNGE
    curl(srv, url + "INBOX", "-X", "COPY 3 " + box, tls=tls)
    out = curl(srv, url + box, "-X", "STORE 1 +FLAGS (\\Deleted)", tls=tls)
    assert b"\\Deleted" in out, out
    out = curl(srv, url + box, "-X", "EXPUNGE", tls=tls)
    assert b"* 1 EXPUNGE" in out, out
    out = curl(srv, url + box, "-X", "SEARCH ALL", tls=tls)
    assert out.strip() == b"* SEARCH 1", out
    assert b"third one" in curl(srv, url + box + ";UID=2", tls=tls)
    # MOVE it on to a second mailbox
    curl(srv, url, "-X", "CREATE " + box + "-2", tls=tls)
    # (curl shows no untagged reply of MOVE: the searches check it)
    curl(srv, url + box, "-X", "MOVE 1 " + box + "-2", tls=tls)
    assert curl(srv, url + box, "-X", "SEARCH ALL",
                tls=tls).strip() == b"* SEARCH"
    assert b"third one" in curl(srv, url + box + "-2;UID=1", tls=tls)


MUTTRC = """set folder = "{url}"
set spoolfile = "{url}INBOX"
set imap_user = "{user}"
set imap_pass = "{password}"
set ssl_starttls = yes
set ssl_force_tls = yes
set certificate_file = "{certs}"
set ssl_verify_host = no
set imap_check_subscribed = no
set mail_check = 0
set timeout = 5
set header_cache = ""
set message_cachedir = ""
set index_format = "SUBJ:%s"
set sort = date-sent
set move = no
set mbox_type = mbox
set confirmappend = no
set confirmcreate = no
set quit = yes
"""


@pytest.mark.skipif(shutil.which("mutt") is None,
                    reason="MUTT NOT INSTALLED (scripts/deps.sh test)")
@pytest.mark.parametrize("which", ["starttls", "imaps"])
def test_mutt_batch_reads_mailbox(srv, tmp_path, which):
    """mutt, scripted with push: tags every message of INBOX on yubin and
    saves copies to a local mbox; the mbox holds every message."""
    url = ("imap://127.0.0.1:%d/" % srv.imap_port if which == "starttls"
           else "imaps://127.0.0.1:%d/" % srv.imaps_port)
    certs = tmp_path / "certs"
    certs.write_bytes(srv.cert.read_bytes())
    mbox = tmp_path / "saved.mbox"
    rc = tmp_path / "muttrc"
    rc.write_text(MUTTRC.format(url=url, user=DEMO, password=DEMO_PASSWORD,
                                certs=certs))
    keys = "<tag-pattern>~A<enter><tag-prefix><copy-message>%s<enter><quit>" \
        % mbox
    env = {"HOME": str(tmp_path), "TERM": "xterm", "PATH": "/usr/bin:/bin"}
    # mutt needs a terminal: `script` gives it one; input comes from push
    r = subprocess.run(["script", "-qec",
                        "mutt -n -F %s -f '%sINBOX' -e 'push \"%s\"'"
                        % (rc, url, keys), "/dev/null"],
                       capture_output=True, timeout=60, env=env,
                       stdin=subprocess.DEVNULL)
    assert mbox.exists(), (r.returncode, r.stdout[-3000:], r.stderr)
    saved = mbox.read_bytes()
    for subject in SUBJECTS:
        assert b"Subject: " + subject.encode() in saved, saved[:3000]
    assert saved.count(b"\nFrom ") + saved.startswith(b"From ") == \
        len(SUBJECTS)
