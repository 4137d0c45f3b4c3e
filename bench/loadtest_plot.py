"""The load test's picture: routing latency, waiting calls, service level and the service's
CPU / RSS over time, one PNG (matplotlib, Agg backend: no display needed).

Invariants: reads the collector only; phases are shaded and labelled so a sweep reads
left to right; an empty series draws an empty panel rather than failing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bench.loadtest_stats import SHORT_ABANDON_DEFAULT, TimeSeries

if TYPE_CHECKING:
    from bench.loadtest import Collector

SL_WINDOW_S = 10


def plot(path: Path, c: Collector, phases: Sequence[tuple[str, float, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = phases[0][1] if phases else c.start
    fig, axes = plt.subplots(4, 1, figsize=(12, 13), sharex=True)
    ax_lat, ax_wait, ax_sl, ax_res = axes

    series = TimeSeries(t0)
    for at, lat, _ in c.routing:
        series.add(at, lat * 1000)
    for q, style in ((50, "-"), (99, "-"), (99.9, ":")):
        pts = series.per_second(q)
        ax_lat.plot(
            [p[0] for p in pts], [p[1] for p in pts], style, lw=0.8, label=f"p{q:g} per second"
        )
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("routing latency (ms)\nACDHold/agent free → Redirect")
    ax_lat.legend(loc="upper left", fontsize=8)

    ax_wait.plot(
        [w[0] - t0 for w in c.waiting], [w[1] for w in c.waiting], lw=0.8, label="waiting (hold)"
    )
    ax_wait2 = ax_wait.twinx()
    ax_wait2.plot(
        [w[0] - t0 for w in c.waiting],
        [w[2] for w in c.waiting],
        lw=0.8,
        color="tab:orange",
        label="calls in progress",
    )
    ax_wait.set_ylabel("calls waiting")
    ax_wait2.set_ylabel("calls in progress", color="tab:orange")
    ax_wait.legend(loc="upper left", fontsize=8)

    # Service level per window of call ends: answered within 15 s / (answered + abandoned >= 5 s).
    buckets: dict[int, list[int]] = {}
    for t in c.ended.values():
        ended = t.get("ended")
        if ended is None or t.get("arrived") is None:
            continue
        b = buckets.setdefault(int((ended - t0) // SL_WINDOW_S), [0, 0])
        if t.get("answered_at") is not None:
            b[1] += 1
            if t["answered_at"] - t["arrived"] <= 15.0:
                b[0] += 1
        elif t.get("result") == "abandoned" and ended - t["arrived"] >= SHORT_ABANDON_DEFAULT:
            b[1] += 1
    xs = sorted(buckets)
    ax_sl.plot(
        [x * SL_WINDOW_S for x in xs],
        [buckets[x][0] / buckets[x][1] * 100 if buckets[x][1] else float("nan") for x in xs],
        lw=0.8,
    )
    ax_sl.set_ylabel(f"service level % (15 s)\nper {SL_WINDOW_S} s of call ends")
    ax_sl.set_ylim(bottom=0, top=101)

    res = [r for r in c.resources if "service" in r]
    ax_res.plot(
        [r["at"] - t0 for r in res],
        [r["service"]["cpu_pct"] for r in res],
        lw=0.8,
        label="service CPU %",
    )
    ax_res2 = ax_res.twinx()
    ax_res2.plot(
        [r["at"] - t0 for r in res],
        [r["service"]["rss_mb"] for r in res],
        lw=0.8,
        color="tab:red",
        label="service RSS MB",
    )
    ax_res.set_ylabel("service CPU %")
    ax_res2.set_ylabel("RSS MB", color="tab:red")
    ax_res.set_xlabel("seconds since the first phase started")

    for name, start, end in phases:
        for ax in axes:
            ax.axvspan(start - t0, end - t0, alpha=0.06, color="gray")
        ax_lat.text(start - t0, 1.02, name, transform=ax_lat.get_xaxis_transform(), fontsize=8)
    fig.suptitle("Switchboard end-to-end load test")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
