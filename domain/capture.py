"""Capture: what a bot learned about a sender, written to the sender's profile.

A sender seen for the first time gets a profile that is born with its key (domain.births):
the profile exists before the key points to it, and the capture's write is its activation.
Values are validated before anything is written.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.autocapture import CaptureContext, auto_values
from domain.definitions import Definitions
from domain.errors import Contention, LimitExceeded, ValidationFailed
from domain.identity import Channel, IdentityKey, identity_key
from domain.lifecycle import Lifecycle
from domain.matching import keys_of_identity, keys_of_values
from domain.merge import LAST_CONTACT, MergePlan, list_overflow
from domain.model import CaptureWrite, KeyBinding, Profile, Touch
from domain.ports import Clock, GeoLookup, ProfileStore
from domain.values import check_optional_text

MAX_ATTEMPTS = 25


@dataclass(frozen=True, slots=True)
class CaptureResult:
    profile: Profile
    created: bool


class Senders:
    """The profile a sender's key leads to, born with the key on first contact."""

    def __init__(self, store: ProfileStore, clock: Clock, lifecycle: Lifecycle) -> None:
        self._store = store
        self._clock = clock
        self._lifecycle = lifecycle

    async def profile_of(
        self, tenant: str, key: IdentityKey, channel: Channel | None, write: CaptureWrite
    ) -> tuple[Profile, bool]:
        """Apply `write` to the sender's profile (a new one on first contact); the profile as
        written, and whether it was created."""
        for _ in range(MAX_ATTEMPTS):
            identity = await self._store.find_identity(tenant, key)
            if identity is None:
                first = KeyBinding(key=key, channel=channel)
                holder, born = await self._lifecycle.births.begin(tenant, [first])
                if holder != born:
                    continue  # another first contact won the key: write to its profile
                profile = await self._store.write_capture(
                    tenant, born, write, self._clock.now(), activate=True
                )
                if profile is not None:
                    return profile, True
                await self._lifecycle.births.unbind_abandoned(tenant, first, born)
                continue
            if channel is not None and channel not in identity.channels:
                await self._store.add_identity_channel(tenant, key, channel)
            written = await self.write(tenant, identity.profile_id, write)
            if written is not None:
                return written, False
            await self._store.release_identity(tenant, key, identity.profile_id)  # erased
        raise Contention("the sender's key kept changing")

    async def write(self, tenant: str, profile_id: str, write: CaptureWrite) -> Profile | None:
        """Write to the active profile an id leads to, following it if it moves; None if it
        was erased."""
        for _ in range(MAX_ATTEMPTS):
            profile = await self._store.write_capture(tenant, profile_id, write, self._clock.now())
            if profile is not None:
                return profile
            survivor = await self._lifecycle.active(tenant, profile_id)
            if survivor is None:
                return None
            profile_id = survivor.id
        raise Contention("the write kept meeting merges")

    async def fill(self, tenant: str, profile_id: str, plan: MergePlan) -> Profile | None:
        """Fill the active profile an id leads to by the merge rules, following it if it
        moves; None if it was erased. A list that would pass its cap is refused."""
        cap = self._lifecycle.merger.limits.list_items
        for _ in range(MAX_ATTEMPTS):
            current = await self._lifecycle.active(tenant, profile_id)
            if current is None:
                return None
            overflow = list_overflow(current.properties, plan, cap)
            if overflow is not None:
                raise LimitExceeded(
                    f"The list '{overflow}' would hold more than {cap} items", field="properties"
                )
            filled = await self._store.fill_profile(
                tenant, current.id, plan, self._clock.now(), cap
            )
            if filled is not None:
                return filled
            profile_id = current.id
        raise Contention("the write kept meeting merges")

    async def profile_id(
        self, tenant: str, channel: Channel, sender_id: str
    ) -> tuple[str, IdentityKey]:
        """The id of the sender's active profile (a new one on first contact), and its key."""
        key = identity_key(channel, sender_id)
        write = CaptureWrite(set={})
        for _ in range(MAX_ATTEMPTS):
            identity = await self._store.find_identity(tenant, key)
            if identity is None:
                profile, _ = await self.profile_of(tenant, key, channel, write)
                return profile.id, key
            if channel not in identity.channels:
                await self._store.add_identity_channel(tenant, key, channel)
            survivor = await self._lifecycle.active(tenant, identity.profile_id)
            if survivor is not None:
                return survivor.id, key
            await self._store.release_identity(tenant, key, identity.profile_id)  # erased
        raise Contention("the sender's key kept changing")


class Capture:
    """captureProperties."""

    def __init__(
        self, senders: Senders, definitions: Definitions, clock: Clock, geo: GeoLookup
    ) -> None:
        self._senders = senders
        self._definitions = definitions
        self._clock = clock
        self._geo = geo

    async def capture(
        self,
        tenant: str,
        channel: Channel,
        sender_id: str,
        properties: object,
        context: CaptureContext,
    ) -> CaptureResult:
        key = identity_key(channel, sender_id)
        values = await self._definitions.validate(tenant, properties, field="properties")
        check_context(context)
        now = self._clock.now()
        auto = auto_values(channel, key, context, self._geo)
        fill = {k: v for k, v in auto.fill.items() if k not in values}
        # A group with any member given explicitly is left out whole.
        groups = tuple(g for g in auto.groups if values.keys().isdisjoint(g))
        write = CaptureWrite(
            set={k: v for k, v in values.items() if k not in LAST_CONTACT},
            touch=contact(values, channel, now),
            fill=fill,
            fill_groups=groups,
            match_keys=(*keys_of_identity(key), *keys_of_values({**fill, **values})),
        )
        profile, created = await self._senders.profile_of(tenant, key, channel, write)
        return CaptureResult(profile=profile, created=created)


def contact(values: Mapping[str, Any], channel: Channel, now: datetime) -> Touch:
    """This capture's contact: the bot's channel and the current time, unless the caller gives
    its own (a touchpoint outside the bots, such as a visit to a shop)."""
    explicit_at = values.get("lastSession")
    explicit_channel = values.get("lastChannel")
    return Touch(
        channel=explicit_channel if isinstance(explicit_channel, str) else channel.value,
        at=explicit_at if isinstance(explicit_at, datetime) else now,
    )


def check_context(context: CaptureContext) -> None:
    if context.ip is not None:
        try:
            ipaddress.ip_address(context.ip.strip())
        except ValueError:
            raise ValidationFailed(
                "context.ip must be an IPv4 or IPv6 address", field="context.ip"
            ) from None
    for name in ("timezone", "displayName", "locale"):
        value = getattr(context, "display_name" if name == "displayName" else name)
        check_optional_text(value, field=f"context.{name}", max_length=200)
