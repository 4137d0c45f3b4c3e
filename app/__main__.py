"""``python -m app`` (``make run``): the service under uvicorn, exactly one worker.

One worker on purpose: each process would log in to every Asterisk server and make its
own routing decisions (duplicate offers).  Scale the routing core, not the workers.

Process-wide policies live here, not in the library (tests build many apps in one
process): logging, and the garbage collector's tuning (``tune_gc``).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import sys
import warnings
from collections.abc import Callable

import uvicorn

from app.settings import DEFAULT_ADMIN_PASSWORD, DEFAULT_JWT_SECRET, Settings
from app.slowheaders import header_timeout_protocol

logger = logging.getLogger("app")


# (young, middle, full) collection thresholds for the service process; CPython's default
# is (700, 10, 10).  Why these values: see ``tune_gc``.
GC_THRESHOLDS = (5_000, 4, 100)


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    """After every full (generation 2) collection, ``gc.freeze()`` its survivors."""
    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


def freeze_now() -> None:
    """Move everything alive now out of the collector's view (called once started)."""
    gc.freeze()
    logger.debug("gc: %d objects frozen", gc.get_freeze_count())


def tune_gc() -> Callable[[], None]:
    """Tune the collector for a long-running service; returns the function that undoes it.

    - The routing state loaded at start lives as long as the service: once started,
      ``freeze_now`` moves it out of the collector's view, so full collections stop
      rescanning it (each rescan is a routing decision stalled).
    - A call's objects (screen pop, metadata, records) live for its whole talk time, so
      they survive the young generations and, at tens of calls per second, keep triggering
      full collections, each of which stops the event loop.  Young collections stay cheap
      with a larger first threshold; full ones become ~10x rarer.  Most objects are freed
      by reference counting anyway; only cyclic garbage waits longer.
    - The middle generation holds what survived the young collections since its last
      collection, and its pause grows with it: collecting it every 4 young collections
      instead of 20 keeps it about ten times smaller.
    - What logs in after start (agents' sessions and indexes) is long-lived too: each full
      collection is followed by a freeze, so the next one scans only what is newer.
      (Cyclic garbage made of objects frozen while alive is never collected; reference
      counting frees everything else.)

    The measurements behind each point: docs/loadtest.md, "History of measurements".
    """
    previous = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    gc.callbacks.append(_freeze_survivors)

    def undo() -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(_freeze_survivors)
        gc.set_threshold(*previous)
        gc.unfreeze()

    return undo


def banner(settings: Settings) -> str:
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        "Switchboard" + (" (demo mode: built-in AMI simulator)" if settings.demo_mode else ""),
        f"  API docs    {base}/docs",
        f"  wallboard   {base}/wallboard",
        f"  agent       {base}/agent",
        f"  supervisor  {base}/supervisor",
        f"  websockets  ws://{settings.host}:{settings.port}/ws/wallboard, /ws/agents/<agent_id>",
    ]
    if settings.demo_mode:
        password = settings.auth.admin_password.get_secret_value()
        shown = password if password == DEFAULT_ADMIN_PASSWORD else "<as configured>"
        from app.seed import DEMO_PASSWORD

        lines += [
            f"  sign in     {settings.auth.admin_username} / {shown}  (admin)",
            f"              agent1001 / {DEMO_PASSWORD}  (agent; agent<id> for every seat)",
            f"              sup-<team> / {DEMO_PASSWORD}  (supervisor of each team)",
            "  demo traffic: "
            f"{settings.demo_traffic.agents} agents, {settings.demo_traffic.queues} queues, "
            f"{settings.demo_traffic.calls_per_second} calls/s",
        ]
    else:
        lines.append(f"  AMI servers {', '.join(s.name for s in settings.ami.servers)}")
    return "\n".join(lines) + "\n"


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM ends the process through ``sys.exit``, so ``atexit`` handlers run.

    uvicorn handles SIGTERM itself while serving (graceful shutdown), then restores the
    previous handler and raises the signal again: with the default handler the process
    would die there, skipping ``atexit``, and the embedded PostgreSQL it started (stopped
    by pgserver at exit) would keep running after the service.
    """
    raise SystemExit(0)


def main() -> int:
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # pgserver logs every initdb/pg_ctl command line at INFO; only its problems matter here.
    logging.getLogger("pgserver").setLevel(max(logging.WARNING, logging.getLogger().level))
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    try:
        settings.check_secrets()
        settings.check_database()
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if settings.auth.jwt_secret.get_secret_value() == DEFAULT_JWT_SECRET:
        # Only demo mode gets here with it (check_secrets refuses it elsewhere).
        logger.warning(
            "demo mode: the JWT secret is the public default from the source code; anyone "
            "can sign tokens for this service (admin included). Do not expose it; set "
            "SWITCHBOARD_AUTH__JWT_SECRET for anything but a local demo"
        )
    from app.main import create_app

    tune_gc()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    app = create_app(settings, on_started=freeze_now)
    print(banner(settings), flush=True)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        workers=1,
        log_level=settings.log_level.lower(),
        ws="websockets-sansio",
        http=header_timeout_protocol(settings.header_timeout_s),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
