"""Interleavings of the profile state machines, played step by step with the pause points.

Part 1 holds the regression tests of the findings of the lifecycle review, then the bugs these
interleavings found (strict xfail until fixed); part 2 is a matrix: each multi-step operation A
paused after each of its steps while another operation B runs to completion. Every test ends
with the invariants of tests.integration.invariants.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
import pytest_asyncio

from domain.activity import ActivityService, ConversationInput
from domain.autocapture import CaptureContext
from domain.events import ConversationKind, ConversationStatus
from domain.identity import Channel
from domain.identity_management import IdentityManagement
from domain.merging import Abandoned
from domain.model import MergeTrigger
from domain.ports import MergeLimits, ProfileStore
from domain.services import ProfileService
from server.app import SystemClock
from server.config import Settings
from server.geo import GeoIP
from tests.conftest import TENANT, Api, CommandCounter, running
from tests.integration.interleave import interleave, pause_before
from tests.integration.invariants import assert_invariants
from tests.integration.queries import (
    CAPTURE,
    CREATE_SEGMENT,
    DETACH,
    IDENTIFY,
    MERGE,
    PROFILE,
    PROFILES,
    RECORD,
    SEGMENT,
    TRACK,
    capture_input,
    identify_input,
    merge_input,
    raw_id,
    track_input,
)
from tests.integration.test_merge_faults import Crash, CrashAfter


@pytest.fixture(autouse=True)
def _stored_ids(request: pytest.FixtureRequest) -> None:
    """These tests compare answers with stored documents, so they speak the stored ids."""
    if "api" in request.fixturenames:
        request.getfixturevalue("api").speak_stored_ids()


DELETE = "mutation Delete($id: ID!) { deleteProfile(input: {id: $id}) { deletedProfileId } }"
# Mutations that answer only ids: cheaper to resolve than the full profiles of queries.py.
SLIM_CAPTURE = """mutation Capture($input: CapturePropertiesInput!) {
  captureProperties(input: $input) { created profile { id } } }"""
SLIM_IDENTIFY = """mutation Identify($input: IdentifyInput!) {
  identify(input: $input) { outcome profile { id } } }"""
SLIM_MERGE = """mutation Merge($input: MergeProfilesInput!) {
  mergeProfiles(input: $input) { mergedProfileId profile { id } } }"""
SLIM_DETACH = """mutation Detach($input: DetachIdentityInput!) {
  detachIdentity(input: $input) { profile { id } detached { id } } }"""
SLIM_TRACK = """mutation Track($input: TrackEventInput!) {
  trackEvent(input: $input) { counted profile { id } } }"""

# ----- helpers -------------------------------------------------------------------------------


def _runtime(api: Api) -> Any:
    return api.app.state.runtime.get()


async def _capture(
    api: Api, sender: str, props: dict[str, Any] | None = None, *, channel: str = "WEB"
) -> str:
    data = await api.ok(CAPTURE, capture_input(channel, sender, props or {}))
    profile_id: str = data["captureProperties"]["profile"]["id"]
    return profile_id


async def _identify(api: Api, sender: str, user_id: str, *, channel: str = "WEB") -> str:
    data = await api.ok(IDENTIFY, identify_input(channel, sender, user_id))
    profile_id: str = data["identify"]["profile"]["id"]
    return profile_id


async def _track(api: Api, sender: str, event_id: str, *, at: str | None = None) -> None:
    await api.ok(TRACK, track_input("view", sender=sender, event_id=event_id, at=at))


def _record(conversation: str, *, sender: str | None = None, profile: str | None = None) -> Any:
    value: dict[str, Any] = {"conversationId": conversation, "channel": "WEB"}
    if sender is not None:
        value["senderId"] = sender
    if profile is not None:
        value["profileId"] = profile
    return {"input": value}


def _retryable(body: dict[str, Any]) -> bool:
    errors = body.get("errors") or [{}]
    return bool(errors[0].get("extensions", {}).get("retryable"))


def _answer(body: dict[str, Any]) -> dict[str, Any] | None:
    if _code(body) is not None:
        return None
    data: dict[str, Any] = next(iter(body["data"].values()))
    return data


def _code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors")
    return str(errors[0]["extensions"]["code"]) if errors else None


async def _doc(api: Api, profile_id: str) -> dict[str, Any]:
    doc: dict[str, Any] | None = await api.db["profiles"].find_one({"_id": profile_id})
    assert doc is not None, f"no document {profile_id}"
    return doc


async def _owner(api: Api, sender: str, *, kind: str = "VISITOR") -> str | None:
    doc = await api.db["identities"].find_one({"_id": f"{TENANT}|{kind}|{sender}"})
    return None if doc is None else str(doc["profileId"])


async def _records_of(api: Api, profile_id: str) -> int:
    total = 0
    for kind in ("identities", "events", "conversations"):
        total += await api.db[kind].count_documents({"profileId": profile_id})
    return int(total)


async def _active_ids(api: Api) -> set[str]:
    return {d["_id"] async for d in api.db["profiles"].find({"tenant": TENANT, "state": None})}


@dataclass
class Process:
    """The services of another process over the same database, whose store dies right after
    one step (tests.integration.test_merge_faults.CrashAfter)."""

    services: ProfileService
    identity: IdentityManagement
    activity: ActivityService


def _dying(api: Api, step: str) -> Process:
    runtime = _runtime(api)
    store = cast(ProfileStore, CrashAfter(runtime.services._store, step))
    clock = SystemClock()
    services = ProfileService(store, clock, runtime.services._geo)
    activity = ActivityService(services, store, runtime.activity._activity, clock)
    return Process(services, IdentityManagement(services, store, clock), activity)


# ----- part 1: one regression test per finding ---------------------------------------------


async def _folded_scene(api: Api) -> tuple[str, str, str]:
    """S (two senders, two events, a conversation), T and T2 (one event). Returns their ids."""
    s = await _capture(api, "s1", {"firstName": "Sam", "tags": ["s"]})
    await api.ok(IDENTIFY, identify_input("API", "s-crm", "u-s"))
    await api.ok(MERGE, merge_input(s, await _owner(api, "s-crm", kind="API") or ""))
    await _track(api, "s1", "e-s1", at="2024-01-01T00:00:00Z")
    await _track(api, "s1", "e-s2", at="2024-03-01T00:00:00Z")
    await api.ok(RECORD, _record("c-s", sender="s1"))
    t = await _capture(api, "t1", {"tags": ["t"]})
    t2 = await _capture(api, "t2", {"tags": ["t2"]})
    await _track(api, "t2", "e-t2", at="2024-02-01T00:00:00Z")
    return s, t, t2


async def _assert_all_of_s_on(api: Api, survivor: str) -> None:
    assert await _owner(api, "s1") == survivor
    assert await _owner(api, "s-crm", kind="API") == survivor
    assert await _owner(api, "u-s", kind="USER_ID") == survivor
    events = {e["eventId"]: e["profileId"] async for e in api.db["events"].find()}
    assert events == {"e-s1": survivor, "e-s2": survivor, "e-t2": survivor}
    chat = await api.db["conversations"].find_one({"conversationId": "c-s"})
    assert chat["profileId"] == survivor
    doc = await _doc(api, survivor)
    assert doc["events"]["view"]["count"] == 3
    assert doc["userId"] == "u-s"
    assert sorted(doc["props"]["tags"]) == ["s", "t", "t2"]


@pytest.mark.parametrize("step", ["fold_merge", "mark_folded"])
async def test_a_source_folded_into_a_target_merged_on_meanwhile_ends_on_the_final_survivor(
    api: Api, step: str
) -> None:
    """Finding 1. The merge S→T pauses right after its fold (or after recording it); the
    merge T→T2 runs to completion meanwhile; S→T resumes. S's identities, events and
    conversation must follow T's redirect to T2, and T2's summary counts S's events."""
    s, t, t2 = await _folded_scene(api)

    first, second = await interleave(
        lambda: api.post(MERGE, merge_input(t, s)),
        step,
        lambda: api.post(MERGE, merge_input(t2, t)),
    )

    assert _code(second) is None, second
    assert _code(first) is None, first
    assert first["data"]["mergeProfiles"]["profile"]["id"] == t2
    await _assert_all_of_s_on(api, t2)
    assert await _active_ids(api) == {t2}
    await assert_invariants(api.db, TENANT)


async def test_a_merge_that_died_after_its_fold_is_finished_onto_the_targets_own_survivor(
    api: Api,
) -> None:
    """Finding 1, crash variant. S→T dies right after the fold; T is merged into T2; recovery
    finishes S→T: everything of S must rest on T2."""
    s, t, t2 = await _folded_scene(api)
    with pytest.raises(Crash):
        await _dying(api, "fold_merge").identity.merge_profiles(TENANT, t, s, actor="agent")
    assert (await _doc(api, s))["state"] == "MERGING"

    await api.ok(MERGE, merge_input(t2, t))
    await _runtime(api).services.lifecycle.recover()

    await _assert_all_of_s_on(api, t2)
    assert (await _doc(api, s))["mergedInto"] == t
    await assert_invariants(api.db, TENANT)


async def _claimed_pair(api: Api) -> tuple[str, str]:
    """Two anonymous profiles with a sender, a value and an event each; (S, T)."""
    s = await _capture(api, "s1", {"firstName": "Sam"})
    await api.ok(CAPTURE, capture_input("API", "s-crm"))
    await api.ok(MERGE, merge_input(s, await _owner(api, "s-crm", kind="API") or ""))
    await _track(api, "s1", "e-s")
    t = await _capture(api, "t1", {"lastName": "Tee"})
    await _track(api, "t1", "e-t")
    return s, t


async def _assert_untouched_source(api: Api, s: str, t: str) -> None:
    doc = await _doc(api, s)
    assert "state" not in doc, doc
    assert doc["props"]["firstName"] == "Sam"
    assert await _owner(api, "s1") == s
    assert await _owner(api, "s-crm", kind="API") == s
    target = await _doc(api, t)
    assert all(m["sourceId"] != s for m in target.get("mergeHistory") or ())
    assert "firstName" not in target.get("props", {})


async def test_a_merge_given_up_while_its_finisher_was_delayed_never_folds_afterwards(
    api: Api,
) -> None:
    """Finding 2. The merge S→T pauses right after claiming S; meanwhile the merge is given up
    (as a reader that yields on a cycle does: the give-up recorded on T, then S's claim
    released); then the delayed finisher resumes. It must report the merge abandoned and
    never fold S into T: S stays active with all its identities, T records no merge of S."""
    s, t = await _claimed_pair(api)
    runtime = _runtime(api)
    merger = runtime.services.merger
    store = runtime.services._store

    async def give_up() -> None:
        claimed = await store.get_profile(TENANT, s)
        assert claimed.merging is not None
        await merger._abandon(claimed, claimed.merging, Abandoned.YIELDED, 0)

    result, _ = await interleave(
        lambda: merger.merge(
            TENANT, s, t, trigger=MergeTrigger.MANUAL, actor="agent", unidentified_only=False
        ),
        "claim_merge_source",
        give_up,
    )

    assert result is Abandoned.YIELDED
    await _assert_untouched_source(api, s, t)
    assert await _active_ids(api) == {s, t}
    await assert_invariants(api.db, TENANT)


@pytest.mark.parametrize("order", ["source-id-higher", "source-id-lower"])
async def test_a_merge_paused_after_its_claim_racing_the_reverse_merge_folds_exactly_one_way(
    api: Api, order: str
) -> None:
    """Finding 2, played through the API. S→T pauses right after claiming S; the reverse merge
    T→S runs to completion (it meets S claimed: by the id order it either helps S→T along and
    then finds S merged, or yields and gives S→T up, then folds T into S); S→T resumes. Exactly
    one of the two merges happened, and the other caller was told so."""
    a, b = await _claimed_pair(api)
    s, t = (max(a, b), min(a, b)) if order == "source-id-higher" else (min(a, b), max(a, b))

    first, second = await interleave(
        lambda: api.post(MERGE, merge_input(t, s)),
        "claim_merge_source",
        lambda: api.post(MERGE, merge_input(s, t)),
    )

    won = [r for r in (first, second) if _code(r) is None]
    assert len(won) == 1, (first, second)
    lost = first if won[0] is second else second
    assert _code(lost) in ("MERGE_CONFLICT", "NOT_FOUND"), lost
    survivor = won[0]["data"]["mergeProfiles"]["profile"]["id"]
    retired = s if survivor == t else t
    assert await _active_ids(api) == {survivor}
    assert (await _doc(api, retired))["mergedInto"] == survivor
    merged_into_survivor = [m["sourceId"] for m in (await _doc(api, survivor))["mergeHistory"]]
    assert merged_into_survivor.count(retired) == 1
    merged_into_retired = [
        m["sourceId"] for m in (await _doc(api, retired)).get("mergeHistory", [])
    ]
    assert survivor not in merged_into_retired
    await assert_invariants(api.db, TENANT)


@pytest.mark.parametrize("step", ["fold_merge", "mark_folded", "move_records"])
async def test_erasing_the_target_of_a_folded_merge_erases_the_source_too(
    api: Api, step: str
) -> None:
    """Finding 3. S→T pauses after its fold (or after recording it, or after moving S's
    records); T is erased (deleteProfile) to completion; S→T resumes. S must end a tombstone,
    none of its records left anywhere, nothing active holding S's values."""
    s, t = await _claimed_pair(api)
    keep = await _capture(api, "bystander")

    first, second = await interleave(
        lambda: api.post(MERGE, merge_input(t, s)),
        step,
        lambda: api.post(DELETE, {"id": t}),
    )

    assert _code(second) is None, second
    assert _code(first) == "NOT_FOUND", first
    assert (await _doc(api, s))["state"] == "ERASED"
    assert (await _doc(api, t))["state"] == "ERASED"
    assert await _records_of(api, s) == await _records_of(api, t) == 0
    assert await _owner(api, "s1") is None
    assert await _owner(api, "s-crm", kind="API") is None
    assert await api.db["events"].count_documents({}) == 0
    assert await api.db["profiles"].count_documents({"props.firstName": "Sam"}) == 0
    assert await _active_ids(api) == {keep}
    await assert_invariants(api.db, TENANT)


async def _listed(api: Api) -> set[str]:
    data = await api.ok(PROFILES, {"first": 100})
    return {e["node"]["id"] for e in data["profiles"]["edges"]}


def _late_write(api: Api, kind: str, profile_id: str) -> tuple[object, str, Any]:
    """A write on P's sender (or on P by id), and the store method it ends with."""
    runtime = _runtime(api)
    profiles, activity = runtime.services._store, runtime.activity._activity
    return {
        "capture": (
            profiles,
            "write_capture",
            (CAPTURE, capture_input("WEB", "p1", {"lastName": "Back"})),
        ),
        "track": (activity, "insert_event", (TRACK, track_input("view", sender="p1"))),
        "track-by-id": (
            activity,
            "insert_event",
            (TRACK, track_input("view", profile_id=profile_id)),
        ),
        "record": (activity, "upsert_conversation", (RECORD, _record("late", sender="p1"))),
        "record-by-id": (
            activity,
            "upsert_conversation",
            (RECORD, _record("late", profile=profile_id)),
        ),
    }[kind]


async def _erased_scene(api: Api) -> str:
    p = await _capture(api, "p1", {"firstName": "Pat"})
    await api.ok(CAPTURE, capture_input("API", "p-crm"))
    await api.ok(MERGE, merge_input(p, await _owner(api, "p-crm", kind="API") or ""))
    await _track(api, "p1", "e-p")
    await api.ok(RECORD, _record("c-p", sender="p1"))
    await _capture(api, "bystander")
    return p


async def _assert_erased_stays_erased(api: Api, p: str, body: dict[str, Any]) -> None:
    assert (await _doc(api, p))["state"] == "ERASED"
    assert await _records_of(api, p) == 0
    assert p not in await _listed(api)
    assert await api.db["profiles"].count_documents({"props.firstName": "Pat"}) == 0
    if _code(body) is None:
        data = next(iter(body["data"].values()))
        landed = (
            (data.get("conversation") or data)["profileId"]
            if "conversation" in data
            else data["profile"]["id"]
        )
        assert landed != p
        assert landed in await _active_ids(api)
    else:
        assert _code(body) == "NOT_FOUND", body


WRITES = ["capture", "track", "track-by-id", "record", "record-by-id"]


@pytest.mark.parametrize("kind", WRITES)
async def test_a_write_that_read_a_profile_before_its_erasure_lands_nowhere_on_it(
    api: Api, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Finding 4. A capture, trackEvent or recordConversation has read P and pauses right
    before its write; deleteProfile(P) runs to completion; the write resumes. P is never
    recreated, nothing is left on it, listing shows no ghost; the caller is told NOT_FOUND or
    (a capture) its sender starts a new profile."""
    p = await _erased_scene(api)
    obj, method, (query, variables) = _late_write(api, kind, p)

    with pause_before(monkeypatch, obj, method) as step:
        first, second = await interleave(
            lambda: api.post(query, variables), step, lambda: api.post(DELETE, {"id": p})
        )

    assert _code(second) is None, second
    await _assert_erased_stays_erased(api, p, first)
    await assert_invariants(api.db, TENANT)


@pytest.mark.parametrize("kind", WRITES)
@pytest.mark.parametrize("step", ["begin_erase", "delete_records"])
async def test_a_write_to_a_profile_whose_erasure_is_under_way_lands_nowhere_on_it(
    api: Api, step: str, kind: str
) -> None:
    """Finding 4. deleteProfile(P) pauses after marking P ERASING (or after deleting its
    records); a capture, trackEvent or recordConversation on P runs to completion; the erasure
    resumes. P is never recreated and nothing is left on it."""
    p = await _erased_scene(api)
    _, _, (query, variables) = _late_write(api, kind, p)

    first, second = await interleave(
        lambda: api.post(DELETE, {"id": p}), step, lambda: api.post(query, variables)
    )

    assert _code(first) is None, first
    await _assert_erased_stays_erased(api, p, second)
    await assert_invariants(api.db, TENANT)


async def test_a_merge_into_a_profile_whose_erasure_began_is_refused(api: Api) -> None:
    """Finding 4. deleteProfile(P) pauses right after marking P ERASING; a merge S→P runs to
    completion: it finds P being erased (finishes that) and is refused; S stays itself."""
    p = await _erased_scene(api)
    s = await _capture(api, "s1", {"firstName": "Sam"})

    first, second = await interleave(
        lambda: api.post(DELETE, {"id": p}),
        "begin_erase",
        lambda: api.post(MERGE, merge_input(p, s)),
    )

    assert _code(first) is None, first
    assert _code(second) == "NOT_FOUND", second
    await _assert_erased_stays_erased(api, p, second)
    assert "state" not in await _doc(api, s)
    assert await _owner(api, "s1") == s
    await assert_invariants(api.db, TENANT)


async def test_a_merge_claimed_before_its_target_was_erased_gives_the_source_back(
    api: Api,
) -> None:
    """Finding 4. A merge S→P pauses right after claiming S; deleteProfile(P) runs to
    completion (the fold never happened, so the erasure gives S back); the merge resumes: it
    must not fold into the tombstone nor erase S. S stays active with its records."""
    p = await _erased_scene(api)
    s = await _capture(api, "s1", {"firstName": "Sam"})
    await _track(api, "s1", "e-s")

    first, second = await interleave(
        lambda: api.post(MERGE, merge_input(p, s)),
        "claim_merge_source",
        lambda: api.post(DELETE, {"id": p}),
    )

    assert _code(second) is None, second
    assert _code(first) == "NOT_FOUND", first
    await _assert_erased_stays_erased(api, p, first)
    doc = await _doc(api, s)
    assert "state" not in doc
    assert doc["props"]["firstName"] == "Sam"
    assert await _owner(api, "s1") == s
    assert await api.db["events"].count_documents({"profileId": s}) == 1
    await assert_invariants(api.db, TENANT)


async def test_switched_identifies_never_take_a_profile_past_the_identity_limit(
    api: Api,
) -> None:
    """Finding 5. With at most 5 identities a profile (userId key and one sender: 2), 130
    senders that each have a userId of their own identify as target-1's userId (SWITCHED),
    one after the other: exactly 3 get in, every other answer is LIMIT_EXCEEDED and a refused
    one writes nothing. Then all 130 identify as target-2's userId at once: exactly 3 get in,
    concurrent switches do not overshoot."""
    limits = MergeLimits(merges=100, identities=5)
    services = _runtime(api).services
    services.merger.limits = limits
    one = await _identify(api, "crm-1", "target-1", channel="API")
    two = await _identify(api, "crm-2", "target-2", channel="API")
    for start in range(0, 130, 26):
        await asyncio.gather(
            *(
                services.identify(TENANT, Channel.WEB, f"v{i}", f"user{i}", {}, actor="setup")
                for i in range(start, start + 26)
            )
        )

    codes = []
    for i in range(130):
        variables = identify_input("WEB", f"v{i}", "target-1")
        if i in (3, 129):
            await api.refused("LIMIT_EXCEEDED", SLIM_IDENTIFY, variables)
            codes.append("LIMIT_EXCEEDED")
        else:
            body = await api.post(SLIM_IDENTIFY, variables)
            codes.append(_code(body) or body["data"]["identify"]["outcome"])
    assert codes == ["SWITCHED"] * 3 + ["LIMIT_EXCEEDED"] * 127
    assert await api.db["identities"].count_documents({"profileId": one}) == 5
    assert await _owner(api, "v3") == await _owner(api, "user3", kind="USER_ID")

    bodies = await asyncio.gather(
        *(api.post(SLIM_IDENTIFY, identify_input("WEB", f"v{i}", "target-2")) for i in range(130))
    )
    codes = sorted(_code(b) or b["data"]["identify"]["outcome"] for b in bodies)
    assert codes == ["LIMIT_EXCEEDED"] * 127 + ["SWITCHED"] * 3, codes
    assert await api.db["identities"].count_documents({"profileId": two}) == 5
    for profile_id in (one, two):
        assert len((await _doc(api, profile_id))["keys"]) <= 5
    await assert_invariants(api.db, TENANT, limits=limits)


@pytest.mark.parametrize("step", ["claim_merge_source", "fold_merge", "move_records"])
async def test_a_half_merged_source_is_not_listed_counted_or_exported(api: Api, step: str) -> None:
    """Finding 6. A merge S→T pauses after claiming S (after the fold, after moving S's
    records); meanwhile profiles(), a segment's count and members, and /export each show T
    once and never S."""
    s = await _capture(api, "s1", {"firstName": "Sam", "tags": ["vip"]})
    t = await _capture(api, "t1", {"tags": ["vip"]})
    other = await _capture(api, "o1")
    created = await api.ok(CREATE_SEGMENT, {"input": {"name": "VIP", "filter": {"tag": "vip"}}})
    segment = created["createSegment"]["segment"]["id"]
    assert created["createSegment"]["segment"]["count"] == 2

    async def read() -> tuple[set[str], int, set[str], list[str]]:
        listed = await _listed(api)
        data = await api.ok(SEGMENT, {"id": segment, "first": 100})
        members = {e["node"]["id"] for e in data["segment"]["members"]["edges"]}
        response = await api.http.get(
            "/export?format=ndjson", headers={"Authorization": f"Bearer {await api.key()}"}
        )
        assert response.status_code == 200, response.text
        exported = [raw_id(json.loads(line)["id"]) for line in response.text.splitlines() if line]
        return listed, data["segment"]["count"], members, exported

    first, (listed, count, members, exported) = await interleave(
        lambda: api.post(MERGE, merge_input(t, s)), step, read
    )

    assert _code(first) is None, first
    assert listed == {t, other}
    assert (count, members) == (1, {t})
    assert sorted(exported) == sorted([t, other])
    assert await _listed(api) == {t, other}
    await assert_invariants(api.db, TENANT)


@pytest.mark.parametrize("step", ["claim_merge_source", "fold_merge", "move_records"])
async def test_a_conversation_recorded_to_a_half_merged_source_lands_on_the_survivor(
    api: Api, step: str
) -> None:
    """Finding 7. A merge S→T pauses (after its claim, fold or move of S's records); a
    recordConversation to S by id runs to completion; the merge resumes. The conversation must
    rest on T, like S's events."""
    s, t = await _claimed_pair(api)

    first, second = await interleave(
        lambda: api.post(MERGE, merge_input(t, s)),
        step,
        lambda: api.post(RECORD, _record("late", profile=s)),
    )

    assert _code(first) is None, first
    assert _code(second) is None, second
    assert second["data"]["recordConversation"]["conversation"]["profileId"] == t
    chat = await api.db["conversations"].find_one({"conversationId": "late"})
    assert chat["profileId"] == t
    await assert_invariants(api.db, TENANT)


@pytest.mark.parametrize("by", ["sender", "profile"])
@pytest.mark.parametrize("what", ["conversation", "event"])
async def test_a_record_written_after_its_profile_was_merged_moves_on_to_the_survivor(
    api: Api, monkeypatch: pytest.MonkeyPatch, what: str, by: str
) -> None:
    """Finding 7. A recordConversation (or trackEvent) from S's sender (or to S by id) has read
    S and pauses right before its write; the merge S→T runs to completion, moving S's records;
    the write resumes and lands on S. It must end on T (an event counted in T's summary), and
    answer T."""
    s, t = await _claimed_pair(api)
    sender, profile = ("s1", None) if by == "sender" else (None, s)
    if what == "conversation":
        query, variables = RECORD, _record("late", sender=sender, profile=profile)
        method, collection, key = "upsert_conversation", "conversations", f"{TENANT}|c|late"
    else:
        variables = track_input("view", sender=sender, profile_id=profile, event_id="late")
        query, method, collection, key = SLIM_TRACK, "insert_event", "events", f"{TENANT}|e|late"

    with pause_before(monkeypatch, _runtime(api).activity._activity, method) as step:
        first, second = await interleave(
            lambda: api.post(query, variables), step, lambda: api.post(MERGE, merge_input(t, s))
        )

    assert _code(second) is None, second
    answer = _answer(first)
    assert answer is not None, first
    landed = answer["conversation"]["profileId"] if "conversation" in answer else None
    assert (landed or answer.get("profile", {}).get("id")) == t
    assert (await api.db[collection].find_one({"_id": key}))["profileId"] == t
    if what == "event":
        assert (await _doc(api, t))["events"]["view"]["count"] == 3
    await assert_invariants(api.db, TENANT)


async def _post_raw(api: Api, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """A body as json.dumps writes it, so a lone surrogate travels as its escape."""
    response = await api.http.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}),
        headers={
            "Authorization": f"Bearer {await api.key()}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param(
            CAPTURE, capture_input("WEB", "new-sender", {"firstName": "A\ud800"}), id="capture"
        ),
        pytest.param(
            TRACK,
            track_input("view", sender="new-sender", properties={"n": 10**30}),
            id="track",
        ),
        pytest.param(
            RECORD,
            {
                "input": {
                    "conversationId": "c1",
                    "channel": "WEB",
                    "senderId": "new-sender",
                    "startedAt": "0001-01-01T00:00:00+05:00",
                }
            },
            id="record",
        ),
    ],
)
async def test_a_refused_write_from_a_new_sender_binds_no_identity(
    api: Api, query: str, variables: dict[str, Any]
) -> None:
    """Finding 8. A capture, trackEvent or recordConversation from a sender never seen before,
    with a value that cannot be stored, is refused with VALIDATION_FAILED and writes nothing:
    no profile, no identity key bound to nothing."""
    await _capture(api, "known")
    before = await api.snapshot()

    body = await _post_raw(api, query, variables)

    assert _code(body) == "VALIDATION_FAILED", body
    assert await api.snapshot() == before, "a refused write wrote something"
    assert await _owner(api, "new-sender") is None
    await assert_invariants(api.db, TENANT)


async def test_a_conversation_from_a_new_sender_answers_a_profile_that_can_be_read(
    api: Api,
) -> None:
    """Finding 8. recordConversation from a brand-new sender answers the id of the profile it
    was born with, and profile(id) finds it."""
    data = await api.ok(RECORD, _record("c1", sender="new-sender"))
    profile_id = data["recordConversation"]["conversation"]["profileId"]
    found = await api.ok(PROFILE, {"id": profile_id})
    assert found["profile"]["id"] == profile_id
    assert await _owner(api, "new-sender") == profile_id
    await assert_invariants(api.db, TENANT)


async def _shape(api: Api, tenant: str) -> list[tuple[Any, ...]]:
    """A tenant's active profiles as comparable values: userId, identities, keys ledger,
    conversations and events (ids differ between tenants; these do not)."""
    shape = []
    async for doc in api.db["profiles"].find({"tenant": tenant, "state": None}):
        owned = {"profileId": doc["_id"]}
        shape.append(
            (
                doc.get("userId") or "",
                sorted(
                    [f"{i['type']}|{i['value']}" async for i in api.db["identities"].find(owned)]
                ),
                sorted(k.split("|", 1)[1] for k in doc.get("keys") or ()),
                sorted([c["conversationId"] async for c in api.db["conversations"].find(owned)]),
                sorted([e["eventId"] async for e in api.db["events"].find(owned)]),
                {n: s["count"] for n, s in (doc.get("events") or {}).items()},
            )
        )
    return sorted(shape, key=repr)


@pytest.mark.parametrize("recovered", [True, False], ids=["recovered", "not-recovered"])
@pytest.mark.parametrize("step", ["insert_pending", "claim_identity"])
async def test_an_identify_that_died_creating_a_profile_leaves_the_next_identify_as_a_clean_run(
    api: Api, step: str, recovered: bool
) -> None:
    """Finding 9. s (userId u-a) identifies as the new u-b (an identify that CREATES) and the
    process dies right after inserting the pending profile, or right after claiming u-b's key
    for it; recovery runs (or not: the next reader must cope). A fresh anonymous sender then
    identifies as u-b, and answers exactly what it answers in a tenant where nothing died: the
    identify never happened (u-b's key was never claimed) or it completed (it was)."""
    for tenant in (TENANT, "reference"):
        await api.ok(IDENTIFY, identify_input("WEB", "s", "u-a"), tenant=tenant)
        await api.ok(CAPTURE, capture_input("WEB", "fresh"), tenant=tenant)
    with pytest.raises(Crash):
        await _dying(api, step).services.identify(TENANT, Channel.WEB, "s", "u-b", {}, actor="bot")
    if recovered:
        await _runtime(api).services.lifecycle.recover()
    if step == "claim_identity":  # the claim of u-b's key decided: the identify completes
        await api.ok(IDENTIFY, identify_input("WEB", "s", "u-b"), tenant="reference")

    crashed = await api.ok(IDENTIFY, identify_input("WEB", "fresh", "u-b"))
    clean = await api.ok(IDENTIFY, identify_input("WEB", "fresh", "u-b"), tenant="reference")

    assert crashed["identify"]["outcome"] == clean["identify"]["outcome"]
    assert crashed["identify"]["profile"]["userId"] == "u-b"
    assert await _shape(api, TENANT) == await _shape(api, "reference")
    await assert_invariants(api.db, TENANT)
    await assert_invariants(api.db, "reference")


async def _detach_setup(api: Api, tenant: str) -> str:
    """P with userId u-p and senders p and d (d's own profile merged into it), a conversation
    through each sender and an event through d. Returns P's id."""
    p = (await api.ok(IDENTIFY, identify_input("WEB", "p", "u-p"), tenant=tenant))["identify"]
    await api.ok(IDENTIFY, identify_input("WEB", "d", "u-p"), tenant=tenant)
    for conversation, sender in (("c-p", "p"), ("c-d", "d")):
        await api.ok(RECORD, _record(conversation, sender=sender), tenant=tenant)
    await api.ok(TRACK, track_input("view", sender="d", event_id="e-d"), tenant=tenant)
    return str(p["profile"]["id"])


@pytest.mark.parametrize(
    "step",
    ["insert_pending", "rebind_identity", "move_identity_conversations", "drop_key", "activate"],
)
async def test_a_detach_that_died_after_any_step_is_completed_or_undone_by_recovery(
    api: Api, step: str
) -> None:
    """Finding 10. detachIdentity(d from P) dies right after each of its steps; recovery runs.
    The result equals a clean detach once the rebind of d (the deciding step) happened, and no
    detach at all when it died before (only the pending profile was inserted)."""
    p = await _detach_setup(api, TENANT)
    reference = await _detach_setup(api, "reference")
    if step != "insert_pending":
        await _runtime(api).identity.detach_identity("reference", reference, Channel.WEB, "d")
    with pytest.raises(Crash):
        await _dying(api, step).identity.detach_identity(TENANT, p, Channel.WEB, "d")

    await _runtime(api).services.lifecycle.recover()

    assert await _shape(api, TENANT) == await _shape(api, "reference")
    assert await _owner(api, "p") == p
    await assert_invariants(api.db, TENANT)


async def test_one_recovery_pass_finishes_150_merges_left_half_done_by_crashes(api: Api) -> None:
    """Finding 10. 150 merges die right after one of their steps (claim, fold, recording the
    fold, moving the records), leaving 150 sources MERGING; one recovery call finishes every
    one of them (it pages through them in id order, none is starved)."""
    runtime = _runtime(api)
    services = runtime.services

    async def capture(sender: str) -> str:
        result = await services.capture(
            TENANT, Channel.WEB, sender, {}, CaptureContext(), actor="setup"
        )
        return str(result.profile.id)

    targets = [await capture(f"target-{i}") for i in range(15)]
    sources = [await capture(f"source-{i}") for i in range(150)]
    steps = ["claim_merge_source", "fold_merge", "mark_folded", "move_records"]
    dying = {step: _dying(api, step).identity for step in steps}
    for i, source in enumerate(sources):
        with pytest.raises(Crash):
            await dying[steps[i % 4]].merge_profiles(TENANT, targets[i % 15], source, actor="agent")
    assert await api.db["profiles"].count_documents({"state": "MERGING"}) == 150

    recovered = await services.lifecycle.recover()

    assert recovered.merges == 150
    assert await api.db["profiles"].count_documents({"state": {"$ne": None}}) == 150
    for i, source in enumerate(sources):
        assert (await _doc(api, source))["mergedInto"] == targets[i % 15]
        assert await _owner(api, f"source-{i}") == targets[i % 15]
    for target in targets:
        assert len((await _doc(api, target))["mergeHistory"]) == 10
    await assert_invariants(api.db, TENANT)


# ----- bugs found by the interleavings (reproduced; strict xfail until fixed) ----------------

IDENTIFY_DROPS_SENDER = (
    "An identify that CREATES (sender s on profile A with userId u-a identifies as the new u-b) "
    "answers CREATED with the new profile N although N never got s, when s left A between the "
    "identify's read and the birth's rebind (A merged away, erased, or s detached): "
    "Births._finish drops a binding whose key moved and still activates N, and Identify._switch "
    "returns N without checking that it holds the sender"
)


def _change_of_sender_profile(api: Api, change: str, a: str, x: str) -> Any:
    return {
        "merge": lambda: api.post(MERGE, merge_input(x, a)),
        "erase": lambda: api.post(DELETE, {"id": a}),
        "detach": lambda: api.post(
            DETACH, {"input": {"profileId": a, "channel": "WEB", "senderId": "s"}}
        ),
    }[change]


@pytest.mark.parametrize("change", ["merge", "erase", "detach"])
async def test_an_identify_that_creates_a_profile_takes_the_sender_along_whatever_moved_it(
    api: Api, change: str
) -> None:
    """Bug. identify(s as u-b), s's profile A having u-a: the identify reads s on A, inserts
    the pending profile N and pauses there, before anything decides. Meanwhile A is merged
    into X (or erased, or s is detached onto a profile of its own). Resumed, the identify
    answers CREATED with N, but s is not on N: it stayed on X with u-a (or on its detached,
    anonymous profile; or it was erased and is on nothing). Run after the change, as it
    effectively was, the identify leaves s on a profile with userId u-b."""
    a = await _identify(api, "s", "u-a")
    await _identify(api, "a2", "u-a")
    x = await _capture(api, "x")

    first, second = await interleave(
        lambda: api.post(IDENTIFY, identify_input("WEB", "s", "u-b")),
        "insert_pending",
        _change_of_sender_profile(api, change, a, x),
    )

    assert _code(second) is None, second
    assert _code(first) is None, first
    answered = first["data"]["identify"]["profile"]["id"]
    assert await _owner(api, "s") == answered
    assert (await _doc(api, answered))["userId"] == "u-b"
    await assert_invariants(api.db, TENANT)


DETACH_GIVES_UP = (
    "detachIdentity does not retry: when the profile it detaches from is merged away or erased, "
    "or the identity is detached by someone else, between its checks and its rebind, it answers "
    "INTERNAL 'lost too many concurrent races' (Contention) after a single race, instead of "
    "detaching from the survivor or answering NOT_FOUND"
)


@pytest.mark.parametrize("change", ["merge", "erase", "detach"])
async def test_a_detach_whose_profile_changed_before_it_decided_answers_as_run_after_the_change(
    api: Api, change: str
) -> None:
    """Bug. detachIdentity(d from P) inserts the pending profile and pauses there, before its
    deciding rebind; meanwhile P is merged into X (or erased, or d is detached by another
    call). Resumed, it should answer as a detach run after that change: detached from the
    survivor X; NOT_FOUND (P is gone); NOT_FOUND (d is not on P any more). It answers
    INTERNAL instead."""
    p = await _detach_setup(api, TENANT)
    x = await _capture(api, "x")
    change_of = {
        "merge": lambda: api.post(MERGE, merge_input(x, p)),
        "erase": lambda: api.post(DELETE, {"id": p}),
        "detach": lambda: api.post(
            DETACH, {"input": {"profileId": p, "channel": "WEB", "senderId": "d"}}
        ),
    }
    detach = {"input": {"profileId": p, "channel": "WEB", "senderId": "d"}}

    first, second = await interleave(
        lambda: api.post(DETACH, detach), "insert_pending", change_of[change]
    )

    assert _code(second) is None, second
    if change == "merge":
        assert _code(first) is None, first
        answered = first["data"]["detachIdentity"]
        assert answered["profile"]["id"] == x
        assert await _owner(api, "d") == answered["detached"]["id"]
    else:
        assert _code(first) == "NOT_FOUND", first
    await assert_invariants(api.db, TENANT)


DETACH_LEAVES_CONVERSATIONS = (
    "A conversation that came through a detached identity is left behind on another profile: "
    "move_identity_conversations moves only those still on the origin profile, so when the "
    "origin is merged away between the detach's rebind and that move, they stay on the merge "
    "survivor; and a recordConversation through the identity that read the origin before the "
    "detach writes onto the origin afterwards, where rehome (which follows merges only) "
    "leaves it"
)


@pytest.mark.parametrize("race", ["merge-after-rebind", "late-conversation"])
async def test_the_conversations_of_a_detached_identity_end_where_the_identity_is(
    api: Api, monkeypatch: pytest.MonkeyPatch, race: str
) -> None:
    """Bug. Detach takes the conversations that came through the identity d along to the new
    profile. (1) The detach pauses right after rebinding d; P is merged into X meanwhile
    (moving c-d, still on P, to X); resumed, the detach answers success but c-d stays on X.
    (2) A recordConversation through d reads d on P and pauses right before its write; the
    detach runs to completion; resumed, the conversation lands on P and stays there. Either
    way a conversation through d ends apart from d."""
    p = await _detach_setup(api, TENANT)
    x = await _capture(api, "x")
    detach = {"input": {"profileId": p, "channel": "WEB", "senderId": "d"}}

    if race == "merge-after-rebind":
        first, second = await interleave(
            lambda: api.post(DETACH, detach),
            "rebind_identity",
            lambda: api.post(MERGE, merge_input(x, p)),
        )
        detached = first
    else:
        activity = _runtime(api).activity._activity
        with pause_before(monkeypatch, activity, "upsert_conversation") as step:
            first, second = await interleave(
                lambda: api.post(RECORD, _record("late", sender="d")),
                step,
                lambda: api.post(DETACH, detach),
            )
        detached = second

    assert _code(first) is None, first
    assert _code(second) is None, second
    owner = await _owner(api, "d")
    assert owner == detached["data"]["detachIdentity"]["detached"]["id"]
    through_d = api.db["conversations"].find({"identity": f"{TENANT}|VISITOR|d"})
    assert {c["conversationId"]: c["profileId"] async for c in through_d} == {
        name: owner for name in (["c-d"] if race == "merge-after-rebind" else ["c-d", "late"])
    }
    await assert_invariants(api.db, TENANT)


async def _claimed_user_id_scene(api: Api, survivor: str) -> tuple[str, str]:
    """P: an anonymous profile of visitor-1; Q: the profile it will be merged into, with
    userId u2 (crm-1's), or anonymous (crm-1's capture). Returns (P, Q)."""
    p = await _capture(api, "visitor-1")
    if survivor == "identified":
        q = (await api.ok(IDENTIFY, identify_input("API", "crm-1", "u2")))["identify"]
    else:
        q = (await api.ok(CAPTURE, capture_input("API", "crm-1")))["captureProperties"]
    return p, str(q["profile"]["id"])


async def _merge_p_into_q(api: Api, p: str, q: str, merge: str) -> None:
    if merge == "manual":
        await api.ok(MERGE, merge_input(q, p))
    else:  # visitor-1 identifies as Q's userId: P merges into Q
        answer = await api.ok(IDENTIFY, identify_input("WEB", "visitor-1", "u2"))
        assert answer["identify"]["outcome"] == "MERGED"
    assert (await _doc(api, p))["mergedInto"] == q


@pytest.mark.parametrize(
    ("merge", "survivor"),
    [("manual", "identified"), ("identify", "identified"), ("manual", "anonymous")],
)
async def test_a_user_id_key_claimed_by_an_identify_that_died_stays_behind_when_its_profile_merges(
    api: Api, merge: str, survivor: str
) -> None:
    """Found by the stateful test. identify(visitor-1 as u1) on the anonymous P claims u1's key
    for P and dies before P records u1; then P is merged into Q (by hand, or by visitor-1
    identifying as Q's u2). P's userId was fixed (none) when the merge claimed it, so u1's key
    can never complete on P: it must not move to Q with P's records (Q would hold the key of
    a userId it does not have), and recovery releases it. Q keeps its own userId."""
    p, q = await _claimed_user_id_scene(api, survivor)
    with pytest.raises(Crash):
        await _dying(api, "claim_identity").services.identify(
            TENANT, Channel.WEB, "visitor-1", "u1", {}, actor="bot"
        )
    assert await _owner(api, "u1", kind="USER_ID") == p  # the claim decided, P not written yet

    await _merge_p_into_q(api, p, q, merge)

    assert await _owner(api, "u1", kind="USER_ID") != q
    assert (await _doc(api, q)).get("userId") == ("u2" if survivor == "identified" else None)
    assert f"{TENANT}|USER_ID|u1" not in (await _doc(api, q))["keys"]
    await assert_invariants(api.db, TENANT)  # recovers first, as a restarted process would
    assert await _owner(api, "u1", kind="USER_ID") is None


@pytest.mark.parametrize("survivor", ["identified", "anonymous"])
async def test_an_identify_paused_after_its_user_id_claim_while_its_profile_merges_ends_as_if_after(
    api: Api, survivor: str
) -> None:
    """The same window without a death: identify(visitor-1 as u1) pauses right after claiming
    u1's key for P, P is merged into Q by hand, the identify resumes. It answers as an
    identify run after the merge: visitor-1 is on Q, so Q takes u1 if it has no userId
    (IDENTIFIED), and visitor-1 moves to a new profile with u1 if Q has u2 (CREATED)."""
    p, q = await _claimed_user_id_scene(api, survivor)

    first, second = await interleave(
        lambda: api.post(IDENTIFY, identify_input("WEB", "visitor-1", "u1")),
        "claim_identity",
        lambda: api.post(MERGE, merge_input(q, p)),
    )

    assert _code(second) is None, second
    assert _code(first) is None, first
    outcome = first["data"]["identify"]["outcome"]
    owner = await _owner(api, "u1", kind="USER_ID")
    if survivor == "identified":
        assert outcome == "CREATED"
        assert owner not in (p, q)
        assert (await _doc(api, q))["userId"] == "u2"
    else:
        assert outcome == "IDENTIFIED"
        assert owner == q
        assert (await _doc(api, q))["userId"] == "u1"
    assert await _owner(api, "visitor-1") == owner
    await assert_invariants(api.db, TENANT)


# ----- part 2: the interleaving matrix ----------------------------------------------------------
#
# Each scenario lives in a tenant of its own in one application shared by the module, so that
# the ~180 cases stay cheap. A scene names the profiles an operation B can act on: the
# source and target sides of A (None: the profile A is creating, found once it exists), another
# profile, the senders of both sides, and where the records it created were written.

DOMAIN_ERRORS = {"NOT_FOUND", "MERGE_CONFLICT", "VALIDATION_FAILED", "LIMIT_EXCEEDED"}
_MATRIX = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(mongo_uri: str, geo: GeoIP) -> AsyncIterator[Api]:
    name = f"test_{secrets.token_hex(6)}"
    settings = Settings(mongodb_uri=mongo_uri, mongodb_db=name, key_cache_seconds=60)
    async with running(settings, CommandCounter(name), geo) as started:
        started.speak_stored_ids()
        yield started


@dataclass
class Scene:
    """The profiles and records of one scenario, in a tenant of its own. It is built through
    the use cases directly (cheaper than GraphQL); A and B go through the API."""

    api: Api
    tenant: str
    source: str | None = None
    target: str | None = None
    other: str = ""
    source_sender: str = ""
    target_sender: str = ""
    identify_as: tuple[str, str] = ("", "")
    merge_target_into: str = ""
    detach_sender: str = ""
    known: set[str] = field(default_factory=set)
    # (collection, _id) -> the profiles it was written on or may legitimately move to (None:
    # the profile created during the interleaving)
    records: dict[tuple[str, str], list[str | None]] = field(default_factory=dict)
    refused_records: list[tuple[str, str]] = field(default_factory=list)
    # What A's answer must match at the end when A decided after B: paused at one of these
    # steps, before the write that decides it, A's outcome is that of an A run after B.
    check_a: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    decided_after_b: frozenset[str] = frozenset()
    # What must hold at the end whatever A and B answered.
    check_end: Callable[[], Awaitable[None]] | None = None

    async def post(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        return await self.api.post(query, variables, tenant=self.tenant)

    async def capture(self, sender: str, props: dict[str, Any] | None = None) -> str:
        services = _runtime(self.api).services
        result = await services.capture(
            self.tenant, Channel.WEB, sender, props or {}, CaptureContext(), actor="setup"
        )
        return str(result.profile.id)

    async def identify(self, sender: str, user_id: str) -> str:
        services = _runtime(self.api).services
        result = await services.identify(
            self.tenant, Channel.WEB, sender, user_id, {}, actor="setup"
        )
        return str(result.profile.id)

    async def track(self, sender: str, event_id: str) -> None:
        result = await _runtime(self.api).activity.track_event(
            self.tenant,
            name="view",
            properties=None,
            occurred_at=None,
            event_id=event_id,
            channel=Channel.WEB,
            sender_id=sender,
        )
        self.records[("events", result.event.id)] = [result.profile.id]

    async def record(self, conversation: str, sender: str, *, may_move: bool = False) -> None:
        recorded = await _runtime(self.api).activity.record_conversation(
            self.tenant,
            ConversationInput(
                conversation,
                Channel.WEB,
                ConversationKind.CHAT,
                ConversationStatus.OPEN,
                None,
                None,
                None,
                None,
            ),
            channel=Channel.WEB,
            sender_id=sender,
            profile_id=None,
        )
        key = ("conversations", f"{self.tenant}|c|{conversation}")
        self.records[key] = [recorded.profile_id, None] if may_move else [recorded.profile_id]

    async def settled(self) -> None:
        """The scene is built: every profile that exists now is not A's."""
        cursor = self.api.db["profiles"].find({"tenant": self.tenant}, {"_id": 1})
        self.known = {d["_id"] async for d in cursor}

    async def written(
        self, query: str, variables: dict[str, Any], key: tuple[str, str]
    ) -> dict[str, Any]:
        """B's trackEvent or recordConversation, with where it says it wrote."""
        body = await self.post(query, variables)
        if (data := _answer(body)) is not None:
            answered = (
                (data.get("conversation") or data)["profileId"]
                if "conversation" in data
                else data["profile"]["id"]
            )
            self.records[key] = [answered]
            record = await self.api.db[key[0]].find_one({"_id": key[1]})
            assert record is not None, f"{key[1]} was not written"
            assert record["profileId"] == answered, (record, answered)
            assert await self.is_active(answered)
        else:
            self.refused_records.append(key)
        return body

    async def newborn(self) -> str | None:
        """The profile created during the interleaving (by A, or else by B), if any yet."""
        async for doc in self.api.db["profiles"].find({"tenant": self.tenant}).sort("createdAt"):
            if doc["_id"] not in self.known:
                return str(doc["_id"])
        return None

    async def side(self, which: str) -> str:
        found = getattr(self, which) or await self.newborn()
        return found or "0" * 32

    async def bound(self, sender: str) -> str | None:
        doc = await self.api.db["identities"].find_one({"_id": f"{self.tenant}|VISITOR|{sender}"})
        return str(doc["profileId"]) if doc else None

    async def chain_end(self, profile_id: str) -> str:
        """Where an id's redirects end, read from the documents."""
        for _ in range(32):
            doc = await self.api.db["profiles"].find_one({"_id": profile_id})
            if doc is None or not doc.get("mergedInto"):
                return profile_id
            profile_id = doc["mergedInto"]
        raise AssertionError("a redirect loop")

    async def is_active(self, profile_id: str) -> bool:
        doc = await self.api.db["profiles"].find_one({"_id": profile_id})
        return doc is not None and "state" not in doc

    async def assert_identified(self, sender: str, user_id: str, answered: str) -> None:
        assert await self.bound(sender) == answered, f"{sender} is not on the answer {answered}"
        doc = await self.api.db["profiles"].find_one({"_id": answered})
        assert "state" not in doc, doc
        assert doc.get("userId") == user_id, doc

    async def assert_conversations_follow(self, sender: str) -> None:
        """The conversations that came through a detached identity are where it is."""
        key = f"{self.tenant}|VISITOR|{sender}"
        owner = await self.bound(sender)
        async for chat in self.api.db["conversations"].find({"identity": key}):
            assert chat["profileId"] == owner, (
                f"conversation {chat['conversationId']} through {sender} is on "
                f"{chat['profileId']}, {sender} is on {owner}"
            )

    async def assert_detached(self, sender: str, data: dict[str, Any]) -> None:
        detached, remaining = data["detached"]["id"], data["profile"]["id"]
        assert await self.bound(sender) == detached, f"{sender} is not on the detached profile"
        assert await self.is_active(detached)
        assert await self.is_active(remaining)


async def _merge_scene(scene: Scene) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A = mergeProfiles(S into T); S is identified (two keys), T anonymous."""
    s = await scene.identify("s", "u-s")
    await scene.track("s", "e-s")
    await scene.record("c-s", "s")
    t = await scene.capture("t", {"lastName": "Tee"})
    await scene.track("t", "e-t")
    x = await scene.capture("x")
    scene.source, scene.target, scene.other = s, t, x
    scene.source_sender, scene.target_sender = "s", "t"
    scene.identify_as, scene.merge_target_into, scene.detach_sender = ("t", "u-s"), x, "s"

    async def check(data: dict[str, Any]) -> None:
        survivor = data["profile"]["id"]
        assert await scene.chain_end(s) == survivor
        assert await scene.is_active(survivor)

    scene.check_a = check
    scene.decided_after_b = frozenset(
        {"claim_merge_source", "fold_merge", "mark_folded", "move_records"}
    )
    await scene.settled()
    return lambda: scene.post(SLIM_MERGE, merge_input(t, s))


async def _detach_scene(scene: Scene) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A = detachIdentity(d from P); P holds p, d and its userId; the target side is the
    profile the detach creates."""
    p = await scene.identify("p", "u-p")
    await scene.identify("d", "u-p")  # d's own profile is merged into P
    await scene.track("p", "e-p")
    await scene.track("d", "e-d")
    await scene.record("c-d", "d", may_move=True)  # goes along with d
    x = await scene.capture("x")
    scene.source, scene.other = p, x
    scene.source_sender, scene.target_sender = "p", "d"
    scene.identify_as, scene.merge_target_into, scene.detach_sender = ("d", "u-p"), x, "d"
    detach = {"input": {"profileId": p, "channel": "WEB", "senderId": "d"}}
    scene.check_a = lambda data: scene.assert_detached("d", data)
    scene.decided_after_b = frozenset({"insert_pending"})
    scene.check_end = lambda: scene.assert_conversations_follow("d")
    await scene.settled()
    return lambda: scene.post(SLIM_DETACH, detach)


async def _create_scene(scene: Scene) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A = identify(s as u-b) while s's profile has u-a: CREATED, a profile born with u-b and s
    (the target side)."""
    a = await scene.identify("s", "u-a")
    await scene.identify("a2", "u-a")
    await scene.track("s", "e-s")
    await scene.record("c-s", "s")
    x = await scene.capture("x")
    scene.source, scene.other = a, x
    scene.source_sender, scene.target_sender = "a2", "s"
    scene.identify_as, scene.merge_target_into, scene.detach_sender = ("x", "u-b"), x, "s"
    scene.check_a = lambda data: scene.assert_identified("s", "u-b", data["profile"]["id"])
    scene.decided_after_b = frozenset({"insert_pending"})
    await scene.settled()
    return lambda: scene.post(SLIM_IDENTIFY, identify_input("WEB", "s", "u-b"))


async def _first_contact_scene(scene: Scene) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A = the first capture from n: a profile born with n (the source side)."""
    t = await scene.identify("t", "u-t")
    await scene.track("t", "e-t")
    await scene.record("c-t", "t")
    x = await scene.capture("x")
    scene.target, scene.other = t, x
    scene.source_sender, scene.target_sender = "n", "t"
    scene.identify_as, scene.merge_target_into, scene.detach_sender = ("n", "u-t"), x, "n"

    async def check(data: dict[str, Any]) -> None:
        answered = data["profile"]["id"]
        assert await scene.bound("n") == answered
        doc = await scene.api.db["profiles"].find_one({"_id": answered})
        assert "state" not in doc, doc
        assert doc["props"]["firstName"] == "Nia", doc

    scene.check_a = check
    scene.decided_after_b = frozenset({"insert_pending"})
    await scene.settled()
    return lambda: scene.post(SLIM_CAPTURE, capture_input("WEB", "n", {"firstName": "Nia"}))


async def _erase_scene(scene: Scene) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A = deleteProfile(P); P holds p, d (whose profile was merged into it: a redirect) and a
    userId. B's merge of the target goes into P."""
    p = await scene.identify("p", "u-p")
    await scene.identify("d", "u-p")
    await scene.track("p", "e-p")
    await scene.record("c-d", "d")
    t = await scene.capture("t")
    x = await scene.capture("x")
    scene.source, scene.target, scene.other = p, t, x
    scene.source_sender, scene.target_sender = "p", "t"
    scene.identify_as, scene.merge_target_into, scene.detach_sender = ("t", "u-p"), p, "d"
    await scene.settled()
    return lambda: scene.post(DELETE, {"id": p})


# Each B checks its own answer right away, while A is still paused and nothing else runs: what
# it says it did must be what the documents say.


async def _b_merge(scene: Scene, target: str, source: str) -> dict[str, Any]:
    body = await scene.post(SLIM_MERGE, merge_input(target, source))
    if (data := _answer(body)) is not None:
        survivor = data["profile"]["id"]
        assert await scene.chain_end(source) == survivor, "the source does not lead to the answer"
        assert await scene.is_active(survivor)
    return body


async def _b_merge_target_away(scene: Scene) -> dict[str, Any]:
    return await _b_merge(scene, scene.merge_target_into, await scene.side("target"))


async def _b_merge_source_away(scene: Scene) -> dict[str, Any]:
    return await _b_merge(scene, scene.other, await scene.side("source"))


async def _b_erase(which: str, scene: Scene) -> dict[str, Any]:
    profile_id = await scene.side(which)
    body = await scene.post(DELETE, {"id": profile_id})
    if _answer(body) is not None:
        end = await scene.chain_end(profile_id)
        doc = await scene.api.db["profiles"].find_one({"_id": end})
        assert doc["state"] == "ERASED", f"deleteProfile answered true; {end} is {doc}"
    return body


async def _b_capture(which: str, scene: Scene) -> dict[str, Any]:
    sender = scene.source_sender if which == "source" else scene.target_sender
    body = await scene.post(SLIM_CAPTURE, capture_input("WEB", sender, {"lastName": "Bee"}))
    if (data := _answer(body)) is not None:
        profile_id = data["profile"]["id"]
        assert await scene.bound(sender) == profile_id, "the sender is not on the answer"
        doc = await scene.api.db["profiles"].find_one({"_id": profile_id})
        assert "state" not in doc, doc
        assert doc["props"]["lastName"] == "Bee", doc
    return body


async def _b_identify(scene: Scene) -> dict[str, Any]:
    sender, user_id = scene.identify_as
    body = await scene.post(SLIM_IDENTIFY, identify_input("WEB", sender, user_id))
    if (data := _answer(body)) is not None:
        await scene.assert_identified(sender, user_id, data["profile"]["id"])
    return body


async def _b_detach(scene: Scene) -> dict[str, Any]:
    owner = await scene.bound(scene.detach_sender) or await scene.side("source")
    detach = {"input": {"profileId": owner, "channel": "WEB", "senderId": scene.detach_sender}}
    body = await scene.post(SLIM_DETACH, detach)
    if (data := _answer(body)) is not None:
        await scene.assert_detached(scene.detach_sender, data)
    return body


async def _b_track(scene: Scene) -> dict[str, Any]:
    variables = track_input("view", sender=scene.source_sender, event_id="b-e")
    return await scene.written(SLIM_TRACK, variables, ("events", f"{scene.tenant}|e|b-e"))


async def _b_record(scene: Scene) -> dict[str, Any]:
    variables = _record("b-c", sender=scene.source_sender)
    return await scene.written(RECORD, variables, ("conversations", f"{scene.tenant}|c|b-c"))


OPERATIONS_B: dict[str, Callable[[Scene], Awaitable[dict[str, Any]]]] = {
    "merge-target-away": _b_merge_target_away,
    "merge-source-away": _b_merge_source_away,
    "erase-source": lambda scene: _b_erase("source", scene),
    "erase-target": lambda scene: _b_erase("target", scene),
    "capture-source": lambda scene: _b_capture("source", scene),
    "capture-target": lambda scene: _b_capture("target", scene),
    "identify": _b_identify,
    "track": _b_track,
    "record": _b_record,
    "detach": _b_detach,
}
B_NAMES = list(OPERATIONS_B)

SceneBuilder = Callable[[Scene], Awaitable[Callable[[], Awaitable[dict[str, Any]]]]]


async def _play(api: Api, build: SceneBuilder, step: str, b_name: str) -> None:
    """Build the scene, pause A after `step`, run B to completion, resume A; then recover and
    check the invariants, and that nothing was lost."""
    scene = Scene(api, f"t{secrets.token_hex(5)}")
    operation_a = await build(scene)

    def operation_b() -> Awaitable[dict[str, Any]]:
        return OPERATIONS_B[b_name](scene)

    first, second = await interleave(operation_a, step, operation_b)

    for who, body, operation in (("A", first, operation_a), ("B", second, operation_b)):
        if _retryable(body):  # the caller is told to try again: once must do
            body = await operation()
        assert _code(body) in {None, *DOMAIN_ERRORS}, f"{who} failed: {body['errors']}"
        data = _answer(body)
        if who == "A" and data is not None and scene.check_a and step in scene.decided_after_b:
            await scene.check_a(data)
    await assert_invariants(api.db, scene.tenant)
    await _assert_nothing_lost(scene)
    if scene.check_end is not None:
        await scene.check_end()


async def _assert_nothing_lost(scene: Scene) -> None:
    """Every event and conversation created is on an active profile, or a profile it was on
    (or could have moved to) was erased; a refused write left no record."""
    db = scene.api.db
    profiles = {d["_id"]: d async for d in db["profiles"].find({"tenant": scene.tenant})}

    def erased(profile_id: str | None) -> bool:
        for _ in range(len(profiles) + 1):
            doc = profiles.get(profile_id or "")
            if doc is None or not doc.get("mergedInto"):
                break
            profile_id = doc["mergedInto"]
        return doc is not None and doc.get("state") == "ERASED"

    newborn = await scene.newborn()
    for (collection, record_id), owners in scene.records.items():
        if await db[collection].find_one({"_id": record_id}) is not None:
            continue  # where it is, the invariants checked
        candidates = [o if o is not None else newborn for o in owners]
        assert any(erased(o) for o in candidates), f"{record_id} was lost; it was on {owners}"
    for collection, record_id in scene.refused_records:
        assert await db[collection].find_one({"_id": record_id}) is None, (
            f"a refused write left {record_id}"
        )


# The scenes of operation A, and the steps it is paused after.
SCENES: dict[str, tuple[SceneBuilder, list[str]]] = {
    "merge": (
        _merge_scene,
        ["claim_merge_source", "fold_merge", "mark_folded", "move_records", "retire_source"],
    ),
    "detach": (
        _detach_scene,
        ["insert_pending", "rebind_identity", "move_identity_conversations", "drop_key"],
    ),
    "identify-creates": (
        _create_scene,
        ["insert_pending", "claim_identity", "rebind_identity", "activate"],
    ),
    "first-contact": (_first_contact_scene, ["insert_pending", "claim_identity"]),
    "erase": (_erase_scene, ["begin_erase", "delete_records", "tombstone"]),
}

# (A, step, B) cases that reproduce a bug (each has a strict xfail test of its own above).
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}


def _cases(*kinds: str) -> list[Any]:
    cases = []
    for kind in kinds:
        for step in SCENES[kind][1]:
            for b_name in B_NAMES:
                bug = KNOWN_BUGS.get((kind, step, b_name))
                marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
                case_id = f"{kind}-{step}-{b_name}" if len(kinds) > 1 else f"{step}-{b_name}"
                cases.append(pytest.param(kind, step, b_name, marks=marks, id=case_id))
    return cases


@_MATRIX
@pytest.mark.parametrize(("kind", "step", "b_name"), _cases("merge"))
async def test_a_merge_paused_at_each_step_while_another_operation_runs(
    shared: Api, kind: str, step: str, b_name: str
) -> None:
    """A = mergeProfiles(S into T) paused after `step`; B runs to completion; A resumes."""
    await _play(shared, SCENES[kind][0], step, b_name)


@_MATRIX
@pytest.mark.parametrize(("kind", "step", "b_name"), _cases("detach"))
async def test_a_detach_paused_at_each_step_while_another_operation_runs(
    shared: Api, kind: str, step: str, b_name: str
) -> None:
    """A = detachIdentity(d from P) paused after `step`; B runs to completion; A resumes."""
    await _play(shared, SCENES[kind][0], step, b_name)


@_MATRIX
@pytest.mark.parametrize(("kind", "step", "b_name"), _cases("identify-creates", "first-contact"))
async def test_a_birth_paused_at_each_step_while_another_operation_runs(
    shared: Api, kind: str, step: str, b_name: str
) -> None:
    """A = an identify that creates a profile, or a first contact, paused after `step`; B
    runs to completion; A resumes."""
    await _play(shared, SCENES[kind][0], step, b_name)


@_MATRIX
@pytest.mark.parametrize(("kind", "step", "b_name"), _cases("erase"))
async def test_an_erasure_paused_at_each_step_while_another_operation_runs(
    shared: Api, kind: str, step: str, b_name: str
) -> None:
    """A = deleteProfile(P) paused after `step`; B runs to completion; A resumes."""
    await _play(shared, SCENES[kind][0], step, b_name)
