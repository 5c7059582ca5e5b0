"""Query resolvers: thin calls into the profile service."""

from __future__ import annotations

import strawberry

from domain.errors import Unauthenticated, ValidationFailed
from resolvers.permissions import CanList, CanReadProfile
from schema.context import Info
from schema.enums import Channel
from schema.types import Profile, ProfileConnection, PropertyDefinition, decode_cursor


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
        description="Profiles of the tenant, oldest first, at most 100 a page",
    )
    async def profiles(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> ProfileConnection:
        after_id = None
        if after is not None:
            after_id = decode_cursor(after)
            if after_id is None:
                raise ValidationFailed("after is not a cursor this API returned", field="after")
        page = await info.context.services.list_profiles(tenant_of(info), first, after_id)
        return ProfileConnection.from_page(page.profiles, page.has_next, after_id is not None)

    @strawberry.field(
        permission_classes=[CanReadProfile],
        description="System and custom property definitions",
    )
    async def property_definitions(self, info: Info) -> list[PropertyDefinition]:
        found = await info.context.services.definitions.all(tenant_of(info))
        return [PropertyDefinition.from_domain(d) for d in found]
