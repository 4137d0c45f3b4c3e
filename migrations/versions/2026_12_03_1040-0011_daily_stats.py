"""Daily rollups: the sums of each day's 15-minute intervals (``app.reports``), so a
month report reads days, not intervals.  Filled from the existing intervals (days of
UTC: the default ``reports.timezone``; ``python -m app.reports rebuild`` refills them
after a change of that setting).  Reversible: downgrade drops both tables.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 10:40:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SUMS = (
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


def upgrade() -> None:
    op.create_table(
        "daily_stats",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("offered", sa.Integer(), server_default="0", nullable=False),
        sa.Column("answered", sa.Integer(), server_default="0", nullable=False),
        sa.Column("answered_in_sl", sa.Integer(), server_default="0", nullable=False),
        sa.Column("abandoned", sa.Integer(), server_default="0", nullable=False),
        sa.Column("short_abandoned", sa.Integer(), server_default="0", nullable=False),
        sa.Column("abandoned_in_ivr", sa.Integer(), server_default="0", nullable=False),
        sa.Column("overflowed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("wait_answered_s", sa.Double(), server_default="0", nullable=False),
        sa.Column("max_wait_s", sa.Double(), server_default="0", nullable=False),
        sa.Column("talk_s", sa.Double(), server_default="0", nullable=False),
        sa.Column("wrapup_s", sa.Double(), server_default="0", nullable=False),
        sa.Column("transfers", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rona", sa.Integer(), server_default="0", nullable=False),
        sa.Column("offers", sa.Integer(), server_default="0", nullable=False),
        sa.Column("login_s", sa.Double(), server_default="0", nullable=False),
        sa.Column("ready_s", sa.Double(), server_default="0", nullable=False),
        sa.Column("reserved_s", sa.Double(), server_default="0", nullable=False),
        sa.Column("on_call_s", sa.Double(), server_default="0", nullable=False),
        sa.Column("wrap_state_s", sa.Double(), server_default="0", nullable=False),
        sa.Column("paused_s", sa.Double(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "kind IN ('queue', 'team', 'agent')", name=op.f("ck_daily_stats_kind_known")
        ),
        sa.PrimaryKeyConstraint("kind", "entity_id", "day", name=op.f("pk_daily_stats")),
    )
    op.create_index(op.f("ix_daily_stats_kind_day"), "daily_stats", ["kind", "day"], unique=False)
    op.create_table(
        "daily_pause",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("seconds", sa.Double(), server_default="0", nullable=False),
        sa.CheckConstraint("kind IN ('team', 'agent')", name=op.f("ck_daily_pause_kind_known")),
        sa.PrimaryKeyConstraint("kind", "entity_id", "day", "reason", name=op.f("pk_daily_pause")),
    )
    op.create_index(op.f("ix_daily_pause_kind_day"), "daily_pause", ["kind", "day"], unique=False)
    sums = ", ".join(_SUMS)
    op.execute(
        f"INSERT INTO daily_stats (kind, entity_id, day, max_wait_s, {sums})"  # noqa: S608 - constant column names
        " SELECT kind, entity_id, (interval_start AT TIME ZONE 'UTC')::date, max(max_wait_s), "
        + ", ".join(f"sum({c})" for c in _SUMS)
        + " FROM interval_stats GROUP BY 1, 2, 3"
    )
    op.execute(
        "INSERT INTO daily_pause (kind, entity_id, day, reason, seconds)"
        " SELECT kind, entity_id, (interval_start AT TIME ZONE 'UTC')::date, reason, sum(seconds)"
        " FROM pause_stats GROUP BY 1, 2, 3, 4"
    )


def downgrade() -> None:
    op.drop_table("daily_pause")
    op.drop_table("daily_stats")
