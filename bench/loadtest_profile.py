"""Where the service spends its CPU during a load test: py-spy + a collapsed-stack summary.

``python -m bench.loadtest ... --profile`` attaches ``py-spy record --pid`` to the service
for the traffic phases (``--format raw``: collapsed stacks) and summarises the result
into the report: the top functions by self time and by inclusive time, as a share of
all samples.  ``python -m bench.loadtest_profile FILE`` prints the same summary for a
file recorded by hand.

py-spy is an investigation tool, not a dependency: install it into the venv
(``.venv/bin/pip install py-spy``) when you want a profile; without it ``--profile``
fails with a clear message before any traffic starts.

Invariants: the summary only reads the collapsed file; a frame is ``function (file:line)``
as py-spy prints it, and the line number is dropped so one function is one row.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_LINE = re.compile(r":\d+\)$")


def py_spy_path() -> str:
    """The py-spy binary next to the interpreter (the venv) or on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    if local.exists():
        return str(local)
    found = shutil.which("py-spy")
    if found is None:
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


_REPO = str(Path(__file__).resolve().parents[1]) + "/"


def _frame(raw: str) -> str:
    frame = _LINE.sub(")", raw.strip())
    # Shorten absolute paths to the part after site-packages / the repo.
    for marker in ("site-packages/", _REPO, "lib/python3.11/"):
        i = frame.find(marker)
        if i >= 0:
            open_paren = frame.rfind("(", 0, i)
            if open_paren >= 0:
                frame = frame[: open_paren + 1] + frame[i + len(marker) :]
    return frame


def summarize_collapsed(path: Path, top: int = 25) -> dict[str, Any]:
    """Top functions by self and inclusive samples from a py-spy ``--format raw`` file."""
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    total = 0
    idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = [_frame(f) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        total += count
        leaf = frames[-1]
        # The event loop waiting in epoll/select is idle time, not work.
        if leaf.startswith(("select (", "poll (", "_run_once (")) and "selectors" in leaf:
            idle += count
        self_counts[leaf] += count
        for f in set(frames):
            incl_counts[f] += count

    def rows(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": f, "samples": n, "share": round(n / total, 4) if total else 0.0}
            for f, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "idle_share": round(idle / total, 4) if total else None,
        "top_self": rows(self_counts),
        "top_inclusive": rows(incl_counts),
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m bench.loadtest_profile COLLAPSED_FILE [TOP]", file=sys.stderr)
        return 2
    top = int(args[1]) if len(args) > 1 else 25
    print(json.dumps(summarize_collapsed(Path(args[0]), top), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
