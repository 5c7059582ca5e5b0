"""The MongoDB side of imports: bulk births, key claims and value writes, and job documents.

Each bulk command carries many single-document writes, each conditional on its own document
(an insert of an `_id` only if nobody holds it, an update guarded by the profile's state), so a
batch needs no transaction and a partial batch is a set of complete single-document steps.
New documents go in through store.inserts (an upsert on the `_id` that only sets on insert:
the same claim as an insert, one command per batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from domain.identity import Channel, IdentityKey
from domain.import_jobs import ImportCounts, ImportJob, JobStatus
from domain.import_rows import ImportFormat, Refusal
from domain.importing import ImportMode, NewProfile, Write
from domain.merge import MergePlan
from domain.model import Profile, ProfileState
from domain.values import is_text
from store.documents import birth_to_doc, profile_from_doc, utc
from store.inserts import insert_absent
from store.lists import one_of
from store.pauses import checkpoint
from store.pipelines import capture_pipeline, fold_pipeline, list_caps

PENDING = ProfileState.PENDING.value


class MongoBulkImportStore:
    """Bulk writes of an import (see domain.importing.BulkImportStore)."""

    def __init__(self, db: Any) -> None:
        self._profiles = db["profiles"]
        self._identities = db["identities"]

    async def owners(self, tenant: str, keys: Sequence[IdentityKey]) -> dict[IdentityKey, str]:
        if not keys:
            return {}
        by_id = {key.storage_id(tenant): key for key in keys}
        # One reply for the whole batch (the default first batch stops at 101 documents).
        cursor = self._identities.find(one_of("_id", by_id), {"profileId": 1})
        return {by_id[doc["_id"]]: doc["profileId"] async for doc in cursor.batch_size(len(by_id))}

    async def profiles(self, tenant: str, profile_ids: Sequence[str]) -> dict[str, Profile]:
        if not profile_ids:
            return {}
        query = {**one_of("_id", profile_ids), "tenant": tenant}
        cursor = self._profiles.find(query).batch_size(len(profile_ids))
        return {doc["_id"]: profile_from_doc(doc) async for doc in cursor}

    async def insert_births(self, tenant: str, births: Sequence[NewProfile], now: datetime) -> None:
        docs = [
            {
                "_id": b.profile_id,
                "tenant": tenant,
                "state": PENDING,
                "stateAt": now,
                "birth": birth_to_doc(b.birth),
                "userId": b.user_id,
                "props": dict(b.properties),
                "keys": [k.key.storage_id(tenant) for k in b.birth.keys],
                "matchKeys": list(b.match_keys),
                "createdAt": now,
                "updatedAt": now,
            }
            for b in births
        ]
        await insert_absent(self._profiles, docs)  # fresh ids: none is held
        await checkpoint("import_insert_births")

    async def claim_keys(
        self,
        tenant: str,
        claims: Sequence[tuple[IdentityKey, Channel | None, str]],
        now: datetime,
    ) -> set[tuple[IdentityKey, str]]:
        docs = [
            {
                "_id": key.storage_id(tenant),
                "tenant": tenant,
                "type": key.type.value,
                "value": key.value,
                "profileId": profile_id,
                "channels": [channel.value] if channel else [],
                "createdAt": now,
            }
            for key, channel, profile_id in claims
        ]
        held = await insert_absent(self._identities, docs)
        await checkpoint("import_claim_keys")
        return {(claims[i][0], claims[i][2]) for i in held}

    async def discard_births(self, tenant: str, profile_ids: Sequence[str]) -> None:
        await self._profiles.delete_many(
            {**one_of("_id", profile_ids), "tenant": tenant, "state": PENDING}
        )

    async def activate_births(self, tenant: str, profile_ids: Sequence[str], now: datetime) -> None:
        if not profile_ids:
            return
        await self._profiles.update_many(
            {**one_of("_id", profile_ids), "tenant": tenant, "state": PENDING},
            {"$set": {"updatedAt": now}, "$unset": {"state": "", "stateAt": "", "birth": ""}},
        )
        await checkpoint("import_activate_births")

    async def write_values(
        self, tenant: str, writes: Sequence[tuple[str, Write]], now: datetime, list_cap: int
    ) -> int:
        operations = []
        for profile_id, write in writes:
            guard: dict[str, Any] = {"_id": profile_id, "tenant": tenant, "state": None}
            if isinstance(write, MergePlan):
                if write.union:
                    guard["$expr"] = list_caps(write.union, list_cap)
                operations.append(UpdateOne(guard, fold_pipeline(write, None, now)))
            else:
                operations.append(UpdateOne(guard, capture_pipeline(tenant, write, now)))
        result = await self._profiles.bulk_write(operations, ordered=False)
        await checkpoint("import_write_values")
        return int(result.matched_count)


def _job_to_doc(job: ImportJob) -> dict[str, Any]:
    return {
        "_id": job.id,
        "tenant": job.tenant,
        "mode": job.mode.value,
        "format": job.format.value,
        "source": job.source,
        "fingerprint": job.fingerprint,
        "actor": job.actor,
        "createdAt": job.created_at,
        "updatedAt": job.updated_at,
        "status": job.status.value,
        "counts": {
            "read": job.counts.read,
            "written": job.counts.written,
            "unchanged": job.counts.unchanged,
            "refused": job.counts.refused,
        },
        "checkpoint": {"row": job.row, "offset": job.offset},
        "header": list(job.header),
        "totalBytes": job.total_bytes,
        "finishedAt": job.finished_at,
        "error": job.error,
        "owner": job.owner,
    }


def _job_from_doc(doc: dict[str, Any]) -> ImportJob:
    counts = doc.get("counts") or {}
    mark = doc.get("checkpoint") or {}
    finished = doc.get("finishedAt")
    return ImportJob(
        id=doc["_id"],
        tenant=doc["tenant"],
        mode=ImportMode(doc["mode"]),
        format=ImportFormat(doc["format"]),
        source=doc["source"],
        fingerprint=doc["fingerprint"],
        actor=doc.get("actor") or "",
        created_at=utc(doc["createdAt"]),
        updated_at=utc(doc["updatedAt"]),
        status=JobStatus(doc["status"]),
        counts=ImportCounts(
            read=int(counts.get("read", 0)),
            written=int(counts.get("written", 0)),
            unchanged=int(counts.get("unchanged", 0)),
            refused=int(counts.get("refused", 0)),
        ),
        row=int(mark.get("row", 0)),
        offset=int(mark.get("offset", 0)),
        header=tuple(doc.get("header") or ()),
        total_bytes=int(doc.get("totalBytes") or 0),
        finished_at=utc(finished) if finished else None,
        error=doc.get("error"),
        owner=doc.get("owner") or "",
    )


class MongoImportJobs:
    """Import job documents (`import_jobs`) and their refused rows (`import_refusals`, one
    document per row and field, `_id` `job|row|field`, so recording one twice is harmless)."""

    def __init__(self, db: Any) -> None:
        self.jobs = db["import_jobs"]
        self.refused = db["import_refusals"]

    async def create_job(self, job: ImportJob) -> None:
        await self.jobs.insert_one(_job_to_doc(job))

    async def get_job(self, tenant: str, job_id: str) -> ImportJob | None:
        if not job_id or len(job_id) > 128 or not is_text(job_id):
            return None  # no job has such an id (a lone surrogate cannot even be encoded)
        doc = await self.jobs.find_one({"_id": job_id, "tenant": tenant})
        return _job_from_doc(doc) if doc else None

    async def unfinished_job(self, tenant: str, fingerprint: str) -> ImportJob | None:
        doc = await self.jobs.find_one(
            {"tenant": tenant, "fingerprint": fingerprint, "status": JobStatus.RUNNING.value}
        )
        return _job_from_doc(doc) if doc else None

    async def running_jobs(self) -> list[ImportJob]:
        cursor = self.jobs.find({"status": JobStatus.RUNNING.value}).sort("_id", 1)
        return [_job_from_doc(doc) async for doc in cursor]

    async def take_over(self, job: ImportJob, owner: str, now: datetime) -> ImportJob | None:
        result = await self.jobs.update_one(
            {"_id": job.id, "owner": job.owner, "status": JobStatus.RUNNING.value},
            {"$set": {"owner": owner, "updatedAt": now}},
        )
        if not result.matched_count:
            return None
        return await self.get_job(job.tenant, job.id)

    async def save_progress(self, job: ImportJob, refusals: Sequence[Refusal]) -> bool:
        if refusals:
            docs = [
                {
                    "_id": f"{job.id}|{r.row:012d}|{r.field}",
                    "job": job.id,
                    "tenant": job.tenant,
                    "row": r.row,
                    "field": r.field,
                    "code": r.code,
                    "message": r.message,
                }
                for r in refusals
            ]
            await insert_absent(self.refused, docs)  # recorded already: the same refusal
        doc = _job_to_doc(job)
        del doc["_id"]
        result = await self.jobs.update_one({"_id": job.id, "owner": job.owner}, {"$set": doc})
        await checkpoint("import_checkpoint")
        return bool(result.matched_count)

    async def refusals(self, tenant: str, job_id: str, after: str, limit: int) -> list[Refusal]:
        query = {"job": job_id, "tenant": tenant, "_id": {"$gt": f"{job_id}|{after}"}}
        cursor = self.refused.find(query).sort("_id", 1).limit(limit)
        return [
            Refusal(row=d["row"], field=d["field"], code=d["code"], message=d["message"])
            async for d in cursor
        ]
