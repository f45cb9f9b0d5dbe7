"""Counting attempts in a sliding window, in memory (one count per server process).

Used where there is no account to lock (the patient diary: writes per link, refused link
openings per client address). The counts live in the process: a server restart forgets them,
and several server processes each count for themselves, so a limit of N per hour is N per
hour per process. That bounds abuse of one process without a shared store; a clinic that runs
many processes behind a proxy limits there as well (docs/diary.md).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from datetime import datetime, timedelta


class SlidingWindow:
    """At most ``limit`` attempts per key within ``window``; at most ``max_keys`` keys are
    remembered (the least recently seen are forgotten first), so memory stays bounded."""

    def __init__(self, window: timedelta, *, max_keys: int = 10_000) -> None:
        self.window = window
        self.max_keys = max_keys
        self._seen: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._seen.get(key)
        if times is None:
            times = deque()
            self._seen[key] = times
            while len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)
        self._seen.move_to_end(key)
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def count(self, key: str, now: datetime) -> int:
        """The attempts of ``key`` within the window before ``now``."""
        with self._lock:
            return len(self._recent(key, now))

    def over(self, key: str, limit: int, now: datetime) -> bool:
        """Whether ``key`` has already reached ``limit`` attempts within the window."""
        return self.count(key, now) >= limit

    def hit(self, key: str, limit: int, now: datetime) -> bool:
        """Count one attempt of ``key``; False (and not counted) when it would exceed
        ``limit``."""
        with self._lock:
            times = self._recent(key, now)
            if len(times) >= limit:
                return False
            times.append(now)
            return True

    def retry_after(self, key: str, now: datetime) -> timedelta:
        """How long until the oldest attempt in the window leaves it."""
        with self._lock:
            times = self._recent(key, now)
            return (times[0] + self.window - now) if times else timedelta(0)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()
