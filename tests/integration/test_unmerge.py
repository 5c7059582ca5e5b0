"""Unmerge: undoing one merge exactly, its rules, its refusals, and its state machine under
crashes, concurrent unmerges and concurrent writes (played with the store's pause points)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from domain.access import Role
from domain.invariants import ProblemKind
from domain.ports import ProfileStore
from domain.services import ProfileService
from server.app import SystemClock
from store.check import InvariantChecker
from store.pauses import Gate, armed
from tests.conftest import TENANT, Api, CommandCounter
from tests.integration.interleave import interleave, pause_before
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
    profile_gid,
    track_input,
)
from tests.integration.test_merge_faults import Crash, CrashAfter
from tests.integration.unmerging import (
    PREVIEW,
    UNMERGE,
    merge_id_of,
    state_of,
    stored_id,
    unmerge_input,
    with_contact,
)

# The unmerge's steps, in order, as the store methods that perform them.
STEPS = [
    "claim_unmerge",
    "revive_source",
    "move_back",
    "strip_survivor",
    "recompute_event_summaries",
    "activate_source",
    "release_unmerge",
]


def _code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors")
    return str(errors[0]["extensions"]["code"]) if errors else None


async def _owner(api: Api, key: str) -> str | None:
    """The profile a key is bound to, as the API names it."""
    doc = await api.db["identities"].find_one({"_id": f"{TENANT}|{key}"})
    return None if doc is None else profile_gid(str(doc["profileId"]))


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
            {"input": {"conversationId": conversation, "channel": channel, "senderId": sender}},
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
    assert payload["source"]["id"] == source
    assert payload["source"]["mergedInto"] is None
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
    assert entry["mergeId"] == merge_id
    assert entry["undoneAt"]
    assert entry["undoneBy"] == "agent-key"
    for side in ("source", "survivor"):
        (unmerge,) = payload[side]["unmergeHistory"]
        assert (unmerge["mergeId"], unmerge["sourceId"]) == (merge_id, source)
        assert unmerge["survivorId"] == target
        assert unmerge["actor"] == "agent-key"
    await assert_invariants(api.db, TENANT)


async def test_an_identify_merge_then_its_unmerge_leaves_both_profiles_as_they_were(
    api: Api,
) -> None:
    """identify(s9 as u-t) merges the anonymous S into T (MERGED): the identify's contact is
    the sender's record's, merged with it; undone, both are exactly as before."""
    t = await api.ok(IDENTIFY, identify_input("API", "crm-t", "u-t", {"language": "en"}))
    target = t["identify"]["profile"]["id"]
    s = await api.ok(CAPTURE, capture_input("WEB", "s9", {"firstName": "Sam", "tags": ["a"]}))
    source = s["captureProperties"]["profile"]["id"]
    await api.ok(TRACK, track_input("view", sender="s9", event_id="e-s9"))
    t0, s0 = await state_of(api, target), await state_of(api, source)

    merged = await api.ok(IDENTIFY, identify_input("WEB", "s9", "u-t"))
    assert merged["identify"]["outcome"] == "MERGED"
    merge_id = await merge_id_of(api, target, source)
    await api.ok(UNMERGE, unmerge_input(merge_id), role=Role.AGENT)

    assert await state_of(api, target) == t0
    # The identify was a contact through s9, written on S's record before the merge: S gets
    # it back exactly (the survivor answered it as its later contact).
    assert await state_of(api, source) == with_contact(s0, "WEB", merged["identify"]["profile"])
    await assert_invariants(api.db, TENANT)


def _changes(items: list[dict[str, Any]]) -> set[tuple[str, Any, Any, Any]]:
    return {(c["property"], c["item"], repr(c["value"]), repr(c["sourceValue"])) for c in items}


async def test_writes_between_merge_and_unmerge_follow_each_rule_and_the_preview_said_so(
    api: Api,
) -> None:
    """Between the merge and its undo: a filled value changes (gender), a tag only the source
    brought is added again (s), events and a conversation come through a returning identity
    (s1) and an event through the survivor's own (crm-t). The preview lists exactly what the
    unmerge then does: the changed value and the re-added tag stay (and are said to), the
    rest of what the merge brought goes; the late records through s1 go back, crm-t's stay."""
    target, source, merge_id, t0, s0 = await _merged_pair(api)
    await api.ok(UPDATE, {"input": {"id": target, "set": {"gender": "x"}, "addTags": ["s"]}})
    await api.ok(TRACK, track_input("visit", sender="s1", event_id="late-s"))
    await api.ok(TRACK, track_input("visit", channel="API", sender="crm-t", event_id="late-t"))
    await api.ok(
        RECORD, {"input": {"conversationId": "c-late", "channel": "WEB", "senderId": "s1"}}
    )

    snapshot = await api.snapshot()
    preview = (await api.ok(PREVIEW, {"mergeId": merge_id}, role=Role.AGENT))["unmergePreview"]
    assert await api.snapshot() == snapshot, "the preview wrote something"
    data = await api.ok(UNMERGE, unmerge_input(merge_id), role=Role.AGENT)
    payload = data["unmergeProfiles"]

    kept = {("gender", None, "'x'", "'m'"), ("tags", "s", "None", "None")}
    assert (
        _changes(preview["kept"]) - {c for c in _changes(preview["kept"]) if c[0] == "lastSession"}
        == kept
    )
    assert _changes(payload["kept"]) == _changes(preview["kept"])
    removed = {(c["property"], c["item"]) for c in payload["removed"]}
    assert removed == {(c["property"], c["item"]) for c in preview["removed"]}
    assert removed == {
        ("firstName", None),
        ("lastName", None),
        ("emailOptin", None),
        ("phone", None),
        ("country", None),
    }
    assert (preview["sourceId"], preview["survivorId"]) == (source, target)
    assert sorted(i["value"] for i in preview["identities"]) == ["+919876543210", "s1"]
    assert (preview["eventCount"], preview["conversationCount"]) == (3, 2)
    assert preview["userIdReturns"] is False

    survivor = await state_of(api, target)
    assert survivor["props"]["gender"] == "x"
    assert survivor["props"]["tags"] == ["t", "x", "s"]
    assert "firstName" not in survivor["props"]
    assert "emailOptin" not in survivor["props"]
    assert [e for e, _ in survivor["stored events"]] == [f"{TENANT}|e|e-t", f"{TENANT}|e|late-t"]
    assert survivor["events"]["visit"]["count"] == 1
    assert survivor["events"]["purchase"]["count"] == 1
    back = await state_of(api, source)
    assert back["props"] == s0["props"]
    assert sorted(e for e, _ in back["stored events"]) == [
        f"{TENANT}|e|e-s1",
        f"{TENANT}|e|e-s2",
        f"{TENANT}|e|late-s",
    ]
    assert sorted(c for c, _ in back["conversations"]) == [f"{TENANT}|c|c-late", f"{TENANT}|c|c-s"]
    assert back["events"]["purchase"]["count"] == 2
    assert back["events"]["visit"]["count"] == 1
    assert await _owner(api, "VISITOR|s1") == source
    await assert_invariants(api.db, TENANT)


async def test_a_userid_the_source_gave_the_survivor_goes_back_to_the_source(api: Api) -> None:
    s = await api.ok(IDENTIFY, identify_input("API", "crm-s", "u-s", {"firstName": "Sam"}))
    source = s["identify"]["profile"]["id"]
    t = await api.ok(CAPTURE, capture_input("WEB", "t1", {"language": "en"}))
    target = t["captureProperties"]["profile"]["id"]
    t0, s0 = await state_of(api, target), await state_of(api, source)
    merged = await api.ok(MERGE, merge_input(target, source))
    assert merged["mergeProfiles"]["profile"]["userId"] == "u-s"
    merge_id = await merge_id_of(api, target, source)

    preview = (await api.ok(PREVIEW, {"mergeId": merge_id}, role=Role.AGENT))["unmergePreview"]
    await api.ok(UNMERGE, unmerge_input(merge_id), role=Role.AGENT)

    assert preview["userIdReturns"] is True
    assert preview["sourceUserId"] == "u-s"
    await _assert_as_before(api, target, source, t0, s0)
    assert await _owner(api, "USER_ID|u-s") == source
    await assert_invariants(api.db, TENANT)


# ----- refusals ----------------------------------------------------------------------------


async def test_an_undone_merge_cannot_be_undone_twice(api: Api) -> None:
    _, _, merge_id, _, _ = await _merged_pair(api)
    await api.ok(UNMERGE, unmerge_input(merge_id), role=Role.AGENT)

    error = await api.refused("MERGE_CONFLICT", UNMERGE, unmerge_input(merge_id), role=Role.AGENT)
    assert "already undone" in error["message"]
    await api.refused("MERGE_CONFLICT", PREVIEW, {"mergeId": merge_id}, role=Role.AGENT)


async def test_a_survivor_merged_into_a_third_profile_names_that_merge_to_undo_first(
    api: Api,
) -> None:
    target, source, merge_id, t0, s0 = await _merged_pair(api)
    third = (await api.ok(CAPTURE, capture_input("WEB", "third")))["captureProperties"]
    await api.ok(MERGE, merge_input(third["profile"]["id"], target))
    later = await merge_id_of(api, third["profile"]["id"], target)

    error = await api.refused("MERGE_CONFLICT", UNMERGE, unmerge_input(merge_id), role=Role.AGENT)
    assert later in error["message"], error
    await api.refused("MERGE_CONFLICT", PREVIEW, {"mergeId": merge_id}, role=Role.AGENT)

    await api.ok(UNMERGE, unmerge_input(later), role=Role.AGENT)
    await api.ok(UNMERGE, unmerge_input(merge_id), role=Role.AGENT)
    await _assert_as_before(api, target, source, t0, s0)
    await assert_invariants(api.db, TENANT)


async def test_a_later_merge_that_met_a_value_this_one_brought_must_be_undone_first(
    api: Api,
) -> None:
    """After S→T filled T's gender, O (gender f) merged into T too and kept T's (S's) gender:
    undoing S→T alone would lose O's. It is refused, naming O→T; undone in order, both go."""
    target, source, merge_id, t0, s0 = await _merged_pair(api)
    other = await api.ok(CAPTURE, capture_input("WEB", "o1", {"gender": "f"}))
    other_id = other["captureProperties"]["profile"]["id"]
    await api.ok(MERGE, merge_input(target, other_id))
    later = await merge_id_of(api, target, other_id)

    error = await api.refused("MERGE_CONFLICT", UNMERGE, unmerge_input(merge_id), role=Role.AGENT)
    assert later in error["message"], error

    await api.ok(UNMERGE, unmerge_input(later), role=Role.AGENT)
    await api.ok(UNMERGE, unmerge_input(merge_id), role=Role.AGENT)
    await _assert_as_before(api, target, source, t0, s0)
    assert (await state_of(api, other_id))["props"]["gender"] == "f"
    await assert_invariants(api.db, TENANT)


async def test_a_later_independent_merge_does_not_block_the_unmerge(api: Api) -> None:
    target, source, merge_id, _, s0 = await _merged_pair(api)
    other = await api.ok(CAPTURE, capture_input("WEB", "o1", {"dob": "1990-05-01"}))
    await api.ok(MERGE, merge_input(target, other["captureProperties"]["profile"]["id"]))

    await api.ok(UNMERGE, unmerge_input(merge_id), role=Role.AGENT)

    assert await state_of(api, source) == s0
    survivor = await state_of(api, target)
    assert survivor["props"]["dob"] == "1990-05-01"
    assert "firstName" not in survivor["props"]
    assert await _owner(api, "VISITOR|o1") == target
    await assert_invariants(api.db, TENANT)


@pytest.mark.parametrize(
    ("role", "merge_id", "code"),
    [
        (Role.AGENT, "no-such-merge", "NOT_FOUND"),
        (Role.AGENT, "", "NOT_FOUND"),
        (Role.SDK, None, "FORBIDDEN"),
        (Role.VIEWER, None, "FORBIDDEN"),
    ],
)
async def test_a_refused_unmerge_writes_nothing(
    api: Api, role: Role, merge_id: str | None, code: str
) -> None:
    _, _, real, _, _ = await _merged_pair(api)
    await api.refused(
        code, UNMERGE, unmerge_input(real if merge_id is None else merge_id), role=role
    )
    await api.refused(code, PREVIEW, {"mergeId": real if merge_id is None else merge_id}, role=role)


# ----- crashes, concurrent unmerges, concurrent writes ------------------------------------


def _dying(api: Api, step: str) -> Any:
    """The unmerger of a process that dies right after `step`."""
    services = api.app.state.runtime.get().services
    store = cast(ProfileStore, CrashAfter(services._store, step))
    return ProfileService(store, SystemClock(), services._geo).lifecycle.unmerger


@pytest.mark.parametrize("finisher", ["recovery", "a reader", "a second unmerge"])
@pytest.mark.parametrize("step", STEPS)
async def test_an_unmerge_that_dies_after_any_step_ends_as_a_clean_unmerge(
    api: Api, step: str, finisher: str
) -> None:
    target, source, merge_id, t0, s0 = await _merged_pair(api)
    with pytest.raises(Crash):
        await _dying(api, step).unmerge(TENANT, merge_id, actor="agent-key")

    if finisher == "recovery":
        await api.app.state.runtime.get().services.lifecycle.recover()
    elif finisher == "a reader":  # of either profile: each finishes what it meets
        await api.ok(MERGE_READ, {"id": source})
        await api.ok(MERGE_READ, {"id": target})
    else:  # it finishes the one under way; once that was complete, it is refused
        body = await api.post(UNMERGE, unmerge_input(merge_id), role=Role.AGENT)
        assert _code(body) == ("MERGE_CONFLICT" if step == "release_unmerge" else None), body

    await _assert_as_before(api, target, source, t0, s0)
    survivor = await api.db["profiles"].find_one({"_id": stored_id(target)})
    assert [u["mergeId"] for u in survivor["unmerges"]] == [merge_id]
    assert survivor["mergeHistory"][-1]["undone"]["actor"] == "agent-key"
    await assert_invariants(api.db, TENANT)


MERGE_READ = "query Read($id: ID!) { profile(id: $id) { id firstName } }"


async def test_two_concurrent_unmerges_of_one_merge_apply_it_once(api: Api) -> None:
    target, source, merge_id, t0, s0 = await _merged_pair(api)

    bodies = await asyncio.gather(
        *(api.post(UNMERGE, unmerge_input(merge_id), role=Role.AGENT) for _ in range(2))
    )

    codes = sorted(str(_code(b)) for b in bodies)
    assert codes in (["None", "None"], ["MERGE_CONFLICT", "None"]), bodies
    await _assert_as_before(api, target, source, t0, s0)
    survivor = await api.db["profiles"].find_one({"_id": stored_id(target)})
    assert len(survivor["unmerges"]) == 1
    await assert_invariants(api.db, TENANT)


@pytest.mark.parametrize("step", STEPS)
async def test_an_unmerge_meeting_another_paused_after_any_step_finishes_it_or_is_refused(
    api: Api, step: str
) -> None:
    target, source, merge_id, t0, s0 = await _merged_pair(api)

    first, second = await interleave(
        lambda: api.post(UNMERGE, unmerge_input(merge_id), role=Role.AGENT),
        step,
        lambda: api.post(UNMERGE, unmerge_input(merge_id), role=Role.AGENT),
    )

    assert _code(first) in (None, "MERGE_CONFLICT"), first
    assert _code(second) in (None, "MERGE_CONFLICT"), second
    assert None in (_code(first), _code(second))
    await _assert_as_before(api, target, source, t0, s0)
    await assert_invariants(api.db, TENANT)


@pytest.mark.parametrize("step", STEPS)
async def test_an_unmerge_racing_a_capture_on_the_survivor_loses_nothing(
    api: Api, step: str
) -> None:
    """The unmerge pauses after each step in turn while a capture on the survivor's own sender
    changes a value the merge filled, sets a new one and replaces the tags: every value the
    capture wrote is on the survivor afterwards, the source is exactly as before."""
    target, source, merge_id, _, s0 = await _merged_pair(api)
    written = {"gender": "x", "dob": "1990-05-01", "tags": ["t", "x", "new"]}

    first, second = await interleave(
        lambda: api.post(UNMERGE, unmerge_input(merge_id), role=Role.AGENT),
        step,
        lambda: api.post(CAPTURE, capture_input("API", "crm-t", written)),
    )

    assert _code(first) is None, first
    assert _code(second) is None, second
    survivor = await state_of(api, target)
    assert {k: survivor["props"].get(k) for k in written} == written
    assert survivor["props"]["language"] == "en"
    assert "firstName" not in survivor["props"]
    assert await state_of(api, source) == s0
    await assert_invariants(api.db, TENANT)


async def _sized(api: Api, tenant: str, n: int) -> str:
    """S with n identities, 2n events and n conversations merged into T; the merge id."""
    t = await api.ok(CAPTURE, capture_input("API", "crm-t", {"language": "en"}), tenant=tenant)
    target = t["captureProperties"]["profile"]["id"]
    s = await api.ok(CAPTURE, capture_input("WEB", "s-0", {"firstName": "Sam"}), tenant=tenant)
    source = s["captureProperties"]["profile"]["id"]
    for i in range(1, n):
        other = await api.ok(CAPTURE, capture_input("WEB", f"s-{i}"), tenant=tenant)
        await api.ok(
            MERGE, merge_input(source, other["captureProperties"]["profile"]["id"]), tenant=tenant
        )
    for i in range(2 * n):
        await api.ok(TRACK, track_input("view", sender=f"s-{i % n}"), tenant=tenant)
    for i in range(n):
        record = {"conversationId": f"c-{i}", "channel": "WEB", "senderId": f"s-{i}"}
        await api.ok(RECORD, {"input": record}, tenant=tenant)
    await api.ok(MERGE, merge_input(target, source), tenant=tenant)
    return await merge_id_of(api, target, source, tenant=tenant)


async def test_database_commands_per_unmerge_do_not_grow_with_the_records_moved(
    api: Api, commands: CommandCounter
) -> None:
    counts = {}
    for tenant, n in (("small", 1), ("large", 8)):
        merge_id = await _sized(api, tenant, n)
        await api.ok(MERGE_READ, {"id": "warm-up"}, role=Role.AGENT, tenant=tenant)
        commands.reset()
        await api.ok(UNMERGE, unmerge_input(merge_id), role=Role.AGENT, tenant=tenant)
        counts[n] = commands.count
        await assert_invariants(api.db, tenant)

    assert counts[1] == counts[8], (counts, commands.names)
    assert counts[1] == UNMERGE_COMMANDS, commands.names


# The merge found, its identities listed, the claim, the revival, three batched moves, the
# survivor read and stripped, two batched moves of late records, the activation, both
# summaries recomputed (two readings and two writes each), the release, both profiles read.
UNMERGE_COMMANDS = 23


DELETE = """mutation Delete($input: DeleteProfileInput!) {
  deleteProfile(input: $input) { deletedProfileId } }"""


async def _meanwhile(api: Api, what: str, target: str, source: str) -> tuple[dict[str, Any], str]:
    """Run one operation on either profile; returns its answer and the id of X (if any)."""
    if what == "erase the source":
        return await api.post(DELETE, {"input": {"id": source}}), ""
    if what == "erase the survivor":
        return await api.post(DELETE, {"input": {"id": target}}), ""
    x = await api.ok(CAPTURE, capture_input("WEB", "x1", {"dob": "1990-05-01"}))
    x_id = str(x["captureProperties"]["profile"]["id"])
    if what == "merge into the survivor":
        return await api.post(MERGE, merge_input(target, x_id)), x_id
    return await api.post(MERGE, merge_input(x_id, target)), x_id  # the survivor merged away


@pytest.mark.parametrize(
    "what",
    [
        "merge into the survivor",
        "merge the survivor away",
        "erase the survivor",
        "erase the source",
    ],
)
@pytest.mark.parametrize("step", STEPS)
async def test_an_operation_meeting_an_unmerge_paused_after_any_step_finishes_it_first(
    api: Api, step: str, what: str
) -> None:
    """The unmerge pauses after each step in turn; a merge into (or of) the survivor, or an
    erasure of either profile, runs to completion meanwhile: it finishes the unmerge first,
    then does its own work on the profiles as they are after the unmerge."""
    target, source, merge_id, t0, s0 = await _merged_pair(api)

    first, (second, x) = await interleave(
        lambda: api.post(UNMERGE, unmerge_input(merge_id), role=Role.AGENT),
        step,
        lambda: _meanwhile(api, what, target, source),
    )

    assert _code(second) is None, second
    assert _code(first) in (None, "NOT_FOUND"), first
    if what == "erase the source":
        assert (await api.db["profiles"].find_one({"_id": stored_id(source)}))["state"] == "ERASED"
        assert await state_of(api, target) == t0
    else:
        assert await state_of(api, source) == s0
    if what == "erase the survivor":
        assert (await api.db["profiles"].find_one({"_id": stored_id(target)}))["state"] == "ERASED"
    if what == "merge into the survivor":
        assert await _owner(api, "VISITOR|x1") == target
        assert (await state_of(api, target))["props"]["dob"] == "1990-05-01"
    if what == "merge the survivor away":
        assert await _owner(api, "API|crm-t") == x
    await assert_invariants(api.db, TENANT)


@pytest.mark.parametrize("step", ["claim_unmerge", "revive_source", "strip_survivor"])
async def test_an_unmerge_stalled_half_way_is_reported_by_check_and_repair_finishes_it(
    api: Api, step: str
) -> None:
    target, source, merge_id, t0, s0 = await _merged_pair(api)
    gate = Gate(step)
    with armed(gate):
        unmerging = asyncio.create_task(api.post(UNMERGE, unmerge_input(merge_id), role=Role.AGENT))
    await asyncio.wait_for(gate.reached.wait(), 10)

    assert (await InvariantChecker(api.db).scan()).count(ProblemKind.STALLED_OPERATION) == 0
    stalled = await InvariantChecker(api.db, window_seconds=0).scan()
    assert stalled.count(ProblemKind.STALLED_OPERATION) >= 1
    assert set(stalled.examples[ProblemKind.STALLED_OPERATION]) <= {
        stored_id(source),
        stored_id(target),
    }

    runtime = api.app.state.runtime.get()
    repaired = await InvariantChecker(api.db).repair(
        None, runtime.services.lifecycle, runtime.activity
    )
    assert repaired.line() == "repaired: 1 unmerge finished"
    assert (await InvariantChecker(api.db, window_seconds=0).scan()).found() == {}
    gate.resume.set()
    assert _code(await unmerging) is None
    await _assert_as_before(api, target, source, t0, s0)


@pytest.mark.parametrize("what", ["event", "conversation"])
async def test_a_record_whose_writer_read_a_returning_key_before_the_unmerge_follows_the_key(
    api: Api, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    """A trackEvent (or recordConversation) through s1 has found s1 on the survivor and pauses
    right before its write; the unmerge runs to completion (s1 goes back to the source); the
    write resumes and lands on the survivor. It must end on the source, counted there."""
    target, source, merge_id, _, _ = await _merged_pair(api)
    activity = api.app.state.runtime.get().activity._activity
    if what == "event":
        method, collection, key = "insert_event", "events", f"{TENANT}|e|late"
        query, variables = TRACK, track_input("visit", sender="s1", event_id="late")
    else:
        method, collection, key = "upsert_conversation", "conversations", f"{TENANT}|c|late"
        query, variables = (
            RECORD,
            {"input": {"conversationId": "late", "channel": "WEB", "senderId": "s1"}},
        )

    with pause_before(monkeypatch, activity, method) as step:
        first, second = await interleave(
            lambda: api.post(query, variables),
            step,
            lambda: api.post(UNMERGE, unmerge_input(merge_id), role=Role.AGENT),
        )

    assert _code(first) is None, first
    assert _code(second) is None, second
    assert (await api.db[collection].find_one({"_id": key}))["profileId"] == stored_id(source)
    if what == "event":
        assert (await state_of(api, source))["events"]["visit"]["count"] == 1
        assert "visit" not in (await state_of(api, target))["events"]
    await assert_invariants(api.db, TENANT)


async def test_a_merge_recorded_before_merges_recorded_their_fold_is_refused(api: Api) -> None:
    target, _, merge_id, _, _ = await _merged_pair(api)
    await api.db["profiles"].update_one(
        {"_id": stored_id(target)}, {"$unset": {"mergeHistory.0.filled": ""}}
    )
    survivor = await api.db["profiles"].find_one({"_id": stored_id(target)})
    assert [m["mergeId"] for m in survivor["mergeHistory"]] == [merge_id]

    error = await api.refused("MERGE_CONFLICT", UNMERGE, unmerge_input(merge_id), role=Role.AGENT)
    assert "cannot be undone exactly" in error["message"]


@pytest.mark.parametrize("who", ["the returning sender", "a new sender"])
@pytest.mark.parametrize("step", STEPS)
async def test_an_identify_meeting_an_unmerge_paused_after_any_step_finishes_it_first(
    api: Api, step: str, who: str
) -> None:
    """S (u-s, through crm-s) was merged by hand into the anonymous T, which took u-s. The
    unmerge pauses after each step in turn while an identify as u-s runs, through crm-s (which
    goes back) or through a sender never seen: it meets the unmerge half-done (on T's mark, on
    S in UNMERGING, or on u-s's key in either place) and finishes it rather than waiting, then
    answers as run after it: the sender is on S, which has u-s again, and T is as before."""
    s = await api.ok(IDENTIFY, identify_input("API", "crm-s", "u-s", {"firstName": "Sam"}))
    source = s["identify"]["profile"]["id"]
    t = await api.ok(CAPTURE, capture_input("WEB", "t1", {"language": "en"}))
    target = t["captureProperties"]["profile"]["id"]
    t0 = await state_of(api, target)
    await api.ok(MERGE, merge_input(target, source))
    merge_id = await merge_id_of(api, target, source)
    sender, key = ("API", "crm-s"), "API|crm-s"
    if who == "a new sender":
        sender, key = ("WEB", "n1"), "VISITOR|n1"

    first, second = await interleave(
        lambda: api.post(UNMERGE, unmerge_input(merge_id), role=Role.AGENT),
        step,
        lambda: api.post(IDENTIFY, identify_input(*sender, "u-s")),
    )

    assert _code(first) in (None, "MERGE_CONFLICT"), first
    assert _code(second) is None, second
    answer = second["data"]["identify"]
    assert answer["profile"]["id"] == source
    assert answer["outcome"] == ("UNCHANGED" if who == "the returning sender" else "SWITCHED")
    assert await _owner(api, key) == source
    assert await _owner(api, "USER_ID|u-s") == source
    assert await state_of(api, target) == t0
    await assert_invariants(api.db, TENANT)
