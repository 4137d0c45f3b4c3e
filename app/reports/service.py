"""Queue, team and agent reports from the interval rollups (never from the calls table).

A report is the rollup rows of ``[from, to)`` summed per period and entity: the period
is the 15-minute interval itself, or the hour, day or month holding it in the report's
time zone.  Rates are computed from the sums (so a day's service level weighs every call
once, never an average of averages):

- service_level: answered within the queue's threshold / the denominator of the
  configured formula (``app.kpi``); abandon_rate: abandoned / (answered + abandoned);
- asa_s: waits of answered calls / answered; aht_s: (talk + wrap-up) / answered;
- occupancy (agents, teams): (on call + wrap-up) / (on call + wrap-up + ready + reserved).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.kpi import SlFormula, service_level

Kind = Literal["queue", "team", "agent"]
Group = Literal["interval", "hour", "day", "month"]

SUMS = (
    "offered",
    "answered",
    "answered_in_sl",
    "abandoned",
    "short_abandoned",
    "abandoned_in_ivr",
    "overflowed",
    "failed",
    "wait_answered_s",
    "talk_s",
    "wrapup_s",
    "transfers",
    "rona",
    "offers",
    "login_s",
    "ready_s",
    "reserved_s",
    "on_call_s",
    "wrap_state_s",
    "paused_s",
)
_NAMES = {"queue": "queues", "team": "teams", "agent": "agents"}
MAX_ROWS = 200_000


@dataclass(frozen=True, slots=True)
class ReportQuery:
    kind: Kind
    start: datetime
    end: datetime
    group: Group
    timezone: str
    ids: tuple[int, ...] = ()
    teams: frozenset[int] | None = None  # a supervisor's teams (None: every team)
    daily_timezone: str | None = None  # the days of ``daily_stats`` (reports.timezone)


def _local_midnight(t: datetime, zone: ZoneInfo) -> bool:
    local = t.astimezone(zone)
    return (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0)


def _uses_days(q: ReportQuery) -> bool:
    """Whole days in the daily table's time zone, grouped by day or month: read the
    daily rollups (30 rows per entity a month) instead of the intervals."""
    if q.group not in ("day", "month") or q.timezone != q.daily_timezone:
        return False
    zone = ZoneInfo(q.timezone)
    return _local_midnight(q.start, zone) and _local_midnight(q.end, zone)


def _period(group: Group) -> str:
    if group == "interval":
        return "i.interval_start"
    return f"date_trunc('{group}', i.interval_start AT TIME ZONE :tz) AT TIME ZONE :tz"


_TEAM_AGENTS = "(SELECT id FROM agents WHERE team_id = ANY(:teams))"


def _scope(q: ReportQuery, params: dict[str, Any], alias: str) -> str:
    where = ""
    if q.ids:
        where += f" AND {alias}.entity_id = ANY(:ids)"
        params["ids"] = list(q.ids)
    if q.teams is not None:
        params["teams"] = sorted(q.teams)
        if q.kind == "team":
            where += f" AND {alias}.entity_id = ANY(:teams)"
        elif q.kind == "agent":
            where += f" AND {alias}.entity_id IN " + _TEAM_AGENTS
    return where


async def report(
    session: AsyncSession, q: ReportQuery, *, formula: SlFormula
) -> list[dict[str, Any]]:
    """The report's rows, ordered by period and entity id."""
    params: dict[str, Any] = {"kind": q.kind, "s": q.start, "e": q.end, "tz": q.timezone}
    where = _scope(q, params, "i")
    if _uses_days(q):
        zone = ZoneInfo(q.timezone)
        params["s"], params["e"] = q.start.astimezone(zone).date(), q.end.astimezone(zone).date()
        stats, pause_table, column = "daily_stats", "daily_pause", "i.day"
        trunc = "i.day" if q.group == "day" else "date_trunc('month', i.day)"
        period = f"({trunc})::timestamp AT TIME ZONE :tz"
    else:
        stats, pause_table, column = "interval_stats", "pause_stats", "i.interval_start"
        period = _period(q.group)
    sums = ", ".join(f"sum(i.{c}) AS {c}" for c in SUMS)
    name_table = _NAMES[q.kind]
    extra = ", max(n.sl_target_s) AS sl_target_s" if q.kind == "queue" else ""
    sql = sa.text(
        f"SELECT {period} AS period, i.entity_id AS id, max(n.name) AS name,"  # noqa: S608 - constants
        f" max(i.max_wait_s) AS max_wait_s, {sums}{extra}"
        f" FROM {stats} i LEFT JOIN {name_table} n ON n.id = i.entity_id"
        f" WHERE i.kind = :kind AND {column} >= :s AND {column} < :e{where}"
        " GROUP BY 1, 2 ORDER BY 1, 2"
        f" LIMIT {MAX_ROWS + 1}"
    )
    rows = [dict(r) for r in (await session.execute(sql, params)).mappings()]
    if len(rows) > MAX_ROWS:
        raise ValueError(f"more than {MAX_ROWS} rows: narrow the range or group coarser")
    pauses: dict[tuple[Any, int], dict[str, float]] = {}
    if q.kind != "queue":
        pause_params = dict(params)
        pwhere = _scope(q, pause_params, "i")
        psql = sa.text(
            f"SELECT {period} AS period, i.entity_id AS id, i.reason, sum(i.seconds) AS s"  # noqa: S608
            f" FROM {pause_table} i WHERE i.kind = :kind AND {column} >= :s"
            f" AND {column} < :e{pwhere} GROUP BY 1, 2, 3"
        )
        for r in (await session.execute(psql, pause_params)).mappings():
            pauses.setdefault((r["period"], r["id"]), {})[r["reason"] or "-"] = round(
                float(r["s"]), 1
            )
    zone = ZoneInfo(q.timezone)
    return [_finish(r, formula, pauses.get((r["period"], r["id"]), {}), q.kind, zone) for r in rows]


def _ratio(a: float, b: float, digits: int = 4) -> float | None:
    return round(a / b, digits) if b else None


def _finish(
    r: dict[str, Any], formula: SlFormula, pauses: dict[str, float], kind: Kind, zone: ZoneInfo
) -> dict[str, Any]:
    f = {c: float(r[c] or 0) for c in SUMS}
    period = r["period"].astimezone(zone).isoformat()  # in the report's time zone
    out: dict[str, Any] = {"period": period, "id": r["id"], "name": r["name"]}
    for c in SUMS:
        out[c] = int(f[c]) if not c.endswith("_s") else round(f[c], 1)
    out["max_wait_s"] = round(float(r["max_wait_s"] or 0), 1)
    out["service_level"] = service_level(
        formula,
        answered_in_sl=f["answered_in_sl"],
        answered=f["answered"],
        abandoned=f["abandoned"],
        short_abandoned=f["short_abandoned"],
    )
    out["abandon_rate"] = _ratio(f["abandoned"], f["answered"] + f["abandoned"])
    out["asa_s"] = _ratio(f["wait_answered_s"], f["answered"], 1)
    out["aht_s"] = _ratio(f["talk_s"] + f["wrapup_s"], f["answered"], 1)
    if kind == "queue":
        out["sl_target_s"] = r.get("sl_target_s")
    else:
        busy = f["on_call_s"] + f["wrap_state_s"]
        out["occupancy"] = _ratio(busy, busy + f["ready_s"] + f["reserved_s"])
        out["paused_by_reason"] = pauses
    return out
