"""Unmerge: undoing one merge exactly, its rules, its refusals, and its state machine under
crashes, concurrent unmerges and concurrent writes (played with the store's pause points)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from domain.access import Role
from domain.ports import ProfileStore
from domain.services import ProfileService
from server.app import SystemClock
from tests.conftest import TENANT, Api, CommandCounter
from tests.integration.interleave import interleave
from tests.integration.invariants import assert_invariants
from tests.integration.queries import (
    CAPTURE,
    IDENTIFY,
    MERGE,
    RECORD,
    TRACK,
    UPDATE,
    capture_input,
    identify_input,
    merge_input,
    track_input,
)
from tests.integration.test_merge_faults import Crash, CrashAfter
from tests.integration.unmerging import (
    PREVIEW,
    UNMERGE,
    merge_id_of,
    state_of,
    unmerge_input,
)

# The unmerge's steps, in order, as the store methods that perform them.
STEPS = [
    "claim_unmerge",
    "revive_source",
    "move_back",
    "strip_survivor",
    "activate_source",
    "recompute_event_summaries",
    "release_unmerge",
]


def _code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors")
    return str(errors[0]["extensions"]["code"]) if errors else None


async def _owner(api: Api, key: str) -> str | None:
    doc = await api.db["identities"].find_one({"_id": f"{TENANT}|{key}"})
    return None if doc is None else str(doc["profileId"])


async def _pair(api: Api, tenant: str = TENANT) -> tuple[str, str]:
    """T: identified (u-t) through crm-t, with a language, a tag, an event and a
    conversation. S: anonymous, reached on the web and by WhatsApp, with names, gender, an
    opt-in, two tags (one T has too), events and a conversation. Returns (T, S)."""
    t = await api.ok(
        IDENTIFY,
        identify_input("API", "crm-t", "u-t", {"language": "en", "tags": ["t", "x"]}),
        tenant=tenant,
    )
    target = str(t["identify"]["profile"]["id"])
    s = await api.ok(
        CAPTURE,
        capture_input(
            "WEB", "s1", {"firstName": "Sam", "lastName": "Lee", "gender": "m", "tags": ["s", "x"]}
        ),
        tenant=tenant,
    )
    source = str(s["captureProperties"]["profile"]["id"])
    phone = await api.ok(
        CAPTURE, capture_input("WHATSAPP", "919876543210", {"emailOptin": True}), tenant=tenant
    )
    await api.ok(
        MERGE, merge_input(source, phone["captureProperties"]["profile"]["id"]), tenant=tenant
    )
    for sender, channel, event_id, at in [
        ("crm-t", "API", "e-t", "2024-02-01T00:00:00Z"),
        ("s1", "WEB", "e-s1", "2024-01-01T00:00:00Z"),
        ("919876543210", "WHATSAPP", "e-s2", "2024-03-01T00:00:00Z"),
    ]:
        await api.ok(
            TRACK,
            track_input("purchase", channel=channel, sender=sender, at=at, event_id=event_id),
            tenant=tenant,
        )
    for conversation, channel, sender in [("c-t", "API", "crm-t"), ("c-s", "WEB", "s1")]:
        await api.ok(
            RECORD,
            {"input": {"id": conversation, "channel": channel, "senderId": sender}},
            tenant=tenant,
        )
    return target, source


async def _merged_pair(api: Api, tenant: str = TENANT) -> tuple[str, str, str, Any, Any]:
    """The pair, their states, then S merged into T: (T, S, merge id, T before, S before)."""
    target, source = await _pair(api, tenant)
    before = await state_of(api, target), await state_of(api, source)
    await api.ok(MERGE, merge_input(target, source), tenant=tenant)
    merge_id = await merge_id_of(api, target, source, tenant=tenant)
    return target, source, merge_id, before[0], before[1]


async def _assert_as_before(api: Api, target: str, source: str, t0: Any, s0: Any) -> None:
    assert await state_of(api, source) == s0
    assert await state_of(api, target) == t0


# ----- the rules ---------------------------------------------------------------------------


async def test_a_manual_merge_then_its_unmerge_leaves_both_profiles_as_they_were(api: Api) -> None:
    target, source, merge_id, t0, s0 = await _merged_pair(api)

    data = await api.ok(UNMERGE, unmerge_input(merge_id), role=Role.AGENT)

    await _assert_as_before(api, target, source, t0, s0)
    payload = data["unmergeProfiles"]
    assert payload["source"]["id"] == source and payload["source"]["mergedInto"] is None
    assert payload["kept"] == []
    removed = {(r["property"], r["item"]) for r in payload["removed"]}
    assert removed == {
        ("firstName", None),
        ("lastName", None),
        ("gender", None),
        ("emailOptin", None),
        ("phone", None),
        ("country", None),
        ("tags", "s"),
    }
    entry = payload["survivor"]["mergeHistory"][-1]
    assert entry["mergeId"] == merge_id and entry["undoneAt"] and entry["undoneBy"] == "agent-key"
    for side in ("source", "survivor"):
        (unmerge,) = payload[side]["unmergeHistory"]
        assert (unmerge["mergeId"], unmerge["sourceId"]) == (merge_id, source)
        assert unmerge["survivorId"] == target and unmerge["actor"] == "agent-key"
    await assert_invariants(api.db, TENANT)
