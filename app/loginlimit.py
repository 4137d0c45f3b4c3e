"""Login throttling: failed sign-ins per user name and per client address, and a bound on
the argon2 verifications running at once.

Invariants:
- A user name with ``per_user`` failed logins, or an address with ``per_address`` failed
  logins (any user names), within the last ``window_s`` seconds is refused with 429
  ``too-many-requests`` and ``Retry-After`` (seconds until the oldest counted failure
  leaves the window) before any password is checked.  A successful login clears the
  user name's failures, not the address's.
- At most ``max_verifying`` logins verify a password at once (argon2id costs ~64 MiB
  and tens of ms of CPU each, in a worker thread); one more is refused at once with 429
  instead of queueing, so a flood can neither exhaust memory nor delay real sign-ins by
  seconds.
- Only failures are counted per address: a whole center behind one NAT address signing
  in at the start of a shift is not throttled as long as the passwords are right.
- A lock-out is logged once, when it starts: the user name and the address, never the
  password.
- State is in memory, for this process only (the service runs as one process); the
  tables are pruned, so random user names cannot grow them without bound.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator

from app.errors import TooManyRequests

logger = logging.getLogger(__name__)

# Past this many tracked keys, a failure prunes the keys whose window has passed.
_PRUNE_AT = 10_000


class SlidingWindow:
    """Failure times per key over the last ``window_s`` seconds, at most ``limit`` each."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._times: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._times.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._times[key]
            return None
        return times

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again; 0 if it may now."""
        times = self._recent(key, now)
        if times is None or len(times) < self.limit:
            return 0.0
        return times[-self.limit] + self.window_s - now

    def add(self, key: str, now: float) -> bool:
        """Count a failure; True if it is the one that reaches the limit."""
        times = self._recent(key, now)
        if times is None:
            if len(self._times) >= _PRUNE_AT:
                self.prune(now)
            times = self._times[key] = deque(maxlen=self.limit)
        times.append(now)
        return len(times) == self.limit

    def clear(self, key: str) -> None:
        self._times.pop(key, None)

    def prune(self, now: float) -> None:
        for key in list(self._times):
            self._recent(key, now)

    def __len__(self) -> int:
        return len(self._times)


class LoginLimiter:
    def __init__(
        self,
        *,
        per_user: int,
        per_address: int,
        window_s: float,
        max_verifying: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users = SlidingWindow(per_user, window_s)
        self.addresses = SlidingWindow(per_address, window_s)
        self.max_verifying = max_verifying
        self.verifying = 0
        self.peak_verifying = 0
        self._clock = clock

    @staticmethod
    def _user_key(username: str) -> str:
        return username.casefold()

    def check(self, username: str, address: str) -> None:
        """``TooManyRequests`` if the user name or the address is locked out now."""
        now = self._clock()
        wait = max(
            self.users.retry_after(self._user_key(username), now),
            self.addresses.retry_after(address, now),
        )
        if wait > 0:
            raise TooManyRequests(
                "Too many failed sign-ins; try again later.",
                retry_after=math.ceil(wait),
            )

    @contextlib.contextmanager
    def verifying_slot(self) -> Iterator[None]:
        """Hold one of ``max_verifying`` slots, or ``TooManyRequests`` at once if none is free.

        No await between the test and the increment: the event loop is the lock.
        """
        if self.verifying >= self.max_verifying:
            raise TooManyRequests("Too many sign-ins at once; try again shortly.", retry_after=1)
        self.verifying += 1
        self.peak_verifying = max(self.peak_verifying, self.verifying)
        try:
            yield
        finally:
            self.verifying -= 1

    def failed(self, username: str, address: str) -> None:
        now = self._clock()
        if self.users.add(self._user_key(username), now):
            logger.warning(
                "login locked out for user %r (from %s): %d failures in %.0f s",
                username,
                address,
                self.users.limit,
                self.users.window_s,
            )
        if self.addresses.add(address, now):
            logger.warning(
                "login locked out for address %s: %d failures in %.0f s",
                address,
                self.addresses.limit,
                self.addresses.window_s,
            )

    def succeeded(self, username: str) -> None:
        self.users.clear(self._user_key(username))
