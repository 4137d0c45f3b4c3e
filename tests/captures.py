"""Where the recorded AMI streams (``shared/ami-captures/*.ami``) are, for every test
package that replays them.

``SWITCHBOARD_AMI_CAPTURES`` when set; else ``shared/ami-captures`` beside the checkout
(CI's layout: a clone with ``shared/`` next to it); else ``/work/shared/ami-captures``.
"""

from __future__ import annotations

import os
from pathlib import Path


def _captures_dir() -> Path:
    configured = os.environ.get("SWITCHBOARD_AMI_CAPTURES")
    if configured:
        return Path(configured)
    beside = Path(__file__).resolve().parents[2] / "shared" / "ami-captures"
    return beside if beside.is_dir() else Path("/work/shared/ami-captures")


CAPTURES = _captures_dir()
