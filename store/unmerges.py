"""The unmerge's steps in MongoDB (domain.unmerging): each a conditional single-document write,
or a batched move of the records a merge tagged, ending with its pause point.

A mixin of MongoProfileStore: it uses that store's collections.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument

from domain.identity import Identity
from domain.model import MergeRecord, Profile, ProfileState, Undone, UnmergeClaim, UnmergeRecord
from domain.unmerge import SurvivorUndo
from store.documents import (
    identity_from_doc,
    profile_from_doc,
    source_item_to_doc,
    unmerge_claim_to_doc,
    unmerge_record_to_doc,
)
from store.pauses import checkpoint
from store.pipelines import summaries_pipeline

_MERGED = ProfileState.MERGED.value
_UNMERGING = ProfileState.UNMERGING.value


def _summaries(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {r["_id"]: {"count": r["count"], "first": r["first"], "last": r["last"]} for r in rows}


class UnmergeSteps:
    """Reads and writes of the unmerge state machine."""

    profiles: Any
    identities: Any
    events: Any
    conversations: Any

    async def find_merge(self, tenant: str, merge_id: str) -> Profile | None:
        """The profile whose merge history holds this merge (the survivor), in any state."""
        doc = await self.profiles.find_one({"tenant": tenant, "mergeHistory.mergeId": merge_id})
        return profile_from_doc(doc) if doc else None

    async def tagged_identities(
        self, tenant: str, survivor_id: str, merge_id: str
    ) -> list[Identity]:
        """The identity keys the merge moved that are still on the survivor."""
        cursor = self.identities.find(
            {"tenant": tenant, "profileId": survivor_id, "movedBy": merge_id}
        ).sort("_id", 1)
        return [identity_from_doc(doc) async for doc in cursor]

    def _returning(
        self, tenant: str, survivor_id: str, merge_id: str, keys: tuple[str, ...]
    ) -> dict[str, Any]:
        """Events and conversations the merge moved, or that came through a returning key."""
        return {
            "tenant": tenant,
            "profileId": survivor_id,
            "$or": [{"movedBy": merge_id}, {"identity": {"$in": list(keys)}}],
        }

    async def count_returning(
        self, tenant: str, survivor_id: str, merge_id: str, keys: tuple[str, ...]
    ) -> tuple[int, int]:
        """How many events and conversations would go back."""
        query = self._returning(tenant, survivor_id, merge_id, keys)
        events = await self.events.count_documents(query)
        conversations = await self.conversations.count_documents(query)
        return int(events), int(conversations)

    async def claim_unmerge(
        self, tenant: str, survivor_id: str, claim: UnmergeClaim, history_length: int
    ) -> Profile | None:
        """Mark the survivor as undoing the merge, only while it is active, undoes nothing
        else, has not undone this merge, and its history is as long as when it was read (so
        the check that no later merge depends on this one still holds)."""
        doc = await self.profiles.find_one_and_update(
            {
                "_id": survivor_id,
                "tenant": tenant,
                "state": None,
                "unmerging": None,
                "undoneMerges": {"$ne": claim.merge_id},
                "mergeHistory.mergeId": claim.merge_id,
                f"mergeHistory.{history_length}": {"$exists": False},
            },
            {"$set": {"unmerging": unmerge_claim_to_doc(claim)}},
            return_document=ReturnDocument.AFTER,
        )
        await checkpoint("claim_unmerge")
        return profile_from_doc(doc) if doc else None

    async def revive_source(
        self,
        tenant: str,
        record: MergeRecord,
        survivor_id: str,
        claim: UnmergeClaim,
        now: datetime,
    ) -> None:
        """The redirect left by this merge becomes UNMERGING with the source's values back."""
        change: dict[str, Any] = {
            "$set": {
                "state": _UNMERGING,
                "stateAt": now,
                "unmergeOf": {"mergeId": record.merge_id, "survivor": survivor_id},
                "props": dict(record.source_properties),
                "keys": list(claim.keys),
                "matchKeys": list(record.source_match_keys),
                "events": {},
            }
        }
        if record.source_user_id is not None:
            change["$set"]["userId"] = record.source_user_id
        await self.profiles.update_one(
            {
                "_id": record.source_id,
                "tenant": tenant,
                "state": _MERGED,
                "mergedInto": survivor_id,
                "$or": [{"mergedBy": record.merge_id}, {"mergedBy": None}],
            },
            change,
        )
        await checkpoint("revive_source")

    async def move_back(
        self,
        tenant: str,
        survivor_id: str,
        source_id: str,
        merge_id: str,
        keys: tuple[str, ...],
        *,
        identities: bool = True,
    ) -> None:
        """Move what the merge tagged (and what came through a returning key) back to the
        source, removing the tag: a constant number of commands however many records."""
        change = {"$set": {"profileId": source_id}, "$pull": {"movedBy": merge_id}}
        if identities:
            await self.identities.update_many(
                {"tenant": tenant, "profileId": survivor_id, "movedBy": merge_id}, change
            )
        query = self._returning(tenant, survivor_id, merge_id, keys)
        for collection in (self.events, self.conversations):
            await collection.update_many(query, change)
        await checkpoint("move_back")

    async def strip_survivor(
        self,
        tenant: str,
        survivor: Profile,
        position: int,
        undo: SurvivorUndo,
        entry: UnmergeRecord,
        undone: Undone,
        keys: tuple[str, ...],
    ) -> bool:
        """Apply the undo to the survivor as it was read: conditional on every value the rule
        read, so a concurrent write makes this one miss (and the caller read again)."""
        merge_id = entry.merge_id
        guard: dict[str, Any] = {
            "_id": survivor.id,
            "tenant": tenant,
            "state": None,
            "unmerging.mergeId": merge_id,
            "undoneMerges": {"$ne": merge_id},
            f"mergeHistory.{position}.mergeId": merge_id,
        }
        for name in undo.examined:
            guard[f"props.{name}"] = survivor.properties.get(name)
        if survivor.source_only:
            guard["sourceOnly"] = [source_item_to_doc(i) for i in survivor.source_only]
        else:
            guard["sourceOnly.0"] = {"$exists": False}
        values: dict[str, Any] = {f"props.{k}": v for k, v in undo.restore.items()}
        values[f"mergeHistory.{position}.undone"] = {"at": undone.at, "actor": undone.actor}
        values["updatedAt"] = entry.at
        removed: dict[str, Any] = {f"props.{name}": "" for name in undo.unset}
        if undo.remove_user_id:
            removed["userId"] = ""
        if undo.source_only:
            values["sourceOnly"] = [source_item_to_doc(i) for i in undo.source_only]
        else:
            removed["sourceOnly"] = ""
        added: dict[str, Any] = {"undoneMerges": merge_id, "returnedKeys": {"$each": list(keys)}}
        # Later merges' records taking over what this merge did (domain.unmerge).
        positions = {r.merge_id: i for i, r in enumerate(survivor.merge_history)}
        if undo.contact_heir is not None:
            at = positions[undo.contact_heir]
            guard[f"mergeHistory.{at}.mergeId"] = undo.contact_heir
            prior = undo.heir_contact
            values[f"mergeHistory.{at}.contact.session"] = prior.at if prior else None
            values[f"mergeHistory.{at}.contact.channel"] = (
                (prior.channel or None) if prior else None
            )
        for heir, names in undo.lists_made.items():
            at = positions[heir]
            guard[f"mergeHistory.{at}.mergeId"] = heir
            added[f"mergeHistory.{at}.filled"] = {"$each": list(names)}
        change: dict[str, Any] = {
            "$set": values,
            "$unset": removed,
            "$push": {"unmerges": unmerge_record_to_doc(entry)},
            "$addToSet": added,
        }
        if keys:
            change["$pull"] = {"keys": {"$in": list(keys)}}
        result = await self.profiles.update_one(guard, change)
        await checkpoint("strip_survivor")
        return bool(result.modified_count)

    async def activate_source(
        self, tenant: str, source_id: str, merge_id: str, entry: UnmergeRecord, now: datetime
    ) -> None:
        """UNMERGING becomes ACTIVE: the source is itself again, and remembers the unmerge."""
        await self.profiles.update_one(
            {
                "_id": source_id,
                "tenant": tenant,
                "state": _UNMERGING,
                "unmergeOf.mergeId": merge_id,
            },
            {
                "$set": {"updatedAt": now},
                "$unset": {
                    "state": "",
                    "stateAt": "",
                    "unmergeOf": "",
                    "mergedInto": "",
                    "mergedBy": "",
                    "mergedAt": "",
                },
                "$push": {"unmerges": unmerge_record_to_doc(entry)},
            },
        )
        await checkpoint("activate_source")

    async def recompute_event_summaries(self, tenant: str, profile_id: str) -> None:
        """Set a profile's summaries to those of its stored events (events left, so
        counts may go down), then merge a second reading in monotonically, as an event's own
        refresh does: one that settled between the reading and the write is counted."""
        pipeline = [
            {"$match": {"tenant": tenant, "profileId": profile_id}},
            {
                "$group": {
                    "_id": "$name",
                    "count": {"$sum": 1},
                    "first": {"$min": "$occurredAt"},
                    "last": {"$max": "$occurredAt"},
                }
            },
        ]
        # The source is summarised while UNMERGING (it is active only once it is whole).
        mine = {"_id": profile_id, "tenant": tenant, "state": {"$in": [None, _UNMERGING]}}
        rows = [row async for row in await self.events.aggregate(pipeline)]
        await self.profiles.update_one(mine, {"$set": {"events": _summaries(rows)}})
        again = [row async for row in await self.events.aggregate(pipeline)]
        await self.profiles.update_one(mine, summaries_pipeline(again, None, datetime.now(UTC)))
        await checkpoint("recompute_event_summaries")

    async def release_unmerge(self, tenant: str, survivor_id: str, merge_id: str) -> None:
        """The unmerge is done: the survivor's mark goes."""
        await self.profiles.update_one(
            {"_id": survivor_id, "tenant": tenant, "unmerging.mergeId": merge_id},
            {"$unset": {"unmerging": ""}},
        )
        await checkpoint("release_unmerge")
