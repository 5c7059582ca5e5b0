"""Segments in MongoDB."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.model import Segment
from store.documents import utc


def _segment(doc: Mapping[str, Any]) -> Segment:
    return Segment(
        id=doc["_id"],
        name=doc["name"],
        description=doc.get("description") or "",
        filter=doc["filter"],
        created_at=utc(doc["createdAt"]),
        updated_at=utc(doc["updatedAt"]),
    )


class MongoSegmentStore:
    """Saved filters, tenant-scoped."""

    def __init__(self, db: Any) -> None:
        self.segments = db["segments"]

    async def insert_segment(self, tenant: str, segment: Segment) -> Segment:
        await self.segments.insert_one(
            {
                "_id": segment.id,
                "tenant": tenant,
                "name": segment.name,
                "description": segment.description,
                "filter": dict(segment.filter),
                "createdAt": segment.created_at,
                "updatedAt": segment.updated_at,
            }
        )
        return segment

    async def replace_segment(self, tenant: str, segment: Segment) -> Segment | None:
        result = await self.segments.update_one(
            {"_id": segment.id, "tenant": tenant},
            {
                "$set": {
                    "name": segment.name,
                    "description": segment.description,
                    "filter": dict(segment.filter),
                    "updatedAt": segment.updated_at,
                }
            },
        )
        return segment if result.matched_count else None

    async def delete_segment(self, tenant: str, segment_id: str) -> bool:
        result = await self.segments.delete_one({"_id": segment_id, "tenant": tenant})
        return bool(result.deleted_count)

    async def get_segment(self, tenant: str, segment_id: str) -> Segment | None:
        doc = await self.segments.find_one({"_id": segment_id, "tenant": tenant})
        return _segment(doc) if doc else None

    async def list_segments(self, tenant: str) -> list[Segment]:
        cursor = self.segments.find({"tenant": tenant}).sort("_id", 1)
        return [_segment(doc) async for doc in cursor]
