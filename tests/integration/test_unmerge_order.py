"""Unmerge out of order and half-done: undoing two merges into one survivor in the order they
were made leaves it exactly as it was (its own last contact, no list it did not have), and
whoever meets an unmerge claimed but not yet carried out finishes it before acting."""

from __future__ import annotations

from typing import Any

import pytest

from domain.access import Role
from tests.conftest import TENANT, Api
from tests.integration.interleave import interleave
from tests.integration.invariants import assert_invariants
from tests.integration.queries import (
    CAPTURE,
    DEFINE,
    MERGE,
    TRACK,
    capture_input,
    merge_input,
    track_input,
)
from tests.integration.test_merge_faults import Crash
from tests.integration.test_unmerge import _code, _dying, _merged_pair
from tests.integration.unmerging import UNMERGE, merge_id_of, state_of, unmerge_input


async def _captured(api: Api, channel: str, sender: str, props: dict[str, Any]) -> str:
    data = await api.ok(CAPTURE, capture_input(channel, sender, props))
    return str(data["captureProperties"]["profile"]["id"])


async def _three(api: Api, a_props: dict[str, Any], b_props: dict[str, Any]) -> list[str]:
    """T reached on the API, then A on the web, then B by WhatsApp (each contact later than
    the one before), each with an event."""
    t = await _captured(api, "API", "t1", {"language": "en"})
    a = await _captured(api, "WEB", "a1", a_props)
    b = await _captured(api, "WHATSAPP", "919876543211", b_props)
    for sender, channel, event_id in [
        ("t1", "API", "e1"),
        ("a1", "WEB", "e2"),
        ("919876543211", "WHATSAPP", "e3"),
    ]:
        await api.ok(TRACK, track_input("buy", channel=channel, sender=sender, event_id=event_id))
    return [t, a, b]


async def _both_merged(api: Api, t: str, a: str, b: str) -> tuple[str, str]:
    await api.ok(MERGE, merge_input(t, a))
    await api.ok(MERGE, merge_input(t, b))
    return await merge_id_of(api, t, a), await merge_id_of(api, t, b)


# ----- two merges into one survivor, undone first to last --------------------------------


@pytest.mark.parametrize("order", ["first to last", "last to first"])
async def test_undoing_two_merges_in_either_order_gives_the_survivor_its_own_last_contact_back(
    api: Api, order: str
) -> None:
    t, a, b = await _three(api, {"gender": "m"}, {"emailOptin": True})
    before = [await state_of(api, p) for p in (t, a, b)]
    m1, m2 = await _both_merged(api, t, a, b)  # each replaced T's last contact

    for merge_id in [m1, m2] if order == "first to last" else [m2, m1]:
        await api.ok(UNMERGE, unmerge_input(merge_id), role=Role.AGENT)

    after = [await state_of(api, p) for p in (t, a, b)]
    assert after[0]["props"]["lastChannel"] == "API", after[0]["props"]
    assert after == before
    await assert_invariants(api.db, TENANT)


async def test_a_contact_of_the_survivor_between_two_merges_comes_back_when_both_are_undone(
    api: Api,
) -> None:
    t, a, b = await _three(api, {"gender": "m"}, {"emailOptin": True})
    await api.ok(MERGE, merge_input(t, a))
    await api.ok(CAPTURE, capture_input("API", "t1", {"language": "fr"}))  # T's own contact
    await api.ok(TRACK, track_input("buy", channel="WHATSAPP", sender="919876543211"))
    await api.ok(MERGE, merge_input(t, b))  # B's contact is the latest: it replaces T's
    m1, m2 = await merge_id_of(api, t, a), await merge_id_of(api, t, b)
    between = (await state_of(api, t))["props"]

    await api.ok(UNMERGE, unmerge_input(m1), role=Role.AGENT)
    await api.ok(UNMERGE, unmerge_input(m2), role=Role.AGENT)

    props = (await state_of(api, t))["props"]
    assert props["lastChannel"] == "API"
    assert props["language"] == "fr"
    assert props["lastSession"] < between["lastSession"]


@pytest.mark.parametrize("order", ["first to last", "last to first"])
async def test_undoing_two_merges_in_either_order_leaves_no_list_where_the_survivor_had_none(
    api: Api, order: str
) -> None:
    await api.ok(DEFINE, {"input": {"name": "interests", "type": "LIST"}})
    t, a, b = await _three(api, {"tags": ["a"], "interests": ["go"]}, {"tags": ["b"]})
    before = [await state_of(api, p) for p in (t, a, b)]
    m1, m2 = await _both_merged(api, t, a, b)  # m1 made T's tags, m2 added to them

    first, second = [m1, m2] if order == "first to last" else [m2, m1]
    await api.ok(UNMERGE, unmerge_input(first), role=Role.AGENT)
    middle = (await state_of(api, t))["props"]
    assert middle["tags"] == (["b"] if order == "first to last" else ["a"]), middle
    await api.ok(UNMERGE, unmerge_input(second), role=Role.AGENT)

    after = [await state_of(api, p) for p in (t, a, b)]
    assert "tags" not in after[0]["props"], after[0]["props"]
    assert "interests" not in after[0]["props"], after[0]["props"]
    assert after == before
    await assert_invariants(api.db, TENANT)


async def test_three_merges_undone_first_to_last_leave_neither_list_nor_another_contact(
    api: Api,
) -> None:
    t, a, b = await _three(api, {"tags": ["a"]}, {"tags": ["b"]})
    c = await _captured(api, "WEB", "c1", {"tags": ["c"]})
    before = await state_of(api, t)
    await api.ok(MERGE, merge_input(t, a))
    await api.ok(MERGE, merge_input(t, b))
    await api.ok(MERGE, merge_input(t, c))
    merges = [await merge_id_of(api, t, p) for p in (a, b, c)]

    for merge_id in merges:
        await api.ok(UNMERGE, unmerge_input(merge_id), role=Role.AGENT)

    assert await state_of(api, t) == before
    await assert_invariants(api.db, TENANT)


async def test_an_empty_list_the_survivor_had_stays_empty_after_an_unmerge(api: Api) -> None:
    t = await _captured(api, "API", "t1", {"language": "en", "tags": []})
    a = await _captured(api, "WEB", "a1", {"tags": ["a"], "gender": "m"})
    before = await state_of(api, t), await state_of(api, a)
    await api.ok(MERGE, merge_input(t, a))

    await api.ok(UNMERGE, unmerge_input(await merge_id_of(api, t, a)), role=Role.AGENT)

    assert (await state_of(api, t), await state_of(api, a)) == before


# ----- an unmerge claimed, its source not yet revived --------------------------------------


async def _claimed_then(api: Api, how: str, then: Any) -> tuple[dict[str, Any], Any]:
    """S into T undone up to its claim (paused there, or dead there), while `then` runs."""
    target, source, merge_id, t0, s0 = await _merged_pair(api)
    if how == "paused":
        first, second = await interleave(
            lambda: api.post(UNMERGE, unmerge_input(merge_id), role=Role.AGENT),
            "claim_unmerge",
            lambda: then(target, source),
        )
        assert _code(first) is None, first
    else:
        with pytest.raises(Crash):
            await _dying(api, "claim_unmerge").unmerge(TENANT, merge_id, actor="agent-key")
        second = await then(target, source)
    return second, (target, source, t0, s0)


@pytest.mark.parametrize("how", ["paused", "dead"])
async def test_merging_a_profile_whose_unmerge_was_only_claimed_finishes_the_unmerge_first(
    api: Api, how: str
) -> None:
    async def merge_source_away(target: str, source: str) -> dict[str, Any]:
        other = await _captured(api, "WEB", "x9", {"dob": "2000-01-01"})
        return await api.post(MERGE, merge_input(other, source))

    body, (target, source, t0, _) = await _claimed_then(api, how, merge_source_away)

    assert _code(body) is None, body
    assert await state_of(api, target) == t0
    await assert_invariants(api.db, TENANT)


@pytest.mark.parametrize("how", ["paused", "dead"])
async def test_merging_into_a_profile_whose_unmerge_was_only_claimed_finishes_the_unmerge_first(
    api: Api, how: str
) -> None:
    async def merge_survivor_into_source(target: str, source: str) -> dict[str, Any]:
        return await api.post(MERGE, merge_input(source, target))

    body, (target, source, _, _) = await _claimed_then(api, how, merge_survivor_into_source)

    assert _code(body) is None, body
    assert (await state_of(api, target))["state"] == "MERGED"
    await assert_invariants(api.db, TENANT)


@pytest.mark.parametrize("how", ["paused", "dead"])
async def test_undoing_the_inner_merge_of_a_chain_finishes_the_outer_unmerge_only_claimed(
    api: Api, how: str
) -> None:
    """A into B (m1), B into C (m2); m2's unmerge claimed, B not yet revived: undoing m1 is
    not refused naming m2, which is being undone: it finishes m2's unmerge, then undoes m1."""
    a, b, c = await _three(api, {"gender": "m", "tags": ["a"]}, {"emailOptin": False})
    before = [await state_of(api, p) for p in (a, b, c)]
    await api.ok(MERGE, merge_input(b, a))
    m1 = await merge_id_of(api, b, a)
    await api.ok(MERGE, merge_input(c, b))
    m2 = await merge_id_of(api, c, b)

    if how == "paused":
        first, second = await interleave(
            lambda: api.post(UNMERGE, unmerge_input(m2), role=Role.AGENT),
            "claim_unmerge",
            lambda: api.post(UNMERGE, unmerge_input(m1), role=Role.AGENT),
        )
        assert _code(first) is None, first
    else:
        with pytest.raises(Crash):
            await _dying(api, "claim_unmerge").unmerge(TENANT, m2, actor="agent-key")
        second = await api.post(UNMERGE, unmerge_input(m1), role=Role.AGENT)

    assert _code(second) is None, second
    assert [await state_of(api, p) for p in (a, b, c)] == before
    await assert_invariants(api.db, TENANT)
