"""Global ids: every id the API shows is opaque and names its kind, so `node(id:)` can find
any object from its id alone. The form is base64url (no padding) of `Kind:key`, where the key
is the object's key within its tenant (the tenant itself never appears: it comes from the
caller's API key, so another tenant's id simply finds nothing)."""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum

from domain.errors import NotFound


class Kind(StrEnum):
    """The kinds of object that have a global id (the Node types)."""

    PROFILE = "Profile"
    SEGMENT = "Segment"
    CONVERSATION = "Conversation"
    EVENT = "Event"


def to_global(kind: Kind, key: str) -> str:
    """The global id of the object `key` of `kind`."""
    return base64.urlsafe_b64encode(f"{kind.value}:{key}".encode()).decode().rstrip("=")


def parse(global_id: str) -> tuple[Kind, str] | None:
    """The kind and key a global id names, or None when it is not one this API gave out."""
    padded = global_id + "=" * (-len(global_id) % 4)
    try:
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
    except (binascii.Error, ValueError):
        return None
    kind, sep, key = text.partition(":")
    if not sep or not key or kind not in Kind.__members__.values():
        return None
    return Kind(kind), key


def key_of(kind: Kind, global_id: str) -> str | None:
    """The key of a global id of `kind`, or None for an id of another kind or a malformed one."""
    parsed = parse(global_id)
    if parsed is None or parsed[0] is not kind:
        return None
    return parsed[1]


def require(kind: Kind, global_id: str, *, field: str) -> str:
    """The key of a global id of `kind`; any other id is NOT_FOUND (it names no such object)."""
    key = key_of(kind, global_id)
    if key is None:
        raise NotFound(f"No {kind.value.lower()} with id {global_id[:80]!r}", field=field)
    return key


def profile_key(global_id: str) -> str | None:
    return key_of(Kind.PROFILE, global_id)


def profile_id(key: str) -> str:
    return to_global(Kind.PROFILE, key)
