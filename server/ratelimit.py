"""Per-key rate limiting: a token bucket per API key, sized by the key's role. A request takes
one token; an operation whose estimated cost is over COST_PER_REQUEST takes one more token for
each further COST_PER_REQUEST (charged once its cost is known, so it slows the key's next
requests), so a key's rate bounds its work, not only its requests.

Buckets live in the process: with N processes behind a balancer a key gets up to N times its
rate. That bounds abuse; it is not a quota system.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from domain.access import Principal, Role

COST_PER_REQUEST = 1000


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

    def charge_cost(self, principal: Principal, cost: int) -> None:
        """Takes the tokens an operation's cost adds to its request's one. The bucket may go
        below zero (the next requests wait), never below a minute's worth of debt."""
        extra = max(0, cost - COST_PER_REQUEST) / COST_PER_REQUEST
        rate = self._per_minute.get(principal.role, 0)
        bucket = self._buckets.get(principal.key_id or principal.key_name)
        if rate <= 0 or bucket is None or extra == 0:
            return
        bucket.tokens = max(-float(rate), bucket.tokens - extra)
