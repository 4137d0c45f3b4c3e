"""Agent state history and pause codes.

- ``agent_state_log``: every state an agent entered (append-only), range-partitioned by
  month on ``at``, with a default partition and the months from one before the
  migration to twelve after it; ``ensure_monthly_partitions`` (``app.partitions``)
  creates further months (the daily maintenance job calls it).
- ``pause_codes``: the reasons an agent may pause with, seeded with the list the agent
  page offered until now plus ``supervisor`` (a forced pause without a reason).

Reversible: downgrade drops both tables (and every partition) and the function.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-03 10:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A copy of app.partitions.CREATE_FUNCTION as it was at this revision (migrations are static).
_CREATE_FUNCTION = """
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

_STATES = ("logged_out", "ready", "reserved", "on_call", "wrap_up", "paused")
_CODES = [
    ("break", "Break", False, 10),
    ("lunch", "Lunch", False, 20),
    ("meeting", "Meeting", True, 30),
    ("training", "Training", True, 40),
    ("coaching", "Coaching", True, 50),
    ("after-call work", "After-call work", True, 60),
    ("technical issue", "Technical issue", False, 70),
    ("supervisor", "Paused by a supervisor", False, 80),
]


def upgrade() -> None:
    op.create_table(
        "pause_codes",
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("productive", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_pause_codes")),
    )
    codes = sa.table(
        "pause_codes",
        sa.column("code", sa.Text),
        sa.column("label", sa.Text),
        sa.column("productive", sa.Boolean),
        sa.column("position", sa.Integer),
    )
    op.bulk_insert(
        codes,
        [{"code": c, "label": lbl, "productive": p, "position": n} for c, lbl, p, n in _CODES],
    )
    op.create_table(
        "agent_state_log",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("previous", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("call_id", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN (" + ", ".join(f"'{s}'" for s in _STATES) + ")",
            name=op.f("ck_agent_state_log_agent_state_log_state"),
        ),
        sa.PrimaryKeyConstraint("agent_id", "at", "state", name=op.f("pk_agent_state_log")),
        postgresql_partition_by="RANGE (at)",
    )
    op.create_index(op.f("ix_agent_state_log_at"), "agent_state_log", ["at"], unique=False)
    op.execute("CREATE TABLE agent_state_log_default PARTITION OF agent_state_log DEFAULT")
    op.execute(_CREATE_FUNCTION)
    op.execute(
        "SELECT ensure_monthly_partitions('agent_state_log', 'at',"
        " (date_trunc('month', now()) - interval '1 month')::date, 14)"
    )


def downgrade() -> None:
    op.drop_table("agent_state_log")
    op.execute("DROP FUNCTION IF EXISTS ensure_monthly_partitions(text, text, date, integer)")
    op.drop_table("pause_codes")
