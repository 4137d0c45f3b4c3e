"""A handled call becomes an interaction on the caller's customer record.

Invariants:
- Written by the outcome writer (``app.outcomes``) in the same transaction as the call's
  row, off the routing path and batched: one statement per batch.
- One interaction per call: ``interactions.call_id`` is unique and the insert is an
  upsert, so a retried batch, a replayed spill file or a restart never duplicates a
  contact; a later wrap-up (disposition, notes) updates the same row.
- Every ended call whose number belongs to a customer is a contact: answered,
  abandoned (no agent), overflowed/transferred.  A number no customer has yet leaves
  nothing; when the agent links the number (``link_call``), the interaction follows
  from the stored call row.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.crm import InvalidPhoneNumber, normalize_phone

# ``summary`` says what happened in a word or two; the details are in the columns.
_UPSERT_FROM_CALLS = sa.text(
    """
    INSERT INTO interactions (customer_id, at, channel, agent_id, summary, call_id,
                              queue_id, result, disposition_code, notes)
    SELECT cp.customer_id, c.arrived_at, 'phone', c.answered_by,
           'call ' || c.result::text
             || coalesce(' (' || c.disposition_code || ')', ''),
           c.call_id, c.queue_id, c.result::text, c.disposition_code, c.notes
      FROM unnest(CAST(:call_ids AS text[]), CAST(:phones AS text[])) AS t(call_id, phone)
      JOIN calls c ON c.call_id = t.call_id
      JOIN customer_phones cp ON cp.phone = t.phone
     WHERE c.ended_at IS NOT NULL
    ON CONFLICT (call_id) DO UPDATE SET
      agent_id = EXCLUDED.agent_id,
      summary = EXCLUDED.summary,
      result = EXCLUDED.result,
      queue_id = EXCLUDED.queue_id,
      disposition_code = coalesce(EXCLUDED.disposition_code, interactions.disposition_code),
      notes = coalesce(EXCLUDED.notes, interactions.notes)
    """
)

_WRAPUP_UPDATE = sa.text(
    """
    UPDATE interactions i
       SET disposition_code = c.disposition_code,
           notes = c.notes,
           summary = 'call ' || c.result::text
             || coalesce(' (' || c.disposition_code || ')', '')
      FROM calls c
     WHERE c.call_id = ANY(CAST(:call_ids AS text[])) AND i.call_id = c.call_id
    """
)


def _phone_or_none(caller: str) -> str | None:
    try:
        return normalize_phone(caller)
    except InvalidPhoneNumber:
        return None  # anonymous / withheld: no record to write on


async def write_for_calls(session: AsyncSession, calls: Iterable[dict[str, Any]]) -> None:
    """Upsert the interactions of these call rows (already written in this transaction)."""
    ids: list[str] = []
    phones: list[str] = []
    for row in calls:
        phone = _phone_or_none(str(row.get("caller") or ""))
        if phone is not None:
            ids.append(row["call_id"])
            phones.append(phone)
    if ids:
        await session.execute(_UPSERT_FROM_CALLS, {"call_ids": ids, "phones": phones})


async def write_for_wrapups(session: AsyncSession, call_ids: Iterable[str]) -> None:
    """Carry wrap-ups stored on existing call rows onto their interactions."""
    ids = list(call_ids)
    if ids:
        await session.execute(_WRAPUP_UPDATE, {"call_ids": ids})


async def link_call(session: AsyncSession, call_id: str, phone: str) -> None:
    """The call's number was just linked to a customer: write its interaction now if the
    call row is stored (otherwise the outcome writer writes it when the row comes)."""
    await session.execute(_UPSERT_FROM_CALLS, {"call_ids": [call_id], "phones": [phone]})
