"""Applying valid import rows to profiles, many rows per database command.

A batch of rows goes in waves: a wave holds the rows that share no key with an earlier row of
the batch (the next wave takes the rest), so rows about one person apply in file order. For a
wave, one read finds who holds its keys, one more reads those profiles. Then, in bulk:

- rows whose keys nobody holds are births (domain.births), done for many rows at once: the
  profiles are inserted PENDING with their keys and values (one insert), their first keys
  claimed (one unordered insert of key `_id`s: a duplicate means another profile got the key
  first, and that birth is discarded), their other keys claimed the same way, then they are
  activated (one update). A crash anywhere leaves births that recovery completes or abandons,
  exactly as for a birth done one at a time;
- rows whose keys all lead to one active profile fill (or overwrite) it: one bulk write of
  guarded single-document updates, each the same pipeline a capture or an identify's fill
  uses; a row that would change nothing is not written at all (it is reported unchanged);
- every other row (keys on several profiles or partly held, a key on a profile being born or
  merged, or a bulk write that lost a race) is
  applied on its own through the normal use cases: identify's rules for a userId, merges by
  the merge state machine (domain.merging), and the same fill or write as above.

Every step is idempotent, so rows applied again after a crash change nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from domain.autocapture import CaptureContext, auto_values
from domain.capture import MAX_ATTEMPTS, Senders
from domain.errors import Contention, DomainError, ErrorCode, MergeConflict
from domain.identify import (
    Identify,
    check_merge_limits,
    identity_limit_error,
    list_limit_error,
    merge_limit_error,
    refusal_of,
)
from domain.identity import Channel, IdentityKey, user_id_key
from domain.ids import new_id
from domain.import_rows import ImportRow, Refusal
from domain.lifecycle import Lifecycle
from domain.matching import keys_of_identity, keys_of_values
from domain.merge import (
    MergePlan,
    apply_plan,
    fill_group,
    list_overflow,
    plan_merge,
)
from domain.merging import MergeResult
from domain.model import Birth, CaptureWrite, KeyBinding, MergeTrigger, Profile, ProfileState
from domain.ports import Clock, Location, ProfileStore, RecordKind

Write = MergePlan | CaptureWrite
PARTLY_WRITTEN = (
    " (the row passed its checks, then a change made meanwhile refused it: its userId, "
    "merges or keys applied before that stay; its values were not written)"
)


class ImportMode(StrEnum):
    """How a row's values meet a profile's: `fill` only fills what it lacks (lists are
    unioned), as a merge does; `overwrite` replaces the values the row gives."""

    FILL = "fill"
    OVERWRITE = "overwrite"


class RowOutcome(StrEnum):
    """What a row did: whether it changed anything, and whether the rules refused it. A row
    the rules refused after some of it was written (a change made meanwhile by someone else
    refused a later step) is REFUSED_AFTER_WRITING: it counts as written and as refused."""

    WRITTEN = "WRITTEN"
    UNCHANGED = "UNCHANGED"
    REFUSED = "REFUSED"
    REFUSED_AFTER_WRITING = "REFUSED_AFTER_WRITING"

    @property
    def changed(self) -> bool:
        return self in (RowOutcome.WRITTEN, RowOutcome.REFUSED_AFTER_WRITING)

    @property
    def refused(self) -> bool:
        return self in (RowOutcome.REFUSED, RowOutcome.REFUSED_AFTER_WRITING)


@dataclass(frozen=True, slots=True)
class NewProfile:
    """A profile to be born in bulk: its birth (keys, first decides), userId and values."""

    profile_id: str
    birth: Birth
    user_id: str | None
    properties: Mapping[str, Any]
    match_keys: tuple[str, ...]


class BulkImportStore(Protocol):
    """The bulk writes an import needs; each document write is still one conditional write."""

    async def owners(self, tenant: str, keys: Sequence[IdentityKey]) -> dict[IdentityKey, str]:
        """The profile each key is bound to (keys nobody holds are absent)."""
        ...

    async def profiles(self, tenant: str, profile_ids: Sequence[str]) -> dict[str, Profile]: ...

    async def insert_births(self, tenant: str, births: Sequence[NewProfile], now: datetime) -> None:
        """Insert the profiles PENDING with their keys reserved and their values."""
        ...

    async def claim_keys(
        self,
        tenant: str,
        claims: Sequence[tuple[IdentityKey, Channel | None, str]],
        now: datetime,
    ) -> set[tuple[IdentityKey, str]]:
        """Bind each free key to its profile (an unordered insert of key `_id`s); the claims
        that lost because the key was held already, whoever holds it."""
        ...

    async def discard_births(self, tenant: str, profile_ids: Sequence[str]) -> None:
        """Delete PENDING profiles no key ever pointed at."""
        ...

    async def activate_births(self, tenant: str, profile_ids: Sequence[str], now: datetime) -> None:
        """PENDING becomes ACTIVE for each (an active one stays so)."""
        ...

    async def write_values(
        self, tenant: str, writes: Sequence[tuple[str, Write]], now: datetime, list_cap: int
    ) -> int:
        """Apply each write to its profile while it is active (and its lists stay within the
        cap); how many profiles matched."""
        ...


class _NoGeo:
    def locate(self, ip: str) -> Location | None:
        return None


_NO_GEO = _NoGeo()
_NO_CONTEXT = CaptureContext()


def row_keys(row: ImportRow) -> list[tuple[IdentityKey, Channel | None]]:
    """Every key the row names: its userId's first, then its identities."""
    keys: list[tuple[IdentityKey, Channel | None]] = []
    if row.user_id is not None:
        keys.append((user_id_key(row.user_id), None))
    keys.extend(row.identities)
    return keys


def row_write(row: ImportRow, mode: ImportMode, now: datetime) -> Write:
    """What the row writes to a profile: its values (filling or replacing) and what its
    channels reveal by themselves (phone and country, email), which only ever fill."""
    values = dict(row.values)
    revealed: dict[str, Any] = {}
    groups: list[Mapping[str, Any]] = []
    for key, channel in row.identities:
        auto = auto_values(channel, key, _NO_CONTEXT, _NO_GEO)
        for name, value in auto.fill.items():
            revealed.setdefault(name, value)
        groups.extend(g for g in auto.groups if values.keys().isdisjoint(g))
    revealed = {k: v for k, v in revealed.items() if k not in values}
    unique: dict[tuple[tuple[str, Any], ...], Mapping[str, Any]] = {}
    for group in groups:
        unique.setdefault(_frozen(group), group)
    auto_groups = tuple(dict(g) for g in unique.values())
    match = [k for key, _ in row_keys(row) for k in keys_of_identity(key)]
    match.extend(keys_of_values({**revealed, **values}))
    match_keys = tuple(dict.fromkeys(match))
    if mode is ImportMode.FILL:
        source = Profile(
            id="", tenant="", user_id=None, properties=values, created_at=now, updated_at=now
        )
        plan = plan_merge(source)
        first_groups = [g for g in auto_groups if not _overlaps(g, plan.groups)]
        return replace(
            plan,
            fill={**revealed, **plan.fill},
            groups=(*plan.groups, *first_groups),
            user_id=None,
            keys=(),
            match_keys=match_keys,
        )
    return CaptureWrite(
        set=values,
        fill=revealed,
        fill_groups=auto_groups,
        match_keys=match_keys,
    )


def _frozen(group: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(group.items()))


def _overlaps(group: Mapping[str, Any], others: Sequence[Mapping[str, Any]]) -> bool:
    return any(not set(group).isdisjoint(other) for other in others)


def written(properties: Mapping[str, Any], write: Write) -> dict[str, Any]:
    """The properties once the write is applied (the same rule the store's pipeline applies)."""
    if isinstance(write, MergePlan):
        return apply_plan(properties, write)
    result = dict(properties)
    result.update(write.set)
    for name, value in write.fill.items():
        if result.get(name) is None:
            result[name] = value
    for group in write.fill_groups:
        result = fill_group(result, group)
    return result


def _overflow(properties: Mapping[str, Any], write: Write, cap: int) -> str | None:
    if isinstance(write, MergePlan):
        return list_overflow(properties, write, cap)
    return None  # an overwrite replaces lists with valid (capped) lists


class Importer:
    """Applies batches of valid rows to a tenant's profiles."""

    def __init__(
        self,
        store: ProfileStore,
        bulk: BulkImportStore,
        clock: Clock,
        lifecycle: Lifecycle,
        senders: Senders,
        identify: Identify,
    ) -> None:
        self._store = store
        self._bulk = bulk
        self._clock = clock
        self._lifecycle = lifecycle
        self._senders = senders
        self._identify = identify

    @property
    def _list_cap(self) -> int:
        return self._lifecycle.merger.limits.list_items

    async def apply(
        self, tenant: str, rows: Sequence[ImportRow], mode: ImportMode, actor: str
    ) -> tuple[dict[int, RowOutcome], list[Refusal]]:
        """Each row's outcome, and the refusals of the rows the rules refused.

        The batch goes in waves: a wave holds the rows that share no key with an earlier row
        still waiting, so rows about one person apply in file order (what matters when two of
        them give different values) while each wave is still written in bulk."""
        outcomes: dict[int, RowOutcome] = {}
        refusals: list[Refusal] = []
        waiting = list(rows)
        while waiting:
            wave, waiting = _plan(waiting)
            alone = await self._wave(tenant, wave, mode, outcomes, refusals)
            for row in sorted(alone, key=lambda r: r.number):
                await self._alone(tenant, row, mode, actor, outcomes, refusals)
        return outcomes, refusals

    async def _wave(
        self,
        tenant: str,
        rows: Sequence[ImportRow],
        mode: ImportMode,
        outcomes: dict[int, RowOutcome],
        refusals: list[Refusal],
    ) -> list[ImportRow]:
        """Rows with no key in common, in bulk; the rows that must go alone."""
        now = self._clock.now()
        alone: list[ImportRow] = []
        owners = await self._bulk.owners(tenant, [k for row in rows for k, _ in row_keys(row)])
        held = await self._bulk.profiles(tenant, sorted(set(owners.values())))
        births: list[tuple[ImportRow, NewProfile]] = []
        updates: list[tuple[ImportRow, Profile, Write]] = []
        for row in rows:
            keys = [k for k, _ in row_keys(row)]
            holders = {owners.get(k) for k in keys}
            write = row_write(row, mode, now)
            if holders == {None}:
                births.append((row, self._new_profile(tenant, row, write, now)))
                continue
            profile = held.get(next(iter(holders)) or "") if len(holders) == 1 else None
            if (
                profile is None
                or profile.state is not ProfileState.ACTIVE
                or (row.user_id is not None and profile.user_id != row.user_id)
            ):
                alone.append(row)
                continue
            if written(profile.properties, write) == dict(profile.properties):
                outcomes[row.number] = RowOutcome.UNCHANGED
                continue
            overflow = _overflow(profile.properties, write, self._list_cap)
            if overflow is not None:
                refusals.append(_refusal(row, list_limit_error(overflow, self._list_cap)))
                outcomes[row.number] = RowOutcome.REFUSED
                continue
            updates.append((row, profile, write))
        if births:
            alone.extend(await self._births(tenant, births, outcomes, now))
        if updates:
            alone.extend(await self._updates(tenant, updates, outcomes, now))
        return alone

    async def _alone(
        self,
        tenant: str,
        row: ImportRow,
        mode: ImportMode,
        actor: str,
        outcomes: dict[int, RowOutcome],
        refusals: list[Refusal],
    ) -> None:
        # A row born in bulk whose other keys were taken meanwhile comes here written already.
        wrote = [outcomes.get(row.number) is RowOutcome.WRITTEN]
        try:
            changed = await self.apply_one(tenant, row, mode, actor, wrote)
        except DomainError as error:
            refusals.append(_refusal(row, error))
            outcomes[row.number] = _refused(wrote[0])
            return
        except Contention as error:
            message = f"{error}; import the file again"
            if wrote[0]:
                message += PARTLY_WRITTEN
            refusals.append(Refusal(row.number, "row", ErrorCode.INTERNAL.value, message))
            outcomes[row.number] = _refused(wrote[0])
            return
        if outcomes.get(row.number) is not RowOutcome.WRITTEN:
            outcomes[row.number] = RowOutcome.WRITTEN if changed else RowOutcome.UNCHANGED

    def _new_profile(self, tenant: str, row: ImportRow, write: Write, now: datetime) -> NewProfile:
        bindings = tuple(KeyBinding(key=k, channel=c) for k, c in row_keys(row))
        return NewProfile(
            profile_id=new_id(),
            birth=Birth(at=now, keys=bindings),
            user_id=row.user_id,
            properties=written({}, write),
            match_keys=write.match_keys,
        )

    async def _births(
        self,
        tenant: str,
        births: Sequence[tuple[ImportRow, NewProfile]],
        outcomes: dict[int, RowOutcome],
        now: datetime,
    ) -> list[ImportRow]:
        """Births in bulk; the rows that must be applied on their own after all."""
        now = self._clock.now()  # a birth's age (what recovery judges) starts at its insert
        await self._bulk.insert_births(tenant, [b for _, b in births], now)
        first = [(b.birth.keys[0].key, b.birth.keys[0].channel, b.profile_id) for _, b in births]
        lost = await self._bulk.claim_keys(tenant, first, now)
        born = [(row, b) for row, b in births if (b.birth.keys[0].key, b.profile_id) not in lost]
        unborn = [b.profile_id for _, b in births if (b.birth.keys[0].key, b.profile_id) in lost]
        if unborn:
            await self._bulk.discard_births(tenant, unborn)
        others = [(k.key, k.channel, b.profile_id) for _, b in born for k in b.birth.keys[1:]]
        taken = await self._bulk.claim_keys(tenant, others, now) if others else set()
        if taken:
            # A key may be held by its own birth already (recovery completed it meanwhile).
            holders = await self._bulk.owners(tenant, [key for key, _ in taken])
            taken = {(key, born_id) for key, born_id in taken if holders.get(key) != born_id}
        for key, profile_id in taken:
            # Somebody got the key first: it stays theirs, and the row is applied again on
            # its own below (joining the two profiles by the rules).
            await self._store.drop_key(tenant, profile_id, key)
        await self._bulk.activate_births(tenant, [b.profile_id for _, b in born], now)
        # Recovery may have abandoned a birth that looked stuck (its first key not claimed
        # yet when it looked): such a profile is a tombstone now. The keys this import bound
        # to it are given back and its row goes alone, as Births.create does for one birth.
        now_held = await self._bulk.profiles(tenant, [b.profile_id for _, b in born])
        again = {profile_id for _, profile_id in taken}
        retry: list[ImportRow] = []
        for row, b in born:
            current = now_held.get(b.profile_id)
            if current is None or current.state is not ProfileState.ACTIVE:
                for binding in b.birth.keys:
                    await self._store.release_identity(tenant, binding.key, b.profile_id)
                retry.append(row)
                continue
            outcomes[row.number] = RowOutcome.WRITTEN
            if b.profile_id in again:
                retry.append(row)
        retry.extend(row for row, b in births if b.profile_id in unborn)
        return retry

    async def _updates(
        self,
        tenant: str,
        updates: Sequence[tuple[ImportRow, Profile, Write]],
        outcomes: dict[int, RowOutcome],
        now: datetime,
    ) -> list[ImportRow]:
        """Fills and overwrites in bulk; the rows whose profile changed under the write."""
        writes = [(profile.id, write) for _, profile, write in updates]
        matched = await self._bulk.write_values(tenant, writes, now, self._list_cap)
        retry: list[ImportRow] = []
        if matched < len(updates):
            # Some profile was merged, erased or changed meanwhile: those rows go alone.
            now_held = await self._bulk.profiles(tenant, [p.id for _, p, _ in updates])
            for row, profile, write in updates:
                current = now_held.get(profile.id)
                if (
                    current is None
                    or current.state is not ProfileState.ACTIVE
                    or written(current.properties, write) != dict(current.properties)
                ):
                    retry.append(row)
        for row, _, _ in updates:
            if row not in retry:
                outcomes[row.number] = RowOutcome.WRITTEN
        return retry

    async def apply_one(
        self,
        tenant: str,
        row: ImportRow,
        mode: ImportMode,
        actor: str,
        wrote: list[bool] | None = None,
    ) -> bool:
        """One row through the normal use cases; whether it changed anything.

        The row is checked whole first (`_check_whole`). Should a change made meanwhile by
        someone else make a later step refuse anyway, the refusal says what of the row was
        written already (its userId, merges or keys: each a complete step of the rules), and
        `wrote[0]` is set when anything was."""
        wrote = [False] if wrote is None else wrote
        try:
            await self._check_whole(tenant, row, mode)
            target, changed = await self._together(tenant, row, actor, wrote)
            write = row_write(row, mode, self._clock.now())
            for _ in range(MAX_ATTEMPTS):
                if written(target.properties, write) == dict(target.properties):
                    return changed
                overflow = _overflow(target.properties, write, self._list_cap)
                if overflow is not None:
                    raise list_limit_error(overflow, self._list_cap)
                result = (
                    await self._senders.fill(tenant, target.id, write)
                    if isinstance(write, MergePlan)
                    else await self._senders.write(tenant, target.id, write)
                )
                if result is not None:
                    return True
                target, _ = await self._together(tenant, row, actor, wrote)  # erased: again
        except DomainError as error:
            if wrote[0]:
                error.message += PARTLY_WRITTEN
            raise
        raise Contention("the row's profile kept changing")

    async def _check_whole(self, tenant: str, row: ImportRow, mode: ImportMode) -> None:
        """Refuse the row before anything of it is written: every limit it can hit (the
        merge limit, the identity limit, list caps once merged and once its values are in),
        judged on the profiles it will touch as they are now. A change made meanwhile by
        someone else can still make a later step refuse (see the README)."""
        holders = await self._holders(tenant, row)
        profiles = list({p.id: p for p in holders.values() if p is not None}.values())
        if not profiles:
            return  # a birth: the row's own values are valid by themselves
        user_ids = {p.user_id for p in profiles if p.user_id is not None}
        if row.user_id is not None:
            user_ids.add(row.user_id)
        field = "userId" if row.user_id is not None else "identities"
        if len(user_ids) > 1:
            raise MergeConflict(
                "The row's identities and userId belong to profiles with different userIds; "
                "profiles with different userIds never merge",
                field=field,
            )
        limits = self._lifecycle.merger.limits
        target = next((p for p in profiles if p.user_id is not None), profiles[0])
        sources = [p for p in profiles if p.id != target.id]
        if sources and len(target.merge_history) + len(sources) > limits.merges:
            raise merge_limit_error(limits.merges)
        keys = set(target.keys)
        properties: Mapping[str, Any] = target.properties
        for source in sources:
            check_merge_limits(self._lifecycle, target, source, field)
            keys |= set(source.keys)
            plan = plan_merge(source)
            overflow = list_overflow(properties, plan, limits.list_items)
            if overflow is not None:
                raise list_limit_error(overflow, limits.list_items)
            properties = apply_plan(properties, plan)
        keys |= {key.storage_id(tenant) for key, _ in row_keys(row)}
        if len(keys) > limits.identities:
            raise identity_limit_error(limits.identities, "identities")
        write = row_write(row, mode, self._clock.now())
        overflow = _overflow(properties, write, self._list_cap)
        if overflow is not None:
            raise list_limit_error(overflow, self._list_cap)

    async def _holders(self, tenant: str, row: ImportRow) -> dict[IdentityKey, Profile | None]:
        """The active profile each key of the row leads to (None for keys nobody holds)."""
        holders: dict[IdentityKey, Profile | None] = {}
        for key, _ in row_keys(row):
            identity = await self._store.find_identity(tenant, key)
            profile: Profile | None = None
            if identity is not None and row.user_id is not None and key == user_id_key(row.user_id):
                profile = await self._lifecycle.settle_user_key(
                    tenant, row.user_id, identity.profile_id
                )
            elif identity is not None:
                profile = await self._lifecycle.active(tenant, identity.profile_id)
                if profile is None:
                    await self._store.release_identity(tenant, key, identity.profile_id)
            holders[key] = profile
        return holders

    async def _together(
        self, tenant: str, row: ImportRow, actor: str, wrote: list[bool]
    ) -> tuple[Profile, bool]:
        """The one active profile that holds every key of the row, made so by the rules:
        a birth when nobody holds any; identify's when the row's userId is new to the profile;
        merges of every other profile into the one with the userId (or the first); the free
        keys bound to it. Refused with MERGE_CONFLICT when the keys lead to profiles with
        different userIds (or to one with another userId than the row's)."""
        changed = False
        for _ in range(MAX_ATTEMPTS):
            holders = await self._holders(tenant, row)
            profiles = list({p.id: p for p in holders.values() if p is not None}.values())
            user_ids = {p.user_id for p in profiles if p.user_id is not None}
            if row.user_id is not None:
                user_ids.add(row.user_id)
            if len(user_ids) > 1:
                raise MergeConflict(
                    "The row's identities and userId belong to profiles with different userIds; "
                    "profiles with different userIds never merge",
                    field="userId" if row.user_id is not None else "identities",
                )
            if not profiles:
                bindings = [KeyBinding(key=k, channel=c) for k, c in row_keys(row)]
                born = await self._lifecycle.births.create(tenant, bindings, user_id=row.user_id)
                changed = changed or isinstance(born, Profile)
                wrote[0] = wrote[0] or changed
                continue  # look again: every key must be on it
            target = next((p for p in profiles if p.user_id is not None), profiles[0])
            if row.user_id is not None and target.user_id is None:
                key = next(k for k, p in holders.items() if p is not None and p.id == target.id)
                await self._identify.identify_key(tenant, key, row.user_id, {}, actor=actor)
                changed = wrote[0] = True
                continue
            sources = [p for p in profiles if p.id != target.id]
            if sources:
                field = "userId" if row.user_id is not None else "identities"
                check_merge_limits(self._lifecycle, target, sources[0], field)
                merged = await self._lifecycle.merger.merge(
                    tenant,
                    sources[0].id,
                    target.id,
                    trigger=MergeTrigger.IDENTIFY,
                    actor=actor,
                    unidentified_only=True,
                )
                if not isinstance(merged, MergeResult):
                    refusal = refusal_of(self._lifecycle, merged, field)
                    if refusal is not None:
                        raise refusal
                changed = wrote[0] = True
                continue
            free = [(k, c) for k, c in row_keys(row) if holders.get(k) is None]
            if free:
                for key, channel in free:
                    await self._join(tenant, key, channel, target)
                changed = wrote[0] = True
                continue
            return target, changed
        raise Contention("the row's keys kept changing")

    async def _join(
        self, tenant: str, key: IdentityKey, channel: Channel | None, to: Profile
    ) -> None:
        """Bind a key nobody holds to an active profile, its place reserved first (the same
        steps as a new sender joining a profile in identify)."""
        limit = self._lifecycle.merger.limits.identities
        if key.storage_id(tenant) not in to.keys and len(to.keys) >= limit:
            raise identity_limit_error(limit, "identities")
        if await self._store.reserve_key(tenant, to.id, key, limit) is None:
            return  # it changed meanwhile: the caller looks again
        held = await self._store.claim_identity(
            tenant, key, to.id, channel, self._clock.now(), unsettled=True
        )
        if held.profile_id == to.id:
            await self._lifecycle.rehome(
                tenant, RecordKind.IDENTITY, key.storage_id(tenant), to.id, settle=True
            )


def _refused(wrote: bool) -> RowOutcome:
    return RowOutcome.REFUSED_AFTER_WRITING if wrote else RowOutcome.REFUSED


def _refusal(row: ImportRow, error: DomainError) -> Refusal:
    return Refusal(row.number, error.field or "row", error.code.value, str(error))


def _plan(rows: Sequence[ImportRow]) -> tuple[list[ImportRow], list[ImportRow]]:
    """The next wave (rows that share no key with an earlier row), and the rows that wait for
    a later one."""
    seen: set[IdentityKey] = set()
    fast: list[ImportRow] = []
    alone: list[ImportRow] = []
    for row in rows:
        keys = {k for k, _ in row_keys(row)}
        if keys & seen:
            alone.append(row)
        else:
            fast.append(row)
        seen |= keys
    return fast, alone
