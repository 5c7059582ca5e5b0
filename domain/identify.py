"""identify: a sender says who they are (a userId), with one of five outcomes.

| the sender's profile P       | the userId U                | outcome    |
|------------------------------|-----------------------------|------------|
| has no userId                | nobody has it               | IDENTIFIED |
| has no userId                | profile E has it            | MERGED (P into E) |
| has another userId           | profile E has it            | SWITCHED (the sender moves to E) |
| has another userId           | nobody has it               | CREATED (a new profile with U)   |
| has U                        |                             | UNCHANGED  |

A userId is a key like any identity (`tenant|USER_ID|U`): the key is claimed before the profile
records the userId, and a profile created for it is born with it (domain.births).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from domain.capture import MAX_ATTEMPTS, Senders, contact
from domain.definitions import Definitions
from domain.errors import Contention, LimitExceeded
from domain.identity import (
    Channel,
    Identity,
    IdentityKey,
    check_user_id,
    identity_key,
    user_id_key,
)
from domain.lifecycle import Lifecycle
from domain.matching import keys_of_values
from domain.merge import list_overflow, plan_merge
from domain.merging import Abandoned, MergeResult
from domain.model import CaptureWrite, KeyBinding, MergeTrigger, Profile, Touch
from domain.ports import Clock, ProfileStore, RecordKind


class IdentifyOutcome(StrEnum):
    """What identify did."""

    IDENTIFIED = "IDENTIFIED"
    MERGED = "MERGED"
    SWITCHED = "SWITCHED"
    CREATED = "CREATED"
    UNCHANGED = "UNCHANGED"


@dataclass(frozen=True, slots=True)
class IdentifyResult:
    profile: Profile
    outcome: IdentifyOutcome
    merged_profile_id: str | None = None


def merge_limit_error(limit: int) -> LimitExceeded:
    return LimitExceeded(
        f"A profile records at most {limit} merges; this merge would exceed that",
        field="targetId",
    )


def identity_limit_error(limit: int, field: str) -> LimitExceeded:
    return LimitExceeded(
        f"A profile holds at most {limit} identities; this would exceed that", field=field
    )


def check_merge_limits(lifecycle: Lifecycle, target: Profile, source: Profile, field: str) -> None:
    """Refuse before anything is written; the fold enforces both limits again, atomically,
    for merges that race each other past this check."""
    limits = lifecycle.merger.limits
    if len(target.merge_history) >= limits.merges:
        raise merge_limit_error(limits.merges)
    if len(set(target.keys) | set(source.keys)) > limits.identities:
        raise identity_limit_error(limits.identities, field)
    overflow = list_overflow(target.properties, plan_merge(source), limits.list_items)
    if overflow is not None:
        raise list_limit_error(overflow, limits.list_items)


def list_limit_error(name: str, cap: int) -> LimitExceeded:
    return LimitExceeded(
        f"Merged, the list '{name}' would hold more than {cap} items, and lists are never "
        f"cut short: remove items from '{name}' on either profile first, then merge",
        field=name,
    )


def refusal_of(lifecycle: Lifecycle, reason: Abandoned, field: str) -> LimitExceeded | None:
    limits = lifecycle.merger.limits
    if reason is Abandoned.LIMIT_REACHED:
        return merge_limit_error(limits.merges)
    if reason is Abandoned.IDENTITY_LIMIT:
        return identity_limit_error(limits.identities, field)
    if reason is Abandoned.LIST_LIMIT:
        return LimitExceeded(
            f"Merged, a list would hold more than {limits.list_items} items; remove items "
            "from it on either profile first, then merge",
            field=field,
        )
    return None


class Identify:
    """identify, and the automatic identification of email senders."""

    def __init__(
        self,
        store: ProfileStore,
        clock: Clock,
        lifecycle: Lifecycle,
        senders: Senders,
        definitions: Definitions,
    ) -> None:
        self._store = store
        self._clock = clock
        self._lifecycle = lifecycle
        self._senders = senders
        self._definitions = definitions

    @property
    def _max_identities(self) -> int:
        return self._lifecycle.merger.limits.identities

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
        user_id = check_user_id(user_id)
        values = await self._definitions.validate(tenant, properties or {}, field="properties")
        # An identify is a contact: it moves the last channel and session, never backwards.
        touch = contact(values, channel, self._clock.now())
        result = await self.identify_key(
            tenant, key, user_id, values, actor=actor, channel=channel, touch=touch
        )
        if result.outcome is IdentifyOutcome.MERGED:
            return result  # the contact was the sender's record's, and merged with it
        touched = await self._store.touch(tenant, result.profile.id, touch)
        return replace(result, profile=touched) if touched is not None else result

    async def identify_key(
        self,
        tenant: str,
        key: IdentityKey,
        user_id: str,
        values: Mapping[str, Any],
        *,
        actor: str,
        channel: Channel | None = None,
        touch: Touch | None = None,
    ) -> IdentifyResult:
        for _ in range(MAX_ATTEMPTS):
            identity = await self._store.find_identity(tenant, key)
            if identity is None:
                first = await self._first_contact(tenant, key, channel, user_id, values)
                if first is not None:
                    return first
                continue
            if channel is not None and channel not in identity.channels:
                await self._store.add_identity_channel(tenant, key, channel)
            current = await self._lifecycle.active(tenant, identity.profile_id)
            if current is None:
                await self._store.release_identity(tenant, key, identity.profile_id)  # erased
                continue
            if key.storage_id(tenant) not in current.keys:
                # Not in its profile's ledger: an unmerge finished on the way may have taken
                # the sender back to its own profile. Read it again before deciding.
                again = await self._store.find_identity(tenant, key)
                if again is None or again.profile_id != current.id:
                    continue
            if current.user_id == user_id:
                profile = await self._apply(tenant, current, values)
                return IdentifyResult(profile, IdentifyOutcome.UNCHANGED)
            if current.user_id is None:
                result = await self._identify_anonymous(
                    tenant, current, user_id, values, actor, touch
                )
            else:
                result = await self._switch(tenant, key, identity, user_id, values)
            if result is not None:
                return result
        raise Contention("identify lost too many races")

    async def _first_contact(
        self,
        tenant: str,
        key: IdentityKey,
        channel: Channel | None,
        user_id: str,
        values: Mapping[str, Any],
    ) -> IdentifyResult | None:
        """A sender never seen before: no record of it exists, so none is made only to be
        merged. If U has a profile, the sender joins it (SWITCHED); otherwise a profile is born
        holding both U and the sender (IDENTIFIED)."""
        user_key = user_id_key(user_id)
        owner = await self._store.find_identity(tenant, user_key)
        if owner is not None:
            existing = await self._owner(tenant, user_id, owner)
            if existing is None:
                return None
            joined = await self._join(tenant, key, channel, existing)
            if joined is None:
                return None
            profile = await self._fill(tenant, joined, values)
            return IdentifyResult(profile, IdentifyOutcome.SWITCHED)
        born = await self._lifecycle.births.create(
            tenant,
            [KeyBinding(key=user_key), KeyBinding(key=key, channel=channel)],
            user_id=user_id,
        )
        if not isinstance(born, Profile):
            return None  # U was taken meanwhile: the next attempt joins its profile
        sender_now = await self._store.find_identity(tenant, key)
        if sender_now is None or sender_now.profile_id != born.id:
            return None  # the sender was bound elsewhere meanwhile: look again
        profile = await self._apply(tenant, born, values)
        return IdentifyResult(profile, IdentifyOutcome.IDENTIFIED)

    async def _join(
        self, tenant: str, key: IdentityKey, channel: Channel | None, to: Profile
    ) -> Profile | None:
        """Bind a sender nobody holds to an existing profile (its place reserved first)."""
        limit = self._max_identities
        if key.storage_id(tenant) not in to.keys and len(to.keys) >= limit:
            raise identity_limit_error(limit, "userId")
        if await self._store.reserve_key(tenant, to.id, key, limit) is None:
            return None
        held = await self._store.claim_identity(
            tenant, key, to.id, channel, self._clock.now(), unsettled=True
        )
        if held.profile_id != to.id:
            return None  # a first contact of the same sender won: look again
        return await self._lifecycle.rehome(
            tenant, RecordKind.IDENTITY, key.storage_id(tenant), to.id, settle=True
        )

    async def _identify_anonymous(
        self,
        tenant: str,
        current: Profile,
        user_id: str,
        values: Mapping[str, Any],
        actor: str,
        touch: Touch | None = None,
    ) -> IdentifyResult | None:
        user_key = user_id_key(user_id)
        taken = await self._store.find_identity(tenant, user_key)
        if taken is not None and taken.profile_id != current.id:
            return await self._merge_into_owner(
                tenant, current, user_id, taken, values, actor, touch
            )
        if user_key.storage_id(tenant) not in current.keys:
            # The userId's key takes a place on the profile: reserved before it is claimed,
            # so the limit is decided here and nothing after the claim can fail on it.
            limit = self._max_identities
            if len(current.keys) >= limit:
                raise identity_limit_error(limit, "userId")
            reserved = await self._store.reserve_key(
                tenant, current.id, user_key, limit, claim_user_id=user_id
            )
            if reserved is None:
                again = await self._store.get_profile(tenant, current.id)
                if again is not None and again.active and len(again.keys) >= limit:
                    raise identity_limit_error(limit, "userId")
                return None
        owner = await self._store.claim_identity(
            tenant, user_key, current.id, None, self._clock.now()
        )
        if owner.profile_id == current.id:
            profile = await self._store.set_user_id(
                tenant, current.id, user_id, values, self._clock.now()
            )
            if profile is not None:
                return IdentifyResult(profile, IdentifyOutcome.IDENTIFIED)
            settled = await self._settle_user_key(tenant, user_id, current.id)
            if settled is not None:
                profile = await self._apply(tenant, settled, values)
                return IdentifyResult(profile, IdentifyOutcome.IDENTIFIED)
            return None
        return await self._merge_into_owner(tenant, current, user_id, owner, values, actor, touch)

    async def _merge_into_owner(
        self,
        tenant: str,
        current: Profile,
        user_id: str,
        owner: Identity,
        values: Mapping[str, Any],
        actor: str,
        touch: Touch | None = None,
    ) -> IdentifyResult | None:
        """Another profile holds U's key: the anonymous profile merges into it."""
        existing = await self._owner(tenant, user_id, owner)
        if existing is None:
            return None
        if existing.id == current.id:
            profile = await self._apply(tenant, existing, values)
            return IdentifyResult(profile, IdentifyOutcome.IDENTIFIED)
        check_merge_limits(self._lifecycle, existing, current, "userId")
        if values or touch is not None:
            # The values and the contact belong to the sender's record: they merge by the same
            # rules as the rest of it (fill what the survivor lacks, union lists, the later
            # contact), never replace; an unmerge gives them back to the sender's record.
            write = CaptureWrite(
                set=dict(values), match_keys=tuple(keys_of_values(values)), touch=touch
            )
            written = await self._senders.write(tenant, current.id, write) or current
            if written.id != current.id:
                return None  # it was merged elsewhere meanwhile: look again
            current = written
        merged = await self._lifecycle.merger.merge(
            tenant,
            current.id,
            existing.id,
            trigger=MergeTrigger.IDENTIFY,
            actor=actor,
            unidentified_only=True,
        )
        if not isinstance(merged, MergeResult):
            refusal = refusal_of(self._lifecycle, merged, "userId")
            if refusal is not None:
                raise refusal
            return None
        profile = merged.survivor or existing
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
            moved = await self._move_sender(tenant, key, identity.profile_id, existing)
            if moved is None:
                return None
            profile = await self._fill(tenant, moved, values)
            return IdentifyResult(profile, IdentifyOutcome.SWITCHED)
        if owner is not None:
            return None  # a stale binding was just cleared; look again
        created = await self._lifecycle.births.create(
            tenant,
            [
                KeyBinding(key=user_key),
                KeyBinding(key=key, from_profile=identity.profile_id),
            ],
            user_id=user_id,
        )
        if not isinstance(created, Profile):
            return None  # someone else has U now (the next attempt switches to it), or a race
        sender_now = await self._store.find_identity(tenant, key)
        if sender_now is None or sender_now.profile_id != created.id:
            # The sender left its profile meanwhile (merged, erased or detached): the new
            # profile has U, and the next attempt moves the sender to it from where it is.
            return None
        profile = await self._apply(tenant, created, values)
        return IdentifyResult(profile, IdentifyOutcome.CREATED)

    async def _move_sender(
        self, tenant: str, key: IdentityKey, from_profile: str, to: Profile
    ) -> Profile | None:
        """Reserve a place for the key on `to` (the limit is decided there), move the key,
        give its place on the old profile back. None if something moved meanwhile."""
        limit = self._max_identities
        if key.storage_id(tenant) not in to.keys and len(to.keys) >= limit:
            raise identity_limit_error(limit, "userId")
        reserved = await self._store.reserve_key(tenant, to.id, key, limit)
        if reserved is None:
            again = await self._lifecycle.active(tenant, to.id)
            if again is not None and again.id == to.id and len(again.keys) >= limit:
                raise identity_limit_error(limit, "userId")
            return None
        if not await self._store.rebind_identity(tenant, key, from_profile, to.id, unsettled=True):
            # The place stays reserved: a concurrent identical switch may hold it now, and a
            # ledger may over-count (recovery's check rebuilds it) but never under-count.
            return None
        await self._store.drop_key(tenant, from_profile, key)
        return await self._lifecycle.rehome(
            tenant, RecordKind.IDENTITY, key.storage_id(tenant), to.id, settle=True
        )

    async def _owner(self, tenant: str, user_id: str, binding: Identity) -> Profile | None:
        """The active profile that holds userId U according to its key, or None (look again).

        The key is the truth: a profile gets its userId only after its key is claimed, so a
        key whose profile has no userId yet is completed. A key is released only when its
        profile can never take U any more (erased, merged away, or holding another userId,
        which never changes): releasing it while the profile could still take U would let a
        late writer give U to a profile without its key.
        """
        return await self._settle_user_key(tenant, user_id, binding.profile_id)

    async def _settle_user_key(self, tenant: str, user_id: str, profile_id: str) -> Profile | None:
        return await self._lifecycle.settle_user_key(tenant, user_id, profile_id)

    async def _fill(self, tenant: str, profile: Profile, values: Mapping[str, Any]) -> Profile:
        """The sender's values into another profile by the merge rules: they fill what it
        lacks and union lists, never replace what it has."""
        if not values:
            return profile
        plan = plan_merge(replace(profile, properties=dict(values), user_id=None, keys=()))
        plan = replace(plan, match_keys=tuple(keys_of_values(values)))
        written = await self._senders.fill(tenant, profile.id, plan)
        return written or profile

    async def _apply(self, tenant: str, profile: Profile, values: Mapping[str, Any]) -> Profile:
        if not values:
            return profile
        write = CaptureWrite(set=dict(values), match_keys=tuple(keys_of_values(values)))
        written = await self._senders.write(tenant, profile.id, write)
        return written or profile
