"""Issue 2, item 2: every corpus message goes in with `yubin deliver` and
comes out of poplib identical (line endings aside, RFC 1939 section 3: POP3
sends CRLF and dot-stuffs), over STLS (RFC 2595) and over implicit TLS;
`openssl s_client` negotiates TLS 1.3 on the implicit TLS port."""

import hashlib
import poplib
import re
import subprocess
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

from yubin_fixture import CORPUS, DEMO, crlf_normalise

pytestmark = pytest.mark.skipif(
    not (CORPUS / "INDEX.tsv").is_file(),
    reason="mail corpus not found at %s (it lives in ../shared/corpus)" % CORPUS)

# Files the corpus README calls non-messages: these may be refused.
NON_MESSAGE_TAGS = {"outlook-msg-cfb-not-rfc5322"}
NON_MESSAGE_NAMES = {"erroneous.raw"}


def corpus_index():
    """path -> (kind, tags) from INDEX.tsv (some Content-Type fields hold a
    newline, so only lines whose first field is a corpus file count)."""
    index = {}
    for line in (CORPUS / "INDEX.tsv").read_text(errors="replace").split("\n"):
        f = line.split("\t")
        if len(f) >= 7 and (CORPUS / f[0]).is_file():
            index[f[0]] = (f[2], set(f[6].split(",")))
    return index


def split_mbox(data: bytes):
    """Chunks between lines starting with 'From ' (the From_ lines dropped);
    each chunk's bytes are one message."""
    starts = [m.start() for m in re.finditer(rb"(?m)^From ", data)]
    if not starts:
        return [data]
    chunks = []
    if data[:starts[0]].strip():
        chunks.append(data[:starts[0]])
    for i, s in enumerate(starts):
        eol = data.find(b"\n", s)
        body_start = len(data) if eol < 0 else eol + 1
        end = starts[i + 1] if i + 1 < len(starts) else len(data)
        if body_start < end:
            chunks.append(data[body_start:end])
    return chunks


def corpus_messages():
    """[(name, bytes, may_refuse)] for every message in the corpus."""
    index = corpus_index()
    out = []
    for path in sorted(p for p in CORPUS.rglob("*") if p.is_file()):
        rel = str(path.relative_to(CORPUS))
        if rel in ("INDEX.tsv", "README.md", "SOURCES.md"):
            continue
        kind, tags = index.get(rel, ("message", set()))
        data = path.read_bytes()
        may_refuse = (not data or path.name in NON_MESSAGE_NAMES
                      or bool(tags & NON_MESSAGE_TAGS))
        if kind == "mbox":
            for n, chunk in enumerate(split_mbox(data)):
                out.append(("%s#%d" % (rel, n + 1), chunk, may_refuse))
        else:
            out.append((rel, data, may_refuse))
    return out


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def corpus_server(yubin_module_factory):
    srv = yubin_module_factory({"mail": {"quota": "0", "quota_messages": "0",
                                         "max_message_size": "0"}})
    messages = corpus_messages()
    assert len(messages) > 1500, "corpus looks incomplete: %d" % len(messages)

    def one(item):
        name, data, may_refuse = item
        return item, srv.run_raw("deliver", DEMO, input=data)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, messages))
    expected = Counter()
    names = defaultdict(list)
    for (name, data, _), r in results:
        if r.returncode == 0:
            norm = crlf_normalise(data)
            expected[digest(norm)] += 1
            names[digest(norm)].append((name, norm))
    return srv, results, expected, names


def test_deliver_accepts_every_message(corpus_server):
    srv, results, _, _ = corpus_server
    crashed, refused, unclear = [], [], []
    for (name, data, may_refuse), r in results:
        err = r.stderr.decode(errors="replace").strip()
        if r.returncode < 0:
            crashed.append("%s: killed by signal %d: %s" % (name, -r.returncode,
                                                            err[-500:]))
        elif r.returncode != 0 and not may_refuse:
            refused.append("%s (%d bytes): exit %d: %s" % (
                name, len(data), r.returncode, err[-300:]))
        elif r.returncode != 0 and not err:
            unclear.append("%s: exit %d without a message" % (name,
                                                               r.returncode))
    srv.assert_no_sanitizer()
    assert not crashed, "deliver crashed:\n" + "\n".join(crashed)
    assert not refused, "%d messages refused:\n%s" % (
        len(refused), "\n".join(refused[:40]))
    assert not unclear, "refusals without a clear error:\n" + "\n".join(unclear)


def _fetch_all(pop):
    """([(LIST size, retrieved bytes)], [RETR errors]) of the session."""
    listing = pop.list()[1]
    out, errors = [], []
    for entry in listing:
        num, size = entry.split()
        try:
            _, lines, _ = pop.retr(int(num))
        except poplib.error_proto as e:
            errors.append("RETR %s (%s octets): %r" % (num.decode(),
                                                       size.decode(), e.args))
            continue
        out.append((int(size), b"".join(l + b"\r\n" for l in lines)))
    return out, errors


def _compare(expected, names, fetched_errors):
    fetched, problems = fetched_errors
    got = Counter(digest(body) for _, body in fetched)
    for size, body in fetched:
        if size != len(body):
            name = names.get(digest(body), [("?", b"")])[0][0]
            problems.append("%s: LIST says %d octets, RETR gave %d (ends %r)"
                            % (name, size, len(body), body[-12:]))
    missing = expected - got
    extra = got - expected
    by_digest = {digest(b): b for _, b in fetched}
    extra_bodies = [by_digest[d] for d in extra]
    for d in list(missing)[:30]:
        name, norm = names[d][0]
        near = [b for b in extra_bodies if b[:200] == norm[:200]]
        if near:
            b = near[0]
            pos = next((i for i in range(min(len(b), len(norm)))
                        if b[i] != norm[i]), min(len(b), len(norm)))
            problems.append("%s: differs at byte %d (want %d bytes, got %d): "
                            "want %r got %r" % (name, pos, len(norm), len(b),
                                                norm[max(0, pos - 20):pos + 40],
                                                b[max(0, pos - 20):pos + 40]))
        else:
            problems.append("%s: not retrieved (%d bytes, starts %r)"
                            % (name, len(norm), norm[:80]))
    if len(missing) > 30:
        problems.append("... %d missing in all" % sum(missing.values()))
    if extra:
        problems.append("%d retrieved messages match no delivered one"
                        % sum(extra.values()))
    return problems


def test_retr_over_stls_is_byte_identical(corpus_server):
    srv, _, expected, names = corpus_server
    pop = srv.pop3_stls(timeout=120)
    try:
        count, _ = pop.stat()
        assert count == sum(expected.values())
        fetched = _fetch_all(pop)
    finally:
        pop.quit()
    problems = _compare(expected, names, fetched)
    assert not problems, "%d problems:\n%s" % (len(problems),
                                                "\n".join(problems))


def test_retr_over_implicit_tls_is_byte_identical(corpus_server):
    srv, _, expected, names = corpus_server
    pop = srv.login_retry(lambda: srv.pop3_ssl(timeout=120))
    try:
        assert pop.sock.version() in ("TLSv1.2", "TLSv1.3")
        fetched = _fetch_all(pop)
    finally:
        pop.quit()
    problems = _compare(expected, names, fetched)
    assert not problems, "%d problems:\n%s" % (len(problems),
                                                "\n".join(problems))


def test_openssl_s_client_negotiates_tls13(corpus_server):
    srv = corpus_server[0]
    r = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv.pop3s_port,
         "-tls1_3", "-servername", "localhost", "-CAfile", str(srv.cert),
         "-ign_eof"],
        input=b"QUIT\r\n", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=30)
    out = r.stdout.decode(errors="replace")
    assert re.search(r"Protocol\s*:\s*TLSv1\.3|New, TLSv1\.3", out), out
    assert "+OK" in out, "no POP3 greeting over TLS 1.3:\n" + out
    assert re.search(r"Verify return code: 0 \(ok\)", out), (
        "the certificate init wrote does not verify against itself:\n" + out)
