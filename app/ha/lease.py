"""The lease in PostgreSQL: acquire, renew, release, heartbeat (one asyncpg connection).

Why a lease row and not an advisory lock (docs/ha.md): the row carries a fencing token
that only grows, so any other transaction can check "is (holder, token) still the lease"
(``FENCE_SQL``) and be ordered against a takeover by the row lock; and expiry is on the
database's clock, so no two processes' clocks are ever compared.  An advisory lock lives
as long as its session: a stalled holder whose TCP connection stays up keeps it forever,
and a holder cut off from the database cannot know when the server gave it up.

Every statement compares ``expires_at`` with ``now()`` of the same transaction: the
lease ends at one instant on one clock for everybody.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_ENSURE = """
INSERT INTO ha_lease (name, token, expires_at) VALUES ($1, 0, now())
ON CONFLICT (name) DO NOTHING
"""

_LOCK = """
SELECT holder, token, extract(epoch FROM now() - expires_at)::float8 AS expired_for
FROM ha_lease WHERE name = $1 FOR UPDATE
"""

_TAKE = """
UPDATE ha_lease SET holder = $2, token = token + 1, acquired_at = now(), renewed_at = now(),
    expires_at = now() + make_interval(secs => $3)
WHERE name = $1 RETURNING token
"""

_PREVIOUS = """
SELECT holder FROM ha_takeovers WHERE lease_name = $1 AND token = $2 ORDER BY id DESC LIMIT 1
"""

_LOG_TAKEOVER = """
INSERT INTO ha_takeovers (lease_name, token, holder, previous_holder, reason, expired_for_s)
VALUES ($1, $2, $3, $4, $5, $6)
"""

_RENEW = """
UPDATE ha_lease SET renewed_at = now(), expires_at = now() + make_interval(secs => $4)
WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > now()
RETURNING token
"""

_RELEASE = """
UPDATE ha_lease SET holder = NULL, expires_at = now()
WHERE name = $1 AND holder = $2 AND token = $3
"""

_ROUTING = """
UPDATE ha_takeovers SET routing_at = now() WHERE lease_name = $1 AND token = $2
"""

_HEARTBEAT = """
INSERT INTO ha_members (member, host, pid, address, role, token, started_at, heartbeat_at)
VALUES ($1, $2, $3, $4, $5, $6, now(), now())
ON CONFLICT (member) DO UPDATE SET role = EXCLUDED.role, token = EXCLUDED.token,
    address = EXCLUDED.address, heartbeat_at = now()
"""

_PRUNE = "DELETE FROM ha_members WHERE heartbeat_at < now() - make_interval(secs => $1)"

FENCE_SQL = """
SELECT 1 FROM ha_lease
WHERE name = :name AND holder = :holder AND token = :token AND expires_at > now()
FOR SHARE
"""
"""The write fence: run last in a live-state transaction, right before its commit.
``FOR SHARE`` makes a takeover (``FOR UPDATE``) wait for the write's commit, and the
write refuse (roll back) once the takeover committed: one order for both, decided by
the database.  Taken last, the share lock never makes a renewal wait for a long write."""


@dataclass(frozen=True, slots=True)
class Acquired:
    token: int
    previous_holder: str | None
    reason: str  # "free" (never held), "released", "expired"
    expired_for_s: float | None


@dataclass(frozen=True, slots=True)
class Held:
    """Somebody else holds the lease; it expires in ``expires_in_s`` (database clock)."""

    holder: str | None
    expires_in_s: float


async def acquire(conn: Any, name: str, holder: str, ttl_s: float) -> Acquired | Held:
    """Take the lease if it is free, released or expired (a new token); else who has it."""
    async with conn.transaction():
        await conn.execute(_ENSURE, name)
        row = await conn.fetchrow(_LOCK, name)
        current, token, expired_for = row["holder"], int(row["token"]), row["expired_for"]
        if current is not None and expired_for < 0:
            return Held(current, -float(expired_for))
        new_token = int(await conn.fetchval(_TAKE, name, holder, ttl_s))
        if current is not None:
            reason, previous = "expired", current
            expired_s: float | None = float(expired_for)
        elif token == 0:
            reason, previous, expired_s = "free", None, None
        else:
            reason, expired_s = "released", None
            previous = await conn.fetchval(_PREVIOUS, name, token)
        await conn.execute(_LOG_TAKEOVER, name, new_token, holder, previous, reason, expired_s)
        return Acquired(new_token, previous, reason, expired_s)


async def renew(conn: Any, name: str, holder: str, token: int, ttl_s: float) -> bool:
    """Extend the lease by ``ttl_s`` from now; ``False``: it is no longer ours."""
    return await conn.fetchval(_RENEW, name, holder, token, ttl_s) is not None


async def release(conn: Any, name: str, holder: str, token: int) -> None:
    """Give the lease up at once (a clean stop): a standby takes it on its next poll."""
    await conn.execute(_RELEASE, name, holder, token)


async def routing_resumed(conn: Any, name: str, token: int) -> None:
    await conn.execute(_ROUTING, name, token)


async def heartbeat(
    conn: Any,
    *,
    member: str,
    host: str,
    pid: int,
    address: str | None,
    role: str,
    token: int | None,
    prune_after_s: float,
) -> None:
    await conn.execute(_HEARTBEAT, member, host, pid, address, role, token)
    await conn.execute(_PRUNE, prune_after_s)
