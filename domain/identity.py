"""Channels, identity keys and the rules that turn a (channel, senderId) into one key."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from domain.errors import BlockedIdentifier, ValidationFailed
from domain.properties import CHANNEL_NAMES, normalise_email, normalise_phone
from domain.values import check_text

MAX_IDENTIFIER_LENGTH = 256

_BLOCKED = frozenset(
    {"null", "undefined", "anonymous", "none", "nan", "0", "-1", "[object object]", "nil"}
)
_ALL_ZEROS = re.compile(r"[+\s().-]*0[0\s().-]*")


class Channel(StrEnum):
    """Where a message came from."""

    WEB = "WEB"
    WHATSAPP = "WHATSAPP"
    SMS = "SMS"
    VOICE = "VOICE"
    EMAIL = "EMAIL"
    MESSENGER = "MESSENGER"
    INSTAGRAM = "INSTAGRAM"
    API = "API"


if {c.value for c in Channel} != CHANNEL_NAMES:  # pragma: no cover
    raise AssertionError("domain.properties.CHANNEL_NAMES must list every Channel")


class IdentityType(StrEnum):
    """What an identity key's value is. Phone keys are shared by WhatsApp, SMS and voice."""

    PHONE = "PHONE"
    EMAIL = "EMAIL"
    VISITOR = "VISITOR"
    MESSENGER = "MESSENGER"
    INSTAGRAM = "INSTAGRAM"
    API = "API"
    USER_ID = "USER_ID"


_TYPE_OF_CHANNEL = {
    Channel.WEB: IdentityType.VISITOR,
    Channel.WHATSAPP: IdentityType.PHONE,
    Channel.SMS: IdentityType.PHONE,
    Channel.VOICE: IdentityType.PHONE,
    Channel.EMAIL: IdentityType.EMAIL,
    Channel.MESSENGER: IdentityType.MESSENGER,
    Channel.INSTAGRAM: IdentityType.INSTAGRAM,
    Channel.API: IdentityType.API,
}


@dataclass(frozen=True, slots=True)
class IdentityKey:
    """One identifier of a person: its type and normalised value. It belongs to one profile."""

    type: IdentityType
    value: str

    def storage_id(self, tenant: str) -> str:
        return f"{tenant}|{self.type.value}|{self.value}"

    @classmethod
    def from_storage_id(cls, storage_id: str) -> IdentityKey:
        _, kind, value = storage_id.split("|", 2)
        return cls(IdentityType(kind), value)


@dataclass(frozen=True, slots=True)
class Identity:
    """An identity key as bound to a profile, with the channels it was seen on."""

    key: IdentityKey
    profile_id: str
    channels: tuple[Channel, ...]


def check_not_blocked(value: str, *, field: str) -> None:
    """Refuse placeholder values that bots send when they do not know the identifier."""
    folded = value.strip().lower()
    if not folded or folded in _BLOCKED or _ALL_ZEROS.fullmatch(folded):
        raise BlockedIdentifier(
            f"{field} {value[:40]!r} is a placeholder value and cannot identify anyone",
            field=field,
        )


def identity_key(channel: Channel, sender_id: str) -> IdentityKey:
    """The key a sender of a channel is known by; WhatsApp, SMS and voice share phone keys."""
    if len(sender_id) > MAX_IDENTIFIER_LENGTH:
        raise ValidationFailed(
            f"senderId is longer than {MAX_IDENTIFIER_LENGTH} characters", field="senderId"
        )
    check_text(sender_id, field="senderId")
    check_not_blocked(sender_id, field="senderId")
    kind = _TYPE_OF_CHANNEL[channel]
    if kind is IdentityType.PHONE:
        phone = normalise_phone(sender_id)
        if phone is None:
            raise ValidationFailed(
                f"senderId of a {channel.value} message must be a phone number with its "
                "country code, valid for that country",
                field="senderId",
            )
        check_not_blocked(phone, field="senderId")
        return IdentityKey(kind, phone)
    if kind is IdentityType.EMAIL:
        email = normalise_email(sender_id)
        if email is None:
            raise ValidationFailed(
                "senderId of an EMAIL message must be a valid email address", field="senderId"
            )
        return IdentityKey(kind, email)
    # A storage id ends with the value (`tenant|TYPE|value`), so '|' in a value is safe.
    if any(ch.isspace() for ch in sender_id):
        raise ValidationFailed("senderId must not contain white space", field="senderId")
    return IdentityKey(kind, sender_id)


def user_id_key(user_id: str) -> IdentityKey:
    """The key that makes a userId unique within a tenant."""
    return IdentityKey(IdentityType.USER_ID, user_id)


def normalise_user_id(user_id: str) -> str:
    """The one form a userId is stored and compared in, or the refusal.

    Text is NFC-normalised, so an accent typed as a combining mark and the same accented letter
    typed whole are one userId. An email address is an email: trimmed and lower-cased as the
    address of an EMAIL sender is (that address is the sender's userId), so both are one
    person. Characters nobody can see or type back are refused: control and format characters
    (categories Cc and Cf, among them the zero-width U+200B-U+200D, U+2060 and U+FEFF). Any
    other userId must not start or end with white space; '|' is allowed (see identity_key).
    """
    if len(user_id) > MAX_IDENTIFIER_LENGTH:
        raise ValidationFailed(
            f"userId is longer than {MAX_IDENTIFIER_LENGTH} characters", field="userId"
        )
    check_text(user_id, field="userId")
    text = unicodedata.normalize("NFC", user_id)
    check_not_blocked(text, field="userId")
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf"):
            raise ValidationFailed(
                f"userId must not contain control or invisible characters (U+{ord(ch):04X})",
                field="userId",
            )
    email = normalise_email(text) if "@" in text else None
    if email is not None:
        return email
    if text != text.strip():
        raise ValidationFailed("userId must not start or end with white space", field="userId")
    if len(text) > MAX_IDENTIFIER_LENGTH:
        raise ValidationFailed(
            f"userId is longer than {MAX_IDENTIFIER_LENGTH} characters", field="userId"
        )
    return text


def check_user_id(user_id: str) -> str:
    """The userId a client sent, in its normal form (see normalise_user_id), or the refusal."""
    return normalise_user_id(user_id)


def lookup_user_id(user_id: str) -> str | None:
    """The normal form of a userId being looked up, or None when no userId can be that text
    (a lookup of it finds nothing rather than failing)."""
    try:
        return normalise_user_id(user_id)
    except (ValidationFailed, BlockedIdentifier):
        return None
