"""Merge rules: how a source profile's data folds into the survivor.

The plan is computed from the source alone, so the store can apply it to the survivor in one
atomic write whatever the survivor holds at that moment; `apply_plan` is the same rule in
plain Python, for tests and fakes. Event summaries are not part of the plan: they are a cache
of the events collection, recomputed for the survivor once the source's events have moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.model import Profile

# Country and timezone come from the same lookup, so they move together or not at all.
LOCATION_PAIR = ("country", "timezone")


@dataclass(frozen=True, slots=True)
class MergePlan:
    """The source's contribution: values to fill, lists to union, the location pair."""

    fill: Mapping[str, Any] = field(default_factory=dict)
    union: Mapping[str, list[Any]] = field(default_factory=dict)
    location: Mapping[str, Any] = field(default_factory=dict)
    # A manual merge of an identified source into an unidentified target carries the userId.
    user_id: str | None = None
    match_keys: tuple[str, ...] = ()
    # The identity keys the source holds: they count against the survivor's limit.
    keys: tuple[str, ...] = ()


def plan_merge(source: Profile) -> MergePlan:
    fill: dict[str, Any] = {}
    union: dict[str, list[Any]] = {}
    location: dict[str, Any] = {}
    for name, value in source.properties.items():
        if value is None:
            continue
        if name in LOCATION_PAIR:
            location[name] = value
        elif isinstance(value, list):
            union[name] = list(value)
        else:
            fill[name] = value
    return MergePlan(
        fill=fill,
        union=union,
        location=location,
        user_id=source.user_id,
        match_keys=source.match_keys,
        keys=source.keys,
    )


def list_overflow(properties: Mapping[str, Any], plan: MergePlan, cap: int) -> str | None:
    """The first list the plan would grow past `cap` items on these properties, if any."""
    for name, values in plan.union.items():
        current = properties.get(name)
        merged = list(current) if isinstance(current, list) else []
        merged.extend(v for v in values if v not in merged)
        if len(merged) > cap:
            return name
    return None


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
    if plan.location and not any(_present(result.get(n)) for n in LOCATION_PAIR):
        result.update(plan.location)
    return result
