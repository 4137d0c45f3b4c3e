"""``python -m app.reports <command>``: the reports' maintenance commands.

- ``reconcile --from T --to T``: the rollups of the range against each other and the
  calls table (``app.reports.reconcile``); prints JSON, exits 1 on a mismatch.
- ``rebuild --from T --to T``: recompute every interval of the range (after a backfill,
  late rows, or a change of a queue's threshold).
- ``export --month YYYY-MM --dir DIR [--format csv|copy]``: write the month's calls,
  call events and agent state history (``app.reports.archive``) before retention purges
  them.
- ``retention``: run the daily retention job once now (``app.reports.retention_job``).

Times are ISO 8601 with a zone (``2026-12-01T00:00:00+08:00``).  The database is the
service's (``SWITCHBOARD_DATABASE__URL``, or the embedded one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from app.db import open_database
from app.reports.archive import export_month
from app.reports.reconcile import reconcile
from app.reports.retention_job import RetentionJob
from app.reports.rollup import RollupMaintainer
from app.settings import Settings


def _when(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a time zone")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.reports")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (
        ("reconcile", "check the rollups against each other and the calls table"),
        ("rebuild", "recompute the rollups of a range"),
    ):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--from", dest="start", type=_when, required=True)
        p.add_argument("--to", dest="end", type=_when, required=True)
    export = sub.add_parser("export", help="write a month's records for archiving")
    export.add_argument("--month", type=_month, required=True)
    export.add_argument("--dir", dest="directory", type=Path, required=True)
    export.add_argument("--format", dest="fmt", choices=["csv", "copy"], default="csv")
    sub.add_parser("retention", help="run the retention job once now")
    return parser


def _month(text: str) -> date:
    try:
        year, month = text.split("-")
        return date(int(year), int(month), 1)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not YYYY-MM") from exc


async def _main(args: argparse.Namespace, settings: Settings) -> int:
    kpi = settings.kpi
    async with open_database(settings.database) as db:
        if args.command == "export":
            counts = await export_month(db.engine, args.month, args.directory, fmt=args.fmt)
            print(json.dumps({"month": f"{args.month:%Y-%m}", "rows": counts}))
            return 0
        if args.command == "retention":
            job = RetentionJob(db.sessionmaker, retention_days=settings.outcomes.retention_days)
            run = await job.run_once(datetime.now(UTC))
            print(
                json.dumps(
                    {
                        "cutoff": run.cutoff.isoformat(),
                        "partitions_made": run.partitions_made,
                        "partitions_dropped": run.partitions_dropped,
                        "deleted": run.deleted,
                    }
                )
            )
            return 0
        if args.command == "rebuild":
            maintainer = RollupMaintainer(
                db.sessionmaker,
                short_abandon_s=kpi.short_abandon_s,
                timezone=settings.reports.timezone,
            )
            n = await maintainer.rebuild(args.start, args.end)
            print(json.dumps({"recomputed_intervals": n}))
            return 0
        async with db.sessionmaker() as session:
            result = await reconcile(
                session, args.start, args.end, short_abandon_s=kpi.short_abandon_s
            )
        print(
            json.dumps(
                {
                    "from": result.start.isoformat(),
                    "to": result.end.isoformat(),
                    "ok": result.ok,
                    "totals": result.totals,
                    "mismatches": [
                        {
                            "figure": m.figure,
                            "calls": m.calls,
                            "queues": m.queues,
                            "agents": m.agents,
                        }
                        for m in result.mismatches
                    ],
                },
                indent=2,
            )
        )
        return 0 if result.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return asyncio.run(_main(args, Settings()))


if __name__ == "__main__":
    sys.exit(main())
