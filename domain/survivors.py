"""What the state machines need from each other: the live profile an id leads to."""

from __future__ import annotations

from typing import Protocol

from domain.model import Profile


class Survivors(Protocol):
    async def active(self, tenant: str, profile_id: str) -> Profile | None:
        """The active profile an id leads to, finishing any operation met on the way; None
        if the id leads to an erased profile (or to none)."""
        ...
