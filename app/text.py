"""Text the service accepts from clients: no NUL, no control characters.

Invariants:
- PostgreSQL cannot store NUL in ``text``; a NUL that gets past the edge fails a later
  write, possibly a batched one far from the request.  Control characters also break
  logs and the AMI line protocol.  So every client text is refused at the edge with a
  422 that names the field, not stored and not silently altered.
- ``SingleLine``: no character of category Cc (U+0000-U+001F, U+007F-U+009F) and no
  U+2028 / U+2029 line or paragraph separators.  ``MultiLine`` additionally allows tab,
  line feed and carriage return (notes, descriptions).
- Used through ``app.api.schemas`` (request schemas), ``app.live.routes`` and the login
  request; kept here, below both, so ``app.auth`` can use it without an import cycle.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_SINGLE_LINE_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MULTI_LINE_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def _describe(char: str) -> str:
    return "NUL" if char == "\x00" else f"U+{ord(char):04X}"


def single_line(value: str) -> str:
    bad = _SINGLE_LINE_BAD.search(value)
    if bad is not None:
        raise ValueError(
            f"must not contain control characters (found {_describe(bad.group())} "
            f"at position {bad.start()})"
        )
    return value


def multi_line(value: str) -> str:
    bad = _MULTI_LINE_BAD.search(value)
    if bad is not None:
        raise ValueError(
            f"must not contain control characters other than tab and line breaks "
            f"(found {_describe(bad.group())} at position {bad.start()})"
        )
    return value


SingleLine = AfterValidator(single_line)
MultiLine = AfterValidator(multi_line)

SingleLineText = Annotated[str, SingleLine]
MultiLineText = Annotated[str, MultiLine]
