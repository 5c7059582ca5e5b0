"""Merge rules: how a source profile's data folds into the survivor.

The plan is computed from the source alone, so the store can apply it to the survivor in one
atomic write whatever the survivor holds at that moment; `apply_plan` is the same rule in
plain Python, for tests and fakes. Event summaries are not part of the plan: they are a cache
of the events collection, recomputed for the survivor once the source's events have moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.identity import IdentityKey, IdentityType
from domain.model import Profile, Touch

# Values that come from one source belong together: country and timezone (one lookup), first
# and last name (one display name), a city and its coordinates. A group fills a profile whole,
# and only one that has none of it, so no value ever sits beside one it may contradict.
LOCATION_PAIR = ("country", "timezone")
NAME_PAIR = ("firstName", "lastName")
PLACE = ("city", "latitude", "longitude")
GROUPS = (LOCATION_PAIR, NAME_PAIR, PLACE)
# The last contact: its channel and time move together, and only forwards.
LAST_CONTACT = ("lastChannel", "lastSession")


@dataclass(frozen=True, slots=True)
class MergePlan:
    """The source's contribution: values to fill, lists to union, groups to fill whole."""

    fill: Mapping[str, Any] = field(default_factory=dict)
    union: Mapping[str, list[Any]] = field(default_factory=dict)
    # Each names every member of one of GROUPS; a member the source lacks is None (see
    # fill_group).
    groups: tuple[Mapping[str, Any], ...] = ()
    # A manual merge of an identified source into an unidentified target carries the userId.
    user_id: str | None = None
    match_keys: tuple[str, ...] = ()
    # The identity keys the source holds: they count against the survivor's limit.
    keys: tuple[str, ...] = ()
    # The source's last contact: it wins when it is later than the survivor's.
    touch: Touch | None = None


def plan_merge(source: Profile) -> MergePlan:
    fill: dict[str, Any] = {}
    union: dict[str, list[Any]] = {}
    single, groups = split_groups(
        {k: v for k, v in source.properties.items() if v is not None and k not in LAST_CONTACT}
    )
    for name, value in single.items():
        if isinstance(value, list):
            union[name] = list(value)
        else:
            fill[name] = value
    return MergePlan(
        fill=fill,
        union=union,
        groups=groups,
        user_id=source.user_id,
        match_keys=source.match_keys,
        keys=tuple(k for k in source.keys if not foreign_user_key(k, source.user_id)),
        touch=last_contact(source.properties),
    )


def foreign_user_key(storage_id: str, user_id: str | None) -> bool:
    """A userId key a profile holds (or has reserved) for a userId other than its own: an
    identify's claim that the profile has not recorded yet. Once a merge has claimed the
    profile its userId is fixed, so that claim can never complete there: the merge carries
    neither the key nor its place in the ledger (domain.merging)."""
    key = IdentityKey.from_storage_id(storage_id)
    return key.type is IdentityType.USER_ID and key.value != user_id


def last_contact(properties: Mapping[str, Any]) -> Touch | None:
    at = properties.get("lastSession")
    if not isinstance(at, datetime):
        return None
    channel = properties.get("lastChannel")
    return Touch(channel=channel if isinstance(channel, str) else "", at=at)


def touched(properties: Mapping[str, Any], touch: Touch) -> dict[str, Any]:
    """The properties after a contact: it moves the last contact only forwards."""
    result = dict(properties)
    current = properties.get("lastSession")
    if not isinstance(current, datetime) or current <= touch.at:
        result["lastSession"] = touch.at
        if touch.channel:
            result["lastChannel"] = touch.channel
        else:
            result.pop("lastChannel", None)
    return result


def list_overflow(properties: Mapping[str, Any], plan: MergePlan, cap: int) -> str | None:
    """The first list the plan would grow past `cap` items on these properties, if any."""
    for name, values in plan.union.items():
        current = properties.get(name)
        merged = list(current) if isinstance(current, list) else []
        merged.extend(v for v in values if v not in merged)
        if len(merged) > cap:
            return name
    return None


def split_groups(
    values: Mapping[str, Any],
) -> tuple[dict[str, Any], tuple[dict[str, Any], ...]]:
    """The values outside every group, and each group they touch, naming all its members
    (None for a member without a value)."""
    single = {k: v for k, v in values.items() if not any(k in g for g in GROUPS)}
    groups = tuple(
        {name: values.get(name) for name in group}
        for group in GROUPS
        if any(values.get(name) is not None for name in group)
    )
    return single, groups


def fill_group(properties: Mapping[str, Any], group: Mapping[str, Any]) -> dict[str, Any]:
    """The properties with the group's values, if they have none of its members (a member
    without a value counts in that test and is not written); otherwise unchanged."""
    result = dict(properties)
    if not any(_present(result.get(name)) for name in group):
        result.update({k: v for k, v in group.items() if v is not None})
    return result


def _present(value: Any) -> bool:
    return value is not None


def apply_plan(properties: Mapping[str, Any], plan: MergePlan) -> dict[str, Any]:
    """The survivor's properties after the plan is applied."""
    result = dict(properties)
    for name, value in plan.fill.items():
        if not _present(result.get(name)):
            result[name] = value
    for name, values in plan.union.items():
        current = result.get(name)
        merged = list(current) if isinstance(current, list) else []
        merged.extend(v for v in values if v not in merged)
        result[name] = merged
    for group in plan.groups:
        result = fill_group(result, group)
    if plan.touch is not None:
        result = touched(result, plan.touch)
    return result
