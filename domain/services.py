"""The profile use cases of a tenant, wired together: one object the outer layers hold.

Each use case lives in its own module (capture, identify, reads, edits); the state machines
they rely on (births, merges, erasures, and following a profile to its survivor) live in
domain.lifecycle and the modules it names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from domain.autocapture import CaptureContext
from domain.capture import Capture, CaptureResult, Senders
from domain.definitions import Definitions
from domain.edits import Edits
from domain.identify import Identify, IdentifyOutcome, IdentifyResult
from domain.identity import Channel, Identity, IdentityKey, identity_key
from domain.lifecycle import Lifecycle
from domain.merging import DEFAULT_MAX_IDENTITIES, DEFAULT_MAX_MERGES, Merger
from domain.model import MergeTrigger, Profile
from domain.ports import Clock, GeoLookup, MergeLimits, ProfileQuery, ProfileStore
from domain.properties import PropertyDefinition, PropertyType
from domain.reads import Page, ProfileReads

__all__ = ["CaptureResult", "IdentifyOutcome", "IdentifyResult", "Page", "ProfileService"]


class ProfileService:
    """Capture, identify, edit and read the profiles of a tenant."""

    def __init__(
        self,
        store: ProfileStore,
        clock: Clock,
        geo: GeoLookup,
        *,
        max_identities: int = DEFAULT_MAX_IDENTITIES,
        max_merges: int = DEFAULT_MAX_MERGES,
        on_merge: Callable[[MergeTrigger], None] | None = None,
    ) -> None:
        self._store = store
        self._geo = geo
        self.definitions = Definitions(store, clock)
        self.lifecycle = Lifecycle(
            store, clock, MergeLimits(merges=max_merges, identities=max_identities), on_merge
        )
        self.senders = Senders(store, clock, self.lifecycle)
        self.reads = ProfileReads(store, clock, self.lifecycle, self.definitions)
        self.edits = Edits(store, clock, self.lifecycle, self.definitions)
        self._capture = Capture(self.senders, self.definitions, clock, geo)
        self._identify = Identify(store, clock, self.lifecycle, self.senders, self.definitions)

    @property
    def merger(self) -> Merger:
        return self.lifecycle.merger

    async def capture(
        self,
        tenant: str,
        channel: Channel,
        sender_id: str,
        properties: object,
        context: CaptureContext,
        *,
        actor: str,
    ) -> CaptureResult:
        result = await self._capture.capture(tenant, channel, sender_id, properties, context)
        if channel is Channel.EMAIL and result.profile.user_id is None:
            # An email sender is identified by its address.
            key = identity_key(channel, sender_id)
            identified = await self._identify.identify_key(tenant, key, key.value, {}, actor=actor)
            return CaptureResult(profile=identified.profile, created=result.created)
        return result

    async def identify(
        self,
        tenant: str,
        channel: Channel,
        sender_id: str,
        user_id: str,
        properties: object,
        *,
        actor: str,
    ) -> IdentifyResult:
        return await self._identify.identify(
            tenant, channel, sender_id, user_id, properties, actor=actor
        )

    async def active(self, tenant: str, profile_id: str) -> Profile | None:
        return await self.lifecycle.active(tenant, profile_id)

    async def profile(self, tenant: str, profile_id: str) -> Profile | None:
        return await self.reads.profile(tenant, profile_id)

    async def profile_by_user_id(self, tenant: str, user_id: str) -> Profile | None:
        return await self.reads.profile_by_user_id(tenant, user_id)

    async def profile_by_identity(
        self, tenant: str, channel: Channel, sender_id: str
    ) -> Profile | None:
        return await self.reads.profile_by_identity(tenant, channel, sender_id)

    async def identities(
        self, tenant: str, profile_ids: Sequence[str]
    ) -> Mapping[str, list[Identity]]:
        return await self.reads.identities(tenant, profile_ids)

    async def query(
        self, tenant: str, where: Mapping[str, Any] | None, search: str | None
    ) -> ProfileQuery:
        return await self.reads.query(tenant, where, search)

    async def list_profiles(
        self,
        tenant: str,
        first: int | None,
        after: str | None,
        where: Mapping[str, Any] | None = None,
        search: str | None = None,
    ) -> Page:
        return await self.reads.page(tenant, await self.query(tenant, where, search), first, after)

    async def page(
        self, tenant: str, query: ProfileQuery, first: int | None, after: str | None
    ) -> Page:
        return await self.reads.page(tenant, query, first, after)

    async def count(self, tenant: str, query: ProfileQuery) -> int:
        return await self.reads.count(tenant, query)

    async def counts(self, tenant: str, queries: Sequence[ProfileQuery]) -> list[int]:
        return await self.reads.counts(tenant, queries)

    def export(self, tenant: str, query: ProfileQuery) -> AsyncIterator[Profile]:
        return self.reads.export(tenant, query)

    async def sender_profile_id(
        self, tenant: str, channel: Channel, sender_id: str
    ) -> tuple[str, IdentityKey]:
        return await self.senders.profile_id(tenant, channel, sender_id)

    async def update_profile(
        self,
        tenant: str,
        profile_id: str,
        set_values: object,
        unset: Sequence[str],
        add_tags: Sequence[str],
        remove_tags: Sequence[str],
    ) -> Profile:
        return await self.edits.update_profile(
            tenant, profile_id, set_values, unset, add_tags, remove_tags
        )

    async def define_property(
        self, tenant: str, name: str, type_: PropertyType, description: str
    ) -> PropertyDefinition:
        return await self.edits.define_property(tenant, name, type_, description)

    async def delete_profile(self, tenant: str, profile_id: str) -> None:
        await self.edits.delete_profile(tenant, profile_id)
