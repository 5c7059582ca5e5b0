"""The MongoDB implementation of the profile store.

Uniqueness lives in `_id`s (identity keys are `tenant|TYPE|value`, definitions
`tenant|name`), and every race is decided by one conditional single-document write.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from domain.identity import Channel, Identity, IdentityKey, user_id_key
from domain.matching import keys_of_identity, keys_of_values
from domain.merge import MergePlan
from domain.model import CaptureWrite, MergeClaim, MergeRecord, Profile, ProfileChange
from domain.ports import FoldOutcome, ProfileQuery
from domain.properties import PropertyDefinition
from store.documents import (
    Document,
    claim_to_doc,
    definition_from_doc,
    identity_from_doc,
    profile_from_doc,
)
from store.filters import FilterCompiler
from store.pipelines import capture_pipeline, change_pipeline, fold_pipeline, values_update

# A profile that no merge has touched: the filter every ordinary write carries.
ACTIVE: dict[str, Any] = {"mergedInto": None, "merging": None}
_DUPLICATE_RETRIES = 5
_EXPORT_BATCH = 200


def _now() -> datetime:
    return datetime.now(UTC)


def _user_keys(user_id: str, values: Mapping[str, Any]) -> list[str]:
    return [*keys_of_identity(user_id_key(user_id)), *keys_of_values(values)]


class MongoProfileStore:
    """Profiles, identity keys and property definitions in MongoDB."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.profiles = db["profiles"]
        self.identities = db["identities"]
        self.definitions_coll = db["property_definitions"]
        self.events = db["events"]
        self.conversations = db["conversations"]

    # ----- identity keys -----------------------------------------------------------

    async def find_identity(self, tenant: str, key: IdentityKey) -> Identity | None:
        doc = await self.identities.find_one({"_id": key.storage_id(tenant)})
        return identity_from_doc(doc) if doc else None

    async def claim_identity(
        self,
        tenant: str,
        key: IdentityKey,
        profile_id: str,
        channel: Channel | None,
        now: datetime,
    ) -> Identity:
        doc: dict[str, Any] = {
            "_id": key.storage_id(tenant),
            "tenant": tenant,
            "type": key.type.value,
            "value": key.value,
            "profileId": profile_id,
            "channels": [channel.value] if channel else [],
            "createdAt": now,
        }
        for _ in range(_DUPLICATE_RETRIES):
            try:
                await self.identities.insert_one(doc)
            except DuplicateKeyError:
                existing = await self.find_identity(tenant, key)
                if existing is not None:
                    return existing
                continue  # released between our insert and our read: try again
            return identity_from_doc(doc)
        raise RuntimeError("identity key kept appearing and disappearing")

    async def add_identity_channel(self, tenant: str, key: IdentityKey, channel: Channel) -> None:
        await self.identities.update_one(
            {"_id": key.storage_id(tenant)}, {"$addToSet": {"channels": channel.value}}
        )

    async def release_identity(self, tenant: str, key: IdentityKey, profile_id: str) -> None:
        await self.identities.delete_one({"_id": key.storage_id(tenant), "profileId": profile_id})

    async def rebind_identity(
        self, tenant: str, key: IdentityKey, from_profile: str, to_profile: str
    ) -> bool:
        result = await self.identities.update_one(
            {"_id": key.storage_id(tenant), "profileId": from_profile},
            {"$set": {"profileId": to_profile}},
        )
        return bool(result.matched_count)

    async def move_records(
        self, tenant: str, from_profile: str, to_profile: str, merge_id: str
    ) -> None:
        moved = {"tenant": tenant, "profileId": from_profile}
        change = {"$set": {"profileId": to_profile}, "$addToSet": {"movedBy": merge_id}}
        for collection in (self.identities, self.events, self.conversations):
            await collection.update_many(moved, change)

    async def move_identity_conversations(
        self, tenant: str, key: IdentityKey, from_profile: str, to_profile: str
    ) -> None:
        await self.conversations.update_many(
            {"tenant": tenant, "profileId": from_profile, "identity": key.storage_id(tenant)},
            {"$set": {"profileId": to_profile}},
        )

    async def count_identities(self, tenant: str, profile_ids: Sequence[str]) -> int:
        query = {"tenant": tenant, "profileId": {"$in": list(profile_ids)}}
        return int(await self.identities.count_documents(query))

    async def add_match_keys(self, tenant: str, profile_id: str, keys: Sequence[str]) -> None:
        if keys:
            await self.profiles.update_one(
                {"_id": profile_id, "tenant": tenant},
                {"$addToSet": {"matchKeys": {"$each": list(keys)}}},
            )

    async def find_by_match_keys(
        self, tenant: str, keys: Sequence[str], limit: int
    ) -> list[Profile]:
        query = {"tenant": tenant, "mergedInto": None, "matchKeys": {"$in": list(keys)}}
        cursor = self.profiles.find(query).sort("_id", 1).limit(limit)
        return [profile_from_doc(doc) async for doc in cursor]

    async def identities_of(
        self, tenant: str, profile_ids: Sequence[str]
    ) -> Mapping[str, list[Identity]]:
        found: dict[str, list[Identity]] = defaultdict(list)
        cursor = self.identities.find(
            {"tenant": tenant, "profileId": {"$in": list(profile_ids)}}
        ).sort("_id", 1)
        async for doc in cursor:
            found[doc["profileId"]].append(identity_from_doc(doc))
        return found

    # ----- profiles ----------------------------------------------------------------

    async def get_profile(self, tenant: str, profile_id: str) -> Profile | None:
        doc = await self.profiles.find_one({"_id": profile_id, "tenant": tenant})
        return profile_from_doc(doc) if doc else None

    async def write_capture(
        self, tenant: str, profile_id: str, write: CaptureWrite, now: datetime
    ) -> Profile | None:
        pipeline = capture_pipeline(tenant, write, now)
        for _ in range(_DUPLICATE_RETRIES):
            try:
                doc = await self.profiles.find_one_and_update(
                    {"_id": profile_id, "tenant": tenant, **ACTIVE},
                    pipeline,
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                # Either a concurrent first capture inserted it (retry as an update), or it
                # exists but is merged or merging (the filter missed it): let the caller follow.
                existing = await self.profiles.find_one({"_id": profile_id})
                if existing is None or existing.get("tenant") != tenant:
                    continue
                if existing.get("mergedInto") or existing.get("merging"):
                    return None
                continue
            return profile_from_doc(doc)
        return None

    async def set_user_id(
        self,
        tenant: str,
        profile_id: str,
        user_id: str,
        values: Mapping[str, Any],
        now: datetime,
    ) -> Profile | None:
        doc = await self.profiles.find_one_and_update(
            {"_id": profile_id, "tenant": tenant, "userId": None, **ACTIVE},
            {
                "$set": {"userId": user_id, "updatedAt": now, **values_update(values)},
                "$addToSet": {"matchKeys": {"$each": _user_keys(user_id, values)}},
            },
            return_document=ReturnDocument.AFTER,
        )
        return profile_from_doc(doc) if doc else None

    async def create_identified(
        self, tenant: str, profile_id: str, user_id: str, now: datetime
    ) -> Profile:
        for _ in range(_DUPLICATE_RETRIES):
            try:
                doc = await self.profiles.find_one_and_update(
                    {"_id": profile_id, "tenant": tenant},
                    {
                        "$setOnInsert": {
                            "userId": user_id,
                            "props": {},
                            "createdAt": now,
                            "updatedAt": now,
                            "matchKeys": _user_keys(user_id, {}),
                        }
                    },
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                continue  # a concurrent insert of the same id: read it on the next pass
            return profile_from_doc(doc)
        raise RuntimeError("could not create profile")

    async def update_profile(
        self, tenant: str, profile_id: str, change: ProfileChange, now: datetime
    ) -> Profile | None:
        doc = await self.profiles.find_one_and_update(
            {"_id": profile_id, "tenant": tenant, **ACTIVE},
            change_pipeline(change, now),
            return_document=ReturnDocument.AFTER,
        )
        return profile_from_doc(doc) if doc else None

    async def _filter(self, tenant: str, query: ProfileQuery) -> dict[str, Any]:
        now = query.now or datetime.now(UTC)
        return await FilterCompiler(self.events, now).query(tenant, query)

    async def list_profiles(
        self, tenant: str, query: ProfileQuery, after: str | None, limit: int
    ) -> list[Profile]:
        found = await self._filter(tenant, query)
        if after is not None:
            found = {"$and": [found, {"_id": {"$gt": after}}]}
        cursor = self.profiles.find(found).sort("_id", 1).limit(limit)
        return [profile_from_doc(doc) async for doc in cursor]

    async def count_profiles(self, tenant: str, query: ProfileQuery) -> int:
        return int(await self.profiles.count_documents(await self._filter(tenant, query)))

    async def iterate_profiles(self, tenant: str, query: ProfileQuery) -> AsyncIterator[Profile]:
        cursor = self.profiles.find(await self._filter(tenant, query)).sort("_id", 1)
        async for doc in cursor.batch_size(_EXPORT_BATCH):
            yield profile_from_doc(doc)

    async def erase_profile(self, tenant: str, profile_id: str) -> bool:
        if await self.profiles.find_one({"_id": profile_id, "tenant": tenant}, {"_id": 1}) is None:
            return False
        doomed = [profile_id]
        frontier = [profile_id]
        while frontier:  # the redirects left by merges into it, and by merges into those
            redirects = self.profiles.find(
                {"tenant": tenant, "mergedInto": {"$in": frontier}}, {"_id": 1}
            )
            frontier = [doc["_id"] async for doc in redirects]
            doomed.extend(frontier)
        owned = {"tenant": tenant, "profileId": {"$in": doomed}}
        for collection in (self.identities, self.events, self.conversations):
            await collection.delete_many(owned)
        # The profile goes last, so an interrupted erase can simply be run again.
        await self.profiles.delete_many({"tenant": tenant, "_id": {"$in": doomed[::-1]}})
        return True

    async def _summaries(
        self, tenant: str, profile_id: str, names: Sequence[str]
    ) -> list[dict[str, Any]]:
        pipeline = [
            {"$match": {"tenant": tenant, "profileId": profile_id, "name": {"$in": list(names)}}},
            {
                "$group": {
                    "_id": "$name",
                    "count": {"$sum": 1},
                    "first": {"$min": "$occurredAt"},
                    "last": {"$max": "$occurredAt"},
                }
            },
        ]
        return [row async for row in self.events.aggregate(pipeline)]

    async def refresh_event_summaries(
        self, tenant: str, profile_id: str, names: Sequence[str]
    ) -> Profile | None:
        rows = await self._summaries(tenant, profile_id, names)
        update: dict[str, Any] = {"$set": {"tenant": tenant, "updatedAt": _now()}}
        if rows:
            update["$max"] = {f"events.{r['_id']}.count": r["count"] for r in rows}
            update["$max"].update({f"events.{r['_id']}.last": r["last"] for r in rows})
            update["$min"] = {f"events.{r['_id']}.first": r["first"] for r in rows}
        for _ in range(_DUPLICATE_RETRIES):
            try:
                # Upsert: a first event from a new sender may arrive before its profile exists.
                doc = await self.profiles.find_one_and_update(
                    {"_id": profile_id, "tenant": tenant, **ACTIVE},
                    {**update, "$setOnInsert": {"createdAt": _now(), "props": {}}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                existing = await self.profiles.find_one({"_id": profile_id})
                if existing is not None and (existing.get("mergedInto") or existing.get("merging")):
                    return None
                continue
            return profile_from_doc(doc)
        return None

    async def move_event(self, tenant: str, event_key: str, profile_id: str) -> None:
        await self.events.update_one(
            {"_id": event_key, "tenant": tenant}, {"$set": {"profileId": profile_id}}
        )

    async def claim_merge_source(
        self, tenant: str, source_id: str, claim: MergeClaim, *, unidentified_only: bool
    ) -> Profile | None:
        query: dict[str, Any] = {"_id": source_id, "tenant": tenant, **ACTIVE}
        if unidentified_only:
            query["userId"] = None
        doc = await self.profiles.find_one_and_update(
            query,
            {"$set": {"merging": claim_to_doc(claim)}},
            return_document=ReturnDocument.AFTER,
        )
        return profile_from_doc(doc) if doc else None

    async def fold_merge(
        self,
        tenant: str,
        target_id: str,
        plan: MergePlan,
        record: MergeRecord,
        now: datetime,
        max_merges: int,
    ) -> tuple[FoldOutcome, Profile | None]:
        guard: dict[str, Any] = {
            "_id": target_id,
            "tenant": tenant,
            **ACTIVE,
            "mergeHistory.mergeId": {"$ne": record.merge_id},
            # The limit is part of the decisive write, so concurrent merges cannot overshoot it.
            f"mergeHistory.{max_merges - 1}": {"$exists": False},
        }
        if plan.user_id is not None:
            guard["userId"] = {"$in": [None, plan.user_id]}
        doc = await self.profiles.find_one_and_update(
            guard, fold_pipeline(plan, record, now), return_document=ReturnDocument.AFTER
        )
        if doc is not None:
            return FoldOutcome.APPLIED, profile_from_doc(doc)
        target = await self.profiles.find_one(
            {"_id": target_id, "tenant": tenant},
            {"mergeHistory.mergeId": 1, "userId": 1, "mergedInto": 1, "merging": 1},
        )
        if target is None:
            return FoldOutcome.TARGET_INACTIVE, None
        history = target.get("mergeHistory") or []
        if any(entry.get("mergeId") == record.merge_id for entry in history):
            return FoldOutcome.ALREADY_APPLIED, None
        if target.get("mergedInto") or target.get("merging"):
            return FoldOutcome.TARGET_INACTIVE, None
        owner = target.get("userId")
        if plan.user_id is not None and owner is not None and owner != plan.user_id:
            return FoldOutcome.USER_ID_CONFLICT, None
        if len(history) >= max_merges:
            return FoldOutcome.LIMIT_REACHED, None
        return FoldOutcome.TARGET_INACTIVE, None  # changed between the two reads: try again

    async def retire_source(
        self, tenant: str, source_id: str, merge_id: str, target_id: str, now: datetime
    ) -> None:
        await self.profiles.update_one(
            {"_id": source_id, "tenant": tenant, "merging.mergeId": merge_id},
            {
                "$set": {"mergedInto": target_id, "mergedAt": now, "updatedAt": now},
                "$unset": {"merging": "", "props": "", "events": "", "userId": ""},
            },
        )

    async def release_merge_claim(self, tenant: str, source_id: str, merge_id: str) -> None:
        await self.profiles.update_one(
            {"_id": source_id, "tenant": tenant, "merging.mergeId": merge_id},
            {"$unset": {"merging": ""}},
        )

    async def merging_profiles(
        self, tenant: str | None, claimed_before: datetime, limit: int
    ) -> list[Profile]:
        query: dict[str, Any] = {"merging.at": {"$lte": claimed_before}}
        if tenant is not None:
            query["tenant"] = tenant
        cursor = self.profiles.find(query).limit(limit)
        return [profile_from_doc(doc) async for doc in cursor]

    # ----- property definitions ----------------------------------------------------

    async def definitions(self, tenant: str) -> list[PropertyDefinition]:
        cursor = self.definitions_coll.find({"tenant": tenant})
        return [definition_from_doc(doc) async for doc in cursor]

    async def insert_definition(
        self, tenant: str, definition: PropertyDefinition
    ) -> PropertyDefinition:
        doc: Document = {
            "_id": f"{tenant}|{definition.name}",
            "tenant": tenant,
            "name": definition.name,
            "type": definition.type.value,
            "description": definition.description,
            "createdAt": definition.created_at,
        }
        try:
            await self.definitions_coll.insert_one(dict(doc))
        except DuplicateKeyError:
            existing = await self.definitions_coll.find_one({"_id": doc["_id"]})
            if existing is not None:
                return definition_from_doc(existing)
            raise
        return definition
