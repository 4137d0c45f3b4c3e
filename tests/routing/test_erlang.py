"""Erlang C formulas, and a discrete-event simulation through the real RoutingEngine.

The simulation feeds Poisson arrivals and exponential handle times (patient callers,
one queue, agents answer at once, no wrap-up) into ``RoutingEngine`` and measures the
fraction of calls that waited and the fraction answered within T; both must agree with
Erlang C within ±0.01 over >= 100,000 measured calls.  Seeded, so deterministic.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable

import pytest

from routing.commands import CallEnded, Command, OfferCall
from routing.config import AgentConfig, QueueConfig
from routing.engine import RoutingEngine
from routing.erlang import (
    agents_for_service_level,
    asa,
    erlang_b,
    offered_load,
    p_wait,
    service_level,
)
from routing.events import (
    AgentLogin,
    AgentReady,
    CallArrived,
    CallHungUp,
    ConfigureAgent,
    ConfigureQueue,
    OfferAnswered,
)


@pytest.mark.parametrize(
    ("n", "a", "expected_p_wait"),
    [
        (14, 10.0, 0.1741),  # docs/design.md
        (1, 0.5, 0.5),  # M/M/1: P_wait = rho
        (2, 1.0, 1 / 3),  # M/M/2: 2 rho^2 / (1 + rho) with rho = 1/2
        (10, 10.0, 1.0),  # unstable
        (10, 0.0, 0.0),
    ],
)
def test_erlang_c_known_values(n: int, a: float, expected_p_wait: float) -> None:
    assert p_wait(n, a) == pytest.approx(expected_p_wait, abs=1e-4)


def test_design_example() -> None:
    a = offered_load(100 / 1800, 180.0)
    assert a == pytest.approx(10.0)
    assert service_level(14, a, 180.0, 20.0) == pytest.approx(0.888, abs=5e-4)
    assert asa(14, a, 180.0) == pytest.approx(0.17413 * 180 / 4, abs=1e-2)
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert agents_for_service_level(100 / 1800, 180.0, 20.0, 0.8) == 14  # 13 gives < 0.8
    assert service_level(13, a, 180.0, 20.0) < 0.8


def test_unstable_and_invalid_inputs() -> None:
    assert asa(5, 6.0, 60.0) == math.inf
    assert service_level(5, 6.0, 60.0, 10.0) == 0.0
    bad_calls: list[Callable[[], float]] = [
        lambda: p_wait(0, 1.0),
        lambda: p_wait(3, -1.0),
        lambda: asa(3, 1.0, 0.0),
    ]
    for bad in bad_calls:
        with pytest.raises(ValueError):
            bad()


def simulate(
    *, agents: int, rate: float, aht: float, calls: int, sl_t: float, seed: int, warmup: int = 2_000
) -> tuple[float, float]:
    """Return (fraction that waited, fraction answered within ``sl_t``) after warm-up."""
    rng = random.Random(seed)
    eng = RoutingEngine()
    eng.handle(ConfigureQueue(QueueConfig("q", wrapup_s=0.0, ring_timeout_s=30.0)), 0.0)
    for i in range(agents):
        aid = f"a{i:03d}"
        eng.handle(ConfigureAgent(AgentConfig(aid, queues=("q",))), 0.0)
        eng.handle(AgentLogin(aid, f"PJSIP/{aid}"), 0.0)
        eng.handle(AgentReady(aid), 0.0)
    arrived: dict[str, float] = {}
    waited = within = measured = ended = 0
    timeline: list[tuple[float, int, str]] = []  # (time, seq, call id to hang up or "" = arrival)
    seq = 0
    heapq.heappush(timeline, (rng.expovariate(rate), 0, ""))
    total = calls + warmup
    n_arrived = 0

    def run(cmds: list[Command], t: float) -> None:
        nonlocal waited, within, measured, seq, ended
        for cmd in cmds:
            if isinstance(cmd, OfferCall):
                cid = cmd.call_id
                wait = t - arrived.pop(cid)
                if int(cid[1:]) >= warmup:
                    measured += 1
                    waited += wait > 0
                    within += wait <= sl_t
                eng.handle(OfferAnswered(cid, cmd.agent_id), t)
                seq += 1
                heapq.heappush(timeline, (t + rng.expovariate(1.0 / aht), seq, cid))
            elif isinstance(cmd, CallEnded):
                ended += 1

    while timeline:
        t, _, cid = heapq.heappop(timeline)
        if cid:
            run(eng.handle(CallHungUp(cid), t), t)
            continue
        cid = f"c{n_arrived}"
        n_arrived += 1
        arrived[cid] = t
        run(eng.handle(CallArrived(cid, "q"), t), t)
        if n_arrived < total:
            seq += 1
            heapq.heappush(timeline, (t + rng.expovariate(rate), seq, ""))
    assert ended == total and not arrived and eng.next_deadline() is None
    return waited / measured, within / measured


@pytest.mark.slow
@pytest.mark.parametrize(
    ("agents", "rate", "aht", "sl_t", "seed"),
    [
        (14, 100 / 1800, 180.0, 20.0, 1),  # docs/design.md: A = 10, P_wait 0.1741, SL(20) 0.888
        (8, 0.1, 60.0, 15.0, 2),  # A = 6 on 8 agents: P_wait 0.357, SL(15) 0.783
    ],
)
def test_simulation_through_the_engine_agrees_with_erlang_c(
    agents: int, rate: float, aht: float, sl_t: float, seed: int
) -> None:
    a = offered_load(rate, aht)
    got_wait, got_sl = simulate(
        agents=agents, rate=rate, aht=aht, calls=100_000, sl_t=sl_t, seed=seed
    )
    assert got_wait == pytest.approx(p_wait(agents, a), abs=0.01)
    assert got_sl == pytest.approx(service_level(agents, a, aht, sl_t), abs=0.01)


def test_p_wait_agrees_with_the_textbook_formula_for_small_n() -> None:
    for n, a in ((1, 0.5), (5, 3.2), (14, 10.0), (30, 25.0)):
        terms = sum(a**k / math.factorial(k) for k in range(n))
        top = a**n / math.factorial(n) * n / (n - a)
        assert p_wait(n, a) == pytest.approx(top / (terms + top), rel=1e-9)


def test_p_wait_stays_finite_at_twenty_thousand_seats() -> None:
    # The textbook form overflows a float here; the Erlang B recursion does not.
    p = p_wait(20_000, 19_800.0)
    assert 0.0 < p < 1.0
    assert p_wait(20_000, 10_000.0) == pytest.approx(0.0, abs=1e-12)
