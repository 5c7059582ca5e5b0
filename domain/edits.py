"""What agents and admins change: profile values and tags, definitions, erasure."""

from __future__ import annotations

from collections.abc import Sequence

from domain.definitions import Definitions
from domain.errors import (
    Contention,
    LimitExceeded,
    NotFound,
    UserIdImmutable,
    ValidationFailed,
)
from domain.lifecycle import MAX_REDIRECT_HOPS, Lifecycle
from domain.matching import keys_of_values
from domain.model import Profile, ProfileChange
from domain.ports import Clock, ProfileStore
from domain.properties import (
    MAX_LIST_ITEM_LENGTH,
    MAX_LIST_ITEMS,
    READ_ONLY,
    PropertyDefinition,
    PropertyType,
    check_property_name,
)
from domain.values import check_text, is_text


class Edits:
    """updateProfile, defineProperty, deleteProfile."""

    def __init__(
        self, store: ProfileStore, clock: Clock, lifecycle: Lifecycle, definitions: Definitions
    ) -> None:
        self._store = store
        self._clock = clock
        self._lifecycle = lifecycle
        self._definitions = definitions

    async def update_profile(
        self,
        tenant: str,
        profile_id: str,
        set_values: object,
        unset: Sequence[str],
        add_tags: Sequence[str],
        remove_tags: Sequence[str],
    ) -> Profile:
        profile = await self._found(tenant, profile_id)
        values = await self._definitions.validate(
            tenant, set_values or {}, field="set", current_user_id=profile.user_id
        )
        unset_names = await self._check_unset(tenant, unset)
        added = check_tags(add_tags, "addTags")
        removed = check_tags(remove_tags, "removeTags")
        if "tags" in values and (added or removed):
            raise ValidationFailed(
                "Set tags or add/remove tags, not both in one update", field="set.tags"
            )
        if overlap := set(values) & set(unset_names):
            name = sorted(overlap)[0]
            raise ValidationFailed(f"Property '{name}' is both set and unset", field="unset")
        change = ProfileChange(
            set=values,
            unset=unset_names,
            add_tags=added,
            remove_tags=removed,
            match_keys=tuple(keys_of_values(values)),
        )
        cap = self._lifecycle.merger.limits.list_items
        for _ in range(MAX_REDIRECT_HOPS):
            _check_tag_cap(profile, added, cap)
            updated = await self._store.update_profile(
                tenant, profile.id, change, self._clock.now(), cap
            )
            if updated is not None:
                return updated
            profile = await self._found(tenant, profile.id, shown=profile_id)
        raise Contention("update kept meeting merges")

    async def _found(self, tenant: str, profile_id: str, *, shown: str = "") -> Profile:
        profile = None
        if profile_id and len(profile_id) <= 64 and is_text(profile_id):
            profile = await self._lifecycle.active(tenant, profile_id)
        if profile is None:
            raise NotFound(f"No profile with id {shown or profile_id!r}", field="id")
        return profile

    async def _check_unset(self, tenant: str, names: Sequence[str]) -> tuple[str, ...]:
        if len(names) > MAX_LIST_ITEMS:
            raise ValidationFailed(f"unset holds at most {MAX_LIST_ITEMS} names", field="unset")
        result: list[str] = []
        for name in names:
            check_property_name(name, field="unset")
            if name == "userId":
                raise UserIdImmutable("userId cannot be removed once set", field="unset")
            if name in READ_ONLY:
                raise ValidationFailed(f"Property '{name}' is read-only", field="unset")
            await self._definitions.get(tenant, name, field="unset")
            if name not in result:
                result.append(name)
        return tuple(result)

    async def define_property(
        self, tenant: str, name: str, type_: PropertyType, description: str
    ) -> PropertyDefinition:
        return await self._definitions.define(tenant, name, type_, description)

    async def delete_profile(self, tenant: str, profile_id: str) -> None:
        """Erase a profile (read through any of its ids) with everything that is its."""
        if not profile_id or len(profile_id) > 64 or not is_text(profile_id):
            raise NotFound(f"No profile with id {profile_id!r}", field="id")
        if not await self._lifecycle.eraser.erase(tenant, profile_id):
            raise NotFound(f"No profile with id {profile_id!r}", field="id")


def _check_tag_cap(profile: Profile, added: Sequence[str], cap: int) -> None:
    """The tags a profile would have must fit the list cap (checked again in the write)."""
    if len(set(profile.tags) | set(added)) > cap:
        raise LimitExceeded(
            f"A profile holds at most {cap} tags; remove some before adding more",
            field="addTags",
        )


def check_tags(tags: Sequence[str], field: str) -> tuple[str, ...]:
    if len(tags) > MAX_LIST_ITEMS:
        raise ValidationFailed(f"{field} holds at most {MAX_LIST_ITEMS} tags", field=field)
    for tag in tags:
        check_text(tag, field=field)
        if not tag.strip() or len(tag) > MAX_LIST_ITEM_LENGTH:
            raise ValidationFailed(
                f"A tag must be 1 to {MAX_LIST_ITEM_LENGTH} characters", field=field
            )
    return tuple(dict.fromkeys(tags))
