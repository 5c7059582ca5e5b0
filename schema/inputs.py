"""GraphQL input types."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.activity import ConversationInput
from domain.autocapture import CaptureContext
from domain.events import ConversationKind, ConversationStatus
from schema.enums import Channel, PropertyType
from schema.filters import ProfileFilter
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


@strawberry.input(description="Who did it (channel and senderId, or profileId) and what")
class TrackEventInput:
    name: str
    channel: Channel | None = None
    sender_id: str | None = None
    profile_id: strawberry.ID | None = None
    properties: JSON | None = None
    occurred_at: datetime | None = None
    event_id: str | None = strawberry.field(
        default=None, description="Client id: a retry with the same id counts once"
    )


@strawberry.input(
    description="A chat or ticket; a second call with the same id updates it. A new one is "
    "linked through senderId (on its channel) or profileId"
)
class RecordConversationInput:
    id: str
    channel: Channel
    sender_id: str | None = None
    profile_id: strawberry.ID | None = None
    kind: ConversationKind = ConversationKind.CHAT
    status: ConversationStatus = ConversationStatus.OPEN
    subject: str | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    closed_at: datetime | None = None

    def to_domain(self) -> ConversationInput:
        return ConversationInput(
            id=self.id,
            channel=self.channel,
            kind=self.kind,
            status=self.status,
            subject=self.subject,
            started_at=self.started_at,
            updated_at=self.updated_at,
            closed_at=self.closed_at,
        )


@strawberry.input
class CreateSegmentInput:
    name: str
    filter: ProfileFilter
    description: str | None = None


@strawberry.input
class UpdateSegmentInput:
    id: strawberry.ID
    name: str | None = None
    description: str | None = None
    filter: ProfileFilter | None = None


@strawberry.input(description="Merge source into target; the target survives")
class MergeProfilesInput:
    target_id: strawberry.ID
    source_id: strawberry.ID


@strawberry.input
class DetachIdentityInput:
    profile_id: strawberry.ID
    channel: Channel
    sender_id: str
