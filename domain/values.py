"""What any client text, number, JSON value or time must be before it is stored.

One place for the rules the database imposes (documents are BSON: integers are int64, keys
cannot hold NUL, '.' or a leading '$', text must encode as UTF-8, datetimes are milliseconds in
UTC) and the ones the service adds (finite numbers, bounded nesting). Each refusal is a
ValidationFailed naming the offending input, raised before anything is written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from domain.errors import ValidationFailed

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# NUL ends a C string (and a BSON key); a lone surrogate is not a character and has no UTF-8.
_FORBIDDEN_TEXT = re.compile("[\x00\ud800-\udfff]")


def check_text(value: str, *, field: str) -> str:
    """Text that can be stored: no NUL character and no lone surrogate (U+D800 to U+DFFF)."""
    found = _FORBIDDEN_TEXT.search(value)
    if found is None:
        return value
    if found.group() == "\x00":
        raise ValidationFailed(f"{field} must not contain a NUL character (U+0000)", field=field)
    raise ValidationFailed(
        f"{field} holds a lone surrogate (U+{ord(found.group()):04X}), which is not valid "
        "Unicode text",
        field=field,
    )


def is_text(value: str) -> bool:
    """Whether check_text would accept the value: for ids and names that are only looked up,
    where text that cannot be stored simply matches nothing."""
    return _FORBIDDEN_TEXT.search(value) is None


def check_optional_text(value: str | None, *, field: str, max_length: int) -> str | None:
    """None, or text of at most max_length characters that passes check_text."""
    if value is None:
        return None
    if len(value) > max_length:
        raise ValidationFailed(f"{field} is longer than {max_length} characters", field=field)
    return check_text(value, field=field)


def check_key_text(key: str, *, field: str) -> str:
    """A key that passes check_text. The refusal names `field`, the object holding the key,
    since the key itself cannot be shown as text."""
    if _FORBIDDEN_TEXT.search(key):
        raise ValidationFailed(
            f"{field}: the key {ascii(key[:40])} holds a NUL character or a lone surrogate",
            field=field,
        )
    return key


def check_key(key: object, *, field: str) -> str:
    """A key of a stored object: non-empty text, no leading '$', no '.', no NUL or surrogate.
    The refusal names `field`, the object holding the key."""
    if not isinstance(key, str) or not key or key.startswith("$") or "." in key:
        raise ValidationFailed(
            f"{field}: keys must be non-empty and must not start with '$' or hold '.'",
            field=field,
        )
    return check_key_text(key, field=field)


def check_number(value: int | float, *, field: str) -> int | float:
    """A whole number that fits in 64 bits, or a finite float."""
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValidationFailed(
                f"{field} is an integer outside the 64-bit range [-2^63, 2^63-1]", field=field
            )
        return value
    if not math.isfinite(value):
        raise ValidationFailed(f"{field} must be a finite number, not {value}", field=field)
    return value


def check_json(value: object, *, field: str, max_depth: int) -> Any:
    """A copy of a JSON value (objects, lists, text, numbers, booleans, null) that can be
    stored, nested at most max_depth objects and lists deep (the outermost counts as one)."""
    return _check_json(value, field, max_depth, max_depth)


def _check_json(value: object, field: str, remaining: int, max_depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return check_text(value, field=field)
    if isinstance(value, (int, float)):
        return check_number(value, field=field)
    if isinstance(value, (Mapping, list)):
        if remaining <= 0:
            raise ValidationFailed(
                f"{field} is nested too deeply: at most {max_depth} levels of objects and lists",
                field=field,
            )
        if isinstance(value, list):
            return [
                _check_json(item, f"{field}[{i}]", remaining - 1, max_depth)
                for i, item in enumerate(value)
            ]
        result: dict[str, Any] = {}
        for key, item in value.items():
            name = check_key(key, field=field)
            result[name] = _check_json(item, f"{field}.{name}", remaining - 1, max_depth)
        return result
    raise ValidationFailed(
        f"{field} holds a {type(value).__name__}, which is not a JSON value", field=field
    )


def check_datetime(value: datetime, *, field: str) -> datetime:
    """The same instant in UTC; it needs a time zone and must fall within years 1 to 9999 once
    converted (a BSON datetime, milliseconds since 1970 in 64 bits, holds all of them)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed(f"{field} needs a time zone (e.g. 'Z')", field=field)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValidationFailed(
            f"{field} is out of range: in UTC it must fall between 0001-01-01 and 9999-12-31",
            field=field,
        ) from None
