"""Agent state history (``agent_state_log``, written by ``writer``) and pause codes.

Exports the pause-code router; the composition root (``app.main``) mounts it and wires
the writer to the live runtime's notifications."""

from app.agentlog.routes import router

__all__ = ["router"]
