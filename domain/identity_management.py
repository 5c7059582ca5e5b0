"""Identity management for support agents: merge suggestions, manual merges and detaching an
identity. Suggestions never merge anything by themselves."""

from __future__ import annotations

from domain.errors import Contention, MergeConflict, NotFound, ValidationFailed
from domain.identify import check_merge_limits, refusal_of
from domain.identity import Channel, identity_key
from domain.matching import Suggestion, keys_of_profile, suggest
from domain.merging import MergeResult
from domain.model import KeyBinding, MergeTrigger, Profile, ProfileState
from domain.ports import Clock, ProfileStore
from domain.services import ProfileService
from domain.unmerging import UnmergePreview, UnmergeResult
from domain.values import is_text

MAX_SUGGESTIONS = 20
MAX_ATTEMPTS = 25


class IdentityManagement:
    """What an agent does with a person's identities."""

    def __init__(self, profiles: ProfileService, store: ProfileStore, clock: Clock) -> None:
        self._profiles = profiles
        self._lifecycle = profiles.lifecycle
        self._store = store
        self._clock = clock

    async def merge_profiles(
        self, tenant: str, target_id: str, source_id: str, *, actor: str
    ) -> tuple[Profile, str]:
        """Merge the source into the target, which survives."""
        if target_id == source_id:
            raise MergeConflict("A profile cannot be merged into itself", field="sourceId")
        for _ in range(MAX_ATTEMPTS):
            target = await self._exactly(tenant, target_id, "targetId")
            source = await self._exactly(tenant, source_id, "sourceId")
            if source.user_id and target.user_id and source.user_id != target.user_id:
                raise MergeConflict(
                    "Both profiles are identified, with different userIds; they are different "
                    "people and cannot be merged",
                    field="sourceId",
                )
            check_merge_limits(self._lifecycle, target, source, "sourceId")
            merged = await self._lifecycle.merger.merge(
                tenant,
                source.id,
                target.id,
                trigger=MergeTrigger.MANUAL,
                actor=actor,
                unidentified_only=False,
            )
            if isinstance(merged, MergeResult):
                if merged.survivor is None:
                    raise NotFound("The surviving profile was erased", field="targetId")
                return merged.survivor, source.id
            refusal = refusal_of(self._lifecycle, merged, "sourceId")
            if refusal is not None:
                raise refusal
            # Otherwise something changed under us: look again (and refuse if now merged).
        raise Contention("merge kept losing races")

    async def _exactly(self, tenant: str, profile_id: str, field: str) -> Profile:
        """An active profile by its own id: a merged-away id is a conflict, not a redirect."""
        valid = len(profile_id) <= 64 and is_text(profile_id)
        raw = await self._store.get_profile(tenant, profile_id) if valid else None
        if raw is not None and await self._lifecycle.unmerger.finish_claimed(raw):
            # It was merged away, and the unmerge of that merge was under way: now done.
            raw = await self._store.get_profile(tenant, profile_id)
        under_way = raw is not None and (not raw.active or raw.unmerging is not None)
        if raw is not None and under_way and raw.state is not ProfileState.MERGED:
            await self._lifecycle.active(tenant, raw.id)  # finish what is under way
            raw = await self._store.get_profile(tenant, profile_id)
        if raw is None or not raw.active and raw.state is not ProfileState.MERGED:
            raise NotFound(f"No profile with id {profile_id!r}", field=field)
        if raw.merged_into is not None:
            raise MergeConflict(
                f"Profile {profile_id!r} was already merged into {raw.merged_into!r}",
                field=field,
            )
        return raw

    async def unmerge_profiles(self, tenant: str, merge_id: str, *, actor: str) -> UnmergeResult:
        """Undo one merge (domain.unmerging)."""
        return await self._lifecycle.unmerger.unmerge(tenant, _merge_id(merge_id), actor=actor)

    async def unmerge_preview(self, tenant: str, merge_id: str) -> UnmergePreview:
        """What undoing the merge would do now, without writing."""
        return await self._lifecycle.unmerger.preview(tenant, _merge_id(merge_id))

    async def detach_identity(
        self, tenant: str, profile_id: str, channel: Channel, sender_id: str
    ) -> tuple[Profile, Profile]:
        """Move one identity (and its conversations) out to a new profile of its own: a
        profile born holding it (domain.births), so a crash at any step is completed or undone
        by whoever meets it. A lost race (the profile merged or the identity moved meanwhile)
        is looked at again, from the profile's survivor."""
        key = identity_key(channel, sender_id)
        for _ in range(MAX_ATTEMPTS):
            profile = await self._profiles.profile(tenant, profile_id)
            if profile is None:
                raise NotFound(f"No profile with id {profile_id!r}", field="profileId")
            binding = await self._store.find_identity(tenant, key)
            owner = await self._lifecycle.active(tenant, binding.profile_id) if binding else None
            if binding is None or owner is None or owner.id != profile.id:
                raise NotFound("That identity is not bound to this profile", field="senderId")
            if profile.user_id is not None and key.value == profile.user_id:
                raise ValidationFailed(
                    "That identity is the profile's userId, which cannot be detached",
                    field="senderId",
                )
            if await self._store.count_identities(tenant, [profile.id]) <= 1:
                raise ValidationFailed(
                    "A profile's last identity cannot be detached", field="senderId"
                )
            detached = await self._lifecycle.births.create(
                tenant,
                [KeyBinding(key=key, from_profile=binding.profile_id, take_conversations=True)],
            )
            if isinstance(detached, Profile):
                remaining = await self._lifecycle.active(tenant, profile.id)
                return remaining or profile, detached
        raise Contention("the identity kept moving while it was being detached")

    async def merge_suggestions(self, tenant: str, profile_id: str) -> list[Suggestion]:
        profile = await self._profiles.profile(tenant, profile_id)
        if profile is None:
            raise NotFound(f"No profile with id {profile_id!r}", field="profileId")
        own_identities = await self._store.identities_of(tenant, [profile.id])
        own = keys_of_profile(profile, own_identities.get(profile.id, []))
        if not own:
            return []
        found = await self._store.find_by_match_keys(tenant, list(own), MAX_SUGGESTIONS + 1)
        candidates = [c for c in found if c.id != profile.id]
        identities = await self._store.identities_of(tenant, [c.id for c in candidates])
        checked = [(c, keys_of_profile(c, identities.get(c.id, []))) for c in candidates]
        return suggest(profile, own, checked)[:MAX_SUGGESTIONS]


def _merge_id(value: str) -> str:
    if not (0 < len(value) <= 64 and is_text(value)):
        raise NotFound(f"No merge with id {value[:80]!r}", field="mergeId")
    return value
