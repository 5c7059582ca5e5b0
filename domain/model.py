"""The profile and the records it carries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.identity import Channel, IdentityKey


class ProfileState(StrEnum):
    """Where a profile document stands in its lifecycle (see domain.lifecycle)."""

    PENDING = "PENDING"  # being born: its identity keys are being bound to it
    ACTIVE = "ACTIVE"
    MERGING = "MERGING"  # claimed as the source of a merge
    MERGED = "MERGED"  # a redirect to the profile it was merged into
    UNMERGING = "UNMERGING"  # a merged-away source coming back (see domain.unmerging)
    ERASING = "ERASING"
    ERASED = "ERASED"  # a tombstone: nothing is ever written to this id again


class MergeTrigger(StrEnum):
    """Why a merge happened."""

    IDENTIFY = "IDENTIFY"
    MANUAL = "MANUAL"


@dataclass(frozen=True, slots=True)
class MergeClaim:
    """The mark a merge puts on its source before anything moves."""

    merge_id: str
    target_id: str
    at: datetime
    trigger: MergeTrigger
    actor: str
    # Set on the source once the target has recorded the fold: from then on the merge can
    # only complete (or, if the target is erased, be erased with it), never be released.
    folded: bool = False


@dataclass(frozen=True, slots=True)
class KeyBinding:
    """One identity key a profile being born must hold, and the profile it comes from (None
    for a key that nobody held)."""

    key: IdentityKey
    channel: Channel | None = None
    from_profile: str | None = None
    # A detached identity takes the conversations that came through it along.
    take_conversations: bool = False


@dataclass(frozen=True, slots=True)
class Birth:
    """The intent of a profile in state PENDING: bind these keys, in order, then go active.
    The first key decides: if another profile holds it, the birth is abandoned."""

    at: datetime
    keys: tuple[KeyBinding, ...]


@dataclass(frozen=True, slots=True)
class Touch:
    """A contact with the person: it moves lastChannel and lastSession, never backwards."""

    channel: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Undone:
    """When and by whom a merge was undone."""

    at: datetime
    actor: str


@dataclass(frozen=True, slots=True)
class MergeRecord:
    """A merge as the survivor remembers it, with what an undo needs: the source's values,
    userId, key ledger and match keys, and what the fold did to the survivor (computed in the
    fold's own write): the names it filled, whether it gave the userId, and the survivor's
    last contact when the source's later one replaced it."""

    merge_id: str
    source_id: str
    at: datetime
    trigger: MergeTrigger
    actor: str
    source_user_id: str | None = None
    source_properties: Mapping[str, Any] = field(default_factory=dict)
    source_keys: tuple[str, ...] = ()
    source_match_keys: tuple[str, ...] = ()
    filled: tuple[str, ...] = ()
    gave_user_id: bool = False
    contact_replaced: bool = False
    prior_contact: Touch | None = None
    undone: Undone | None = None
    # False for a merge recorded before merges recorded what their fold did: not undoable.
    recorded: bool = True


@dataclass(frozen=True, slots=True)
class SourceItem:
    """A list item that only a merge's source brought to the survivor; `readded` once a
    later write (a capture, an edit, an identify) added it to the survivor again."""

    merge_id: str
    name: str
    item: Any
    readded: bool = False


@dataclass(frozen=True, slots=True)
class UnmergeClaim:
    """The mark an unmerge puts on the survivor before anything moves back."""

    merge_id: str
    source_id: str
    at: datetime
    actor: str
    # The identity keys that go back (those the merge tagged that are still on the survivor).
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Kept:
    """Something a merge brought that an unmerge leaves on the survivor because it changed
    since the merge (a value), or was added again (a list item)."""

    name: str
    item: Any = None
    is_item: bool = False


@dataclass(frozen=True, slots=True)
class UnmergeRecord:
    """An unmerge as both profiles remember it."""

    merge_id: str
    source_id: str
    survivor_id: str
    at: datetime
    actor: str
    removed: tuple[Kept, ...] = ()
    kept: tuple[Kept, ...] = ()


@dataclass(frozen=True, slots=True)
class EventSummary:
    """How often and when a profile did one kind of event."""

    name: str
    count: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class Profile:
    """One person as the service knows them, or the redirect a merge left behind."""

    id: str
    tenant: str
    user_id: str | None
    properties: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
    events: tuple[EventSummary, ...] = ()
    merge_history: tuple[MergeRecord, ...] = ()
    merged_into: str | None = None
    merged_by: str | None = None  # the id of the merge that made this profile a redirect
    merging: MergeClaim | None = None
    state: ProfileState = ProfileState.ACTIVE
    birth: Birth | None = None
    # The identity keys this profile holds or has reserved (the limit is enforced on this
    # list, inside the deciding write); the identity documents themselves are the truth.
    keys: tuple[str, ...] = ()
    # A userId an identify reserved a place for and is about to record (see recovery).
    user_id_claim: str | None = None
    # Lookup aid for merge suggestions (see domain.matching); a superset, re-checked on use.
    match_keys: tuple[str, ...] = ()
    # Set when the profile was read through an id that was merged into it.
    redirected_from: str | None = None
    # On a survivor: the unmerge under way; on a source coming back (UNMERGING): its merge.
    unmerging: UnmergeClaim | None = None
    unmerge_of: str | None = None
    unmerges: tuple[UnmergeRecord, ...] = ()
    source_only: tuple[SourceItem, ...] = ()
    # Identity keys an unmerge gave back from this profile: an event that lands here through
    # one of them afterwards (its writer read the key before the unmerge) follows the key.
    returned_keys: tuple[str, ...] = ()

    @property
    def identified(self) -> bool:
        return self.user_id is not None

    @property
    def active(self) -> bool:
        return self.state is ProfileState.ACTIVE

    @property
    def tags(self) -> list[str]:
        tags = self.properties.get("tags")
        return list(tags) if isinstance(tags, list) else []


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """An agent's edit: values to set, names to unset, tags to add and remove."""

    set: Mapping[str, Any] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    match_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CaptureWrite:
    """What one capture writes: values that replace, and auto-captured values that only fill:
    one by one, or as groups (each filled whole, and only if the profile has none of it)."""

    set: Mapping[str, Any]
    fill: Mapping[str, Any] = field(default_factory=dict)
    # Each names every member of a group (domain.merge.GROUPS), None for those without a value.
    fill_groups: tuple[Mapping[str, Any], ...] = ()
    match_keys: tuple[str, ...] = ()
    touch: Touch | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    """A named filter of a tenant; `filter` is the client form (see domain.filters)."""

    id: str
    name: str
    description: str
    filter: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
