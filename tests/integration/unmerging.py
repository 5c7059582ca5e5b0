"""What the unmerge tests share: the operations, and a profile's state as a comparable value."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schema.ids import parse
from tests.conftest import TENANT, Api

UNMERGE = """
mutation Unmerge($input: UnmergeProfilesInput!) {
  unmergeProfiles(input: $input) {
    mergeId
    source { id userId properties tags mergedInto
      unmergeHistory { mergeId sourceId survivorId at actor } }
    survivor { id userId properties tags
      mergeHistory { mergeId sourceId undoneAt undoneBy }
      unmergeHistory { mergeId sourceId survivorId actor kept { property item } } }
    removed { property item value sourceValue }
    kept { property item value sourceValue }
  }
}
"""

PREVIEW = """
query Preview($mergeId: ID!) {
  unmergePreview(mergeId: $mergeId) {
    mergeId sourceId survivorId sourceProperties sourceUserId userIdReturns
    identities { type value channels }
    eventCount conversationCount restored
    removed { property item value sourceValue }
    kept { property item value sourceValue }
  }
}
"""

MERGE_IDS = """
query MergeIds($id: ID!) {
  profile(id: $id) { id mergeHistory { mergeId sourceId undoneAt } }
}
"""


def unmerge_input(merge_id: str) -> dict[str, Any]:
    return {"input": {"mergeId": merge_id}}


async def merge_id_of(api: Api, survivor: str, source: str, *, tenant: str = TENANT) -> str:
    """The id of the merge of `source` into `survivor`, read as an agent reads it."""
    data = await api.ok(MERGE_IDS, {"id": survivor}, tenant=tenant)
    ids = [m["mergeId"] for m in data["profile"]["mergeHistory"] if m["sourceId"] == source]
    assert len(ids) == 1, data
    return str(ids[0])


def stored_id(profile_id: str) -> str:
    """The database key of a profile id as the API shows it (a global id) or as stored."""
    parsed = parse(profile_id)
    return parsed[1] if parsed is not None else profile_id


def _plain(doc: dict[str, Any], *drop: str) -> dict[str, Any]:
    """A record without the fields that only say how it travelled (or when it was checked)."""
    ignored = {"movedBy", "unsettled", "_id", "profileId", "tenant", *drop}
    return {k: v for k, v in doc.items() if k not in ignored}


async def state_of(api: Api, profile_id: str) -> dict[str, Any]:
    """Everything a profile is, from the raw documents, except updatedAt, its histories and
    its match keys (a lookup aid that only grows): values, userId, state, key ledger, event
    summaries, and its identity keys, events and conversations with their contents."""
    db = api.db
    profile_id = stored_id(profile_id)
    doc = await db["profiles"].find_one({"_id": profile_id})
    assert doc is not None, profile_id
    owned = {"profileId": profile_id}
    return {
        "state": doc.get("state"),
        "props": doc.get("props") or {},
        "userId": doc.get("userId"),
        "keys": sorted(doc.get("keys") or ()),
        "events": doc.get("events") or {},
        "sourceOnly": doc.get("sourceOnly") or [],
        "unmerging": doc.get("unmerging"),
        "identities": sorted(
            [(d["_id"], _plain(d)) async for d in db["identities"].find(owned)], key=repr
        ),
        "stored events": sorted(
            [(d["_id"], _plain(d)) async for d in db["events"].find(owned)], key=repr
        ),
        "conversations": sorted(
            [(d["_id"], _plain(d)) async for d in db["conversations"].find(owned)], key=repr
        ),
    }


def with_contact(state: dict[str, Any], channel: str, answered: dict[str, Any]) -> dict[str, Any]:
    """A profile's state after a contact through `channel` at the time an answered profile
    gives as its lastSession (the identify's own contact, as the survivor answered it)."""
    at = datetime.fromisoformat(answered["lastSession"])
    return {**state, "props": {**state["props"], "lastChannel": channel, "lastSession": at}}
