"""The unmerge fields of the root types (mixed into resolvers.mutation and resolvers.query)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.errors import Unauthenticated
from resolvers.permissions import CanEdit
from schema.context import Info
from schema.unmerge import UnmergePreview, UnmergeProfilesInput, UnmergeProfilesPayload


def tenant_of(info: Info) -> str:
    principal = info.context.principal
    if principal is None:  # the permission classes refuse such requests first
        raise Unauthenticated("An API key is required")
    return principal.tenant


def _actor(info: Info) -> str:
    principal = info.context.principal
    return principal.key_name if principal else ""


@strawberry.type
class UnmergeMutation:
    @strawberry.mutation(
        permission_classes=[CanEdit],
        description="Undo one merge: the merged-away profile comes back with its id, values, "
        "userId, identities, events and conversations; the survivor loses what the merge "
        "brought unless it changed since (that is listed in `kept`). Refused with "
        "MERGE_CONFLICT when the merge was undone already, or when the survivor was merged "
        "on or a later merge depends on it (the message names the merge to undo first)",
    )
    async def unmerge_profiles(
        self,
        info: Info,
        input: Annotated[
            UnmergeProfilesInput, strawberry.argument(description="Which merge to undo")
        ],
    ) -> UnmergeProfilesPayload | None:
        result = await info.context.identity.unmerge_profiles(
            tenant_of(info), str(input.merge_id), actor=_actor(info)
        )
        return UnmergeProfilesPayload.from_domain(result)


@strawberry.type
class UnmergeQuery:
    @strawberry.field(
        permission_classes=[CanEdit],
        description="What unmergeProfiles would do for this merge now, without writing "
        "anything; refused with the same errors it would be",
    )
    async def unmerge_preview(
        self,
        info: Info,
        merge_id: Annotated[
            strawberry.ID,
            strawberry.argument(description="The merge's id (the survivor's mergeHistory)"),
        ],
    ) -> UnmergePreview | None:
        preview = await info.context.identity.unmerge_preview(tenant_of(info), str(merge_id))
        return UnmergePreview.from_domain(preview)
