"""CRM lookup for the screen pop: who is calling, what they own, are they entitled.

Invariants:
- Phone numbers are stored and looked up as ``normalize_phone`` digits; a number that
  cannot be normalized raises ``InvalidPhoneNumber`` (never a silent miss).
- ``lookup_caller`` costs ONE round trip: a primary-key probe on ``customer_phones``
  joined to ``customers``, with products, the last ``interactions`` and the open cases
  aggregated as JSON by correlated sub-selects (each an index range scan), and the
  repeat-caller mark (contacts in the short and long windows, ``RepeatWindows``) counted
  in one range scan of the same ``(customer_id, at DESC)`` index (the long window must
  contain the short one: the settings check it).  No cache: a screen pop must reflect the
  CRM as it is now.
- Entitlement (free technical support) is computed here, from dates only, by
  ``product_entitlement``: within ``PURCHASE_GRACE_DAYS`` (90) days of purchase, inclusive,
  or while a protection plan runs (up to and including ``protection_plan_end``).  When
  both apply, the one lasting longer is reported.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

PURCHASE_GRACE_DAYS = 90
DEFAULT_INTERACTIONS = 5


class InvalidPhoneNumber(ValueError):
    """The text is not a phone number we can normalize."""


_SEPARATORS = re.compile(r"[\s\-().\u00a0/]")


def normalize_phone(raw: str) -> str:
    """Digits only, without the China country code.

    Accepts spaces, dashes, dots, slashes and parentheses as separators; strips ``+86``,
    ``0086`` and a bare ``86`` in front of an 11-digit mobile.  Other international
    numbers keep their country code as ``00<cc>...``.  Landlines keep their trunk ``0``.

    >>> normalize_phone("+86 138-0013-8000")
    '13800138000'
    >>> normalize_phone("0086 10 6552 9988")
    '1065529988'
    >>> normalize_phone("(010) 6552-9988")
    '01065529988'
    >>> normalize_phone("+1 415 555 0100")
    '0014155550100'
    """
    if not isinstance(raw, str):
        raise InvalidPhoneNumber(f"phone number must be text, got {type(raw).__name__}")
    text = _SEPARATORS.sub("", raw.strip())
    if not text:
        raise InvalidPhoneNumber("phone number is empty")
    international = False
    if text.startswith("+"):
        text = text[1:]
        international = True
    elif text.startswith("00"):
        text = text[2:]
        international = True
    if not text.isascii() or not text.isdigit():
        raise InvalidPhoneNumber(
            f"phone number {raw!r} may contain only digits, separators and a leading '+'"
        )
    if international:
        if text.startswith("86"):
            text = text[2:]
        else:
            text = "00" + text
    elif len(text) == 13 and text.startswith("861"):
        text = text[2:]  # "86" + mobile without the plus
    if not 3 <= len(text) <= 20:
        raise InvalidPhoneNumber(f"phone number {raw!r} must have 3 to 20 digits")
    if len(text) == 11 and text.startswith("1") and text[1] not in "3456789":
        raise InvalidPhoneNumber(f"mobile number {raw!r} must start with 13-19")
    return text


class EntitlementReason(enum.StrEnum):
    NEW_PURCHASE = "new_purchase"  # within 90 days of purchase
    PROTECTION_PLAN = "protection_plan"  # a 3-year protection plan runs


class Entitlement(BaseModel):
    entitled: bool
    reason: EntitlementReason | None = None
    until: date | None = None  # last day of free support under ``reason``


def product_entitlement(
    purchase_date: date, protection_plan_end: date | None, *, today: date
) -> Entitlement:
    """Is support for this product free ``today``, why, and until when.

    >>> product_entitlement(date(2026, 1, 1), None, today=date(2026, 4, 1)).until
    datetime.date(2026, 4, 1)
    >>> product_entitlement(date(2026, 1, 1), None, today=date(2026, 4, 2)).entitled
    False
    """
    candidates: list[tuple[date, EntitlementReason]] = []
    grace_end = purchase_date + timedelta(days=PURCHASE_GRACE_DAYS)
    if purchase_date <= today <= grace_end:
        candidates.append((grace_end, EntitlementReason.NEW_PURCHASE))
    if protection_plan_end is not None and purchase_date <= today <= protection_plan_end:
        candidates.append((protection_plan_end, EntitlementReason.PROTECTION_PLAN))
    if not candidates:
        return Entitlement(entitled=False)
    until, reason = max(candidates)
    return Entitlement(entitled=True, reason=reason, until=until)


class CustomerInfo(BaseModel):
    id: int
    name: str
    vip: bool
    member: bool


class ProductInfo(BaseModel):
    id: int
    model: str
    sku: str
    serial: str | None
    purchase_date: date
    protection_plan_end: date | None
    entitlement: Entitlement


class InteractionInfo(BaseModel):
    at: datetime
    channel: str
    agent_id: int | None
    summary: str
    call_id: str | None = None
    queue_id: int | None = None
    result: str | None = None
    disposition_code: str | None = None
    notes: str | None = None
    case_id: int | None = None


@dataclass(frozen=True, slots=True)
class RepeatWindows:
    """The repeat-caller mark's two windows (settings ``crm.repeat_short_h`` / ``_long_h``)."""

    short_h: float = 24.0
    long_h: float = 168.0

    def __post_init__(self) -> None:
        if not 0 < self.short_h <= self.long_h:
            raise ValueError("repeat windows: need 0 < short_h <= long_h")


DEFAULT_WINDOWS = RepeatWindows()


class RepeatMark(BaseModel):
    """How often this customer was in contact lately ("third call today")."""

    short_window_h: float
    long_window_h: float
    contacts_short: int  # contacts (calls included) within the last ``short_window_h``
    contacts_long: int


class CaseInfo(BaseModel):
    id: int
    opened_at: datetime
    kind: str
    severity: str
    subject: str
    due_at: datetime | None  # an instant: overdue from that moment, not from the next day
    overdue: bool
    stage: str | None = None


class ScreenPop(BaseModel):
    """What the agent sees when the call is offered (sent as JSON on the websocket)."""

    phone: str
    customer: CustomerInfo
    entitled: bool  # any product entitled to free support
    entitlement_reason: EntitlementReason | None = None  # of the longest-running one
    entitled_until: date | None = None
    products: list[ProductInfo] = Field(default_factory=list)
    interactions: list[InteractionInfo] = Field(default_factory=list)  # newest first
    repeat: RepeatMark | None = None
    open_cases: list[CaseInfo] = Field(default_factory=list)  # oldest first


_LOOKUP_SQL = """
    SELECT c.id, c.name, c.vip, c.member,
      (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'id', p.id, 'model', p.model, 'sku', p.sku, 'serial', p.serial,
                'purchase_date', p.purchase_date,
                'protection_plan_end', p.protection_plan_end)
              ORDER BY p.purchase_date DESC, p.id), '[]'::jsonb)
         FROM products p WHERE p.customer_id = c.id) AS products,
      (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'at', i.at, 'channel', i.channel, 'agent_id', i.agent_id,
                'summary', i.summary, 'call_id', i.call_id, 'queue_id', i.queue_id,
                'result', i.result, 'disposition_code', i.disposition_code,
                'notes', i.notes, 'case_id', i.case_id) ORDER BY i.at DESC), '[]'::jsonb)
         FROM (SELECT * FROM interactions WHERE customer_id = c.id
               ORDER BY at DESC LIMIT :n_interactions) i) AS interactions,
      r.contacts_short, r.contacts_long,
      (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'id', k.id, 'opened_at', k.opened_at, 'kind', k.kind,
                'severity', k.severity, 'subject', k.subject, 'due_at', k.due_at,
                'stage', k.stage)
              ORDER BY k.opened_at, k.id), '[]'::jsonb)
         FROM cases k WHERE k.customer_id = c.id AND k.status = 'open') AS open_cases
    FROM customer_phones cp JOIN customers c ON c.id = cp.customer_id
    CROSS JOIN LATERAL (
      -- Both windows in one range scan (the short one lies inside the long one).
      SELECT count(*) FILTER (WHERE at >= :since_short) AS contacts_short,
             count(*) AS contacts_long
        FROM interactions WHERE customer_id = c.id AND at >= :since_long) r
    WHERE cp.phone = :phone
    """
_LOOKUP = sa.text(_LOOKUP_SQL).columns(
    sa.column("id", sa.BigInteger),
    sa.column("name", sa.Text),
    sa.column("vip", sa.Boolean),
    sa.column("member", sa.Boolean),
    sa.column("products", JSONB),
    sa.column("interactions", JSONB),
    sa.column("contacts_short", sa.BigInteger),
    sa.column("contacts_long", sa.BigInteger),
    sa.column("open_cases", JSONB),
)


async def lookup_caller(
    session: AsyncSession,
    phone: str,
    *,
    today: date,
    interactions: int = DEFAULT_INTERACTIONS,
    now: datetime | None = None,
    windows: RepeatWindows = DEFAULT_WINDOWS,
) -> ScreenPop | None:
    """The screen pop for ``phone``, or ``None`` when no customer has that number.

    One query.  Raises ``InvalidPhoneNumber`` for malformed input.  ``now`` (default: the
    wall clock) is the end of the repeat-caller windows.
    """
    number = normalize_phone(phone)
    since_short, since_long = _window_starts(now, windows)
    params = {
        "phone": number,
        "n_interactions": interactions,
        "since_short": since_short,
        "since_long": since_long,
    }
    row = (await session.execute(_LOOKUP, params)).one_or_none()
    if row is None:
        return None
    return _build(number, row._mapping, today=today, windows=windows, now=now)


def _window_starts(now: datetime | None, windows: RepeatWindows) -> tuple[datetime, datetime]:
    end = now if now is not None else datetime.now(UTC)
    return end - timedelta(hours=windows.short_h), end - timedelta(hours=windows.long_h)


# The same statement for a plain asyncpg connection or pool (positional parameters).
# The call center's screen-pop path uses it: no ORM session, pre-ping, BEGIN/ROLLBACK
# per lookup (they were most of the lookup's cost under load).
_LOOKUP_ASYNCPG = (
    _LOOKUP_SQL.replace(":phone", "$1")
    .replace(":n_interactions", "$2")
    .replace(":since_short", "$3")
    .replace(":since_long", "$4")
)
_JSON_COLUMNS = ("products", "interactions", "open_cases")


async def lookup_caller_asyncpg(
    conn: Any,
    phone: str,
    *,
    today: date,
    interactions: int = DEFAULT_INTERACTIONS,
    now: datetime | None = None,
    windows: RepeatWindows = DEFAULT_WINDOWS,
) -> ScreenPop | None:
    """``lookup_caller`` on an asyncpg connection or pool (``fetchrow``); same result."""
    number = normalize_phone(phone)
    since_short, since_long = _window_starts(now, windows)
    row = await conn.fetchrow(_LOOKUP_ASYNCPG, number, interactions, since_short, since_long)
    if row is None:
        return None
    mapping = dict(row)
    for column in _JSON_COLUMNS:
        value = mapping[column]
        mapping[column] = json.loads(value) if isinstance(value, str) else value
    return _build(number, mapping, today=today, windows=windows, now=now)


def _build(
    phone: str, row: Any, *, today: date, windows: RepeatWindows, now: datetime | None
) -> ScreenPop:
    at = now if now is not None else datetime.now(UTC)
    products = []
    for raw in row["products"]:
        purchase = date.fromisoformat(raw["purchase_date"])
        plan_end = raw["protection_plan_end"]
        plan_end_date = date.fromisoformat(plan_end) if plan_end else None
        products.append(
            ProductInfo(
                **raw,
                entitlement=product_entitlement(purchase, plan_end_date, today=today),
            )
        )
    entitled = [p.entitlement for p in products if p.entitlement.entitled]
    best = max(entitled, key=lambda e: e.until or date.min, default=None)
    cases = []
    for raw in row["open_cases"]:
        case = CaseInfo(**raw, overdue=False)
        # Instants, not dates: a case due at 10:00 is overdue at 17:00 the same day.
        if case.due_at is not None and case.due_at <= at:
            case.overdue = True
        cases.append(case)
    return ScreenPop(
        phone=phone,
        customer=CustomerInfo(id=row["id"], name=row["name"], vip=row["vip"], member=row["member"]),
        entitled=best is not None,
        entitlement_reason=best.reason if best else None,
        entitled_until=best.until if best else None,
        products=products,
        interactions=[InteractionInfo(**raw) for raw in row["interactions"]],
        repeat=RepeatMark(
            short_window_h=windows.short_h,
            long_window_h=windows.long_h,
            contacts_short=row["contacts_short"],
            contacts_long=row["contacts_long"],
        ),
        open_cases=cases,
    )
