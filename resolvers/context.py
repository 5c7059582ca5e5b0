"""Building the per-request context: the caller, the services, and fresh DataLoaders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strawberry.dataloader import DataLoader

from domain.access import Principal
from domain.activity import ActivityService
from domain.identity import Identity
from domain.identity_management import IdentityManagement
from domain.segments import SegmentService
from domain.services import ProfileService
from resolvers.loaders import (
    ActivityByProfileLoader,
    CountBySegmentLoader,
    EventHistoryByProfileLoader,
)
from schema.context import Context, Loaders


class IdentitiesByProfileLoader(DataLoader[str, list[Identity]]):
    """All identity keys of a batch of profiles in one query."""

    def __init__(self, services: ProfileService, tenant: str | None) -> None:
        self._services = services
        self._tenant = tenant
        super().__init__(load_fn=self._load)

    async def _load(self, profile_ids: Sequence[str]) -> list[list[Identity]]:
        if self._tenant is None:
            return [[] for _ in profile_ids]
        found = await self._services.identities(self._tenant, profile_ids)
        return [list(found.get(pid, [])) for pid in profile_ids]


def build_context(
    principal: Principal | None,
    services: ProfileService,
    activity: ActivityService,
    segments: SegmentService,
    identity: IdentityManagement,
    request: Any,
    response: Any,
) -> Context:
    tenant = principal.tenant if principal else None
    return Context(
        principal=principal,
        services=services,
        activity=activity,
        segments=segments,
        identity=identity,
        loaders=Loaders(
            identities=IdentitiesByProfileLoader(services, tenant),
            event_history=EventHistoryByProfileLoader(activity),
            activity=ActivityByProfileLoader(activity),
            segment_count=CountBySegmentLoader(segments),
        ),
        request=request,
        response=response,
    )
