"""Per-user token version: a token carries the version it was issued with (``ver``) and
is refused once the user's version moved on (disabled, role or seat changed, password
changed, deleted, logged out).  See ``app.auth.TokenVersions``.

Static and reversible: downgrade drops the column.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 07:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("token_version", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("users", "token_version")
