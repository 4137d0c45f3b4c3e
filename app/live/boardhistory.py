"""The wallboard's counters and last-hour chart rebuilt from the ``calls`` table at start.

Why: the counters live in memory; without this a restart shows near-zero figures for
"today", the last 60 and 15 minutes until the windows fill again.

Invariants:
- Each call is counted in the minute the live wallboard would have counted it
  (``app.live.wallboard``): offered at arrival, answered (with its wait and whether it
  was within its queue's own ``sl_target_s``) at the answer, abandons / overflows /
  failures at the end, handle time (answer -> wrap-up end) at the wrap-up end.  Calls
  that left in the greeting (``abandoned_in_ivr``) never reached a queue: not counted.
- Only rows that are in the database count: calls still in progress at the restart
  are counted when they end, as adopted calls (the outcome writer flushed the rest
  when the previous run stopped).
- One grouped query for the counters and one for the callers waiting per minute, over
  calls that arrived since the earlier of local midnight and an hour and a quarter ago
  (less a margin of ``MAX_WAIT_H`` hours for calls that arrived before and ended after).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.live.wallboard import HISTORY_MINUTES, Wallboard

logger = logging.getLogger(__name__)

MAX_WAIT_H = 6

_COUNTS = sa.text(
    """
WITH c AS (
    SELECT c.queue_id::text AS queue_id, c.result, c.arrived_at, c.answered_at,
           c.ended_at, c.wrapup_ended_at,
           coalesce(q.sl_target_s, :default_sl) AS sl
    FROM calls c LEFT JOIN queues q ON q.id = c.queue_id
    WHERE c.arrived_at >= :margin AND c.arrived_at <= :now
      AND c.result <> 'abandoned_in_ivr'
)
SELECT queue_id, floor(extract(epoch FROM arrived_at) / 60)::bigint AS minute,
       'offered' AS name, count(*)::float8 AS value
  FROM c WHERE arrived_at >= :since GROUP BY 1, 2
UNION ALL
SELECT queue_id, floor(extract(epoch FROM answered_at) / 60)::bigint, x.name, sum(x.value)
  FROM c CROSS JOIN LATERAL (VALUES
      ('answered', 1.0::float8),
      ('wait_sum', extract(epoch FROM answered_at - arrived_at)::float8),
      ('answered_in_sl',
       CASE WHEN extract(epoch FROM answered_at - arrived_at) <= sl THEN 1.0 ELSE 0.0 END)
  ) AS x(name, value)
  WHERE result = 'answered' AND answered_at >= :since AND answered_at <= :now
  GROUP BY 1, 2, 3
UNION ALL
SELECT queue_id, floor(extract(epoch FROM ended_at) / 60)::bigint,
       CASE WHEN result = 'short_abandoned'
                 OR extract(epoch FROM ended_at - arrived_at) < :short_s
            THEN 'short_abandoned' ELSE 'abandoned' END,
       count(*)::float8
  FROM c WHERE result IN ('abandoned', 'short_abandoned')
   AND ended_at >= :since AND ended_at <= :now
  GROUP BY 1, 2, 3
UNION ALL
SELECT queue_id, floor(extract(epoch FROM ended_at) / 60)::bigint, result, count(*)::float8
  FROM c WHERE result IN ('overflowed', 'failed') AND ended_at >= :since AND ended_at <= :now
  GROUP BY 1, 2, 3
UNION ALL
SELECT queue_id, floor(extract(epoch FROM wrapup_ended_at) / 60)::bigint, x.name, sum(x.value)
  FROM c CROSS JOIN LATERAL (VALUES
      ('handled', 1.0::float8),
      ('handle_sum', greatest(0, extract(epoch FROM wrapup_ended_at - answered_at))::float8)
  ) AS x(name, value)
  WHERE result = 'answered' AND answered_at IS NOT NULL
    AND wrapup_ended_at >= :since AND wrapup_ended_at <= :now
  GROUP BY 1, 2, 3
"""
)

# Callers arriving and leaving the queue per minute (leaving: answered, or ended).
_FLOW = sa.text(
    """
SELECT minute, sum(delta)::bigint FROM (
    SELECT floor(extract(epoch FROM arrived_at) / 60)::bigint AS minute, 1 AS delta
      FROM calls WHERE arrived_at >= :margin AND arrived_at <= :now
       AND result <> 'abandoned_in_ivr'
    UNION ALL
    SELECT floor(extract(epoch FROM coalesce(answered_at, ended_at)) / 60)::bigint, -1
      FROM calls WHERE arrived_at >= :margin AND arrived_at <= :now
       AND result <> 'abandoned_in_ivr' AND coalesce(answered_at, ended_at) <= :now
) AS f GROUP BY minute ORDER BY minute
"""
)


def _local_midnight(now: float) -> datetime:
    lt = time.localtime(now)
    midnight = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1))
    return datetime.fromtimestamp(midnight, UTC)


async def rebuild(
    wallboard: Wallboard,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: float,
) -> int:
    """Seed ``wallboard`` (configured queues already set) from the calls table; returns
    the number of (queue, minute, counter) cells added."""
    current = datetime.fromtimestamp(now, UTC)
    since = min(_local_midnight(now), current - timedelta(minutes=HISTORY_MINUTES + 15))
    params = {
        "since": since,
        "margin": since - timedelta(hours=MAX_WAIT_H),
        "now": current,
        "default_sl": wallboard.sl_threshold_s,
        "short_s": wallboard.short_abandon_s,
    }
    async with sessionmaker() as session:
        counts = (await session.execute(_COUNTS, params)).all()
        flow = (await session.execute(_FLOW, params)).all()
    for queue_id, minute, name, value in counts:
        wallboard.seed(queue_id, int(minute), str(name), float(value), now)
    deltas = {int(minute): int(delta) for minute, delta in flow}
    if deltas:
        waiting = 0
        for minute in range(min(deltas), int(now // 60) + 1):
            waiting += deltas.get(minute, 0)
            wallboard.seed_waiting(minute, max(0, waiting))
    logger.info("wallboard rebuilt from %d counter cells since %s", len(counts), since)
    return len(counts)
