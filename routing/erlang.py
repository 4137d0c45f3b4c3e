"""Erlang C: the M/M/N queue with patient callers, for staffing and KPI sanity checks.

Model: Poisson arrivals at rate lambda, exponential handle times with mean AHT, N identical
agents, FIFO, nobody abandons.  Offered load A = lambda*AHT (in Erlangs).

* ``p_wait(n, a)``          P(a caller waits at all) = Erlang C(N, A)
* ``asa(n, a, aht)``        mean wait (average speed of answer) = P_wait*AHT/(N-A)
* ``service_level(n, a, aht, t)``  P(wait <= t) = 1 - P_wait*exp(-(N-A)*t/AHT)

Invariant: for N <= A the queue is unstable: P_wait = 1, ASA = inf, SL = 0.

Worked example (``docs/design.md``): lambda = 100 calls / 30 min, AHT = 180 s, N = 14 -> A = 10,
``p_wait(14, 10) ~ 0.1741``, ``service_level(14, 10, 180, 20) ~ 0.888``.

Erlang B is computed with the stable recurrence B(k) = A*B(k-1)/(k + A*B(k-1)), then
C = N*B/(N - A*(1 - B)); no factorials, so large N (thousands of agents) is fine.
"""

from __future__ import annotations

import math

__all__ = [
    "agents_for_service_level",
    "asa",
    "erlang_b",
    "offered_load",
    "p_wait",
    "service_level",
]


def _check(n: int, a: float) -> None:
    if n < 1:
        raise ValueError(f"need at least one agent, got n={n}")
    if not a >= 0 or math.isinf(a):
        raise ValueError(f"offered load must be a finite number >= 0, got a={a}")


def offered_load(rate_per_s: float, aht_s: float) -> float:
    """A = lambda*AHT in Erlangs (lambda in calls per second, AHT in seconds)."""
    if rate_per_s < 0 or aht_s <= 0:
        raise ValueError("rate must be >= 0 and AHT > 0")
    return rate_per_s * aht_s


def erlang_b(n: int, a: float) -> float:
    """Blocking probability of N servers without a queue (Erlang B)."""
    _check(n, a)
    b = 1.0
    for k in range(1, n + 1):
        b = a * b / (k + a * b)
    return b


def p_wait(n: int, a: float) -> float:
    """Probability that a caller has to wait (Erlang C)."""
    _check(n, a)
    if a >= n:
        return 1.0
    b = erlang_b(n, a)
    return n * b / (n - a * (1.0 - b))


def asa(n: int, a: float, aht_s: float) -> float:
    """Average speed of answer (mean wait over all callers), seconds."""
    if aht_s <= 0:
        raise ValueError("AHT must be > 0")
    if a >= n:
        _check(n, a)
        return math.inf
    return p_wait(n, a) * aht_s / (n - a)


def service_level(n: int, a: float, aht_s: float, t_s: float) -> float:
    """Fraction of callers answered within ``t_s`` seconds."""
    if aht_s <= 0 or t_s < 0:
        raise ValueError("AHT must be > 0 and t >= 0")
    if a >= n:
        _check(n, a)
        return 0.0
    return 1.0 - p_wait(n, a) * math.exp(-(n - a) * t_s / aht_s)


def agents_for_service_level(rate_per_s: float, aht_s: float, t_s: float, target: float) -> int:
    """Smallest N whose service level within ``t_s`` reaches ``target`` (0 < target < 1)."""
    if not 0 < target < 1:
        raise ValueError("target must be in (0, 1)")
    a = offered_load(rate_per_s, aht_s)
    n = max(1, math.floor(a) + 1)
    while service_level(n, a, aht_s, t_s) < target:
        n += 1
    return n
