"""Leadership among service processes: the lease, members' heartbeats, takeovers
(``app.ha``, docs/ha.md).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ha_lease",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=True),
        sa.Column("token", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("acquired_at", _TS, nullable=True),
        sa.Column("renewed_at", _TS, nullable=True),
        sa.Column("expires_at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_ha_lease")),
    )
    op.create_table(
        "ha_members",
        sa.Column("member", sa.Text(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=True),
        sa.Column("started_at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("heartbeat_at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("member", name=op.f("pk_ha_members")),
    )
    op.create_table(
        "ha_takeovers",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("lease_name", sa.Text(), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("previous_holder", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("expired_for_s", sa.Float(), nullable=True),
        sa.Column("routing_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ha_takeovers")),
    )


def downgrade() -> None:
    op.drop_table("ha_takeovers")
    op.drop_table("ha_members")
    op.drop_table("ha_lease")
