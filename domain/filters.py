"""The segment filter language (SPEC §8): property, tag and event conditions combined with
and / or / not. Parsed from client JSON into typed conditions, validated against the tenant's
property definitions, and turned back into JSON for storage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.errors import PropertyNotDefined, ValidationFailed
from domain.events import check_event_name
from domain.identity import lookup_user_id
from domain.properties import (
    PropertyDefinition,
    PropertyType,
    check_property_name,
    validate_value,
)
from domain.values import check_text

MAX_NODES = 50
MAX_DEPTH = 8
MAX_IN_VALUES = 100
MAX_DAYS = 3650


class FilterOp(StrEnum):
    """Comparison operators of a property condition."""

    EQ = "EQ"
    NE = "NE"
    GT = "GT"
    GTE = "GTE"
    LT = "LT"
    LTE = "LTE"
    IN = "IN"
    CONTAINS = "CONTAINS"
    EXISTS = "EXISTS"
    NOT_EXISTS = "NOT_EXISTS"
    BETWEEN = "BETWEEN"
    WITHIN_LAST_DAYS = "WITHIN_LAST_DAYS"


_ORDERED = frozenset(
    {PropertyType.NUMBER, PropertyType.DATE, PropertyType.DATETIME, PropertyType.TIME}
)
_DATED = frozenset({PropertyType.DATE, PropertyType.DATETIME})
_RANGE_OPS = frozenset({FilterOp.GT, FilterOp.GTE, FilterOp.LT, FilterOp.LTE, FilterOp.BETWEEN})


@dataclass(frozen=True, slots=True)
class PropertyCondition:
    name: str
    type: PropertyType
    op: FilterOp
    value: Any = None


@dataclass(frozen=True, slots=True)
class TagCondition:
    tag: str


@dataclass(frozen=True, slots=True)
class EventCondition:
    """Did (or did not) do an event, optionally at least / at most N times in the last N days."""

    name: str
    did: bool = True
    min_count: int | None = None
    max_count: int | None = None
    within_last_days: int | None = None


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Filter


type Filter = And | Or | Not | PropertyCondition | TagCondition | EventCondition


class _Budget:
    def __init__(self) -> None:
        self.nodes = 0


def parse_filter(
    raw: Mapping[str, Any],
    definitions: Mapping[str, PropertyDefinition],
    *,
    field: str = "where",
) -> Filter:
    """A typed filter, or ValidationFailed naming the offending node."""
    return _parse(raw, definitions, field, 1, _Budget())


def _parse(
    raw: Mapping[str, Any],
    definitions: Mapping[str, PropertyDefinition],
    field: str,
    depth: int,
    budget: _Budget,
) -> Filter:
    budget.nodes += 1
    if budget.nodes > MAX_NODES:
        raise ValidationFailed(f"A filter has at most {MAX_NODES} conditions", field=field)
    if depth > MAX_DEPTH:
        raise ValidationFailed(f"A filter nests at most {MAX_DEPTH} levels", field=field)
    if not isinstance(raw, Mapping):
        raise ValidationFailed("A filter node must be an object", field=field)
    present = [k for k, v in raw.items() if v is not None]
    if len(present) != 1:
        raise ValidationFailed(
            "A filter node holds exactly one of and, or, not, property, tag, event", field=field
        )
    kind = present[0]
    value = raw[kind]
    path = f"{field}.{kind}"
    match kind:
        case "and" | "or":
            if not isinstance(value, list) or not value:
                raise ValidationFailed(f"'{kind}' needs a non-empty list of filters", field=path)
            parts = tuple(
                _parse(p, definitions, f"{path}[{i}]", depth + 1, budget)
                for i, p in enumerate(value)
            )
            return And(parts) if kind == "and" else Or(parts)
        case "not":
            return Not(_parse(value, definitions, path, depth + 1, budget))
        case "property":
            return _property(value, definitions, path)
        case "tag":
            if not isinstance(value, str) or not value.strip() or len(value) > 256:
                raise ValidationFailed("'tag' needs a tag of 1 to 256 characters", field=path)
            return TagCondition(check_text(value, field=path))
        case "event":
            return _event(value, path)
    raise ValidationFailed(f"Unknown filter node '{kind}'", field=path)


def _property(
    raw: Mapping[str, Any], definitions: Mapping[str, PropertyDefinition], field: str
) -> PropertyCondition:
    name = raw.get("name")
    if not isinstance(name, str):
        raise ValidationFailed("A property condition needs a name", field=f"{field}.name")
    check_property_name(name, field=f"{field}.name")
    definition = definitions.get(name)
    if definition is None:
        raise PropertyNotDefined(f"Property '{name}' is not defined", field=f"{field}.name")
    try:
        op = FilterOp(str(raw.get("op")))
    except ValueError:
        raise ValidationFailed("Unknown operator", field=f"{field}.op") from None
    value = raw.get("value")
    path = f"{field}.value"
    type_ = definition.type
    if op in (FilterOp.EXISTS, FilterOp.NOT_EXISTS):
        return PropertyCondition(name, type_, op)
    if op in _RANGE_OPS and type_ not in _ORDERED:
        raise ValidationFailed(
            f"{op.value} needs a number, date, datetime or time property; '{name}' is "
            f"{type_.value}",
            field=f"{field}.op",
        )
    if op is FilterOp.WITHIN_LAST_DAYS:
        if type_ not in _DATED:
            raise ValidationFailed(
                f"WITHIN_LAST_DAYS needs a date or datetime property; '{name}' is {type_.value}",
                field=f"{field}.op",
            )
        return PropertyCondition(name, type_, op, _days(value, path))
    if op is FilterOp.BETWEEN:
        if not isinstance(value, list) or len(value) != 2:
            raise ValidationFailed("BETWEEN needs [low, high]", field=path)
        low, high = (_typed(definition, v, path) for v in value)
        return PropertyCondition(name, type_, op, (low, high))
    if op is FilterOp.IN:
        if not isinstance(value, list) or not 0 < len(value) <= MAX_IN_VALUES:
            raise ValidationFailed(f"IN needs a list of 1 to {MAX_IN_VALUES} values", field=path)
        return PropertyCondition(name, type_, op, tuple(_typed(definition, v, path) for v in value))
    if op is FilterOp.CONTAINS:
        if type_ not in (
            PropertyType.STRING,
            PropertyType.LIST,
            PropertyType.EMAIL,
            PropertyType.URL,
            PropertyType.PHONE,
        ):
            raise ValidationFailed(
                f"CONTAINS needs a text or list property; '{name}' is {type_.value}",
                field=f"{field}.op",
            )
        if not isinstance(value, str) or not value or len(value) > 256:
            raise ValidationFailed("CONTAINS needs text of 1 to 256 characters", field=path)
        return PropertyCondition(name, type_, op, check_text(value, field=path))
    return PropertyCondition(name, type_, op, _typed(definition, value, path))


def _typed(definition: PropertyDefinition, value: Any, path: str) -> Any:
    if definition.type is PropertyType.LIST:
        if not isinstance(value, str):
            raise ValidationFailed(
                f"Property '{definition.name}' is a list: compare one item (a string)", field=path
            )
        return check_text(value, field=path)
    if definition.name in ("firstName", "lastName"):
        if not isinstance(value, str):
            raise ValidationFailed(f"Property '{definition.name}' expects a string", field=path)
        return check_text(value, field=path)
    if definition.name == "userId":
        if not isinstance(value, str):
            raise ValidationFailed("Property 'userId' expects a string", field=path)
        # Compared in the form userIds are stored in; text no userId can be matches none.
        return lookup_user_id(value) or validate_value(definition, value, field=path)
    return validate_value(definition, value, field=path)


def _days(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise ValidationFailed(f"Give a whole number of days from 1 to {MAX_DAYS}", field=path)
    return value


def _count(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise ValidationFailed("A count is a whole number from 0 to 1000000", field=path)
    return value


def _event(raw: Mapping[str, Any], field: str) -> EventCondition:
    if not isinstance(raw, Mapping):
        raise ValidationFailed("An event condition must be an object", field=field)
    name = raw.get("name")
    if not isinstance(name, str):
        raise ValidationFailed("An event condition needs a name", field=f"{field}.name")
    check_event_name(name, field=f"{field}.name")
    did = raw.get("did", True)
    if did is None:
        did = True
    if not isinstance(did, bool):
        raise ValidationFailed("did is true or false", field=f"{field}.did")
    min_count = _count(raw.get("minCount"), f"{field}.minCount")
    max_count = _count(raw.get("maxCount"), f"{field}.maxCount")
    within = raw.get("withinLastDays")
    days = None if within is None else _days(within, f"{field}.withinLastDays")
    if not did and (min_count is not None or max_count is not None):
        raise ValidationFailed(
            "did: false takes no counts; use maxCount: 0 or did: true with counts",
            field=f"{field}.did",
        )
    if min_count is not None and max_count is not None and min_count > max_count:
        raise ValidationFailed("minCount is larger than maxCount", field=f"{field}.minCount")
    return EventCondition(name, did, min_count, max_count, days)


def filter_to_json(node: Filter) -> dict[str, Any]:
    """The client form of a filter (as stored with a segment and shown back)."""
    match node:
        case And(parts):
            return {"and": [filter_to_json(p) for p in parts]}
        case Or(parts):
            return {"or": [filter_to_json(p) for p in parts]}
        case Not(part):
            return {"not": filter_to_json(part)}
        case TagCondition(tag):
            return {"tag": tag}
        case EventCondition(name, did, min_count, max_count, days):
            event: dict[str, Any] = {"name": name, "did": did}
            for key, value in (
                ("minCount", min_count),
                ("maxCount", max_count),
                ("withinLastDays", days),
            ):
                if value is not None:
                    event[key] = value
            return {"event": event}
        case PropertyCondition(name, _, op, value):
            prop: dict[str, Any] = {"name": name, "op": op.value}
            if value is not None:
                prop["value"] = _json(value)
            return {"property": prop}
    raise AssertionError(node)  # pragma: no cover


def _json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value
