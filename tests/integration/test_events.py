"""trackEvent: stored events, exactly-once summaries, history (SPEC §8)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.access import Role
from domain.events import Event
from tests.conftest import OTHER_TENANT, TENANT, Api
from tests.integration.queries import (
    CAPTURE,
    HISTORY,
    IDENTIFY,
    TRACK,
    capture_input,
    identify_input,
    raw_id,
    track_input,
)


def _summaries(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in result["profile"]["events"]}


async def track(api: Api, *args: Any, **kw: Any) -> dict[str, Any]:
    data = await api.ok(TRACK, track_input(*args, **kw), role=Role.SDK)
    result: dict[str, Any] = data["trackEvent"]
    return result


async def test_summaries_keep_the_earliest_first_and_latest_last_whatever_the_order(
    api: Api,
) -> None:
    for at in [
        "2024-03-10T10:00:00Z",
        "2024-01-05T08:00:00Z",
        "2024-06-01T12:00:00Z",
        "2024-02-01T00:00:00Z",
    ]:
        result = await track(api, "purchase", sender="v1", at=at)
    summary = _summaries(result)["purchase"]
    assert summary["count"] == 4
    assert summary["firstSeen"] == "2024-01-05T08:00:00+00:00"
    assert summary["lastSeen"] == "2024-06-01T12:00:00+00:00"


async def test_a_first_event_from_an_unknown_sender_creates_the_profile(api: Api) -> None:
    result = await track(api, "signup", sender="new-visitor")
    assert result["counted"] is True
    assert _summaries(result)["signup"]["count"] == 1


async def test_twenty_concurrent_retries_of_one_event_id_count_once(api: Api) -> None:
    await track(api, "purchase", sender="v1", event_id="order-0")
    results = await asyncio.gather(
        *(
            api.ok(TRACK, track_input("purchase", sender="v1", event_id="order-42"), role=Role.SDK)
            for _ in range(20)
        )
    )
    assert sum(r["trackEvent"]["counted"] for r in results) == 1
    profile_id = results[0]["trackEvent"]["profile"]["id"]
    stored = await api.db["events"].count_documents({"eventId": "order-42"})
    assert stored == 1
    doc = await api.db["profiles"].find_one({"_id": raw_id(profile_id)})
    assert doc["events"]["purchase"]["count"] == 2
    assert await api.db["events"].count_documents({"pending": True}) == 0


async def test_a_retry_after_success_returns_the_stored_event(api: Api) -> None:
    first = await track(api, "purchase", sender="v1", event_id="o-1", at="2024-01-01T00:00:00Z")
    again = await track(api, "purchase", sender="v1", event_id="o-1", at="2024-05-05T00:00:00Z")
    assert first["counted"] is True
    assert again["counted"] is False
    assert again["event"]["occurredAt"] == "2024-01-01T00:00:00+00:00"
    assert _summaries(again)["purchase"]["count"] == 1


async def test_history_is_newest_first_filterable_and_paginated(api: Api) -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(7):
        name = "view" if i % 2 else "click"
        result = await track(api, name, sender="v1", at=(base + timedelta(days=i)).isoformat())
    profile_id = result["profile"]["id"]
    seen: list[str] = []
    after = None
    while True:
        data = await api.ok(HISTORY, {"id": profile_id, "first": 3, "after": after})
        page = data["profile"]["eventHistory"]
        seen.extend(edge["node"]["occurredAt"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == 7
    views = await api.ok(HISTORY, {"id": profile_id, "name": "view", "first": 10})
    assert [e["node"]["name"] for e in views["profile"]["eventHistory"]["edges"]] == ["view"] * 3


async def test_event_properties_are_kept(api: Api) -> None:
    result = await track(
        api,
        "purchase",
        sender="v1",
        properties={"amount": 12.5, "items": ["a", "b"], "meta": {"coupon": "X"}},
    )
    assert result["event"]["properties"] == {
        "amount": 12.5,
        "items": ["a", "b"],
        "meta": {"coupon": "X"},
    }


async def test_a_merge_moves_events_and_combines_summaries_exactly(api: Api) -> None:
    await api.ok(IDENTIFY, identify_input("API", "crm-1", "u1"))
    for at in ["2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"]:
        await api.ok(TRACK, track_input("purchase", channel="API", sender="crm-1", at=at))
    for at in ["2024-01-01T00:00:00Z", "2024-04-01T00:00:00Z", "2024-02-15T00:00:00Z"]:
        await api.ok(TRACK, track_input("purchase", sender="web-1", at=at))
    await api.ok(TRACK, track_input("signup", sender="web-1", at="2023-12-31T00:00:00Z"))

    merged = await api.ok(IDENTIFY, identify_input("WEB", "web-1", "u1"))
    survivor_id = merged["identify"]["profile"]["id"]
    doc = await api.db["profiles"].find_one({"_id": raw_id(survivor_id)})
    purchase = doc["events"]["purchase"]
    assert purchase["count"] == 5
    assert purchase["first"].isoformat().startswith("2024-01-01")
    assert purchase["last"].isoformat().startswith("2024-04-01")
    assert doc["events"]["signup"]["count"] == 1
    owners = await api.db["events"].distinct("profileId")
    assert owners == [raw_id(survivor_id)]


async def test_an_event_left_pending_by_a_crash_is_settled_by_recovery(api: Api) -> None:
    captured = await api.ok(CAPTURE, capture_input("WEB", "v1"))
    profile_id = captured["captureProperties"]["profile"]["id"]
    runtime = api.app.state.runtime.get()
    now = datetime.now(UTC)
    # The process died right after storing the event, before its summary was brought up to date.
    for i in range(3):
        event = Event(
            id=f"{TENANT}|e|crash-{i}",
            profile_id=raw_id(profile_id),
            name="purchase",
            properties={},
            occurred_at=now - timedelta(days=i),
            received_at=now,
            event_id=f"crash-{i}",
        )
        await runtime.activity._activity.insert_event(TENANT, event)
    assert "purchase" not in (
        (await api.db["profiles"].find_one({"_id": raw_id(profile_id)})).get("events") or {}
    )

    assert await runtime.activity.recover() == 3
    assert await runtime.activity.recover() == 0
    doc = await api.db["profiles"].find_one({"_id": raw_id(profile_id)})
    assert doc["events"]["purchase"]["count"] == 3
    retry = await track(api, "purchase", sender="v1", event_id="crash-1")
    assert retry["counted"] is False
    assert _summaries(retry)["purchase"]["count"] == 3


async def test_bad_event_input_is_refused_and_writes_nothing(api: Api) -> None:
    captured = await api.ok(CAPTURE, capture_input("WEB", "v1"))
    profile_id = captured["captureProperties"]["profile"]["id"]
    foreign = (await api.ok(CAPTURE, capture_input("WEB", "v9"), tenant=OTHER_TENANT))[
        "captureProperties"
    ]["profile"]["id"]
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("VALIDATION_FAILED", track_input("has space", sender="v2"), "name"),
        ("VALIDATION_FAILED", track_input("a.b", sender="v2"), "name"),
        ("VALIDATION_FAILED", track_input("x" * 65, sender="v2"), "name"),
        ("VALIDATION_FAILED", track_input("ok"), "profileId"),
        ("VALIDATION_FAILED", track_input("ok", sender="v2", profile_id=profile_id), "profileId"),
        ("VALIDATION_FAILED", track_input("ok", sender="v2", at=future), "occurredAt"),
        ("VALIDATION_FAILED", track_input("ok", sender="v2", event_id="has space"), "eventId"),
        (
            "VALIDATION_FAILED",
            {"input": {"name": "ok", "channel": "WEB", "senderId": "v2", "properties": [1]}},
            "properties",
        ),
        ("VALIDATION_FAILED", track_input("ok", sender="v2", properties={"$set": 1}), "properties"),
        (
            "VALIDATION_FAILED",
            track_input("ok", sender="v2", properties={"big": "x" * 9000}),
            "properties",
        ),
        (
            "VALIDATION_FAILED",
            track_input("ok", sender="v2", properties={f"k{i}": i for i in range(51)}),
            "properties",
        ),
        ("BLOCKED_IDENTIFIER", track_input("ok", sender="undefined"), "senderId"),
        ("NOT_FOUND", track_input("ok", profile_id=foreign), "profileId"),
        ("NOT_FOUND", track_input("ok", profile_id="0" * 32), "profileId"),
    ]
    for code, variables, field in cases:
        error = await api.refused(code, TRACK, variables, role=Role.SDK)
        assert error["extensions"].get("field") == field, (variables, error)


async def test_a_viewer_cannot_track(api: Api) -> None:
    await api.refused("FORBIDDEN", TRACK, track_input("ok", sender="v1"), role=Role.VIEWER)
