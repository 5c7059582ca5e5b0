"""The per-request context every resolver receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import strawberry
from strawberry.dataloader import DataLoader

from domain.access import Principal
from domain.activity import ActivityPage, ActivityService, EventPage
from domain.identity import Identity
from domain.identity_management import IdentityManagement
from domain.model import Segment
from domain.segments import SegmentService
from domain.services import ProfileService


@dataclass(frozen=True, slots=True)
class EventHistoryKey:
    """One profile's page of events: profiles asking for the same page load together."""

    tenant: str
    profile_id: str
    name: str | None
    first: int
    after: tuple[datetime, str] | None


@dataclass(frozen=True, slots=True)
class ActivityKey:
    """One profile's page of its timeline: profiles asking for the same page load together."""

    tenant: str
    profile_id: str
    first: int
    after: tuple[datetime, str] | None


@dataclass(frozen=True, slots=True)
class SegmentCountKey:
    """A segment to count; segments are counted together, one query for all."""

    tenant: str
    segment: Segment = field(hash=False, compare=False)

    @property
    def cache_key(self) -> tuple[str, str]:
        return self.tenant, self.segment.id


@dataclass(slots=True)
class Loaders:
    """DataLoaders built per request, so a page of profiles costs one query per kind of data."""

    identities: DataLoader[str, list[Identity]]
    event_history: DataLoader[EventHistoryKey, EventPage]
    activity: DataLoader[ActivityKey, ActivityPage]
    segment_count: DataLoader[SegmentCountKey, int]


@dataclass(slots=True)
class Context:
    """Who is asking, the services to ask, and the request's loaders."""

    principal: Principal | None
    services: ProfileService
    activity: ActivityService
    segments: SegmentService
    identity: IdentityManagement
    loaders: Loaders
    request: Any = None
    response: Any = None
    # Set when the key is over its rate: the operation is refused with RATE_LIMITED.
    retry_after: int | None = None
    # Charges the key's rate limit for an operation's estimated cost (set for keyed requests).
    charge_cost: Callable[[int], None] | None = None
    # Why there is no principal (no key, an unknown key, a revoked key): the UNAUTHENTICATED text.
    refusal: str | None = None


Info = strawberry.Info[Context, None]
