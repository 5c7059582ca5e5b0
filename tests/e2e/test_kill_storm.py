"""Two API processes over one database, one of them killed with SIGKILL part-way through each
round of a storm of every kind of operation and then restarted, while the other keeps serving.
Afterwards `python -m server recover` leaves every invariant holding: `python -m server check`
finds nothing, and no event whose tracking succeeded is lost."""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from store.client import open_client
from tests.e2e.conftest import ROOT, ServerProcess, StartServer
from tests.integration.invariants import assert_invariants

pytestmark = pytest.mark.e2e

TENANT = "acme"
ROUNDS = int(os.environ.get("KILL_STORM_ROUNDS") or 5)
OPERATIONS = int(os.environ.get("KILL_STORM_OPERATIONS") or 320)
CONCURRENCY = 24
# Operations in flight when the kill comes: roughly this share of the round is done.
KILL_AFTER = 0.3
# Everything happens in one of two worlds that never touch: in the kept world nothing is ever
# erased, so every event tracked there must survive; the doomed world has erasures too.
KEPT = "kept"
DOOMED = "doomed"
REFUSALS = {"NOT_FOUND", "MERGE_CONFLICT", "VALIDATION_FAILED", "LIMIT_EXCEEDED"}
KINDS = [
    *["capture"] * 5,
    *["identify"] * 5,
    *["merge"] * 2,
    *["track"] * 5,
    *["record"] * 2,
    *["detach"] * 2,
    "erase",
]


def _senders(world: str) -> list[tuple[str, str]]:
    tag = world[0]
    phone = 10 if world == KEPT else 50
    return [
        *[("WEB", f"{tag}-web-{n}") for n in range(16)],
        *[("WHATSAPP", f"+9198765432{phone + n:02d}") for n in range(6)],
        *[("EMAIL", f"{tag}{n}@example.com") for n in range(5)],
        *[("API", f"{tag}-crm-{n}") for n in range(5)],
    ]


SENDERS = {world: _senders(world) for world in (KEPT, DOOMED)}
USERS = {world: [f"{world[0]}-user-{n}" for n in range(8)] for world in (KEPT, DOOMED)}

CAPTURE = """
mutation Capture($input: CapturePropertiesInput!) {
  captureProperties(input: $input) { profile { id } }
}
"""
IDENTIFY = """
mutation Identify($input: IdentifyInput!) {
  identify(input: $input) { outcome mergedProfileId profile { id userId } }
}
"""
MERGE = """
mutation Merge($input: MergeProfilesInput!) {
  mergeProfiles(input: $input) { mergedProfileId profile { id } }
}
"""
TRACK = """
mutation Track($input: TrackEventInput!) { trackEvent(input: $input) { counted profile { id } } }
"""
RECORD = """
mutation Record($input: RecordConversationInput!) {
  recordConversation(input: $input) { conversation { id profileId } }
}
"""
OWNER = """
query Owner($channel: Channel!, $senderId: String!) {
  profileByIdentity(channel: $channel, senderId: $senderId) { id }
}
"""
DETACH = """
mutation Detach($input: DetachIdentityInput!) {
  detachIdentity(input: $input) { profile { id } detached { id } }
}
"""
DELETE = "mutation Delete($id: ID!) { deleteProfile(input: {id: $id}) { deletedProfileId } }"


@dataclass
class Cluster:
    """Two servers over one database of the session's embedded engine (which lives in the
    test process, so it outlives any server killed here)."""

    env: dict[str, str]
    start: StartServer
    servers: list[ServerProcess]
    db: Any


@pytest.fixture
async def cluster(start_server: StartServer, mongo_uri: str) -> AsyncIterator[Cluster]:
    db_name = f"killstorm_{secrets.token_hex(4)}"
    env = {
        "MONGODB_URI": mongo_uri,
        "MONGODB_DB": db_name,
        "BOOTSTRAP_TENANT": TENANT,
        "BOOTSTRAP_API_KEY": f"p360_{secrets.token_urlsafe(24)}",
        "RATE_LIMIT_ADMIN": "1000000",
    }
    client = open_client(mongo_uri)
    yield Cluster(env, start_server, [start_server(env), start_server(env)], client[db_name])
    await client.drop_database(db_name)
    await client.close()


@dataclass
class Storm:
    """Sends operations to whichever of the two servers is up; knows what succeeded."""

    cluster: Cluster
    http: httpx.AsyncClient
    rng: random.Random
    up: list[bool] = field(default_factory=lambda: [True, True])
    ids: dict[str, list[str]] = field(default_factory=lambda: {KEPT: [], DOOMED: []})
    tracked: set[str] = field(default_factory=set)  # kept-world event ids tracked successfully
    outcomes: Counter[str] = field(default_factory=Counter)
    round: int = 0

    async def post(self, query: str, variables: dict[str, Any]) -> dict[str, Any] | None:
        """Send to a server that is up, and once more to the other if the first one dies
        under the request (as a client behind a balancer would). None: refused, or lost."""
        first = self.rng.randrange(2)
        for index in (first, 1 - first):
            if not self.up[index]:
                continue
            url = self.cluster.servers[index].base_url
            try:
                response = await self.http.post(
                    f"{url}/graphql", json={"query": query, "variables": variables}
                )
            except httpx.TransportError:
                self.outcomes["lost to the kill"] += 1
                continue
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            errors = body.get("errors")
            if errors:
                code = errors[0]["extensions"]["code"]
                assert code in REFUSALS, errors
                self.outcomes[code] += 1
                return None
            self.outcomes["ok"] += 1
            data: dict[str, Any] = body["data"]
            return data
        return None

    def _saw(self, world: str, *profile_ids: str | None) -> None:
        for profile_id in profile_ids:
            if profile_id and profile_id not in self.ids[world]:
                self.ids[world].append(profile_id)

    async def operation(self, kind: str) -> None:
        rng = self.rng
        world = DOOMED if kind == "erase" or rng.random() < 0.3 else KEPT
        channel, sender = rng.choice(SENDERS[world])
        known = self.ids[world]
        if kind in ("merge", "erase") and len(known) < 2:
            kind = "capture"
        if kind == "capture":
            data = await self.post(CAPTURE, {"input": {"channel": channel, "senderId": sender}})
            if data:
                self._saw(world, data["captureProperties"]["profile"]["id"])
        elif kind == "identify":
            value = {"channel": channel, "senderId": sender, "userId": rng.choice(USERS[world])}
            data = await self.post(IDENTIFY, {"input": value})
            if data:
                result = data["identify"]
                self.outcomes[f"identify {result['outcome']}"] += 1
                self._saw(world, result["profile"]["id"], result["mergedProfileId"])
        elif kind == "merge":
            target, source = rng.sample(known, 2)
            value = {"targetId": target, "sourceId": source}
            if data := await self.post(MERGE, {"input": value}):
                self.outcomes["merged"] += 1
                self._saw(world, data["mergeProfiles"]["profile"]["id"])
        elif kind == "track":
            event_id = f"{world}-{self.round}-{rng.randrange(60)}"  # retried now and then
            value = {
                "name": rng.choice(["view", "buy"]),
                "channel": channel,
                "senderId": sender,
                "eventId": event_id,
            }
            if data := await self.post(TRACK, {"input": value}):
                self._saw(world, data["trackEvent"]["profile"]["id"])
                if world == KEPT:
                    self.tracked.add(event_id)
        elif kind == "record":
            conversation = f"{world}-c{rng.randrange(12)}"
            value = {"conversationId": conversation, "channel": channel, "senderId": sender}
            if data := await self.post(RECORD, {"input": value}):
                self._saw(world, data["recordConversation"]["conversation"]["profileId"])
        elif kind == "detach":
            owner = await self.post(OWNER, {"channel": channel, "senderId": sender})
            if owner and owner["profileByIdentity"]:
                profile_id = owner["profileByIdentity"]["id"]
                value = {"profileId": profile_id, "channel": channel, "senderId": sender}
                if data := await self.post(DETACH, {"input": value}):
                    self.outcomes["detached"] += 1
                    self._saw(world, data["detachIdentity"]["detached"]["id"])
        else:
            if await self.post(DELETE, {"id": rng.choice(known)}):
                self.outcomes["erased"] += 1

    async def storm(self, victims: tuple[int, ...], *, restart: bool = True) -> None:
        """One round: OPERATIONS operations, CONCURRENCY at a time; once KILL_AFTER of them
        are done, SIGKILL the victims (with requests in flight), then restart them while the
        other server takes everything (or leave them dead)."""
        gate = asyncio.Semaphore(CONCURRENCY)
        done = 0
        enough = asyncio.Event()
        kinds = [self.rng.choice(KINDS) for _ in range(OPERATIONS)]

        async def one(kind: str) -> None:
            nonlocal done
            async with gate:
                await self.operation(kind)
            done += 1
            if done >= OPERATIONS * KILL_AFTER:
                enough.set()

        async def kill_and_restart(victim: int) -> None:
            await enough.wait()
            killed = self.cluster.servers[victim]
            killed.process.kill()  # SIGKILL: no shutdown, no cleanup, requests cut off
            self.up[victim] = False
            await asyncio.to_thread(killed.process.wait)
            self.outcomes["kills"] += 1
            if restart:
                restarted = await asyncio.to_thread(self.cluster.start, self.cluster.env)
                self.cluster.servers[victim] = restarted
                self.up[victim] = True

        await asyncio.gather(*(kill_and_restart(v) for v in victims), *map(one, kinds))


def _cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    env.update(MONGODB_URI=cluster.env["MONGODB_URI"], MONGODB_DB=cluster.env["MONGODB_DB"])
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_killing_a_server_mid_storm_loses_nothing_that_recovery_cannot_finish(
    cluster: Cluster,
) -> None:
    key = cluster.env["BOOTSTRAP_API_KEY"]
    async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {key}"}) as http:
        storm = Storm(cluster, http, random.Random(11))
        for round_ in range(ROUNDS):
            storm.round = round_
            await storm.storm((round_ % 2,))
        # The last round ends with both killed: nothing recovers at start-up after it.
        storm.round = ROUNDS
        await storm.storm((0, 1), restart=False)
    assert storm.outcomes["kills"] == ROUNDS + 2
    assert storm.outcomes["ok"] >= ROUNDS * OPERATIONS // 2, storm.outcomes

    # Alone on the database now, what a restarted process does first: finish every operation
    # left half-done.
    recovered = _cli(cluster, "recover")
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    db = cluster.db
    left = await db["profiles"].count_documents(
        {"state": {"$in": ["PENDING", "MERGING", "ERASING"]}}
    )
    assert left == 0, "recovery left operations half-done"
    assert await db["events"].count_documents({"pending": True}) == 0

    # The invariant checker, as an operator would run it after an incident.
    checked = _cli(cluster, "check", "--tenant", TENANT)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    await assert_invariants(db, TENANT)

    # Nothing in the kept world was erased: every event tracked there is stored exactly once
    # (its _id is the event id), on an active profile; every userId there is held once.
    events = {e["eventId"]: e async for e in db["events"].find({"tenant": TENANT})}
    assert not sorted(storm.tracked - set(events)), "events tracked successfully were lost"
    user_ids = [
        p["userId"]
        async for p in db["profiles"].find(
            {"tenant": TENANT, "state": None, "userId": {"$ne": None}}
        )
    ]
    assert len(user_ids) == len(set(user_ids))
