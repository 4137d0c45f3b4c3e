"""``python -m app`` (``make run``): the service under uvicorn, exactly one worker.

One worker on purpose: each process would log in to every Asterisk server and make its
own routing decisions (duplicate offers).  Scale the routing core, not the workers.
"""

from __future__ import annotations

import logging
import sys
import warnings

import uvicorn

from app.settings import DEFAULT_ADMIN_PASSWORD, Settings


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
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    from app.main import create_app

    app = create_app(settings)
    print(banner(settings), flush=True)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        workers=1,
        log_level=settings.log_level.lower(),
        ws="websockets-sansio",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
