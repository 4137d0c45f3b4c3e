"""The cluster view, read from the database (every process answers the same)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.ha.schemas import ClusterRead, LeaseRead, MemberRead, TakeoverRead

_LEASE = sa.text(
    """
    SELECT name, holder, token, acquired_at, renewed_at, expires_at,
           extract(epoch FROM now() - acquired_at)::float8 AS age_s,
           extract(epoch FROM expires_at - now())::float8 AS expires_in_s
    FROM ha_lease WHERE name = :name
    """
)
_MEMBERS = sa.text(
    """
    SELECT member, host, pid, address, role, token, started_at, heartbeat_at,
           extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age_s
    FROM ha_members ORDER BY started_at, member
    """
)
_TAKEOVERS = sa.text(
    """
    SELECT token, holder, previous_holder, reason, at, expired_for_s, routing_at,
           extract(epoch FROM routing_at - at)::float8 AS routing_after_s
    FROM ha_takeovers WHERE lease_name = :name ORDER BY id DESC LIMIT :limit
    """
)


async def cluster_view(
    session: AsyncSession,
    *,
    lease_name: str,
    lease_ttl_s: float,
    this_member: str | None,
    takeovers: int = 20,
) -> ClusterRead:
    row = (await session.execute(_LEASE, {"name": lease_name})).mappings().first()
    lease = LeaseRead.model_validate(dict(row)) if row is not None else None
    leader = (
        lease.holder
        if lease is not None and lease.holder is not None and lease.expires_in_s > 0
        else None
    )
    members = [
        MemberRead.model_validate(
            {
                **m,
                "alive": m["role"] != "stopped" and m["heartbeat_age_s"] < 3 * lease_ttl_s,
                "leader": m["member"] == leader,
            }
        )
        for m in (await session.execute(_MEMBERS)).mappings()
    ]
    history = [
        TakeoverRead.model_validate(dict(t))
        for t in (
            await session.execute(_TAKEOVERS, {"name": lease_name, "limit": takeovers})
        ).mappings()
    ]
    return ClusterRead(
        this_member=this_member, leader=leader, lease=lease, members=members, takeovers=history
    )
