"""Merge rules: how a source profile's data folds into the survivor.

The plan is computed from the source alone, so the store can apply it to the survivor in one
atomic write whatever the survivor holds at that moment; `apply_plan` is the same rule in
plain Python, for tests and fakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.model import EventSummary, Profile

# Country and timezone come from the same lookup, so they move together or not at all.
LOCATION_PAIR = ("country", "timezone")


@dataclass(frozen=True, slots=True)
class MergePlan:
    """The source's contribution: values to fill, lists to union, the pair, event summaries."""

    fill: Mapping[str, Any] = field(default_factory=dict)
    union: Mapping[str, list[Any]] = field(default_factory=dict)
    location: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[EventSummary, ...] = ()


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
    return MergePlan(fill=fill, union=union, location=location, events=source.events)


def _present(value: Any) -> bool:
    return value is not None


def apply_plan(
    properties: Mapping[str, Any], events: tuple[EventSummary, ...], plan: MergePlan
) -> tuple[dict[str, Any], tuple[EventSummary, ...]]:
    """The survivor's properties and event summaries after the plan is applied."""
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
    return result, combine_events(events, plan.events)


def combine_events(
    mine: tuple[EventSummary, ...], theirs: tuple[EventSummary, ...]
) -> tuple[EventSummary, ...]:
    """Counts add up, first is the earliest, last the latest."""
    by_name = {e.name: e for e in mine}
    for other in theirs:
        current = by_name.get(other.name)
        if current is None:
            by_name[other.name] = other
            continue
        by_name[other.name] = EventSummary(
            name=other.name,
            count=current.count + other.count,
            first_seen=min(current.first_seen, other.first_seen),
            last_seen=_latest(current.last_seen, other.last_seen),
        )
    return tuple(sorted(by_name.values(), key=lambda e: e.name))


def _latest(a: datetime, b: datetime) -> datetime:
    return max(a, b)
