"""Unmerge rules: what undoing one merge does to the survivor's values, and which later merge
an undo would break.

The merge's record (domain.model.MergeRecord) says what its fold did to the survivor, read in
the fold's own write: the names it filled, whether it gave the userId, the last contact it
replaced; the survivor's `source_only` list says which list items only the source brought
(and which of them a later write added again). From those and the survivor as it is now:

- a value the merge filled is removed, unless it has changed since (then it is kept, and said);
- a group (country with timezone, first with last name, a city with its coordinates) filled
  by the merge is removed whole, only while none of it changed; otherwise kept whole;
- a list item only the source brought is removed, unless it was added again since (kept);
- the last contact the merge replaced comes back, unless there was a later contact since;
- a userId the source gave the survivor goes back to the source.

Merges into one survivor may be undone in any order no later merge forbids. What this merge
did that a later one took over is handed to that later merge's record, so that undoing it
leaves the survivor as it was before both:
- a later merge that replaced this merge's source's last contact gets this merge's prior
  contact as its own (it would otherwise bring back a contact of a profile gone again);
- a list this merge made (the survivor had none) and that a later merge's items keep alive
  is counted as made by that later merge (its undo removes the list once it is empty).

`undo_on_survivor` is the rule in plain Python; the store applies it in one write that is
conditional on every value the rule read, so a concurrent write makes it read again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.merge import GROUPS, LAST_CONTACT
from domain.model import Kept, MergeRecord, Profile, SourceItem, Touch


@dataclass(frozen=True, slots=True)
class SurvivorUndo:
    """What an unmerge does to the survivor's values."""

    unset: tuple[str, ...] = ()
    # Values written back: a list without the source's items, the last contact it replaced.
    restore: Mapping[str, Any] = field(default_factory=dict)
    removed: tuple[Kept, ...] = ()
    kept: tuple[Kept, ...] = ()
    remove_user_id: bool = False
    # Every property the rule read: the store's write is conditional on each.
    examined: tuple[str, ...] = ()
    # The survivor's record of source-only items once this merge's are gone.
    source_only: tuple[SourceItem, ...] = ()
    # Later merges' records taking over what this merge did (written in the same write):
    # the later merge whose prior contact becomes this merge's prior contact, and that one;
    contact_heir: str | None = None
    heir_contact: Touch | None = None
    # the later merges that now count as having made a list (merge id -> list names).
    lists_made: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _grouped() -> set[str]:
    return {name for group in GROUPS for name in group}


def undo_on_survivor(survivor: Profile, record: MergeRecord) -> SurvivorUndo:
    props, source = survivor.properties, record.source_properties
    filled = set(record.filled)
    examined: dict[str, None] = {}
    unset: list[str] = []
    restore: dict[str, Any] = {}
    removed: list[Kept] = []
    kept: list[Kept] = []

    mine = [i for i in survivor.source_only if i.merge_id == record.merge_id]
    later = _later(survivor, record)
    lists_made: dict[str, list[str]] = {}
    lists = {i.name for i in mine} | {n for n in filled if isinstance(source.get(n), list)}
    grouped = _grouped()
    for name in record.filled:
        if name in grouped or name in lists:
            continue
        examined[name] = None
        current = props.get(name)
        if current is None:
            continue
        if current == source.get(name):
            unset.append(name)
            removed.append(Kept(name))
        else:
            kept.append(Kept(name))
    for group in GROUPS:
        members = [name for name in group if name in filled]
        if not members:
            continue
        examined.update(dict.fromkeys(group))
        if all(props.get(name) == source.get(name) for name in group):
            unset.extend(members)
            removed.extend(Kept(name) for name in members)
        else:
            kept.extend(Kept(name) for name in members if props.get(name) is not None)
    for name in sorted(lists):
        examined[name] = None
        current = props.get(name)
        items = list(current) if isinstance(current, list) else []
        ours = [i for i in mine if i.name == name and i.item in items]
        gone = [i.item for i in ours if not i.readded]
        kept.extend(Kept(name, i.item, is_item=True) for i in ours if i.readded)
        removed.extend(Kept(name, item, is_item=True) for item in gone)
        left = [item for item in items if item not in gone]
        if not left and name in filled and isinstance(current, list):
            unset.append(name)  # the list did not exist before the merge
        elif gone:
            restore[name] = left
        if left and name in filled:  # made by this merge, kept alive by later merges' items
            for heir in _keeping_alive(survivor, later, name, left):
                lists_made.setdefault(heir, []).append(name)
    if record.contact_replaced:
        examined.update(dict.fromkeys(LAST_CONTACT))
        if all(props.get(name) == source.get(name) for name in LAST_CONTACT):
            prior = record.prior_contact
            if prior is None:
                unset.extend(name for name in LAST_CONTACT if props.get(name) is not None)
            else:
                restore["lastSession"] = prior.at
                if prior.channel:
                    restore["lastChannel"] = prior.channel
                elif props.get("lastChannel") is not None:
                    unset.append("lastChannel")
        elif props.get("lastSession") is not None:
            kept.append(Kept("lastSession"))
        contact_heir = _contact_heir(later, record)
    else:
        contact_heir = None
    remove_user_id = record.gave_user_id and survivor.user_id == record.source_user_id
    if remove_user_id:
        removed.append(Kept("userId"))
    return SurvivorUndo(
        unset=tuple(dict.fromkeys(unset)),
        restore=restore,
        removed=tuple(removed),
        kept=tuple(kept),
        remove_user_id=remove_user_id,
        examined=tuple(examined),
        source_only=tuple(i for i in survivor.source_only if i.merge_id != record.merge_id),
        contact_heir=contact_heir,
        heir_contact=record.prior_contact if contact_heir is not None else None,
        lists_made={heir: tuple(names) for heir, names in lists_made.items()},
    )


def _later(survivor: Profile, record: MergeRecord) -> list[MergeRecord]:
    """The merges into the survivor after this one, not undone."""
    ids = [r.merge_id for r in survivor.merge_history]
    position = ids.index(record.merge_id) if record.merge_id in ids else len(ids)
    return [r for r in survivor.merge_history[position + 1 :] if r.undone is None]


def _contact_heir(later: list[MergeRecord], record: MergeRecord) -> str | None:
    """The later merge that replaced the last contact this merge's source brought (its prior
    contact is that one): once this merge is undone, its prior contact is this merge's."""
    session = record.source_properties.get("lastSession")
    if session is None:
        return None
    brought = Touch(channel=record.source_properties.get("lastChannel") or "", at=session)
    return next(
        (r.merge_id for r in later if r.contact_replaced and r.prior_contact == brought), None
    )


def _keeping_alive(
    survivor: Profile, later: list[MergeRecord], name: str, left: list[Any]
) -> list[str]:
    """The later merges whose source-only items in the list `name` are still in it."""
    ids = {r.merge_id for r in later}
    return list(
        dict.fromkeys(
            i.merge_id
            for i in survivor.source_only
            if i.merge_id in ids and i.name == name and i.item in left
        )
    )


def apply_undo(properties: Mapping[str, Any], undo: SurvivorUndo) -> dict[str, Any]:
    """The survivor's properties after the undo."""
    result = {k: v for k, v in properties.items() if k not in undo.unset}
    result.update(undo.restore)
    return result


def blocking_merge(survivor: Profile, record: MergeRecord) -> MergeRecord | None:
    """The first later merge into the survivor, not undone, that depends on this one: it met
    the userId this merge gave, or a value, group, list item or last contact this merge
    brought (so the survivor kept this merge's and not the later source's). That merge must
    be undone first, or its source's value would be lost."""
    history = list(survivor.merge_history)
    position = next(i for i, r in enumerate(history) if r.merge_id == record.merge_id)
    filled = set(record.filled)
    touched_groups = {name for group in GROUPS if filled & set(group) for name in group}
    singles = filled | touched_groups
    items = {
        (i.name, i.item)
        for i in survivor.source_only
        if i.merge_id == record.merge_id and not i.readded
    }
    for later in history[position + 1 :]:
        if later.undone is not None:
            continue
        if record.gave_user_id:
            return later
        values = later.source_properties
        if singles & _scalars(values):
            return later
        if any((name, item) in items for name, item in _items(values)):
            return later
        if record.contact_replaced and not later.contact_replaced and "lastSession" in values:
            return later
    return None


def _scalars(values: Mapping[str, Any]) -> set[str]:
    return {k for k, v in values.items() if v is not None and not isinstance(v, list)}


def _items(values: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    for name, value in values.items():
        if isinstance(value, list):
            for item in value:
                yield name, item
