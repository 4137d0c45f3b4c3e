"""Devices: the phones agents may log in on, registered by admins (``app.devices``).

An agent logs in on its own device (``agents.device``, checked by the device rules) or on
a registered device assigned to it, by id; never on a free-text dial string.  The CHECK
constraints keep Dial option and multi-dial separators out of the table.

Saved agent sessions on a dial string the new rule's charset refuses (free text from
before) are logged out, so a restart does not log the agent back in on it; that data step
is one-way.  Otherwise reversible: downgrade drops the table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 08:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("technology", sa.Text(), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "technology IN ('PJSIP', 'SIP', 'IAX2', 'DAHDI', 'Local')",
            name=op.f("ck_devices_known_technology"),
        ),
        sa.CheckConstraint(
            "endpoint ~ '^[A-Za-z0-9_-]+(@[A-Za-z0-9_-]+)?$'",
            name=op.f("ck_devices_endpoint_charset"),
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_devices_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("technology", "endpoint", name=op.f("uq_devices_technology_endpoint")),
    )
    op.create_index(op.f("ix_devices_agent_id"), "devices", ["agent_id"], unique=False)
    op.execute(
        "UPDATE agent_sessions SET state = 'logged_out', device = NULL, call_id = NULL,"
        " pending = NULL WHERE device IS NOT NULL AND device !~"
        " '^(PJSIP|SIP|IAX2|DAHDI|Local)/[A-Za-z0-9_-]+(@[A-Za-z0-9_-]+)?$'"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_devices_agent_id"), table_name="devices")
    op.drop_table("devices")
