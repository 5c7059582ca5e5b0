"""GraphQL types of what profiles remember about unmerges (used by schema.types.Profile)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Self

import strawberry

from domain import model
from schema.ids import profile_id
from schema.scalars import JSON, json_value


@strawberry.type(
    description="A value or list item that a merge brought to the survivor, as an unmerge "
    "treats it: removed, or kept because it changed (or was added again) since the merge"
)
class UnmergeChange:
    property: str = strawberry.field(description="The property's name (userId for the userId)")
    item: str | None = strawberry.field(
        description="For a list property (tags, a LIST property): the list item; null for a value"
    )
    value: JSON | None = strawberry.field(
        description="The survivor's value of the property now (for a kept value: what it "
        "changed to); null for a list item and after a removal"
    )
    source_value: JSON | None = strawberry.field(
        description="The value the merged-away profile had when it was merged"
    )

    @classmethod
    def from_domain(
        cls,
        kept: model.Kept,
        survivor: Mapping[str, Any],
        source: Mapping[str, Any],
    ) -> Self:
        if kept.is_item:
            return cls(property=kept.name, item=str(kept.item), value=None, source_value=None)
        return cls(
            property=kept.name,
            item=None,
            value=json_value(survivor.get(kept.name)),
            source_value=json_value(source.get(kept.name)),
        )


@strawberry.type(description="An unmerge this profile took part in (as the source or survivor)")
class UnmergeHistoryEntry:
    merge_id: strawberry.ID = strawberry.field(description="The merge that was undone")
    source_id: strawberry.ID = strawberry.field(
        description="The profile that was merged away and came back"
    )
    survivor_id: strawberry.ID = strawberry.field(description="The profile it had merged into")
    at: datetime = strawberry.field(description="When the merge was undone")
    actor: str = strawberry.field(description="The name of the API key that undid it")
    removed: list[UnmergeChange] = strawberry.field(
        description="What the unmerge removed from the survivor"
    )
    kept: list[UnmergeChange] = strawberry.field(
        description="What the merge brought that stayed on the survivor because it changed since"
    )

    @classmethod
    def from_domain(cls, record: model.UnmergeRecord) -> Self:
        def change(kept: model.Kept) -> UnmergeChange:
            return UnmergeChange.from_domain(kept, {}, {})

        return cls(
            merge_id=strawberry.ID(record.merge_id),
            source_id=strawberry.ID(profile_id(record.source_id)),
            survivor_id=strawberry.ID(profile_id(record.survivor_id)),
            at=record.at,
            actor=record.actor,
            removed=[change(k) for k in record.removed],
            kept=[change(k) for k in record.kept],
        )
