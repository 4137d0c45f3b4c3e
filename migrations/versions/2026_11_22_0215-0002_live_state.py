"""Live state kept across restarts of the service: agent sessions and calls in progress.

``agent_sessions``: one row per agent (latest routing state wins); ``live_calls``: one row
per call in progress, deleted when the call ends.  See ``app.live.persist``.

Static and reversible: downgrade drops both tables.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 02:15:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_sessions",
        sa.Column("agent_id", sa.Text(), nullable=False),
        sa.Column("device", sa.Text(), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "logged_out",
                "ready",
                "reserved",
                "on_call",
                "wrap_up",
                "paused",
                name="agent_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idle_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("call_id", sa.Text(), nullable=True),
        sa.Column("pending", sa.Text(), nullable=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("missed_in_row", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_sessions")),
    )
    op.create_table(
        "live_calls",
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("server", sa.Text(), nullable=False),
        sa.Column("uniqueid", sa.Text(), nullable=False),
        sa.Column("linkedid", sa.Text(), nullable=True),
        sa.Column("channel", sa.Text(), nullable=True),
        sa.Column("caller", sa.Text(), nullable=False),
        sa.Column("caller_name", sa.Text(), nullable=True),
        sa.Column("dnis", sa.Text(), nullable=True),
        sa.Column("queue_id", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.Text(), nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_offered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "agents_offered",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column("rona_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("vip", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("entitled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "state IN ('classifying', 'waiting', 'offered', 'connected')",
            name=op.f("ck_live_calls_state_known"),
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_live_calls")),
    )


def downgrade() -> None:
    op.drop_table("live_calls")
    op.drop_table("agent_sessions")
