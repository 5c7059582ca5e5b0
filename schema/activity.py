"""GraphQL types for events, conversations and the activity timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

import strawberry

from domain import events as domain
from schema.cursors import encode_time_cursor
from schema.enums import Channel, ConversationKind, ConversationStatus
from schema.ids import Kind, profile_id, to_global
from schema.node import Node
from schema.pages import PageInfo
from schema.scalars import JSON, json_values


def event_global_id(event: domain.Event) -> str:
    return to_global(Kind.EVENT, domain.event_key(event.id))


@strawberry.type(description="Something a person did, as a bot or system reported it")
class Event(Node):
    name: str = strawberry.field(description="What happened, e.g. purchase or signup")
    properties: JSON = strawberry.field(description="Details the reporter sent with the event")
    occurred_at: datetime = strawberry.field(description="When it happened")
    received_at: datetime = strawberry.field(description="When profile360 received it")
    event_id: str | None = strawberry.field(
        description="The reporter's own id for the event, if it sent one (a retry counts once)"
    )
    profile_id: strawberry.ID = strawberry.field(description="The profile the event belongs to")

    @classmethod
    def from_domain(cls, event: domain.Event) -> Self:
        return cls(
            id=strawberry.ID(event_global_id(event)),
            name=event.name,
            properties=JSON(json_values(event.properties)),
            occurred_at=event.occurred_at,
            received_at=event.received_at,
            event_id=event.event_id,
            profile_id=strawberry.ID(profile_id(event.profile_id)),
        )


@strawberry.type(description="A chat or a support ticket linked to a profile")
class Conversation(Node):
    conversation_id: str = strawberry.field(
        description="The reporter's own id for the conversation (recordConversation updates by it)"
    )
    profile_id: strawberry.ID = strawberry.field(
        description="The profile the conversation belongs to"
    )
    channel: Channel = strawberry.field(description="The channel it took place on")
    kind: ConversationKind = strawberry.field(description="Chat or ticket")
    status: ConversationStatus = strawberry.field(description="Where it stands")
    subject: str | None = strawberry.field(description="What it is about, if given")
    started_at: datetime = strawberry.field(description="When it started")
    updated_at: datetime = strawberry.field(description="When it last changed")
    closed_at: datetime | None = strawberry.field(description="When it was closed, if it was")

    @classmethod
    def from_domain(cls, conversation: domain.Conversation) -> Self:
        return cls(
            id=strawberry.ID(to_global(Kind.CONVERSATION, conversation.id)),
            conversation_id=conversation.id,
            profile_id=strawberry.ID(profile_id(conversation.profile_id)),
            channel=conversation.channel,
            kind=conversation.kind,
            status=conversation.status,
            subject=conversation.subject,
            started_at=conversation.started_at,
            updated_at=conversation.updated_at,
            closed_at=conversation.closed_at,
        )


@strawberry.type(description="One event of a page, with its cursor")
class EventEdge:
    node: Event = strawberry.field(description="The event")
    cursor: str = strawberry.field(description="Pass as `after` to continue after this event")


@strawberry.type(description="A page of events, newest first")
class EventConnection:
    edges: list[EventEdge] = strawberry.field(description="The events of this page")
    page_info: PageInfo = strawberry.field(description="Where this page stands")

    @classmethod
    def from_page(cls, events: list[domain.Event], has_next: bool, after: bool) -> Self:
        edges = [
            EventEdge(node=Event.from_domain(e), cursor=encode_time_cursor(e.occurred_at, e.id))
            for e in events
        ]
        return cls(edges=edges, page_info=PageInfo.of([e.cursor for e in edges], has_next, after))


ActivityItem = Annotated[
    Event | Conversation,
    strawberry.union("ActivityItem", description="An event or a conversation of a timeline"),
]


@strawberry.type(description="One item of a timeline page, with its cursor")
class ActivityEdge:
    node: ActivityItem = strawberry.field(description="The event or conversation")
    cursor: str = strawberry.field(description="Pass as `after` to continue after this item")


@strawberry.type(description="A page of events and conversations in one timeline, newest first")
class ActivityConnection:
    edges: list[ActivityEdge] = strawberry.field(description="The items of this page")
    page_info: PageInfo = strawberry.field(description="Where this page stands")

    @classmethod
    def from_page(
        cls,
        items: list[tuple[datetime, str, domain.Event | domain.Conversation]],
        has_next: bool,
        after: bool,
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
        return cls(edges=edges, page_info=PageInfo.of([e.cursor for e in edges], has_next, after))
