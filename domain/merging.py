"""The merge protocol: a sequence of idempotent single-document steps.

1. claim the source (it is marked as merging into the target; nothing else writes to it now);
2. fold the source's data into the target, guarded by the merge id so it applies once;
3. move the source's identity keys, events and conversations to the target, and recompute
   the target's event summaries from its events;
4. retire the source as a redirect to the target.

Any caller that meets a claimed source finishes the merge with `finish`, so a merge left
half-done by a crash completes the next time anyone touches it, or when recovery runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from domain.ids import new_id
from domain.merge import plan_merge
from domain.model import MergeClaim, MergeRecord, MergeTrigger, Profile
from domain.ports import Clock, FoldOutcome, ProfileStore


@dataclass(frozen=True, slots=True)
class MergeResult:
    """Where the source went, and the survivor as this call's fold wrote it (if it did)."""

    survivor_id: str
    survivor: Profile | None


class Merger:
    """Runs and finishes merges."""

    def __init__(self, store: ProfileStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def merge(
        self,
        tenant: str,
        source_id: str,
        target_id: str,
        *,
        trigger: MergeTrigger,
        actor: str,
        unidentified_only: bool,
    ) -> MergeResult | None:
        """The survivor, or None when the source or target changed under us."""
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
            return None
        return await self.finish(claimed)

    async def finish(self, source: Profile) -> MergeResult | None:
        """Complete the merge claimed on `source`; None if it had to be abandoned."""
        claim = source.merging
        if claim is None:
            return MergeResult(source.merged_into, None) if source.merged_into else None
        record = MergeRecord(
            merge_id=claim.merge_id,
            source_id=source.id,
            at=claim.at,
            trigger=claim.trigger,
            actor=claim.actor,
            source_user_id=source.user_id,
            source_properties=dict(source.properties),
        )
        outcome, survivor = await self._store.fold_merge(
            source.tenant, claim.target_id, plan_merge(source), record, self._clock.now()
        )
        if outcome is FoldOutcome.TARGET_INACTIVE:
            # The fold never happened and never can: the target is gone. Undo the claim.
            await self._store.release_merge_claim(source.tenant, source.id, claim.merge_id)
            return None
        await self._store.move_records(source.tenant, source.id, claim.target_id)
        if source.events:
            refreshed = await self._refresh(
                source.tenant, claim.target_id, [e.name for e in source.events]
            )
            survivor = refreshed or survivor
        await self._store.retire_source(
            source.tenant, source.id, claim.merge_id, claim.target_id, self._clock.now()
        )
        return MergeResult(claim.target_id, survivor)

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
        """Finish every merge claimed before the cut-off; returns how many were found."""
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
