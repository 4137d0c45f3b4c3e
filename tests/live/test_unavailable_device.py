"""A device that fails at once (CHANUNAVAIL right after the offer) is not retried in a
loop: each failure counts as a miss, and after ``max_missed`` in a row the agent is
auto-paused with reason ``chanunavail`` and offered nothing more (real service,
simulator device unavailable)."""

from __future__ import annotations

import asyncio

from cti.simulator import DeviceProfile
from tests.live.conftest import PLAIN_PHONE, Service
from tests.live.test_calls import ready_agent
from tests.polling import wait_for


async def test_unavailable_device_auto_pauses_its_agent(service: Service, agents: object) -> None:
    (a,) = agents(1)  # type: ignore[operator]
    sim = service.sims[0]
    sim.set_device(f"PJSIP/{a}", DeviceProfile(unavailable=True))
    await ready_agent(service, a)
    sim.place_call(dnis="5000", caller_num=PLAIN_PHONE, patience_s=60.0)

    async def paused() -> dict[str, object] | None:
        view = await service.agent_state(a)
        return view if view["state"] == "paused" else None

    view = await wait_for(paused, 30.0, what=f"agent {a} auto-paused")
    assert view["reason"] == "chanunavail", view
    missed = view["missed_in_row"]
    assert isinstance(missed, int) and missed >= 1
    # The caller still waits, and the paused agent is not offered again.
    await asyncio.sleep(1.0)
    again = await service.agent_state(a)
    assert again["state"] == "paused" and again["missed_in_row"] == missed, again
