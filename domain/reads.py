"""Reading profiles: by id, userId or identity, and listing, counting and exporting them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.definitions import Definitions
from domain.errors import ValidationFailed
from domain.identity import Channel, Identity, identity_key, lookup_user_id, user_id_key
from domain.lifecycle import Lifecycle
from domain.model import Profile
from domain.ports import Clock, ProfileQuery, ProfileStore
from domain.values import check_text, is_text

MAX_PAGE = 100
MAX_SEARCH_LENGTH = 100


@dataclass(frozen=True, slots=True)
class Page:
    profiles: list[Profile]
    has_next: bool


class ProfileReads:
    """What dashboards, agents and bots read."""

    def __init__(
        self, store: ProfileStore, clock: Clock, lifecycle: Lifecycle, definitions: Definitions
    ) -> None:
        self._store = store
        self._clock = clock
        self._lifecycle = lifecycle
        self._definitions = definitions

    async def profile(self, tenant: str, profile_id: str) -> Profile | None:
        if not profile_id or len(profile_id) > 64 or not is_text(profile_id):
            return None
        return await self._lifecycle.active(tenant, profile_id)

    async def profile_by_user_id(self, tenant: str, user_id: str) -> Profile | None:
        normal = lookup_user_id(user_id)
        if normal is None:
            return None
        binding = await self._store.find_identity(tenant, user_id_key(normal))
        if binding is None:
            return None
        profile = await self._lifecycle.active(tenant, binding.profile_id)
        return profile if profile is not None and profile.user_id == normal else None

    async def profile_by_identity(
        self, tenant: str, channel: Channel, sender_id: str
    ) -> Profile | None:
        binding = await self._store.find_identity(tenant, identity_key(channel, sender_id))
        if binding is None:
            return None
        return await self._lifecycle.active(tenant, binding.profile_id)

    async def identities(
        self, tenant: str, profile_ids: Sequence[str]
    ) -> Mapping[str, list[Identity]]:
        return await self._store.identities_of(tenant, profile_ids)

    async def query(
        self, tenant: str, where: Mapping[str, Any] | None, search: str | None
    ) -> ProfileQuery:
        """A validated listing query; filters refer to the tenant's defined properties."""
        parsed = None
        if where is not None:
            parsed = await self._definitions.parse_filter(tenant, where)
        if search is not None:
            search = check_text(search, field="search").strip()
            if not search or len(search) > MAX_SEARCH_LENGTH:
                raise ValidationFailed(
                    f"search is 1 to {MAX_SEARCH_LENGTH} characters", field="search"
                )
        return ProfileQuery(where=parsed, search=search, now=self._clock.now())

    async def page(
        self, tenant: str, query: ProfileQuery, first: int | None, after: str | None
    ) -> Page:
        limit = 20 if first is None else first
        if not 0 <= limit <= MAX_PAGE:
            raise ValidationFailed(f"first must be between 0 and {MAX_PAGE}", field="first")
        rows = await self._store.list_profiles(tenant, query, after, limit + 1)
        return Page(profiles=rows[:limit], has_next=len(rows) > limit)

    async def count(self, tenant: str, query: ProfileQuery) -> int:
        return await self._store.count_profiles(tenant, query)

    async def counts(self, tenant: str, queries: Sequence[ProfileQuery]) -> list[int]:
        if not queries:
            return []
        return await self._store.count_profiles_each(tenant, queries)

    def export(self, tenant: str, query: ProfileQuery) -> AsyncIterator[Profile]:
        return self._store.iterate_profiles(tenant, query)
