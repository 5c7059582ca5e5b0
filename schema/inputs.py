"""GraphQL input types: one `VerbNounInput` per mutation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from domain.activity import ConversationInput
from domain.autocapture import CaptureContext
from schema.enums import Channel, ConversationKind, ConversationStatus, PropertyType
from schema.filters import ProfileFilter
from schema.scalars import JSON


def _field(description: str, default: Any = strawberry.UNSET) -> Any:
    if default is strawberry.UNSET:
        return strawberry.field(description=description)
    return strawberry.field(default=default, description=description)


_CHANNEL = "The channel the message came in on"
_SENDER = "The sender's id on that channel: a phone number, an email address, a visitor id, ..."


@strawberry.input(description="What the bot knows about the message besides its properties")
class CaptureContextInput:
    ip: str | None = _field("The sender's IP address (web): fills country and time zone", None)
    timezone: str | None = _field("The sender's IANA time zone, if the bot knows it", None)
    display_name: str | None = _field(
        "The name the channel shows for the sender: fills first and last name", None
    )
    locale: str | None = _field("The sender's locale, e.g. en-IN: fills language", None)

    def to_domain(self) -> CaptureContext:
        return CaptureContext(
            ip=self.ip, timezone=self.timezone, display_name=self.display_name, locale=self.locale
        )


@strawberry.input(description="What a bot learned about a sender")
class CapturePropertiesInput:
    channel: Channel = _field(_CHANNEL)
    sender_id: str = _field(_SENDER)
    properties: JSON | None = _field(
        "Property values by name; each must be defined and of its type", None
    )
    context: CaptureContextInput | None = _field("What the channel tells about the sender", None)


@strawberry.input(description="Who a sender is")
class IdentifyInput:
    channel: Channel = _field(_CHANNEL)
    sender_id: str = _field(_SENDER)
    user_id: str = _field("The person's userId in your systems (an email address works well)")
    properties: JSON | None = _field("Property values to record with the sender", None)


@strawberry.input(description="An agent's changes to one profile")
class UpdateProfileInput:
    id: strawberry.ID = _field("The profile to change")
    set: JSON | None = _field("Property values to write, by name", None)
    unset: list[str] | None = _field("Properties to remove", None)
    add_tags: list[str] | None = _field("Tags to add (at most 100 on a profile)", None)
    remove_tags: list[str] | None = _field("Tags to remove", None)


@strawberry.input(description="A new custom property")
class DefinePropertyInput:
    name: str = _field("The property's name: a letter followed by letters, digits or '_'")
    type: PropertyType = _field("The type of its values; it cannot change later")
    description: str | None = _field("What the property means", None)


@strawberry.input(description="Who did it (channel and senderId, or profileId) and what")
class TrackEventInput:
    name: str = _field("What happened, e.g. purchase: a letter, then letters, digits, _ or -")
    channel: Channel | None = _field("The channel of the sender who did it", None)
    sender_id: str | None = _field("The sender who did it (with channel)", None)
    profile_id: strawberry.ID | None = _field("The profile that did it (instead of a sender)", None)
    properties: JSON | None = _field("Details of the event: a small JSON object", None)
    occurred_at: datetime | None = _field("When it happened; now when omitted", None)
    event_id: str | None = _field(
        "Your id for the event: a retry with the same id counts once", None
    )


@strawberry.input(
    description="A chat or ticket; a second call with the same conversationId updates it. A new "
    "one is linked through senderId (on its channel) or profileId"
)
class RecordConversationInput:
    conversation_id: str = _field("Your id for the conversation (1 to 128 characters)")
    channel: Channel = _field("The channel it takes place on")
    sender_id: str | None = _field("The sender it is with (on channel)", None)
    profile_id: strawberry.ID | None = _field("The profile it is with (instead of a sender)", None)
    kind: ConversationKind = _field("Chat or ticket", ConversationKind.CHAT)
    status: ConversationStatus = _field("Where it stands", ConversationStatus.OPEN)
    subject: str | None = _field("What it is about", None)
    started_at: datetime | None = _field("When it started; now when omitted", None)
    updated_at: datetime | None = _field("When it last changed; now when omitted", None)
    closed_at: datetime | None = _field("When it was closed, if it was", None)

    def to_domain(self) -> ConversationInput:
        return ConversationInput(
            id=self.conversation_id,
            channel=self.channel,
            kind=self.kind,
            status=self.status,
            subject=self.subject,
            started_at=self.started_at,
            updated_at=self.updated_at,
            closed_at=self.closed_at,
        )


@strawberry.input(description="A new segment")
class CreateSegmentInput:
    name: str = _field("The segment's name")
    filter: ProfileFilter = _field("Which profiles belong to it")
    description: str | None = _field("What the segment is for", None)


@strawberry.input(description="Changes to a segment; what is omitted stays as it is")
class UpdateSegmentInput:
    id: strawberry.ID = _field("The segment to change")
    name: str | None = _field("A new name", None)
    description: str | None = _field("A new description", None)
    filter: ProfileFilter | None = _field("A new filter", None)


@strawberry.input(description="The segment to delete")
class DeleteSegmentInput:
    id: strawberry.ID = _field("The segment to delete")


@strawberry.input(description="The profile to erase")
class DeleteProfileInput:
    id: strawberry.ID = _field("The profile to erase")


@strawberry.input(description="Merge source into target; the target survives")
class MergeProfilesInput:
    target_id: strawberry.ID = _field("The profile that survives (the one the agent works from)")
    source_id: strawberry.ID = _field("The profile that merges in and becomes a redirect")


@strawberry.input(description="The identity to move out to a new profile")
class DetachIdentityInput:
    profile_id: strawberry.ID = _field("The profile the identity is on")
    channel: Channel = _field("The identity's channel")
    sender_id: str = _field("The identity's sender id on that channel")
