"""Conversations, the activity timeline, and erase."""

from __future__ import annotations

from typing import Any

from domain.access import Role
from tests.conftest import OTHER_TENANT, Api
from tests.integration.queries import (
    ACTIVITY,
    CAPTURE,
    IDENTIFY,
    RECORD,
    TRACK,
    capture_input,
    identify_input,
    profile_gid,
    raw_id,
    track_input,
)

DELETE = """
mutation Delete($id: ID!) { deleteProfile(input: {id: $id}) { deletedProfileId } }
"""


def record_input(conversation_id: str, **fields: Any) -> dict[str, Any]:
    return {"input": {"conversationId": conversation_id, "channel": "WHATSAPP", **fields}}


async def test_a_second_call_with_the_same_id_updates_the_conversation(api: Api) -> None:
    created = await api.ok(
        RECORD,
        record_input(
            "t-1",
            senderId="919876543210",
            kind="TICKET",
            subject="Refund",
            startedAt="2024-05-01T10:00:00Z",
        ),
        role=Role.SDK,
    )
    first = created["recordConversation"]["conversation"]
    assert (first["kind"], first["status"], first["subject"]) == ("TICKET", "OPEN", "Refund")
    updated = await api.ok(
        RECORD,
        record_input(
            "t-1",
            kind="TICKET",
            status="RESOLVED",
            startedAt="2024-05-01T10:00:00Z",
            closedAt="2024-05-02T09:00:00Z",
        ),
        role=Role.SDK,
    )
    second = updated["recordConversation"]["conversation"]
    assert second["profileId"] == first["profileId"]
    assert second["status"] == "RESOLVED"
    assert second["subject"] == "Refund"
    assert second["closedAt"] == "2024-05-02T09:00:00+00:00"
    assert await api.db["conversations"].count_documents({}) == 1


async def test_activity_lists_events_and_conversations_newest_first_page_by_page(
    api: Api,
) -> None:
    await api.ok(
        TRACK,
        track_input("signup", channel="WHATSAPP", sender="919876543210", at="2024-01-01T00:00:00Z"),
    )
    await api.ok(
        RECORD, record_input("c-1", senderId="919876543210", startedAt="2024-02-01T00:00:00Z")
    )
    await api.ok(
        TRACK,
        track_input("purchase", channel="SMS", sender="+919876543210", at="2024-03-01T00:00:00Z"),
    )
    result = await api.ok(
        RECORD,
        record_input(
            "c-2", senderId="919876543210", kind="TICKET", startedAt="2024-04-01T00:00:00Z"
        ),
    )
    profile_id = result["recordConversation"]["conversation"]["profileId"]
    seen: list[str] = []
    after = None
    while True:
        data = await api.ok(ACTIVITY, {"id": profile_id, "first": 3, "after": after})
        page = data["profile"]["activity"]
        seen.extend(e["node"].get("name") or e["node"]["conversationId"] for e in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["c-2", "purchase", "c-1", "signup"]


async def test_conversations_move_with_a_merge(api: Api) -> None:
    await api.ok(IDENTIFY, identify_input("API", "crm-1", "u1"))
    await api.ok(
        RECORD, {"input": {"conversationId": "chat-9", "channel": "WEB", "senderId": "web-1"}}
    )
    merged = await api.ok(IDENTIFY, identify_input("WEB", "web-1", "u1"))
    survivor = merged["identify"]["profile"]["id"]
    data = await api.ok(ACTIVITY, {"id": survivor, "first": 10})
    assert [e["node"]["conversationId"] for e in data["profile"]["activity"]["edges"]] == ["chat-9"]


async def test_bad_conversation_input_is_refused_and_writes_nothing(api: Api) -> None:
    captured = await api.ok(CAPTURE, capture_input("WEB", "v1"))
    profile_id = captured["captureProperties"]["profile"]["id"]
    cases = [
        ("VALIDATION_FAILED", record_input("new-one"), "profileId"),
        ("VALIDATION_FAILED", record_input("bad id!", profileId=profile_id), "conversationId"),
        (
            "VALIDATION_FAILED",
            record_input("c", profileId=profile_id, subject="s" * 501),
            "subject",
        ),
        (
            "VALIDATION_FAILED",
            record_input(
                "c",
                profileId=profile_id,
                startedAt="2024-05-02T00:00:00Z",
                closedAt="2024-05-01T00:00:00Z",
            ),
            "closedAt",
        ),
        ("NOT_FOUND", record_input("c", profileId=profile_gid("0" * 32)), "profileId"),
        ("BLOCKED_IDENTIFIER", record_input("c", senderId="0"), "senderId"),
    ]
    for code, variables, field in cases:
        error = await api.refused(code, RECORD, variables)
        assert error["extensions"].get("field") == field, (variables, error)
    await api.refused(
        "VALIDATION_FAILED",
        RECORD,
        {
            "input": {
                "conversationId": "c",
                "channel": "WEB",
                "profileId": profile_id,
                "status": "DONE",
            }
        },
    )


# What the tombstone of an erased profile may keep: no value, no identifier of the person.
TOMBSTONE_FIELDS = {"_id", "tenant", "state", "erasedAt", "createdAt", "updatedAt"}
TOMBSTONE_FIELDS |= {"mergeHistory", "abandonedMerges", "mergedAt"}


async def _everything_about(api: Api, ids: set[str], values: set[str]) -> list[Any]:
    """Every document in any collection that mentions one of the ids or values, apart from
    the bare tombstones of the erased ids."""
    found: list[Any] = []
    for name in await api.db.list_collection_names():
        async for doc in api.db[name].find():
            if name == "profiles" and doc.get("state") == "ERASED" and doc["_id"] in ids:
                assert set(doc) <= TOMBSTONE_FIELDS, doc
                assert all(set(m) == {"mergeId"} for m in doc.get("mergeHistory") or []), doc
                continue
            text = repr(doc)
            if any(i in text for i in ids | values):
                found.append((name, doc))
    return found


async def test_erase_leaves_nothing_of_the_profile_in_any_collection(api: Api) -> None:
    await api.ok(
        IDENTIFY, identify_input("WHATSAPP", "14155552671", "erase-me", {"firstName": "Erin"})
    )
    await api.ok(CAPTURE, capture_input("WEB", "erase-visitor", {"gender": "f"}))
    merged = await api.ok(IDENTIFY, identify_input("WEB", "erase-visitor", "erase-me"))
    profile_id = merged["identify"]["profile"]["id"]
    old_id = merged["identify"]["mergedProfileId"]
    await api.ok(TRACK, track_input("purchase", profile_id=profile_id, event_id="erase-order"))
    await api.ok(RECORD, record_input("erase-chat", profileId=profile_id))
    keep = await api.ok(CAPTURE, capture_input("WEB", "someone-else", {"firstName": "Kim"}))

    assert await api.ok(DELETE, {"id": old_id}) == {"deleteProfile": {"deletedProfileId": old_id}}

    leftovers = await _everything_about(
        api,
        {raw_id(profile_id), raw_id(old_id)},
        {"erase-me", "14155552671", "erase-visitor", "erase-order", "erase-chat", "Erin"},
    )
    assert leftovers == []
    kept = keep["captureProperties"]["profile"]["id"]
    assert await api.db["profiles"].find_one({"_id": raw_id(kept)}) is not None
    await api.refused("NOT_FOUND", DELETE, {"id": profile_id})


async def test_only_an_admin_of_the_tenant_can_erase(api: Api) -> None:
    captured = await api.ok(CAPTURE, capture_input("WEB", "v1"))
    profile_id = captured["captureProperties"]["profile"]["id"]
    for role in (Role.SDK, Role.VIEWER, Role.AGENT):
        await api.refused("FORBIDDEN", DELETE, {"id": profile_id}, role=role)
    await api.refused("NOT_FOUND", DELETE, {"id": profile_id}, tenant=OTHER_TENANT)
