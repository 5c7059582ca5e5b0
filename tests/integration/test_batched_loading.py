"""Nested fields load in batches: a page of profiles costs the same number of database commands
whether it holds 5 profiles or 50, counted with pymongo's command monitoring."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from domain.access import Role
from tests.conftest import Api, CommandCounter
from tests.integration.queries import CAPTURE, RECORD, TRACK, capture_input, track_input

README = Path(__file__).resolve().parents[2] / "README.md"

# What the README says its dashboard page costs, and this test measures: the windowed event
# condition of the filter (one aggregation), the page of profiles, one batched identity query
# and one batched activity query (events and conversations of every profile at once).
DASHBOARD_COMMANDS = 4

ALL_NESTED = """
query AllNested($first: Int) {
  profiles(first: $first) {
    edges { node {
      id
      identities { type value channels }
      events { name count firstSeen lastSeen }
      mergeHistory { sourceId at trigger actor }
      contactCard { displayName phone email complete }
      activity(first: 5) { edges { node {
        __typename
        ... on Event { name occurredAt }
        ... on Conversation { id kind status subject startedAt }
      } } pageInfo { hasNextPage } }
      eventHistory(first: 5) { edges { node { name } } pageInfo { hasNextPage } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def _readme_dashboard() -> str:
    """The dashboard query exactly as the README shows it."""
    found = re.search(r"```graphql\n(query Dashboard.*?)```", README.read_text(), re.DOTALL)
    assert found, "the README has no dashboard query"
    return found.group(1)


def _first_name(i: int) -> str:
    """Asha, Ashb, … : names hold letters only."""
    return "Ash" + "".join(chr(ord("a") + int(d)) for d in str(i))


async def _customers(api: Api, start: int, count: int) -> None:
    """Profiles the README's dashboard finds: in India, named Rao, two purchases this month,
    and a support chat each."""
    for i in range(start, start + count):
        sender = f"9198765{i:05d}"
        await api.ok(
            CAPTURE,
            capture_input("WHATSAPP", sender, displayName=f"{_first_name(i)} Rao"),
            role=Role.SDK,
        )
        for n in range(2):
            variables = track_input("purchase", sender=sender, channel="WHATSAPP")
            variables["input"]["eventId"] = f"order-{i}-{n}"
            await api.ok(TRACK, variables, role=Role.SDK)
        chat = {
            "conversationId": f"chat-{i}",
            "channel": "WHATSAPP",
            "senderId": sender,
            "kind": "TICKET",
        }
        await api.ok(RECORD, {"input": {**chat, "subject": "Refund"}}, role=Role.SDK)


async def _cost(
    api: Api, commands: CommandCounter, query: str, variables: dict[str, Any] | None = None
) -> tuple[list[str], Any]:
    await api.ok(query, variables, role=Role.VIEWER)  # keys and definitions are cached
    commands.reset()
    data = await api.ok(query, variables, role=Role.VIEWER)
    return list(commands.names), data


async def test_the_readme_dashboard_page_costs_the_same_commands_for_5_or_50_profiles(
    api: Api, commands: CommandCounter
) -> None:
    dashboard = _readme_dashboard()
    await _customers(api, 0, 5)
    small, data = await _cost(api, commands, dashboard)
    assert len(data["profiles"]["edges"]) == 5
    await _customers(api, 5, 45)
    large, data = await _cost(api, commands, dashboard)
    edges = data["profiles"]["edges"]
    assert len(edges) == 50
    node = edges[0]["node"]
    assert node["country"] == "IN"
    assert [i["type"] for i in node["identities"]] == ["PHONE"]
    assert node["events"][0]["count"] == 2
    kinds = sorted(e["node"]["__typename"] for e in node["activity"]["edges"])
    assert kinds == ["Conversation", "Event", "Event"]
    assert sorted(small) == sorted(large), (small, large)
    assert len(large) == DASHBOARD_COMMANDS, large


async def test_the_readme_states_the_dashboard_command_count() -> None:
    text = " ".join(README.read_text().split())
    assert f"costs {DASHBOARD_COMMANDS} database commands however many profiles" in text


async def test_every_nested_field_of_a_page_loads_in_a_constant_number_of_commands(
    api: Api, commands: CommandCounter
) -> None:
    await _customers(api, 0, 5)
    small, data = await _cost(api, commands, ALL_NESTED, {"first": 50})
    assert len(data["profiles"]["edges"]) == 5
    await _customers(api, 5, 45)
    large, data = await _cost(api, commands, ALL_NESTED, {"first": 50})
    assert len(data["profiles"]["edges"]) == 50
    # The page, identities, activity, event history; events and merges are in the profile.
    assert sorted(large) == sorted(small) == ["aggregate", "aggregate", "find", "find"], large
    for edge in data["profiles"]["edges"]:
        node = edge["node"]
        assert [e["node"]["name"] for e in node["eventHistory"]["edges"]] == ["purchase"] * 2
        assert len(node["activity"]["edges"]) == 3
        assert node["activity"]["pageInfo"]["hasNextPage"] is False


async def test_each_profile_gets_its_own_page_of_a_batched_timeline(
    api: Api, commands: CommandCounter
) -> None:
    await _customers(api, 0, 3)
    busy = "919876500000"
    for _ in range(4):
        await api.ok(TRACK, track_input("visit", sender=busy, channel="WHATSAPP"), role=Role.SDK)
    query = """
    { profiles(first: 10) { edges { node {
        firstName
        activity(first: 2) { edges { cursor } pageInfo { hasNextPage } }
        eventHistory(first: 3, name: "purchase") {
          edges { node { name } } pageInfo { hasNextPage }
        }
    } } } }
    """
    data = await api.ok(query, role=Role.VIEWER)
    nodes = {e["node"]["firstName"]: e["node"] for e in data["profiles"]["edges"]}
    assert len(nodes) == 3
    for node in nodes.values():
        assert len(node["activity"]["edges"]) == 2
        assert node["activity"]["pageInfo"]["hasNextPage"] is True
        assert [e["node"]["name"] for e in node["eventHistory"]["edges"]] == ["purchase"] * 2
        assert node["eventHistory"]["pageInfo"]["hasNextPage"] is False


async def test_a_bad_page_size_fails_only_its_own_field(api: Api) -> None:
    await _customers(api, 0, 2)
    query = """
    { profiles(first: 10) { edges { node {
        firstName activity(first: 500) { edges { cursor } }
    } } } }
    """
    body = await api.post(query, role=Role.VIEWER)
    assert {e["extensions"]["code"] for e in body["errors"]} == {"VALIDATION_FAILED"}
    assert {tuple(e["path"][-1:]) for e in body["errors"]} == {("activity",)}


async def test_segment_counts_cost_one_query_however_many_segments(
    api: Api, commands: CommandCounter
) -> None:
    await _customers(api, 0, 3)
    create = """mutation C($input: CreateSegmentInput!) {
      createSegment(input: $input) { segment { id } } }"""
    query = "{ segments { name count } }"

    async def segment(name: str, where: dict[str, Any]) -> None:
        await api.ok(create, {"input": {"name": name, "filter": where}})

    await segment("all", {"property": {"name": "country", "op": "EQ", "value": "IN"}})
    one, data = await _cost(api, commands, query)
    assert data["segments"] == [{"name": "all", "count": 3}]
    await segment("none", {"tag": "churned"})
    await segment("one", {"property": {"name": "firstName", "op": "EQ", "value": _first_name(1)}})
    await segment("buyers", {"event": {"name": "purchase", "minCount": 2}})
    many, data = await _cost(api, commands, query)
    counts = {s["name"]: s["count"] for s in data["segments"]}
    assert counts == {"all": 3, "none": 0, "one": 1, "buyers": 3}
    assert sorted(one) == sorted(many) == ["aggregate", "find"], many


async def test_suggested_profiles_load_their_nested_fields_in_batches(
    api: Api, commands: CommandCounter
) -> None:
    query = """
    query S($id: ID!) { mergeSuggestions(profileId: $id) { score profile {
        id identities { type } activity(first: 5) { edges { cursor } }
        eventHistory(first: 5) { edges { cursor } }
    } } }
    """
    phone = {"phone": "+919876500001"}
    captured = await api.ok(CAPTURE, capture_input("WEB", "anchor", phone), role=Role.SDK)
    anchor = captured["captureProperties"]["profile"]["id"]
    made = 0

    async def suggestions(count: int) -> list[str]:
        nonlocal made
        for _ in range(count):
            made += 1
            sender = f"visitor-{made}"
            await api.ok(CAPTURE, capture_input("WEB", sender, phone), role=Role.SDK)
        names, data = await _cost(api, commands, query, {"id": anchor})
        assert len(data["mergeSuggestions"]) == made, data
        return names

    few = await suggestions(1)
    more = await suggestions(3)
    assert sorted(few) == sorted(more), (few, more)
