"""The tables of leadership: the lease, the members' heartbeats, the takeovers.

Invariants:
- ``ha_lease`` has one row per lease name.  ``token`` only grows: every change of
  holder increments it, so a (holder, token) pair names one tenure and a write
  conditioned on it is refused once the lease moved on.  ``expires_at`` is on the
  database's clock (``now()``), never a process's.
- ``ha_members``: one row per process that ever ran (``member``), its heartbeat
  refreshed while it runs; rows of processes gone long ago are pruned by the living.
- ``ha_takeovers`` is append-only: who took the lease from whom, why, and when routing
  resumed (``routing_at``).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.models import Base

_NOW = sa.text("now()")


class HaLease(Base):
    __tablename__ = "ha_lease"

    name: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    holder: Mapped[str | None] = mapped_column(sa.Text)
    token: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    acquired_at: Mapped[datetime | None] = mapped_column()
    renewed_at: Mapped[datetime | None] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column(server_default=_NOW)


class HaMember(Base):
    __tablename__ = "ha_members"

    member: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    host: Mapped[str] = mapped_column(sa.Text)
    pid: Mapped[int] = mapped_column(sa.Integer)
    address: Mapped[str | None] = mapped_column(sa.Text)
    role: Mapped[str] = mapped_column(sa.Text)  # "leader" / "standby" / "stopped"
    token: Mapped[int | None] = mapped_column(sa.BigInteger)
    started_at: Mapped[datetime] = mapped_column(server_default=_NOW)
    heartbeat_at: Mapped[datetime] = mapped_column(server_default=_NOW)


class HaTakeover(Base):
    __tablename__ = "ha_takeovers"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    lease_name: Mapped[str] = mapped_column(sa.Text)
    token: Mapped[int] = mapped_column(sa.BigInteger)
    holder: Mapped[str] = mapped_column(sa.Text)
    previous_holder: Mapped[str | None] = mapped_column(sa.Text)
    reason: Mapped[str] = mapped_column(sa.Text)  # "free" / "released" / "expired"
    at: Mapped[datetime] = mapped_column(server_default=_NOW)
    expired_for_s: Mapped[float | None] = mapped_column(sa.Float)
    routing_at: Mapped[datetime | None] = mapped_column()
