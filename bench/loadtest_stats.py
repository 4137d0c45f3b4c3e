"""Statistics for the load test: summaries, time series buckets and the Erlang C prediction.

Invariants:
- Pure functions and plain containers only (no I/O, no clock): the harness passes
  timestamps in, so everything here is unit-testable and deterministic.
- Percentiles follow ``app.stats.quantile`` (the service's own rule) on the full sample
  (no reservoir): a 10-minute soak at 600 calls/s is ~360,000 floats, a few MB.
- Erlang B/C come from ``routing.erlang`` (one implementation for the product and the
  bench).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.stats import quantile
from routing import erlang


def summarize(values: Iterable[float], *, scale: float = 1.0, digits: int = 3) -> dict[str, object]:
    """count / p50 / p90 / p99 / p99.9 / max / mean of ``values`` multiplied by ``scale``.

    ``scale=1000`` turns seconds into milliseconds.
    """
    data = sorted(values)
    out: dict[str, object] = {"count": len(data)}
    if not data:
        for key in ("p50", "p90", "p99", "p99_9", "max", "mean"):
            out[key] = None
        return out
    for key, q in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99_9", 0.999)):
        out[key] = round(quantile(data, q) * scale, digits)
    out["max"] = round(data[-1] * scale, digits)
    out["mean"] = round(sum(data) / len(data) * scale, digits)
    return out


# --- Erlang C ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErlangPrediction:
    """What Erlang C predicts for Poisson arrivals, exponential handle times, FIFO, no abandons."""

    arrival_rate: float  # lambda, calls/s
    aht_s: float  # mean agent-occupying time per call (ring + talk + wrap-up)
    agents: int  # N
    offered_load: float  # A = lambda * AHT (erlangs)
    occupancy: float  # A / N
    p_wait: float
    asa_s: float | None  # None when unstable (A >= N)
    service_level: float  # SL(T)
    sl_threshold_s: float

    def as_dict(self) -> dict[str, object]:
        return {
            "lambda_per_s": round(self.arrival_rate, 4),
            "aht_s": round(self.aht_s, 3),
            "agents": self.agents,
            "offered_load_erlangs": round(self.offered_load, 2),
            "occupancy": round(self.occupancy, 4),
            "p_wait": round(self.p_wait, 6),
            "asa_s": None if self.asa_s is None else round(self.asa_s, 4),
            "service_level": round(self.service_level, 6),
            "sl_threshold_s": self.sl_threshold_s,
        }


def erlang_prediction(
    *, arrival_rate: float, aht_s: float, agents: int, sl_threshold_s: float = 15.0
) -> ErlangPrediction:
    """A = lambda*AHT; P_wait = C(N, A); ASA = P_wait*AHT/(N-A); SL(T) = 1 - P_wait*e^(-(N-A)T/AHT).

    >>> p = erlang_prediction(arrival_rate=100 / 1800, aht_s=180, agents=14, sl_threshold_s=20)
    >>> round(p.p_wait, 4), round(p.service_level, 3)
    (0.1741, 0.888)
    """
    if arrival_rate < 0 or aht_s <= 0 or agents <= 0:
        raise ValueError("need arrival_rate >= 0, aht_s > 0 and agents > 0")
    load = arrival_rate * aht_s
    p_wait = erlang.p_wait(agents, load)
    if load >= agents:
        return ErlangPrediction(
            arrival_rate, aht_s, agents, load, load / agents, 1.0, None, 0.0, sl_threshold_s
        )
    asa = erlang.asa(agents, load, aht_s)
    sl = erlang.service_level(agents, load, aht_s, sl_threshold_s)
    return ErlangPrediction(
        arrival_rate, aht_s, agents, load, load / agents, p_wait, asa, sl, sl_threshold_s
    )


# --- observed KPIs ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObservedCall:
    """One finished call as the simulator saw it (times in epoch seconds)."""

    arrived_at: float
    answered_at: float | None
    ended_at: float
    abandoned: bool


def observed_kpis(
    calls: Sequence[ObservedCall], *, sl_threshold_s: float = 15.0, short_abandon_s: float = 5.0
) -> dict[str, object]:
    """Service level, ASA, abandon rate and P(wait > 0) as docs/design.md defines them.

    SL = answered within T / (answered + abandoned after the short-abandon limit);
    ASA = mean wait of answered calls; abandon rate = abandoned / offered.
    The wait counts from arrival in the holding context to the agent answering, so it
    includes ring time: a call "waits" in the Erlang sense when its wait exceeds the
    ring time of the first offer — reported as ``waited_over_s`` fractions instead.
    """
    answered = [c for c in calls if c.answered_at is not None]
    abandoned = [c for c in calls if c.abandoned]
    long_abandoned = [c for c in abandoned if c.ended_at - c.arrived_at >= short_abandon_s]
    waits = [c.answered_at - c.arrived_at for c in answered if c.answered_at is not None]
    within = sum(1 for w in waits if w <= sl_threshold_s)
    denominator = len(answered) + len(long_abandoned)
    return {
        "offered": len(calls),
        "answered": len(answered),
        "abandoned": len(abandoned),
        "abandoned_after_short_limit": len(long_abandoned),
        "service_level": round(within / denominator, 6) if denominator else None,
        "asa_s": round(sum(waits) / len(waits), 4) if waits else None,
        "abandon_rate": round(len(abandoned) / len(calls), 6) if calls else None,
        "wait_s": summarize(waits, digits=4),
    }


class TimeSeries:
    """Values bucketed per whole second since ``start`` (for the plot and soak flatness)."""

    __slots__ = ("_buckets", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self._buckets: dict[int, list[float]] = {}

    def add(self, at: float, value: float) -> None:
        self._buckets.setdefault(int(at - self.start), []).append(value)

    def per_second(self, q: float) -> list[tuple[int, float]]:
        """(second, percentile q of the values in that second), seconds with data only."""
        out: list[tuple[int, float]] = []
        for second in sorted(self._buckets):
            values = sorted(self._buckets[second])
            if values:
                out.append((second, quantile(values, q / 100.0)))
        return out

    def counts(self) -> list[tuple[int, int]]:
        return [(s, len(v)) for s, v in sorted(self._buckets.items())]


def linear_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x (e.g. RSS MB per minute in the soak); None if < 2 points."""
    n = len(points)
    if n < 2:
        return None
    mean_x = sum(p[0] for p in points) / n
    mean_y = sum(p[1] for p in points) / n
    var = sum((p[0] - mean_x) ** 2 for p in points)
    if var == 0:
        return None
    return sum((p[0] - mean_x) * (p[1] - mean_y) for p in points) / var


SHORT_ABANDON_DEFAULT = 5.0  # docs/design.md: a caller giving up within 5 s is a short abandon
