"""calls.result may be ``abandoned_in_ivr``: a caller who hung up in the greeting / IVR,
before reaching the queue (``ACDArrive`` without ``ACDHold``), gets its own row.

The enumeration is varchar + CHECK: the constraint is replaced.  Downgrade turns such
rows into ``abandoned`` (the closest older value) before restoring the old constraint.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 08:30:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = ("answered", "abandoned", "short_abandoned", "overflowed", "failed")
_NEW = (*_OLD, "abandoned_in_ivr")
_NAME = "ck_calls_call_result"


def _check(values: tuple[str, ...]) -> str:
    return "result IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.drop_constraint(op.f(_NAME), "calls", type_="check")
    op.create_check_constraint(op.f(_NAME), "calls", _check(_NEW))


def downgrade() -> None:
    op.execute("UPDATE calls SET result = 'abandoned' WHERE result = 'abandoned_in_ivr'")
    op.drop_constraint(op.f(_NAME), "calls", type_="check")
    op.create_check_constraint(op.f(_NAME), "calls", _check(_OLD))
