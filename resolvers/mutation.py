"""Mutation resolvers: thin calls into the profile service."""

from __future__ import annotations

import strawberry

from domain.autocapture import CaptureContext
from resolvers.permissions import CanEdit, CanWrite, IsAdmin
from resolvers.query import tenant_of
from schema.activity import Conversation, Event
from schema.context import Info
from schema.inputs import (
    CaptureInput,
    CreateSegmentInput,
    DefinePropertyInput,
    DetachIdentityInput,
    IdentifyInput,
    MergeProfilesInput,
    RecordConversationInput,
    TrackEventInput,
    UpdateProfileInput,
    UpdateSegmentInput,
)
from schema.segments import Segment
from schema.types import (
    CapturePayload,
    DetachPayload,
    IdentifyPayload,
    MergePayload,
    Profile,
    PropertyDefinition,
    TrackEventPayload,
)


def _actor(info: Info) -> str:
    principal = info.context.principal
    return principal.key_name if principal else ""


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Record what a bot learned about a sender; creates the profile on first "
        "contact",
    )
    async def capture_properties(self, info: Info, input: CaptureInput) -> CapturePayload:
        context = input.context.to_domain() if input.context else CaptureContext()
        result = await info.context.services.capture(
            tenant_of(info),
            input.channel,
            input.sender_id,
            input.properties if input.properties is not None else {},
            context,
            actor=_actor(info),
        )
        return CapturePayload(profile=Profile.from_domain(result.profile), created=result.created)

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Tell who a sender is; may identify, merge, switch or create (SPEC §6)",
    )
    async def identify(self, info: Info, input: IdentifyInput) -> IdentifyPayload:
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
            merged_profile_id=strawberry.ID(merged) if merged else None,
        )

    @strawberry.mutation(permission_classes=[CanEdit])
    async def update_profile(self, info: Info, input: UpdateProfileInput) -> Profile:
        updated = await info.context.services.update_profile(
            tenant_of(info),
            str(input.id),
            input.set if input.set is not None else {},
            input.unset or [],
            input.add_tags or [],
            input.remove_tags or [],
        )
        return Profile.from_domain(updated)

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Define a custom property; a definition cannot be changed afterwards",
    )
    async def define_property(self, info: Info, input: DefinePropertyInput) -> PropertyDefinition:
        definition = await info.context.services.define_property(
            tenant_of(info), input.name, input.type, input.description or ""
        )
        return PropertyDefinition.from_domain(definition)

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Record an event; a retry with the same eventId counts once",
    )
    async def track_event(self, info: Info, input: TrackEventInput) -> TrackEventPayload:
        result = await info.context.activity.track_event(
            tenant_of(info),
            name=input.name,
            properties=input.properties,
            occurred_at=input.occurred_at,
            event_id=input.event_id,
            channel=input.channel,
            sender_id=input.sender_id,
            profile_id=str(input.profile_id) if input.profile_id is not None else None,
        )
        return TrackEventPayload(
            profile=Profile.from_domain(result.profile),
            event=Event.from_domain(result.event),
            counted=result.counted,
        )

    @strawberry.mutation(permission_classes=[CanWrite])
    async def record_conversation(self, info: Info, input: RecordConversationInput) -> Conversation:
        recorded = await info.context.activity.record_conversation(
            tenant_of(info),
            input.to_domain(),
            channel=input.channel if input.sender_id is not None else None,
            sender_id=input.sender_id,
            profile_id=str(input.profile_id) if input.profile_id is not None else None,
        )
        return Conversation.from_domain(recorded)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def create_segment(self, info: Info, input: CreateSegmentInput) -> Segment:
        tenant = tenant_of(info)
        created = await info.context.segments.create(
            tenant, input.name, input.description or "", input.filter.to_raw()
        )
        return Segment.from_domain(created, tenant)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def update_segment(self, info: Info, input: UpdateSegmentInput) -> Segment:
        tenant = tenant_of(info)
        updated = await info.context.segments.update(
            tenant,
            str(input.id),
            input.name,
            input.description,
            input.filter.to_raw() if input.filter is not None else None,
        )
        return Segment.from_domain(updated, tenant)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def delete_segment(self, info: Info, id: strawberry.ID) -> bool:
        await info.context.segments.delete(tenant_of(info), str(id))
        return True

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Erase a profile with its identities, events and conversations",
    )
    async def delete_profile(self, info: Info, id: strawberry.ID) -> bool:
        await info.context.services.delete_profile(tenant_of(info), str(id))
        return True

    @strawberry.mutation(
        permission_classes=[CanEdit],
        description="Merge sourceId into targetId (the target survives, SPEC §6-7)",
    )
    async def merge_profiles(self, info: Info, input: MergeProfilesInput) -> MergePayload:
        survivor, merged = await info.context.identity.merge_profiles(
            tenant_of(info), str(input.target_id), str(input.source_id), actor=_actor(info)
        )
        return MergePayload(
            profile=Profile.from_domain(survivor), merged_profile_id=strawberry.ID(merged)
        )

    @strawberry.mutation(
        permission_classes=[CanEdit],
        description="Move one identity and its conversations out to a new profile",
    )
    async def detach_identity(self, info: Info, input: DetachIdentityInput) -> DetachPayload:
        remaining, detached = await info.context.identity.detach_identity(
            tenant_of(info), str(input.profile_id), input.channel, input.sender_id
        )
        return DetachPayload(
            profile=Profile.from_domain(remaining), detached=Profile.from_domain(detached)
        )
