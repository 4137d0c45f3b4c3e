"""The simulator's [acd-connect] echoes the offer id as deploy/asterisk's does: the value
of ACD_OFFER_ID when the Dial started, not a value set while it rang."""

from __future__ import annotations

from cti.simulator import AsteriskSimulator, DeviceProfile
from tests.sim.amiclient import TestClient
from tests.sim.test_behaviour import _route


async def test_dial_result_echoes_the_offer_id_set_before_the_dial(
    pjsip_sim: AsteriskSimulator,
) -> None:
    sim = pjsip_sim
    sim.set_device("PJSIP/1600", DeviceProfile(answer_prob=0.0))
    c = await TestClient.connect(sim.port)
    await c.login()
    uid = sim.place_call(dnis="5000", caller_num="13800138000")
    hold = await c.wait_event(lambda m: m.get("UserEvent") == "ACDHold")
    channel = hold.get("Channel")
    await c.action("Setvar", [("Channel", channel), ("Variable", "ACD_OFFER_ID"), ("Value", "o.1")])
    await _route(c, channel, "PJSIP/1600", "1600", ring_timeout="1")
    await c.wait_event(lambda m: m.get("Event") == "DialBegin" and m.get("Uniqueid") == uid)
    # The next offer's Setvar lands while the first still rings: the echo keeps "o.1".
    await c.action("Setvar", [("Channel", channel), ("Variable", "ACD_OFFER_ID"), ("Value", "o.2")])
    result = await c.wait_event(lambda m: m.get("UserEvent") == "ACDDialResult")
    assert result.get("DialStatus") == "NOANSWER"
    assert result.get("OfferId") == "o.1"
    await c.close()
