"""The merge protocol: a sequence of idempotent single-document steps.

1. claim the source (state MERGING: nothing else writes to it now);
2. fold the source's values into the target, guarded by the merge id so it applies once, by
   the target's abandon list so it never applies after the merge was given up, and by the
   target's userId and limits so a conflict refuses it atomically;
3. record the fold on the source (from here the merge can only complete);
4. move the source's identity keys, events and conversations to the target, following the
   target's own survivor chain until the records rest on an active profile, and recompute
   the survivor's event summaries;
5. retire the source as a redirect (state MERGED).

Giving a merge up is decided on the target's document too: `abandon_fold` records the merge
id there unless the fold is already recorded, and only then is the source's claim released.
So a fold and a release can never both happen, however the callers interleave.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from domain.ids import new_id
from domain.merge import plan_merge
from domain.model import MergeClaim, MergeRecord, MergeTrigger, Profile, ProfileState
from domain.ports import Clock, FoldOutcome, MergeLimits, ProfileStore
from domain.survivors import Survivors

DEFAULT_MAX_MERGES = 100
DEFAULT_MAX_IDENTITIES = 100
_MAX_DEPTH = 8
_MAX_FOLD_ATTEMPTS = 8
_MAX_HOPS = 16


class Abandoned(StrEnum):
    """Why a merge did not leave the source's data on an active survivor."""

    SOURCE_CHANGED = "SOURCE_CHANGED"  # the source could not be claimed
    TARGET_GONE = "TARGET_GONE"  # the target was merged away or erased before the fold
    YIELDED = "YIELDED"  # another merge in a cycle goes first, or gave this one up
    USER_ID_CONFLICT = "USER_ID_CONFLICT"
    LIMIT_REACHED = "LIMIT_REACHED"
    IDENTITY_LIMIT = "IDENTITY_LIMIT"
    LIST_LIMIT = "LIST_LIMIT"
    ERASED = "ERASED"  # the fold happened, then the survivor was erased: the source went too


_REFUSALS = {
    FoldOutcome.USER_ID_CONFLICT: Abandoned.USER_ID_CONFLICT,
    FoldOutcome.LIMIT_REACHED: Abandoned.LIMIT_REACHED,
    FoldOutcome.IDENTITY_LIMIT: Abandoned.IDENTITY_LIMIT,
    FoldOutcome.LIST_LIMIT: Abandoned.LIST_LIMIT,
    FoldOutcome.ABANDONED: Abandoned.YIELDED,
}


@dataclass(frozen=True, slots=True)
class MergeResult:
    """Where the source went, and the survivor as this call's fold wrote it (if it did)."""

    survivor_id: str
    survivor: Profile | None


class Merger:
    """Runs and finishes merges."""

    def __init__(
        self,
        store: ProfileStore,
        clock: Clock,
        survivors: Survivors,
        limits: MergeLimits,
        on_merge: Callable[[MergeTrigger], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._survivors = survivors
        self.limits = limits
        self._on_merge = on_merge

    @property
    def max_merges(self) -> int:
        return self.limits.merges

    async def merge(
        self,
        tenant: str,
        source_id: str,
        target_id: str,
        *,
        trigger: MergeTrigger,
        actor: str,
        unidentified_only: bool,
    ) -> MergeResult | Abandoned:
        claim = MergeClaim(
            merge_id=new_id(),
            target_id=target_id,
            at=self._clock.now(),
            trigger=trigger,
            actor=actor,
        )
        claimed = await self._store.claim_merge_source(
            tenant, source_id, claim, unidentified_only=unidentified_only
        )
        if claimed is None:
            return Abandoned.SOURCE_CHANGED
        return await self.finish(claimed)

    async def finish(self, source: Profile, _depth: int = 0) -> MergeResult | Abandoned:
        """Complete the merge claimed on `source`, or give it up with nothing changed."""
        claim = source.merging
        if claim is None:
            if source.merged_into:
                return MergeResult(source.merged_into, None)
            return Abandoned.SOURCE_CHANGED
        if not claim.folded:
            refused = await self._fold(source, claim, _depth)
            if refused is not None:
                return await self._abandon(source, claim, refused, _depth)
            await self._store.mark_folded(source.tenant, source.id, claim.merge_id)
        resting, holder = await self._move(source, claim)
        if resting is None:
            await self._erase_with_target(source, claim, holder)
            return Abandoned.ERASED
        await self._store.retire_source(
            source.tenant, source.id, claim.merge_id, claim.target_id, self._clock.now()
        )
        return MergeResult(resting.id, resting)

    async def _fold(self, source: Profile, claim: MergeClaim, depth: int) -> Abandoned | None:
        """Fold the source into the target; None once the fold is recorded there."""
        record = MergeRecord(
            merge_id=claim.merge_id,
            source_id=source.id,
            at=claim.at,
            trigger=claim.trigger,
            actor=claim.actor,
            source_user_id=source.user_id,
            source_properties=dict(source.properties),
            source_keys=source.keys,
            source_match_keys=source.match_keys,
        )
        plan = plan_merge(source)
        for _ in range(_MAX_FOLD_ATTEMPTS):
            outcome, _ = await self._store.fold_merge(
                source.tenant, claim.target_id, plan, record, self._clock.now(), self.limits
            )
            if outcome is FoldOutcome.APPLIED and self._on_merge is not None:
                self._on_merge(claim.trigger)  # counted by the one call whose fold applied
            if outcome in (FoldOutcome.APPLIED, FoldOutcome.ALREADY_APPLIED):
                return None
            if outcome in _REFUSALS:
                return _REFUSALS[outcome]
            reason = await self._wait_for_target(source, claim, depth)
            if reason is not None:
                return reason
        return Abandoned.YIELDED

    async def _wait_for_target(
        self, source: Profile, claim: MergeClaim, depth: int
    ) -> Abandoned | None:
        """The fold found the target inactive: decide whether to give up or try again."""
        target = await self._store.get_profile(source.tenant, claim.target_id)
        if target is None or target.state in (
            ProfileState.MERGED,
            ProfileState.ERASING,
            ProfileState.ERASED,
        ):
            return Abandoned.TARGET_GONE
        if target.state is ProfileState.PENDING or target.unmerging is not None:
            # Complete its birth, or the unmerge under way on it (nothing folds meanwhile).
            await self._survivors.active(source.tenant, target.id)
            return None
        if target.merging is None:
            return None  # it is active again: fold again
        if target.merging.folded or source.id > target.id or depth >= _MAX_DEPTH:
            # A folded merge of the target can only complete, and completing it may lead back
            # here through its survivor chain: ours, not folded yet, is the one to give way.
            return Abandoned.YIELDED
        await self.finish(target, depth + 1)  # help the target's own merge along first
        return None

    async def _abandon(
        self, source: Profile, claim: MergeClaim, reason: Abandoned, depth: int
    ) -> MergeResult | Abandoned:
        """Give the merge up, unless its fold is recorded on the target (then finish it)."""
        if await self._store.abandon_fold(source.tenant, claim.target_id, claim.merge_id):
            await self._store.release_merge_claim(source.tenant, source.id, claim.merge_id)
            return reason
        folded = replace(source, merging=replace(claim, folded=True))
        return await self.finish(folded, depth)

    async def _move(self, source: Profile, claim: MergeClaim) -> tuple[Profile | None, str]:
        """Move the source's records to the target, then on along the target's survivor chain
        until they rest on an active profile (re-checked after each move); refresh its event
        summaries. Returns that profile, or None and where the records are if the chain ends
        in an erased profile."""
        tenant = source.tenant
        holder, dest = source.id, claim.target_id
        for _ in range(_MAX_HOPS):
            # The source's userId is fixed since its claim: a userId key it holds for another
            # is an identify's claim that can never complete, and stays behind to be released.
            await self._store.move_records(
                tenant, holder, dest, claim.merge_id, user_id=source.user_id
            )
            resting = await self._survivors.active(tenant, dest)
            if resting is None:
                return None, dest
            if resting.id == dest:
                if not source.events:
                    return resting, dest
                names = [e.name for e in source.events]
                refreshed = await self._store.refresh_event_summaries(tenant, dest, names)
                if refreshed is not None:
                    return refreshed, dest
                holder = dest  # it was claimed since: go round again
                continue
            holder, dest = dest, resting.id
        raise RuntimeError("a chain of merges was too long to follow")

    async def _erase_with_target(self, source: Profile, claim: MergeClaim, holder: str) -> None:
        """The source was folded into a profile that has since been erased: erase it too,
        with the records that followed it there."""
        tenant, now = source.tenant, self._clock.now()
        await self._store.erase_folded_source(tenant, source.id, claim.merge_id, now)
        await self._store.delete_records(tenant, [source.id, holder])
        await self._store.tombstone(tenant, source.id, now)
