"""A fenced process (``app.live.fenced``) hears no link item and records no outcome."""

from __future__ import annotations

from app.live.fenced import FencedOutcomes, fenced_sink
from cti.types import LinkItem, ServerStatus
from tests.live.test_inbox import Outcomes


class Wrapups(Outcomes):
    def __init__(self) -> None:
        super().__init__()
        self.wrapups: list[str] = []

    def record_wrapup(self, call_id: str, **_kwargs: object) -> None:
        self.wrapups.append(call_id)


def test_nothing_passes_while_the_process_may_not_act() -> None:
    gate = [True]
    heard: list[LinkItem] = []
    sink = fenced_sink(heard.append, lambda: gate[0])
    writer = Wrapups()
    outcomes = FencedOutcomes(writer, lambda: gate[0])

    sink(ServerStatus(name="pbx1", connected=True))
    outcomes.record_wrapup("pbx1/1", disposition_code=None, notes=None, wrapup_ended_at=None)
    gate[0] = False  # the lease is gone: a resumed process's stale conclusions stay out
    sink(ServerStatus(name="pbx1", connected=False))
    outcomes.record_wrapup("pbx1/2", disposition_code=None, notes=None, wrapup_ended_at=None)

    assert heard == [ServerStatus(name="pbx1", connected=True)]
    assert writer.wrapups == ["pbx1/1"] and outcomes.dropped == 1
