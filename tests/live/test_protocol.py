"""The websocket protocol module: every frame round-trips through JSON, close codes are sane."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from app.crm import CaseInfo, CustomerInfo, Entitlement, InteractionInfo, ProductInfo, ScreenPop
from app.live import protocol
from app.live.protocol import Close
from routing.commands import AgentState
from routing.views import AgentView as EngineAgentView

NOW = 1_700_000_100.0


def _engine_view() -> EngineAgentView:
    return EngineAgentView(
        agent_id="1001",
        state=AgentState.PAUSED,
        reason="lunch",
        since=NOW - 42.0,
        device="PJSIP/1001",
        call_id=None,
        queues=("1",),
        skills=(("en", 5),),
        missed_in_row=1,
        idle_since=None,
        pending=None,
        team="blue",
        until=None,
    )


def _view() -> protocol.AgentView:
    return protocol.agent_view(
        agent_id="1001",
        name="Ada",
        team="blue",
        queues=["1"],
        engine=_engine_view(),
        now=NOW,
    )


def _figures() -> protocol.ScopeFigures:
    kpis = protocol.Kpis(
        offered=3,
        answered=2,
        answered_in_sl=1,
        abandoned=1,
        short_abandoned=0,
        overflowed=0,
        failed=0,
        service_level=0.3333,
        abandon_rate=0.3333,
        asa_s=12.5,
        aht_s=None,
    )
    return protocol.ScopeFigures(
        waiting=1,
        longest_wait_s=7.0,
        agents={"ready": 2, "paused": 1},
        windows={"15m": kpis, "60m": kpis, "today": kpis},
    )


def _pop() -> ScreenPop:
    return ScreenPop(
        phone="+4930123456",
        customer=CustomerInfo(id=7, name='张伟 "Zhang" </script>', vip=True, member=False),
        entitled=True,
        entitlement_reason=None,
        entitled_until=date(2027, 1, 31),
        products=[
            ProductInfo(
                id=1,
                model="X1",
                sku="X1-1",
                serial=None,
                purchase_date=date(2026, 11, 2),
                protection_plan_end=None,
                entitlement=Entitlement(entitled=True, until=date(2027, 1, 31)),
            )
        ],
        interactions=[
            InteractionInfo(
                at=datetime(2026, 11, 3, 9, 0), channel="phone", agent_id=1001, summary="ok"
            )
        ],
        open_cases=[
            CaseInfo(
                id=5,
                opened_at=datetime(2026, 11, 4, 10, 0),
                kind="repair",
                severity="normal",
                subject="Screen",
                due_at=None,
                overdue=False,
            )
        ],
    )


FRAMES: list[protocol.Frame] = [
    protocol.hello("1001", _view()),
    protocol.state_changed("1001", "ready", previous="paused", reason=None, call_id=None, at=NOW),
    protocol.call_answered("c1", "1", NOW),
    protocol.call_ended("c1", result="answered", answered=True, at=NOW),
    protocol.offer_head(
        "1001",
        protocol.OfferedCall(call_id="c1", queue_id="1", caller="+4930123456", vip=True),
        ring_timeout_s=15.0,
        sent_at=NOW,
    ),
    protocol.snapshot(4, protocol.WallboardState(overall=_figures(), queues={"1": _figures()})),
    protocol.delta(5, NOW, overall={"waiting": 2}, queues={"1": {"waiting": 2}}),
    protocol.delta(6, NOW, removed_queues=["1"]),
]


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: str(f["type"]))
def test_every_frame_round_trips_through_json(frame: protocol.Frame) -> None:
    text = protocol.encode(frame)
    assert json.loads(text) == frame
    assert isinstance(frame["type"], str)


def test_the_offer_with_its_pop_is_one_json_object() -> None:
    head = FRAMES[4]
    assert head["type"] == "offer"
    pop = _pop().model_dump(mode="json")
    text = protocol.encode_offer(head, protocol.encode_pop(pop))
    assert json.loads(text) == {**head, "pop": pop}
    without = json.loads(protocol.encode_offer(head, None))
    assert without == {**head, "pop": None}


def test_a_value_json_cannot_carry_is_refused_not_stringified() -> None:
    with pytest.raises(TypeError):
        protocol.encode(protocol.delta(1, NOW, overall={"at": datetime(2026, 1, 1)}))
    with pytest.raises(ValueError, match="JSON"):
        protocol.encode(protocol.delta(1, float("nan")))


def test_agent_view_of_an_agent_the_engine_does_not_know_is_logged_out() -> None:
    view = protocol.agent_view(
        agent_id="1002", name="Bo", team=None, queues=[], engine=None, now=NOW
    )
    assert view["state"] == "logged_out" and view["since"] is None
    assert set(view) == set(protocol.AgentView.__annotations__)
    known = _view()
    assert set(known) == set(protocol.AgentView.__annotations__)
    assert known["time_in_state_s"] == 42.0 and known["state"] == "paused"


def test_close_codes_are_unique_and_standard_or_private() -> None:
    codes = [c.value for c in Close]
    assert len(codes) == len(set(codes))
    standard = {1000, 1001, 1008, 1011, 1012, 1013}
    for code in codes:
        assert code in standard or 4000 <= code <= 4999, code
