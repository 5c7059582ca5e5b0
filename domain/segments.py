"""Segments: saved filters whose members are always evaluated on current data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from domain.errors import LimitExceeded, NotFound, ValidationFailed
from domain.filters import MAX_DEPTH, filter_to_json
from domain.ids import new_id
from domain.model import Segment
from domain.values import check_json, check_text, is_text

if TYPE_CHECKING:
    from domain.ports import Clock, ProfileQuery, SegmentStore
    from domain.services import Page, ProfileService

MAX_SEGMENTS = 200
# A filter node nests inside an object and a list ({"and": [node]}); a condition adds an
# object and a list of values ({"property": {"value": [low, high]}}).
_MAX_FILTER_JSON_DEPTH = 2 * MAX_DEPTH + 1


class SegmentService:
    """Create, change, delete and evaluate segments."""

    def __init__(self, store: SegmentStore, profiles: ProfileService, clock: Clock) -> None:
        self._store = store
        self._profiles = profiles
        self._clock = clock

    async def _checked(
        self, tenant: str, name: str, description: str, where: Mapping[str, Any]
    ) -> dict[str, Any]:
        if not name.strip() or len(name) > 100:
            raise ValidationFailed("name is 1 to 100 characters", field="name")
        check_text(name, field="name")
        if len(description) > 500:
            raise ValidationFailed("description is at most 500 characters", field="description")
        check_text(description, field="description")
        parsed = await self._profiles.definitions.parse_filter(tenant, where, field="filter")
        # The stored form is JSON by construction; checking it keeps it so.
        checked: dict[str, Any] = check_json(
            filter_to_json(parsed), field="filter", max_depth=_MAX_FILTER_JSON_DEPTH
        )
        return checked

    async def create(
        self, tenant: str, name: str, description: str, where: Mapping[str, Any]
    ) -> Segment:
        checked = await self._checked(tenant, name, description, where)
        if len(await self._store.list_segments(tenant)) >= MAX_SEGMENTS:
            raise LimitExceeded(f"A tenant has at most {MAX_SEGMENTS} segments", field="name")
        now = self._clock.now()
        segment = Segment(new_id(), name.strip(), description, checked, now, now)
        return await self._store.insert_segment(tenant, segment)

    async def update(
        self,
        tenant: str,
        segment_id: str,
        name: str | None,
        description: str | None,
        where: Mapping[str, Any] | None,
    ) -> Segment:
        current = await self.get(tenant, segment_id)
        checked = await self._checked(
            tenant,
            current.name if name is None else name,
            current.description if description is None else description,
            current.filter if where is None else where,
        )
        updated = Segment(
            current.id,
            (current.name if name is None else name).strip(),
            current.description if description is None else description,
            checked,
            current.created_at,
            self._clock.now(),
        )
        if await self._store.replace_segment(tenant, updated) is None:
            raise NotFound(f"No segment with id {segment_id!r}", field="id")
        return updated

    async def delete(self, tenant: str, segment_id: str) -> None:
        if not _is_segment_id(segment_id) or not await self._store.delete_segment(
            tenant, segment_id
        ):
            raise NotFound(f"No segment with id {segment_id!r}", field="id")

    async def get(self, tenant: str, segment_id: str) -> Segment:
        found = await self.find(tenant, segment_id)
        if found is None:
            raise NotFound(f"No segment with id {segment_id!r}", field="id")
        return found

    async def find(self, tenant: str, segment_id: str) -> Segment | None:
        if not _is_segment_id(segment_id):
            return None
        return await self._store.get_segment(tenant, segment_id)

    async def list(self, tenant: str) -> list[Segment]:
        return await self._store.list_segments(tenant)

    async def query(self, tenant: str, segment: Segment) -> ProfileQuery:
        """The segment's filter, evaluated now: membership is always live."""
        return await self._profiles.query(tenant, segment.filter, None)

    async def count(self, tenant: str, segment: Segment) -> int:
        return await self._profiles.count(tenant, await self.query(tenant, segment))

    async def counts(self, tenant: str, segments: Sequence[Segment]) -> Sequence[int]:
        """Each segment's count, in one query for all of them (plus one per windowed event
        condition, as for a single count)."""
        queries = [await self.query(tenant, segment) for segment in segments]
        return await self._profiles.counts(tenant, queries)

    async def members(
        self, tenant: str, segment: Segment, first: int | None, after: str | None
    ) -> Page:
        return await self._profiles.page(tenant, await self.query(tenant, segment), first, after)


def _is_segment_id(segment_id: str) -> bool:
    """Whether an id could name a segment at all; any other is simply not found."""
    return bool(segment_id) and len(segment_id) <= 64 and is_text(segment_id)
