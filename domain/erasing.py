"""Erasing a profile, so that nothing of it stays and nothing brings it back.

1. the profile becomes ERASING (from ACTIVE only): no capture, fold or merge claim applies to
   it from now on;
2. everything merged into it joins it: redirects, and sources whose fold into it is recorded
   (those become ERASING too); sources claimed into it whose fold never happened are given
   back (their merge is abandoned on its target, then released);
3. the identity keys, events and conversations of all of them are deleted;
4. each becomes a tombstone (state ERASED), which keeps only the ids of the merges folded
   into it, so every later write or fold finds it and refuses.

A merge that completes after step 3 finds its survivor erased and erases its source too; a
record written onto an erased profile afterwards is deleted by the writer's own check.
"""

from __future__ import annotations

from domain.model import Profile, ProfileState
from domain.ports import Clock, ProfileStore
from domain.survivors import Survivors

_MAX_ATTEMPTS = 16


class Eraser:
    """Erases profiles and finishes erasures left half-done."""

    def __init__(self, store: ProfileStore, clock: Clock, survivors: Survivors) -> None:
        self._store = store
        self._clock = clock
        self._survivors = survivors

    async def erase(self, tenant: str, profile_id: str) -> bool:
        """Erase the profile an id leads to; False if there is none."""
        for _ in range(_MAX_ATTEMPTS):
            profile = await self._survivors.active(tenant, profile_id)
            if profile is None:
                return False
            if await self._store.begin_erase(tenant, profile.id, self._clock.now()):
                erasing = await self._store.get_profile(tenant, profile.id)
                if erasing is not None:
                    await self.finish(erasing)
                return True
        raise RuntimeError("the profile kept changing while it was being erased")

    async def finish(self, profile: Profile) -> None:
        tenant, now = profile.tenant, self._clock.now()
        doomed: dict[str, Profile] = {profile.id: profile}
        frontier = [profile]
        while frontier:
            found: list[Profile] = []
            for related in await self._store.profiles_into(tenant, [p.id for p in frontier]):
                if related.id in doomed:
                    continue
                if await self._joins(related, doomed):
                    doomed[related.id] = related
                    found.append(related)
            frontier = found
        await self._store.delete_records(tenant, list(doomed))
        for doomed_id in reversed(list(doomed)):
            await self._store.tombstone(tenant, doomed_id, now)

    async def _joins(self, related: Profile, doomed: dict[str, Profile]) -> bool:
        """Whether a profile merged (or merging) into an erased one is erased with it."""
        claim = related.merging
        if related.state is not ProfileState.MERGING or claim is None:
            return related.state in (ProfileState.MERGED, ProfileState.ERASING)
        if claim.target_id not in doomed:
            return False
        tenant = related.tenant
        if not claim.folded:
            if await self._store.abandon_fold(tenant, claim.target_id, claim.merge_id):
                # Its fold never happened and now never will: it goes back to being itself.
                await self._store.release_merge_claim(tenant, related.id, claim.merge_id)
                return False
            await self._store.mark_folded(tenant, related.id, claim.merge_id)
        await self._store.erase_folded_source(tenant, related.id, claim.merge_id, self._clock.now())
        return True
