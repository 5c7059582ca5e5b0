"""Opaque cursors: base64 of a kind prefix and the keyset position."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from domain.errors import ValidationFailed


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode(cursor: str, prefix: str) -> str | None:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, ValueError):
        return None
    return text.removeprefix(prefix) if text.startswith(prefix) else None


def encode_profile_cursor(profile_id: str) -> str:
    return _encode(f"profile:{profile_id}")


def decode_profile_cursor(cursor: str) -> str | None:
    return _decode(cursor, "profile:")


def encode_time_cursor(at: datetime, key: str) -> str:
    return _encode(f"time:{at.isoformat()}|{key}")


def decode_time_cursor(cursor: str) -> tuple[datetime, str] | None:
    text = _decode(cursor, "time:")
    if text is None or "|" not in text:
        return None
    at, _, key = text.partition("|")
    try:
        return datetime.fromisoformat(at), key
    except ValueError:
        return None


def _refuse() -> ValidationFailed:
    return ValidationFailed("after is not a cursor this API returned", field="after")


def profile_after(after: str | None) -> str | None:
    """The profile id an `after` argument points past, or VALIDATION_FAILED."""
    if after is None:
        return None
    decoded = decode_profile_cursor(after)
    if decoded is None:
        raise _refuse()
    return decoded


def time_after(after: str | None) -> tuple[datetime, str] | None:
    """The (time, key) an `after` argument points past, or VALIDATION_FAILED."""
    if after is None:
        return None
    decoded = decode_time_cursor(after)
    if decoded is None:
        raise _refuse()
    return decoded
