"""The lifecycle of a profile document, and the one place that follows it to its survivor.

Every multi-step operation is a state machine on one profile document. Each transition is
one conditional single-document write; every step is safe to repeat and safe to run by
whoever meets the operation half-done (a reader, a writer, or recovery).

| state   | entered from          | by (one conditional write)          | leaves to        |
|---------|-----------------------|-------------------------------------|------------------|
| PENDING | (insert)              | insert_pending: a birth             | ACTIVE, ERASED   |
| ACTIVE  | PENDING, MERGING,     | activate; release_merge_claim;      | MERGING, ERASING |
|         | UNMERGING             | activate_source                     |                  |
| MERGING | ACTIVE                | claim_merge_source                  | MERGED, ACTIVE,  |
|         |                       |                                     | ERASING          |
| MERGED  | MERGING               | retire_source (a redirect)          | ERASED,          |
|         |                       |                                     | UNMERGING        |
| UNMERGING | MERGED              | revive_source (an unmerge)          | ACTIVE           |
| ERASING | ACTIVE, MERGING       | begin_erase; erase_folded_source    | ERASED           |
| ERASED  | ERASING, MERGED,      | tombstone; abort_birth              | (final)          |
|         | PENDING               |                                     |                  |

Inside MERGING, `merging.folded` records that the target holds the fold: from then on the
merge only completes (MERGED), or is erased with its survivor (ERASING); it is released back
to ACTIVE only after `abandon_fold` recorded on the target that the fold will never happen.

An ACTIVE survivor whose merge is being undone carries an `unmerging` mark (domain.unmerging):
while it does, nothing folds into it, claims it or erases it, and whoever meets the mark (or
the source in UNMERGING) finishes the unmerge first.

Records that belong to a profile (identity keys, events, conversations) are written first and
checked after: `rehome` re-reads the profile they landed on and moves them along the survivor
chain, or deletes them if that chain ends in an erased profile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from domain.births import Births
from domain.erasing import Eraser
from domain.identity import user_id_key
from domain.merging import Merger
from domain.model import MergeTrigger, Profile, ProfileState
from domain.ports import Clock, MergeLimits, ProfileStore, RecordKind
from domain.unmerging import Unmerger

MAX_REDIRECT_HOPS = 16
_UNDER_WAY = (
    ProfileState.PENDING,
    ProfileState.MERGING,
    ProfileState.ERASING,
    ProfileState.UNMERGING,
)
_RECOVERY_PAGE = 100


class ChainTooLong(Exception):
    """A chain of merges was longer than any the limits allow (or kept changing)."""


@dataclass(frozen=True, slots=True)
class Recovered:
    """What one recovery pass finished."""

    births: int = 0
    merges: int = 0
    erasures: int = 0
    records: int = 0
    unmerges: int = 0

    @property
    def total(self) -> int:
        return self.births + self.merges + self.erasures + self.records + self.unmerges


class Lifecycle:
    """Births, merges and erasures, and the survivor an id leads to."""

    def __init__(
        self,
        store: ProfileStore,
        clock: Clock,
        limits: MergeLimits,
        on_merge: Callable[[MergeTrigger], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self.births = Births(store, clock)
        self.merger = Merger(store, clock, self, limits, on_merge)
        self.eraser = Eraser(store, clock, self)
        self.unmerger = Unmerger(store, clock, self)

    async def active(self, tenant: str, profile_id: str) -> Profile | None:
        """The live profile an id leads to, following merges and finishing any operation in
        progress on the way; None if it leads to an erased profile or to none."""
        requested = profile_id
        for _ in range(MAX_REDIRECT_HOPS):
            profile = await self._store.get_profile(tenant, profile_id)
            if profile is None:
                return None
            match profile.state:
                case ProfileState.ACTIVE:
                    if profile.unmerging is not None:
                        # Finish it, then follow the requested id again: the merge it undid
                        # may be the redirect that led here.
                        await self.unmerger.finish(profile)
                        profile_id = requested
                        continue
                    if profile.id != requested:
                        return replace(profile, redirected_from=requested)
                    return profile
                case ProfileState.PENDING:
                    if await self.births.complete(profile) is None:
                        return None
                case ProfileState.MERGING:
                    await self.merger.finish(profile)
                case ProfileState.MERGED:
                    profile_id = profile.merged_into or profile_id
                case ProfileState.ERASING:
                    await self.eraser.finish(profile)
                    return None
                case ProfileState.ERASED:
                    return None
                case ProfileState.UNMERGING:
                    await self.unmerger.finish_source(profile)
        raise ChainTooLong("a chain of merges was too long to follow")

    async def rehome(
        self,
        tenant: str,
        kind: RecordKind,
        record_id: str,
        profile_id: str,
        *,
        settle: bool = False,
    ) -> Profile | None:
        """After a record was written onto `profile_id`: make sure it rests on the active
        profile that id leads to (moving it there), or delete it if that profile was erased.
        With `settle`, the record was written marked unsettled (so recovery would find it if
        this call never happened): the mark is cleared once it rests. Returns where it rests."""
        at = profile_id
        for _ in range(MAX_REDIRECT_HOPS):
            survivor = await self.active(tenant, at)
            if survivor is None:
                await self._store.delete_record(tenant, kind, record_id, at)
                return None
            if survivor.id == at:
                if settle:
                    await self._store.settle_record(tenant, kind, record_id, at)
                return survivor
            await self._store.move_record(tenant, kind, record_id, at, survivor.id)
            at = survivor.id
        raise ChainTooLong("a chain of merges was too long to follow")

    async def settle_user_key(self, tenant: str, user_id: str, profile_id: str) -> Profile | None:
        """The key of userId U points at `profile_id`: that profile with U, completed if it
        lacked it; or None after releasing the key if the profile can never take U (erased,
        merged away, or holding another userId, which never changes); or None (look again)
        while an operation on it is under way (finished first; after an unmerge, always: it
        may take the key back). A key is never released while its profile could still take U:
        a late writer would give U to a profile without its key."""
        raw = await self._store.get_profile(tenant, profile_id)
        if raw is not None and raw.unmerging is not None:
            # An unmerge under way on it may give U (and its key) back to the source: finish
            # it, then look again at where the key is.
            await self.active(tenant, profile_id)
            return None
        if raw is not None and raw.state in _UNDER_WAY:
            await self.active(tenant, profile_id)  # finish what is under way
            raw = await self._store.get_profile(tenant, profile_id)
        if raw is not None and raw.state is ProfileState.ACTIVE:
            if raw.user_id == user_id:
                return raw
            if raw.user_id is None:
                return await self._store.set_user_id(tenant, raw.id, user_id, {}, self._clock.now())
        elif raw is not None and raw.state in _UNDER_WAY:
            return None
        await self._store.release_identity(tenant, user_id_key(user_id), profile_id)
        return None

    async def _settle_claim(self, profile: Profile) -> None:
        """An identify reserved a userId on this profile and may have died before recording
        it: record it if its key was claimed for this profile, or drop the claim."""
        claimed = profile.user_id_claim
        if claimed is None:
            return
        key = await self._store.find_identity(profile.tenant, user_id_key(claimed))
        if key is not None and key.profile_id == profile.id:
            await self.settle_user_key(profile.tenant, claimed, profile.id)
        await self._store.drop_user_id_claim(profile.tenant, profile.id, claimed)

    async def _settle_records(self, cutoff: datetime) -> int:
        """Records written onto a profile and not yet checked (their writer died between the
        write and the check) are moved to where their profile leads, or deleted."""
        settled = 0
        after: tuple[RecordKind, str] | None = None
        while batch := await self._store.unsettled_records(cutoff, after, _RECOVERY_PAGE):
            for tenant, kind, record_id, profile_id in batch:
                after = (kind, record_id)
                await self.rehome(tenant, kind, record_id, profile_id, settle=True)
                settled += 1
        return settled

    async def recover(
        self, tenant: str | None = None, *, older_than_seconds: float = 0
    ) -> Recovered:
        """Finish (or give up, where the rules say so) every operation left half-done before
        the cut-off, paging through them in id order so none is starved."""
        cutoff = self._clock.now() - timedelta(seconds=older_than_seconds)
        counts = {state: 0 for state in ProfileState}
        unmerges: set[str] = set()
        after: str | None = None
        while batch := await self._store.unfinished(tenant, cutoff, after, _RECOVERY_PAGE):
            for profile in batch:
                after = profile.id
                if profile.user_id_claim is not None:
                    await self._settle_claim(profile)
                    profile = await self._store.get_profile(profile.tenant, profile.id) or profile
                if profile.unmerging is not None:
                    await self.unmerger.finish(profile)
                    unmerges.add(profile.unmerging.merge_id)
                if profile.state is ProfileState.PENDING:
                    await self.births.complete(profile, give_up=True)
                elif profile.state is ProfileState.MERGING:
                    await self.merger.finish(profile)
                elif profile.state is ProfileState.ERASING:
                    await self.eraser.finish(profile)
                elif profile.state is ProfileState.UNMERGING and profile.unmerge_of:
                    await self.unmerger.finish_source(profile)
                    unmerges.add(profile.unmerge_of)
                counts[profile.state] += 1
        records = await self._settle_records(cutoff)
        return Recovered(
            records=records,
            births=counts[ProfileState.PENDING],
            merges=counts[ProfileState.MERGING],
            erasures=counts[ProfileState.ERASING],
            unmerges=len(unmerges),
        )
