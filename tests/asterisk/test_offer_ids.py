"""Every offer carries an id the dialplan echoes in ``ACDDialResult``: a late result of an
earlier offer is never taken for the current one (issue 10: one no-answer charged twice
when the only ready agent is re-offered the same call at once)."""

from __future__ import annotations

from tests.asterisk.lab import require_asterisk

require_asterisk()

from tests.asterisk.conftest import Center  # noqa: E402
from tests.asterisk.test_calls import dial_ends, settled  # noqa: E402


async def test_one_no_answer_is_charged_once_when_re_offered_at_once(center: Center) -> None:
    await center.queue(ring_timeout_s=2.0)
    silent = await center.agent("MUTE", max_missed=3)
    # The caller stays through one ring timeout and into the second offer, then leaves.
    call = await center.call(stay_s=3.5)

    row = await center.row(call)
    view = await settled(center, silent, "ready")
    misses = dial_ends(center, call, center.devices[silent])
    # One NOANSWER from Asterisk, one miss charged; the second offer ended by the caller.
    assert misses.count("NOANSWER") == 1, misses
    assert view["missed_in_row"] == 1
    assert row["rona_count"] == 1
    assert row["agents_offered"] == [int(silent), int(silent)]
    results = center.ami.user_events("ACDDialResult", Uniqueid=center.uid(call))
    ids = [e.get("OfferId") for e in results]
    assert len(results) == 1 and ids[0], ids  # the first offer's id, echoed
