"""Use cases: capture, identify, edit and read profiles.

Every race is decided by one conditional single-document write in the store; when a call
loses one, it re-reads and tries again a bounded number of times.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from domain.autocapture import CaptureContext, auto_values
from domain.definitions import Definitions
from domain.errors import (
    Contention,
    LimitExceeded,
    NotFound,
    UserIdImmutable,
    ValidationFailed,
)
from domain.identity import (
    Channel,
    Identity,
    IdentityKey,
    check_user_id,
    identity_key,
    user_id_key,
)
from domain.ids import new_id
from domain.matching import (
    keys_of_identity,
    keys_of_values,
)
from domain.merging import DEFAULT_MAX_MERGES, Abandoned, Merger, MergeResult
from domain.model import CaptureWrite, MergeTrigger, Profile, ProfileChange
from domain.ports import Clock, GeoLookup, ProfileQuery, ProfileStore
from domain.properties import (
    MAX_LIST_ITEM_LENGTH,
    MAX_LIST_ITEMS,
    READ_ONLY,
    PropertyDefinition,
    PropertyType,
    check_property_name,
)

MAX_ATTEMPTS = 25
MAX_REDIRECT_HOPS = 16
MAX_PAGE = 100
MAX_SEARCH_LENGTH = 100
MAX_SUGGESTIONS = 20
DEFAULT_MAX_IDENTITIES = 100


class IdentifyOutcome(StrEnum):
    """What identify did (SPEC §6)."""

    IDENTIFIED = "IDENTIFIED"
    MERGED = "MERGED"
    SWITCHED = "SWITCHED"
    CREATED = "CREATED"
    UNCHANGED = "UNCHANGED"


@dataclass(frozen=True, slots=True)
class CaptureResult:
    profile: Profile
    created: bool


@dataclass(frozen=True, slots=True)
class IdentifyResult:
    profile: Profile
    outcome: IdentifyOutcome
    merged_profile_id: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    profiles: list[Profile]
    has_next: bool


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
        self._clock = clock
        self._geo = geo
        self.max_identities = max_identities
        self.definitions = Definitions(store, clock)
        self.merger = Merger(store, clock, max_merges, on_merge)

    # ----- capture -----------------------------------------------------------------

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
        key = identity_key(channel, sender_id)
        values = await self.definitions.validate(tenant, properties, field="properties")
        _check_context(context)
        now = self._clock.now()
        fill = {
            k: v
            for k, v in auto_values(channel, key, context, self._geo).items()
            if k not in values
        }
        write = CaptureWrite(
            set={**values, "lastChannel": channel.value, "lastSession": now},
            fill=fill,
            match_keys=(*keys_of_identity(key), *keys_of_values({**fill, **values})),
        )
        identity, created = await self._bind_sender(tenant, key, channel)
        profile = await self._write_capture(tenant, identity.profile_id, write)
        if channel is Channel.EMAIL and profile.user_id is None:
            # An email sender is identified by its address (SPEC §5).
            result = await self._identify_key(tenant, key, key.value, {}, actor=actor)
            profile = result.profile
        return CaptureResult(profile=profile, created=created)

    async def _bind_sender(
        self, tenant: str, key: IdentityKey, channel: Channel | None
    ) -> tuple[Identity, bool]:
        """The sender's identity, bound to a new profile id if it was unknown."""
        identity = await self._store.find_identity(tenant, key)
        if identity is None:
            candidate = new_id()
            identity = await self._store.claim_identity(
                tenant, key, candidate, channel, self._clock.now()
            )
            return identity, identity.profile_id == candidate
        if channel is not None and channel not in identity.channels:
            await self._store.add_identity_channel(tenant, key, channel)
        return identity, False

    async def _write_capture(self, tenant: str, profile_id: str, write: CaptureWrite) -> Profile:
        for _ in range(MAX_REDIRECT_HOPS):
            profile = await self._store.write_capture(tenant, profile_id, write, self._clock.now())
            if profile is not None:
                return profile
            survivor = await self.active(tenant, profile_id)
            if survivor is None:
                raise NotFound("The sender's profile was deleted while it was being written")
            profile_id = survivor.id
        raise Contention("capture kept meeting merges")

    # ----- identify ----------------------------------------------------------------

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
        key = identity_key(channel, sender_id)
        check_user_id(user_id)
        values = await self.definitions.validate(tenant, properties or {}, field="properties")
        return await self._identify_key(tenant, key, user_id, values, actor=actor, channel=channel)

    async def _identify_key(
        self,
        tenant: str,
        key: IdentityKey,
        user_id: str,
        values: Mapping[str, Any],
        *,
        actor: str,
        channel: Channel | None = None,
    ) -> IdentifyResult:
        identity, _ = await self._bind_sender(tenant, key, channel)
        user_key = user_id_key(user_id)
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                found = await self._store.find_identity(tenant, key)
                if found is None:
                    identity, _ = await self._bind_sender(tenant, key, channel)
                else:
                    identity = found
            current = await self.active(tenant, identity.profile_id, create_missing=True)
            if current is None:
                continue
            if current.user_id == user_id:
                profile = await self._apply(tenant, current, values)
                return IdentifyResult(profile, IdentifyOutcome.UNCHANGED)
            if current.user_id is None:
                result = await self._identify_anonymous(tenant, current, user_id, values, actor)
            else:
                result = await self._switch(tenant, key, identity, user_id, values)
            if result is not None:
                return result
        raise Contention(f"identify of {user_key.type.value} lost too many races")

    async def _identify_anonymous(
        self,
        tenant: str,
        current: Profile,
        user_id: str,
        values: Mapping[str, Any],
        actor: str,
    ) -> IdentifyResult | None:
        user_key = user_id_key(user_id)
        owner = await self._store.claim_identity(
            tenant, user_key, current.id, None, self._clock.now()
        )
        if owner.profile_id == current.id:
            profile = await self._store.set_user_id(
                tenant, current.id, user_id, values, self._clock.now()
            )
            if profile is not None:
                return IdentifyResult(profile, IdentifyOutcome.IDENTIFIED)
            reread = await self.active(tenant, current.id)
            if reread is not None and reread.user_id == user_id:
                profile = await self._apply(tenant, reread, values)
                return IdentifyResult(profile, IdentifyOutcome.IDENTIFIED)
            await self._store.release_identity(tenant, user_key, current.id)
            return None
        existing = await self._owner(tenant, user_id, owner)
        if existing is None:
            return None
        if existing.id == current.id:
            profile = await self._apply(tenant, existing, values)
            return IdentifyResult(profile, IdentifyOutcome.IDENTIFIED)
        await self.check_limits(tenant, existing, current)
        merged = await self.merger.merge(
            tenant,
            current.id,
            existing.id,
            trigger=MergeTrigger.IDENTIFY,
            actor=actor,
            unidentified_only=True,
        )
        if merged is Abandoned.LIMIT_REACHED:
            raise merge_limit_error(self.merger.max_merges)
        if not isinstance(merged, MergeResult):
            return None
        survivor = merged.survivor or await self.active(tenant, merged.survivor_id)
        if survivor is None:
            return None
        profile = await self._apply(tenant, survivor, values)
        return IdentifyResult(profile, IdentifyOutcome.MERGED, merged_profile_id=current.id)

    async def _switch(
        self,
        tenant: str,
        key: IdentityKey,
        identity: Identity,
        user_id: str,
        values: Mapping[str, Any],
    ) -> IdentifyResult | None:
        """The sender's profile has another userId: move the sender to U's profile."""
        user_key = user_id_key(user_id)
        owner = await self._store.find_identity(tenant, user_key)
        existing = await self._owner(tenant, user_id, owner) if owner is not None else None
        if existing is not None:
            if not await self._store.rebind_identity(tenant, key, identity.profile_id, existing.id):
                return None
            await self._store.add_match_keys(tenant, existing.id, keys_of_identity(key))
            profile = await self._apply(tenant, existing, values)
            return IdentifyResult(profile, IdentifyOutcome.SWITCHED)
        if owner is not None:
            return None  # a stale binding was just cleared; look again
        created_id = new_id()
        claimed = await self._store.claim_identity(
            tenant, user_key, created_id, None, self._clock.now()
        )
        if claimed.profile_id != created_id:
            return None  # someone else created U meanwhile: the next attempt switches to it
        created = await self._store.create_identified(
            tenant, created_id, user_id, self._clock.now()
        )
        if not await self._store.rebind_identity(tenant, key, identity.profile_id, created_id):
            return None
        await self._store.add_match_keys(tenant, created_id, keys_of_identity(key))
        profile = await self._apply(tenant, created, values)
        return IdentifyResult(profile, IdentifyOutcome.CREATED)

    async def _owner(self, tenant: str, user_id: str, binding: Identity) -> Profile | None:
        """The active profile that holds userId U according to its key, or None if the key was
        stale (and has been removed).

        The key is the truth: a profile gets its userId only after its key is claimed, so a
        key whose profile has no userId yet is completed, and one whose profile holds another
        userId lost a race and is cleared.
        """
        profile = await self.active(tenant, binding.profile_id)
        if profile is None:
            raw = await self._store.get_profile(tenant, binding.profile_id)
            if raw is None:
                # Claimed for a new identified profile whose insert has not landed yet (or never
                # will): creating it is what its creator does too, and is idempotent.
                return await self._store.create_identified(
                    tenant, binding.profile_id, user_id, self._clock.now()
                )
            if raw.active:
                return None  # it was inserted between our two reads: the caller looks again
            # A chain of merges that ends in an erased profile: the binding is stale.
            await self._store.release_identity(tenant, user_id_key(user_id), binding.profile_id)
            return None
        if profile.user_id == user_id:
            return profile
        if profile.user_id is None:
            completed = await self._store.set_user_id(
                tenant, profile.id, user_id, {}, self._clock.now()
            )
            if completed is not None:
                return completed
            return None
        await self._store.release_identity(tenant, user_id_key(user_id), binding.profile_id)
        return None

    async def _apply(self, tenant: str, profile: Profile, values: Mapping[str, Any]) -> Profile:
        if not values:
            return profile
        return await self._write_capture(tenant, profile.id, CaptureWrite(set=dict(values)))

    # ----- reads -------------------------------------------------------------------

    async def active(
        self, tenant: str, profile_id: str, *, create_missing: bool = False
    ) -> Profile | None:
        """The live profile an id leads to, following merges and finishing any in progress."""
        requested = profile_id
        for _ in range(MAX_REDIRECT_HOPS):
            profile = await self._store.get_profile(tenant, profile_id)
            if profile is None:
                if not create_missing:
                    return None
                # An identity key was claimed but its profile insert never landed.
                return await self._store.write_capture(
                    tenant, profile_id, CaptureWrite(set={}), self._clock.now()
                )
            if profile.merging is not None:
                await self.merger.finish(profile)
                continue
            if profile.merged_into is not None:
                profile_id = profile.merged_into
                continue
            if profile.id != requested:
                return replace(profile, redirected_from=requested)
            return profile
        raise Contention("a chain of merges was too long to follow")

    async def profile(self, tenant: str, profile_id: str) -> Profile | None:
        if not profile_id or len(profile_id) > 64:
            return None
        return await self.active(tenant, profile_id)

    async def profile_by_user_id(self, tenant: str, user_id: str) -> Profile | None:
        if not user_id or len(user_id) > 256:
            return None
        binding = await self._store.find_identity(tenant, user_id_key(user_id))
        if binding is None:
            return None
        profile = await self.active(tenant, binding.profile_id)
        return profile if profile is not None and profile.user_id == user_id else None

    async def profile_by_identity(
        self, tenant: str, channel: Channel, sender_id: str
    ) -> Profile | None:
        key = identity_key(channel, sender_id)
        binding = await self._store.find_identity(tenant, key)
        if binding is None:
            return None
        return await self.active(tenant, binding.profile_id)

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
            parsed = await self.definitions.parse_filter(tenant, where)
        if search is not None:
            search = search.strip()
            if not search or len(search) > MAX_SEARCH_LENGTH:
                raise ValidationFailed(
                    f"search is 1 to {MAX_SEARCH_LENGTH} characters", field="search"
                )
        return ProfileQuery(where=parsed, search=search, now=self._clock.now())

    async def list_profiles(
        self,
        tenant: str,
        first: int | None,
        after: str | None,
        where: Mapping[str, Any] | None = None,
        search: str | None = None,
    ) -> Page:
        return await self.page(tenant, await self.query(tenant, where, search), first, after)

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

    def export(self, tenant: str, query: ProfileQuery) -> AsyncIterator[Profile]:
        return self._store.iterate_profiles(tenant, query)

    async def delete_profile(self, tenant: str, profile_id: str) -> None:
        """Erase a profile (read through any of its ids) with everything that is its."""
        profile = await self.profile(tenant, profile_id)
        if profile is None or not await self._store.erase_profile(tenant, profile.id):
            raise NotFound(f"No profile with id {profile_id!r}", field="id")

    async def sender_profile_id(
        self, tenant: str, channel: Channel, sender_id: str
    ) -> tuple[str, IdentityKey]:
        """The id of the sender's profile (a new one on first contact) and the sender's key."""
        key = identity_key(channel, sender_id)
        identity, created = await self._bind_sender(tenant, key, channel)
        if created:
            await self._store.add_match_keys(tenant, identity.profile_id, keys_of_identity(key))
        return identity.profile_id, key

    async def check_limits(self, tenant: str, target: Profile, source: Profile) -> None:
        """Refuse before anything is written. The fold enforces the merge limit again,
        atomically, for merges that race each other past this check."""
        if len(target.merge_history) >= self.merger.max_merges:
            raise merge_limit_error(self.merger.max_merges)
        if await self._store.count_identities(tenant, [target.id, source.id]) > self.max_identities:
            raise LimitExceeded(
                f"A profile holds at most {self.max_identities} identities; this merge would "
                "exceed that",
                field="sourceId",
            )

    # ----- edits -------------------------------------------------------------------

    async def update_profile(
        self,
        tenant: str,
        profile_id: str,
        set_values: object,
        unset: Sequence[str],
        add_tags: Sequence[str],
        remove_tags: Sequence[str],
    ) -> Profile:
        profile = await self.profile(tenant, profile_id)
        if profile is None:
            raise NotFound(f"No profile with id {profile_id!r}", field="id")
        values = await self.definitions.validate(
            tenant, set_values or {}, field="set", current_user_id=profile.user_id
        )
        unset_names = await self._check_unset(tenant, unset)
        added = _check_tags(add_tags, "addTags")
        removed = _check_tags(remove_tags, "removeTags")
        if "tags" in values and (added or removed):
            raise ValidationFailed(
                "Set tags or add/remove tags, not both in one update", field="set.tags"
            )
        if overlap := set(values) & set(unset_names):
            name = sorted(overlap)[0]
            raise ValidationFailed(f"Property '{name}' is both set and unset", field="unset")
        change = ProfileChange(set=values, unset=unset_names, add_tags=added, remove_tags=removed)
        for _ in range(MAX_REDIRECT_HOPS):
            updated = await self._store.update_profile(
                tenant, profile.id, change, self._clock.now()
            )
            if updated is not None:
                return updated
            survivor = await self.active(tenant, profile.id)
            if survivor is None:
                raise NotFound(f"No profile with id {profile_id!r}", field="id")
            profile = survivor
        raise Contention("update kept meeting merges")

    async def _check_unset(self, tenant: str, names: Sequence[str]) -> tuple[str, ...]:
        if len(names) > MAX_LIST_ITEMS:
            raise ValidationFailed(f"unset holds at most {MAX_LIST_ITEMS} names", field="unset")
        result: list[str] = []
        for name in names:
            check_property_name(name, field="unset")
            if name == "userId":
                raise UserIdImmutable("userId cannot be removed once set", field="unset")
            if name in READ_ONLY:
                raise ValidationFailed(f"Property '{name}' is read-only", field="unset")
            await self.definitions.get(tenant, name, field="unset")
            if name not in result:
                result.append(name)
        return tuple(result)

    async def define_property(
        self, tenant: str, name: str, type_: PropertyType, description: str
    ) -> PropertyDefinition:
        return await self.definitions.define(tenant, name, type_, description)


def merge_limit_error(limit: int) -> LimitExceeded:
    return LimitExceeded(
        f"A profile records at most {limit} merges; this merge would exceed that",
        field="targetId",
    )


def _check_tags(tags: Sequence[str], field: str) -> tuple[str, ...]:
    if len(tags) > MAX_LIST_ITEMS:
        raise ValidationFailed(f"{field} holds at most {MAX_LIST_ITEMS} tags", field=field)
    for tag in tags:
        if not tag.strip() or len(tag) > MAX_LIST_ITEM_LENGTH:
            raise ValidationFailed(
                f"A tag must be 1 to {MAX_LIST_ITEM_LENGTH} characters", field=field
            )
    return tuple(dict.fromkeys(tags))


def _check_context(context: CaptureContext) -> None:
    if context.ip is not None:
        try:
            ipaddress.ip_address(context.ip.strip())
        except ValueError:
            raise ValidationFailed(
                "context.ip must be an IPv4 or IPv6 address", field="context.ip"
            ) from None
    for name in ("timezone", "displayName", "locale"):
        value = getattr(context, "display_name" if name == "displayName" else name)
        if value is not None and len(value) > 200:
            raise ValidationFailed(
                f"context.{name} is longer than 200 characters", field=f"context.{name}"
            )
