"""The simulator against the real Asterisk 22 captures, scenario by scenario.

Each test connects over TCP, sends exactly the actions of the capture's ``#>`` lines
(channel names mapped by role), and compares: router-class events per channel role
(name, state, location, dial status, user event, cause), the header order of every
event against the shapes seen in the captures, and the response texts.
"""

from __future__ import annotations

import pytest

from cti.simulator import AsteriskSimulator
from tests.sim.replay import all_shapes, header_names, per_role, replay, shape_key

CALL_SCENARIOS = [
    "answered",
    "caller-hangup",
    "rona",
    "abandon",
    "abandon-ringing",
    "busy",
    "reroute-while-ringing",
    "transfer-blind",
    "callback",
    "queries-during-call",
    "errors",
]
SESSION_SCENARIOS = ["login", "login-failed", "login-failed-user", "queries-idle"]

# Responses whose values are clock- or build-dependent: compare header names only.
VALUE_FREE = {"Ping", "CoreStatus", "CoreSettings", "ListCommands", "Command"}

_SHAPES: dict[str, set[tuple[str, ...]]] | None = None


def shapes() -> dict[str, set[tuple[str, ...]]]:
    global _SHAPES
    if _SHAPES is None:
        _SHAPES = all_shapes()
    return _SHAPES


def _diff(expected: dict[str, list[tuple[str, ...]]], got: dict[str, list[tuple[str, ...]]]) -> str:
    lines = []
    for role in sorted(set(expected) | set(got)):
        if expected.get(role) != got.get(role):
            lines.append(
                f"role {role}:\n  capture: {expected.get(role)}\n  sim:     {got.get(role)}"
            )
    return "\n".join(lines)


@pytest.mark.parametrize("scenario", CALL_SCENARIOS + SESSION_SCENARIOS)
async def test_scenario_matches_capture(lab_sim: AsteriskSimulator, scenario: str) -> None:
    r = await replay(lab_sim.port, scenario)
    assert r.client.banner == "Asterisk Call Manager/11.0.0"

    # 1. router-class events, per channel role, in order
    expected, got = per_role(r.capture.messages), per_role(r.client.messages)
    assert expected == got, _diff(expected, got)

    # 2. responses: same status and texts, same header names
    cap_responses = [m for m in r.capture.messages if m.kind == "response"]
    assert len(cap_responses) == len(r.responses)
    for cap_resp, (headers, resp) in zip(cap_responses, r.responses, strict=True):
        action = dict(headers)["Action"]
        assert resp is not None, f"no response to {action}"
        assert resp.name == cap_resp.name, action
        if action != "ListCommands":
            assert header_names(resp) == header_names(cap_resp), action
        if action not in VALUE_FREE:
            assert resp.get("Message") == cap_resp.get("Message"), action

    # 3. every event the simulator sent has a header order Asterisk produced
    known = shapes()
    for m in r.client.messages:
        if m.kind != "event":
            continue
        key = shape_key(m)
        assert key in known, f"event {key} never seen in the captures"
        assert header_names(m) in known[key], f"{key}: unexpected header order {header_names(m)}"


async def test_filtered_user_gets_only_router_events(lab_sim: AsteriskSimulator) -> None:
    """answered-filtered.ami: user acdf sees the 24 router events + FullyBooted."""
    r = await replay(lab_sim.port, "answered-filtered")
    names = [m.name for m in r.client.messages if m.kind == "event"]
    cap_names = [m.name for m in r.capture.messages if m.kind == "event"]
    assert sorted(names) == sorted(cap_names)
    assert per_role(r.capture.messages) == per_role(r.client.messages)
