"""``app.stats.quantile``: the rank rule every printed percentile uses."""

from __future__ import annotations

import pytest

from app.stats import quantile


def test_quantile_picks_a_measured_value_at_rank_int_q_n() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert quantile(values, 0.0) == 1.0
    assert quantile(values, 0.5) == 3.0
    assert quantile(values, 0.99) == 4.0
    assert quantile(values, 1.0) == 4.0  # clamped to the last value
    assert quantile(list(range(1, 101)), 0.99) == 100
    assert quantile(list(range(1, 1001)), 0.999) == 1000
    assert quantile([7], 0.5) == 7
    assert quantile(list(range(100)), 0.29) == 29  # 0.29 * 100 is not 29.0 in binary


def test_quantile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        quantile([], 0.5)
