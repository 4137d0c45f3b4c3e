"""Errors the routing core raises for illegal *requests* (agent actions, configuration).

Telephony facts that are stale or unknown (a late dial result, a hang-up for a call the
engine already ended) are never errors: ``RoutingEngine.handle`` returns ``[]`` for them,
because real AMI streams produce them all the time.

Invariant: when ``handle`` raises one of these, the engine's state is exactly what it
was before the call (every handler validates before it mutates).

Exception tree (``error_id`` values are the core's stable names for its errors; the HTTP
API maps each class to its own problem, ``app.errors.ROUTING_PROBLEMS``, whose public ids
are listed in ``docs/errors.md``)::

    RoutingError                "routing-error"
    ├── UnknownAgent            "unknown-agent"
    ├── UnknownQueue            "unknown-queue"
    ├── IllegalTransition       "illegal-transition"
    ├── DuplicateCall           "duplicate-call"
    ├── QueueInUse              "queue-in-use"
    └── InvalidConfig           "invalid-config"
"""

from __future__ import annotations

from typing import ClassVar


class RoutingError(Exception):
    """Base class; ``error_id`` is a stable kebab-case id for problem details."""

    error_id: ClassVar[str] = "routing-error"


class UnknownAgent(RoutingError):
    error_id: ClassVar[str] = "unknown-agent"

    def __init__(self, agent_id: str) -> None:
        super().__init__(f"unknown agent {agent_id!r}")
        self.agent_id = agent_id


class UnknownQueue(RoutingError):
    error_id: ClassVar[str] = "unknown-queue"

    def __init__(self, queue_id: str) -> None:
        super().__init__(f"unknown queue {queue_id!r}")
        self.queue_id = queue_id


class IllegalTransition(RoutingError):
    """An agent action that its current state does not allow (e.g. ready while logged out)."""

    error_id: ClassVar[str] = "illegal-transition"

    def __init__(self, agent_id: str, state: str, action: str, detail: str = "") -> None:
        msg = f"agent {agent_id!r} cannot {action} while {state}"
        super().__init__(f"{msg}: {detail}" if detail else msg)
        self.agent_id = agent_id
        self.state = state
        self.action = action


class DuplicateCall(RoutingError):
    error_id: ClassVar[str] = "duplicate-call"

    def __init__(self, call_id: str) -> None:
        super().__init__(f"call {call_id!r} is already known")
        self.call_id = call_id


class QueueInUse(RoutingError):
    """A queue cannot be removed while calls wait in it."""

    error_id: ClassVar[str] = "queue-in-use"

    def __init__(self, queue_id: str, calls: int) -> None:
        super().__init__(f"queue {queue_id!r} still holds {calls} unanswered call(s)")
        self.queue_id = queue_id
        self.calls = calls


class InvalidConfig(RoutingError):
    """A queue or agent configuration that cannot be routed (bad levels, timeouts...)."""

    error_id: ClassVar[str] = "invalid-config"

    def __init__(self, subject: str, detail: str) -> None:
        super().__init__(f"{subject}: {detail}")
        self.subject = subject
        self.detail = detail
