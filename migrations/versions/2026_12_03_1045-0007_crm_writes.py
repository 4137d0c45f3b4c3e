"""CRM writes: handled calls become interactions (one per call: ``call_id`` unique, so a
replayed outcome batch never writes a contact twice), with the queue, result,
disposition, notes and case of the call; customer look-up by name prefix and by serial
number through indexes.  Reversible: downgrade drops the columns and indexes.

Revision ID: 0007
Revises: 0011
Create Date: 2026-12-03 10:45:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("interactions", sa.Column("call_id", sa.Text(), nullable=True))
    op.add_column("interactions", sa.Column("queue_id", sa.Integer(), nullable=True))
    op.add_column("interactions", sa.Column("result", sa.Text(), nullable=True))
    op.add_column("interactions", sa.Column("disposition_code", sa.Text(), nullable=True))
    op.add_column("interactions", sa.Column("notes", sa.Text(), nullable=True))
    op.add_column("interactions", sa.Column("case_id", sa.BigInteger(), nullable=True))
    op.create_unique_constraint("uq_interactions_call_id", "interactions", ["call_id"])
    op.execute(
        "CREATE INDEX ix_customers_name_prefix ON customers (lower(name) text_pattern_ops, id)"
    )
    op.create_index("ix_products_serial", "products", ["serial"])


def downgrade() -> None:
    op.drop_index("ix_products_serial", table_name="products")
    op.drop_index("ix_customers_name_prefix", table_name="customers")
    op.drop_constraint("uq_interactions_call_id", "interactions", type_="unique")
    for column in ("case_id", "notes", "disposition_code", "result", "queue_id", "call_id"):
        op.drop_column("interactions", column)
