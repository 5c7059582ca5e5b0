"""Query resolvers: thin calls into the domain services."""

from __future__ import annotations

import strawberry

from domain.errors import Unauthenticated
from resolvers.permissions import CanList, CanReadProfile
from schema.context import Info
from schema.cursors import profile_after
from schema.enums import Channel
from schema.filters import ProfileFilter
from schema.segments import Segment
from schema.types import MergeSuggestion, Profile, ProfileConnection, PropertyDefinition


def tenant_of(info: Info) -> str:
    principal = info.context.principal
    if principal is None:  # the permission classes refuse such requests first
        raise Unauthenticated("An API key is required")
    return principal.tenant


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[CanReadProfile],
        description="A profile by id; an id that was merged away returns the survivor",
    )
    async def profile(self, info: Info, id: strawberry.ID) -> Profile | None:
        found = await info.context.services.profile(tenant_of(info), str(id))
        return Profile.from_domain(found) if found else None

    @strawberry.field(permission_classes=[CanReadProfile])
    async def profile_by_user_id(self, info: Info, user_id: str) -> Profile | None:
        found = await info.context.services.profile_by_user_id(tenant_of(info), user_id)
        return Profile.from_domain(found) if found else None

    @strawberry.field(permission_classes=[CanReadProfile])
    async def profile_by_identity(
        self, info: Info, channel: Channel, sender_id: str
    ) -> Profile | None:
        found = await info.context.services.profile_by_identity(tenant_of(info), channel, sender_id)
        return Profile.from_domain(found) if found else None

    @strawberry.field(
        permission_classes=[CanList],
        description="Profiles of the tenant, oldest first, at most 100 a page; filter with "
        "`where` (SPEC §8) and `search` (names, email, phone, userId)",
    )
    async def profiles(
        self,
        info: Info,
        where: ProfileFilter | None = None,
        search: str | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> ProfileConnection:
        after_id = profile_after(after)
        page = await info.context.services.list_profiles(
            tenant_of(info), first, after_id, where.to_raw() if where else None, search
        )
        return ProfileConnection.from_page(page.profiles, page.has_next, after_id is not None)

    @strawberry.field(
        permission_classes=[CanReadProfile],
        description="System and custom property definitions",
    )
    async def property_definitions(self, info: Info) -> list[PropertyDefinition]:
        found = await info.context.services.definitions.all(tenant_of(info))
        return [PropertyDefinition.from_domain(d) for d in found]

    @strawberry.field(
        permission_classes=[CanList],
        description="Profiles sharing a phone, an email (also Gmail-normalised) or an external "
        "id with this one, best first; suggestions never merge anything",
    )
    async def merge_suggestions(
        self, info: Info, profile_id: strawberry.ID
    ) -> list[MergeSuggestion]:
        found = await info.context.identity.merge_suggestions(tenant_of(info), str(profile_id))
        return [
            MergeSuggestion(
                profile=Profile.from_domain(s.profile), matched_on=list(s.matched_on), score=s.score
            )
            for s in found
        ]

    @strawberry.field(permission_classes=[CanList])
    async def segments(self, info: Info) -> list[Segment]:
        tenant = tenant_of(info)
        return [Segment.from_domain(s, tenant) for s in await info.context.segments.list(tenant)]

    @strawberry.field(permission_classes=[CanList])
    async def segment(self, info: Info, id: strawberry.ID) -> Segment | None:
        tenant = tenant_of(info)
        found = await info.context.segments.find(tenant, str(id))
        return Segment.from_domain(found, tenant) if found else None
