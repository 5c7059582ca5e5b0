"""Events and conversations: what a person did, and the chats and tickets they had."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from domain.errors import ValidationFailed
from domain.identity import Channel

EVENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:@/+=-]{1,128}$")
MAX_EVENT_PROPERTIES = 50
MAX_EVENT_PROPERTIES_BYTES = 8192
MAX_EVENT_DEPTH = 3
MAX_SUBJECT_LENGTH = 500
FUTURE_TOLERANCE = timedelta(days=1)


class ConversationKind(StrEnum):
    """A live chat or a support ticket."""

    CHAT = "CHAT"
    TICKET = "TICKET"


class ConversationStatus(StrEnum):
    """Where a conversation stands."""

    OPEN = "OPEN"
    PENDING = "PENDING"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True)
class Event:
    """One thing a person did, at a time."""

    id: str
    profile_id: str
    name: str
    properties: Mapping[str, Any]
    occurred_at: datetime
    received_at: datetime
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    """A chat or ticket linked to a profile."""

    id: str
    profile_id: str
    channel: Channel
    kind: ConversationKind
    status: ConversationStatus
    subject: str | None
    started_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None


def event_storage_id(tenant: str, client_id: str) -> str:
    """An event's key: the client's event id, so a retry is the same key."""
    return f"{tenant}|e|{client_id}"


def check_event_name(name: str, *, field: str) -> str:
    if not EVENT_NAME.match(name):
        raise ValidationFailed(
            f"Event name {name[:80]!r} is invalid: use a letter followed by up to 63 letters, "
            "digits, '_' or '-'",
            field=field,
        )
    return name


def check_client_id(value: str, *, field: str) -> str:
    if not CLIENT_ID.match(value):
        raise ValidationFailed(
            f"{field} is 1 to 128 letters, digits or . _ : @ / + = -", field=field
        )
    return value


def check_event_properties(value: object, *, field: str = "properties") -> dict[str, Any]:
    """A small JSON object whose keys can be stored as document keys."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationFailed(f"{field} must be a JSON object", field=field)
    if len(value) > MAX_EVENT_PROPERTIES:
        raise ValidationFailed(
            f"{field} holds at most {MAX_EVENT_PROPERTIES} properties", field=field
        )
    _check_keys(value, field, 1)
    if len(json.dumps(value, default=str)) > MAX_EVENT_PROPERTIES_BYTES:
        raise ValidationFailed(
            f"{field} is larger than {MAX_EVENT_PROPERTIES_BYTES} bytes", field=field
        )
    return dict(value)


def _check_keys(value: Any, field: str, depth: int) -> None:
    if isinstance(value, Mapping):
        if depth > MAX_EVENT_DEPTH:
            raise ValidationFailed(f"{field} nests at most {MAX_EVENT_DEPTH} levels", field=field)
        for key, item in value.items():
            if not isinstance(key, str) or not key or key.startswith("$") or "." in key:
                raise ValidationFailed(
                    f"{field}: keys must be non-empty and must not start with '$' or hold '.'",
                    field=field,
                )
            _check_keys(item, field, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_keys(item, field, depth + 1)
    elif isinstance(value, float) and value != value:  # NaN
        raise ValidationFailed(f"{field} holds a value that is not a number", field=field)


def check_occurred_at(value: datetime | None, now: datetime, *, field: str) -> datetime:
    if value is None:
        return now
    if value.tzinfo is None:
        raise ValidationFailed(f"{field} needs a time zone (e.g. 'Z')", field=field)
    if value > now + FUTURE_TOLERANCE:
        raise ValidationFailed(f"{field} is more than a day in the future", field=field)
    return value
