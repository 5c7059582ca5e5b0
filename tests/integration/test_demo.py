"""`python -m server demo`'s data set, loaded through the use cases: every kind of data the
console shows, and a second run changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.access import Role
from server.demo import load_demo
from tests.conftest import Api

TENANT = "demo-test"
SIZE = 24

OVERVIEW = """
query Overview {
  profileCount
  segments { name count }
  profiles(first: 100) { edges { node {
    id userId lastChannel mergeHistory { trigger }
    activity(first: 20) { edges { node { __typename ... on Conversation { status } } } }
  } } }
}"""
SUGGESTIONS = """query S($id: ID!) { mergeSuggestions(profileId: $id) { matchedOn } }"""


async def _load(api: Api) -> None:
    runtime = api.app.state.runtime.get()
    report = await load_demo(
        TENANT, runtime.services, runtime.activity, runtime.segments, datetime.now(UTC), size=SIZE
    )
    assert report.errors == []


async def test_the_demo_holds_every_kind_of_data_and_a_second_run_changes_nothing(
    api: Api,
) -> None:
    await _load(api)
    first = await api.ok(OVERVIEW, role=Role.VIEWER, tenant=TENANT)
    profiles = [e["node"] for e in first["profiles"]["edges"]]
    assert first["profileCount"] == len(profiles) > SIZE  # look-alikes too
    assert {p["lastChannel"] for p in profiles} >= {
        "WHATSAPP",
        "WEB",
        "SMS",
        "EMAIL",
        "MESSENGER",
        "INSTAGRAM",
        "VOICE",
        "API",
    }
    assert any(p["userId"] for p in profiles)
    assert not all(p["userId"] for p in profiles)
    assert any(m["trigger"] == "IDENTIFY" for p in profiles for m in p["mergeHistory"])
    items = [e["node"] for p in profiles for e in p["activity"]["edges"]]
    assert {"Event", "Conversation"} <= {i["__typename"] for i in items}
    assert {"OPEN", "CLOSED"} <= {i["status"] for i in items if "status" in i}
    suggested = [
        p
        for p in profiles
        if (await api.ok(SUGGESTIONS, {"id": p["id"]}, role=Role.VIEWER, tenant=TENANT))[
            "mergeSuggestions"
        ]
    ]
    assert suggested
    assert [s["name"] for s in first["segments"]] == [
        "Repeat buyers",
        "VIPs in India",
        "Pro and enterprise",
    ]

    await _load(api)
    assert await api.ok(OVERVIEW, role=Role.VIEWER, tenant=TENANT) == first
