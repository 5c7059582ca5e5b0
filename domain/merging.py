"""The merge protocol: a sequence of idempotent single-document steps.

1. claim the source (it is marked as merging into the target; nothing else writes to it now);
2. fold the source's values into the target, guarded by the merge id so it applies once (and
   by the target's userId and merge count, so a conflict or the limit refuses it atomically);
3. move the source's identity keys, events and conversations to the target, and recompute
   the target's event summaries from its events;
4. retire the source as a redirect to the target.

Any caller that meets a claimed source finishes the merge with `finish`, so a merge left
half-done by a crash completes the next time anyone touches it, or when recovery runs.

Merges racing each other converge: a merge whose target is itself merging first helps that
merge finish; in a cycle (A into B while B into A, or longer) the merge whose source has the
larger id yields, releasing its claim, which is safe because its fold cannot have happened
(the fold only applies to a target that nothing has claimed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from domain.ids import new_id
from domain.merge import plan_merge
from domain.model import MergeClaim, MergeRecord, MergeTrigger, Profile
from domain.ports import Clock, FoldOutcome, ProfileStore

DEFAULT_MAX_MERGES = 100
_MAX_DEPTH = 8
_MAX_FOLD_ATTEMPTS = 8


class Abandoned(StrEnum):
    """Why a merge was given up, its claim released, with nothing changed."""

    SOURCE_CHANGED = "SOURCE_CHANGED"  # the source could not be claimed
    TARGET_GONE = "TARGET_GONE"  # the target was merged away or erased meanwhile
    YIELDED = "YIELDED"  # another merge in a cycle goes first
    USER_ID_CONFLICT = "USER_ID_CONFLICT"
    LIMIT_REACHED = "LIMIT_REACHED"


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
        max_merges: int = DEFAULT_MAX_MERGES,
        on_merge: Callable[[MergeTrigger], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self.max_merges = max_merges
        self._on_merge = on_merge

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
        record = MergeRecord(
            merge_id=claim.merge_id,
            source_id=source.id,
            at=claim.at,
            trigger=claim.trigger,
            actor=claim.actor,
            source_user_id=source.user_id,
            source_properties=dict(source.properties),
        )
        plan = plan_merge(source)
        survivor: Profile | None = None
        for _ in range(_MAX_FOLD_ATTEMPTS):
            outcome, survivor = await self._store.fold_merge(
                source.tenant, claim.target_id, plan, record, self._clock.now(), self.max_merges
            )
            if outcome is FoldOutcome.APPLIED and self._on_merge is not None:
                self._on_merge(claim.trigger)  # counted by the one call whose fold applied
            if outcome in (FoldOutcome.APPLIED, FoldOutcome.ALREADY_APPLIED):
                break
            if outcome is FoldOutcome.USER_ID_CONFLICT:
                return await self._abandon(source, claim, Abandoned.USER_ID_CONFLICT)
            if outcome is FoldOutcome.LIMIT_REACHED:
                return await self._abandon(source, claim, Abandoned.LIMIT_REACHED)
            reason = await self._wait_for_target(source, claim, _depth)
            if reason is not None:
                return await self._abandon(source, claim, reason)
        else:
            return await self._abandon(source, claim, Abandoned.YIELDED)
        await self._store.move_records(source.tenant, source.id, claim.target_id, claim.merge_id)
        if source.events:
            refreshed = await self._refresh(
                source.tenant, claim.target_id, [e.name for e in source.events]
            )
            survivor = refreshed or survivor
        await self._store.retire_source(
            source.tenant, source.id, claim.merge_id, claim.target_id, self._clock.now()
        )
        return MergeResult(claim.target_id, survivor)

    async def _wait_for_target(
        self, source: Profile, claim: MergeClaim, depth: int
    ) -> Abandoned | None:
        """The fold found the target inactive: decide whether to give up or try again."""
        target = await self._store.get_profile(source.tenant, claim.target_id)
        if target is None or target.merged_into is not None:
            return Abandoned.TARGET_GONE
        if target.merging is None:
            return None  # it is active again: fold again
        if source.id > target.id or depth >= _MAX_DEPTH:
            return Abandoned.YIELDED
        await self.finish(target, depth + 1)  # help the target's own merge along first
        return None

    async def _abandon(self, source: Profile, claim: MergeClaim, reason: Abandoned) -> Abandoned:
        # Only reached when the fold has not happened, so the source is exactly as it was.
        await self._store.release_merge_claim(source.tenant, source.id, claim.merge_id)
        return reason

    async def _refresh(self, tenant: str, profile_id: str, names: list[str]) -> Profile | None:
        """Recompute summaries from the moved events on the target, or on whatever it has since
        been merged into: exact however often it runs."""
        for _ in range(16):
            refreshed = await self._store.refresh_event_summaries(tenant, profile_id, names)
            if refreshed is not None:
                return refreshed
            target = await self._store.get_profile(tenant, profile_id)
            if target is None:
                return None
            if target.merging is not None:
                await self.finish(target)
                continue
            if target.merged_into is None:
                continue
            profile_id = target.merged_into
        return None

    async def recover(self, tenant: str | None = None, *, older_than_seconds: float = 0) -> int:
        """Finish (or give up) every merge claimed before the cut-off; returns how many."""
        cutoff = self._clock.now() - timedelta(seconds=older_than_seconds)
        seen: set[str] = set()
        while True:
            stuck = [
                p
                for p in await self._store.merging_profiles(tenant, cutoff, 100)
                if p.id not in seen
            ]
            if not stuck:
                return len(seen)
            for source in stuck:
                seen.add(source.id)
                await self.finish(source)
