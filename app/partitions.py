"""Monthly range partitions (PostgreSQL) for the append-only logs that retention purges.

Why: a two-year log of every agent state change (and, later, call events) is purged a
month at a time; dropping a month's partition takes milliseconds and leaves no bloat,
where a DELETE of tens of millions of rows takes hours and a VACUUM after it.

Invariants:
- A partitioned table ``T`` (``PARTITION BY RANGE (<key>)`` on a ``timestamptz``) has
  partitions named ``T_YYYY_MM`` holding ``[first of the month, first of the next)`` in
  UTC, and ``T_default`` for anything outside them, so a write never fails for want of
  a partition.
- ``ensure_monthly_partitions(T, key, first_month, months)`` (a SQL function created by
  migration 0008) creates the missing months; rows of that month already in ``T_default``
  are moved into the new partition in the same transaction.  Idempotent: it is run by the
  migration (the months around the migration's date) and by the daily maintenance job
  (``app.reports.retention``) for the months ahead.
- ``drop_months_before`` drops whole partitions older than a cutoff; rows in the default
  partition are the caller's to delete.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

PARTITIONED = ("agent_state_log",)
_PARTITION = re.compile(r"^(?P<parent>[a-z_]+)_(?P<suffix>\d{4}_\d{2}|default)$")

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION ensure_monthly_partitions(
    parent text, key text, first_month date, months integer
) RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    m date;
    lo text;
    hi text;
    part text;
    made integer := 0;
BEGIN
    FOR i IN 0 .. months - 1 LOOP
        m := (date_trunc('month', first_month) + make_interval(months => i))::date;
        part := parent || '_' || to_char(m, 'YYYY_MM');
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        lo := to_char(m, 'YYYY-MM-DD') || ' 00:00:00+00';
        hi := to_char((m + interval '1 month')::date, 'YYYY-MM-DD') || ' 00:00:00+00';
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       part, parent);
        IF to_regclass(parent || '_default') IS NOT NULL THEN
            EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= %L AND %I < %L RETURNING *)'
                           ' INSERT INTO %I SELECT * FROM moved',
                           parent || '_default', key, lo, key, hi, part);
        END IF;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       parent, part, lo, hi);
        made := made + 1;
    END LOOP;
    RETURN made;
END
$fn$
"""

DROP_FUNCTION = "DROP FUNCTION IF EXISTS ensure_monthly_partitions(text, text, date, integer)"


def is_partition(name: str) -> bool:
    """A partition of one of ``PARTITIONED`` (not a table of the models)."""
    m = _PARTITION.match(name)
    return m is not None and m.group("parent") in PARTITIONED


def include_name(name: str | None, type_: str, _parent: object) -> bool:
    """Alembic's ``include_name``: partitions are created by SQL, not by the models."""
    return not (type_ == "table" and name is not None and is_partition(name))


def month_of(name: str) -> date | None:
    m = _PARTITION.match(name)
    if m is None or m.group("suffix") == "default":
        return None
    year, month = m.group("suffix").split("_")
    return date(int(year), int(month), 1)


async def ensure_months(
    conn: AsyncConnection | AsyncSession, parent: str, key: str, first: date, months: int
) -> int:
    """Create the missing monthly partitions of ``parent`` from ``first``'s month on."""
    made = await conn.scalar(
        sa.text("SELECT ensure_monthly_partitions(:p, :k, :f, :n)"),
        {"p": parent, "k": key, "f": first, "n": months},
    )
    return int(made or 0)


async def months(conn: AsyncConnection | AsyncSession, parent: str) -> dict[date, str]:
    """The monthly partitions of ``parent``: first day of the month -> table name."""
    rows = await conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = to_regclass(:p)"
        ),
        {"p": parent},
    )
    out: dict[date, str] = {}
    for (name,) in rows:
        month = month_of(str(name))
        if month is not None:
            out[month] = str(name)
    return out


async def drop_months_before(
    conn: AsyncConnection | AsyncSession, parent: str, cutoff: datetime
) -> list[str]:
    """Drop the partitions of ``parent`` that end at or before ``cutoff`` (whole months)."""
    if cutoff.tzinfo is None:
        raise ValueError("cutoff must be timezone-aware")
    cutoff = cutoff.astimezone(UTC)
    dropped = []
    for month, name in sorted((await months(conn, parent)).items()):
        end = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        if datetime(end.year, end.month, 1, tzinfo=UTC) <= cutoff:
            await conn.execute(sa.text(f'DROP TABLE "{name}"'))
            dropped.append(name)
    return dropped
