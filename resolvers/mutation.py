"""Mutation resolvers: thin calls into the profile service."""

from __future__ import annotations

import strawberry

from domain.autocapture import CaptureContext
from resolvers.permissions import CanEdit, CanWrite, IsAdmin
from resolvers.query import tenant_of
from schema.context import Info
from schema.inputs import CaptureInput, DefinePropertyInput, IdentifyInput, UpdateProfileInput
from schema.types import CapturePayload, IdentifyPayload, Profile, PropertyDefinition


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
