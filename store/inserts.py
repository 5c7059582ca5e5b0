"""Inserting documents whose `_id` nobody holds yet.

Each new document is written as an upsert on its `_id` that only sets fields on insert: the
first writer of an `_id` holds it, and the result says whether this write was that first
one, exactly what an insert that may meet a duplicate key says. On MongoDB the two cost
alike. On the embedded engine (mongoeco) an insert decodes every document of its collection
to compare `_id`s, while an upsert looks its `_id` up, so writes stay cheap as a tenant grows
to tens of thousands of profiles. `$setOnInsert` takes the document's fields as they are;
stored field names never hold `.` or start with `$` (domain.values checks every key, event
properties' included), so every document can be written this way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000


def _upsert(doc: Mapping[str, Any]) -> UpdateOne:
    fields = {name: value for name, value in doc.items() if name != "_id"}
    return UpdateOne({"_id": doc["_id"]}, {"$setOnInsert": fields}, upsert=True)


async def insert_one_absent(collection: Any, doc: Mapping[str, Any]) -> bool:
    """Insert the document unless its `_id` is held; whether it was inserted."""
    return not await insert_absent(collection, [doc])


async def insert_absent(collection: Any, docs: Sequence[Mapping[str, Any]]) -> set[int]:
    """Insert each document whose `_id` nobody holds yet, in one unordered command; the
    positions of those that were not inserted because their `_id` was held already (by
    whom, the caller reads)."""
    if not docs:
        return set()
    try:
        result = await collection.bulk_write([_upsert(doc) for doc in docs], ordered=False)
    except BulkWriteError as error:
        # Two upserts of one new `_id` at once: MongoDB retries the loser as an update and
        # reports a duplicate key only where it could not; either way the `_id` is held.
        failures = error.details.get("writeErrors", [])
        if any(failure.get("code") != DUPLICATE_KEY for failure in failures):
            raise
        inserted = {upserted["index"] for upserted in error.details.get("upserted", [])}
        return set(range(len(docs))) - inserted
    return set(range(len(docs))) - set(result.upserted_ids)
