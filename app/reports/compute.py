"""Recompute one 15-minute interval of ``interval_stats`` / ``pause_stats`` from the
source rows (``calls``, ``call_events``, ``agent_state_log``), in one transaction.

Definitions (the wallboard's, ``app.kpi``), for calls that *arrived* in the interval:
offered = every call that reached a queue (not ``abandoned_in_ivr``); answered; within
target = waited (arrival -> answer) no longer than the queue's ``sl_target_s``;
abandoned = gave up after ``short_abandon_s`` or more, short_abandoned = sooner;
overflowed, failed; talk and wrap-up = the calls' ``talk_s`` / ``wrapup_s``; transfers
= answered calls that ended by a transfer; RONA (queue) = the calls' ``rona_count``.
An agent's call figures are those of the calls it answered (the calls of a queue, so
that the sum over agents equals the queue totals); its offers and RONA are the
``offered`` events rung on it in the interval without its answer.  State time: each row
of the state log lasts until the agent's next row (or now), cut at the interval's bounds;
the state carried into an interval is looked up for the agents configured now (a deleted
agent's time counts from its next row in the interval).
A team's row is the sum of its agents' rows (team membership as configured now).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

INTERVAL = timedelta(minutes=15)
_LOCK_NAMESPACE = 0x5EB0  # pg_advisory_xact_lock(namespace, interval number)
# The state an agent was in at an interval's start is its last row before it, looked up
# this far back (an agent logged in longer than this without any change counts from it),
# one index probe per configured agent (a DISTINCT ON over two days of the log sorted
# millions of rows per interval at 20,000 seats).
STATE_LOOKBACK = timedelta(days=2)


def interval_of(t: datetime) -> datetime:
    """The start of the 15-minute interval holding ``t`` (aware, aligned on the epoch)."""
    epoch = int(t.timestamp())
    return datetime.fromtimestamp(epoch - epoch % 900, t.tzinfo)


_QUEUES = sa.text(
    """
INSERT INTO interval_stats (kind, entity_id, interval_start, offered, answered, answered_in_sl,
    abandoned, short_abandoned, abandoned_in_ivr, overflowed, failed, wait_answered_s,
    max_wait_s, talk_s, wrapup_s, transfers, rona)
SELECT 'queue', c.queue_id, :s,
    count(*) FILTER (WHERE c.result <> 'abandoned_in_ivr'),
    count(*) FILTER (WHERE c.result = 'answered'),
    count(*) FILTER (WHERE c.result = 'answered'
        AND extract(epoch FROM c.answered_at - c.arrived_at) <= coalesce(q.sl_target_s, :sl)),
    count(*) FILTER (WHERE c.result = 'abandoned'
        AND extract(epoch FROM c.ended_at - c.arrived_at) >= :short_s),
    count(*) FILTER (WHERE c.result = 'short_abandoned' OR (c.result = 'abandoned'
        AND extract(epoch FROM c.ended_at - c.arrived_at) < :short_s)),
    count(*) FILTER (WHERE c.result = 'abandoned_in_ivr'),
    count(*) FILTER (WHERE c.result = 'overflowed'),
    count(*) FILTER (WHERE c.result = 'failed'),
    coalesce(sum(extract(epoch FROM c.answered_at - c.arrived_at))
        FILTER (WHERE c.result = 'answered'), 0),
    coalesce(max(c.wait_s) FILTER (WHERE c.result <> 'abandoned_in_ivr'), 0),
    coalesce(sum(c.talk_s) FILTER (WHERE c.result = 'answered'), 0),
    coalesce(sum(c.wrapup_s) FILTER (WHERE c.result = 'answered'), 0),
    count(*) FILTER (WHERE c.result = 'answered' AND c.reason = 'transferred'),
    coalesce(sum(c.rona_count), 0)
FROM calls c LEFT JOIN queues q ON q.id = c.queue_id
WHERE c.arrived_at >= :s AND c.arrived_at < :e AND c.queue_id IS NOT NULL
GROUP BY c.queue_id
"""
)

# Agents: call figures of the calls they answered, offers / RONA from the call events,
# and state time from the state log; one row per agent with any of them.
_AGENTS = sa.text(
    """
WITH answered AS (
    SELECT c.answered_by AS agent_id,
        count(*) AS answered,
        count(*) FILTER (WHERE extract(epoch FROM c.answered_at - c.arrived_at)
            <= coalesce(q.sl_target_s, :sl)) AS answered_in_sl,
        coalesce(sum(extract(epoch FROM c.answered_at - c.arrived_at)), 0) AS wait_answered_s,
        coalesce(max(c.wait_s), 0) AS max_wait_s,
        coalesce(sum(c.talk_s), 0) AS talk_s,
        coalesce(sum(c.wrapup_s), 0) AS wrapup_s,
        count(*) FILTER (WHERE c.reason = 'transferred') AS transfers
    FROM calls c LEFT JOIN queues q ON q.id = c.queue_id
    WHERE c.arrived_at >= :s AND c.arrived_at < :e AND c.queue_id IS NOT NULL
      AND c.result = 'answered' AND c.answered_by IS NOT NULL
    GROUP BY c.answered_by
), offers AS (
    SELECT o.agent_id, count(*) AS offers,
        count(*) FILTER (WHERE NOT EXISTS (
            SELECT 1 FROM call_events a WHERE a.call_id = o.call_id AND a.kind = 'answered'
              AND a.agent_id = o.agent_id AND a.at >= o.at)) AS rona
    FROM call_events o
    WHERE o.kind = 'offered' AND o.at >= :s AND o.at < :e AND o.agent_id IS NOT NULL
    GROUP BY o.agent_id
), rows AS (
    SELECT agent_id, at, state, reason FROM agent_state_log WHERE at >= :s AND at < :e
    UNION ALL
    SELECT l.agent_id, l.at, l.state, l.reason FROM agents g CROSS JOIN LATERAL (
        SELECT agent_id, at, state, reason FROM agent_state_log
        WHERE agent_id = g.id AND at < :s AND at >= :lookback ORDER BY at DESC LIMIT 1
    ) AS l
), spans AS (
    SELECT agent_id, state, reason, greatest(at, :s) AS a,
        least(coalesce(lead(at) OVER (PARTITION BY agent_id ORDER BY at), :cap), :cap) AS b
    FROM rows
), states AS (
    SELECT agent_id,
        coalesce(sum(extract(epoch FROM b - a)) FILTER (WHERE state <> 'logged_out'), 0) AS login_s,
        coalesce(sum(extract(epoch FROM b - a)) FILTER (WHERE state = 'ready'), 0) AS ready_s,
        coalesce(sum(extract(epoch FROM b - a)) FILTER (WHERE state = 'reserved'), 0) AS reserved_s,
        coalesce(sum(extract(epoch FROM b - a)) FILTER (WHERE state = 'on_call'), 0) AS on_call_s,
        coalesce(sum(extract(epoch FROM b - a)) FILTER (WHERE state = 'wrap_up'), 0) AS wrap_state_s,
        coalesce(sum(extract(epoch FROM b - a)) FILTER (WHERE state = 'paused'), 0) AS paused_s
    FROM spans WHERE b > a GROUP BY agent_id
)
INSERT INTO interval_stats (kind, entity_id, interval_start, answered, answered_in_sl,
    wait_answered_s, max_wait_s, talk_s, wrapup_s, transfers, offers, rona, login_s, ready_s,
    reserved_s, on_call_s, wrap_state_s, paused_s)
SELECT 'agent', ids.agent_id, :s,
    coalesce(n.answered, 0), coalesce(n.answered_in_sl, 0), coalesce(n.wait_answered_s, 0),
    coalesce(n.max_wait_s, 0), coalesce(n.talk_s, 0), coalesce(n.wrapup_s, 0),
    coalesce(n.transfers, 0), coalesce(o.offers, 0), coalesce(o.rona, 0),
    coalesce(st.login_s, 0), coalesce(st.ready_s, 0), coalesce(st.reserved_s, 0),
    coalesce(st.on_call_s, 0), coalesce(st.wrap_state_s, 0), coalesce(st.paused_s, 0)
FROM (SELECT agent_id FROM answered UNION SELECT agent_id FROM offers
      UNION SELECT agent_id FROM states WHERE login_s > 0) AS ids
LEFT JOIN answered n ON n.agent_id = ids.agent_id
LEFT JOIN offers o ON o.agent_id = ids.agent_id
LEFT JOIN states st ON st.agent_id = ids.agent_id
"""
)

_AGENT_PAUSES = sa.text(
    """
WITH rows AS (
    SELECT agent_id, at, state, reason FROM agent_state_log WHERE at >= :s AND at < :e
    UNION ALL
    SELECT l.agent_id, l.at, l.state, l.reason FROM agents g CROSS JOIN LATERAL (
        SELECT agent_id, at, state, reason FROM agent_state_log
        WHERE agent_id = g.id AND at < :s AND at >= :lookback ORDER BY at DESC LIMIT 1
    ) AS l
), spans AS (
    SELECT agent_id, state, reason, greatest(at, :s) AS a,
        least(coalesce(lead(at) OVER (PARTITION BY agent_id ORDER BY at), :cap), :cap) AS b
    FROM rows
)
INSERT INTO pause_stats (kind, entity_id, interval_start, reason, seconds)
SELECT 'agent', agent_id, :s, coalesce(reason, ''), sum(extract(epoch FROM b - a))
FROM spans WHERE b > a AND state = 'paused'
GROUP BY agent_id, coalesce(reason, '')
"""
)

_TEAMS = sa.text(
    """
INSERT INTO interval_stats (kind, entity_id, interval_start, max_wait_s,
    answered, answered_in_sl, wait_answered_s, talk_s, wrapup_s, transfers, offers,
    rona, login_s, ready_s, reserved_s, on_call_s, wrap_state_s, paused_s)
SELECT 'team', a.team_id, :s, max(i.max_wait_s),
    sum(i.answered), sum(i.answered_in_sl), sum(i.wait_answered_s), sum(i.talk_s), sum(i.wrapup_s),
    sum(i.transfers), sum(i.offers), sum(i.rona), sum(i.login_s), sum(i.ready_s),
    sum(i.reserved_s), sum(i.on_call_s), sum(i.wrap_state_s), sum(i.paused_s)
FROM interval_stats i JOIN agents a ON a.id = i.entity_id
WHERE i.kind = 'agent' AND i.interval_start = :s AND a.team_id IS NOT NULL
GROUP BY a.team_id
"""
)

_TEAM_PAUSES = sa.text(
    """
INSERT INTO pause_stats (kind, entity_id, interval_start, reason, seconds)
SELECT 'team', a.team_id, :s, p.reason, sum(p.seconds)
FROM pause_stats p JOIN agents a ON a.id = p.entity_id
WHERE p.kind = 'agent' AND p.interval_start = :s AND a.team_id IS NOT NULL
GROUP BY a.team_id, p.reason
"""
)

# A recomputed interval's change reaches its day: the old rows are taken off (sign -1)
# before they are deleted and the new ones added (sign +1) after they are written.
_DAILY = sa.text(
    """
INSERT INTO daily_stats (kind, entity_id, day, max_wait_s,
    offered, answered, answered_in_sl, abandoned, short_abandoned, abandoned_in_ivr, overflowed,
    failed, wait_answered_s, talk_s, wrapup_s, transfers, rona, offers,
    login_s, ready_s, reserved_s, on_call_s, wrap_state_s, paused_s)
SELECT kind, entity_id, (interval_start AT TIME ZONE :tz)::date,
    CASE WHEN :sign > 0 THEN max_wait_s ELSE 0 END,
    :sign * offered, :sign * answered, :sign * answered_in_sl, :sign * abandoned, :sign * short_abandoned,
    :sign * abandoned_in_ivr, :sign * overflowed, :sign * failed, :sign * wait_answered_s, :sign * talk_s,
    :sign * wrapup_s, :sign * transfers, :sign * rona, :sign * offers, :sign * login_s,
    :sign * ready_s, :sign * reserved_s, :sign * on_call_s, :sign * wrap_state_s, :sign * paused_s
FROM interval_stats WHERE interval_start = :s
ON CONFLICT (kind, entity_id, day) DO UPDATE SET
    max_wait_s = greatest(daily_stats.max_wait_s, excluded.max_wait_s),
    offered = daily_stats.offered + excluded.offered, answered = daily_stats.answered + excluded.answered,
    answered_in_sl = daily_stats.answered_in_sl + excluded.answered_in_sl, abandoned = daily_stats.abandoned + excluded.abandoned,
    short_abandoned = daily_stats.short_abandoned + excluded.short_abandoned, abandoned_in_ivr = daily_stats.abandoned_in_ivr + excluded.abandoned_in_ivr,
    overflowed = daily_stats.overflowed + excluded.overflowed, failed = daily_stats.failed + excluded.failed,
    wait_answered_s = daily_stats.wait_answered_s + excluded.wait_answered_s, talk_s = daily_stats.talk_s + excluded.talk_s,
    wrapup_s = daily_stats.wrapup_s + excluded.wrapup_s, transfers = daily_stats.transfers + excluded.transfers,
    rona = daily_stats.rona + excluded.rona, offers = daily_stats.offers + excluded.offers,
    login_s = daily_stats.login_s + excluded.login_s, ready_s = daily_stats.ready_s + excluded.ready_s,
    reserved_s = daily_stats.reserved_s + excluded.reserved_s, on_call_s = daily_stats.on_call_s + excluded.on_call_s,
    wrap_state_s = daily_stats.wrap_state_s + excluded.wrap_state_s, paused_s = daily_stats.paused_s + excluded.paused_s
"""
)

_DAILY_PAUSE = sa.text(
    """
INSERT INTO daily_pause (kind, entity_id, day, reason, seconds)
SELECT kind, entity_id, (interval_start AT TIME ZONE :tz)::date, reason, :sign * seconds
FROM pause_stats WHERE interval_start = :s
ON CONFLICT (kind, entity_id, day, reason) DO UPDATE SET
    seconds = daily_pause.seconds + excluded.seconds
"""
)


async def recompute_interval(
    session: AsyncSession,
    start: datetime,
    *,
    now: datetime,
    short_abandon_s: float,
    default_sl_s: float,
    timezone: str = "UTC",
) -> None:
    """Replace the rows of the interval starting at ``start`` and move its day's sums by
    the change (call inside a transaction).  Recomputes of one interval are serialised
    by a transaction-scoped advisory lock, so two processes never both take the same
    old rows off the day."""
    end = start + INTERVAL
    params = {
        "s": start,
        "e": end,
        "cap": min(end, max(now, start)),
        "lookback": start - STATE_LOOKBACK,
        "short_s": short_abandon_s,
        "sl": default_sl_s,
    }
    await session.execute(
        sa.text("SELECT pg_advisory_xact_lock(:ns, :key)"),
        {"ns": _LOCK_NAMESPACE, "key": int(start.timestamp()) // 900},
    )
    day = {"s": start, "tz": timezone}
    await session.execute(_DAILY, day | {"sign": -1})
    await session.execute(_DAILY_PAUSE, day | {"sign": -1})
    await session.execute(
        sa.text("DELETE FROM interval_stats WHERE interval_start = :s"), {"s": start}
    )
    await session.execute(
        sa.text("DELETE FROM pause_stats WHERE interval_start = :s"), {"s": start}
    )
    await session.execute(_QUEUES, params)
    await session.execute(_AGENTS, params)
    await session.execute(_AGENT_PAUSES, params)
    await session.execute(_TEAMS, params)
    await session.execute(_TEAM_PAUSES, params)
    await session.execute(_DAILY, day | {"sign": 1})
    await session.execute(_DAILY_PAUSE, day | {"sign": 1})
