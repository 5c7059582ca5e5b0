"""Merges racing each other through the API: one survivor, no cycle, nothing lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from domain.access import Role
from tests import scenarios
from tests.conftest import TENANT, Api
from tests.integration.queries import (
    CAPTURE,
    DEFINE,
    IDENTIFY,
    MERGE,
    TRACK,
    capture_input,
    identify_input,
    merge_input,
    track_input,
)


@pytest.fixture(autouse=True)
def _stored_ids(request: pytest.FixtureRequest) -> None:
    """These tests compare answers with stored documents, so they speak the stored ids."""
    if "api" in request.fixturenames:
        request.getfixturevalue("api").speak_stored_ids()


async def _anonymous(api: Api, sender: str, props: dict[str, Any] | None = None) -> str:
    data = await api.ok(CAPTURE, capture_input("WEB", sender, props or {}))
    profile_id: str = data["captureProperties"]["profile"]["id"]
    return profile_id


async def _merge(api: Api, target: str, source: str) -> dict[str, Any]:
    return await api.post(MERGE, merge_input(target, source), role=Role.AGENT)


async def _assert_converged(api: Api) -> None:
    """No claim is left, every redirect chain ends in an active profile, every identity key
    leads to one."""
    assert await api.db["profiles"].count_documents({"merging": {"$ne": None}}) == 0
    docs = {d["_id"]: d async for d in api.db["profiles"].find({"tenant": TENANT})}
    for doc in docs.values():
        current, hops = doc, 0
        while current.get("mergedInto"):
            current = docs[current["mergedInto"]]
            hops += 1
            assert hops < len(docs), "a cycle of redirects"
    async for binding in api.db["identities"].find({"tenant": TENANT}):
        current = docs[binding["profileId"]]
        while current.get("mergedInto"):
            current = docs[current["mergedInto"]]
        assert not current.get("mergedInto")


async def test_a_into_b_racing_b_into_a_ends_with_one_survivor(api: Api) -> None:
    for round_ in range(8):
        a = await _anonymous(api, f"a{round_}", {"tags": [f"a{round_}"]})
        b = await _anonymous(api, f"b{round_}", {"tags": [f"b{round_}"]})
        results = await asyncio.gather(_merge(api, a, b), _merge(api, b, a))
        won = [r for r in results if not r.get("errors")]
        assert len(won) == 1, results
        for lost in (r for r in results if r.get("errors")):
            assert lost["errors"][0]["extensions"]["code"] == "MERGE_CONFLICT"
        survivor = won[0]["data"]["mergeProfiles"]["profile"]
        assert sorted(survivor["tags"]) == sorted([f"a{round_}", f"b{round_}"])
        active = {
            d["_id"] async for d in api.db["profiles"].find({"state": None, "_id": {"$in": [a, b]}})
        }
        assert active == {survivor["id"]}
    await _assert_converged(api)


async def test_one_source_into_twenty_targets_merges_into_exactly_one(api: Api) -> None:
    source = await _anonymous(api, "source", {"gender": "f"})
    targets = [await _anonymous(api, f"t{i}") for i in range(20)]
    results = await asyncio.gather(*(_merge(api, t, source) for t in targets))
    won = [r for r in results if not r.get("errors")]
    assert len(won) == 1
    assert {r["errors"][0]["extensions"]["code"] for r in results if r.get("errors")} == {
        "MERGE_CONFLICT"
    }
    winner = won[0]["data"]["mergeProfiles"]["profile"]["id"]
    doc = await api.db["profiles"].find_one({"_id": source})
    assert doc["mergedInto"] == winner
    assert (await api.db["profiles"].find_one({"_id": winner}))["props"]["gender"] == "f"
    others = (
        await api.db["profiles"].find({"_id": {"$in": targets}, "props.gender": "f"}).to_list(None)
    )
    assert [o["_id"] for o in others] == [winner]
    await _assert_converged(api)


async def test_a_cycle_of_three_merges_converges_to_one_survivor(api: Api) -> None:
    for round_ in range(5):
        a, b, c = [await _anonymous(api, f"{n}{round_}", {"tags": [n]}) for n in "abc"]
        await asyncio.gather(_merge(api, b, a), _merge(api, c, b), _merge(api, a, c))
        active = [
            d async for d in api.db["profiles"].find({"state": None, "_id": {"$in": [a, b, c]}})
        ]
        assert len(active) >= 1
        tags = sorted(t for d in active for t in d["props"]["tags"])
        assert tags == ["a", "b", "c"]  # whatever merged, nothing was lost
    await _assert_converged(api)


async def test_concurrent_identifies_merging_into_one_profile_lose_no_value_or_event(
    api: Api,
) -> None:
    for i in range(12):
        await api.ok(DEFINE, {"input": {"name": f"answer{i}", "type": "STRING"}})
    await api.ok(IDENTIFY, identify_input("API", "crm", "customer"))
    for i in range(12):
        await api.ok(
            CAPTURE, capture_input("WEB", f"visit-{i}", {f"answer{i}": str(i), "tags": [f"t{i}"]})
        )
        for j in range(i % 3 + 1):
            await api.ok(TRACK, track_input("view", sender=f"visit-{i}", event_id=f"v{i}-{j}"))
    results = await asyncio.gather(
        *(api.ok(IDENTIFY, identify_input("WEB", f"visit-{i}", "customer")) for i in range(12))
    )
    assert {r["identify"]["outcome"] for r in results} == {"MERGED"}
    [survivor] = await scenarios.active_profiles(api.db, TENANT)
    assert {k: v for k, v in survivor["props"].items() if k.startswith("answer")} == {
        f"answer{i}": str(i) for i in range(12)
    }
    assert sorted(survivor["props"]["tags"]) == sorted(f"t{i}" for i in range(12))
    expected_views = sum(i % 3 + 1 for i in range(12))
    assert survivor["events"]["view"]["count"] == expected_views
    assert await api.db["events"].count_documents({"profileId": survivor["_id"]}) == expected_views
    await _assert_converged(api)
