"""GraphQL input types."""

from __future__ import annotations

import strawberry

from domain.autocapture import CaptureContext
from schema.enums import Channel, PropertyType
from schema.scalars import JSON


@strawberry.input(description="What the bot knows about the message besides its properties")
class CaptureContextInput:
    ip: str | None = None
    timezone: str | None = None
    display_name: str | None = None
    locale: str | None = None

    def to_domain(self) -> CaptureContext:
        return CaptureContext(
            ip=self.ip, timezone=self.timezone, display_name=self.display_name, locale=self.locale
        )


@strawberry.input
class CaptureInput:
    channel: Channel
    sender_id: str
    properties: JSON | None = None
    context: CaptureContextInput | None = None


@strawberry.input
class IdentifyInput:
    channel: Channel
    sender_id: str
    user_id: str
    properties: JSON | None = None


@strawberry.input
class UpdateProfileInput:
    id: strawberry.ID
    set: JSON | None = None
    unset: list[str] | None = None
    add_tags: list[str] | None = None
    remove_tags: list[str] | None = None


@strawberry.input
class DefinePropertyInput:
    name: str
    type: PropertyType
    description: str | None = None
