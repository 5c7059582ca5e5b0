"""GraphQL types for events, conversations and the activity timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

import strawberry

from domain import events as domain
from schema.cursors import encode_time_cursor
from schema.enums import Channel
from schema.scalars import JSON, json_values

strawberry.enum(domain.ConversationKind, description="A live chat or a support ticket")
strawberry.enum(domain.ConversationStatus, description="Where a conversation stands")


@strawberry.type(description="Something a person did")
class Event:
    name: str
    properties: JSON
    occurred_at: datetime
    received_at: datetime
    event_id: str | None = strawberry.field(description="The client's id, if it sent one")

    @classmethod
    def from_domain(cls, event: domain.Event) -> Self:
        return cls(
            name=event.name,
            properties=JSON(json_values(event.properties)),
            occurred_at=event.occurred_at,
            received_at=event.received_at,
            event_id=event.event_id,
        )


@strawberry.type(description="A chat or ticket linked to a profile")
class Conversation:
    id: strawberry.ID
    profile_id: strawberry.ID
    channel: Channel
    kind: domain.ConversationKind
    status: domain.ConversationStatus
    subject: str | None
    started_at: datetime
    updated_at: datetime
    closed_at: datetime | None

    @classmethod
    def from_domain(cls, conversation: domain.Conversation) -> Self:
        return cls(
            id=strawberry.ID(conversation.id),
            profile_id=strawberry.ID(conversation.profile_id),
            channel=conversation.channel,
            kind=conversation.kind,
            status=conversation.status,
            subject=conversation.subject,
            started_at=conversation.started_at,
            updated_at=conversation.updated_at,
            closed_at=conversation.closed_at,
        )


@strawberry.type
class TimePageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class EventEdge:
    node: Event
    cursor: str


@strawberry.type(description="Events, newest first")
class EventConnection:
    edges: list[EventEdge]
    page_info: TimePageInfo

    @classmethod
    def from_page(cls, events: list[domain.Event], has_next: bool) -> Self:
        edges = [
            EventEdge(node=Event.from_domain(e), cursor=encode_time_cursor(e.occurred_at, e.id))
            for e in events
        ]
        end = edges[-1].cursor if edges else None
        return cls(edges=edges, page_info=TimePageInfo(has_next_page=has_next, end_cursor=end))


ActivityItem = Annotated[Event | Conversation, strawberry.union("ActivityItem")]


@strawberry.type
class ActivityEdge:
    node: ActivityItem
    cursor: str


@strawberry.type(description="Events and conversations in one timeline, newest first")
class ActivityConnection:
    edges: list[ActivityEdge]
    page_info: TimePageInfo

    @classmethod
    def from_page(
        cls, items: list[tuple[datetime, str, domain.Event | domain.Conversation]], has_next: bool
    ) -> Self:
        edges = [
            ActivityEdge(
                node=Event.from_domain(item)
                if isinstance(item, domain.Event)
                else Conversation.from_domain(item),
                cursor=encode_time_cursor(at, key),
            )
            for at, key, item in items
        ]
        end = edges[-1].cursor if edges else None
        return cls(edges=edges, page_info=TimePageInfo(has_next_page=has_next, end_cursor=end))
