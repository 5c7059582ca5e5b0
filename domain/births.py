"""How a profile is born with its identity keys, so that no key ever points at nothing.

A new profile is inserted first, in state PENDING, with the keys it must hold (its birth).
Then its first key is claimed (an insert that may hit a duplicate `_id`): that claim decides.
If another profile holds the key, the birth is abandoned (the pending document becomes a
tombstone). Otherwise the other keys are moved to it from where they were (a conditional
rebind each, with the conversations that came through them), the places they held on their
old profiles are given back, and it becomes ACTIVE. Anyone who meets a pending profile through
its first key completes the birth; recovery abandons one whose first key was never claimed.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.ids import new_id
from domain.model import Birth, KeyBinding, Profile, ProfileState
from domain.ports import Clock, ProfileStore


class Births:
    """Creates profiles together with their identity keys."""

    def __init__(self, store: ProfileStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def begin(
        self, tenant: str, keys: Sequence[KeyBinding], *, user_id: str | None = None
    ) -> tuple[str, str]:
        """Insert a pending profile and bind its first key to it (a claim of a free key, or
        a conditional move from the profile that holds it). Returns (the profile that holds
        the first key now, the new profile's id); when they differ the birth was abandoned."""
        profile_id = new_id()
        now = self._clock.now()
        birth = Birth(at=now, keys=tuple(keys))
        await self._store.insert_pending(tenant, profile_id, birth, user_id, now)
        first = keys[0]
        if first.from_profile is None:
            claimed = await self._store.claim_identity(
                tenant, first.key, profile_id, first.channel, now
            )
            holder = claimed.profile_id
        elif await self._store.rebind_identity(tenant, first.key, first.from_profile, profile_id):
            holder = profile_id
        else:
            holder = first.from_profile
        if holder != profile_id:
            # The key is another profile's and never pointed here: nobody knows this id.
            await self._store.abort_birth(tenant, profile_id, self._clock.now(), known=False)
        return holder, profile_id

    async def create(
        self, tenant: str, keys: Sequence[KeyBinding], *, user_id: str | None = None
    ) -> Profile | str | None:
        """A new active profile holding `keys`; or the id of the profile that already holds
        the first key; or None if the birth was abandoned meanwhile (try again)."""
        holder, profile_id = await self.begin(tenant, keys, user_id=user_id)
        if holder != profile_id:
            return holder
        pending = await self._store.get_profile(tenant, profile_id)
        born = await self.complete(pending) if pending is not None else None
        if born is None:
            await self.unbind_abandoned(tenant, keys[0], profile_id)
        return born

    async def unbind_abandoned(self, tenant: str, first: KeyBinding, profile_id: str) -> None:
        """The first key was bound to a birth that recovery had already abandoned: give it
        back (to where it came from, or to nobody)."""
        if first.from_profile is None:
            await self._store.release_identity(tenant, first.key, profile_id)
        else:
            await self._store.rebind_identity(tenant, first.key, profile_id, first.from_profile)

    async def complete(self, profile: Profile, *, give_up: bool = False) -> Profile | None:
        """Finish the birth of a pending profile whose first key it holds: bind its other
        keys and activate it. Otherwise None: abandoned (with `give_up`, recovery's call, it
        abandons the birth now) or not yet decided."""
        birth = profile.birth
        if profile.state is ProfileState.ACTIVE:
            return profile
        if profile.state is not ProfileState.PENDING or birth is None:
            return None
        holder = await self._store.find_identity(profile.tenant, birth.keys[0].key)
        if holder is not None and holder.profile_id == profile.id:
            return await self._finish(profile, birth)
        if give_up:
            await self._store.abort_birth(profile.tenant, profile.id, self._clock.now())
        return None

    async def _finish(self, profile: Profile, birth: Birth) -> Profile | None:
        tenant = profile.tenant
        for index, binding in enumerate(birth.keys):
            origin = binding.from_profile
            if origin is None and index == 0:
                continue  # the first key is bound already: that is how the birth got here
            if origin is None:
                # A key nobody held: claim it (if somebody got it first, it stays theirs).
                now = self._clock.now()
                held = await self._store.claim_identity(
                    tenant, binding.key, profile.id, binding.channel, now
                )
                if held.profile_id != profile.id:
                    await self._store.drop_key(tenant, profile.id, binding.key)
                continue
            await self._store.rebind_identity(tenant, binding.key, origin, profile.id)
            current = await self._store.find_identity(tenant, binding.key)
            if current is not None and current.profile_id == profile.id:
                if binding.take_conversations:
                    await self._store.move_identity_conversations(
                        tenant, binding.key, origin, profile.id
                    )
                await self._store.drop_key(tenant, origin, binding.key)
            else:  # it left its profile meanwhile: this profile does not get it
                await self._store.drop_key(tenant, profile.id, binding.key)
        return await self._store.activate(tenant, profile.id, self._clock.now())
