"""Cases workflow: stages, category taxonomy (seeded), channel, validity, owner, team,
the call a case came from, escalation level and the escalation clock (timestamptz,
indexed for the scheduler), and ``case_events`` (who changed what, when and why).
Existing cases keep their status; closed ones get the ``closed`` stage.  Reversible.

Revision ID: 0012
Revises: 0007
Create Date: 2026-12-03 11:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATEGORIES = [
    ("product-quality", "Product quality"),
    ("service-attitude", "Service attitude"),
    ("waiting-time", "Waiting time"),
    ("billing", "Billing"),
    ("delivery-repair", "Delivery / repair"),
    ("other", "Other"),
]


def upgrade() -> None:
    categories = op.create_table(
        "case_categories",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_categories")),
        sa.UniqueConstraint("code", name=op.f("uq_case_categories_code")),
    )
    op.bulk_insert(categories, [{"code": c, "name": n} for c, n in CATEGORIES])
    add = op.add_column
    add("cases", sa.Column("stage", sa.Text(), server_default="registered", nullable=False))
    add("cases", sa.Column("category_id", sa.Integer(), nullable=True))
    add("cases", sa.Column("channel", sa.Text(), server_default="phone", nullable=False))
    add("cases", sa.Column("valid", sa.Boolean(), server_default=sa.true(), nullable=False))
    add("cases", sa.Column("referred", sa.Boolean(), server_default=sa.false(), nullable=False))
    add("cases", sa.Column("owner_user_id", sa.Integer(), nullable=True))
    add("cases", sa.Column("team_id", sa.Integer(), nullable=True))
    add("cases", sa.Column("department", sa.Text(), nullable=True))
    add("cases", sa.Column("call_id", sa.Text(), nullable=True))
    add("cases", sa.Column("notes", sa.Text(), nullable=True))
    add(
        "cases",
        sa.Column("escalation_level", sa.SmallInteger(), server_default="0", nullable=False),
    )
    add("cases", sa.Column("next_escalation_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE cases SET stage = 'closed' WHERE status = 'closed'")
    op.create_foreign_key(
        op.f("fk_cases_category_id_case_categories"),
        "cases",
        "case_categories",
        ["category_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        op.f("fk_cases_owner_user_id_users"),
        "cases",
        "users",
        ["owner_user_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_foreign_key(
        op.f("fk_cases_team_id_teams"), "cases", "teams", ["team_id"], ["id"], ondelete="SET NULL"
    )
    op.create_check_constraint(
        op.f("ck_cases_known_stage"),
        "cases",
        "stage IN ('registered', 'accepted', 'handling', 'replied', 'closed', 'archived')",
    )
    op.create_check_constraint(
        op.f("ck_cases_known_channel"),
        "cases",
        "channel IN ('phone', 'email', 'letter', 'visit', 'other')",
    )
    op.create_check_constraint(
        op.f("ck_cases_escalation_level_0_to_2"), "cases", "escalation_level BETWEEN 0 AND 2"
    )
    op.create_index(
        "ix_cases_next_escalation_at",
        "cases",
        ["next_escalation_at"],
        postgresql_where=sa.text("next_escalation_at IS NOT NULL"),
    )
    op.create_index(
        "ix_cases_owner_open",
        "cases",
        ["owner_user_id"],
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index(
        "ix_cases_team_open", "cases", ["team_id"], postgresql_where=sa.text("status = 'open'")
    )
    op.create_table(
        "case_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("from_stage", sa.Text(), nullable=True),
        sa.Column("to_stage", sa.Text(), nullable=True),
        sa.Column("level", sa.SmallInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_events_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
    )
    op.create_index("ix_case_events_case_id_at", "case_events", ["case_id", "at"])


def downgrade() -> None:
    op.drop_table("case_events")
    for index in ("ix_cases_team_open", "ix_cases_owner_open", "ix_cases_next_escalation_at"):
        op.drop_index(index, table_name="cases")
    for constraint in (
        "ck_cases_escalation_level_0_to_2",
        "ck_cases_known_channel",
        "ck_cases_known_stage",
    ):
        op.drop_constraint(op.f(constraint), "cases", type_="check")
    for fk in (
        "fk_cases_team_id_teams",
        "fk_cases_owner_user_id_users",
        "fk_cases_category_id_case_categories",
    ):
        op.drop_constraint(op.f(fk), "cases", type_="foreignkey")
    for column in (
        "next_escalation_at",
        "escalation_level",
        "notes",
        "call_id",
        "department",
        "team_id",
        "owner_user_id",
        "referred",
        "valid",
        "channel",
        "category_id",
        "stage",
    ):
        op.drop_column("cases", column)
    op.drop_table("case_categories")
