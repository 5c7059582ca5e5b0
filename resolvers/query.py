"""Query resolvers: thin calls into the domain services."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.access import Action
from domain.errors import Unauthenticated, ValidationFailed
from domain.import_rows import Refusal
from resolvers.permissions import CanList, CanReadProfile, IsAdmin
from resolvers.unmerge import UnmergeQuery
from resolvers.viewer import ViewerQuery
from schema.activity import Conversation, Event
from schema.context import Info
from schema.cursors import profile_after
from schema.enums import Channel
from schema.filters import Search, Where
from schema.ids import Kind, key_of, parse, require
from schema.imports import ImportJob
from schema.node import Node
from schema.pages import DEFAULT_PAGE, After, First, page_size
from schema.segments import Segment
from schema.types import MergeSuggestion, Profile, ProfileConnection, PropertyDefinition

MAX_NODES = 100


def tenant_of(info: Info) -> str:
    principal = info.context.principal
    if principal is None:  # the permission classes refuse such requests first
        raise Unauthenticated("An API key is required")
    return principal.tenant


async def find_node(info: Info, global_id: str) -> Node | None:
    """The object a global id names in the caller's tenant; None for any other id."""
    parsed = parse(global_id)
    if parsed is None:
        return None
    kind, key = parsed
    tenant = tenant_of(info)
    match kind:
        case Kind.PROFILE:
            profile = await info.context.services.profile(tenant, key)
            return Profile.from_domain(profile) if profile else None
        case Kind.SEGMENT:
            if info.context.principal is not None:  # segments are for dashboards, like `segment`
                info.context.principal.require(Action.LIST)
            segment = await info.context.segments.find(tenant, key)
            return Segment.from_domain(segment, tenant) if segment else None
        case Kind.CONVERSATION:
            conversation = await info.context.activity.conversation(tenant, key)
            return Conversation.from_domain(conversation) if conversation else None
        case Kind.EVENT:
            event = await info.context.activity.event(tenant, key)
            return Event.from_domain(event) if event else None


@strawberry.type(description="What can be read")
class Query(UnmergeQuery, ViewerQuery):
    @strawberry.field(
        permission_classes=[IsAdmin],
        description="An import job of the tenant (POST /import answers its id): its progress "
        "and its refused rows; null if there is no such job",
    )
    async def import_job(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The job's id")],
    ) -> ImportJob | None:
        tenant = tenant_of(info)
        jobs = info.context.request.app.state.runtime.get().imports.jobs
        job = await jobs.get_job(tenant, str(id))
        if job is None:
            return None

        async def load(after: str, limit: int) -> list[Refusal]:
            found: list[Refusal] = await jobs.refusals(tenant, job.id, after, limit)
            return found

        return ImportJob.from_domain(job, load)

    @strawberry.field(
        permission_classes=[CanReadProfile],
        description="Any object by its global id (a profile, segment, conversation or event); "
        "null when the id names nothing in your tenant",
    )
    async def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global id")],
    ) -> Node | None:
        return await find_node(info, str(id))

    @strawberry.field(
        permission_classes=[CanReadProfile],
        description="Objects by their global ids, in the same order; null for an id that names "
        f"nothing in your tenant (at most {MAX_NODES} ids)",
    )
    async def nodes(
        self,
        info: Info,
        ids: Annotated[list[strawberry.ID], strawberry.argument(description="Global ids")],
    ) -> list[Node | None]:
        if len(ids) > MAX_NODES:
            raise ValidationFailed(f"ids holds at most {MAX_NODES} ids", field="ids")
        return [await find_node(info, str(i)) for i in ids]

    @strawberry.field(
        permission_classes=[CanReadProfile],
        description="A profile by id; an id that was merged away returns the survivor",
    )
    async def profile(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The profile's id")],
    ) -> Profile | None:
        key = key_of(Kind.PROFILE, str(id))
        if key is None:
            return None
        found = await info.context.services.profile(tenant_of(info), key)
        return Profile.from_domain(found) if found else None

    @strawberry.field(
        permission_classes=[CanReadProfile], description="The profile holding this userId"
    )
    async def profile_by_user_id(
        self,
        info: Info,
        user_id: Annotated[
            str, strawberry.argument(description="The userId, compared in its normal form")
        ],
    ) -> Profile | None:
        found = await info.context.services.profile_by_user_id(tenant_of(info), user_id)
        return Profile.from_domain(found) if found else None

    @strawberry.field(
        permission_classes=[CanReadProfile],
        description="The profile a sender on a channel belongs to",
    )
    async def profile_by_identity(
        self,
        info: Info,
        channel: Annotated[Channel, strawberry.argument(description="The sender's channel")],
        sender_id: Annotated[
            str, strawberry.argument(description="The sender's id on that channel")
        ],
    ) -> Profile | None:
        found = await info.context.services.profile_by_identity(tenant_of(info), channel, sender_id)
        return Profile.from_domain(found) if found else None

    @strawberry.field(
        permission_classes=[CanList],
        description="Profiles of the tenant, oldest first, at most 100 a page; narrow them "
        "with `where` and `search`",
    )
    async def profiles(
        self,
        info: Info,
        where: Where = None,
        search: Search = None,
        first: First = DEFAULT_PAGE,
        after: After = None,
    ) -> ProfileConnection:
        after_id = profile_after(after)
        page = await info.context.services.list_profiles(
            tenant_of(info), page_size(first), after_id, where.to_raw() if where else None, search
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
        self,
        info: Info,
        profile_id: Annotated[
            strawberry.ID, strawberry.argument(description="The profile to find look-alikes of")
        ],
    ) -> list[MergeSuggestion]:
        key = require(Kind.PROFILE, str(profile_id), field="profileId")
        found = await info.context.identity.merge_suggestions(tenant_of(info), key)
        return [MergeSuggestion.from_domain(s) for s in found]

    @strawberry.field(permission_classes=[CanList], description="Every segment of the tenant")
    async def segments(self, info: Info) -> list[Segment]:
        tenant = tenant_of(info)
        return [Segment.from_domain(s, tenant) for s in await info.context.segments.list(tenant)]

    @strawberry.field(permission_classes=[CanList], description="A segment by id")
    async def segment(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The segment's id")],
    ) -> Segment | None:
        key = key_of(Kind.SEGMENT, str(id))
        if key is None:
            return None
        tenant = tenant_of(info)
        found = await info.context.segments.find(tenant, key)
        return Segment.from_domain(found, tenant) if found else None
