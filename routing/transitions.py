"""The engine's transition tables as data: (request or fact, current state) -> outcome.

Every outcome is an ``Enum`` member and every handler that reads one ends its branches
in ``typing.assert_never``, so a new outcome or a misspelt one fails type checking
instead of falling through an ``if``/``elif`` chain (the approach of h11's
``_state.py``).  Tables are keyed by the state's *value*: an enum member's ``__hash__``
is a Python call, a str's hash is cached (these look-ups sit on the routing hot path).
The rules behind each row are in ``docs/routing.md``.
"""

from __future__ import annotations

from enum import Enum

from routing.commands import AgentState
from routing.views import CallState

_LOGGED_OUT = AgentState.LOGGED_OUT
_READY = AgentState.READY
_RESERVED = AgentState.RESERVED
_ON_CALL = AgentState.ON_CALL
_WRAP_UP = AgentState.WRAP_UP
_PAUSED = AgentState.PAUSED


class Login(Enum):
    """Outcome of ``AgentLogin``."""

    LOGIN = "login"  # LOGGED_OUT -> PAUSED("login") on the device
    SAME_DEVICE = "same-device"  # already logged in: no-op on that device, illegal on another


class Ready(Enum):
    """Outcome of ``AgentReady``."""

    ILLEGAL = "illegal"  # raise IllegalTransition, nothing changes
    NOOP = "noop"  # already READY
    CLEAR = "clear"  # ON_CALL: forget a pending pause/logout
    END_WRAPUP = "end-wrapup"  # WRAP_UP ends early -> READY (WrapUpEnded)
    READY = "ready"  # PAUSED -> READY (idle clock restarts)


class Leave(Enum):
    """Outcome of a pause, logout or disconnect (the agent leaves the line)."""

    ILLEGAL = "illegal"  # raise IllegalTransition, nothing changes
    NOOP = "noop"  # a disconnect while logged out: a fact, nothing to undo
    APPLY = "apply"  # READY/PAUSED -> PAUSED(reason) / LOGGED_OUT now
    WITHDRAW = "withdraw"  # RESERVED: ReturnToHold, re-route the call, then apply
    DEFER = "defer"  # ON_CALL: remember, apply after the call
    WRAPUP_APPLY = "wrapup-apply"  # WRAP_UP: WrapUpEnded, then apply


class LeaveAction(Enum):
    """The three ways an agent leaves the line; the value is the action's word in errors."""

    PAUSE = "pause"
    LOGOUT = "logout"
    DISCONNECT = "disconnect"


class Pending(Enum):
    """What an agent on a call asked for, applied when the call ends (latest wins)."""

    PAUSE = "pause"
    LOGOUT = "logout"


class CallFact(Enum):
    """A telephony fact that ends a call (unknown calls are ignored: a late fact)."""

    HANGUP = "hangup"
    FAILED = "failed"
    TRANSFERRED = "transferred"


class CallEnd(Enum):
    """Outcome of a ``CallFact`` for the call's state."""

    ABANDON = "abandon"  # waiting caller hung up
    ABANDON_RINGING = "abandon-ringing"  # agent back to READY, keeps its place
    FAIL = "fail"  # agent (if any) freed to READY, keeps its place, no wrap-up
    LEFT = "left"  # transferred out of ACD control before an answer
    END_ANSWERED = "end-answered"  # agent to wrap-up if still on the call
    END_TRANSFERRED = "end-transferred"  # answered, then transferred away


class Step(Enum):
    """What a queue's schedule step does when it comes due."""

    ESCALATE = "escalate"  # relax / widen only
    OVERFLOW = "overflow"  # escalation step with overflow=True
    MAX_WAIT = "max-wait"  # the queue's max_wait_s


LOGIN: dict[str, Login] = {
    s._value_: Login.LOGIN if s is _LOGGED_OUT else Login.SAME_DEVICE for s in AgentState
}

READY: dict[str, Ready] = {
    _LOGGED_OUT._value_: Ready.ILLEGAL,
    _READY._value_: Ready.NOOP,
    _RESERVED._value_: Ready.ILLEGAL,
    _ON_CALL._value_: Ready.CLEAR,
    _WRAP_UP._value_: Ready.END_WRAPUP,
    _PAUSED._value_: Ready.READY,
}

_LEAVE_WHILE_LOGGED_IN: dict[str, Leave] = {
    _READY._value_: Leave.APPLY,
    _PAUSED._value_: Leave.APPLY,
    _RESERVED._value_: Leave.WITHDRAW,
    _ON_CALL._value_: Leave.DEFER,
    _WRAP_UP._value_: Leave.WRAPUP_APPLY,
}

LEAVE: dict[LeaveAction, dict[str, Leave]] = {
    LeaveAction.PAUSE: {**_LEAVE_WHILE_LOGGED_IN, _LOGGED_OUT._value_: Leave.ILLEGAL},
    LeaveAction.LOGOUT: {**_LEAVE_WHILE_LOGGED_IN, _LOGGED_OUT._value_: Leave.ILLEGAL},
    LeaveAction.DISCONNECT: {**_LEAVE_WHILE_LOGGED_IN, _LOGGED_OUT._value_: Leave.NOOP},
}

_WAITING = CallState.WAITING._value_
_OFFERED = CallState.OFFERED._value_
_CONNECTED = CallState.CONNECTED._value_

CALL: dict[CallFact, dict[str, CallEnd]] = {
    CallFact.HANGUP: {
        _WAITING: CallEnd.ABANDON,
        _OFFERED: CallEnd.ABANDON_RINGING,
        _CONNECTED: CallEnd.END_ANSWERED,
    },
    CallFact.FAILED: {_WAITING: CallEnd.FAIL, _OFFERED: CallEnd.FAIL, _CONNECTED: CallEnd.FAIL},
    CallFact.TRANSFERRED: {
        _WAITING: CallEnd.LEFT,
        _OFFERED: CallEnd.LEFT,
        _CONNECTED: CallEnd.END_TRANSFERRED,
    },
}

# Every row is complete: an (action, state) pair missing from a table would be a KeyError
# on the hot path, so the module refuses to import instead.
_AGENT_ROWS: tuple[dict[str, Login] | dict[str, Ready] | dict[str, Leave], ...] = (
    LOGIN,
    READY,
    *LEAVE.values(),
)
assert all(row.keys() == {s._value_ for s in AgentState} for row in _AGENT_ROWS)
assert all(row.keys() == {s._value_ for s in CallState} for row in CALL.values())
