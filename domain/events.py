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
from domain.values import check_datetime, check_json, check_optional_text

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
    # The storage id of the sender's key it came through (None when tracked by profile id):
    # the event goes where that key goes when a merge is undone.
    identity: str | None = None


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


def event_key(storage_id: str) -> str:
    """The part of an event's storage id that names it within its tenant."""
    return storage_id.split("|e|", 1)[1]


def conversation_key(tenant: str, conversation_id: str) -> str:
    """A conversation's key: the client's id, so a second call updates it."""
    return f"{tenant}|c|{conversation_id}"


def check_event_name(name: str, *, field: str) -> str:
    if not EVENT_NAME.fullmatch(name):
        raise ValidationFailed(
            f"Event name {name[:80]!r} is invalid: use a letter followed by up to 63 letters, "
            "digits, '_' or '-'",
            field=field,
        )
    return name


def check_client_id(value: str, *, field: str) -> str:
    if not CLIENT_ID.fullmatch(value):
        raise ValidationFailed(
            f"{field} is 1 to 128 letters, digits or . _ : @ / + = -", field=field
        )
    return value


def check_event_properties(value: object, *, field: str = "properties") -> dict[str, Any]:
    """A small JSON object that can be stored as it is: at most MAX_EVENT_PROPERTIES keys and
    MAX_EVENT_PROPERTIES_BYTES of JSON, nested at most MAX_EVENT_DEPTH objects and lists deep
    (the object itself is the first level), and every key, text and number storable."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationFailed(f"{field} must be a JSON object", field=field)
    if len(value) > MAX_EVENT_PROPERTIES:
        raise ValidationFailed(
            f"{field} holds at most {MAX_EVENT_PROPERTIES} properties", field=field
        )
    checked: dict[str, Any] = check_json(value, field=field, max_depth=MAX_EVENT_DEPTH)
    if len(json.dumps(checked)) > MAX_EVENT_PROPERTIES_BYTES:
        raise ValidationFailed(
            f"{field} is larger than {MAX_EVENT_PROPERTIES_BYTES} bytes", field=field
        )
    return checked


def check_occurred_at(value: datetime | None, now: datetime, *, field: str) -> datetime:
    """The time in UTC (now when not given): with a time zone, within years 1 to 9999 in UTC,
    and at most a day in the future."""
    if value is None:
        return now
    value = check_datetime(value, field=field)
    if value > now + FUTURE_TOLERANCE:
        raise ValidationFailed(f"{field} is more than a day in the future", field=field)
    return value


def check_subject(value: str | None, *, field: str = "subject") -> str | None:
    """A conversation's subject: None, or at most MAX_SUBJECT_LENGTH characters of text."""
    return check_optional_text(value, field=field, max_length=MAX_SUBJECT_LENGTH)
