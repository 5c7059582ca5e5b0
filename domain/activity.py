"""Use cases for what people do: events (with exactly-once summaries) and conversations.

An event is stored first, marked pending; then its profile's summary for that event name is
recomputed from the stored events and merged in with $max/$min, and the event is settled. The
recomputation is idempotent, so a retried event id, a crash between the steps (finished by
recovery) or many concurrent retries all leave the exact count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from domain.errors import NotFound, ValidationFailed
from domain.events import (
    CLIENT_ID,
    Conversation,
    ConversationKind,
    ConversationStatus,
    Event,
    check_client_id,
    check_event_name,
    check_event_properties,
    check_occurred_at,
    check_subject,
    conversation_key,
    event_storage_id,
)
from domain.identity import Channel, IdentityKey
from domain.ids import new_id
from domain.model import Profile, Touch
from domain.ports import ActivityStore, Clock, ProfileStore, RecordKind

if TYPE_CHECKING:
    from domain.services import ProfileService

MAX_PAGE = 100
_MAX_HOPS = 16


@dataclass(frozen=True, slots=True)
class TrackResult:
    profile: Profile
    event: Event
    counted: bool  # False when this call repeated an event id that was already stored


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[Event]
    has_next: bool


@dataclass(frozen=True, slots=True)
class ActivityPage:
    """Events and conversations newest first, each with its cursor key."""

    items: list[tuple[datetime, str, Event | Conversation]]
    has_next: bool


@dataclass(frozen=True, slots=True)
class ConversationInput:
    id: str
    channel: Channel
    kind: ConversationKind
    status: ConversationStatus
    subject: str | None
    started_at: datetime | None
    updated_at: datetime | None
    closed_at: datetime | None


class ActivityService:
    """Track events, record conversations, read a profile's activity."""

    def __init__(
        self,
        profiles: ProfileService,
        store: ProfileStore,
        activity: ActivityStore,
        clock: Clock,
    ) -> None:
        self._profiles = profiles
        self._store = store
        self._activity = activity
        self._clock = clock

    async def _target(
        self,
        tenant: str,
        channel: Channel | None,
        sender_id: str | None,
        profile_id: str | None,
    ) -> tuple[str, IdentityKey | None]:
        """The profile an input points at, by sender (created on first contact, and then with
        the sender's key) or by id."""
        if profile_id is None and channel is not None and sender_id is not None:
            return await self._profiles.sender_profile_id(tenant, channel, sender_id)
        if profile_id is None or sender_id is not None:
            raise ValidationFailed(
                "Give either channel and senderId, or profileId", field="profileId"
            )
        found = await self._profiles.profile(tenant, profile_id)
        if found is None:
            raise NotFound(f"No profile with id {profile_id!r}", field="profileId")
        return found.id, None

    async def track_event(
        self,
        tenant: str,
        *,
        name: str,
        properties: object,
        occurred_at: datetime | None,
        event_id: str | None,
        channel: Channel | None = None,
        sender_id: str | None = None,
        profile_id: str | None = None,
    ) -> TrackResult:
        check_event_name(name, field="name")
        values = check_event_properties(properties)
        now = self._clock.now()
        when = check_occurred_at(occurred_at, now, field="occurredAt")
        if event_id is not None:
            check_client_id(event_id, field="eventId")
        target, through = await self._target(tenant, channel, sender_id, profile_id)
        key = event_storage_id(tenant, event_id if event_id is not None else new_id())
        event = Event(
            id=key,
            profile_id=target,
            name=name,
            properties=values,
            occurred_at=when,
            received_at=now,
            event_id=event_id,
            identity=through.storage_id(tenant) if through is not None else None,
        )
        stored, pending = await self._activity.insert_event(tenant, event)
        inserted = stored is event
        if not pending:
            profile = await self._profiles.profile(tenant, stored.profile_id)
            if profile is None:
                raise NotFound("The event's profile no longer exists", field="eventId")
            return TrackResult(profile, stored, counted=False)
        touch = Touch(channel.value, stored.occurred_at) if channel is not None else None
        profile = await self.settle(tenant, stored, touch)
        return TrackResult(profile, stored, counted=inserted)

    async def settle(self, tenant: str, event: Event, touch: Touch | None = None) -> Profile:
        """Bring the summary of the event's profile up to date, then settle the event."""
        lifecycle = self._profiles.lifecycle
        profile_id = event.profile_id
        for _ in range(_MAX_HOPS):
            profile = await self._store.refresh_event_summaries(
                tenant, profile_id, [event.name], touch
            )
            if profile is not None:
                if event.identity is not None and event.identity in profile.returned_keys:
                    moved = await self._follow_key(tenant, event, profile)
                    if moved is not None:
                        profile_id = moved
                        continue
                await self._activity.settle_event(tenant, event.id)
                return profile
            # The profile was merged away (the event belongs to the survivor) or erased (the
            # event goes with it).
            resting = await lifecycle.rehome(tenant, RecordKind.EVENT, event.id, profile_id)
            if resting is None:
                raise NotFound("The event's profile no longer exists", field="profileId")
            profile_id = resting.id
        raise ValidationFailed("The profile kept being merged; retry", field="profileId")

    async def _follow_key(self, tenant: str, event: Event, profile: Profile) -> str | None:
        """The event landed, through a key an unmerge gave back from this profile, after that
        unmerge moved such events: it goes where its key is now (the profile's summaries are
        recomputed without it). Returns where it went, or None if it stays."""
        key = IdentityKey.from_storage_id(event.identity or "")
        binding = await self._store.find_identity(tenant, key)
        if binding is None or binding.profile_id == profile.id:
            return None
        await self._store.move_record(
            tenant, RecordKind.EVENT, event.id, profile.id, binding.profile_id
        )
        await self._store.recompute_event_summaries(tenant, profile.id)
        return binding.profile_id

    async def recover(self, *, older_than_seconds: float = 0) -> int:
        """Settle events left pending by a crash, paging in id order; returns how many."""
        cutoff = self._clock.now() - timedelta(seconds=older_than_seconds)
        settled = 0
        after: str | None = None
        while batch := await self._activity.pending_events(cutoff, after, 100):
            for tenant, event in batch:
                after = event.id
                try:
                    await self.settle(tenant, event)
                except NotFound:
                    continue
                settled += 1
        return settled

    async def event(self, tenant: str, key: str) -> Event | None:
        """An event by its key within the tenant (the client's eventId, or the one given it)."""
        if not CLIENT_ID.fullmatch(key):
            return None
        return await self._activity.get_event(tenant, event_storage_id(tenant, key))

    async def conversation(self, tenant: str, conversation_id: str) -> Conversation | None:
        """A conversation by the client's id."""
        if not CLIENT_ID.fullmatch(conversation_id):
            return None
        return await self._activity.get_conversation(tenant, conversation_id)

    async def event_history(
        self,
        tenant: str,
        profile_id: str,
        name: str | None,
        first: int,
        after: tuple[datetime, str] | None,
    ) -> EventPage:
        pages = await self.event_histories(tenant, [profile_id], name, first, after)
        return pages[profile_id]

    async def event_histories(
        self,
        tenant: str,
        profile_ids: Sequence[str],
        name: str | None,
        first: int,
        after: tuple[datetime, str] | None,
    ) -> dict[str, EventPage]:
        """The same page of events for each profile, in one query for all of them."""
        _check_page(first)
        if name is not None:
            check_event_name(name, field="name")
        if not profile_ids:
            return {}
        rows = await self._activity.event_pages(tenant, profile_ids, name, after, first + 1)
        pages: dict[str, EventPage] = {}
        for profile_id in profile_ids:
            events = rows.get(profile_id, [])
            pages[profile_id] = EventPage(events[:first], len(events) > first)
        return pages

    async def activity(
        self, tenant: str, profile_id: str, first: int, after: tuple[datetime, str] | None
    ) -> ActivityPage:
        """Events and conversations in one timeline, newest first (conversations by start)."""
        return (await self.activities(tenant, [profile_id], first, after))[profile_id]

    async def activities(
        self,
        tenant: str,
        profile_ids: Sequence[str],
        first: int,
        after: tuple[datetime, str] | None,
    ) -> dict[str, ActivityPage]:
        """The same page of each profile's timeline, in one query for all of them."""
        _check_page(first)
        if not profile_ids:
            return {}
        rows = await self._activity.activity_pages(tenant, profile_ids, after, first + 1)
        pages: dict[str, ActivityPage] = {}
        for profile_id in profile_ids:
            found = rows.get(profile_id)
            items: list[tuple[datetime, str, Event | Conversation]] = []
            if found is not None:
                items.extend((e.occurred_at, e.id, e) for e in found.events)
                items.extend((c.started_at, key, c) for key, c in found.conversations)
            items.sort(key=lambda item: (item[0], item[1]), reverse=True)
            pages[profile_id] = ActivityPage(items[:first], len(items) > first)
        return pages

    async def record_conversation(
        self,
        tenant: str,
        conversation: ConversationInput,
        *,
        channel: Channel | None,
        sender_id: str | None,
        profile_id: str | None,
    ) -> Conversation:
        check_client_id(conversation.id, field="conversationId")
        check_subject(conversation.subject)
        now = self._clock.now()
        started = check_occurred_at(conversation.started_at, now, field="startedAt")
        updated = check_occurred_at(conversation.updated_at, now, field="updatedAt")
        closed = conversation.closed_at
        if closed is not None:
            closed = check_occurred_at(closed, now, field="closedAt")
            if closed < started:
                raise ValidationFailed("closedAt is before startedAt", field="closedAt")
        linked = identity = None
        if channel is not None or sender_id is not None or profile_id is not None:
            linked, identity = await self._target(tenant, channel, sender_id, profile_id)
        existing = await self._activity.get_conversation(tenant, conversation.id)
        if existing is None and linked is None:
            raise ValidationFailed(
                "A new conversation needs channel and senderId, or profileId", field="profileId"
            )
        record = Conversation(
            id=conversation.id,
            profile_id=linked or (existing.profile_id if existing else ""),
            channel=conversation.channel,
            kind=conversation.kind,
            status=conversation.status,
            subject=conversation.subject,
            started_at=started,
            updated_at=updated,
            closed_at=closed,
        )
        stored = await self._activity.upsert_conversation(
            tenant,
            record,
            linked if existing is not None else None,
            identity.storage_id(tenant) if identity else None,
        )
        # Written first, checked after: a merge or erasure of its profile may have run between
        # our read of the profile and this write.
        lifecycle = self._profiles.lifecycle
        key = conversation_key(tenant, stored.id)
        resting = await lifecycle.rehome(
            tenant, RecordKind.CONVERSATION, key, stored.profile_id, settle=True
        )
        if resting is None:
            raise NotFound("The conversation's profile was erased", field="profileId")
        if identity is not None and existing is None:
            # A conversation follows the identity it came through: if that identity was
            # detached (or switched) meanwhile, it goes where the identity is now.
            binding = await self._store.find_identity(tenant, identity)
            if binding is not None and binding.profile_id != resting.id:
                home = await lifecycle.active(tenant, binding.profile_id)
                if home is not None:
                    await self._store.move_record(
                        tenant, RecordKind.CONVERSATION, key, resting.id, home.id
                    )
                    resting = (
                        await lifecycle.rehome(tenant, RecordKind.CONVERSATION, key, home.id)
                        or resting
                    )
        # A conversation is a contact: it moves the last channel and session, never backwards.
        await self._store.touch(tenant, resting.id, Touch(stored.channel.value, stored.updated_at))
        if resting.id != stored.profile_id:
            return replace(stored, profile_id=resting.id)
        return stored


def _check_page(first: int) -> None:
    if not 0 <= first <= MAX_PAGE:
        raise ValidationFailed(f"first must be between 0 and {MAX_PAGE}", field="first")
