"""A protocol-faithful fake Asterisk 22 AMI server for tests, the demo and load tests.

Public API: ``AsteriskSimulator`` (start/close, traffic, faults, introspection) and the
value types ``SimUser``, ``DeviceProfile``, ``ChannelInfo``, ``CallTrace``, ``SimStats``.
Run ``python -m cti.simulator --help`` for the command line.
"""

from cti.simulator.engine import AsteriskSimulator
from cti.simulator.model import (
    LAB_PROFILES,
    ROUTER_EVENTS,
    CallTrace,
    ChannelInfo,
    DeviceProfile,
    SimStats,
    SimUser,
    lab_users,
)

__all__ = [
    "LAB_PROFILES",
    "ROUTER_EVENTS",
    "AsteriskSimulator",
    "CallTrace",
    "ChannelInfo",
    "DeviceProfile",
    "SimStats",
    "SimUser",
    "lab_users",
]
