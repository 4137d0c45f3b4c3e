"""AMI wire format: incremental framing of a byte stream into messages, and encoding.

Invariants:
- Bytes are buffered and split on the blank line *before* decoding, so a multi-byte
  UTF-8 character split across TCP reads is never corrupted (panoramisk 1.4's defect 1,
  docs/ami-notes.md).
- Both CRLF and bare LF line ends are accepted on input; output always uses CRLF.
- The banner (``Asterisk Call Manager/x.y.z``) is a single line with no blank line after
  it; ``AmiParser`` yields it as a message ``{"Banner": "..."}``.
- Repeated headers (``Variable``, ``Output``, ``ChanVariable``) keep every value: a
  message is a list of (key, value) pairs; ``Message.get`` returns the first value,
  ``Message.get_all`` every value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

CRLF = b"\r\n"
_MAX_BUFFER = 4 * 1024 * 1024  # a peer that never ends a message is cut off here


class Message:
    """One AMI message: ordered headers with repeats allowed."""

    __slots__ = ("_index", "headers")

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self.headers = headers
        index: dict[str, str] = {}
        for key, value in headers:
            index.setdefault(key.lower(), value)
        self._index = index

    def get(self, key: str, default: str = "") -> str:
        return self._index.get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._index

    def get_all(self, key: str) -> list[str]:
        low = key.lower()
        return [v for k, v in self.headers if k.lower() == low]

    @property
    def kind(self) -> str:
        """``"event"``, ``"response"``, ``"action"``, ``"banner"`` or ``""``."""
        if not self.headers:
            return ""
        first = self.headers[0][0].lower()
        return first if first in ("event", "response", "action", "banner") else ""

    @property
    def name(self) -> str:
        """The value of the first header (event name, response status, action name)."""
        return self.headers[0][1] if self.headers else ""

    def as_dict(self) -> dict[str, str]:
        return dict(reversed(self.headers)) if self.headers else {}

    def __repr__(self) -> str:
        return f"Message({self.headers!r})"


def parse_block(block: bytes) -> Message:
    """Parse one message body (without the terminating blank line)."""
    text = block.decode("utf-8", errors="replace")
    headers: list[tuple[str, str]] = []
    # AMI lines end in CRLF and nothing else.  ``str.splitlines`` would also break on
    # U+2028, U+0085, \x0b, \x0c and \x1c-\x1e, which a caller can put in a display name
    # (CallerIDName precedes Uniqueid) to inject a header into another call's event.  A
    # block without any CRLF is hand-typed input framed by bare LFs.
    for line in text.split("\r\n") if "\r\n" in text else text.split("\n"):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            # Not a header line (e.g. command output in old Asterisk): keep it as Output.
            headers.append(("Output", line))
            continue
        headers.append((key.strip(), value.lstrip(" ")))
    return Message(headers)


class AmiParser:
    """Feed bytes, get complete messages.  ``expect_banner`` for the client side."""

    __slots__ = ("_banner_pending", "_buf")

    def __init__(self, *, expect_banner: bool = False) -> None:
        self._buf = bytearray()
        self._banner_pending = expect_banner

    def feed(self, data: bytes) -> list[Message]:
        buf = self._buf
        buf += data
        out: list[Message] = []
        if self._banner_pending:
            end = buf.find(b"\n")
            if end < 0:
                return out
            line = bytes(buf[:end]).rstrip(b"\r").decode("utf-8", errors="replace")
            del buf[: end + 1]
            self._banner_pending = False
            out.append(Message([("Banner", line)]))
        start = 0
        # Accept CRLF CRLF (Asterisk) and LF LF (hand-typed input).  Look for a bare-LF
        # terminator once per feed: searching for it from every message start would
        # rescan the whole buffer per message on a CRLF stream (quadratic).
        bare_lf = buf.find(b"\n\n") >= 0
        while True:
            i = buf.find(b"\r\n\r\n", start)
            j = buf.find(b"\n\n", start) if bare_lf else -1
            if j < 0:
                bare_lf = False
            if i < 0 and j < 0:
                break
            if i >= 0 and (j < 0 or i <= j):
                block, start = buf[start:i], i + 4
            else:
                block, start = buf[start:j], j + 2
            if block.strip():
                out.append(parse_block(bytes(block)))
        if start:
            del buf[:start]
        if len(buf) > _MAX_BUFFER:
            buf.clear()
            raise ValueError("AMI message exceeds the buffer limit")
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)


def encode(headers: Iterable[tuple[str, str]] | dict[str, str]) -> bytes:
    """Encode headers as one AMI message (CRLF line ends, blank-line terminated).

    Values with CR or LF are refused: they would let a caller-supplied string inject
    headers or whole actions.
    """
    items = headers.items() if isinstance(headers, dict) else headers
    parts: list[str] = []
    for key, value in items:
        if "\r" in value or "\n" in value or "\r" in key or "\n" in key:
            raise ValueError(f"AMI header {key!r} contains a line break")
        parts.append(f"{key}: {value}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8")


def iter_capture(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Split a ``tests/fixtures/ami/*.ami`` file into ("recv", bytes) / ("note", line).

    Annotation lines start with ``#`` at a message boundary and end with a bare LF;
    everything else is received bytes exactly as Asterisk sent them.
    """
    pos = 0
    n = len(data)
    at_boundary = True
    chunk = bytearray()
    while pos < n:
        if at_boundary and data.startswith(b"#", pos):
            end = data.find(b"\n", pos)
            end = n if end < 0 else end + 1
            if chunk:
                yield ("recv", bytes(chunk))
                chunk.clear()
            yield ("note", data[pos:end])
            pos = end
            continue
        end = data.find(b"\r\n", pos)
        end = n if end < 0 else end + 2
        line = data[pos:end]
        chunk += line
        # A boundary follows the banner line, and every blank line (end of a message).
        at_boundary = line == CRLF or line.startswith(b"Asterisk Call Manager/")
        pos = end
    if chunk:
        yield ("recv", bytes(chunk))
