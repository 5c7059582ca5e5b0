"""Values a channel reveals by itself: location from a web visitor's IP; the phone number and
its country from WhatsApp, SMS and voice senders, and names from WhatsApp's display name; the
address of an email sender. They only fill gaps; they never overwrite what a profile already
has, and values that belong together (domain.merge.GROUPS) fill a profile as a group or not at
all."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.identity import Channel, IdentityKey, IdentityType
from domain.merge import split_groups
from domain.ports import GeoLookup
from domain.properties import is_timezone, is_valid_person_name, phone_region


@dataclass(frozen=True, slots=True)
class CaptureContext:
    """What the bot knows about the message besides its properties."""

    ip: str | None = None
    timezone: str | None = None
    display_name: str | None = None
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class AutoValues:
    """What a channel revealed: values that fill one by one, and groups that fill whole (each
    names every member of its group, None for those the channel did not reveal)."""

    fill: Mapping[str, Any] = field(default_factory=dict)
    groups: tuple[Mapping[str, Any], ...] = ()


def auto_values(
    channel: Channel, key: IdentityKey, context: CaptureContext, geo: GeoLookup
) -> AutoValues:
    values: dict[str, Any] = {}
    if channel is Channel.WEB:
        values.update(_from_ip(context, geo))
    if key.type is IdentityType.PHONE:
        values["phone"] = key.value
        region = phone_region(key.value)
        if region:
            values["country"] = region
        if channel is Channel.WHATSAPP and context.display_name:
            values.update(split_display_name(context.display_name))
    if key.type is IdentityType.EMAIL:
        values["email"] = key.value
    if context.locale:
        language = context.locale.strip().replace("_", "-")
        if 1 < len(language) <= 35 and all(c.isalnum() or c == "-" for c in language):
            values["language"] = language
    fill, groups = split_groups(values)
    return AutoValues(fill=fill, groups=groups)


def _from_ip(context: CaptureContext, geo: GeoLookup) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if context.timezone and is_timezone(context.timezone):
        values["timezone"] = context.timezone
    if not context.ip:
        return values
    location = geo.locate(context.ip)
    if location is None:
        return values
    values["ip"] = context.ip
    for name in ("country", "timezone", "city", "latitude", "longitude"):
        value = getattr(location, name)
        if value is not None:
            values.setdefault(name, value)
    return values


def split_display_name(display_name: str) -> dict[str, str]:
    """firstName and lastName from a display name, or nothing when any part is not a name."""
    parts = display_name.split()
    if not parts or not all(is_valid_person_name(p) for p in parts):
        return {}
    names = {"firstName": parts[0]}
    if len(parts) > 1:
        names["lastName"] = " ".join(parts[1:])
    return names
