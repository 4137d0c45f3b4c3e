"""The relational schema: configuration, CRM, and the call-outcome log.

Invariants:
- ``agents.id`` is both the routing ``agent_id`` (as ``str(id)``) and the Asterisk
  extension dialled in the connect context, so its identity starts at 1001.
- ``queues.id`` is the routing ``queue_id`` (as ``str(id)``).  A DNIS belongs to exactly
  one queue (``queue_dnis.dnis`` is the primary key).
- ``customer_phones.phone`` holds normalized digits (see ``app.crm.normalize_phone``) and
  is the primary key: one number names one customer; a lookup is one index probe.
- ``calls`` has exactly one row per call, keyed by ``call_id`` ("<server>/<uniqueid>");
  the outcome writer upserts on it, so replays never duplicate.  ``calls`` carries no
  foreign keys on purpose: the outcome log must be writable even when the queue or agent
  it names was deleted meanwhile, and it outlives configuration (kept two years).
- ``call_events`` is append-only; ``(call_id, at, kind)`` is unique so a replayed batch is
  a no-op.  It is partition-ready: see ``CallEvent``.
- ``agent_sessions`` and ``live_calls`` hold the *live* routing state so that a restart of
  the service loses nothing (see ``app.live.persist``): one row per agent that ever
  logged in (latest state wins) and one row per call in progress (deleted when the call
  ends and its ``calls`` row is written).  Ids there are routing ids (text), with no
  foreign keys: the live state must stay writable whatever the configuration does.
- Every timestamp is ``timestamptz``; every constraint is named by ``NAMING_CONVENTION``
  so migrations can refer to them.

Enumerations are stored as ``varchar`` plus a CHECK constraint (``native_enum=False``)
rather than PostgreSQL enum types: adding a value is then an ordinary constraint change
and COPY needs no type codecs.

``queues.hours`` (``None``: always open)::

    {"timezone": "Asia/Shanghai",
     "weekly": {"mon": [["08:00", "20:00"]], ..., "sun": []}}   # weekday -> open intervals

``queues.escalation`` (list, ordered by ``after_s``; mirrors ``routing.config.EscalationStep``
with queue ids as strings)::

    [{"after_s": 30, "min_level": 2}, {"after_s": 60, "add_queues": ["1"]},
     {"after_s": 120, "overflow": true}]
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from routing.commands import AgentState, CallResult

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: sa.DateTime(timezone=True),
        dict[str, Any]: JSONB,
        list[Any]: JSONB,
    }


class Role(enum.StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class CaseStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class CaseKind(enum.StrEnum):
    COMPLAINT = "complaint"
    REPAIR = "repair"
    INQUIRY = "inquiry"
    CALLBACK = "callback"  # 回访: follow-up after service
    RETURN = "return"


class CaseSeverity(enum.StrEnum):
    NORMAL = "normal"  # resolved the same day
    URGENT = "urgent"  # special / urgent: within 3 days


def _enum(cls: type[enum.StrEnum], name: str) -> sa.Enum:
    """A varchar + CHECK enumeration storing the member *values* ("agent", not "AGENT")."""
    return sa.Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


_NOW = sa.text("now()")


# --- people and configuration ----------------------------------------------------------------


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text, unique=True)
    description: Mapped[str | None] = mapped_column(sa.Text)


class Skill(Base):
    __tablename__ = "skills"

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text, unique=True)  # the routing skill name
    description: Mapped[str | None] = mapped_column(sa.Text)


class Agent(Base):
    """A seat.  ``id`` is the routing agent id and the extension (starts at 1001)."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(start=1001), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    team_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    # The agent's own phone, the one its login without a device id dials: a dial string the
    # device rules accept (``app.devices``), e.g. "PJSIP/1001" or "Local/1001@agents".
    device: Mapped[str] = mapped_column(sa.Text)
    max_missed: Mapped[int] = mapped_column(sa.Integer, server_default="3")
    active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)

    team: Mapped[Team | None] = relationship(lazy="raise")
    skills: Mapped[list[AgentSkill]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )
    queue_links: Mapped[list[AgentQueue]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (sa.CheckConstraint("max_missed >= 1", name="max_missed_positive"),)


# The one charset a stored endpoint may use (``app.devices`` checks the rest): no Dial
# option or multi-dial separator (``,`` ``&`` ``^`` ``(`` ``)`` ``/``), no URI, no host.
DEVICE_TECHNOLOGIES = ("PJSIP", "SIP", "IAX2", "DAHDI", "Local")
DEVICE_ENDPOINT_SQL = "^[A-Za-z0-9_-]+(@[A-Za-z0-9_-]+)?$"


class Device(Base):
    """A phone agents may log in on: ``technology/endpoint`` is what Asterisk dials.

    Registered by admins; ``agent_id`` is the agent (seat) that may use it, ``None`` for a
    device nobody may use yet.  Technology and endpoint are checked by ``app.devices``;
    the CHECK constraints keep separators out of the table even for SQL writers.
    """

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    technology: Mapped[str] = mapped_column(sa.Text)
    endpoint: Mapped[str] = mapped_column(sa.Text)
    label: Mapped[str | None] = mapped_column(sa.Text)
    agent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("agents.id", ondelete="SET NULL"), index=True
    )
    active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)

    __table_args__ = (
        sa.UniqueConstraint("technology", "endpoint", name="uq_devices_technology_endpoint"),
        sa.CheckConstraint(
            "technology IN (" + ", ".join(f"'{t}'" for t in DEVICE_TECHNOLOGIES) + ")",
            name="known_technology",
        ),
        sa.CheckConstraint(f"endpoint ~ '{DEVICE_ENDPOINT_SQL}'", name="endpoint_charset"),
    )

    @property
    def dial(self) -> str:
        return f"{self.technology}/{self.endpoint}"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(sa.Text, unique=True)
    password_hash: Mapped[str] = mapped_column(sa.Text)  # argon2id, never logged
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    agent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("agents.id", ondelete="SET NULL"), index=True
    )
    active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)
    # Issued tokens carry it (``ver``); raised to revoke them all (``app.auth.TokenVersions``).
    token_version: Mapped[int] = mapped_column(sa.Integer, server_default="0")

    agent: Mapped[Agent | None] = relationship(lazy="raise")


class AgentSkill(Base):
    __tablename__ = "agent_skills"

    agent_id: Mapped[int] = mapped_column(
        sa.ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[int] = mapped_column(
        sa.ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    level: Mapped[int] = mapped_column(sa.SmallInteger)

    skill: Mapped[Skill] = relationship(lazy="raise")

    __table_args__ = (sa.CheckConstraint("level BETWEEN 1 AND 5", name="level_1_to_5"),)


class Queue(Base):
    """A queue / service line (routing ``QueueConfig``; ``id`` is the queue id)."""

    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text, unique=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    priority: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    weight: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    sl_target_s: Mapped[float] = mapped_column(sa.Double, server_default="15")
    sl_target_pct: Mapped[float] = mapped_column(sa.Double, server_default="0.8")
    ring_timeout_s: Mapped[float] = mapped_column(sa.Double, server_default="15")
    wrapup_s: Mapped[float] = mapped_column(sa.Double, server_default="10")
    max_wait_s: Mapped[float | None] = mapped_column(sa.Double)
    max_len: Mapped[int | None] = mapped_column(sa.Integer)
    # Overflow to another queue, or to an external target "ext:<context>,<exten>".
    overflow_queue_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("queues.id", ondelete="SET NULL")
    )
    overflow_target: Mapped[str | None] = mapped_column(sa.Text)
    hours: Mapped[dict[str, Any] | None] = mapped_column()  # see module docstring
    escalation: Mapped[list[Any]] = mapped_column(server_default=sa.text("'[]'::jsonb"))
    vip_boost: Mapped[int] = mapped_column(sa.Integer, server_default="10")
    entitled_boost: Mapped[int] = mapped_column(sa.Integer, server_default="5")
    active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)

    dnis: Mapped[list[QueueDnis]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )
    skills: Mapped[list[QueueSkill]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        sa.CheckConstraint("sl_target_pct > 0 AND sl_target_pct <= 1", name="sl_target_pct_range"),
        sa.CheckConstraint("ring_timeout_s > 0", name="ring_timeout_positive"),
        sa.CheckConstraint("wrapup_s >= 0", name="wrapup_non_negative"),
        sa.CheckConstraint(
            "overflow_queue_id IS NULL OR overflow_target IS NULL", name="one_overflow"
        ),
    )


class QueueDnis(Base):
    """A dialled number (DNIS) routed to a queue; one number, one queue."""

    __tablename__ = "queue_dnis"

    dnis: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    queue_id: Mapped[int] = mapped_column(
        sa.ForeignKey("queues.id", ondelete="CASCADE"), index=True
    )


class QueueSkill(Base):
    __tablename__ = "queue_skills"

    queue_id: Mapped[int] = mapped_column(
        sa.ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[int] = mapped_column(
        sa.ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    min_level: Mapped[int] = mapped_column(sa.SmallInteger, server_default="1")

    skill: Mapped[Skill] = relationship(lazy="raise")

    __table_args__ = (sa.CheckConstraint("min_level BETWEEN 1 AND 5", name="min_level_1_to_5"),)


class AgentQueue(Base):
    """Queue membership: the agent may take calls of this queue."""

    __tablename__ = "agent_queues"

    agent_id: Mapped[int] = mapped_column(
        sa.ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    queue_id: Mapped[int] = mapped_column(
        sa.ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Disposition(Base):
    __tablename__ = "dispositions"

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(sa.Text, unique=True)
    label: Mapped[str] = mapped_column(sa.Text)
    active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())


# --- CRM ------------------------------------------------------------------------------------


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    vip: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())  # 大客户
    member: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(server_default=_NOW)


# Look-up by name prefix, case-insensitive: ``lower(name) LIKE 'abc%' ORDER BY ..., id``.
sa.Index(
    "ix_customers_name_prefix",
    sa.func.lower(Customer.name).label("lower_name"),
    Customer.id,
    postgresql_ops={"lower_name": "text_pattern_ops"},
)


class CustomerPhone(Base):
    """A contact number.  ``phone`` is normalized digits and unique (the primary key)."""

    __tablename__ = "customer_phones"

    phone: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str | None] = mapped_column(sa.Text)  # "mobile", "home", "office"


class Product(Base):
    """A purchased product.  Support is free within 90 days of ``purchase_date`` or while a
    protection plan runs (until ``protection_plan_end`` inclusive)."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    model: Mapped[str] = mapped_column(sa.Text)
    sku: Mapped[str] = mapped_column(sa.Text)
    serial: Mapped[str | None] = mapped_column(sa.Text, index=True)
    purchase_date: Mapped[date] = mapped_column(sa.Date)
    protection_plan_end: Mapped[date | None] = mapped_column(sa.Date)


class Interaction(Base):
    """A past contact with the customer (calls, emails, visits...)."""

    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column()
    channel: Mapped[str] = mapped_column(sa.Text)  # "phone", "email", "wechat", "visit"
    # No foreign key: history outlives the agent row.
    agent_id: Mapped[int | None] = mapped_column(sa.Integer)
    summary: Mapped[str] = mapped_column(sa.Text)
    # A handled call's contact (app/customers/interactions.py): one per call, so replays
    # and restarts of the outcome writer never write it twice.
    call_id: Mapped[str | None] = mapped_column(sa.Text)
    queue_id: Mapped[int | None] = mapped_column(sa.Integer)
    result: Mapped[str | None] = mapped_column(sa.Text)
    disposition_code: Mapped[str | None] = mapped_column(sa.Text)
    notes: Mapped[str | None] = mapped_column(sa.Text)
    case_id: Mapped[int | None] = mapped_column(sa.BigInteger)  # no FK: cases may be purged

    __table_args__ = (
        # The screen pop reads "last N interactions of this customer" and counts the recent
        # ones (repeat-caller mark): index range scans.
        sa.Index("ix_interactions_customer_id_at", "customer_id", sa.text("at DESC")),
        sa.UniqueConstraint("call_id", name="uq_interactions_call_id"),
    )


class Case(Base):
    """A service case (complaint, repair, follow-up...).

    ``status`` (open / closed) is what the screen pop and retention read; ``stage`` is the
    workflow (``app.cases.stages``), and ``status`` follows it (closed and archived are
    closed).  ``escalation_level`` climbs owner (0) -> supervisor (1) -> manager (2);
    ``next_escalation_at`` is the clock the scheduler fires (``NULL``: nothing pending).
    """

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"))
    opened_at: Mapped[datetime] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[CaseStatus] = mapped_column(
        _enum(CaseStatus, "case_status"), server_default=CaseStatus.OPEN.value
    )
    kind: Mapped[CaseKind] = mapped_column(_enum(CaseKind, "case_kind"))
    severity: Mapped[CaseSeverity] = mapped_column(
        _enum(CaseSeverity, "case_severity"), server_default=CaseSeverity.NORMAL.value
    )
    subject: Mapped[str] = mapped_column(sa.Text)
    due_at: Mapped[datetime | None] = mapped_column()
    stage: Mapped[str] = mapped_column(sa.Text, server_default="registered")
    category_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("case_categories.id", ondelete="RESTRICT")
    )
    channel: Mapped[str] = mapped_column(sa.Text, server_default="phone")
    valid: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    # Passed to another department (not within the center's scope): the longer clock.
    referred: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    owner_user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    team_id: Mapped[int | None] = mapped_column(sa.ForeignKey("teams.id", ondelete="SET NULL"))
    department: Mapped[str | None] = mapped_column(sa.Text)
    call_id: Mapped[str | None] = mapped_column(sa.Text)  # the call it was opened from
    notes: Mapped[str | None] = mapped_column(sa.Text)
    escalation_level: Mapped[int] = mapped_column(sa.SmallInteger, server_default="0")
    next_escalation_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        # Only open cases are read on the hot path (screen pop); closed ones are history.
        sa.Index(
            "ix_cases_customer_id_open",
            "customer_id",
            postgresql_where=sa.text("status = 'open'"),
        ),
        sa.Index("ix_cases_customer_id_opened_at", "customer_id", "opened_at"),
        # The escalation scheduler claims the earliest pending clocks.
        sa.Index(
            "ix_cases_next_escalation_at",
            "next_escalation_at",
            postgresql_where=sa.text("next_escalation_at IS NOT NULL"),
        ),
        sa.Index(
            "ix_cases_owner_open", "owner_user_id", postgresql_where=sa.text("status = 'open'")
        ),
        sa.Index("ix_cases_team_open", "team_id", postgresql_where=sa.text("status = 'open'")),
        sa.CheckConstraint(
            "stage IN ('registered', 'accepted', 'handling', 'replied', 'closed', 'archived')",
            name="known_stage",
        ),
        sa.CheckConstraint(
            "channel IN ('phone', 'email', 'letter', 'visit', 'other')", name="known_channel"
        ),
        sa.CheckConstraint("escalation_level BETWEEN 0 AND 2", name="escalation_level_0_to_2"),
    )


class CaseCategory(Base):
    """The configurable complaint taxonomy (seeded with the center's classes)."""

    __tablename__ = "case_categories"

    id: Mapped[int] = mapped_column(sa.Integer, sa.Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(sa.Text, unique=True)
    name: Mapped[str] = mapped_column(sa.Text)
    active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())


class CaseEvent(Base):
    """One change of a case: who, when, what and why (the ladder is its escalations)."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column()
    user_id: Mapped[int | None] = mapped_column(sa.Integer)  # None: the scheduler
    kind: Mapped[str] = mapped_column(sa.Text)  # created, stage, assigned, escalated
    from_stage: Mapped[str | None] = mapped_column(sa.Text)
    to_stage: Mapped[str | None] = mapped_column(sa.Text)
    level: Mapped[int | None] = mapped_column(sa.SmallInteger)
    reason: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (sa.Index("ix_case_events_case_id_at", "case_id", "at"),)


# --- call outcomes --------------------------------------------------------------------------


class Call(Base):
    """One row per call (the durable outcome).  Upserted on ``call_id``."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    call_id: Mapped[str] = mapped_column(sa.Text, unique=True)  # "<server>/<uniqueid>"
    server: Mapped[str] = mapped_column(sa.Text)
    uniqueid: Mapped[str] = mapped_column(sa.Text)
    linkedid: Mapped[str | None] = mapped_column(sa.Text)
    caller: Mapped[str] = mapped_column(sa.Text)
    dnis: Mapped[str | None] = mapped_column(sa.Text)
    queue_id: Mapped[int | None] = mapped_column(sa.Integer)
    agents_offered: Mapped[list[int]] = mapped_column(
        ARRAY(sa.Integer), server_default=sa.text("'{}'::integer[]")
    )
    answered_by: Mapped[int | None] = mapped_column(sa.Integer)
    arrived_at: Mapped[datetime] = mapped_column()
    first_offered_at: Mapped[datetime | None] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    wrapup_ended_at: Mapped[datetime | None] = mapped_column()
    wait_s: Mapped[float | None] = mapped_column(sa.Double)  # arrival -> answer or end
    ring_s: Mapped[float | None] = mapped_column(sa.Double)  # first offer -> answer
    talk_s: Mapped[float | None] = mapped_column(sa.Double)  # answer -> end
    wrapup_s: Mapped[float | None] = mapped_column(sa.Double)  # end -> wrap-up end
    result: Mapped[CallResult] = mapped_column(_enum(CallResult, "call_result"))
    rona_count: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    vip: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    entitled: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    overflow_target: Mapped[str | None] = mapped_column(sa.Text)
    # No foreign key to dispositions: codes may be retired while old calls keep theirs.
    disposition_code: Mapped[str | None] = mapped_column(sa.Text)
    notes: Mapped[str | None] = mapped_column(sa.Text)
    reason: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (
        # Cursor pagination "ORDER BY arrived_at DESC, id DESC" and date-range filters.
        sa.Index("ix_calls_arrived_at_id", "arrived_at", "id"),
        sa.Index("ix_calls_queue_id_arrived_at", "queue_id", "arrived_at"),
        sa.Index("ix_calls_answered_by_arrived_at", "answered_by", "arrived_at"),
        sa.Index("ix_calls_result_arrived_at", "result", "arrived_at"),
        sa.Index("ix_calls_caller_arrived_at", "caller", "arrived_at"),
    )


class CallEvent(Base):
    """Append-only call lifecycle log (queued, offered, rona, answered, ended, ...).

    Partition-ready: the primary key is ``(at, id)`` and the only unique index,
    ``(call_id, at, kind)``, contains ``at``, because PostgreSQL requires every unique
    index of a partitioned table to include the partition key.  To partition by month:
    create ``call_events_new (LIKE call_events INCLUDING ALL) PARTITION BY RANGE (at)``,
    create monthly partitions (``FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')``),
    copy rows across, swap names in one transaction; retention then becomes
    ``DROP TABLE call_events_YYYY_MM`` instead of a DELETE.
    """

    __tablename__ = "call_events"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity())
    at: Mapped[datetime] = mapped_column()
    call_id: Mapped[str] = mapped_column(sa.Text)
    kind: Mapped[str] = mapped_column(sa.Text)
    agent_id: Mapped[int | None] = mapped_column(sa.Integer)
    data: Mapped[dict[str, Any]] = mapped_column(server_default=sa.text("'{}'::jsonb"))

    __table_args__ = (
        sa.PrimaryKeyConstraint("at", "id", name="pk_call_events"),
        # Leading call_id: serves "events of this call"; unique: replays are no-ops.
        sa.UniqueConstraint("call_id", "at", "kind", name="uq_call_events_call_id_at_kind"),
    )


# --- live state (kept across restarts of the service) -----------------------------------------


class AgentSession(Base):
    """An agent's live routing state, rewritten on every change (latest state wins).

    Restored at start-up: READY / PAUSED / WRAP_UP as they were; RESERVED / ON_CALL once
    Asterisk shows the call (``call_id``), else READY or the pending pause.
    """

    __tablename__ = "agent_sessions"

    agent_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)  # routing agent id
    device: Mapped[str | None] = mapped_column(sa.Text)
    state: Mapped[AgentState] = mapped_column(_enum(AgentState, "agent_state"))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    since: Mapped[datetime | None] = mapped_column()
    idle_since: Mapped[datetime | None] = mapped_column()
    call_id: Mapped[str | None] = mapped_column(sa.Text)
    pending: Mapped[str | None] = mapped_column(sa.Text)  # "pause:<reason>" / "logout"
    until: Mapped[datetime | None] = mapped_column()  # end of the reservation / wrap-up
    missed_in_row: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(server_default=_NOW)


class LiveCall(Base):
    """A call in progress: enough to adopt it with its history after a restart."""

    __tablename__ = "live_calls"

    call_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)  # "<server>/<uniqueid>"
    server: Mapped[str] = mapped_column(sa.Text)
    uniqueid: Mapped[str] = mapped_column(sa.Text)
    linkedid: Mapped[str | None] = mapped_column(sa.Text)
    channel: Mapped[str | None] = mapped_column(sa.Text)
    caller: Mapped[str] = mapped_column(sa.Text)
    caller_name: Mapped[str | None] = mapped_column(sa.Text)
    dnis: Mapped[str | None] = mapped_column(sa.Text)
    queue_id: Mapped[str] = mapped_column(sa.Text)  # routing queue id
    # "classifying" (CRM lookup running), "waiting", "offered" or "connected".
    state: Mapped[str] = mapped_column(sa.Text)
    agent_id: Mapped[str | None] = mapped_column(sa.Text)  # ringing / connected agent
    arrived_at: Mapped[datetime] = mapped_column()
    queued_at: Mapped[datetime | None] = mapped_column()
    first_offered_at: Mapped[datetime | None] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()
    agents_offered: Mapped[list[str]] = mapped_column(
        ARRAY(sa.Text), server_default=sa.text("'{}'::text[]")
    )
    rona_count: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    vip: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    entitled: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    updated_at: Mapped[datetime] = mapped_column(server_default=_NOW)

    __table_args__ = (
        sa.CheckConstraint(
            "state IN ('classifying', 'waiting', 'offered', 'connected')", name="state_known"
        ),
    )
