"""Issue 3 item 2: for every corpus message, FETCH ENVELOPE, BODYSTRUCTURE,
RFC822.SIZE, BODY[], BODY[n], BODY[n.MIME], BINARY[n] and BINARY.SIZE[n]
from yubin equal Dovecot's, or the difference is listed in
known-differences.txt (with the docs/imap.md entry that justifies ours).
See dovecot_diff.py for how; README.md for running it alone."""

import sys
import time

import pytest

from dovecot_diff import YUBIN_OVERRIDES, Known, corpus_for_test, report, run
from imapwire import Client
from yubin_fixture import CORPUS, DEMO, DEMO_PASSWORD, fast_bin

pytestmark = pytest.mark.skipif(
    not (CORPUS / "INDEX.tsv").is_file(),
    reason="MAIL CORPUS NOT FOUND at %s: the Dovecot comparison did not run"
    % CORPUS)


def test_fetch_matches_dovecot_on_corpus(yubin_factory, dovecot):
    # the non-sanitizer build when there is one ($YUBIN_FAST_BIN): this
    # fetches every part of 1,900 messages; test_imap.py fetches corpus
    # messages under the sanitizers
    srv = yubin_factory(YUBIN_OVERRIDES, binary=fast_bin())
    known = Known()
    messages = corpus_for_test()
    ours = Client(srv.imap_port, DEMO, DEMO_PASSWORD)
    theirs = dovecot.client()
    t0 = time.monotonic()
    result = run(ours, theirs, messages, known)
    ours.close()
    theirs.close()
    print("%s (%.0f s)" % (result.summary(), time.monotonic() - t0),
          file=sys.stderr)
    # the comparison really ran: nearly every message, every item kind
    assert result.messages >= len(messages) - 5, result.summary()
    assert result.items > 10 * result.messages, result.summary()
    assert result.same > 0.95 * result.items, result.summary()
    assert not result.unexplained and not known.unused(), \
        report(result, known)[:20000]


def test_differences_are_detected(yubin_factory, dovecot):
    """The comparison can fail: a message whose bytes differ between the
    two servers is reported (and nothing is listed for it)."""
    srv = yubin_factory(YUBIN_OVERRIDES)
    ours = Client(srv.imap_port, DEMO, DEMO_PASSWORD)
    theirs = dovecot.client()
    a = b"Subject: one\r\nContent-Type: text/plain\r\n\r\nbody one\r\n"
    b = b"Subject: two\r\nContent-Type: text/html\r\n\r\nbody two, longer\r\n"
    import dovecot_diff
    result = dovecot_diff.Result()
    counts = []
    for client, data in ((ours, a), (theirs, b)):
        client.imap.create("Probe")
        assert client.append("Probe", data)[0] == "OK"
        counts.append(client.select("Probe"))
    structs = [dovecot_diff.structure(c, n) for c, n in zip((ours, theirs),
                                                          counts)]
    dovecot_diff.compare_message("probe", counts[0], [ours, theirs], structs,
                                 Known(), result)
    ours.close()
    theirs.close()
    items = {item for _, item, _, _ in result.unexplained}
    assert {"ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE", "BODY[]",
            "BODY[1]", "BINARY[1]", "BINARY.SIZE[1]"} <= items, items
