"""Reconciliation: the rollups must agree with each other and with the calls table.

For the intervals in ``[start, end)``, each figure is summed three ways: over the queue
rows, over the agent rows (the calls they answered), and straight from ``calls``.  The
queue rows must equal the calls table for every call figure; the agent rows must equal
both for the answered-call figures.  A mismatch means a rollup is stale (recompute it:
``python -m app.reports rebuild``) or wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

QUEUE_FIGURES = (
    "offered",
    "answered",
    "answered_in_sl",
    "abandoned",
    "short_abandoned",
    "abandoned_in_ivr",
    "overflowed",
    "failed",
    "talk_s",
    "wrapup_s",
    "transfers",
)
AGENT_FIGURES = ("answered", "answered_in_sl", "talk_s", "wrapup_s", "transfers")

_CALLS = sa.text(
    """
SELECT
    count(*) FILTER (WHERE c.result <> 'abandoned_in_ivr') AS offered,
    count(*) FILTER (WHERE c.result = 'answered') AS answered,
    count(*) FILTER (WHERE c.result = 'answered'
        AND extract(epoch FROM c.answered_at - c.arrived_at) <= coalesce(q.sl_target_s, :sl))
        AS answered_in_sl,
    count(*) FILTER (WHERE c.result = 'abandoned'
        AND extract(epoch FROM c.ended_at - c.arrived_at) >= :short_s) AS abandoned,
    count(*) FILTER (WHERE c.result = 'short_abandoned' OR (c.result = 'abandoned'
        AND extract(epoch FROM c.ended_at - c.arrived_at) < :short_s)) AS short_abandoned,
    count(*) FILTER (WHERE c.result = 'abandoned_in_ivr') AS abandoned_in_ivr,
    count(*) FILTER (WHERE c.result = 'overflowed') AS overflowed,
    count(*) FILTER (WHERE c.result = 'failed') AS failed,
    coalesce(sum(c.talk_s) FILTER (WHERE c.result = 'answered'), 0) AS talk_s,
    coalesce(sum(c.wrapup_s) FILTER (WHERE c.result = 'answered'), 0) AS wrapup_s,
    count(*) FILTER (WHERE c.result = 'answered' AND c.reason = 'transferred') AS transfers
FROM calls c LEFT JOIN queues q ON q.id = c.queue_id
WHERE c.arrived_at >= :s AND c.arrived_at < :e AND c.queue_id IS NOT NULL
"""
)


def _sums(kind: str, figures: tuple[str, ...]) -> sa.TextClause:
    cols = ", ".join(f"coalesce(sum({f}), 0) AS {f}" for f in figures)
    return sa.text(
        f"SELECT {cols} FROM interval_stats"  # noqa: S608 - column names are constants
        f" WHERE kind = '{kind}' AND interval_start >= :s AND interval_start < :e"
    )


@dataclass(frozen=True, slots=True)
class Mismatch:
    figure: str
    calls: float
    queues: float
    agents: float | None


@dataclass(slots=True)
class Reconciliation:
    start: datetime
    end: datetime
    totals: dict[str, float] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


async def reconcile(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    *,
    short_abandon_s: float = 5.0,
    default_sl_s: float = 15.0,
) -> Reconciliation:
    """Compare the rollups of ``[start, end)`` (whole intervals) with the calls table."""
    params = {"s": start, "e": end, "short_s": short_abandon_s, "sl": default_sl_s}
    calls = (await session.execute(_CALLS, params)).mappings().one()
    queues = (await session.execute(_sums("queue", QUEUE_FIGURES), params)).mappings().one()
    agents = (await session.execute(_sums("agent", AGENT_FIGURES), params)).mappings().one()
    out = Reconciliation(start, end, totals={f: float(calls[f]) for f in QUEUE_FIGURES})
    for f in QUEUE_FIGURES:
        c, q = float(calls[f]), float(queues[f])
        a = float(agents[f]) if f in AGENT_FIGURES else None
        if not _same(c, q) or (a is not None and not _same(a, q)):
            out.mismatches.append(Mismatch(f, c, q, a))
    return out
