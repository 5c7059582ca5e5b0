"""Mutation resolvers: thin calls into the services. Every root field is nullable, so a refused
mutation never hides the committed result of another one in the same request."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.autocapture import CaptureContext
from resolvers.permissions import CanEdit, CanWrite, IsAdmin
from resolvers.query import tenant_of
from resolvers.unmerge import UnmergeMutation
from schema.activity import Conversation, Event
from schema.context import Info
from schema.ids import Kind, profile_id, require, to_global
from schema.inputs import (
    CapturePropertiesInput,
    CreateSegmentInput,
    DefinePropertyInput,
    DeleteProfileInput,
    DeleteSegmentInput,
    DetachIdentityInput,
    IdentifyInput,
    MergeProfilesInput,
    RecordConversationInput,
    TrackEventInput,
    UpdateProfileInput,
    UpdateSegmentInput,
)
from schema.payloads import (
    CapturePropertiesPayload,
    CreateSegmentPayload,
    DefinePropertyPayload,
    DeleteProfilePayload,
    DeleteSegmentPayload,
    DetachIdentityPayload,
    IdentifyPayload,
    MergeProfilesPayload,
    RecordConversationPayload,
    TrackEventPayload,
    UpdateProfilePayload,
    UpdateSegmentPayload,
)
from schema.segments import Segment
from schema.types import Profile, PropertyDefinition


def _actor(info: Info) -> str:
    principal = info.context.principal
    return principal.key_name if principal else ""


def _optional_profile(global_id: strawberry.ID | None, field: str) -> str | None:
    return None if global_id is None else require(Kind.PROFILE, str(global_id), field=field)


_WHAT = "What to do"


@strawberry.type(description="What can be changed")
class Mutation(UnmergeMutation):
    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Record what a bot learned about a sender; creates the profile on first "
        "contact",
    )
    async def capture_properties(
        self,
        info: Info,
        input: Annotated[CapturePropertiesInput, strawberry.argument(description=_WHAT)],
    ) -> CapturePropertiesPayload | None:
        context = input.context.to_domain() if input.context else CaptureContext()
        result = await info.context.services.capture(
            tenant_of(info),
            input.channel,
            input.sender_id,
            input.properties if input.properties is not None else {},
            context,
            actor=_actor(info),
        )
        return CapturePropertiesPayload(
            profile=Profile.from_domain(result.profile), created=result.created
        )

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Tell who a sender is; identifies, merges, switches or creates a profile "
        "(see IdentifyOutcome)",
    )
    async def identify(
        self, info: Info, input: Annotated[IdentifyInput, strawberry.argument(description=_WHAT)]
    ) -> IdentifyPayload | None:
        result = await info.context.services.identify(
            tenant_of(info),
            input.channel,
            input.sender_id,
            input.user_id,
            input.properties if input.properties is not None else {},
            actor=_actor(info),
        )
        merged = result.merged_profile_id
        return IdentifyPayload(
            profile=Profile.from_domain(result.profile),
            outcome=result.outcome,
            merged_profile_id=strawberry.ID(profile_id(merged)) if merged else None,
        )

    @strawberry.mutation(
        permission_classes=[CanEdit],
        description="Change a profile's values and tags (an agent's edit)",
    )
    async def update_profile(
        self,
        info: Info,
        input: Annotated[UpdateProfileInput, strawberry.argument(description=_WHAT)],
    ) -> UpdateProfilePayload | None:
        updated = await info.context.services.update_profile(
            tenant_of(info),
            require(Kind.PROFILE, str(input.id), field="id"),
            input.set if input.set is not None else {},
            input.unset or [],
            input.add_tags or [],
            input.remove_tags or [],
        )
        return UpdateProfilePayload(profile=Profile.from_domain(updated))

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Define a custom property; a definition cannot be changed afterwards",
    )
    async def define_property(
        self,
        info: Info,
        input: Annotated[DefinePropertyInput, strawberry.argument(description=_WHAT)],
    ) -> DefinePropertyPayload | None:
        definition = await info.context.services.define_property(
            tenant_of(info), input.name, input.type, input.description or ""
        )
        return DefinePropertyPayload(property_definition=PropertyDefinition.from_domain(definition))

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Record an event; a retry with the same eventId counts once",
    )
    async def track_event(
        self,
        info: Info,
        input: Annotated[TrackEventInput, strawberry.argument(description=_WHAT)],
    ) -> TrackEventPayload | None:
        result = await info.context.activity.track_event(
            tenant_of(info),
            name=input.name,
            properties=input.properties,
            occurred_at=input.occurred_at,
            event_id=input.event_id,
            channel=input.channel,
            sender_id=input.sender_id,
            profile_id=_optional_profile(input.profile_id, "profileId"),
        )
        return TrackEventPayload(
            profile=Profile.from_domain(result.profile),
            event=Event.from_domain(result.event),
            counted=result.counted,
        )

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Record a chat or ticket, or update it (the same conversationId)",
    )
    async def record_conversation(
        self,
        info: Info,
        input: Annotated[RecordConversationInput, strawberry.argument(description=_WHAT)],
    ) -> RecordConversationPayload | None:
        recorded = await info.context.activity.record_conversation(
            tenant_of(info),
            input.to_domain(),
            channel=input.channel if input.sender_id is not None else None,
            sender_id=input.sender_id,
            profile_id=_optional_profile(input.profile_id, "profileId"),
        )
        return RecordConversationPayload(conversation=Conversation.from_domain(recorded))

    @strawberry.mutation(permission_classes=[IsAdmin], description="Save a filter as a segment")
    async def create_segment(
        self,
        info: Info,
        input: Annotated[CreateSegmentInput, strawberry.argument(description=_WHAT)],
    ) -> CreateSegmentPayload | None:
        tenant = tenant_of(info)
        created = await info.context.segments.create(
            tenant, input.name, input.description or "", input.filter.to_raw()
        )
        return CreateSegmentPayload(segment=Segment.from_domain(created, tenant))

    @strawberry.mutation(
        permission_classes=[IsAdmin], description="Change a segment's name, description or filter"
    )
    async def update_segment(
        self,
        info: Info,
        input: Annotated[UpdateSegmentInput, strawberry.argument(description=_WHAT)],
    ) -> UpdateSegmentPayload | None:
        tenant = tenant_of(info)
        updated = await info.context.segments.update(
            tenant,
            require(Kind.SEGMENT, str(input.id), field="id"),
            input.name,
            input.description,
            input.filter.to_raw() if input.filter is not None else None,
        )
        return UpdateSegmentPayload(segment=Segment.from_domain(updated, tenant))

    @strawberry.mutation(permission_classes=[IsAdmin], description="Delete a segment")
    async def delete_segment(
        self,
        info: Info,
        input: Annotated[DeleteSegmentInput, strawberry.argument(description=_WHAT)],
    ) -> DeleteSegmentPayload | None:
        key = require(Kind.SEGMENT, str(input.id), field="id")
        await info.context.segments.delete(tenant_of(info), key)
        return DeleteSegmentPayload(deleted_segment_id=strawberry.ID(to_global(Kind.SEGMENT, key)))

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Erase a profile with its identities, events and conversations",
    )
    async def delete_profile(
        self,
        info: Info,
        input: Annotated[DeleteProfileInput, strawberry.argument(description=_WHAT)],
    ) -> DeleteProfilePayload | None:
        key = require(Kind.PROFILE, str(input.id), field="id")
        await info.context.services.delete_profile(tenant_of(info), key)
        return DeleteProfilePayload(deleted_profile_id=strawberry.ID(profile_id(key)))

    @strawberry.mutation(
        permission_classes=[CanEdit],
        description="Merge sourceId into targetId: the target survives, the source becomes a "
        "redirect to it",
    )
    async def merge_profiles(
        self,
        info: Info,
        input: Annotated[MergeProfilesInput, strawberry.argument(description=_WHAT)],
    ) -> MergeProfilesPayload | None:
        survivor, merged = await info.context.identity.merge_profiles(
            tenant_of(info),
            require(Kind.PROFILE, str(input.target_id), field="targetId"),
            require(Kind.PROFILE, str(input.source_id), field="sourceId"),
            actor=_actor(info),
        )
        return MergeProfilesPayload(
            profile=Profile.from_domain(survivor),
            merged_profile_id=strawberry.ID(profile_id(merged)),
        )

    @strawberry.mutation(
        permission_classes=[CanEdit],
        description="Move one identity and its conversations out to a new profile",
    )
    async def detach_identity(
        self,
        info: Info,
        input: Annotated[DetachIdentityInput, strawberry.argument(description=_WHAT)],
    ) -> DetachIdentityPayload | None:
        remaining, detached = await info.context.identity.detach_identity(
            tenant_of(info),
            require(Kind.PROFILE, str(input.profile_id), field="profileId"),
            input.channel,
            input.sender_id,
        )
        return DetachIdentityPayload(
            profile=Profile.from_domain(remaining), detached=Profile.from_domain(detached)
        )
