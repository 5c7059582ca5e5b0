"""Per-key rate limiting: a token bucket per API key, sized by the key's role.

Buckets live in the process: with N processes behind a balancer a key gets up to N times its
rate. That bounds abuse; it is not a quota system.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from domain.access import Principal, Role


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Allows each key `per_minute[role]` requests a minute, in bursts of up to that many."""

    def __init__(
        self, per_minute: Mapping[Role, int], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_minute = dict(per_minute)
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def retry_after(self, principal: Principal) -> int | None:
        """None if the request may go ahead (and it is counted); else seconds to wait."""
        rate = self._per_minute.get(principal.role, 0)
        if rate <= 0:
            return None
        now = self.clock()
        key = principal.key_id or principal.key_name
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 100_000:
                self._buckets.clear()
            bucket = self._buckets[key] = _Bucket(tokens=float(rate), updated=now)
        per_second = rate / 60
        bucket.tokens = min(float(rate), bucket.tokens + (now - bucket.updated) * per_second)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return max(1, math.ceil((1 - bucket.tokens) / per_second))
