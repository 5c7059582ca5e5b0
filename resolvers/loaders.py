"""DataLoaders for the nested fields that read the database: built per request, each turns
the loads of one execution step (every profile of a page asking for its activity, say) into
one query per distinct set of arguments."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence

from strawberry.dataloader import DataLoader

from domain.activity import ActivityPage, ActivityService, EventPage
from domain.errors import DomainError
from domain.segments import SegmentService
from schema.context import ActivityKey, EventHistoryKey, SegmentCountKey


async def _by_group[K, T](
    keys: Sequence[K],
    group_of: Callable[[K], Hashable],
    load_group: Callable[[list[K]], Awaitable[Sequence[T]]],
) -> list[T | BaseException]:
    """Loads keys group by group (one query each, concurrently); a refused group (a page size
    out of range, say) fails its own keys only."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        groups[group_of(key)].append(index)

    async def run(indexes: list[int]) -> Sequence[T] | DomainError:
        try:
            return await load_group([keys[i] for i in indexes])
        except DomainError as refused:
            return refused

    outcomes = await asyncio.gather(*(run(indexes) for indexes in groups.values()))
    results: list[T | BaseException] = [DomainError("not loaded")] * len(keys)
    for indexes, outcome in zip(groups.values(), outcomes, strict=True):
        for position, index in enumerate(indexes):
            results[index] = outcome if isinstance(outcome, DomainError) else outcome[position]
    return results


class EventHistoryByProfileLoader(DataLoader[EventHistoryKey, EventPage]):
    """Pages of events of many profiles, one query per distinct (name, first, after)."""

    def __init__(self, activity: ActivityService) -> None:
        self._activity = activity
        super().__init__(load_fn=self._load)

    async def _load(self, keys: list[EventHistoryKey]) -> list[EventPage | BaseException]:
        return await _by_group(keys, lambda k: (k.tenant, k.name, k.first, k.after), self._pages)

    async def _pages(self, keys: list[EventHistoryKey]) -> list[EventPage]:
        first = keys[0]
        found = await self._activity.event_histories(
            first.tenant, [k.profile_id for k in keys], first.name, first.first, first.after
        )
        return [found[k.profile_id] for k in keys]


class ActivityByProfileLoader(DataLoader[ActivityKey, ActivityPage]):
    """Timeline pages of many profiles, one query per distinct (first, after)."""

    def __init__(self, activity: ActivityService) -> None:
        self._activity = activity
        super().__init__(load_fn=self._load)

    async def _load(self, keys: list[ActivityKey]) -> list[ActivityPage | BaseException]:
        return await _by_group(keys, lambda k: (k.tenant, k.first, k.after), self._pages)

    async def _pages(self, keys: list[ActivityKey]) -> list[ActivityPage]:
        first = keys[0]
        found = await self._activity.activities(
            first.tenant, [k.profile_id for k in keys], first.first, first.after
        )
        return [found[k.profile_id] for k in keys]


class CountBySegmentLoader(DataLoader[SegmentCountKey, int]):
    """Live counts of many segments in one query."""

    def __init__(self, segments: SegmentService) -> None:
        self._segments = segments
        super().__init__(load_fn=self._load, cache_key_fn=lambda key: key.cache_key)

    async def _load(self, keys: list[SegmentCountKey]) -> list[int | BaseException]:
        return await _by_group(keys, lambda k: k.tenant, self._counts)

    async def _counts(self, keys: list[SegmentCountKey]) -> Sequence[int]:
        return await self._segments.counts(keys[0].tenant, [k.segment for k in keys])
