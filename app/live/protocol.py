"""The websocket protocol: every frame the service sends and every close code it uses.

Pure (no I/O, no clock): producers build frames with the functions below and the hub
serialises them with ``encode``; ``docs/websocket.md`` documents the same shapes for
clients, and the pages read exactly these.

Invariants:
- Every frame is a JSON object with a ``type`` (a ``TypedDict`` here), serialised by the
  ``json`` module; the one place JSON text is joined is ``encode_offer`` (see there).
- The agent view (``AgentView``) is one shape: the REST agent routes return it and the
  agent channel's ``hello`` frame carries it.
- Close codes are ``Close`` members: standard RFC 6455 codes, or 4000-4999 named after
  the HTTP status they mirror (4401 like 401, ...).  No other module spells a close code.
"""

from __future__ import annotations

import enum
import json
from typing import Any, Literal, NewType, NotRequired

from typing_extensions import TypedDict

from routing.views import AgentView as EngineAgentView

# --- close codes ----------------------------------------------------------------------------


class Close(enum.IntEnum):
    """Why the service closed a websocket; ``docs/websocket.md`` says what a client does."""

    NORMAL = 1000  # the subscription ended normally
    GOING_AWAY = 1001  # the service is stopping (reconnect)
    TRY_AGAIN = 1013  # RFC 6455 "try again later": token not checkable now / not running
    UNAUTHORIZED = 4401  # no, invalid, expired or revoked token (also while open)
    FORBIDDEN = 4403  # valid token, not allowed on this channel
    UNKNOWN_AGENT = 4404  # the agent of /ws/agents/{agent_id} does not exist
    TOO_SLOW = 4408  # the client did not keep up: its bounded send queue overflowed


# --- the agent view (REST and websocket) ---------------------------------------------------


class AgentView(TypedDict):
    """An agent's live state as clients see it (REST ``/agents/{id}/...`` and ``hello``)."""

    agent_id: str
    name: str
    team: str | None
    queues: list[str]
    state: str  # routing.commands.AgentState value
    reason: str | None  # pause reason
    call_id: str | None  # offered / connected call, or the call being wrapped up
    device: str | None
    since: float | None  # epoch s the current state began; None: never logged in
    time_in_state_s: float | None
    pending: str | None  # "pause:<reason>" / "logout", applied after the current call
    missed_in_row: int
    until: float | None  # reserved / wrap_up: when the reservation / wrap-up ends


def agent_view(
    *,
    agent_id: str,
    name: str,
    team: str | None,
    queues: list[str],
    engine: EngineAgentView | None,
    now: float,
) -> AgentView:
    """The view of an agent from its configuration and the routing engine's view
    (``None``: the engine does not know it, i.e. it never logged in)."""
    if engine is None:
        return AgentView(
            agent_id=agent_id,
            name=name,
            team=team,
            queues=queues,
            state="logged_out",
            reason=None,
            call_id=None,
            device=None,
            since=None,
            time_in_state_s=None,
            pending=None,
            missed_in_row=0,
            until=None,
        )
    since = engine.since
    return AgentView(
        agent_id=agent_id,
        name=name,
        team=team,
        queues=queues,
        state=engine.state.value,
        reason=engine.reason,
        call_id=engine.call_id,
        device=engine.device,
        since=since,
        time_in_state_s=round(now - since, 1) if since is not None else None,
        pending=engine.pending,
        missed_in_row=engine.missed_in_row,
        until=engine.until,
    )


# --- agent channel frames --------------------------------------------------------------------


class HelloFrame(TypedDict):
    type: Literal["hello"]
    agent_id: str
    state: AgentView


class OfferedCall(TypedDict):
    """The call in an ``offer``; the details are absent for a call the service adopted
    without its arrival (after a restart) and ``queue_name`` for a queue being removed."""

    call_id: str
    queue_id: str
    server: NotRequired[str]
    uniqueid: NotRequired[str]
    caller: NotRequired[str]
    caller_name: NotRequired[str]
    dnis: NotRequired[str]
    arrived_at: NotRequired[float]
    vip: NotRequired[bool]
    entitled: NotRequired[bool]
    queue_name: NotRequired[str]


class OfferHead(TypedDict):
    """An ``offer`` frame without its ``pop`` (added by ``encode_offer``)."""

    type: Literal["offer"]
    agent_id: str
    call: OfferedCall
    ring_timeout_s: float
    sent_at: float  # epoch s: lets a client measure the delivery of the pop


class StateFrame(TypedDict):
    """An agent's state changed (the transition; ``hello``/REST carry the whole view)."""

    type: Literal["state"]
    agent_id: str
    state: str
    previous: str | None
    reason: str | None
    call_id: str | None
    at: float


class CallAnsweredFrame(TypedDict):
    type: Literal["call"]
    event: Literal["answered"]
    call_id: str
    queue_id: str
    at: float


class CallEndedFrame(TypedDict):
    type: Literal["call"]
    event: Literal["ended"]
    call_id: str
    result: str  # routing.commands.CallResult value
    answered: bool  # by the agent this frame is sent to
    at: float


def hello(agent_id: str, view: AgentView) -> HelloFrame:
    return HelloFrame(type="hello", agent_id=agent_id, state=view)


def offer_head(
    agent_id: str, call: OfferedCall, *, ring_timeout_s: float, sent_at: float
) -> OfferHead:
    return OfferHead(
        type="offer", agent_id=agent_id, call=call, ring_timeout_s=ring_timeout_s, sent_at=sent_at
    )


def state_changed(
    agent_id: str,
    state: str,
    *,
    previous: str | None,
    reason: str | None,
    call_id: str | None,
    at: float,
) -> StateFrame:
    return StateFrame(
        type="state",
        agent_id=agent_id,
        state=state,
        previous=previous,
        reason=reason,
        call_id=call_id,
        at=at,
    )


def call_answered(call_id: str, queue_id: str, at: float) -> CallAnsweredFrame:
    return CallAnsweredFrame(
        type="call", event="answered", call_id=call_id, queue_id=queue_id, at=at
    )


def call_ended(call_id: str, *, result: str, answered: bool, at: float) -> CallEndedFrame:
    return CallEndedFrame(
        type="call", event="ended", call_id=call_id, result=result, answered=answered, at=at
    )


# --- wallboard channel frames ------------------------------------------------------------------


class Kpis(TypedDict):
    """One window's figures (definitions: ``app.live.wallboard``)."""

    offered: int
    answered: int
    answered_in_sl: int
    abandoned: int
    short_abandoned: int
    overflowed: int
    failed: int
    service_level: float | None
    abandon_rate: float | None
    asa_s: float | None
    aht_s: float | None


class ScopeFigures(TypedDict):
    """A queue's (or all queues') figures: ``windows`` are ``15m``, ``60m`` and ``today``."""

    waiting: int
    longest_wait_s: float
    agents: dict[str, int]  # agent state value -> number of member agents in it
    windows: dict[str, Kpis]


class WallboardState(TypedDict):
    overall: ScopeFigures
    queues: dict[str, ScopeFigures]


class HistoryPoint(TypedDict):
    """One minute of the wallboard's last-hour chart (all queues)."""

    t: float  # end of the minute (epoch s; the current minute: now)
    sl: float | None  # the 15-minute service level then
    w: int | None  # most callers waiting during the minute (None: unknown)


class SnapshotFrame(TypedDict):
    type: Literal["snapshot"]
    seq: int
    overall: ScopeFigures
    queues: dict[str, ScopeFigures]
    history: NotRequired[list[HistoryPoint]]


class DeltaFrame(TypedDict):
    """What changed since the frame ``seq - 1``: only changed keys, nested dicts diffed."""

    type: Literal["delta"]
    seq: int
    at: float
    overall: NotRequired[dict[str, Any]]
    queues: NotRequired[dict[str, dict[str, Any]]]
    removed_queues: NotRequired[list[str]]


def snapshot(
    seq: int, state: WallboardState, history: list[HistoryPoint] | None = None
) -> SnapshotFrame:
    frame = SnapshotFrame(
        type="snapshot", seq=seq, overall=state["overall"], queues=state["queues"]
    )
    if history is not None:
        frame["history"] = history
    return frame


def delta(
    seq: int,
    at: float,
    *,
    overall: dict[str, Any] | None = None,
    queues: dict[str, dict[str, Any]] | None = None,
    removed_queues: list[str] | None = None,
) -> DeltaFrame:
    frame = DeltaFrame(type="delta", seq=seq, at=at)
    if overall:
        frame["overall"] = overall
    if queues:
        frame["queues"] = queues
    if removed_queues:
        frame["removed_queues"] = removed_queues
    return frame


Frame = (
    HelloFrame
    | StateFrame
    | CallAnsweredFrame
    | CallEndedFrame
    | OfferHead
    | SnapshotFrame
    | DeltaFrame
)

# --- serialisation -----------------------------------------------------------------------------

# JSON text of one screen pop (``app.crm.ScreenPop`` dumped in JSON mode), made only by
# ``encode_pop``: a call keeps its pop as text (one string instead of a tree of objects
# the garbage collector scans for the whole call) and ``encode_offer`` inserts it.
PopJson = NewType("PopJson", str)


def _dumps(value: object) -> str:
    # No ``default=``: a value JSON cannot carry is a bug here, not something to stringify.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode(frame: Frame) -> str:
    """The text of one frame."""
    return _dumps(frame)


def encode_pop(pop: dict[str, Any]) -> PopJson:
    """The JSON text of a screen pop (JSON-ready: ``ScreenPop.model_dump(mode="json")``)."""
    return PopJson(_dumps(pop))


def encode_offer(head: OfferHead, pop: PopJson | None) -> str:
    """The text of an ``offer`` frame: ``head`` plus ``"pop"`` (the pop, or ``null``).

    The one place frame text is joined rather than dumped whole, so that the pop, already
    serialised when the call was classified, is not parsed and dumped again on the routing
    path.  It is safe because ``head`` is dumped here as a JSON object that has no ``pop``
    key (``OfferHead`` has none), so its text ends with ``}``, and ``pop`` is the JSON text
    of one value, made only by ``encode_pop``.
    """
    text = _dumps(head)
    assert text.endswith("}") and "pop" not in head
    return f'{text[:-1]},"pop":{"null" if pop is None else pop}}}'
