"""The unmerge protocol: undoing one merge (S into T) as idempotent single-document steps.

1. claim the survivor T (`unmerging`: the merge id, the keys that go back): from now on no
   merge folds into T, T is not claimed as a merge source nor erased, until the unmerge is
   done; whoever meets the mark finishes the unmerge first;
2. revive the source S: the redirect becomes UNMERGING with its values, userId, key ledger
   and match keys as they were when it was merged;
3. move back, in batches, the identity keys, events and conversations the merge tagged, and
   the events and conversations that came since through a key that goes back;
4. strip T (domain.unmerge): filled values, source-only list items, the userId S gave and the
   last contact S's replaced are removed unless they changed since (what stays is recorded);
   the merge entry is marked undone, later merges' entries take over what they stand on
   (domain.unmerge) and the unmerge is recorded, in one write conditional on every value the
   rule read;
5. move back what came through a returning key while the steps ran; recompute both profiles'
   event summaries;
6. activate S, recording the unmerge in its history; release T's mark.

Every step is conditional on the previous state, so repeating one changes nothing, and any
reader, writer or recovery pass that meets the mark (on T) or the state (on S) finishes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.errors import Contention, MergeConflict, NotFound
from domain.identity import Identity
from domain.model import (
    Kept,
    MergeRecord,
    Profile,
    ProfileState,
    Undone,
    UnmergeClaim,
    UnmergeRecord,
)
from domain.ports import Clock, ProfileStore
from domain.survivors import Survivors
from domain.unmerge import blocking_merge, undo_on_survivor

_MAX_ATTEMPTS = 16


@dataclass(frozen=True, slots=True)
class UnmergePreview:
    """What an unmerge would do, read without writing anything."""

    merge_id: str
    source_id: str
    survivor_id: str
    source_properties: Mapping[str, Any]
    source_user_id: str | None
    user_id_returns: bool
    identities: tuple[Identity, ...]
    events: int
    conversations: int
    removed: tuple[Kept, ...]
    kept: tuple[Kept, ...]
    restored: Mapping[str, Any]
    survivor_properties: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class UnmergeResult:
    """Both profiles after the unmerge, and what it removed from and left on the survivor."""

    merge_id: str
    source: Profile
    survivor: Profile
    removed: tuple[Kept, ...]
    kept: tuple[Kept, ...]


def _record(profile: Profile, merge_id: str) -> tuple[int, MergeRecord] | None:
    for position, record in enumerate(profile.merge_history):
        if record.merge_id == merge_id:
            return position, record
    return None


def _entry(profile: Profile, merge_id: str) -> UnmergeRecord | None:
    return next((u for u in reversed(profile.unmerges) if u.merge_id == merge_id), None)


class Unmerger:
    """Previews, runs and finishes unmerges."""

    def __init__(self, store: ProfileStore, clock: Clock, survivors: Survivors) -> None:
        self._store = store
        self._clock = clock
        self._survivors = survivors

    # ----- the use cases ---------------------------------------------------------------

    async def preview(self, tenant: str, merge_id: str) -> UnmergePreview:
        survivor, record = await self._undoable(tenant, merge_id)
        identities = await self._store.tagged_identities(tenant, survivor.id, merge_id)
        self._check_identities(identities, record)
        keys = tuple(i.key.storage_id(tenant) for i in identities)
        events, conversations = await self._store.count_returning(
            tenant, survivor.id, merge_id, keys
        )
        undo = undo_on_survivor(survivor, record)
        return UnmergePreview(
            merge_id=merge_id,
            source_id=record.source_id,
            survivor_id=survivor.id,
            source_properties=dict(record.source_properties),
            source_user_id=record.source_user_id,
            user_id_returns=undo.remove_user_id,
            identities=tuple(identities),
            events=events,
            conversations=conversations,
            removed=undo.removed,
            kept=undo.kept,
            restored=dict(undo.restore),
            survivor_properties=dict(survivor.properties),
        )

    async def unmerge(self, tenant: str, merge_id: str, *, actor: str) -> UnmergeResult:
        for _ in range(_MAX_ATTEMPTS):
            located = await self._locate(tenant, merge_id)
            survivor, (_, record) = located
            if survivor.unmerging is not None:  # this unmerge, under way: finish it
                await self.finish(survivor)
                return await self._result(tenant, merge_id, record.source_id, survivor.id)
            self._refuse_if_blocked(survivor, record)
            identities = await self._store.tagged_identities(tenant, survivor.id, merge_id)
            self._check_identities(identities, record)
            claim = UnmergeClaim(
                merge_id=merge_id,
                source_id=record.source_id,
                at=self._clock.now(),
                actor=actor,
                keys=tuple(i.key.storage_id(tenant) for i in identities),
            )
            history = len(survivor.merge_history)
            claimed = await self._store.claim_unmerge(tenant, survivor.id, claim, history)
            if claimed is None:
                continue  # the survivor changed (or another unmerge claimed it): look again
            await self.finish(claimed)
            return await self._result(tenant, merge_id, record.source_id, survivor.id)
        raise Contention("the unmerge kept losing races")

    # ----- finishing -------------------------------------------------------------------

    async def finish(self, survivor: Profile) -> None:
        """Complete the unmerge marked on `survivor` (safe to run again, by anyone)."""
        claim = survivor.unmerging
        found = _record(survivor, claim.merge_id) if claim is not None else None
        if claim is None or found is None:
            return
        _, record = found
        tenant, merge_id, source_id = survivor.tenant, claim.merge_id, claim.source_id
        store = self._store
        await store.revive_source(tenant, record, survivor.id, claim, self._clock.now())
        await store.move_back(tenant, survivor.id, source_id, merge_id, claim.keys)
        entry = await self._strip(survivor.id, tenant, claim)
        if entry is None:
            return  # whoever stripped the survivor finished the unmerge (its mark is gone)
        # Events and conversations that came through a returning key while this ran.
        await store.move_back(
            tenant, survivor.id, source_id, merge_id, claim.keys, identities=False
        )
        await store.recompute_event_summaries(tenant, source_id)
        await store.recompute_event_summaries(tenant, survivor.id)
        # From here both profiles are final: what is left (the mark) changes nothing in them.
        await store.activate_source(tenant, source_id, merge_id, entry, self._clock.now())
        await store.release_unmerge(tenant, survivor.id, merge_id)

    async def finish_source(self, source: Profile) -> None:
        """A source met UNMERGING: finish the unmerge through its survivor's mark."""
        if source.merged_into is None or source.unmerge_of is None:
            return
        survivor = await self._store.get_profile(source.tenant, source.merged_into)
        if survivor is None:
            return
        if survivor.unmerging is not None and survivor.unmerging.merge_id == source.unmerge_of:
            await self.finish(survivor)
            return
        # The survivor's part is done (its mark is released only after this activation).
        entry = _entry(survivor, source.unmerge_of)
        if entry is not None:
            now = self._clock.now()
            await self._store.recompute_event_summaries(source.tenant, source.id)
            await self._store.activate_source(
                source.tenant, source.id, source.unmerge_of, entry, now
            )

    async def finish_claimed(self, merged: Profile) -> bool:
        """A MERGED profile whose survivor has claimed the undo of its merge (the unmerge has
        not revived it yet): finish that unmerge. False when its merge is not being undone."""
        if merged.state is not ProfileState.MERGED or merged.merged_into is None:
            return False
        survivor = await self._store.get_profile(merged.tenant, merged.merged_into)
        claim = survivor.unmerging if survivor is not None else None
        if survivor is None or claim is None or claim.source_id != merged.id:
            return False
        if merged.merged_by is not None and claim.merge_id != merged.merged_by:
            return False
        await self.finish(survivor)
        return True

    async def _strip(
        self, survivor_id: str, tenant: str, claim: UnmergeClaim
    ) -> UnmergeRecord | None:
        """Undo the merge on the survivor's values (once); the unmerge's record, or None when
        the mark is gone (the unmerge was finished by another caller)."""
        for _ in range(_MAX_ATTEMPTS):
            current = await self._store.get_profile(tenant, survivor_id)
            mark = current.unmerging if current is not None else None
            if current is None or mark is None or mark.merge_id != claim.merge_id:
                return None
            done = _entry(current, claim.merge_id)
            found = _record(current, claim.merge_id)
            if found is None:
                return None
            position, record = found
            if record.undone is not None and done is not None:
                return done
            undo = undo_on_survivor(current, record)
            now = self._clock.now()
            entry = UnmergeRecord(
                merge_id=claim.merge_id,
                source_id=claim.source_id,
                survivor_id=survivor_id,
                at=now,
                actor=claim.actor,
                removed=undo.removed,
                kept=undo.kept,
            )
            undone = Undone(at=now, actor=claim.actor)
            if await self._store.strip_survivor(
                tenant, current, position, undo, entry, undone, claim.keys
            ):
                return entry
        raise Contention("the survivor kept changing while the merge was undone")

    # ----- checks ------------------------------------------------------------------------

    async def _locate(self, tenant: str, merge_id: str) -> tuple[Profile, tuple[int, MergeRecord]]:
        """The survivor of the merge, active, with the merge's record; finishing what is under
        way on it first. Refused when the survivor was merged on or erased."""
        for _ in range(_MAX_ATTEMPTS):
            survivor = await self._store.find_merge(tenant, merge_id)
            found = _record(survivor, merge_id) if survivor is not None else None
            if survivor is None or found is None:
                raise NotFound(f"No merge with id {merge_id!r}", field="mergeId")
            state = survivor.state
            if state in (ProfileState.ERASING, ProfileState.ERASED):
                raise NotFound(
                    f"The profile that survived merge {merge_id!r} was erased", field="mergeId"
                )
            if state is ProfileState.MERGED:
                if await self.finish_claimed(survivor):
                    continue  # the merge that took it on was being undone: now it is
                raise self._merged_on(survivor, merge_id)
            if state is not ProfileState.ACTIVE:
                await self._survivors.active(tenant, survivor.id)  # finish what is under way
                continue
            claim = survivor.unmerging
            if claim is not None and claim.merge_id != merge_id:
                await self.finish(survivor)  # another unmerge on it: finish that first
                continue
            if found[1].undone is not None and claim is None:
                undone = found[1].undone
                raise MergeConflict(
                    f"Merge {merge_id!r} was already undone ({undone.at.isoformat()}, by "
                    f"{undone.actor or 'an unnamed key'}); a merge is undone once",
                    field="mergeId",
                )
            return survivor, found
        raise Contention("the survivor kept changing while the unmerge looked at it")

    def _merged_on(self, survivor: Profile, merge_id: str) -> MergeConflict:
        later = survivor.merged_by
        first = f"undo merge {later!r} first" if later else "undo that merge first"
        return MergeConflict(
            f"Profile {survivor.id!r}, which survived merge {merge_id!r}, has since been "
            f"merged into {survivor.merged_into!r}: {first}",
            field="mergeId",
        )

    def _refuse_if_blocked(self, survivor: Profile, record: MergeRecord) -> None:
        if not record.recorded:
            raise MergeConflict(
                f"Merge {record.merge_id!r} was recorded before merges recorded what they "
                "changed on the survivor: it cannot be undone exactly",
                field="mergeId",
            )
        blocker = blocking_merge(survivor, record)
        if blocker is not None:
            raise MergeConflict(
                f"Merge {blocker.merge_id!r} (profile {blocker.source_id!r} into "
                f"{survivor.id!r}) came later and depends on merge {record.merge_id!r}: it met "
                f"values this merge brought; undo merge {blocker.merge_id!r} first",
                field="mergeId",
            )

    def _check_identities(self, identities: list[Identity], record: MergeRecord) -> None:
        if not identities:
            raise MergeConflict(
                f"None of the identities profile {record.source_id!r} brought is on the "
                "survivor any more (detached or moved since): nothing could reach it again",
                field="mergeId",
            )

    async def _undoable(self, tenant: str, merge_id: str) -> tuple[Profile, MergeRecord]:
        for _ in range(_MAX_ATTEMPTS):
            survivor, (_, record) = await self._locate(tenant, merge_id)
            if survivor.unmerging is not None:
                await self.finish(survivor)  # this merge's unmerge is under way: it is done
                continue
            self._refuse_if_blocked(survivor, record)
            return survivor, record
        raise Contention("the survivor kept changing while the unmerge looked at it")

    async def _result(
        self, tenant: str, merge_id: str, source_id: str, survivor_id: str
    ) -> UnmergeResult:
        source = await self._store.get_profile(tenant, source_id)
        survivor = await self._store.get_profile(tenant, survivor_id)
        if source is None or survivor is None or not source.active or not survivor.active:
            found = source if source is not None and source.active else None
            found = found or await self._survivors.active(tenant, source_id)
            if found is None:
                raise NotFound("A profile of the unmerge was erased meanwhile", field="mergeId")
            source = found
            survivor = await self._survivors.active(tenant, survivor_id)
        if survivor is None:
            raise NotFound(
                "The merge was undone, but the profile that had survived it was erased meanwhile",
                field="mergeId",
            )
        entry = _entry(survivor, merge_id)
        return UnmergeResult(
            merge_id=merge_id,
            source=source,
            survivor=survivor,
            removed=entry.removed if entry else (),
            kept=entry.kept if entry else (),
        )
