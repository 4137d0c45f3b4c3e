"""End to end: AMI simulators on loopback -> the real service -> PostgreSQL and websockets.

Each test drives real calls through ``AsteriskSimulator.place_call`` and asserts the final
call outcome rows and agent states; asynchronous outcomes are polled with timeouts.
"""

from __future__ import annotations

from typing import Any

from cti.simulator import DeviceProfile
from tests.live.conftest import PLAIN_PHONE, VIP_PHONE, AmiObserver, Recorder, Service
from tests.polling import wait_for


async def ready_agent(svc: Service, agent_id: str) -> None:
    async with svc.client("agent", agent_id) as c:
        r = await c.post(f"/api/v1/agents/{agent_id}/login", json={})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "paused"
        r = await c.post(f"/api/v1/agents/{agent_id}/ready")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "ready"


def call_id_of(svc: Service, sim_index: int, uniqueid: str) -> str:
    return f"{svc.sims[sim_index].name}/{uniqueid}"


async def outcome(svc: Service, call_id: str, timeout: float = 30.0, **expect: Any) -> Any:
    async def check() -> Any:
        row = await svc.call_row(call_id)
        if row is None:
            return None
        return row if all(getattr(row, k) == v for k, v in expect.items()) else None

    return await wait_for(check, timeout, what=f"outcome of {call_id} with {expect}")


async def state_is(svc: Service, agent_id: str, state: str, timeout: float = 30.0) -> None:
    async def check() -> bool:
        return bool((await svc.agent_state(agent_id))["state"] == state)

    await wait_for(check, timeout, what=f"agent {agent_id} {state}")


async def test_answered_call_pop_before_ring_outcome_and_wrapup(
    service: Service, agents: Any
) -> None:
    (a,) = agents(1)
    sim = service.sims[0]
    sim.set_device(f"PJSIP/{a}", DeviceProfile(ring_s=0.5, talk_s=1.0, agent_hangs_up_prob=1.0))
    observer = AmiObserver(sim)
    await observer.start()
    ws = Recorder(await service.ws(f"/ws/agents/{a}", role="agent", agent_id=a))
    try:
        hello = await ws.wait("hello")
        assert hello["state"]["state"] == "logged_out"
        await ready_agent(service, a)
        uid = sim.place_call(dnis="5002", caller_num=VIP_PHONE, caller_name="Zhang Wei")
        call_id = call_id_of(service, 0, uid)

        offer = await ws.wait("offer")
        assert offer["call"]["call_id"] == call_id
        assert offer["call"]["vip"] is True and offer["call"]["entitled"] is True
        assert offer["pop"]["customer"]["name"] == "张伟"
        assert offer["pop"]["entitled"] is True
        assert offer["ring_timeout_s"] == 2.0
        # The screen pop is on the agent's socket before the phone starts ringing.
        offer_at = ws.of("offer")[0][0]
        rang = await wait_for(lambda: observer.rang(f"PJSIP/{a}"), what="DialBegin")
        assert offer_at < rang[0]

        await ws.wait("call", event="answered", call_id=call_id)
        await ws.wait("call", event="ended", call_id=call_id)
        await state_is(service, a, "wrap_up")  # queue 3 has a 60 s wrap-up

        async with service.client("agent", a) as c:
            r = await c.post(
                f"/api/v1/agents/{a}/wrapup",
                json={"disposition_code": "resolved", "notes": "explained delivery"},
            )
            assert r.status_code == 200, r.text
            assert r.json()["state"] == "ready"
            assert r.json()["wrapped_call_id"] == call_id

        row = await outcome(service, call_id, disposition_code="resolved")
        assert row.server == "pbx1"
        assert row.uniqueid == uid
        assert row.linkedid
        assert row.caller == VIP_PHONE
        assert row.dnis == "5002"
        assert row.queue_id == 3
        assert row.agents_offered == [int(a)]
        assert row.answered_by == int(a)
        assert row.result == "answered"
        assert row.rona_count == 0
        assert row.vip is True and row.entitled is True
        assert row.notes == "explained delivery"
        assert row.arrived_at <= row.first_offered_at <= row.answered_at <= row.ended_at
        assert row.wrapup_ended_at is not None and row.wrapup_ended_at >= row.ended_at
        assert row.wait_s is not None and row.ring_s is not None
        assert row.talk_s is not None and row.talk_s > 0.5
        assert row.wrapup_s is not None
        events = await wait_for(
            lambda: _has_all(service, call_id, {"queued", "offered", "answered", "ended"}),
            what="call events",
        )
        assert events
        lat = service.callcenter.latency_stats()
        assert lat["routing"]["count"] >= 1 and lat["screen_pop"]["count"] >= 1
    finally:
        await ws.close()
        await observer.close()


async def _has_all(svc: Service, call_id: str, kinds: set[str]) -> bool:
    return kinds <= set(await svc.call_events(call_id))


async def test_caller_hangs_up_during_talk(service: Service, agents: Any) -> None:
    (a,) = agents(1)
    sim = service.sims[0]
    sim.set_device(f"PJSIP/{a}", DeviceProfile(ring_s=0.2, talk_s=60.0))
    await ready_agent(service, a)
    uid = sim.place_call(dnis="5000", caller_num=PLAIN_PHONE, patience_s=1.5)
    call_id = call_id_of(service, 0, uid)
    row = await outcome(service, call_id, result="answered")
    assert row.answered_by == int(a)
    assert row.talk_s is not None and row.talk_s < 1.5
    # Queue 1 has a 0.5 s wrap-up: the agent is ready again on its own.
    await state_is(service, a, "ready")

    async def wrapped() -> bool:
        stored = await service.call_row(call_id)
        return stored is not None and stored.wrapup_ended_at is not None

    await wait_for(wrapped, what="wrap-up end recorded")


async def test_rona_then_second_agent(service: Service, agents: Any) -> None:
    a, b = agents(2)
    sim = service.sims[0]
    sim.set_device(f"PJSIP/{a}", DeviceProfile(answer_prob=0.0))  # never answers
    sim.set_device(f"PJSIP/{b}", DeviceProfile(ring_s=0.2, talk_s=0.5))
    await ready_agent(service, a)  # longest idle: offered first
    await ready_agent(service, b)
    uid = sim.place_call(dnis="5000", caller_num=PLAIN_PHONE)
    call_id = call_id_of(service, 0, uid)
    row = await outcome(service, call_id, result="answered")
    assert row.agents_offered == [int(a), int(b)]
    assert row.answered_by == int(b)
    assert row.rona_count == 1
    view = await service.agent_state(a)
    assert view["missed_in_row"] == 1
    assert view["state"] == "ready"


async def test_busy_agent_then_next(service: Service, agents: Any) -> None:
    a, b = agents(2)
    sim = service.sims[0]
    sim.set_device(f"PJSIP/{a}", DeviceProfile(busy=True))
    sim.set_device(f"PJSIP/{b}", DeviceProfile(ring_s=0.2, talk_s=0.5))
    await ready_agent(service, a)
    await ready_agent(service, b)
    uid = sim.place_call(dnis="5001", caller_num=PLAIN_PHONE)
    row = await outcome(service, call_id_of(service, 0, uid), result="answered")
    assert row.agents_offered == [int(a), int(b)]
    assert row.answered_by == int(b)
    assert row.queue_id == 2


async def test_abandon_while_waiting(service: Service, agents: Any) -> None:
    (a,) = agents(1)
    async with service.client("agent", a) as c:
        assert (await c.post(f"/api/v1/agents/{a}/login", json={})).status_code == 200
    # Nobody is ready: the caller waits and gives up after 1 s (a short abandon, < 5 s).
    uid = service.sims[1].place_call(dnis="5000", caller_num="13700137000", patience_s=1.0)
    call_id = call_id_of(service, 1, uid)
    row = await outcome(service, call_id)
    assert row.result == "short_abandoned"
    assert row.server == "pbx2"
    assert row.answered_by is None and row.agents_offered == []
    assert row.wait_s is not None and 0.5 < row.wait_s < 3


async def test_two_servers_at_once(service: Service, agents: Any) -> None:
    a, b = agents(2)
    for sim in service.sims:
        for agent in (a, b):
            sim.set_device(f"PJSIP/{agent}", DeviceProfile(ring_s=0.2, talk_s=1.0))
    await ready_agent(service, a)
    await ready_agent(service, b)
    u1 = service.sims[0].place_call(dnis="5000", caller_num=PLAIN_PHONE)
    u2 = service.sims[1].place_call(dnis="5001", caller_num=VIP_PHONE)
    r1 = await outcome(service, call_id_of(service, 0, u1), result="answered")
    r2 = await outcome(service, call_id_of(service, 1, u2), result="answered")
    assert {r1.server, r2.server} == {"pbx1", "pbx2"}
    assert {r1.answered_by, r2.answered_by} == {int(a), int(b)}
    assert r2.vip is True


async def test_connection_drop_mid_call(service: Service, agents: Any) -> None:
    (a,) = agents(1)
    sim = service.sims[0]
    sim.set_device(f"PJSIP/{a}", DeviceProfile(ring_s=0.2, talk_s=2.0))
    await ready_agent(service, a)
    uid = sim.place_call(dnis="5000", caller_num=PLAIN_PHONE)
    call_id = call_id_of(service, 0, uid)
    await state_is(service, a, "on_call")
    sim.drop_connections()  # TCP reset; the call goes on inside "Asterisk"
    await wait_for(
        lambda: all(s.get("connected") for s in service.callcenter.server_status()),
        what="reconnected",
    )
    # The agent's hangup after 2 s is seen on the new session; the outcome is complete.
    row = await outcome(service, call_id)
    assert row.result == "answered"
    assert row.answered_by == int(a)
    await state_is(service, a, "ready")


async def test_simulator_restart_resync(service: Service, agents: Any) -> None:
    (a,) = agents(1)
    sim = service.sims[1]
    sim.set_device(f"PJSIP/{a}", DeviceProfile(ring_s=0.2, talk_s=60.0))
    await ready_agent(service, a)
    uid = sim.place_call(dnis="5000", caller_num=PLAIN_PHONE)
    call_id = call_id_of(service, 1, uid)
    await state_is(service, a, "on_call")
    await sim.restart()  # every channel is gone; the link resyncs after login
    row = await outcome(service, call_id)
    assert row.result in ("answered", "failed")
    assert row.ended_at is not None
    await state_is(service, a, "ready")
    assert not service.callcenter.live_calls()["connected"]


async def test_unknown_dnis_fails_and_config_reload_adds_a_queue(
    service: Service, agents: Any
) -> None:
    from app import models

    (a,) = agents(1)
    sim = service.sims[0]
    sim.set_device(f"PJSIP/{a}", DeviceProfile(ring_s=0.2, talk_s=0.5))
    uid = sim.place_call(dnis="5999", caller_num=PLAIN_PHONE)
    row = await outcome(service, call_id_of(service, 0, uid))
    assert row.result == "failed" and row.reason == "unknown-dnis"
    assert row.dnis == "5999" and row.queue_id is None

    # A new queue answering 5999, with only agent ``a`` in it, goes live on reload.
    async with service.db.sessionmaker() as s:
        s.add(models.Queue(id=9, name="new-line", ring_timeout_s=2.0, wrapup_s=0.5))
        await s.flush()
        s.add(models.QueueDnis(dnis="5999", queue_id=9))
        s.add(models.AgentQueue(agent_id=int(a), queue_id=9))
        await s.commit()
    await service.callcenter.config_changed(agent_ids=[a], queue_ids=["9"])
    assert "9" in service.callcenter.agent_config(a).queues
    await ready_agent(service, a)
    uid = sim.place_call(dnis="5999", caller_num=PLAIN_PHONE)
    row = await outcome(service, call_id_of(service, 0, uid), result="answered")
    assert row.queue_id == 9 and row.answered_by == int(a)


async def test_closed_hours_fail_new_calls(service: Service, agents: Any) -> None:
    import sqlalchemy as sa

    from app import models

    (a,) = agents(1)
    await ready_agent(service, a)

    async def set_hours(hours: dict[str, Any] | None) -> None:
        async with service.db.sessionmaker() as s:
            await s.execute(sa.update(models.Queue).where(models.Queue.id == 2).values(hours=hours))
            await s.commit()
        await service.callcenter.config_changed(queue_ids=["2"])

    await set_hours({"timezone": "UTC", "weekly": {}})  # never open
    try:
        assert service.callcenter.queue_views()[1]["open"] is False
        uid = service.sims[0].place_call(dnis="5001", caller_num=PLAIN_PHONE)
        row = await outcome(service, call_id_of(service, 0, uid))
        assert row.result == "failed" and row.reason == "closed"
        assert row.agents_offered == []
    finally:
        await set_hours(None)
    assert service.callcenter.queue_views()[1]["open"] is True


async def test_deactivated_queue_leaves_core_wallboard_and_members(service: Service) -> None:
    import sqlalchemy as sa

    from app import models

    cc = service.callcenter
    async with service.db.sessionmaker() as s:
        s.add(models.Queue(id=10, name="short-lived", ring_timeout_s=2.0, wrapup_s=0.5))
        await s.flush()
        s.add(models.AgentQueue(agent_id=1030, queue_id=10))
        await s.commit()
    await cc.config_changed(queue_ids=["10"], agent_ids=["1030"])
    assert "10" in cc.agent_config("1030").queues
    assert "10" in cc.wallboard.state(cc.clock())["queues"]

    async with service.db.sessionmaker() as s:
        await s.execute(sa.update(models.Queue).where(models.Queue.id == 10).values(active=False))
        await s.commit()
    await cc.config_changed(queue_ids=["10"])  # the member is reloaded with it
    assert "10" not in cc.agent_config("1030").queues
    assert "10" not in cc.queues
    assert "10" not in cc.wallboard.state(cc.clock())["queues"]
    assert cc.engine.queue_ids().count("10") == 0
