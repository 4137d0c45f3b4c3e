"""Where the recorded AMI streams are, for every test package that replays them.

The captures the tests use live inside the repository, in ``tests/fixtures/ami/`` (copied
from a real Asterisk 22; see the README there), so a clone runs the whole suite on its own.
``SWITCHBOARD_AMI_CAPTURES`` points elsewhere when set (e.g. a newer recording).
"""

from __future__ import annotations

import os
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ami"


def _captures_dir() -> Path:
    configured = os.environ.get("SWITCHBOARD_AMI_CAPTURES")
    return Path(configured) if configured else FIXTURES


CAPTURES = _captures_dir()
