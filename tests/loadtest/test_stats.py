"""The load test's own arithmetic: Erlang C against docs/design.md's worked example, percentiles,
observed KPIs as docs/design.md defines them, and the option checks of the harness CLI."""

from __future__ import annotations

import pytest

from bench.loadtest import Options, parse_args, talk_mean_for
from bench.loadtest_stats import (
    ObservedCall,
    erlang_prediction,
    linear_slope,
    observed_kpis,
    summarize,
)


def test_erlang_c_matches_the_design_example() -> None:
    # docs/design.md: lambda = 100 calls / 30 min, AHT = 180 s, N = 14 -> A = 10,
    # P_wait ~ 0.1741, SL(20 s) ~ 0.888.
    p = erlang_prediction(arrival_rate=100 / 1800, aht_s=180, agents=14, sl_threshold_s=20)
    assert p.offered_load == pytest.approx(10.0)
    assert p.p_wait == pytest.approx(0.1741, abs=5e-4)
    assert p.service_level == pytest.approx(0.888, abs=5e-4)
    assert p.asa_s == pytest.approx(0.1741 * 180 / 4, rel=2e-3)


def test_erlang_unstable_load_is_reported_not_divided_by_zero() -> None:
    p = erlang_prediction(arrival_rate=2.0, aht_s=10.0, agents=20)
    assert p.p_wait == 1.0 and p.asa_s is None and p.service_level == 0.0
    with pytest.raises(ValueError):
        erlang_prediction(arrival_rate=1.0, aht_s=0.0, agents=3)


def test_summaries_follow_the_service_quantile_rule() -> None:
    """``app.stats.quantile``: 0-based rank int(q * n), a measured value."""
    s = summarize([float(i) for i in range(1, 1001)])
    assert (s["p50"], s["p99"], s["p99_9"], s["max"]) == (501.0, 991.0, 1000.0, 1000.0)
    s = summarize([0.001, 0.002, 0.003], scale=1000)
    assert s["count"] == 3 and s["p50"] == 2.0 and s["max"] == 3.0
    assert summarize([])["p99"] is None


def test_observed_kpis_follow_the_design_definitions() -> None:
    calls = [
        ObservedCall(0.0, 10.0, 100.0, False),  # answered within 15 s
        ObservedCall(0.0, 20.0, 100.0, False),  # answered late
        ObservedCall(0.0, None, 3.0, True),  # short abandon: not in the SL denominator
        ObservedCall(0.0, None, 30.0, True),  # abandon after 5 s: counts against SL
    ]
    k = observed_kpis(calls)
    assert k["service_level"] == pytest.approx(1 / 3)
    assert k["asa_s"] == pytest.approx(15.0)
    assert k["abandon_rate"] == pytest.approx(0.5)


def test_linear_slope() -> None:
    assert linear_slope([(0, 1.0), (1, 3.0), (2, 5.0)]) == pytest.approx(2.0)
    assert linear_slope([(0, 1.0)]) is None


def test_cli_rejects_bad_input_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["--sweep", "60,abc"],
        ["--rate", "0"],
        ["--vip-share", "1.5"],
        ["--ring-min", "5", "--ring-max", "1"],
    ):
        with pytest.raises(SystemExit) as exc:
            parse_args(argv)
        assert exc.value.code == 2
    assert "--sweep must be comma-separated" in capsys.readouterr().err


def test_cli_phases_and_automatic_talk_time() -> None:
    opts = parse_args(
        ["--sweep", "60,100,300,600", "--soak", "600", "--rate", "75", "--duration", "120"]
    )
    assert [(n, r, d) for n, r, d in opts.phases] == [
        ("rate-60", 60.0, 120.0),
        ("rate-100", 100.0, 120.0),
        ("rate-300", 300.0, 120.0),
        ("rate-600", 600.0, 120.0),
        ("soak", 75.0, 600.0),
    ]
    # Auto talk time aims at the target occupancy, clamped to 5..60 s.
    auto = Options(target_occupancy=0.5, ring_min=1, ring_max=3)
    assert talk_mean_for(auto, 300.0, 20_000, 10.0) == pytest.approx(0.5 * 20_000 / 300 - 2 - 10)
    assert talk_mean_for(auto, 60.0, 20_000, 10.0) == 60.0
    assert talk_mean_for(auto, 600.0, 20_000, 10.0) == 5.0
    assert talk_mean_for(Options(talk_mean=7.0), 600.0, 20_000, 10.0) == 7.0
