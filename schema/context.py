"""The per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.dataloader import DataLoader

from domain.access import Principal
from domain.activity import ActivityService
from domain.identity import Identity
from domain.identity_management import IdentityManagement
from domain.segments import SegmentService
from domain.services import ProfileService


@dataclass(slots=True)
class Loaders:
    """DataLoaders built per request, so a page of profiles costs one query per kind of data."""

    identities: DataLoader[str, list[Identity]]


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


Info = strawberry.Info[Context, None]
