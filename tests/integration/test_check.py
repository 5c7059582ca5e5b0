"""The invariant checker: a database built through the API scans clean; each invariant broken
by hand is reported alone, with count 1; repair puts right what recovery's rules decide."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.invariants import ProblemKind, Report, Severity
from domain.model import MergeTrigger
from server.config import Settings
from server.geo import GeoIP
from store.check import InvariantChecker
from store.pauses import Gate, armed
from tests.conftest import OTHER_TENANT, TENANT, Api, CommandCounter, running
from tests.integration.queries import (
    BY_IDENTITY,
    CAPTURE,
    DETACH,
    IDENTIFY,
    MERGE,
    RECORD,
    TRACK,
    capture_input,
    identify_input,
    merge_input,
    raw_id,
    track_input,
)

DELETE = "mutation Delete($id: ID!) { deleteProfile(input: {id: $id}) { deletedProfileId } }"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


async def _capture(api: Api, channel: str, sender: str, tenant: str = TENANT) -> str:
    data = await api.ok(CAPTURE, capture_input(channel, sender), tenant=tenant)
    profile_id: str = data["captureProperties"]["profile"]["id"]
    return profile_id


async def _identify(api: Api, channel: str, sender: str, user_id: str) -> dict[str, Any]:
    data = await api.ok(IDENTIFY, identify_input(channel, sender, user_id))
    result: dict[str, Any] = data["identify"]
    return result


async def _track(api: Api, name: str, channel: str, sender: str, at: str) -> None:
    await api.ok(TRACK, track_input(name, channel=channel, sender=sender, at=at))


async def _talk(api: Api, conversation_id: str, channel: str, sender: str) -> str:
    value = {"conversationId": conversation_id, "channel": channel, "senderId": sender}
    data = await api.ok(RECORD, {"input": value})
    profile_id: str = data["recordConversation"]["conversation"]["profileId"]
    return profile_id


async def _realistic_mix(api: Api) -> None:
    """Captures, every identify outcome, manual merges, a detach, events, conversations and
    erasures (of a profile with a redirect into it too), in two tenants."""
    await _capture(api, "WEB", "v-1")
    await _capture(api, "WHATSAPP", "919876543210")
    await _capture(api, "EMAIL", "asha@example.com")  # identified by its address
    assert (await _identify(api, "API", "crm-1", "u-1"))["outcome"] == "IDENTIFIED"
    await _track(api, "visit", "WEB", "v-1", "2024-01-01T00:00:00Z")
    await _talk(api, "chat-1", "WEB", "v-1")
    assert (await _identify(api, "WEB", "v-1", "u-1"))["outcome"] == "MERGED"
    assert (await _identify(api, "WHATSAPP", "919876543210", "u-3"))["outcome"] == "IDENTIFIED"
    await _talk(api, "chat-2", "WHATSAPP", "919876543210")
    assert (await _identify(api, "WHATSAPP", "919876543210", "u-1"))["outcome"] == "SWITCHED"
    assert (await _identify(api, "API", "crm-1", "u-2"))["outcome"] == "CREATED"
    await _track(api, "order", "WEB", "v-1", "2024-02-01T00:00:00Z")
    await _track(api, "order", "WHATSAPP", "919876543210", "2024-03-01T00:00:00Z")

    target = await _capture(api, "WEB", "v-2")
    source = await _capture(api, "WEB", "v-3")
    await _track(api, "order", "WEB", "v-3", "2023-06-01T00:00:00Z")
    await _track(api, "visit", "WEB", "v-2", "2023-07-01T00:00:00Z")
    await api.ok(MERGE, merge_input(target, source))
    await _track(api, "order", "WEB", "v-3", "2024-06-01T00:00:00Z")  # through the redirect

    survivor = (await _identify(api, "WEB", "v-1", "u-1"))["profile"]["id"]
    detach = {"profileId": survivor, "channel": "WEB", "senderId": "v-1"}
    await api.ok(DETACH, {"input": detach})

    doomed = await _capture(api, "WEB", "v-5")
    merged_in = await _capture(api, "WEB", "v-6")
    await _track(api, "order", "WEB", "v-6", "2024-01-01T00:00:00Z")
    await _talk(api, "chat-3", "WEB", "v-6")
    await api.ok(MERGE, merge_input(doomed, merged_in))
    await api.ok(DELETE, {"id": merged_in})  # erased through its redirect
    await api.ok(DELETE, {"id": await _capture(api, "SMS", "+919812345678")})
    await _capture(api, "WEB", "v-1", tenant=OTHER_TENANT)


async def test_a_database_built_through_the_api_scans_clean_in_any_page_size(api: Api) -> None:
    await _realistic_mix(api)
    assert await api.db["profiles"].count_documents({"state": "MERGED"}) >= 2
    assert await api.db["profiles"].count_documents({"state": "ERASED"}) >= 3

    for checker in (InvariantChecker(api.db), InvariantChecker(api.db, page_size=2)):
        for tenant in (None, TENANT, OTHER_TENANT):
            report = await checker.scan(tenant)
            assert report.found() == {}, (tenant, report.lines())
            assert report.lines()[-1] == "clean"


async def test_repairing_a_clean_database_writes_nothing(api: Api) -> None:
    await _realistic_mix(api)
    before = await api.snapshot()
    repaired = await _repair(api, None)
    assert repaired == "repaired: nothing"
    assert await api.snapshot() == before


@dataclass(frozen=True)
class World:
    """A small database: S (userId u-1, keys crm-1 and v-1, an event, a conversation), M (a
    redirect into S), G (an anonymous profile) and E (an erased profile)."""

    survivor: str
    redirect: str
    anonymous: str
    erased: str


async def _world(api: Api) -> World:
    redirect = await _capture(api, "WEB", "v-1")
    survivor = (await _identify(api, "API", "crm-1", "u-1"))["profile"]["id"]
    assert (await _identify(api, "WEB", "v-1", "u-1"))["outcome"] == "MERGED"
    await _track(api, "order", "API", "crm-1", "2024-01-01T00:00:00Z")
    await _talk(api, "chat-1", "WEB", "v-1")
    anonymous = await _capture(api, "WEB", "v-7")
    erased = await _capture(api, "WEB", "v-9")
    await api.ok(DELETE, {"id": erased})
    # The corruptions below write to the database, which keys profiles by their stored ids.
    return World(raw_id(survivor), raw_id(redirect), raw_id(anonymous), raw_id(erased))


Corruption = Callable[[Any, World], Awaitable[None]]


async def _key_without_profile(db: Any, w: World) -> None:
    await db["identities"].insert_one(
        {
            "_id": f"{TENANT}|VISITOR|lost",
            "tenant": TENANT,
            "type": "VISITOR",
            "value": "lost",
            "profileId": "no-such-profile",
            "channels": ["WEB"],
        }
    )


async def _user_id_forgotten(db: Any, w: World) -> None:
    await db["profiles"].update_one({"_id": w.survivor}, {"$set": {"userId": None}})


async def _user_id_key_lost(db: Any, w: World) -> None:
    key = f"{TENANT}|USER_ID|u-1"
    await db["identities"].delete_one({"_id": key})
    await db["profiles"].update_one({"_id": w.survivor}, {"$pull": {"keys": key}})


async def _conversation_left_on_redirect(db: Any, w: World) -> None:
    await db["conversations"].update_one(
        {"_id": f"{TENANT}|c|chat-1"}, {"$set": {"profileId": w.redirect}}
    )


async def _conversation_on_tombstone(db: Any, w: World) -> None:
    doc = await db["conversations"].find_one({"_id": f"{TENANT}|c|chat-1"})
    await db["conversations"].insert_one(
        {**doc, "_id": f"{TENANT}|c|chat-ghost", "conversationId": "chat-ghost"}
        | {"profileId": w.erased}
    )


async def _event_without_profile(db: Any, w: World) -> None:
    doc = await db["events"].find_one({"profileId": w.survivor})
    await db["events"].insert_one(
        {**doc, "_id": f"{TENANT}|e|orphan", "profileId": "no-such-profile"}
    )


async def _erasure_stalled(db: Any, w: World) -> None:
    await db["profiles"].update_one(
        {"_id": w.survivor}, {"$set": {"state": "ERASING", "stateAt": LONG_AGO}}
    )


async def _event_never_settled(db: Any, w: World) -> None:
    await db["events"].update_one(
        {"profileId": w.survivor}, {"$set": {"pending": True, "receivedAt": LONG_AGO}}
    )


async def _summary_wrong(db: Any, w: World) -> None:
    await db["profiles"].update_one({"_id": w.survivor}, {"$set": {"events.order.count": 99}})


async def _redirect_to_itself(db: Any, w: World) -> None:
    await db["profiles"].update_one({"_id": w.redirect}, {"$set": {"mergedInto": w.redirect}})


async def _redirect_to_nothing(db: Any, w: World) -> None:
    await db["profiles"].update_one({"_id": w.redirect}, {"$set": {"mergedInto": "nowhere"}})


async def _redirect_to_tombstone(db: Any, w: World) -> None:
    await db["profiles"].update_one({"_id": w.redirect}, {"$set": {"mergedInto": w.erased}})


async def _keys_deleted_but_profile_kept(db: Any, w: World) -> None:
    await db["identities"].delete_many({"profileId": w.anonymous})
    await db["profiles"].update_one({"_id": w.anonymous}, {"$set": {"keys": []}})


async def _ledger_lost_a_key(db: Any, w: World) -> None:
    await db["profiles"].update_one({"_id": w.survivor}, {"$pull": {"keys": f"{TENANT}|API|crm-1"}})


async def _reservation_leaked(db: Any, w: World) -> None:
    await db["profiles"].update_one(
        {"_id": w.survivor}, {"$push": {"keys": f"{TENANT}|VISITOR|never-bound"}}
    )


# (the kind, how the database is broken, whether repair makes it clean)
CASES: list[tuple[ProblemKind, Corruption, bool]] = [
    (ProblemKind.KEY_WITHOUT_PROFILE, _key_without_profile, True),
    (ProblemKind.USER_ID_KEY_MISMATCH, _user_id_forgotten, True),
    (ProblemKind.USER_ID_WITHOUT_KEY, _user_id_key_lost, False),
    (ProblemKind.RECORD_ON_MERGED, _conversation_left_on_redirect, True),
    (ProblemKind.RECORD_ON_ERASED, _conversation_on_tombstone, True),
    (ProblemKind.RECORD_WITHOUT_PROFILE, _event_without_profile, True),
    (ProblemKind.STALLED_OPERATION, _erasure_stalled, True),
    (ProblemKind.UNSETTLED_EVENT, _event_never_settled, True),
    (ProblemKind.SUMMARY_MISMATCH, _summary_wrong, True),
    (ProblemKind.REDIRECT_CYCLE, _redirect_to_itself, False),
    (ProblemKind.BROKEN_REDIRECT, _redirect_to_nothing, False),
    (ProblemKind.REDIRECT_TO_ERASED, _redirect_to_tombstone, False),
    (ProblemKind.GHOST_PROFILE, _keys_deleted_but_profile_kept, False),
    (ProblemKind.KEY_NOT_IN_LEDGER, _ledger_lost_a_key, True),
    (ProblemKind.LEAKED_RESERVATION, _reservation_leaked, True),
]


async def _repair(api: Api, tenant: str | None) -> str:
    runtime = api.app.state.runtime.get()
    checker = InvariantChecker(api.db)
    return (await checker.repair(tenant, runtime.services.lifecycle, runtime.activity)).line()


def test_every_kind_of_problem_has_a_case() -> None:
    assert {kind for kind, _, _ in CASES} == set(ProblemKind)


@pytest.mark.parametrize(
    ("kind", "corrupt", "repairable"), CASES, ids=[kind.value for kind, _, _ in CASES]
)
async def test_a_broken_invariant_is_reported_alone_and_repaired_where_recovery_can(
    api: Api, kind: ProblemKind, corrupt: Corruption, repairable: bool
) -> None:
    world = await _world(api)
    checker = InvariantChecker(api.db)
    assert (await checker.scan()).found() == {}

    await corrupt(api.db, world)
    report = await checker.scan(TENANT)
    assert report.found() == {kind: 1}, report.lines()
    assert report.clean is (kind.severity is Severity.WARNING)
    assert (await checker.scan(OTHER_TENANT)).found() == {}

    await _repair(api, TENANT)
    after = await checker.scan()
    assert after.found() == ({} if repairable else {kind: 1}), after.lines()


async def test_an_event_left_on_a_redirect_is_moved_to_its_survivor_and_counted_there(
    api: Api,
) -> None:
    world = await _world(api)
    event = await api.db["events"].find_one({"profileId": world.survivor})
    late = datetime(2024, 5, 1, tzinfo=UTC)
    await api.db["events"].insert_one(
        {**event, "_id": f"{TENANT}|e|late", "profileId": world.redirect, "occurredAt": late}
    )
    checker = InvariantChecker(api.db)
    assert (await checker.scan()).found() == {ProblemKind.RECORD_ON_MERGED: 1}

    line = await _repair(api, None)
    assert line == (
        "repaired: 1 record moved to a survivor; event summaries of 1 profile recomputed"
    )
    assert (await checker.scan()).found() == {}
    survivor = await api.db["profiles"].find_one({"_id": world.survivor})
    assert survivor["events"]["order"]["count"] == 2
    assert survivor["events"]["order"]["last"] == late


async def test_a_summary_is_replaced_by_the_exact_values_of_the_events(api: Api) -> None:
    world = await _world(api)
    await _track(api, "order", "API", "crm-1", "2023-01-01T00:00:00Z")
    wrong = {"count": 7, "first": LONG_AGO, "last": datetime(2030, 1, 1, tzinfo=UTC)}
    await api.db["profiles"].update_one(
        {"_id": world.survivor}, {"$set": {"events.order": wrong, "events.gone": wrong}}
    )
    await _repair(api, TENANT)
    survivor = await api.db["profiles"].find_one({"_id": world.survivor})
    assert survivor["events"] == {
        "order": {
            "count": 2,
            "first": datetime(2023, 1, 1, tzinfo=UTC),
            "last": datetime(2024, 1, 1, tzinfo=UTC),
        }
    }


async def test_a_merge_stalled_after_its_fold_is_reported_and_repair_finishes_it(
    api: Api,
) -> None:
    target = await _capture(api, "WEB", "t-1")
    source = await _capture(api, "WEB", "s-1")
    await _track(api, "order", "WEB", "s-1", "2024-01-01T00:00:00Z")
    gate = Gate("mark_folded")
    with armed(gate):
        merging = asyncio.create_task(api.post(MERGE, merge_input(target, source)))
    await asyncio.wait_for(gate.reached.wait(), 10)

    assert (await InvariantChecker(api.db).scan()).count(ProblemKind.STALLED_OPERATION) == 0
    stalled = await InvariantChecker(api.db, window_seconds=0).scan()
    assert stalled.count(ProblemKind.STALLED_OPERATION) == 1
    assert stalled.examples[ProblemKind.STALLED_OPERATION] == [raw_id(source)]

    assert await _repair(api, None) == "repaired: 1 merge finished or released"
    assert (await InvariantChecker(api.db, window_seconds=0).scan()).found() == {}
    gate.resume.set()
    assert "errors" not in await merging
    assert (await InvariantChecker(api.db, window_seconds=0).scan()).found() == {}
    moved = await api.db["events"].find_one({"tenant": TENANT})
    assert moved["profileId"] == raw_id(target)


async def test_repair_of_one_tenant_leaves_the_other_alone(api: Api) -> None:
    await _world(api)
    await _capture(api, "WEB", "v-1", tenant=OTHER_TENANT)
    for tenant in (TENANT, OTHER_TENANT):
        await api.db["profiles"].update_one(
            {"tenant": tenant, "state": None}, {"$push": {"keys": f"{tenant}|VISITOR|leak"}}
        )
    checker = InvariantChecker(api.db)
    assert (await checker.scan()).count(ProblemKind.LEAKED_RESERVATION) == 2

    await _repair(api, OTHER_TENANT)
    assert (await checker.scan(OTHER_TENANT)).found() == {}
    assert (await checker.scan(TENANT)).found() == {ProblemKind.LEAKED_RESERVATION: 1}


async def test_a_scan_sends_as_many_commands_for_many_profiles_as_for_a_few(
    api: Api, commands: CommandCounter
) -> None:
    async def grow(count: int, start: int) -> int:
        for i in range(start, start + count):
            await _track(api, "visit", "WEB", f"p-{i}", "2024-01-01T00:00:00Z")
        commands.reset()
        await InvariantChecker(api.db).scan()
        return commands.count

    few = await grow(2, 0)
    many = await grow(20, 2)
    assert few == many
    assert few <= 10


def test_a_report_prints_a_line_per_kind_then_its_verdict() -> None:
    report = Report()
    assert report.lines()[-1] == "clean"
    assert len(report.lines()) == len(ProblemKind) + 1
    for i in range(7):
        report.add(ProblemKind.KEY_WITHOUT_PROFILE, f"k-{i}")
    report.add(ProblemKind.LEAKED_RESERVATION, "p-1")
    lines = report.lines()
    assert lines[0].split()[:2] == ["key_without_profile", "7"]
    assert lines[0].endswith("e.g. k-0, k-1, k-2, k-3, k-4")
    assert "(warning)" in next(line for line in lines if line.startswith("leaked_reservation"))
    assert lines[-1] == "7 problems (1 warning)"
    assert not report.clean
    only_warning = Report()
    only_warning.add(ProblemKind.LEAKED_RESERVATION, "p-1")
    assert only_warning.lines()[-1] == "clean (1 warning)"
    assert only_warning.clean


# ----- bugs the checker found (reproduced; not fixed here) -------------------------------


async def _paused(gate: Gate, request: Awaitable[Any]) -> asyncio.Task[Any]:
    """Run `request` in a task of its own that stops right after the gate's step."""

    async def run() -> Any:
        return await request

    with armed(gate):
        task = asyncio.create_task(run())
    await asyncio.wait_for(gate.reached.wait(), 10)
    return task


async def test_two_identical_switches_leave_the_key_in_its_new_profiles_ledger(
    api: Api,
) -> None:
    await _identify(api, "API", "crm-x", "u-0")
    owner = raw_id((await _identify(api, "API", "crm-e", "u-1"))["profile"]["id"])
    gate = Gate("reserve_key")
    first = await _paused(gate, api.post(IDENTIFY, identify_input("API", "crm-x", "u-1")))
    assert (await _identify(api, "API", "crm-x", "u-1"))["outcome"] == "SWITCHED"
    gate.resume.set()
    assert "errors" not in await first

    binding = await api.db["identities"].find_one({"_id": f"{TENANT}|API|crm-x"})
    assert binding["profileId"] == owner
    profile = await api.db["profiles"].find_one({"_id": owner})
    assert f"{TENANT}|API|crm-x" in profile["keys"]
    assert (await InvariantChecker(api.db).scan()).found() == {}


@pytest.fixture
async def api_one_merge(
    settings: Settings, commands: CommandCounter, geo: GeoIP
) -> AsyncIterator[Api]:
    """The application with a limit of one merge per profile."""
    async with running(replace(settings, max_merges=1), commands, geo) as started:
        yield started


async def test_a_user_id_stays_with_one_profile_when_identifies_meet_an_abandoned_merge(
    api_one_merge: Api,
) -> None:
    api = api_one_merge
    target = await _capture(api, "WEB", "t")
    other = await _capture(api, "WEB", "x")
    await _capture(api, "WEB", "a")
    await _capture(api, "WEB", "b")
    await _capture(api, "WEB", "c")
    anonymous = await api.ok(BY_IDENTITY, {"channel": "WEB", "senderId": "a"})
    source = anonymous["profileByIdentity"]["id"]

    # 1. identify a as u-1 claims the key u-1 for a's profile, and stops there.
    first_gate = Gate("claim_identity")
    first = await _paused(first_gate, api.post(IDENTIFY, identify_input("WEB", "a", "u-1")))
    # 2. a merge of a's profile into the target claims it, and stops there; then another merge
    #    into the target completes, so the first one's fold will be refused (limit of 1).
    claim_gate = Gate("claim_merge_source")
    claimed = await _paused(claim_gate, api.post(MERGE, merge_input(target, source)))
    await api.ok(MERGE, merge_input(target, other))
    # 3. identify b as u-1 finds the key on a's profile and, finishing the merge it meets
    #    there, records the merge as abandoned on the target, and stops there.
    second_gate = Gate("abandon_fold")
    second = await _paused(second_gate, api.post(IDENTIFY, identify_input("WEB", "b", "u-1")))
    # 4. the first identify's set_user_id failed (the profile was claimed): it releases the
    #    claim, then the key. 5. The second sets u-1 on a's profile, whose key is gone.
    first_gate.resume.set()
    await first
    second_gate.resume.set()
    await second
    claim_gate.resume.set()
    await claimed
    # 6. with the key gone, a third sender could claim u-1 for a profile of its own; with the
    #    key kept, it joins a's profile, or is refused by the merge limit of 1.
    third = await api.post(IDENTIFY, identify_input("WEB", "c", "u-1"))
    assert not third.get("errors") or third["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"

    holders = await api.db["profiles"].count_documents({"userId": "u-1", "state": None})
    assert holders == 1
    report = await InvariantChecker(api.db).scan()
    assert report.clean, report.lines()


async def test_a_cycle_of_merge_claims_is_broken_instead_of_recursing(api: Api) -> None:
    ids = sorted([await _capture(api, "WEB", f"m-{i}") for i in range(3)])
    low, middle, high = ids
    folded = [
        await _paused(Gate("mark_folded"), api.post(MERGE, merge_input(middle, high))),
        await _paused(Gate("mark_folded"), api.post(MERGE, merge_input(low, middle))),
    ]
    merger = api.app.state.runtime.get().services.merger
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(_stack_depth() + 250)  # fail fast: a sound merge needs far less
    try:
        # A merge of low into high whose checks ran before the two merges above claimed.
        await merger.merge(
            TENANT,
            low,
            high,
            trigger=MergeTrigger.MANUAL,
            actor="agent",
            unidentified_only=False,
        )
    finally:
        sys.setrecursionlimit(limit)
        for task in folded:  # resumed, they would meet the same cycle
            task.cancel()
        await asyncio.gather(*folded, return_exceptions=True)


def _stack_depth() -> int:
    depth, frame = 0, sys._getframe()
    while frame.f_back is not None:
        depth, frame = depth + 1, frame.f_back
    return depth
