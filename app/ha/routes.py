"""``GET /api/v1/cluster`` (admin): who runs, who leads, the lease, the takeovers."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.auth import Role, require_role
from app.deps import SessionDep, SettingsDep
from app.ha.schemas import ClusterRead
from app.ha.service import cluster_view

router = APIRouter(tags=["cluster"])


@router.get(
    "/cluster",
    summary="Service processes, the leader, the lease and the last takeovers",
    dependencies=[require_role(Role.ADMIN)],
)
async def get_cluster(request: Request, session: SessionDep, settings: SettingsDep) -> ClusterRead:
    leadership = getattr(request.app.state, "leadership", None)
    return await cluster_view(
        session,
        lease_name=settings.ha.lease_name,
        lease_ttl_s=settings.ha.lease_ttl_s,
        this_member=leadership.member if leadership is not None else None,
    )
