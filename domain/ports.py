"""What the use cases need from the outside world, in the domain's words."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from domain.events import Conversation, Event
from domain.filters import Filter
from domain.identity import Channel, Identity, IdentityKey
from domain.merge import MergePlan
from domain.model import (
    Birth,
    CaptureWrite,
    MergeClaim,
    MergeRecord,
    Profile,
    ProfileChange,
    Segment,
    Touch,
    Undone,
    UnmergeClaim,
    UnmergeRecord,
)
from domain.properties import PropertyDefinition
from domain.unmerge import SurvivorUndo


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Location:
    """What an IP address tells about where someone is."""

    country: str | None = None
    timezone: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None


class GeoLookup(Protocol):
    def locate(self, ip: str) -> Location | None: ...


class FoldOutcome(StrEnum):
    APPLIED = "APPLIED"
    ALREADY_APPLIED = "ALREADY_APPLIED"
    ABANDONED = "ABANDONED"  # the target recorded that this merge was given up
    TARGET_INACTIVE = "TARGET_INACTIVE"  # merged, merging, erased, or changed under us
    USER_ID_CONFLICT = "USER_ID_CONFLICT"  # the target holds another userId
    LIMIT_REACHED = "LIMIT_REACHED"  # the target has recorded the maximum number of merges
    IDENTITY_LIMIT = "IDENTITY_LIMIT"  # the survivor would hold too many identity keys
    LIST_LIMIT = "LIST_LIMIT"  # a list of the survivor would grow past its cap


@dataclass(frozen=True, slots=True)
class MergeLimits:
    """What one profile may hold: merges recorded, identity keys."""

    merges: int
    identities: int
    list_items: int = 100


class RecordKind(StrEnum):
    """Documents that belong to a profile and follow it through merges."""

    IDENTITY = "IDENTITY"
    EVENT = "EVENT"
    CONVERSATION = "CONVERSATION"


@dataclass(frozen=True, slots=True)
class ProfileQuery:
    """Which profiles a listing, count or export covers."""

    where: Filter | None = None
    search: str | None = None
    # The moment relative windows ("within the last N days") are measured from.
    now: datetime | None = None


class ProfileStore(Protocol):
    """Profiles, identity keys and property definitions; every race is decided by one write."""

    # identity keys
    async def find_identity(self, tenant: str, key: IdentityKey) -> Identity | None: ...

    async def claim_identity(
        self,
        tenant: str,
        key: IdentityKey,
        profile_id: str,
        channel: Channel | None,
        now: datetime,
        *,
        unsettled: bool = False,
    ) -> Identity:
        """Bind the key to the profile unless it is bound already; return the binding. With
        `unsettled`, the key is marked for recovery until `settle_record` clears the mark."""
        ...

    async def add_identity_channel(
        self, tenant: str, key: IdentityKey, channel: Channel
    ) -> None: ...

    async def release_identity(self, tenant: str, key: IdentityKey, profile_id: str) -> None:
        """Remove the key only while it is still bound to that profile."""
        ...

    async def rebind_identity(
        self,
        tenant: str,
        key: IdentityKey,
        from_profile: str,
        to_profile: str,
        *,
        unsettled: bool = False,
    ) -> bool:
        """Move the key only while it is still bound to from_profile."""
        ...

    async def move_identity_conversations(
        self, tenant: str, key: IdentityKey, from_profile: str, to_profile: str
    ) -> None:
        """Move the conversations that came in through one identity."""
        ...

    async def count_identities(self, tenant: str, profile_ids: Sequence[str]) -> int: ...

    async def add_match_keys(self, tenant: str, profile_id: str, keys: Sequence[str]) -> None: ...

    async def find_by_match_keys(
        self, tenant: str, keys: Sequence[str], limit: int
    ) -> list[Profile]: ...

    async def identities_of(
        self, tenant: str, profile_ids: Sequence[str]
    ) -> Mapping[str, list[Identity]]: ...

    # profiles
    async def get_profile(self, tenant: str, profile_id: str) -> Profile | None:
        """The profile document in whatever state it is (tombstones included)."""
        ...

    async def insert_pending(
        self, tenant: str, profile_id: str, birth: Birth, user_id: str | None, now: datetime
    ) -> None:
        """Insert a profile in state PENDING, reserving the birth's keys on it."""
        ...

    async def activate(self, tenant: str, profile_id: str, now: datetime) -> Profile | None:
        """PENDING becomes ACTIVE (an active profile stays so); None if it is neither."""
        ...

    async def abort_birth(
        self, tenant: str, profile_id: str, now: datetime, *, known: bool = True
    ) -> bool:
        """A PENDING profile becomes a tombstone (or, when no key can ever have pointed at it,
        `known=False`, is deleted); False if it was no longer pending."""
        ...

    async def write_capture(
        self,
        tenant: str,
        profile_id: str,
        write: CaptureWrite,
        now: datetime,
        *,
        activate: bool = False,
    ) -> Profile | None:
        """Apply a capture to an active profile (or, with `activate`, to a pending one, which
        becomes active); None if it is not such a profile. Never creates one."""
        ...

    async def set_user_id(
        self,
        tenant: str,
        profile_id: str,
        user_id: str,
        values: Mapping[str, Any],
        now: datetime,
    ) -> Profile | None:
        """Give an active, unidentified profile its userId (its key's place was reserved
        before the key was claimed); None if it is not such a profile."""
        ...

    async def reserve_key(
        self,
        tenant: str,
        profile_id: str,
        key: IdentityKey,
        max_identities: int,
        *,
        claim_user_id: str | None = None,
    ) -> Profile | None:
        """Reserve a place for one more identity key on an active profile; None if it is not
        active or already holds the maximum. With `claim_user_id`, the profile also records
        that an identify is about to give it that userId (recovery settles the claim)."""
        ...

    async def drop_user_id_claim(self, tenant: str, profile_id: str, user_id: str) -> None: ...

    async def settle_record(
        self, tenant: str, kind: RecordKind, record_id: str, profile_id: str
    ) -> None:
        """Clear a record's unsettled mark, only while it is still on profile_id."""
        ...

    async def unsettled_records(
        self, before: datetime, after: tuple[RecordKind, str] | None, limit: int
    ) -> list[tuple[str, RecordKind, str, str]]:
        """Records marked unsettled since before the cut-off, in a stable order after `after`:
        (tenant, kind, record id, profile id)."""
        ...

    async def drop_key(self, tenant: str, profile_id: str, key: IdentityKey) -> None: ...

    async def touch(self, tenant: str, profile_id: str, touch: Touch) -> Profile | None:
        """Record a contact on an active profile (never moving it backwards)."""
        ...

    async def fill_profile(
        self, tenant: str, profile_id: str, plan: MergePlan, now: datetime, list_cap: int
    ) -> Profile | None:
        """Apply values to an active profile by the merge rules (fill, union, pairs), with no
        merge record; None if it is not active or a list would pass `list_cap`."""
        ...

    async def update_profile(
        self, tenant: str, profile_id: str, change: ProfileChange, now: datetime, list_cap: int
    ) -> Profile | None:
        """Apply an edit to an active profile; None if it is not active, or if the tags it adds
        would take the list past `list_cap` items."""
        ...

    async def list_profiles(
        self, tenant: str, query: ProfileQuery, after: str | None, limit: int
    ) -> list[Profile]: ...

    async def count_profiles(self, tenant: str, query: ProfileQuery) -> int: ...

    async def count_profiles_each(self, tenant: str, queries: Sequence[ProfileQuery]) -> list[int]:
        """How many profiles each query covers, in one query for all of them."""
        ...

    def iterate_profiles(self, tenant: str, query: ProfileQuery) -> AsyncIterator[Profile]:
        """Every matching profile, oldest first, fetched in batches (for export)."""
        ...

    # erase
    async def begin_erase(self, tenant: str, profile_id: str, now: datetime) -> bool:
        """ACTIVE becomes ERASING; False if the profile was not active."""
        ...

    async def erase_folded_source(
        self, tenant: str, source_id: str, merge_id: str, now: datetime
    ) -> bool:
        """A source whose fold is recorded becomes ERASING (its target was erased)."""
        ...

    async def profiles_into(self, tenant: str, profile_ids: Sequence[str]) -> list[Profile]:
        """Redirects to, and merge sources claimed into, any of these profiles."""
        ...

    async def delete_records(self, tenant: str, profile_ids: Sequence[str]) -> None:
        """Delete the identity keys, events and conversations of these profiles."""
        ...

    async def tombstone(self, tenant: str, profile_id: str, now: datetime) -> None:
        """An ERASING profile becomes a tombstone that keeps only its merge ids."""
        ...

    # records
    async def move_record(
        self, tenant: str, kind: RecordKind, record_id: str, from_profile: str, to_profile: str
    ) -> None:
        """Move one record, only while it is still on from_profile."""
        ...

    async def delete_record(
        self, tenant: str, kind: RecordKind, record_id: str, profile_id: str
    ) -> None:
        """Delete one record, only while it is still on profile_id."""
        ...

    async def refresh_event_summaries(
        self, tenant: str, profile_id: str, names: Sequence[str], touch: Touch | None = None
    ) -> Profile | None:
        """Recompute the named summaries from the profile's stored events and merge them in
        monotonically ($max count and last, $min first); None if the profile is not active.
        Idempotent, so retries and concurrent writers converge on the exact values."""
        ...

    # merges
    async def claim_merge_source(
        self, tenant: str, source_id: str, claim: MergeClaim, *, unidentified_only: bool
    ) -> Profile | None:
        """Mark an active profile as merging into the claim's target; None if it is not active."""
        ...

    async def fold_merge(
        self,
        tenant: str,
        target_id: str,
        plan: MergePlan,
        record: MergeRecord,
        now: datetime,
        limits: MergeLimits,
    ) -> tuple[FoldOutcome, Profile | None]:
        """Apply the plan to the target once per merge id, unless the target recorded the
        merge as abandoned; the target as written, if it was."""
        ...

    async def mark_folded(self, tenant: str, source_id: str, merge_id: str) -> None: ...

    async def abandon_fold(self, tenant: str, target_id: str, merge_id: str) -> bool:
        """Record on the target that this merge will never fold; False if it already has."""
        ...

    async def release_merge_claim(self, tenant: str, source_id: str, merge_id: str) -> None:
        """The source becomes active again, only while its fold is not recorded."""
        ...

    async def move_records(
        self,
        tenant: str,
        from_profile: str,
        to_profile: str,
        merge_id: str,
        *,
        user_id: str | None,
    ) -> None:
        """Move identity keys, events and conversations from one profile to another, tagging
        each moved record with the merge id (what an undo needs). Of the userId keys, only
        `user_id`'s moves: another is an identify's claim the source never recorded, which
        stays behind to be released (domain.merge.foreign_user_key)."""
        ...

    async def retire_source(
        self, tenant: str, source_id: str, merge_id: str, target_id: str, now: datetime
    ) -> None: ...

    async def unfinished(
        self, tenant: str | None, before: datetime, after: str | None, limit: int
    ) -> list[Profile]:
        """Profiles left PENDING, MERGING or ERASING since before the cut-off, by id."""
        ...

    # unmerges (domain.unmerging)
    async def find_merge(self, tenant: str, merge_id: str) -> Profile | None:
        """The profile whose merge history holds this merge (the survivor), in any state."""
        ...

    async def tagged_identities(
        self, tenant: str, survivor_id: str, merge_id: str
    ) -> list[Identity]: ...

    async def count_returning(
        self, tenant: str, survivor_id: str, merge_id: str, keys: tuple[str, ...]
    ) -> tuple[int, int]:
        """How many events and conversations an unmerge would move back."""
        ...

    async def claim_unmerge(
        self, tenant: str, survivor_id: str, claim: UnmergeClaim, history_length: int
    ) -> Profile | None: ...

    async def revive_source(
        self,
        tenant: str,
        record: MergeRecord,
        survivor_id: str,
        claim: UnmergeClaim,
        now: datetime,
    ) -> None: ...

    async def move_back(
        self,
        tenant: str,
        survivor_id: str,
        source_id: str,
        merge_id: str,
        keys: tuple[str, ...],
        *,
        identities: bool = True,
    ) -> None: ...

    async def strip_survivor(
        self,
        tenant: str,
        survivor: Profile,
        position: int,
        undo: SurvivorUndo,
        entry: UnmergeRecord,
        undone: Undone,
        keys: tuple[str, ...],
    ) -> bool: ...

    async def activate_source(
        self, tenant: str, source_id: str, merge_id: str, entry: UnmergeRecord, now: datetime
    ) -> None: ...

    async def recompute_event_summaries(self, tenant: str, profile_id: str) -> None: ...

    async def release_unmerge(self, tenant: str, survivor_id: str, merge_id: str) -> None: ...

    # property definitions
    async def definitions(self, tenant: str) -> list[PropertyDefinition]: ...

    async def insert_definition(
        self, tenant: str, definition: PropertyDefinition
    ) -> PropertyDefinition:
        """Store a new definition; if the name exists, return the stored one unchanged."""
        ...


@dataclass(frozen=True, slots=True)
class ActivityRows:
    """One profile's newest events and conversations, each conversation with its storage key
    (for cursors)."""

    events: list[Event]
    conversations: list[tuple[str, Conversation]]


class ActivityStore(Protocol):
    """Events and conversations."""

    async def insert_event(self, tenant: str, event: Event) -> tuple[Event, bool]:
        """Store a pending event and return it (the same object) with True; on a repeated
        client event id return the stored one and whether it is still pending."""
        ...

    async def settle_event(self, tenant: str, event_key: str) -> None:
        """Mark the event's summary as up to date (it leaves the recovery queue)."""
        ...

    async def get_conversation(self, tenant: str, conversation_id: str) -> Conversation | None: ...

    async def get_event(self, tenant: str, event_key: str) -> Event | None:
        """The stored event with this storage key, if the tenant has it."""
        ...

    async def pending_events(
        self, received_before: datetime, after: str | None, limit: int
    ) -> list[tuple[str, Event]]:
        """Events still pending since before the cut-off, in id order after `after`."""
        ...

    async def event_pages(
        self,
        tenant: str,
        profile_ids: Sequence[str],
        name: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> Mapping[str, list[Event]]:
        """Each profile's events newest first, at most `limit` each, in one query."""
        ...

    async def upsert_conversation(
        self,
        tenant: str,
        conversation: Conversation,
        profile_id: str | None,
        identity: str | None,
    ) -> Conversation:
        """Create or update a conversation by its id; an existing one keeps its profile and
        start time unless profile_id is given. `identity` is the storage id of the sender's
        key it came through (a detached identity takes its conversations along)."""
        ...

    async def activity_pages(
        self,
        tenant: str,
        profile_ids: Sequence[str],
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> Mapping[str, ActivityRows]:
        """Each profile's newest events (by occurrence) and conversations (by start), at most
        `limit` of each, in one query."""
        ...


class SegmentStore(Protocol):
    """Saved filters."""

    async def insert_segment(self, tenant: str, segment: Segment) -> Segment: ...

    async def replace_segment(self, tenant: str, segment: Segment) -> Segment | None: ...

    async def delete_segment(self, tenant: str, segment_id: str) -> bool: ...

    async def get_segment(self, tenant: str, segment_id: str) -> Segment | None: ...

    async def list_segments(self, tenant: str) -> list[Segment]: ...
