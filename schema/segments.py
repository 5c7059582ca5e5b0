"""The Segment type: a saved filter whose count and members are evaluated when asked."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry

from domain import model as domain
from schema.context import Info, SegmentCountKey
from schema.cursors import profile_after
from schema.scalars import JSON
from schema.types import ProfileConnection


@strawberry.type(description="A saved filter; count and members are always live")
class Segment:
    _segment: strawberry.Private[domain.Segment]
    _tenant: strawberry.Private[str]

    @classmethod
    def from_domain(cls, segment: domain.Segment, tenant: str) -> Self:
        return cls(_segment=segment, _tenant=tenant)

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self._segment.id)

    @strawberry.field
    def name(self) -> str:
        return self._segment.name

    @strawberry.field
    def description(self) -> str:
        return self._segment.description

    @strawberry.field(description="The filter, in the same form as ProfileFilter")
    def filter(self) -> JSON:
        return JSON(dict(self._segment.filter))

    @strawberry.field
    def created_at(self) -> datetime:
        return self._segment.created_at

    @strawberry.field
    def updated_at(self) -> datetime:
        return self._segment.updated_at

    @strawberry.field(description="How many profiles match now")
    async def count(self, info: Info) -> int:
        return await info.context.loaders.segment_count.load(
            SegmentCountKey(self._tenant, self._segment)
        )

    @strawberry.field(description="The profiles that match now, oldest first")
    async def members(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> ProfileConnection:
        after_id = profile_after(after)
        page = await info.context.segments.members(self._tenant, self._segment, first, after_id)
        return ProfileConnection.from_page(page.profiles, page.has_next, after_id is not None)
