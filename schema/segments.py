"""The Segment type: a saved filter whose count and members are evaluated when asked."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry

from domain import model as domain
from schema.context import Info, SegmentCountKey
from schema.cursors import profile_after
from schema.filters import SavedFilter
from schema.ids import Kind, to_global
from schema.node import Node
from schema.pages import DEFAULT_PAGE, After, First, page_size
from schema.types import ProfileConnection


@strawberry.type(description="A saved filter; its count and members are always live")
class Segment(Node):
    name: str = strawberry.field(description="The segment's name")
    description: str = strawberry.field(description="What the segment is for (may be empty)")
    created_at: datetime = strawberry.field(description="When the segment was created")
    updated_at: datetime = strawberry.field(description="When the segment last changed")
    _segment: strawberry.Private[domain.Segment]
    _tenant: strawberry.Private[str]

    @classmethod
    def from_domain(cls, segment: domain.Segment, tenant: str) -> Self:
        return cls(
            id=strawberry.ID(to_global(Kind.SEGMENT, segment.id)),
            name=segment.name,
            description=segment.description,
            created_at=segment.created_at,
            updated_at=segment.updated_at,
            _segment=segment,
            _tenant=tenant,
        )

    @strawberry.field(description="The saved filter, in the shape of ProfileFilter")
    def filter(self) -> SavedFilter:
        return SavedFilter.from_raw(self._segment.filter)

    @strawberry.field(description="How many profiles match now")
    async def count(self, info: Info) -> int:
        return await info.context.loaders.segment_count.load(
            SegmentCountKey(self._tenant, self._segment)
        )

    @strawberry.field(description="The profiles that match now, oldest first")
    async def members(
        self, info: Info, first: First = DEFAULT_PAGE, after: After = None
    ) -> ProfileConnection:
        after_id = profile_after(after)
        page = await info.context.segments.members(
            self._tenant, self._segment, page_size(first), after_id
        )
        return ProfileConnection.from_page(page.profiles, page.has_next, after_id is not None)
