"""The ProfileFilter input (SPEC §8) and its conversion to the domain's client form."""

from __future__ import annotations

from typing import Any

import strawberry

from domain.filters import FilterOp
from schema.scalars import JSON

strawberry.enum(FilterOp, description="How a property condition compares")


@strawberry.input(name="PropertyCondition", description="Compare one property's value")
class PropertyConditionInput:
    name: str
    op: FilterOp
    value: JSON | None = None


@strawberry.input(
    name="EventCondition",
    description="Did (or did not) do an event; optionally at least / at most N times, "
    "within the last N days",
)
class EventConditionInput:
    name: str
    did: bool | None = True
    min_count: int | None = None
    max_count: int | None = None
    within_last_days: int | None = None


@strawberry.input(description="Exactly one of the fields per filter node")
class ProfileFilter:
    and_: list[ProfileFilter] | None = strawberry.field(name="and", default=None)
    or_: list[ProfileFilter] | None = strawberry.field(name="or", default=None)
    not_: ProfileFilter | None = strawberry.field(name="not", default=None)
    property: PropertyConditionInput | None = None
    tag: str | None = None
    event: EventConditionInput | None = None

    def to_raw(self) -> dict[str, Any]:
        """The client form the domain parses (None means the field was not given)."""
        raw: dict[str, Any] = {}
        if self.and_ is not None:
            raw["and"] = [f.to_raw() for f in self.and_]
        if self.or_ is not None:
            raw["or"] = [f.to_raw() for f in self.or_]
        if self.not_ is not None:
            raw["not"] = self.not_.to_raw()
        if self.property is not None:
            raw["property"] = {
                "name": self.property.name,
                "op": self.property.op.value,
                "value": self.property.value,
            }
        if self.tag is not None:
            raw["tag"] = self.tag
        if self.event is not None:
            raw["event"] = {
                "name": self.event.name,
                "did": self.event.did,
                "minCount": self.event.min_count,
                "maxCount": self.event.max_count,
                "withinLastDays": self.event.within_last_days,
            }
        return raw
