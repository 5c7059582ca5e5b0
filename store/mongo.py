"""The MongoDB implementation of the profile store.

Uniqueness lives in `_id`s (identity keys are `tenant|TYPE|value`, definitions
`tenant|name`), and every race is decided by one conditional single-document write.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from domain.identity import Channel, Identity, IdentityKey
from domain.merge import MergePlan
from domain.model import CaptureWrite, MergeClaim, MergeRecord, Profile, ProfileChange
from domain.ports import FoldOutcome
from domain.properties import PropertyDefinition
from store.documents import (
    Document,
    claim_to_doc,
    definition_from_doc,
    identity_from_doc,
    profile_from_doc,
)
from store.pipelines import capture_pipeline, change_pipeline, fold_pipeline, values_update

# A profile that no merge has touched: the filter every ordinary write carries.
ACTIVE: dict[str, Any] = {"mergedInto": None, "merging": None}
_DUPLICATE_RETRIES = 5


class MongoProfileStore:
    """Profiles, identity keys and property definitions in MongoDB."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.profiles = db["profiles"]
        self.identities = db["identities"]
        self.definitions_coll = db["property_definitions"]

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

    async def repoint_identities(self, tenant: str, from_profile: str, to_profile: str) -> None:
        await self.identities.update_many(
            {"tenant": tenant, "profileId": from_profile}, {"$set": {"profileId": to_profile}}
        )

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

    async def get_profiles(self, tenant: str, profile_ids: Sequence[str]) -> list[Profile]:
        cursor = self.profiles.find({"_id": {"$in": list(profile_ids)}, "tenant": tenant})
        return [profile_from_doc(doc) async for doc in cursor]

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
            {"$set": {"userId": user_id, "updatedAt": now, **values_update(values)}},
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

    async def list_profiles(self, tenant: str, after: str | None, limit: int) -> list[Profile]:
        query: dict[str, Any] = {"tenant": tenant, "mergedInto": None}
        if after is not None:
            query["_id"] = {"$gt": after}
        cursor = self.profiles.find(query).sort("_id", 1).limit(limit)
        return [profile_from_doc(doc) async for doc in cursor]

    # ----- merges ------------------------------------------------------------------

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
        self, tenant: str, target_id: str, plan: MergePlan, record: MergeRecord, now: datetime
    ) -> tuple[FoldOutcome, Profile | None]:
        doc = await self.profiles.find_one_and_update(
            {
                "_id": target_id,
                "tenant": tenant,
                **ACTIVE,
                "mergeHistory.mergeId": {"$ne": record.merge_id},
            },
            fold_pipeline(plan, record, now),
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            return FoldOutcome.APPLIED, profile_from_doc(doc)
        target = await self.profiles.find_one(
            {"_id": target_id, "tenant": tenant}, {"mergeHistory.mergeId": 1}
        )
        history = (target or {}).get("mergeHistory") or []
        if any(entry.get("mergeId") == record.merge_id for entry in history):
            return FoldOutcome.ALREADY_APPLIED, None
        return FoldOutcome.TARGET_INACTIVE, None

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
