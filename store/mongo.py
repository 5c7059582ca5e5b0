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

from domain.identity import Channel, Identity, IdentityKey, IdentityType, user_id_key
from domain.matching import keys_of_identity, keys_of_values
from domain.merge import MergePlan, list_overflow
from domain.model import (
    Birth,
    CaptureWrite,
    MergeClaim,
    MergeRecord,
    Profile,
    ProfileChange,
    ProfileState,
    Touch,
)
from domain.ports import FoldOutcome, MergeLimits, ProfileQuery, RecordKind
from domain.properties import PropertyDefinition
from store.documents import (
    Document,
    birth_to_doc,
    claim_to_doc,
    definition_from_doc,
    identity_from_doc,
    profile_from_doc,
)
from store.filters import FilterCompiler
from store.inserts import insert_one_absent
from store.pauses import checkpoint
from store.pipelines import (
    capture_pipeline,
    change_pipeline,
    fold_pipeline,
    list_caps,
    summaries_pipeline,
    values_update,
)
from store.unmerges import UnmergeSteps

# An active profile has no `state` field: the filter every ordinary write carries.
ACTIVE: dict[str, Any] = {"state": None}
PENDING = ProfileState.PENDING.value
ERASING = ProfileState.ERASING.value
MERGED = ProfileState.MERGED.value
# What a tombstone keeps of an erased profile: its id, tenant, state and merge ids.
_PERSONAL = {
    "props": "",
    "events": "",
    "userId": "",
    "keys": "",
    "matchKeys": "",
    "birth": "",
    "merging": "",
    "mergedInto": "",
    "mergedBy": "",
    "stateAt": "",
    "unmerging": "",
    "unmergeOf": "",
    "unmerges": "",
    "sourceOnly": "",
    "returnedKeys": "",
}


def _tombstone(now: datetime) -> dict[str, Any]:
    return {"state": ProfileState.ERASED.value, "erasedAt": now, "updatedAt": now}


_DUPLICATE_RETRIES = 5
_KIND_ORDER = {RecordKind.CONVERSATION: 0, RecordKind.IDENTITY: 1}
_EXPORT_BATCH = 200


def _now() -> datetime:
    return datetime.now(UTC)


def _user_keys(user_id: str, values: Mapping[str, Any]) -> list[str]:
    return [*keys_of_identity(user_id_key(user_id)), *keys_of_values(values)]


class MongoProfileStore(UnmergeSteps):
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
        *,
        unsettled: bool = False,
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
        if unsettled:
            doc["unsettled"] = now
        for _ in range(_DUPLICATE_RETRIES):
            if not await insert_one_absent(self.identities, doc):
                existing = await self.find_identity(tenant, key)
                if existing is not None:
                    return existing
                continue  # released between our insert and our read: try again
            await checkpoint("claim_identity")
            return identity_from_doc(doc)
        raise RuntimeError("identity key kept appearing and disappearing")

    async def add_identity_channel(self, tenant: str, key: IdentityKey, channel: Channel) -> None:
        await self.identities.update_one(
            {"_id": key.storage_id(tenant)}, {"$addToSet": {"channels": channel.value}}
        )

    async def release_identity(self, tenant: str, key: IdentityKey, profile_id: str) -> None:
        await self.identities.delete_one({"_id": key.storage_id(tenant), "profileId": profile_id})
        await checkpoint("release_identity")

    async def rebind_identity(
        self,
        tenant: str,
        key: IdentityKey,
        from_profile: str,
        to_profile: str,
        *,
        unsettled: bool = False,
    ) -> bool:
        change: dict[str, Any] = {"profileId": to_profile}
        if unsettled:
            change["unsettled"] = _now()
        result = await self.identities.update_one(
            {"_id": key.storage_id(tenant), "profileId": from_profile}, {"$set": change}
        )
        await checkpoint("rebind_identity")
        return bool(result.matched_count)

    async def move_identity_conversations(
        self, tenant: str, key: IdentityKey, from_profile: str, to_profile: str
    ) -> None:
        # Wherever they are now: a merge of the old profile may have carried them along.
        del from_profile
        await self.conversations.update_many(
            {
                "tenant": tenant,
                "identity": key.storage_id(tenant),
                "profileId": {"$ne": to_profile},
            },
            {"$set": {"profileId": to_profile}},
        )
        await checkpoint("move_identity_conversations")

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
        query = {"tenant": tenant, **ACTIVE, "matchKeys": {"$in": list(keys)}}
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

    async def insert_pending(
        self, tenant: str, profile_id: str, birth: Birth, user_id: str | None, now: datetime
    ) -> None:
        inserted = await insert_one_absent(
            self.profiles,
            {
                "_id": profile_id,
                "tenant": tenant,
                "state": ProfileState.PENDING.value,
                "stateAt": now,
                "birth": birth_to_doc(birth),
                "userId": user_id,
                "props": {},
                "keys": [b.key.storage_id(tenant) for b in birth.keys],
                "matchKeys": [k for b in birth.keys for k in keys_of_identity(b.key)],
                "createdAt": now,
                "updatedAt": now,
            },
        )
        if not inserted:  # ids are fresh: only a bug could reuse one
            raise RuntimeError(f"profile id {profile_id} is taken")
        await checkpoint("insert_pending")

    async def activate(self, tenant: str, profile_id: str, now: datetime) -> Profile | None:
        doc = await self.profiles.find_one_and_update(
            {"_id": profile_id, "tenant": tenant, "state": {"$in": [None, PENDING]}},
            {"$set": {"updatedAt": now}, "$unset": {"state": "", "stateAt": "", "birth": ""}},
            return_document=ReturnDocument.AFTER,
        )
        await checkpoint("activate")
        return profile_from_doc(doc) if doc else None

    async def abort_birth(
        self, tenant: str, profile_id: str, now: datetime, *, known: bool = True
    ) -> bool:
        pending = {"_id": profile_id, "tenant": tenant, "state": PENDING}
        if known:
            result = await self.profiles.update_one(
                pending, {"$set": _tombstone(now), "$unset": _PERSONAL}
            )
            changed = result.modified_count
        else:
            changed = (await self.profiles.delete_one(pending)).deleted_count
        await checkpoint("abort_birth")
        return bool(changed)

    async def write_capture(
        self,
        tenant: str,
        profile_id: str,
        write: CaptureWrite,
        now: datetime,
        *,
        activate: bool = False,
    ) -> Profile | None:
        state: Any = {"$in": [None, PENDING]} if activate else None
        doc = await self.profiles.find_one_and_update(
            {"_id": profile_id, "tenant": tenant, "state": state},
            capture_pipeline(tenant, write, now),
            return_document=ReturnDocument.AFTER,
        )
        return profile_from_doc(doc) if doc else None

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
                "$addToSet": {
                    "matchKeys": {"$each": _user_keys(user_id, values)},
                    "keys": user_id_key(user_id).storage_id(tenant),
                },
                "$unset": {"userIdClaim": ""},
            },
            return_document=ReturnDocument.AFTER,
        )
        await checkpoint("set_user_id")
        return profile_from_doc(doc) if doc else None

    async def reserve_key(
        self,
        tenant: str,
        profile_id: str,
        key: IdentityKey,
        max_identities: int,
        *,
        claim_user_id: str | None = None,
    ) -> Profile | None:
        sid = key.storage_id(tenant)
        change: dict[str, Any] = {
            "$addToSet": {"keys": sid, "matchKeys": {"$each": keys_of_identity(key)}}
        }
        if claim_user_id is not None:
            change["$set"] = {"userIdClaim": {"value": claim_user_id, "at": _now()}}
        doc = await self.profiles.find_one_and_update(
            {
                "_id": profile_id,
                "tenant": tenant,
                **ACTIVE,
                "$or": [{"keys": sid}, {f"keys.{max_identities - 1}": {"$exists": False}}],
            },
            change,
            return_document=ReturnDocument.AFTER,
        )
        await checkpoint("reserve_key")
        return profile_from_doc(doc) if doc else None

    async def drop_key(self, tenant: str, profile_id: str, key: IdentityKey) -> None:
        await self.profiles.update_one(
            {"_id": profile_id, "tenant": tenant}, {"$pull": {"keys": key.storage_id(tenant)}}
        )
        await checkpoint("drop_key")

    async def fill_profile(
        self, tenant: str, profile_id: str, plan: MergePlan, now: datetime, list_cap: int
    ) -> Profile | None:
        guard: dict[str, Any] = {"_id": profile_id, "tenant": tenant, **ACTIVE}
        if plan.union:
            guard["$expr"] = list_caps(plan.union, list_cap)
        doc = await self.profiles.find_one_and_update(
            guard, fold_pipeline(plan, None, now), return_document=ReturnDocument.AFTER
        )
        return profile_from_doc(doc) if doc else None

    async def drop_user_id_claim(self, tenant: str, profile_id: str, user_id: str) -> None:
        await self.profiles.update_one(
            {"_id": profile_id, "tenant": tenant, "userIdClaim.value": user_id},
            {"$unset": {"userIdClaim": ""}},
        )

    async def settle_record(
        self, tenant: str, kind: RecordKind, record_id: str, profile_id: str
    ) -> None:
        await self._records(kind).update_one(
            {"_id": record_id, "tenant": tenant, "profileId": profile_id},
            {"$unset": {"unsettled": ""}},
        )

    async def unsettled_records(
        self, before: datetime, after: tuple[RecordKind, str] | None, limit: int
    ) -> list[tuple[str, RecordKind, str, str]]:
        found: list[tuple[str, RecordKind, str, str]] = []
        for kind in (RecordKind.CONVERSATION, RecordKind.IDENTITY):
            if after is not None and _KIND_ORDER[kind] < _KIND_ORDER[after[0]]:
                continue
            query: dict[str, Any] = {"unsettled": {"$lte": before}}
            if after is not None and after[0] is kind:
                query["_id"] = {"$gt": after[1]}
            cursor = self._records(kind).find(query).sort("_id", 1).limit(limit - len(found))
            found.extend([(d["tenant"], kind, d["_id"], d["profileId"]) async for d in cursor])
            if len(found) >= limit:
                break
        return found

    async def update_profile(
        self, tenant: str, profile_id: str, change: ProfileChange, now: datetime, list_cap: int
    ) -> Profile | None:
        guard: dict[str, Any] = {"_id": profile_id, "tenant": tenant, **ACTIVE}
        if change.add_tags:
            guard["$expr"] = list_caps({"tags": list(change.add_tags)}, list_cap)
        doc = await self.profiles.find_one_and_update(
            guard,
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

    async def count_profiles_each(self, tenant: str, queries: Sequence[ProfileQuery]) -> list[int]:
        facets = {
            f"q{i}": [{"$match": await self._filter(tenant, query)}, {"$count": "n"}]
            for i, query in enumerate(queries)
        }
        pipeline = [{"$match": {"tenant": tenant, "state": None}}, {"$facet": facets}]
        rows = [row async for row in await self.profiles.aggregate(pipeline)]
        counted = rows[0] if rows else {}
        return [
            int(counted[f"q{i}"][0]["n"]) if counted.get(f"q{i}") else 0
            for i in range(len(queries))
        ]

    async def iterate_profiles(self, tenant: str, query: ProfileQuery) -> AsyncIterator[Profile]:
        cursor = self.profiles.find(await self._filter(tenant, query)).sort("_id", 1)
        async for doc in cursor.batch_size(_EXPORT_BATCH):
            yield profile_from_doc(doc)

    # ----- erase -------------------------------------------------------------------

    async def begin_erase(self, tenant: str, profile_id: str, now: datetime) -> bool:
        result = await self.profiles.update_one(
            {"_id": profile_id, "tenant": tenant, **ACTIVE, "unmerging": None},
            {"$set": {"state": ProfileState.ERASING.value, "stateAt": now}},
        )
        await checkpoint("begin_erase")
        return bool(result.modified_count)

    async def erase_folded_source(
        self, tenant: str, source_id: str, merge_id: str, now: datetime
    ) -> bool:
        result = await self.profiles.update_one(
            {
                "_id": source_id,
                "tenant": tenant,
                "state": ProfileState.MERGING.value,
                "merging.mergeId": merge_id,
                "merging.folded": True,
            },
            {"$set": {"state": ProfileState.ERASING.value, "stateAt": now}},
        )
        await checkpoint("erase_folded_source")
        return bool(result.modified_count)

    async def profiles_into(self, tenant: str, profile_ids: Sequence[str]) -> list[Profile]:
        ids = list(profile_ids)
        cursor = self.profiles.find(
            {
                "tenant": tenant,
                "$or": [{"mergedInto": {"$in": ids}}, {"merging.target": {"$in": ids}}],
            }
        ).sort("_id", 1)
        return [profile_from_doc(doc) async for doc in cursor]

    async def delete_records(self, tenant: str, profile_ids: Sequence[str]) -> None:
        owned = {"tenant": tenant, "profileId": {"$in": list(profile_ids)}}
        for collection in (self.identities, self.events, self.conversations):
            await collection.delete_many(owned)
        await checkpoint("delete_records")

    async def tombstone(self, tenant: str, profile_id: str, now: datetime) -> None:
        doc = await self.profiles.find_one(
            {"_id": profile_id, "tenant": tenant}, {"mergeHistory.mergeId": 1}
        )
        folded = [{"mergeId": m["mergeId"]} for m in (doc or {}).get("mergeHistory") or ()]
        await self.profiles.update_one(
            {"_id": profile_id, "tenant": tenant, "state": {"$in": [ERASING, MERGED]}},
            {"$set": {**_tombstone(now), "mergeHistory": folded}, "$unset": _PERSONAL},
        )
        await checkpoint("tombstone")

    # ----- records that follow their profile -----------------------------------------

    async def move_record(
        self, tenant: str, kind: RecordKind, record_id: str, from_profile: str, to_profile: str
    ) -> None:
        await self._records(kind).update_one(
            {"_id": record_id, "tenant": tenant, "profileId": from_profile},
            {"$set": {"profileId": to_profile}},
        )
        await checkpoint("move_record")

    async def delete_record(
        self, tenant: str, kind: RecordKind, record_id: str, profile_id: str
    ) -> None:
        await self._records(kind).delete_one(
            {"_id": record_id, "tenant": tenant, "profileId": profile_id}
        )

    def _records(self, kind: RecordKind) -> Any:
        return {
            RecordKind.IDENTITY: self.identities,
            RecordKind.EVENT: self.events,
            RecordKind.CONVERSATION: self.conversations,
        }[kind]

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
        return [row async for row in await self.events.aggregate(pipeline)]

    async def refresh_event_summaries(
        self, tenant: str, profile_id: str, names: Sequence[str], touch: Touch | None = None
    ) -> Profile | None:
        rows = await self._summaries(tenant, profile_id, names)
        doc = await self.profiles.find_one_and_update(
            {"_id": profile_id, "tenant": tenant, **ACTIVE},
            summaries_pipeline(rows, touch, _now()),
            return_document=ReturnDocument.AFTER,
        )
        await checkpoint("refresh_event_summaries")
        return profile_from_doc(doc) if doc else None

    async def touch(self, tenant: str, profile_id: str, touch: Touch) -> Profile | None:
        doc = await self.profiles.find_one_and_update(
            {"_id": profile_id, "tenant": tenant, **ACTIVE},
            capture_pipeline(tenant, CaptureWrite(set={}, touch=touch), _now()),
            return_document=ReturnDocument.AFTER,
        )
        return profile_from_doc(doc) if doc else None

    # ----- merges ------------------------------------------------------------------

    async def claim_merge_source(
        self, tenant: str, source_id: str, claim: MergeClaim, *, unidentified_only: bool
    ) -> Profile | None:
        # Never while an unmerge is under way on it (whoever meets that finishes it first).
        query: dict[str, Any] = {"_id": source_id, "tenant": tenant, **ACTIVE, "unmerging": None}
        if unidentified_only:
            query["userId"] = None
        doc = await self.profiles.find_one_and_update(
            query,
            {
                "$set": {
                    "state": ProfileState.MERGING.value,
                    "stateAt": claim.at,
                    "merging": claim_to_doc(claim),
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        await checkpoint("claim_merge_source")
        return profile_from_doc(doc) if doc else None

    async def fold_merge(
        self,
        tenant: str,
        target_id: str,
        plan: MergePlan,
        record: MergeRecord,
        now: datetime,
        limits: MergeLimits,
    ) -> tuple[FoldOutcome, Profile | None]:
        guard: dict[str, Any] = {
            "_id": target_id,
            "tenant": tenant,
            **ACTIVE,
            "mergeHistory.mergeId": {"$ne": record.merge_id},
            "abandonedMerges": {"$ne": record.merge_id},
            "unmerging": None,  # nothing folds into a profile while a merge into it is undone
            # The limits are part of the decisive write, so concurrent merges cannot pass them.
            f"mergeHistory.{limits.merges - 1}": {"$exists": False},
        }
        room = limits.identities - len(plan.keys)
        if room <= 0:
            return FoldOutcome.IDENTITY_LIMIT, None
        guard[f"keys.{room}"] = {"$exists": False}
        if plan.user_id is not None:
            guard["userId"] = {"$in": [None, plan.user_id]}
        if plan.union:
            guard["$expr"] = list_caps(plan.union, limits.list_items)
        doc = await self.profiles.find_one_and_update(
            guard, fold_pipeline(plan, record, now), return_document=ReturnDocument.AFTER
        )
        await checkpoint("fold_merge")
        if doc is not None:
            return FoldOutcome.APPLIED, profile_from_doc(doc)
        target = await self.profiles.find_one(
            {"_id": target_id, "tenant": tenant},
            {
                "mergeHistory.mergeId": 1,
                "userId": 1,
                "state": 1,
                "abandonedMerges": 1,
                "keys": 1,
                "unmerging": 1,
            },
        )
        if target is None:
            return FoldOutcome.TARGET_INACTIVE, None
        history = target.get("mergeHistory") or []
        if any(entry.get("mergeId") == record.merge_id for entry in history):
            return FoldOutcome.ALREADY_APPLIED, None
        if record.merge_id in (target.get("abandonedMerges") or ()):
            return FoldOutcome.ABANDONED, None
        if target.get("state") or target.get("unmerging"):
            return FoldOutcome.TARGET_INACTIVE, None
        owner = target.get("userId")
        if plan.user_id is not None and owner is not None and owner != plan.user_id:
            return FoldOutcome.USER_ID_CONFLICT, None
        if len(history) >= limits.merges:
            return FoldOutcome.LIMIT_REACHED, None
        if len(target.get("keys") or ()) > room:
            return FoldOutcome.IDENTITY_LIMIT, None
        if plan.union:
            props = await self.profiles.find_one({"_id": target_id}, {"props": 1})
            if list_overflow((props or {}).get("props") or {}, plan, limits.list_items):
                return FoldOutcome.LIST_LIMIT, None
        return FoldOutcome.TARGET_INACTIVE, None  # changed between the two reads: try again

    async def mark_folded(self, tenant: str, source_id: str, merge_id: str) -> None:
        await self.profiles.update_one(
            {"_id": source_id, "tenant": tenant, "merging.mergeId": merge_id},
            {"$set": {"merging.folded": True}},
        )
        await checkpoint("mark_folded")

    async def abandon_fold(self, tenant: str, target_id: str, merge_id: str) -> bool:
        result = await self.profiles.update_one(
            {"_id": target_id, "tenant": tenant, "mergeHistory.mergeId": {"$ne": merge_id}},
            {"$addToSet": {"abandonedMerges": merge_id}},
        )
        await checkpoint("abandon_fold")
        if result.matched_count:
            return True
        # No document matched: either the fold happened, or the target does not exist at all.
        return await self.profiles.find_one({"_id": target_id}, {"_id": 1}) is None

    async def release_merge_claim(self, tenant: str, source_id: str, merge_id: str) -> None:
        await self.profiles.update_one(
            {
                "_id": source_id,
                "tenant": tenant,
                "merging.mergeId": merge_id,
                "merging.folded": {"$ne": True},
            },
            {"$unset": {"merging": "", "state": "", "stateAt": ""}},
        )
        await checkpoint("release_merge_claim")

    async def move_records(
        self,
        tenant: str,
        from_profile: str,
        to_profile: str,
        merge_id: str,
        *,
        user_id: str | None,
    ) -> None:
        moved: dict[str, Any] = {"tenant": tenant, "profileId": from_profile}
        change = {"$set": {"profileId": to_profile}, "$addToSet": {"movedBy": merge_id}}
        foreign: dict[str, Any] = {"type": IdentityType.USER_ID.value}
        if user_id is not None:
            foreign["value"] = {"$ne": user_id}
        await self.identities.update_many({**moved, "$nor": [foreign]}, change)
        for collection in (self.events, self.conversations):
            await collection.update_many(moved, change)
        await checkpoint("move_records")

    async def retire_source(
        self, tenant: str, source_id: str, merge_id: str, target_id: str, now: datetime
    ) -> None:
        await self.profiles.update_one(
            {"_id": source_id, "tenant": tenant, "merging.mergeId": merge_id},
            {
                "$set": {
                    "state": ProfileState.MERGED.value,
                    "mergedInto": target_id,
                    "mergedBy": merge_id,
                    "mergedAt": now,
                    "updatedAt": now,
                },
                "$unset": {
                    "merging": "",
                    "stateAt": "",
                    "props": "",
                    "events": "",
                    "userId": "",
                    "keys": "",
                    "matchKeys": "",
                },
            },
        )
        await checkpoint("retire_source")

    async def unfinished(
        self, tenant: str | None, before: datetime, after: str | None, limit: int
    ) -> list[Profile]:
        under_way = [
            PENDING,
            ProfileState.MERGING.value,
            ProfileState.ERASING.value,
            ProfileState.UNMERGING.value,
        ]
        query: dict[str, Any] = {
            "$or": [
                {"state": {"$in": under_way}, "stateAt": {"$lte": before}},
                {"userIdClaim.at": {"$lte": before}},
                {"unmerging.at": {"$lte": before}},
            ]
        }
        if tenant is not None:
            query["tenant"] = tenant
        if after is not None:
            query["_id"] = {"$gt": after}
        cursor = self.profiles.find(query).sort("_id", 1).limit(limit)
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
