"""Initial schema: configuration (teams, skills, agents, queues, users), CRM (customers,
phones, products, interactions, cases) and the call-outcome log (calls, call_events).

Static and reversible: downgrade drops everything upgrade created, in dependency order.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22 01:21:32.806079+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column(
            "data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("at", "id", name="pk_call_events"),
        sa.UniqueConstraint("call_id", "at", "kind", name="uq_call_events_call_id_at_kind"),
    )
    op.create_table(
        "calls",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("server", sa.Text(), nullable=False),
        sa.Column("uniqueid", sa.Text(), nullable=False),
        sa.Column("linkedid", sa.Text(), nullable=True),
        sa.Column("caller", sa.Text(), nullable=False),
        sa.Column("dnis", sa.Text(), nullable=True),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column(
            "agents_offered",
            postgresql.ARRAY(sa.Integer()),
            server_default=sa.text("'{}'::integer[]"),
            nullable=False,
        ),
        sa.Column("answered_by", sa.Integer(), nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_offered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wrapup_ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wait_s", sa.Double(), nullable=True),
        sa.Column("ring_s", sa.Double(), nullable=True),
        sa.Column("talk_s", sa.Double(), nullable=True),
        sa.Column("wrapup_s", sa.Double(), nullable=True),
        sa.Column(
            "result",
            sa.Enum(
                "answered",
                "abandoned",
                "short_abandoned",
                "overflowed",
                "failed",
                name="call_result",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("rona_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("vip", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("entitled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("overflow_target", sa.Text(), nullable=True),
        sa.Column("disposition_code", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("call_id", name=op.f("uq_calls_call_id")),
    )
    op.create_index(
        "ix_calls_answered_by_arrived_at", "calls", ["answered_by", "arrived_at"], unique=False
    )
    op.create_index("ix_calls_arrived_at_id", "calls", ["arrived_at", "id"], unique=False)
    op.create_index("ix_calls_caller_arrived_at", "calls", ["caller", "arrived_at"], unique=False)
    op.create_index(
        "ix_calls_queue_id_arrived_at", "calls", ["queue_id", "arrived_at"], unique=False
    )
    op.create_index("ix_calls_result_arrived_at", "calls", ["result", "arrived_at"], unique=False)
    op.create_table(
        "customers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("vip", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("member", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_table(
        "dispositions",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispositions")),
        sa.UniqueConstraint("code", name=op.f("uq_dispositions_code")),
    )
    op.create_table(
        "queues",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.Column("weight", sa.Integer(), server_default="1", nullable=False),
        sa.Column("sl_target_s", sa.Double(), server_default="15", nullable=False),
        sa.Column("sl_target_pct", sa.Double(), server_default="0.8", nullable=False),
        sa.Column("ring_timeout_s", sa.Double(), server_default="15", nullable=False),
        sa.Column("wrapup_s", sa.Double(), server_default="10", nullable=False),
        sa.Column("max_wait_s", sa.Double(), nullable=True),
        sa.Column("max_len", sa.Integer(), nullable=True),
        sa.Column("overflow_queue_id", sa.Integer(), nullable=True),
        sa.Column("overflow_target", sa.Text(), nullable=True),
        sa.Column("hours", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "escalation",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("vip_boost", sa.Integer(), server_default="10", nullable=False),
        sa.Column("entitled_boost", sa.Integer(), server_default="5", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "overflow_queue_id IS NULL OR overflow_target IS NULL",
            name=op.f("ck_queues_one_overflow"),
        ),
        sa.CheckConstraint("ring_timeout_s > 0", name=op.f("ck_queues_ring_timeout_positive")),
        sa.CheckConstraint(
            "sl_target_pct > 0 AND sl_target_pct <= 1", name=op.f("ck_queues_sl_target_pct_range")
        ),
        sa.CheckConstraint("wrapup_s >= 0", name=op.f("ck_queues_wrapup_non_negative")),
        sa.ForeignKeyConstraint(
            ["overflow_queue_id"],
            ["queues.id"],
            name=op.f("fk_queues_overflow_queue_id_queues"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queues")),
        sa.UniqueConstraint("name", name=op.f("uq_queues_name")),
    )
    op.create_table(
        "skills",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skills")),
        sa.UniqueConstraint("name", name=op.f("uq_skills_name")),
    )
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("name", name=op.f("uq_teams_name")),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), sa.Identity(always=False, start=1001), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("device", sa.Text(), nullable=False),
        sa.Column("max_missed", sa.Integer(), server_default="3", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("max_missed >= 1", name=op.f("ck_agents_max_missed_positive")),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_agents_team_id_teams"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
    )
    op.create_index(op.f("ix_agents_team_id"), "agents", ["team_id"], unique=False)
    op.create_table(
        "cases",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "closed",
                name="case_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="open",
            nullable=False,
        ),
        sa.Column(
            "kind",
            sa.Enum(
                "complaint",
                "repair",
                "inquiry",
                "callback",
                "return",
                name="case_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "severity",
            sa.Enum(
                "normal",
                "urgent",
                name="case_severity",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="normal",
            nullable=False,
        ),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_cases_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
    )
    op.create_index(
        "ix_cases_customer_id_open",
        "cases",
        ["customer_id"],
        unique=False,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index(
        "ix_cases_customer_id_opened_at", "cases", ["customer_id", "opened_at"], unique=False
    )
    op.create_table(
        "customer_phones",
        sa.Column("phone", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_phones_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_customer_phones")),
    )
    op.create_index(
        op.f("ix_customer_phones_customer_id"), "customer_phones", ["customer_id"], unique=False
    )
    op.create_table(
        "interactions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_interactions_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interactions")),
    )
    op.create_index(
        "ix_interactions_customer_id_at",
        "interactions",
        ["customer_id", sa.literal_column("at DESC")],
        unique=False,
    )
    op.create_table(
        "products",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("serial", sa.Text(), nullable=True),
        sa.Column("purchase_date", sa.Date(), nullable=False),
        sa.Column("protection_plan_end", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_products_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
    )
    op.create_index(op.f("ix_products_customer_id"), "products", ["customer_id"], unique=False)
    op.create_table(
        "queue_dnis",
        sa.Column("dnis", sa.Text(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_queue_dnis_queue_id_queues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dnis", name=op.f("pk_queue_dnis")),
    )
    op.create_index(op.f("ix_queue_dnis_queue_id"), "queue_dnis", ["queue_id"], unique=False)
    op.create_table(
        "queue_skills",
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("skill_id", sa.Integer(), nullable=False),
        sa.Column("min_level", sa.SmallInteger(), server_default="1", nullable=False),
        sa.CheckConstraint(
            "min_level BETWEEN 1 AND 5", name=op.f("ck_queue_skills_min_level_1_to_5")
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_queue_skills_queue_id_queues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["skill_id"],
            ["skills.id"],
            name=op.f("fk_queue_skills_skill_id_skills"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("queue_id", "skill_id", name=op.f("pk_queue_skills")),
    )
    op.create_index(op.f("ix_queue_skills_skill_id"), "queue_skills", ["skill_id"], unique=False)
    op.create_table(
        "agent_queues",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_queues_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_agent_queues_queue_id_queues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", "queue_id", name=op.f("pk_agent_queues")),
    )
    op.create_index(op.f("ix_agent_queues_queue_id"), "agent_queues", ["queue_id"], unique=False)
    op.create_table(
        "agent_skills",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("skill_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.CheckConstraint("level BETWEEN 1 AND 5", name=op.f("ck_agent_skills_level_1_to_5")),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_skills_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["skill_id"],
            ["skills.id"],
            name=op.f("fk_agent_skills_skill_id_skills"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", "skill_id", name=op.f("pk_agent_skills")),
    )
    op.create_index(op.f("ix_agent_skills_skill_id"), "agent_skills", ["skill_id"], unique=False)
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "agent",
                "supervisor",
                "admin",
                name="role",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_users_agent_id_agents"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_index(op.f("ix_users_agent_id"), "users", ["agent_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_users_agent_id"), table_name="users")
    op.drop_table("users")
    op.drop_index(op.f("ix_agent_skills_skill_id"), table_name="agent_skills")
    op.drop_table("agent_skills")
    op.drop_index(op.f("ix_agent_queues_queue_id"), table_name="agent_queues")
    op.drop_table("agent_queues")
    op.drop_index(op.f("ix_queue_skills_skill_id"), table_name="queue_skills")
    op.drop_table("queue_skills")
    op.drop_index(op.f("ix_queue_dnis_queue_id"), table_name="queue_dnis")
    op.drop_table("queue_dnis")
    op.drop_index(op.f("ix_products_customer_id"), table_name="products")
    op.drop_table("products")
    op.drop_index("ix_interactions_customer_id_at", table_name="interactions")
    op.drop_table("interactions")
    op.drop_index(op.f("ix_customer_phones_customer_id"), table_name="customer_phones")
    op.drop_table("customer_phones")
    op.drop_index("ix_cases_customer_id_opened_at", table_name="cases")
    op.drop_index(
        "ix_cases_customer_id_open", table_name="cases", postgresql_where=sa.text("status = 'open'")
    )
    op.drop_table("cases")
    op.drop_index(op.f("ix_agents_team_id"), table_name="agents")
    op.drop_table("agents")
    op.drop_table("teams")
    op.drop_table("skills")
    op.drop_table("queues")
    op.drop_table("dispositions")
    op.drop_table("customers")
    op.drop_index("ix_calls_result_arrived_at", table_name="calls")
    op.drop_index("ix_calls_queue_id_arrived_at", table_name="calls")
    op.drop_index("ix_calls_caller_arrived_at", table_name="calls")
    op.drop_index("ix_calls_arrived_at_id", table_name="calls")
    op.drop_index("ix_calls_answered_by_arrived_at", table_name="calls")
    op.drop_table("calls")
    op.drop_table("call_events")
