"""Events and conversations in MongoDB.

An event's `_id` is `tenant|e|<client event id>` when the client gives one, so a retry is a
duplicate key; a conversation's is `tenant|c|<conversation id>`, so a second call updates it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from domain.events import (
    Conversation,
    ConversationKind,
    ConversationStatus,
    Event,
    conversation_key,
)
from domain.identity import Channel
from domain.ports import ActivityRows
from store.documents import utc
from store.inserts import insert_one_absent


def _event(doc: Mapping[str, Any]) -> Event:
    return Event(
        id=doc["_id"],
        profile_id=doc["profileId"],
        name=doc["name"],
        properties=doc.get("properties") or {},
        occurred_at=utc(doc["occurredAt"]),
        received_at=utc(doc["receivedAt"]),
        event_id=doc.get("eventId"),
        identity=doc.get("identity"),
    )


def _conversation(doc: Mapping[str, Any]) -> Conversation:
    closed = doc.get("closedAt")
    return Conversation(
        id=doc["conversationId"],
        profile_id=doc["profileId"],
        channel=Channel(doc["channel"]),
        kind=ConversationKind(doc["kind"]),
        status=ConversationStatus(doc["status"]),
        subject=doc.get("subject"),
        started_at=utc(doc["startedAt"]),
        updated_at=utc(doc["updatedAt"]),
        closed_at=utc(closed) if closed else None,
    )


def _before(after: tuple[datetime, str] | None, field: str) -> dict[str, Any]:
    """Keyset condition for newest-first pages ordered by (field, _id)."""
    if after is None:
        return {}
    at, key = after
    return {"$or": [{field: {"$lt": at}}, {field: at, "_id": {"$lt": key}}]}


def _profiles_among(tenant: str, profile_ids: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {"$match": {"_id": {"$in": list(profile_ids)}, "tenant": tenant}},
        {"$project": {"_id": 1}},
    ]


def _newest(
    collection: str, match: dict[str, Any], field: str, limit: int, into: str
) -> dict[str, Any]:
    """A profile's newest records of one collection: the join runs per profile on the
    (tenant, profileId, time) index and stops after `limit`, however many records it has."""
    return {
        "$lookup": {
            "from": collection,
            "localField": "_id",
            "foreignField": "profileId",
            "pipeline": [{"$match": match}, {"$sort": {field: -1, "_id": -1}}, {"$limit": limit}],
            "as": into,
        }
    }


class MongoActivityStore:
    """Events and conversations."""

    def __init__(self, db: Any) -> None:
        self.events = db["events"]
        self.conversations = db["conversations"]
        self.profiles = db["profiles"]

    async def insert_event(self, tenant: str, event: Event) -> tuple[Event, bool]:
        doc = {
            "_id": event.id,
            "tenant": tenant,
            "profileId": event.profile_id,
            "name": event.name,
            "properties": dict(event.properties),
            "occurredAt": event.occurred_at,
            "receivedAt": event.received_at,
            "eventId": event.event_id,
            "pending": True,
        }
        if event.identity is not None:
            doc["identity"] = event.identity
        for _ in range(3):
            if not await insert_one_absent(self.events, doc):
                existing = await self.events.find_one({"_id": event.id})
                if existing is None:
                    # An erasure deleted it between the two calls: insert again; the caller's
                    # check of the profile then follows the survivor or deletes the event.
                    continue
                return _event(existing), bool(existing.get("pending"))
            return event, True
        raise DuplicateKeyError(f"event {event.id} kept coming and going", 11000)

    async def settle_event(self, tenant: str, event_key: str) -> None:
        # Only the flag: a merge may have moved the event meanwhile, and that stays true.
        await self.events.update_one(
            {"_id": event_key, "tenant": tenant}, {"$unset": {"pending": ""}}
        )

    async def pending_events(
        self, received_before: datetime, after: str | None, limit: int
    ) -> list[tuple[str, Event]]:
        query: dict[str, Any] = {"pending": True, "receivedAt": {"$lte": received_before}}
        if after is not None:
            query["_id"] = {"$gt": after}
        cursor = self.events.find(query).sort("_id", 1).limit(limit)
        return [(doc["tenant"], _event(doc)) async for doc in cursor]

    async def event_pages(
        self,
        tenant: str,
        profile_ids: Sequence[str],
        name: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> dict[str, list[Event]]:
        match: dict[str, Any] = {"tenant": tenant, **_before(after, "occurredAt")}
        if name is not None:
            match["name"] = name
        pipeline = [
            *_profiles_among(tenant, profile_ids),
            _newest("events", match, "occurredAt", limit, "events"),
        ]
        return {
            row["_id"]: [_event(doc) for doc in row["events"]]
            async for row in await self.profiles.aggregate(pipeline)
        }

    async def upsert_conversation(
        self,
        tenant: str,
        conversation: Conversation,
        profile_id: str | None,
        identity: str | None,
    ) -> Conversation:
        key = conversation_key(tenant, conversation.id)
        changes: dict[str, Any] = {
            # Written first, checked after: recovery finds it if its writer dies in between.
            "unsettled": datetime.now(UTC),
            "status": conversation.status.value,
            "updatedAt": conversation.updated_at,
            "closedAt": conversation.closed_at,
        }
        if conversation.subject is not None:
            changes["subject"] = conversation.subject
        on_insert: dict[str, Any] = {
            "tenant": tenant,
            "conversationId": conversation.id,
            "channel": conversation.channel.value,
            "kind": conversation.kind.value,
            "startedAt": conversation.started_at,
        }
        if profile_id is not None:
            changes["profileId"] = profile_id
        else:
            on_insert["profileId"] = conversation.profile_id
        if identity is not None:
            on_insert["identity"] = identity
        for _ in range(3):
            try:
                doc = await self.conversations.find_one_and_update(
                    {"_id": key},
                    {"$set": changes, "$setOnInsert": on_insert},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                continue  # a concurrent first call inserted it: this one updates it
            return _conversation(doc)
        raise RuntimeError("conversation upsert kept colliding")

    async def activity_pages(
        self,
        tenant: str,
        profile_ids: Sequence[str],
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> dict[str, ActivityRows]:
        events = {"tenant": tenant, **_before(after, "occurredAt")}
        chats = {"tenant": tenant, **_before(after, "startedAt")}
        pipeline = [
            *_profiles_among(tenant, profile_ids),
            _newest("events", events, "occurredAt", limit, "events"),
            _newest("conversations", chats, "startedAt", limit, "conversations"),
        ]
        return {
            row["_id"]: ActivityRows(
                events=[_event(doc) for doc in row["events"]],
                conversations=[(doc["_id"], _conversation(doc)) for doc in row["conversations"]],
            )
            async for row in await self.profiles.aggregate(pipeline)
        }

    async def get_event(self, tenant: str, event_key: str) -> Event | None:
        doc = await self.events.find_one({"_id": event_key, "tenant": tenant})
        return _event(doc) if doc else None

    async def get_conversation(self, tenant: str, conversation_id: str) -> Conversation | None:
        doc = await self.conversations.find_one({"_id": conversation_key(tenant, conversation_id)})
        return _conversation(doc) if doc else None
