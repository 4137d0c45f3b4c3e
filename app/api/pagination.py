"""Opaque keyset cursors.

Invariants:
- A cursor is URL-safe base64 of a small JSON list (the sort key of the last item of a
  page); clients must treat it as opaque.  A cursor that does not decode to the expected
  shape -- ids beyond their column's range and times outside UTC's years 1-9999
  included -- is a 422 ``validation-failed`` naming the ``cursor`` parameter, never a 500.
- Keyset (not offset) pagination: a page costs one index range scan however deep it is,
  and rows inserted meanwhile never shift the pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from app.errors import ValidationFailed

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
INT4_MAX = 2**31 - 1  # the id columns of the configuration tables
INT8_MAX = 2**63 - 1  # calls.id


def in_utc_range(value: datetime) -> bool:
    """True if an aware ``value`` can be converted to UTC (what the driver sends)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        return False
    return True


def encode_cursor(*key: Any) -> str:
    parts = [k.isoformat() if isinstance(k, datetime) else k for k in key]
    raw = json.dumps(parts, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bad_cursor() -> ValidationFailed:
    return ValidationFailed(
        "The cursor is not one this API issued.",
        errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "invalid_cursor"}],
    )


def decode_cursor(cursor: str, n: int) -> list[Any]:
    """The ``n`` key parts of a cursor; ``ValidationFailed`` if it is not ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
    except (ValueError, binascii.Error) as exc:
        raise _bad_cursor() from exc
    if not isinstance(parts, list) or len(parts) != n:
        raise _bad_cursor()
    return parts


def decode_id_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    (last_id,) = decode_cursor(cursor, 1)
    if not isinstance(last_id, int) or isinstance(last_id, bool) or not 0 <= last_id <= INT4_MAX:
        raise _bad_cursor()
    return last_id


def decode_time_id_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if cursor is None:
        return None
    at, last_id = decode_cursor(cursor, 2)
    if not isinstance(at, str) or not isinstance(last_id, int) or isinstance(last_id, bool):
        raise _bad_cursor()
    if not 0 <= last_id <= INT8_MAX:
        raise _bad_cursor()
    try:
        when = datetime.fromisoformat(at)
    except ValueError as exc:
        raise _bad_cursor() from exc
    if when.tzinfo is None or not in_utc_range(when):
        raise _bad_cursor()
    return when, last_id
