"""Quantiles of latency samples, one rule for every figure the service and benches print.

Invariant: ``quantile(values, q)`` of an ascending sequence of n values is the value at
0-based rank ``min(n - 1, int(q * n))`` (so ``q=0.5`` of 4 values is the third, ``q=0.99``
of 100 values is the 100th): a value that was measured, never an interpolation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

_N = TypeVar("_N", int, float)


def quantile(sorted_values: Sequence[_N], q: float) -> _N:
    """The ``q`` (0..1) quantile of ``sorted_values`` (ascending, not empty)."""
    n = len(sorted_values)
    if not n:
        raise ValueError("quantile of no values")
    # round() first: 0.29 * 100 is 28.999999999999996 in binary floating point.
    return sorted_values[min(n - 1, int(round(q * n, 9)))]
