"""``GET /api/v1/cluster``: the service processes, the lease and the last takeovers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class LeaseRead(BaseModel):
    name: str
    holder: str | None
    token: int
    acquired_at: datetime | None
    renewed_at: datetime | None
    expires_at: datetime
    age_s: float | None  # since the holder acquired it
    expires_in_s: float  # negative: expired (or released) that long ago


class MemberRead(BaseModel):
    member: str
    host: str
    pid: int
    address: str | None
    role: str  # leader / standby / stopped (as the member last said)
    token: int | None
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_s: float
    alive: bool  # heartbeat within three lease lifetimes
    leader: bool  # holds the unexpired lease now


class TakeoverRead(BaseModel):
    token: int
    holder: str
    previous_holder: str | None
    reason: str  # free / released / expired
    at: datetime
    expired_for_s: float | None  # how long the lease had been expired when taken
    routing_at: datetime | None  # when the new leader's live runtime was running
    routing_after_s: float | None


class ClusterRead(BaseModel):
    this_member: str | None
    leader: str | None
    lease: LeaseRead | None
    members: list[MemberRead]
    takeovers: list[TakeoverRead]
