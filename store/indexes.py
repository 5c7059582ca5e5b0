"""Every index the service uses, declared in one place and created at start-up.

None of them is unique: uniqueness is carried by `_id`s, which a sharded cluster enforces.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

INDEXES: dict[str, list[IndexModel]] = {
    "profiles": [
        IndexModel([("tenant", ASCENDING), ("_id", ASCENDING)], name="tenant_id"),
        IndexModel([("state", ASCENDING), ("_id", ASCENDING)], name="state", sparse=True),
        IndexModel(
            [("tenant", ASCENDING), ("mergedInto", ASCENDING)], name="merged_into", sparse=True
        ),
        IndexModel(
            [("tenant", ASCENDING), ("merging.target", ASCENDING)],
            name="merging_target",
            sparse=True,
        ),
        IndexModel([("tenant", ASCENDING), ("matchKeys", ASCENDING)], name="tenant_match_keys"),
        IndexModel([("userIdClaim.at", ASCENDING)], name="user_id_claim", sparse=True),
        IndexModel([("unmerging.at", ASCENDING)], name="unmerging", sparse=True),
        IndexModel(
            [("tenant", ASCENDING), ("mergeHistory.mergeId", ASCENDING)],
            name="tenant_merge_ids",
            sparse=True,
        ),
    ],
    "identities": [
        IndexModel([("tenant", ASCENDING), ("profileId", ASCENDING)], name="tenant_profile"),
        IndexModel([("unsettled", ASCENDING)], name="unsettled", sparse=True),
    ],
    "events": [
        IndexModel(
            [("tenant", ASCENDING), ("profileId", ASCENDING), ("occurredAt", DESCENDING)],
            name="tenant_profile_time",
        ),
        IndexModel(
            [("tenant", ASCENDING), ("profileId", ASCENDING), ("name", ASCENDING)],
            name="tenant_profile_name",
        ),
        IndexModel(
            [("tenant", ASCENDING), ("name", ASCENDING), ("occurredAt", ASCENDING)],
            name="tenant_name_time",
        ),
        IndexModel(
            [("pending", ASCENDING), ("receivedAt", ASCENDING)], name="pending", sparse=True
        ),
    ],
    "conversations": [
        IndexModel([("unsettled", ASCENDING)], name="unsettled", sparse=True),
        IndexModel(
            [("tenant", ASCENDING), ("profileId", ASCENDING), ("startedAt", DESCENDING)],
            name="tenant_profile_start",
        ),
    ],
    "segments": [IndexModel([("tenant", ASCENDING), ("_id", ASCENDING)], name="tenant_id")],
    "property_definitions": [
        IndexModel([("tenant", ASCENDING), ("name", ASCENDING)], name="tenant_name"),
    ],
    "import_jobs": [
        IndexModel(
            [("tenant", ASCENDING), ("fingerprint", ASCENDING), ("status", ASCENDING)],
            name="tenant_fingerprint_status",
        ),
        IndexModel([("status", ASCENDING)], name="status"),
    ],
    "import_refusals": [
        IndexModel([("job", ASCENDING), ("row", ASCENDING)], name="job_row"),
    ],
    "api_keys": [
        IndexModel([("tenant", ASCENDING), ("keyId", ASCENDING)], name="tenant_key"),
    ],
}


async def ensure_indexes(db: Any) -> None:
    for collection, models in INDEXES.items():
        await db[collection].create_indexes(models)
