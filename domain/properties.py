"""Property types, the system properties, and validation of values against their type."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from functools import cache
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import available_timezones

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from domain.errors import ValidationFailed
from domain.values import check_datetime, check_number, check_text

MAX_STRING_LENGTH = 1000
MAX_LIST_ITEMS = 100
MAX_LIST_ITEM_LENGTH = 256

PROPERTY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"\d{2}:\d{2}:\d{2}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_NAME_PUNCTUATION = frozenset(" -'\u2019")


class PropertyType(StrEnum):
    """The ten value types a property can have."""

    STRING = "STRING"
    NUMBER = "NUMBER"
    TIME = "TIME"
    DATE = "DATE"
    DATETIME = "DATETIME"
    LIST = "LIST"
    BOOLEAN = "BOOLEAN"
    PHONE = "PHONE"
    URL = "URL"
    EMAIL = "EMAIL"


@dataclass(frozen=True, slots=True)
class PropertyDefinition:
    """A property's name and type: system ones are predefined, custom ones defined once."""

    name: str
    type: PropertyType
    description: str = ""
    system: bool = False
    created_at: datetime | None = None


def _system(name: str, type_: PropertyType, description: str) -> PropertyDefinition:
    return PropertyDefinition(name=name, type=type_, description=description, system=True)


_T = PropertyType
SYSTEM_PROPERTIES: Mapping[str, PropertyDefinition] = {
    d.name: d
    for d in (
        _system("userId", _T.STRING, "Unique identifier of an identified user; immutable once set"),
        _system("firstName", _T.STRING, "First name (letters, spaces, hyphens, apostrophes)"),
        _system("lastName", _T.STRING, "Last name (letters, spaces, hyphens, apostrophes)"),
        _system("gender", _T.STRING, "Gender"),
        _system("country", _T.STRING, "ISO 3166-1 alpha-2 country code, e.g. IN"),
        _system("city", _T.STRING, "City"),
        _system("ip", _T.STRING, "Last known IP address"),
        _system("latitude", _T.NUMBER, "Latitude in degrees"),
        _system("longitude", _T.NUMBER, "Longitude in degrees"),
        _system("language", _T.STRING, "Preferred language, e.g. en or en-IN"),
        _system("timezone", _T.STRING, "IANA time zone, e.g. Asia/Kolkata"),
        _system("email", _T.EMAIL, "Email address"),
        _system("phone", _T.PHONE, "Phone number in E.164"),
        _system("lastChannel", _T.STRING, "Channel of the most recent contact (a Channel name)"),
        _system("dob", _T.DATE, "Date of birth"),
        _system("lastSession", _T.DATETIME, "Time of the most recent capture"),
        _system("emailOptin", _T.BOOLEAN, "Subscribed to email"),
        _system("smsOptin", _T.BOOLEAN, "Subscribed to SMS"),
        _system("whatsAppOptin", _T.BOOLEAN, "Subscribed to WhatsApp"),
        _system("createdAt", _T.DATETIME, "When the profile was created (read-only)"),
        _system("updatedAt", _T.DATETIME, "When the profile last changed (read-only)"),
        _system("tags", _T.LIST, "Tags (groups) of the profile"),
    )
}

READ_ONLY = frozenset({"createdAt", "updatedAt"})
# Properties whose values live in the profile's own fields rather than in its property map.
NOT_IN_PROPERTY_MAP = frozenset({"userId", "createdAt", "updatedAt"})


def check_property_name(name: str, *, field: str) -> None:
    """Refuse names that are not identifiers (they become document keys)."""
    if not PROPERTY_NAME.fullmatch(name):
        raise ValidationFailed(
            f"Property name {name[:80]!r} is invalid: use a letter followed by up to 63 letters, "
            "digits or underscores",
            field=field,
        )


def is_valid_person_name(value: str) -> bool:
    """Letters of any script (with their combining marks), spaces, hyphens and apostrophes."""
    if not value.strip() or len(value) > 100:
        return False
    has_letter = False
    for ch in value:
        category = unicodedata.category(ch)
        if category.startswith("L"):
            has_letter = True
        elif not (category.startswith("M") or ch in _NAME_PUNCTUATION):
            return False
    return has_letter


def normalise_phone(value: str) -> str | None:
    """E.164 form of a number that is valid for its country, or None."""
    raw = value.strip()
    digits = re.sub(r"[\s().-]", "", raw)
    if not digits.startswith("+"):
        digits = "+" + digits
    if not re.fullmatch(r"\+\d{6,15}", digits):
        return None
    try:
        number = phonenumbers.parse(digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_region(e164: str) -> str | None:
    """ISO 3166-1 alpha-2 region of a valid E.164 number."""
    region = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    return region if region and region != "ZZ" else None


def normalise_email(value: str) -> str | None:
    """The syntax-checked address, lower-cased, or None."""
    if len(value) > 254:
        return None
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return str(result.normalized).lower()


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_timezone(value: str) -> bool:
    return value in _timezones()


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _fail(name: str, field: str, rule: str) -> ValidationFailed:
    return ValidationFailed(f"Property '{name}' {rule}", field=field)


def _expect_string(name: str, field: str, value: object, kind: str) -> str:
    if not isinstance(value, str):
        raise _fail(name, field, f"expects {kind}, got {_describe(value)}")
    return check_text(value, field=field)


def parse_datetime(value: str) -> datetime | None:
    """`YYYY-MM-DD hh:mm:ss` (UTC) or ISO 8601 with a time, with its time zone (UTC if none
    was given); check_datetime brings it to UTC."""
    text = value.strip()
    if len(text) < 19 or text[10] not in "T ":
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def validate_value(definition: PropertyDefinition, value: Any, *, field: str) -> Any:
    """The normalised value, or ValidationFailed naming the property and the rule it breaks."""
    name = definition.name
    if value is None:
        raise _fail(name, field, "cannot be null; use unset to remove a value")
    match definition.type:
        case PropertyType.STRING:
            text = _expect_string(name, field, value, "a string")
            if len(text) > MAX_STRING_LENGTH:
                raise _fail(name, field, f"is longer than {MAX_STRING_LENGTH} characters")
            return _validate_system_string(name, field, text)
        case PropertyType.NUMBER:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _fail(name, field, f"expects a number, got {_describe(value)}")
            if abs(check_number(value, field=field)) > 1e15:
                raise _fail(name, field, "expects a finite number no larger than 1e15")
            if name == "latitude" and not -90 <= value <= 90:
                raise _fail(name, field, "must be between -90 and 90")
            if name == "longitude" and not -180 <= value <= 180:
                raise _fail(name, field, "must be between -180 and 180")
            return value
        case PropertyType.TIME:
            text = _expect_string(name, field, value, "a time hh:mm:ss")
            try:
                if not _TIME.fullmatch(text):
                    raise ValueError(text)
                return time.fromisoformat(text).isoformat()
            except ValueError:
                raise _fail(name, field, "expects a time hh:mm:ss, e.g. 09:30:00") from None
        case PropertyType.DATE:
            text = _expect_string(name, field, value, "a date YYYY-MM-DD")
            try:
                if not _DATE.fullmatch(text):
                    raise ValueError(text)
                return date.fromisoformat(text).isoformat()
            except ValueError:
                raise _fail(name, field, "expects a date YYYY-MM-DD, e.g. 1990-04-21") from None
        case PropertyType.DATETIME:
            text = _expect_string(name, field, value, "a datetime YYYY-MM-DD hh:mm:ss")
            parsed = parse_datetime(text)
            if parsed is None:
                raise _fail(
                    name, field, "expects a datetime YYYY-MM-DD hh:mm:ss or ISO 8601 with a time"
                )
            return check_datetime(parsed, field=field)
        case PropertyType.LIST:
            if not isinstance(value, list):
                raise _fail(name, field, f"expects a list of strings, got {_describe(value)}")
            if len(value) > MAX_LIST_ITEMS:
                raise _fail(name, field, f"holds at most {MAX_LIST_ITEMS} items")
            items: list[str] = []
            for item in value:
                if not isinstance(item, str):
                    raise _fail(name, field, f"expects a list of strings, got a {_describe(item)}")
                check_text(item, field=field)
                if not item.strip() or len(item) > MAX_LIST_ITEM_LENGTH:
                    raise _fail(
                        name, field, f"items must be 1 to {MAX_LIST_ITEM_LENGTH} characters"
                    )
                if item not in items:
                    items.append(item)
            return items
        case PropertyType.BOOLEAN:
            if not isinstance(value, bool):
                raise _fail(name, field, f"expects true or false, got {_describe(value)}")
            return value
        case PropertyType.PHONE:
            text = _expect_string(name, field, value, "a phone number")
            phone = normalise_phone(text)
            if phone is None:
                raise _fail(
                    name,
                    field,
                    "expects a phone number with its country code, valid for that country "
                    "(E.164, e.g. +14155552671)",
                )
            return phone
        case PropertyType.URL:
            text = _expect_string(name, field, value, "a URL")
            parts = urlsplit(text)
            if (
                len(text) > 2048
                or parts.scheme not in ("http", "https")
                or not parts.hostname
                or any(ch.isspace() for ch in text)
            ):
                raise _fail(name, field, "expects an absolute http or https URL")
            return text
        case PropertyType.EMAIL:
            text = _expect_string(name, field, value, "an email address")
            email = normalise_email(text)
            if email is None:
                raise _fail(name, field, "expects a valid email address")
            return email
    raise AssertionError(definition.type)  # pragma: no cover


# The names of domain.identity.Channel (which imports this module): lastChannel is one of them.
CHANNEL_NAMES = frozenset(
    {"WEB", "WHATSAPP", "SMS", "VOICE", "EMAIL", "MESSENGER", "INSTAGRAM", "API"}
)


def _validate_system_string(name: str, field: str, text: str) -> str:
    if name == "lastChannel":
        if text not in CHANNEL_NAMES:
            raise _fail(name, field, f"expects a channel: {', '.join(sorted(CHANNEL_NAMES))}")
        return text
    if name in ("firstName", "lastName"):
        if not is_valid_person_name(text):
            raise _fail(
                name, field, "accepts only letters, spaces, hyphens and apostrophes (max 100)"
            )
        return text.strip()
    if name == "country":
        if not _COUNTRY.fullmatch(text):
            raise _fail(name, field, "expects an ISO 3166-1 alpha-2 country code, e.g. IN")
        return text.upper()
    if name == "timezone" and not is_timezone(text):
        raise _fail(name, field, "expects an IANA time zone name, e.g. Asia/Kolkata")
    if name == "ip":
        try:
            return str(ipaddress.ip_address(text.strip()))
        except ValueError:
            raise _fail(name, field, "expects an IPv4 or IPv6 address") from None
    return text
