"""Fault injection: the process dies right after each step of the merge protocol; recovery
then finishes the merge, and the result equals that of a merge that never failed."""

from __future__ import annotations

from typing import Any, cast

import pytest

from domain.identity import Channel
from domain.identity_management import IdentityManagement
from domain.ports import ProfileStore
from domain.services import ProfileService
from server.app import SystemClock
from tests.conftest import Api
from tests.integration.queries import (
    CAPTURE,
    IDENTIFY,
    RECORD,
    TRACK,
    capture_input,
    identify_input,
    track_input,
)


@pytest.fixture(autouse=True)
def _stored_ids(request: pytest.FixtureRequest) -> None:
    """These tests compare answers with stored documents, so they speak the stored ids."""
    if "api" in request.fixturenames:
        request.getfixturevalue("api").speak_stored_ids()


# The protocol's steps, in order, as the store methods that perform them.
STEPS = [
    "claim_merge_source",
    "fold_merge",
    "mark_folded",
    "move_records",
    "refresh_event_summaries",
    "retire_source",
]


class Crash(Exception):
    """The process died here."""


class CrashAfter:
    """The real store, except that the process dies right after one step completes."""

    def __init__(self, store: ProfileStore, step: str) -> None:
        self._store = store
        self._step = step

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if name != self._step:
            return method

        async def step_then_crash(*args: Any, **kwargs: Any) -> Any:
            await method(*args, **kwargs)
            raise Crash(name)

        return step_then_crash


def _dying(api: Api, step: str) -> IdentityManagement:
    """The services of a process that will die right after `step`."""
    services = api.app.state.runtime.get().services
    store = cast(ProfileStore, CrashAfter(services._store, step))
    return IdentityManagement(
        ProfileService(store, SystemClock(), services._geo), store, SystemClock()
    )


async def _scenario(api: Api, tenant: str) -> tuple[str, str]:
    """An identified target and an anonymous source with values, tags, events (one name
    shared) and a conversation each. Returns (target id, source id)."""
    target = await api.ok(
        IDENTIFY,
        identify_input("API", "crm-1", "customer", {"firstName": "Asha", "tags": ["a"]}),
        tenant=tenant,
    )
    source = await api.ok(
        CAPTURE,
        capture_input(
            "WHATSAPP", "919876543210", {"gender": "f", "tags": ["b", "a"]}, displayName="Ash Rao"
        ),
        tenant=tenant,
    )
    for sender, channel, name, at in [
        ("crm-1", "API", "purchase", "2024-02-01T00:00:00Z"),
        ("919876543210", "WHATSAPP", "purchase", "2024-01-01T00:00:00Z"),
        ("919876543210", "WHATSAPP", "purchase", "2024-03-01T00:00:00Z"),
        ("919876543210", "WHATSAPP", "signup", "2023-12-01T00:00:00Z"),
    ]:
        await api.ok(TRACK, track_input(name, channel=channel, sender=sender, at=at), tenant=tenant)
    for conversation, channel, sender in [
        ("c-crm", "API", "crm-1"),
        ("c-wa", "WHATSAPP", "919876543210"),
    ]:
        await api.ok(
            RECORD,
            {"input": {"conversationId": conversation, "channel": channel, "senderId": sender}},
            tenant=tenant,
        )
    return (target["identify"]["profile"]["id"], source["captureProperties"]["profile"]["id"])


async def _state(api: Api, tenant: str, target: str, source: str) -> dict[str, Any]:
    """Everything a merge decides, in a form comparable across tenants."""
    db = api.db
    survivor = await db["profiles"].find_one({"_id": target})
    retired = await db["profiles"].find_one({"_id": source})
    props = {k: v for k, v in survivor["props"].items() if k != "lastSession"}
    bindings = [b async for b in db["identities"].find({"tenant": tenant})]
    return {
        "props": props,
        "userId": survivor.get("userId"),
        "events": {
            name: (s["count"], s["first"], s["last"])
            for name, s in sorted((survivor.get("events") or {}).items())
        },
        "merges": [(m["trigger"], m["sourceId"] == source) for m in survivor["mergeHistory"]],
        "identities": sorted((b["type"], b["value"], b["profileId"] == target) for b in bindings),
        "stored events": await db["events"].count_documents(
            {"tenant": tenant, "profileId": target}
        ),
        "events left behind": await db["events"].count_documents({"profileId": source}),
        "conversations": sorted(
            [
                (c["conversationId"], c["profileId"] == target)
                async for c in db["conversations"].find({"tenant": tenant})
            ]
        ),
        "source redirects": (retired.get("mergedInto") == target, "props" in retired),
        "claims left": await db["profiles"].count_documents(
            {"tenant": tenant, "merging": {"$ne": None}}
        ),
    }


@pytest.fixture
async def reference(api: Api) -> dict[str, Any]:
    identity = api.app.state.runtime.get().identity
    target, source = await _scenario(api, "reference")
    await identity.merge_profiles("reference", target, source, actor="agent")
    return await _state(api, "reference", target, source)


@pytest.mark.parametrize("step", STEPS)
async def test_a_merge_that_dies_after_any_step_is_finished_by_recovery(
    api: Api, reference: dict[str, Any], step: str
) -> None:
    runtime = api.app.state.runtime.get()
    target, source = await _scenario(api, "acme")
    with pytest.raises(Crash):
        await _dying(api, step).merge_profiles("acme", target, source, actor="agent")

    # A restarted process runs recovery, twice for good measure: it must be idempotent.
    await runtime.services.lifecycle.recover()
    await runtime.services.lifecycle.recover()

    state = await _state(api, "acme", target, source)
    assert state == reference
    assert state["events"]["purchase"][0] == 3  # counted exactly once, not twice
    assert state["identities"] == [
        ("API", "crm-1", True),
        ("PHONE", "+919876543210", True),
        ("USER_ID", "customer", True),
    ]


@pytest.mark.parametrize("step", ["claim_merge_source", "fold_merge", "move_records"])
async def test_a_reader_of_a_half_merged_profile_finishes_the_merge(
    api: Api, reference: dict[str, Any], step: str
) -> None:
    runtime = api.app.state.runtime.get()
    target, source = await _scenario(api, "acme")
    with pytest.raises(Crash):
        await _dying(api, step).merge_profiles("acme", target, source, actor="agent")

    read = await runtime.services.profile("acme", source)  # no recovery run: a read helps

    assert read is not None
    assert read.id == target
    assert await _state(api, "acme", target, source) == reference


async def test_an_identify_merge_that_dies_after_the_fold_counts_events_once(api: Api) -> None:
    runtime = api.app.state.runtime.get()
    await api.ok(IDENTIFY, identify_input("API", "crm-1", "customer"))
    await api.ok(TRACK, track_input("purchase", channel="API", sender="crm-1"))
    await api.ok(TRACK, track_input("purchase", sender="visitor"))
    with pytest.raises(Crash):
        await _dying(api, "fold_merge")._profiles.identify(
            "acme", Channel.WEB, "visitor", "customer", {}, actor="bot"
        )
    await runtime.services.lifecycle.recover()
    [survivor] = await api.db["profiles"].find({"state": None}).to_list(None)
    assert survivor["events"]["purchase"]["count"] == 2
    assert await api.db["identities"].count_documents({"profileId": survivor["_id"]}) == 3
