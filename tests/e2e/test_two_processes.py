"""Two API processes sharing one database keep every invariant under a storm of identifies,
merges, captures and events sent to both at once."""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from store.client import open_client
from tests.e2e.conftest import ServerProcess, StartServer
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

pytestmark = pytest.mark.e2e

USERS = 10
SENDERS = 60
LOOSE = 30


@pytest.fixture
async def two_servers(
    start_server: StartServer, mongo_uri: str
) -> AsyncIterator[tuple[list[ServerProcess], str, Any]]:
    db_name = f"storm_{secrets.token_hex(4)}"
    key = f"p360_{secrets.token_urlsafe(24)}"
    env = {
        "MONGODB_URI": mongo_uri,
        "MONGODB_DB": db_name,
        "BOOTSTRAP_TENANT": "acme",
        "BOOTSTRAP_API_KEY": key,
    }
    servers = [start_server(env), start_server(env)]
    client = open_client(mongo_uri)
    yield servers, key, client[db_name]
    await client.drop_database(db_name)
    await client.close()


async def test_a_storm_across_two_processes_keeps_every_invariant(
    two_servers: tuple[list[ServerProcess], str, Any],
) -> None:
    servers, key, db = two_servers
    rng = random.Random(7)
    clients = [
        httpx.AsyncClient(
            base_url=s.base_url, timeout=120, headers={"Authorization": f"Bearer {key}"}
        )
        for s in servers
    ]
    gate = asyncio.Semaphore(24)

    async def send(query: str, variables: dict[str, Any]) -> dict[str, Any]:
        async with gate:
            response = await rng.choice(clients).post(
                "/graphql", json={"query": query, "variables": variables}
            )
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        for error in body.get("errors") or []:
            assert error["extensions"]["code"] == "MERGE_CONFLICT", error
        return body

    # Setup: identified users, anonymous senders (each with its own tag), loose profiles.
    for s in range(SENDERS):  # a property of each sender's own, written during the storm
        await send(DEFINE, {"input": {"name": f"late{s}", "type": "STRING"}})
    for u in range(USERS):
        await send(IDENTIFY, identify_input("API", f"crm-{u}", f"user-{u}"))
    for s in range(SENDERS):
        await send(CAPTURE, capture_input("WEB", f"sender-{s}", {"tags": [f"s{s}"]}))
    loose = []
    for m in range(LOOSE):
        body = await send(CAPTURE, capture_input("API", f"loose-{m}", {"tags": [f"m{m}"]}))
        loose.append(body["data"]["captureProperties"]["profile"]["id"])

    # The storm: every kind of operation, to both processes, all at once.
    operations: list[tuple[str, dict[str, Any]]] = []
    tracked: set[str] = set()
    for s in range(SENDERS):
        operations.append((IDENTIFY, identify_input("WEB", f"sender-{s}", f"user-{s % USERS}")))
        for n in range(2):
            event_id = f"e-{s}-{n}"
            tracked.add(event_id)
            operations.append((TRACK, track_input("view", sender=f"sender-{s}", event_id=event_id)))
        operations.append((TRACK, track_input("view", sender=f"sender-{s}", event_id=f"e-{s}-0")))
        operations.append((CAPTURE, capture_input("WEB", f"sender-{s}", {f"late{s}": "seen"})))
    for _ in range(60):
        a, b = rng.sample(loose, 2)
        operations.append((MERGE, merge_input(a, b)))
    rng.shuffle(operations)
    assert len(operations) >= 200
    results = await asyncio.gather(*(send(q, v) for q, v in operations))
    for client in clients:
        await client.aclose()
    conflicts = sum(1 for r in results if r.get("errors"))

    # Invariants, read straight from the database.
    profiles = {d["_id"]: d async for d in db["profiles"].find({"tenant": "acme"})}
    assert not [p for p in profiles.values() if p.get("merging")], "a merge was left half-done"

    def survivor(profile_id: str) -> dict[str, Any]:
        current: dict[str, Any] = profiles[profile_id]
        hops = 0
        while current.get("mergedInto"):
            current = profiles[current["mergedInto"]]
            hops += 1
            assert hops <= len(profiles), "a cycle of redirects"
        return current

    active = [p for p in profiles.values() if not p.get("state")]
    bindings = [b async for b in db["identities"].find({"tenant": "acme"})]
    for binding in bindings:
        owner = survivor(binding["profileId"])
        if binding["type"] == "USER_ID":
            assert owner.get("userId") == binding["value"]
    holders = Counter(p.get("userId") for p in active if p.get("userId"))
    assert holders == Counter({f"user-{u}": 1 for u in range(USERS)})
    # Every sender reached its user's profile with everything it ever had, exactly once.
    tags = Counter(t for p in active for t in (p.get("props") or {}).get("tags", []))
    late = Counter(k for p in active for k in (p.get("props") or {}) if k.startswith("late"))
    for s in range(SENDERS):
        sender_binding = next(b for b in bindings if b["value"] == f"sender-{s}")
        owner = survivor(sender_binding["profileId"])
        assert owner.get("userId") == f"user-{s % USERS}"
        assert tags[f"s{s}"] == 1
        assert late[f"late{s}"] == 1
        assert owner["props"][f"late{s}"] == "seen"
    assert all(tags[f"m{m}"] == 1 for m in range(LOOSE))
    # Events: each stored once, each on an active profile, and the summaries agree exactly.
    events = [e async for e in db["events"].find({"tenant": "acme"})]
    assert sorted(e["eventId"] for e in events) == sorted(tracked)
    per_profile = Counter(survivor(e["profileId"])["_id"] for e in events)
    assert all(not profiles[e["profileId"]].get("mergedInto") for e in events)
    for profile in active:
        count = ((profile.get("events") or {}).get("view") or {}).get("count", 0)
        assert count == per_profile[profile["_id"]], profile["_id"]
    assert conflicts <= 60  # only merges may be refused (sources already merged away)
