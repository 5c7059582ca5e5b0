"""Scalars and the conversion of property values to JSON."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from strawberry.scalars import JSON

__all__ = ["JSON", "json_value", "json_values"]


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, list):
        return [json_value(v) for v in value]
    return value


def json_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: json_value(v) for k, v in values.items()}
