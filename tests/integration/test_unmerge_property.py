"""The unmerge's defining property: for random profiles A and B (values, groups, lists, tags,
identities on several channels, events, conversations) and either kind of merge (identify or
manual), merging A into B and then undoing that merge leaves both exactly as they were, apart
from updatedAt and the history entries."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.access import Role
from tests.conftest import Api
from tests.integration.invariants import assert_invariants
from tests.integration.queries import (
    CAPTURE,
    DEFINE,
    IDENTIFY,
    MERGE,
    RECORD,
    TRACK,
    capture_input,
    identify_input,
    merge_input,
    track_input,
)
from tests.integration.unmerging import UNMERGE, merge_id_of, state_of, unmerge_input, with_contact

EXAMPLES = int(os.environ.get("UNMERGE_EXAMPLES") or 25)
_tenants = itertools.count()

NAMES = [("Asha", "Rao"), ("Sam", "Lee"), ("Ana", "Díaz")]
PLACES = [("IN", "Asia/Kolkata"), ("US", "America/New_York"), ("DE", "Europe/Berlin")]
TAGS = ["vip", "new", "churned", "beta", "x"]
HOBBIES = ["chess", "golf", "tea"]
DATES = ["2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"]
PHONES = {"a": ["919876543210", "919812345678"], "b": ["14155552671", "14155550123"]}


@dataclass(frozen=True)
class Person:
    """One side of the merge: its senders (the first is where its values are captured)."""

    senders: list[tuple[str, str]]
    values: dict[str, Any]
    events: list[tuple[int, str, str]]  # (sender index, name, time)
    conversations: list[int]  # sender index of each
    user_id: bool


def _person(side: str) -> st.SearchStrategy[Person]:
    channels = st.sampled_from(["WEB", "API", "MESSENGER", "WHATSAPP"])

    @st.composite
    def build(draw: st.DrawFn) -> Person:
        chosen = draw(st.lists(channels, min_size=1, max_size=3, unique=True))
        senders = []
        for i, channel in enumerate(chosen):
            value = PHONES[side][i % 2] if channel == "WHATSAPP" else f"{side}-{channel}-{i}"
            senders.append((channel, value))
        values: dict[str, Any] = {}
        if draw(st.booleans()):
            values["firstName"], values["lastName"] = draw(st.sampled_from(NAMES))
        if draw(st.booleans()):
            values["country"], values["timezone"] = draw(st.sampled_from(PLACES))
        for name, pool in (("gender", ["f", "m", "x"]), ("language", ["en", "hi", "de"])):
            if draw(st.booleans()):
                values[name] = draw(st.sampled_from(pool))
        if draw(st.booleans()):
            values["emailOptin"] = draw(st.booleans())
        if draw(st.booleans()):
            values["tags"] = draw(st.lists(st.sampled_from(TAGS), min_size=1, unique=True))
        if draw(st.booleans()):
            values["hobbies"] = draw(st.lists(st.sampled_from(HOBBIES), min_size=1, unique=True))
        index = st.integers(0, len(senders) - 1)
        events = draw(
            st.lists(
                st.tuples(index, st.sampled_from(["view", "buy"]), st.sampled_from(DATES)),
                max_size=3,
            )
        )
        conversations = draw(st.lists(index, max_size=2))
        return Person(senders, values, events, conversations, draw(st.booleans()))

    return build()


async def _make(api: Api, tenant: str, side: str, person: Person, user_id: bool) -> str:
    """The profile of one side, with its senders, values, events and conversations."""
    (channel, sender), *others = person.senders
    if user_id:
        data = await api.ok(
            IDENTIFY, identify_input(channel, sender, f"u-{side}", person.values), tenant=tenant
        )
        profile = str(data["identify"]["profile"]["id"])
    else:
        data = await api.ok(CAPTURE, capture_input(channel, sender, person.values), tenant=tenant)
        profile = str(data["captureProperties"]["profile"]["id"])
    for other_channel, other_sender in others:
        other = await api.ok(CAPTURE, capture_input(other_channel, other_sender), tenant=tenant)
        other_id = other["captureProperties"]["profile"]["id"]
        await api.ok(MERGE, merge_input(profile, other_id), tenant=tenant)
    for n, (i, name, at) in enumerate(person.events):
        channel, sender = person.senders[i]
        event = track_input(name, channel=channel, sender=sender, at=at, event_id=f"{side}{n}")
        await api.ok(TRACK, event, tenant=tenant)
    for n, i in enumerate(person.conversations):
        channel, sender = person.senders[i]
        record = {"conversationId": f"{side}{n}", "channel": channel, "senderId": sender}
        await api.ok(RECORD, {"input": record}, tenant=tenant)
    return profile


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(a=_person("a"), b=_person("b"), kind=st.sampled_from(["identify", "manual"]))
async def test_merge_then_unmerge_leaves_both_profiles_as_they_were(
    api: Api, a: Person, b: Person, kind: str
) -> None:
    tenant = f"prop{next(_tenants)}"
    await api.ok(DEFINE, {"input": {"name": "hobbies", "type": "LIST"}}, tenant=tenant)
    # An identify merges an anonymous sender into the profile holding the userId; a manual
    # merge takes any two profiles whose userIds do not differ.
    a_user = kind == "manual" and a.user_id and not b.user_id
    b_user = kind == "identify" or (b.user_id and not a_user)
    source = await _make(api, tenant, "a", a, a_user)
    target = await _make(api, tenant, "b", b, b_user)
    s0, t0 = await state_of(api, source), await state_of(api, target)

    if kind == "identify":
        channel, sender = a.senders[0]
        data = await api.ok(IDENTIFY, identify_input(channel, sender, "u-b"), tenant=tenant)
        assert data["identify"]["outcome"] == "MERGED"
    else:
        await api.ok(MERGE, merge_input(target, source), tenant=tenant)
    merge_id = await merge_id_of(api, target, source, tenant=tenant)
    await api.ok(UNMERGE, unmerge_input(merge_id), role=Role.AGENT, tenant=tenant)

    assert await state_of(api, target) == t0
    if kind == "identify":
        # The identify was a contact through A's sender, written on A's record before the
        # merge: A gets it back exactly (the survivor answered it as its later contact).
        s0 = with_contact(s0, channel, data["identify"]["profile"])
    assert await state_of(api, source) == s0
    await assert_invariants(api.db, tenant)
