"""The case workflow: stages and which change each allows (pure)."""

from __future__ import annotations

STAGES = ("registered", "accepted", "handling", "replied", "closed", "archived")
CLOSED_STAGES = frozenset({"closed", "archived"})
CHANNELS = ("phone", "email", "letter", "visit", "other")

# registered -> accepted -> handling -> replied -> closed -> archived.  A customer not
# satisfied with the reply sends it back to handling; an invalid registration is closed.
TRANSITIONS: dict[str, frozenset[str]] = {
    "registered": frozenset({"accepted", "closed"}),
    "accepted": frozenset({"handling"}),
    "handling": frozenset({"replied"}),
    "replied": frozenset({"closed", "handling"}),
    "closed": frozenset({"archived"}),
    "archived": frozenset(),
}

# Escalation levels: who holds the case now.
LEVELS = ("owner", "supervisor", "manager")
TOP_LEVEL = len(LEVELS) - 1


def allowed(stage: str, to: str) -> bool:
    return to in TRANSITIONS.get(stage, frozenset())
