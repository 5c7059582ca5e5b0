"""Merge suggestions, manual merges and detach (SPEC §7)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from domain.access import Role
from domain.ports import MergeLimits
from tests.conftest import OTHER_TENANT, Api
from tests.integration.queries import (
    CAPTURE,
    DETACH,
    IDENTIFY,
    MERGE,
    PROFILE,
    RECORD,
    SUGGESTIONS,
    TRACK,
    capture_input,
    identify_input,
    merge_input,
    profile_gid,
    raw_id,
    track_input,
)


async def _capture(
    api: Api, channel: str, sender: str, props: dict[str, Any] | None = None, **context: Any
) -> str:
    data = await api.ok(CAPTURE, capture_input(channel, sender, props or {}, **context))
    profile_id: str = data["captureProperties"]["profile"]["id"]
    return profile_id


async def _suggestions(api: Api, profile_id: str) -> list[dict[str, Any]]:
    data = await api.ok(SUGGESTIONS, {"id": profile_id}, role=Role.AGENT)
    found: list[dict[str, Any]] = data["mergeSuggestions"]
    return found


async def _active_ids(api: Api) -> set[str]:
    return {profile_gid(d["_id"]) async for d in api.db["profiles"].find({"state": None})}


# ----- suggestions ---------------------------------------------------------------------------


async def test_a_whatsapp_and_an_email_profile_sharing_a_phone_are_suggested_to_each_other(
    api: Api,
) -> None:
    whatsapp = await _capture(api, "WHATSAPP", "919876543210")  # phone auto-captured
    email = await _capture(api, "EMAIL", "asha@example.com", {"phone": "+91 98765 43210"})
    [found] = await _suggestions(api, whatsapp)
    assert found["profile"]["id"] == email
    assert found["matchedOn"] == ["PHONE"]
    assert 0 < found["score"] <= 1
    [back] = await _suggestions(api, email)
    assert back["profile"]["id"] == whatsapp
    assert back["matchedOn"] == ["PHONE"]
    assert await _active_ids(api) == {whatsapp, email}  # nothing merged by itself


async def test_gmail_dots_and_plus_tags_are_an_email_match(api: Api) -> None:
    first = await _capture(api, "WEB", "v1", {"email": "John.Smith+promo@gmail.com"})
    second = await _capture(api, "WEB", "v2", {"email": "johnsmith@gmail.com"})
    other = await _capture(api, "WEB", "v3", {"email": "john.smith@example.com"})
    [found] = await _suggestions(api, first)
    assert (found["profile"]["id"], found["matchedOn"]) == (second, ["EMAIL"])
    assert [s["profile"]["id"] for s in await _suggestions(api, second)] == [first]
    assert await _suggestions(api, other) == []
    assert await _active_ids(api) == {first, second, other}


async def test_an_external_id_match_scores_highest_and_orders_first(api: Api) -> None:
    crm = await api.ok(
        IDENTIFY, identify_input("API", "crm-7", "C-1001", {"phone": "+14155552671"})
    )
    crm_id = crm["identify"]["profile"]["id"]
    by_phone = await _capture(api, "SMS", "+14155552671")
    by_id = await _capture(api, "API", "C-1001")
    found = await _suggestions(api, crm_id)
    assert [s["profile"]["id"] for s in found] == [by_id, by_phone]
    assert found[0]["matchedOn"] == ["EXTERNAL_ID"]
    assert found[0]["score"] > found[1]["score"]


async def test_profiles_with_different_user_ids_are_not_suggested(api: Api) -> None:
    one = await api.ok(IDENTIFY, identify_input("WEB", "v1", "u1", {"phone": "+14155552671"}))
    await api.ok(IDENTIFY, identify_input("WEB", "v2", "u2", {"phone": "+14155552671"}))
    assert await _suggestions(api, one["identify"]["profile"]["id"]) == []


async def test_suggestions_of_an_unknown_or_foreign_profile_are_not_found(api: Api) -> None:
    foreign = await _capture(api, "WEB", "v1")
    error = await api.error(SUGGESTIONS, {"id": foreign}, tenant=OTHER_TENANT)
    assert error["extensions"]["code"] == "NOT_FOUND"
    await api.refused("FORBIDDEN", SUGGESTIONS, {"id": foreign}, role=Role.SDK)


# ----- manual merges -------------------------------------------------------------------------


async def test_a_manual_merge_keeps_the_target_and_moves_everything(api: Api) -> None:
    target = await _capture(api, "EMAIL", "asha@example.com", {"firstName": "Asha", "tags": ["a"]})
    source = await _capture(
        api, "WHATSAPP", "919876543210", {"firstName": "Ash", "gender": "f", "tags": ["b", "a"]}
    )
    await api.ok(
        TRACK,
        track_input(
            "purchase", channel="WHATSAPP", sender="919876543210", at="2024-02-01T00:00:00Z"
        ),
    )
    await api.ok(
        TRACK,
        track_input(
            "purchase", channel="EMAIL", sender="asha@example.com", at="2024-01-01T00:00:00Z"
        ),
    )
    await api.ok(
        RECORD,
        {"input": {"conversationId": "wa-chat", "channel": "WHATSAPP", "senderId": "919876543210"}},
    )

    data = await api.ok(MERGE, merge_input(target, source), role=Role.AGENT)

    survivor = data["mergeProfiles"]["profile"]
    assert data["mergeProfiles"]["mergedProfileId"] == source
    assert survivor["id"] == target
    assert survivor["userId"] == "asha@example.com"
    assert survivor["firstName"] == "Asha"
    assert survivor["properties"]["gender"] == "f"
    assert survivor["tags"] == ["a", "b"]
    assert survivor["country"] == "IN"  # the pair, filled: the target had neither
    assert sorted(i["type"] for i in survivor["identities"]) == ["EMAIL", "PHONE", "USER_ID"]
    assert survivor["events"] == [{"name": "purchase", "count": 2}]
    [entry] = survivor["mergeHistory"]
    assert (entry["sourceId"], entry["trigger"], entry["actor"]) == (source, "MANUAL", "agent-key")
    redirected = (await api.ok(PROFILE, {"id": source}))["profile"]
    assert (redirected["id"], redirected["mergedInto"]) == (target, target)
    chat = await api.db["conversations"].find_one({"conversationId": "wa-chat"})
    assert chat["profileId"] == raw_id(target)
    assert await _active_ids(api) == {target}


async def test_a_merge_record_keeps_what_an_undo_would_need(api: Api) -> None:
    target = await _capture(api, "WEB", "t1", {"gender": "m"})
    source = await _capture(api, "WEB", "s1", {"firstName": "Sam", "tags": ["x"]})
    await api.ok(TRACK, track_input("visit", sender="s1"))
    await api.ok(MERGE, merge_input(target, source))
    doc = await api.db["profiles"].find_one({"_id": raw_id(target)})
    [record] = doc["mergeHistory"]
    assert record["sourceProperties"]["firstName"] == "Sam"
    assert record["sourceProperties"]["tags"] == ["x"]
    moved = {"movedBy": record["mergeId"]}
    assert [i["value"] async for i in api.db["identities"].find(moved)] == ["s1"]
    assert [e["name"] async for e in api.db["events"].find(moved)] == ["visit"]


async def test_an_identified_source_gives_its_user_id_to_an_unidentified_target(
    api: Api,
) -> None:
    target = await _capture(api, "WEB", "t1")
    identified = await api.ok(IDENTIFY, identify_input("API", "crm-1", "u-9"))
    source = identified["identify"]["profile"]["id"]
    data = await api.ok(MERGE, merge_input(target, source))
    assert data["mergeProfiles"]["profile"]["userId"] == "u-9"
    found = await api.ok("query($u: String!) { profileByUserId(userId: $u) { id } }", {"u": "u-9"})
    assert found["profileByUserId"]["id"] == target


async def test_merges_that_cannot_be_are_refused_with_merge_conflict(api: Api) -> None:
    one = (await api.ok(IDENTIFY, identify_input("WEB", "v1", "u1")))["identify"]["profile"]["id"]
    two = (await api.ok(IDENTIFY, identify_input("WEB", "v2", "u2")))["identify"]["profile"]["id"]
    anon = await _capture(api, "WEB", "v3")
    error = await api.refused("MERGE_CONFLICT", MERGE, merge_input(one, two))
    assert "different userIds" in error["message"]
    await api.refused("MERGE_CONFLICT", MERGE, merge_input(one, one))
    await api.ok(MERGE, merge_input(one, anon))
    error = await api.refused("MERGE_CONFLICT", MERGE, merge_input(two, anon))
    assert error["extensions"]["field"] == "sourceId"
    error = await api.refused("MERGE_CONFLICT", MERGE, merge_input(anon, two))
    assert error["extensions"]["field"] == "targetId"


async def test_merges_of_unknown_or_foreign_profiles_are_not_found(api: Api) -> None:
    mine = await _capture(api, "WEB", "v1")
    theirs = (await api.ok(CAPTURE, capture_input("WEB", "v1"), tenant=OTHER_TENANT))[
        "captureProperties"
    ]["profile"]["id"]
    await api.refused("NOT_FOUND", MERGE, merge_input(mine, theirs))
    await api.refused("NOT_FOUND", MERGE, merge_input(theirs, mine))
    await api.refused("NOT_FOUND", MERGE, merge_input(mine, profile_gid("0" * 32)))


async def test_only_agents_and_admins_merge_and_detach(api: Api) -> None:
    a, b = await _capture(api, "WEB", "v1"), await _capture(api, "WEB", "v2")
    for role in (Role.SDK, Role.VIEWER):
        await api.refused("FORBIDDEN", MERGE, merge_input(a, b), role=role)
        await api.refused(
            "FORBIDDEN",
            DETACH,
            {"input": {"profileId": a, "channel": "WEB", "senderId": "v1"}},
            role=role,
        )


@pytest.fixture
async def limited(api: Api) -> Api:
    services = api.app.state.runtime.get().services
    services.merger.limits = MergeLimits(merges=2, identities=3)
    return api


async def test_merges_past_the_merge_limit_are_refused(limited: Api) -> None:
    api = limited
    # Only the merge limit applies here.
    api.app.state.runtime.get().services.merger.limits = MergeLimits(merges=2, identities=100)
    target = await _capture(api, "WEB", "t")
    for i in range(2):
        await api.ok(MERGE, merge_input(target, await _capture(api, "API", f"s{i}")))
    extra = await _capture(api, "API", "s-extra")
    error = await api.refused("LIMIT_EXCEEDED", MERGE, merge_input(target, extra))
    assert "2 merges" in error["message"]


async def test_merges_past_the_identity_limit_are_refused(limited: Api) -> None:
    api = limited
    target = (await api.ok(IDENTIFY, identify_input("WEB", "t", "u1")))["identify"]["profile"]["id"]
    await api.ok(CAPTURE, capture_input("WHATSAPP", "14155552671"))
    await api.ok(CAPTURE, capture_input("SMS", "14155552671"))
    source = await _capture(api, "WHATSAPP", "14155552671")
    await api.ok(MERGE, merge_input(target, source))  # three identities: at the limit
    another = await _capture(api, "API", "crm-1")
    error = await api.refused("LIMIT_EXCEEDED", MERGE, merge_input(target, another))
    assert "3 identities" in error["message"]
    await api.refused("LIMIT_EXCEEDED", IDENTIFY, identify_input("API", "crm-1", "u1"))


# ----- detach --------------------------------------------------------------------------------


async def test_detach_moves_one_identity_and_its_conversations_to_a_new_profile(api: Api) -> None:
    profile = (
        await api.ok(
            IDENTIFY, identify_input("WHATSAPP", "919876543210", "u1", {"firstName": "Asha"})
        )
    )["identify"]["profile"]
    await api.ok(CAPTURE, capture_input("WEB", "shared-laptop"))
    await api.ok(IDENTIFY, identify_input("WEB", "shared-laptop", "u1"))
    await api.ok(
        RECORD,
        {"input": {"conversationId": "web-chat", "channel": "WEB", "senderId": "shared-laptop"}},
    )
    await api.ok(
        RECORD,
        {"input": {"conversationId": "wa-chat", "channel": "WHATSAPP", "senderId": "919876543210"}},
    )

    data = await api.ok(
        DETACH,
        {"input": {"profileId": profile["id"], "channel": "WEB", "senderId": "shared-laptop"}},
        role=Role.AGENT,
    )

    remaining = data["detachIdentity"]["profile"]
    detached = data["detachIdentity"]["detached"]
    assert remaining["id"] == profile["id"]
    assert sorted(i["type"] for i in remaining["identities"]) == ["PHONE", "USER_ID"]
    assert detached["id"] != profile["id"]
    assert detached["identities"] == [
        {"type": "VISITOR", "value": "shared-laptop", "channels": ["WEB"]}
    ]
    assert detached["userId"] is None
    assert detached["firstName"] is None  # a new, empty profile
    assert [e["node"]["__typename"] for e in detached["activity"]["edges"]] == ["Conversation"]
    chats = {
        c["conversationId"]: profile_gid(c["profileId"])
        async for c in api.db["conversations"].find()
    }
    assert chats == {"web-chat": detached["id"], "wa-chat": profile["id"]}
    again = await api.ok(CAPTURE, capture_input("WEB", "shared-laptop"))
    assert again["captureProperties"]["profile"]["id"] == detached["id"]


async def test_detach_refuses_the_last_identity_the_user_id_and_strangers(api: Api) -> None:
    alone = await _capture(api, "WEB", "v1")
    error = await api.refused(
        "VALIDATION_FAILED",
        DETACH,
        {"input": {"profileId": alone, "channel": "WEB", "senderId": "v1"}},
    )
    assert "last identity" in error["message"]
    email = await _capture(api, "EMAIL", "asha@example.com")  # identified by its address
    await api.ok(
        RECORD,
        {"input": {"conversationId": "c", "channel": "WEB", "senderId": "x", "profileId": None}},
    )
    error = await api.refused(
        "VALIDATION_FAILED",
        DETACH,
        {"input": {"profileId": email, "channel": "EMAIL", "senderId": "asha@example.com"}},
    )
    assert "userId" in error["message"]
    await api.refused(
        "NOT_FOUND",
        DETACH,
        {"input": {"profileId": alone, "channel": "WEB", "senderId": "somebody-else"}},
    )
    await api.refused(
        "BLOCKED_IDENTIFIER",
        DETACH,
        {"input": {"profileId": alone, "channel": "WEB", "senderId": "null"}},
    )


async def test_a_merge_after_limits_change_uses_the_configured_values(api: Api) -> None:
    from server.config import Settings

    settings = Settings.from_env({"MAX_IDENTITIES_PER_PROFILE": "7", "MAX_MERGES_PER_PROFILE": "9"})
    assert (settings.max_identities, settings.max_merges) == (7, 9)
    assert replace(settings, max_merges=1).max_merges == 1
