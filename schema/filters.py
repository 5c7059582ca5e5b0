"""The ProfileFilter input and its read-back form: a segment's saved filter, typed the same way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Self

import strawberry

from schema.enums import FilterOp
from schema.scalars import JSON


@strawberry.input(name="PropertyCondition", description="Compare one property's value")
class PropertyConditionInput:
    name: str = strawberry.field(description="The property, system or custom")
    op: FilterOp = strawberry.field(description="How to compare")
    value: JSON | None = strawberry.field(
        default=None,
        description="What to compare with, of the property's type; a list for IN and BETWEEN, "
        "a number of days for WITHIN_LAST_DAYS, nothing for EXISTS and NOT_EXISTS",
    )


@strawberry.input(
    name="EventCondition",
    description="Did (or did not) do an event; optionally at least / at most N times, "
    "within the last N days",
)
class EventConditionInput:
    name: str = strawberry.field(description="The event's name")
    did: bool | None = strawberry.field(
        default=True, description="True: did it (the default); false: never did it"
    )
    min_count: int | None = strawberry.field(default=None, description="At least this often")
    max_count: int | None = strawberry.field(default=None, description="At most this often")
    within_last_days: int | None = strawberry.field(
        default=None, description="Count only events of the last N days"
    )


@strawberry.input(description="A condition on profiles: exactly one of the fields per node")
class ProfileFilter:
    and_: list[ProfileFilter] | None = strawberry.field(
        name="and", default=None, description="Every one of these holds"
    )
    or_: list[ProfileFilter] | None = strawberry.field(
        name="or", default=None, description="At least one of these holds"
    )
    not_: ProfileFilter | None = strawberry.field(
        name="not", default=None, description="This does not hold"
    )
    property: PropertyConditionInput | None = strawberry.field(
        default=None, description="A condition on one property's value"
    )
    tag: str | None = strawberry.field(default=None, description="The profile has this tag")
    event: EventConditionInput | None = strawberry.field(
        default=None, description="A condition on the events the profile did"
    )

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


@strawberry.type(description="A saved property condition, as it was given")
class SavedPropertyCondition:
    name: str = strawberry.field(description="The property")
    op: FilterOp = strawberry.field(description="How it is compared")
    value: JSON | None = strawberry.field(description="What it is compared with, if anything")


@strawberry.type(description="A saved event condition, as it was given")
class SavedEventCondition:
    name: str = strawberry.field(description="The event's name")
    did: bool = strawberry.field(description="True: did it; false: never did it")
    min_count: int | None = strawberry.field(description="At least this often")
    max_count: int | None = strawberry.field(description="At most this often")
    within_last_days: int | None = strawberry.field(description="Counted over the last N days")


@strawberry.type(
    description="A saved filter read back: the shape of ProfileFilter, one field set per node"
)
class SavedFilter:
    and_: list[SavedFilter] | None = strawberry.field(
        name="and", description="Every one of these holds"
    )
    or_: list[SavedFilter] | None = strawberry.field(
        name="or", description="At least one of these holds"
    )
    not_: SavedFilter | None = strawberry.field(name="not", description="This does not hold")
    property: SavedPropertyCondition | None = strawberry.field(
        description="A condition on one property's value"
    )
    tag: str | None = strawberry.field(description="The profile has this tag")
    event: SavedEventCondition | None = strawberry.field(
        description="A condition on the events the profile did"
    )

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> Self:
        """From the client form the domain stores with a segment."""
        prop, event = raw.get("property"), raw.get("event")
        return cls(
            and_=[cls.from_raw(p) for p in raw["and"]] if "and" in raw else None,
            or_=[cls.from_raw(p) for p in raw["or"]] if "or" in raw else None,
            not_=cls.from_raw(raw["not"]) if "not" in raw else None,
            property=SavedPropertyCondition(
                name=prop["name"], op=FilterOp(prop["op"]), value=prop.get("value")
            )
            if prop is not None
            else None,
            tag=raw.get("tag"),
            event=SavedEventCondition(
                name=event["name"],
                did=event.get("did", True),
                min_count=event.get("minCount"),
                max_count=event.get("maxCount"),
                within_last_days=event.get("withinLastDays"),
            )
            if event is not None
            else None,
        )


# The arguments that narrow a list or a count of profiles (`profiles`, `profileCount`).
Where = Annotated[
    ProfileFilter | None,
    strawberry.argument(description="Only profiles matching this filter"),
]
Search = Annotated[
    str | None,
    strawberry.argument(
        description="Only profiles whose first or last name, email, phone or userId "
        "contains this text (case-insensitive)"
    ),
]
