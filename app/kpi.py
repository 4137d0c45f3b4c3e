"""Service-level definitions shared by the wallboard and the reports (one formula).

Invariants:
- A call is *answered within target* when its wait (arrival -> answer, ring included)
  is at most the threshold of **its own queue** (``queues.sl_target_s``), never a
  site-wide constant.
- An abandon is *short* when the caller gave up less than ``short_abandon_s`` (default
  5 s) after arriving; short abandons are counted, but apart.
- The service level is one of two configured formulas (``SlFormula``):

  ``exclude_short_abandons`` (default)
      answered within target / (answered + abandoned after the short-abandon threshold)
  ``offered``
      answered within target / (answered + every abandon, short ones included)

  Overflowed and failed calls are in neither denominator (the queue handed them on or
  could not hold them); ``None`` when the denominator is zero.
"""

from __future__ import annotations

import enum


class SlFormula(enum.StrEnum):
    EXCLUDE_SHORT_ABANDONS = "exclude_short_abandons"
    OFFERED = "offered"


DEFAULT_SHORT_ABANDON_S = 5.0
DEFAULT_SL_TARGET_S = 15.0


def sl_denominator(
    formula: SlFormula, *, answered: float, abandoned: float, short_abandoned: float
) -> float:
    """What the answered-within-target count is divided by (see the module docstring)."""
    if formula is SlFormula.OFFERED:
        return answered + abandoned + short_abandoned
    return answered + abandoned


def service_level(
    formula: SlFormula,
    *,
    answered_in_sl: float,
    answered: float,
    abandoned: float,
    short_abandoned: float,
) -> float | None:
    """The service level as a fraction (4 decimals), ``None`` with nothing to divide by."""
    d = sl_denominator(
        formula, answered=answered, abandoned=abandoned, short_abandoned=short_abandoned
    )
    return round(answered_in_sl / d, 4) if d else None
