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
from domain.model import CaptureWrite, MergeClaim, MergeRecord, Profile, ProfileChange
from domain.properties import PropertyDefinition
from domain.segments import Segment


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
    TARGET_INACTIVE = "TARGET_INACTIVE"  # merged, merging, erased, or changed under us
    USER_ID_CONFLICT = "USER_ID_CONFLICT"  # the target holds another userId
    LIMIT_REACHED = "LIMIT_REACHED"  # the target has recorded the maximum number of merges


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
    ) -> Identity:
        """Bind the key to the profile unless it is bound already; return the binding."""
        ...

    async def add_identity_channel(
        self, tenant: str, key: IdentityKey, channel: Channel
    ) -> None: ...

    async def release_identity(self, tenant: str, key: IdentityKey, profile_id: str) -> None:
        """Remove the key only while it is still bound to that profile."""
        ...

    async def rebind_identity(
        self, tenant: str, key: IdentityKey, from_profile: str, to_profile: str
    ) -> bool:
        """Move the key only while it is still bound to from_profile."""
        ...

    async def move_records(
        self, tenant: str, from_profile: str, to_profile: str, merge_id: str
    ) -> None:
        """Move identity keys, events and conversations from one profile to another, tagging
        each moved record with the merge id (what an undo would need)."""
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
    async def get_profile(self, tenant: str, profile_id: str) -> Profile | None: ...

    async def write_capture(
        self, tenant: str, profile_id: str, write: CaptureWrite, now: datetime
    ) -> Profile | None:
        """Apply a capture to an active profile, creating it if missing; None if it is merged."""
        ...

    async def set_user_id(
        self,
        tenant: str,
        profile_id: str,
        user_id: str,
        values: Mapping[str, Any],
        now: datetime,
    ) -> Profile | None:
        """Give an active, unidentified profile its userId; None if it is not such a profile."""
        ...

    async def create_identified(
        self, tenant: str, profile_id: str, user_id: str, now: datetime
    ) -> Profile:
        """Create an empty identified profile; a repeat with the same id returns it."""
        ...

    async def update_profile(
        self, tenant: str, profile_id: str, change: ProfileChange, now: datetime
    ) -> Profile | None: ...

    async def list_profiles(
        self, tenant: str, query: ProfileQuery, after: str | None, limit: int
    ) -> list[Profile]: ...

    async def count_profiles(self, tenant: str, query: ProfileQuery) -> int: ...

    def iterate_profiles(self, tenant: str, query: ProfileQuery) -> AsyncIterator[Profile]:
        """Every matching profile, oldest first, fetched in batches (for export)."""
        ...

    async def erase_profile(self, tenant: str, profile_id: str) -> bool:
        """Remove the profile, the redirects to it, and its identities, events, conversations."""
        ...

    async def refresh_event_summaries(
        self, tenant: str, profile_id: str, names: Sequence[str]
    ) -> Profile | None:
        """Recompute the named summaries from the profile's stored events and merge them in
        monotonically ($max count and last, $min first); None if the profile is not active.
        Idempotent, so retries and concurrent writers converge on the exact values."""
        ...

    async def move_event(self, tenant: str, event_key: str, profile_id: str) -> None:
        """Re-link one event (tracked on a profile that was merged away meanwhile)."""
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
        max_merges: int,
    ) -> tuple[FoldOutcome, Profile | None]:
        """Apply the plan to the target once per merge id; the target as written, if it was."""
        ...

    async def retire_source(
        self, tenant: str, source_id: str, merge_id: str, target_id: str, now: datetime
    ) -> None: ...

    async def release_merge_claim(self, tenant: str, source_id: str, merge_id: str) -> None: ...

    async def merging_profiles(
        self, tenant: str | None, claimed_before: datetime, limit: int
    ) -> list[Profile]: ...

    # property definitions
    async def definitions(self, tenant: str) -> list[PropertyDefinition]: ...

    async def insert_definition(
        self, tenant: str, definition: PropertyDefinition
    ) -> PropertyDefinition:
        """Store a new definition; if the name exists, return the stored one unchanged."""
        ...


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

    async def pending_events(
        self, received_before: datetime, limit: int
    ) -> list[tuple[str, Event]]: ...

    async def event_history(
        self,
        tenant: str,
        profile_id: str,
        name: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Event]: ...

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

    async def conversations_of(
        self,
        tenant: str,
        profile_id: str,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[tuple[str, Conversation]]:
        """Newest first by start time, with each conversation's storage key (for cursors)."""
        ...


class SegmentStore(Protocol):
    """Saved filters."""

    async def insert_segment(self, tenant: str, segment: Segment) -> Segment: ...

    async def replace_segment(self, tenant: str, segment: Segment) -> Segment | None: ...

    async def delete_segment(self, tenant: str, segment_id: str) -> bool: ...

    async def get_segment(self, tenant: str, segment_id: str) -> Segment | None: ...

    async def list_segments(self, tenant: str) -> list[Segment]: ...
