"""The IMAP side of the interop tests: an imaplib client that APPENDs exact
bytes and FETCHes into parsed values, and a parser for what servers send.

Values: NIL is None, a string (quoted, literal or literal8: RFC 9051 4.3
makes them the same string) is bytes, an atom or number is an Atom, a
parenthesised list is a tuple.
"""

import imaplib
import re

imaplib._MAXLINE = 1 << 26


class Atom(bytes):
    """An atom or number (told apart from a string of the same bytes)."""

    def __repr__(self):
        return "Atom(%r)" % bytes(self)


class ParseError(ValueError):
    pass


_LITERAL = re.compile(rb"~?\{(\d+)\}\r\n")
_ATOM_END = re.compile(rb"[ ()\r\n\"]")


class Parser:
    """Reads values from the bytes of one or more responses."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def at_end(self):
        return self.pos >= len(self.data)

    def skip_spaces(self):
        while self.pos < len(self.data) and self.data[self.pos] in b" \r\n":
            self.pos += 1

    def value(self):
        self.skip_spaces()
        if self.at_end():
            raise ParseError("value expected at end of data")
        c = self.data[self.pos:self.pos + 1]
        if c == b"(":
            return self._list()
        if c == b'"':
            return self._quoted()
        if c in (b"{", b"~"):
            m = _LITERAL.match(self.data, self.pos)
            if m:
                start = m.end()
                end = start + int(m.group(1))
                if end > len(self.data):
                    raise ParseError("literal runs past the data")
                self.pos = end
                return self.data[start:end]
        return self._atom()

    def _list(self):
        self.pos += 1
        items = []
        while True:
            self.skip_spaces()
            if self.at_end():
                raise ParseError("unclosed list")
            if self.data[self.pos:self.pos + 1] == b")":
                self.pos += 1
                return tuple(items)
            items.append(self.value())

    def _quoted(self):
        out = bytearray()
        i = self.pos + 1
        while i < len(self.data):
            c = self.data[i]
            if c == 0x5C and i + 1 < len(self.data):      # backslash
                out.append(self.data[i + 1])
                i += 2
                continue
            if c == 0x22:
                self.pos = i + 1
                return bytes(out)
            out.append(c)
            i += 1
        raise ParseError("unterminated quoted string")

    def _atom(self):
        """An atom; a [section] inside it may hold spaces and parentheses
        (BODY[HEADER.FIELDS (A B)]), and <n> may follow it."""
        start = self.pos
        i = self.pos
        while i < len(self.data):
            c = self.data[i:i + 1]
            if c == b"[":
                close = self.data.find(b"]", i)
                if close < 0:
                    raise ParseError("unclosed [")
                i = close + 1
                continue
            if _ATOM_END.match(c):
                break
            i += 1
        if i == start:
            raise ParseError("unexpected byte %r at %d" % (
                self.data[i:i + 1], i))
        self.pos = i
        word = self.data[start:i]
        return None if word.upper() == b"NIL" else Atom(word)


def raw_from_imaplib(data):
    """The response bytes behind imaplib's data list: a (head, literal)
    tuple is the line up to the literal's {n} and its bytes, and the line
    goes on in the next element; a bytes element ends a line."""
    out = []
    for entry in data:
        if entry is None:
            continue
        if isinstance(entry, tuple):
            out += [entry[0], b"\r\n", entry[1]]
        else:
            out += [entry, b"\r\n"]
    return b"".join(out)


def parse_fetch(data):
    """imaplib FETCH data -> {seq: {ITEM: value}} (item names upper case,
    BODY.PEEK answered as BODY)."""
    p = Parser(raw_from_imaplib(data))
    out = {}
    while True:
        p.skip_spaces()
        if p.at_end():
            return out
        seq = p.value()
        items = p.value()
        if not isinstance(seq, Atom) or not isinstance(items, tuple) or \
                len(items) % 2:
            raise ParseError("not a FETCH response: %r %r" % (seq, items))
        got = out.setdefault(int(seq), {})
        for i in range(0, len(items), 2):
            got[bytes(items[i]).decode("latin-1").upper()] = items[i + 1]


def render(value, limit=300):
    """A value as IMAP-like text for a report, cut to limit characters."""
    def go(v):
        if v is None:
            return "NIL"
        if isinstance(v, Atom):
            return bytes(v).decode("latin-1")
        if isinstance(v, tuple):
            return "(" + " ".join(go(x) for x in v) + ")"
        if isinstance(v, bytes):
            if len(v) > limit:
                return "<%d bytes %r...>" % (len(v), v[:40])
            return '"%s"' % v.decode("latin-1").replace("\\", "\\\\") \
                .replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n")
        return str(v)
    text = go(value)
    return text if len(text) <= limit else text[:limit] + "..."


class Client:
    """One imaplib connection (plaintext, or STARTTLS with ssl_context)."""

    def __init__(self, port, user, password, ssl_context=None, timeout=120):
        self.args = (port, user, password, ssl_context, timeout)
        self.mailbox = None
        self.imap = None
        self.connect()

    def connect(self):
        port, user, password, ssl_context, timeout = self.args
        self.imap = imaplib.IMAP4("127.0.0.1", port, timeout=timeout)
        if ssl_context is not None:
            self.imap.starttls(ssl_context)
        self.imap.login(user, password)
        if self.mailbox is not None:
            self.select(self.mailbox)

    def reconnect(self):
        """A new connection in the same state (after the server closed
        this one)."""
        try:
            self.imap.shutdown()
        except OSError:
            pass
        self.connect()

    def close(self):
        try:
            self.imap.logout()
        except (imaplib.IMAP4.error, OSError, EOFError):
            pass

    def append(self, mailbox: str, data: bytes):
        """APPEND of exactly these bytes (imaplib's append() rewrites line
        ends) as a LITERAL+ literal, literal8 when there is a NUL (RFC
        3516 4.4). Returns (typ, text)."""
        c = self.imap
        tag = c._new_tag()
        c.tagged_commands[tag] = None
        marker = b"~" if b"\0" in data else b""
        c.send(b"%s APPEND %s %s{%d+}\r\n" % (tag, mailbox.encode(), marker,
                                              len(data)) + data + b"\r\n")
        try:
            typ, dat = c._command_complete("APPEND", tag)
        except imaplib.IMAP4.error as e:
            return "NO", str(e)
        return typ, b" ".join(d for d in dat if d).decode("latin-1")

    def select(self, mailbox="INBOX"):
        typ, dat = self.imap.select(mailbox)
        assert typ == "OK", (typ, dat)
        self.mailbox = mailbox
        return int(dat[0])

    def fetch(self, seqs: str, items: str):
        """(typ, {seq: {ITEM: value}}, text); text is the tagged reply's
        text when it is not OK; typ is "BYE" when the server closed the
        connection (then reconnect())."""
        try:
            typ, dat = self.imap.fetch(seqs, items)
        except (imaplib.IMAP4.abort, OSError, EOFError) as e:
            return "BYE", {}, str(e)
        except imaplib.IMAP4.error as e:
            # imaplib raises on BAD: "FETCH command error: BAD [...]"
            return ("BAD" if " BAD " in str(e) else "NO"), {}, str(e)
        if typ != "OK":
            return typ, {}, b" ".join(d for d in dat if d).decode("latin-1")
        return typ, parse_fetch(dat), ""
