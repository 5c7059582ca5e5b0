"""GraphQL types of unmerging: the input, the payload and the preview."""

from __future__ import annotations

from typing import Self

import strawberry

from domain.unmerging import UnmergePreview as DomainPreview
from domain.unmerging import UnmergeResult
from schema.ids import profile_id
from schema.scalars import JSON, json_values
from schema.types import Identity, Profile
from schema.unmerge_history import UnmergeChange


@strawberry.input(description="Which merge to undo")
class UnmergeProfilesInput:
    merge_id: strawberry.ID = strawberry.field(
        description="The merge's id, as `mergeHistory { mergeId }` of the survivor shows it"
    )


@strawberry.type(description="Both profiles after an unmerge, and what it did to the survivor")
class UnmergeProfilesPayload:
    merge_id: strawberry.ID = strawberry.field(description="The merge that was undone")
    source: Profile = strawberry.field(
        description="The profile that was merged away, active again with its own id"
    )
    survivor: Profile = strawberry.field(description="The profile it had been merged into")
    removed: list[UnmergeChange] = strawberry.field(
        description="Values, list items and the userId the merge had brought, removed from "
        "the survivor"
    )
    kept: list[UnmergeChange] = strawberry.field(
        description="What the merge brought that stays on the survivor because it changed "
        "(or was added again) since the merge: never dropped silently"
    )

    @classmethod
    def from_domain(cls, result: UnmergeResult) -> Self:
        now, source = result.survivor.properties, result.source.properties
        return cls(
            merge_id=strawberry.ID(result.merge_id),
            source=Profile.from_domain(result.source),
            survivor=Profile.from_domain(result.survivor),
            removed=[UnmergeChange.from_domain(k, {}, source) for k in result.removed],
            kept=[UnmergeChange.from_domain(k, now, source) for k in result.kept],
        )


@strawberry.type(description="What undoing a merge would do now; reading it writes nothing")
class UnmergePreview:
    merge_id: strawberry.ID = strawberry.field(description="The merge")
    source_id: strawberry.ID = strawberry.field(
        description="The merged-away profile that would come back, with this id"
    )
    survivor_id: strawberry.ID = strawberry.field(description="The profile it was merged into")
    source_properties: JSON = strawberry.field(
        description="The values the source would come back with (those it had when merged)"
    )
    source_user_id: str | None = strawberry.field(
        description="The userId the source would come back with, if it had one"
    )
    user_id_returns: bool = strawberry.field(
        description="True when the userId moves from the survivor back to the source"
    )
    identities: list[Identity] = strawberry.field(
        description="The identity keys that would go back to the source"
    )
    event_count: int = strawberry.field(
        description="Events that would go back: those the merge moved, and those that came "
        "since through an identity that goes back"
    )
    conversation_count: int = strawberry.field(
        description="Conversations that would go back, by the same rule as events"
    )
    removed: list[UnmergeChange] = strawberry.field(
        description="What would be removed from the survivor: values the merge filled, list "
        "items only the source brought, the userId the source gave"
    )
    kept: list[UnmergeChange] = strawberry.field(
        description="What the merge brought that would stay on the survivor because it "
        "changed, or was added again, since the merge"
    )
    restored: JSON = strawberry.field(
        description="Values the survivor would get back: its lists without the source's "
        "items, and its own last contact where the source's had replaced it"
    )

    @classmethod
    def from_domain(cls, preview: DomainPreview) -> Self:
        now, source = preview.survivor_properties, preview.source_properties
        return cls(
            merge_id=strawberry.ID(preview.merge_id),
            source_id=strawberry.ID(profile_id(preview.source_id)),
            survivor_id=strawberry.ID(profile_id(preview.survivor_id)),
            source_properties=JSON(json_values(source)),
            source_user_id=preview.source_user_id,
            user_id_returns=preview.user_id_returns,
            identities=[Identity.from_domain(i) for i in preview.identities],
            event_count=preview.events,
            conversation_count=preview.conversations,
            removed=[UnmergeChange.from_domain(k, now, source) for k in preview.removed],
            kept=[UnmergeChange.from_domain(k, now, source) for k in preview.kept],
            restored=JSON(json_values(preview.restored)),
        )
