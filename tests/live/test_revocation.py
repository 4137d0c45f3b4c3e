"""An open websocket of a user whose tokens are revoked is closed with 4401 (real service)."""

from __future__ import annotations

from typing import Any

from app.live.protocol import Close
from tests.live.conftest import Recorder, Service
from tests.polling import wait_for


async def test_agent_socket_closes_with_4401_when_its_user_is_revoked(
    service: Service, agents: Any
) -> None:
    a, b = agents(2)
    revoked = Recorder(await service.ws(f"/ws/agents/{a}", role="agent", agent_id=a))
    other = Recorder(await service.ws(f"/ws/agents/{b}", role="agent", agent_id=b))
    wall = Recorder(await service.ws("/ws/wallboard"))
    await revoked.wait("hello")
    await other.wait("hello")
    await wall.wait("snapshot")
    async with service.client("admin") as admin:
        r = await admin.patch(f"/api/v1/users/{a}", json={"password": "changed-password"})
        assert r.status_code == 200, r.text
    await wait_for(lambda: revoked.closed is not None, 5.0, what="revoked socket closed")
    assert revoked.closed is not None and revoked.closed[0] == Close.UNAUTHORIZED
    # Other users' sockets stay open.
    assert other.closed is None and wall.closed is None
    await other.close()
    await wall.close()
    # The same token cannot open a new one either.
    again = Recorder(await service.ws(f"/ws/agents/{a}", role="agent", agent_id=a))
    await wait_for(lambda: again.closed is not None, 5.0, what="handshake refused")
    assert again.closed is not None and again.closed[0] == Close.UNAUTHORIZED
    async with service.client("agent", a) as c:
        r = await c.get(f"/api/v1/agents/{a}/state")
        assert r.status_code == 401
