"""Interval statistics: 15-minute rollups per queue, team and agent (``app.reports``).

``interval_stats`` holds the sums of each interval, ``pause_stats`` the paused seconds
by reason (agents and teams).  Both are recomputed from the source rows, so the tables
can be dropped and rebuilt (``python -m app.reports rebuild``).  Reversible: downgrade
drops both.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 10:20:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "interval_stats",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
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
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('queue', 'team', 'agent')", name=op.f("ck_interval_stats_kind_known")
        ),
        sa.PrimaryKeyConstraint(
            "kind", "entity_id", "interval_start", name=op.f("pk_interval_stats")
        ),
    )
    op.create_index(
        op.f("ix_interval_stats_kind_interval_start"),
        "interval_stats",
        ["kind", "interval_start"],
        unique=False,
    )
    op.create_table(
        "pause_stats",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("seconds", sa.Double(), server_default="0", nullable=False),
        sa.CheckConstraint("kind IN ('team', 'agent')", name=op.f("ck_pause_stats_kind_known")),
        sa.PrimaryKeyConstraint(
            "kind", "entity_id", "interval_start", "reason", name=op.f("pk_pause_stats")
        ),
    )
    op.create_index(
        op.f("ix_pause_stats_kind_interval_start"),
        "pause_stats",
        ["kind", "interval_start"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("pause_stats")
    op.drop_table("interval_stats")
