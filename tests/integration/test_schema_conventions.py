"""The schema follows the conventions GraphQL clients expect: described everywhere, mutations
as `verbNoun(input: VerbNounInput!): VerbNounPayload` (nullable), Relay's Node, node/nodes and
PageInfo, and typed fields where a type exists."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from graphql import get_introspection_query, parse, validate

from domain.access import Role
from resolvers.root import build_schema
from tests.conftest import OTHER_TENANT, Api
from tests.integration.queries import (
    CAPTURE,
    CREATE_SEGMENT,
    DEFINE,
    RECORD,
    SUGGESTIONS,
    TRACK,
    UPDATE,
    capture_input,
    profile_gid,
    saved_filter,
    track_input,
)


async def _schema(api: Api) -> dict[str, Any]:
    data = await api.ok(get_introspection_query(descriptions=True))
    schema: dict[str, Any] = data["__schema"]
    return schema


def _types(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in schema["types"] if not t["name"].startswith("__")}


def _named(type_ref: dict[str, Any]) -> str:
    while type_ref.get("ofType"):
        type_ref = type_ref["ofType"]
    name: str = type_ref["name"]
    return name


async def test_every_type_field_argument_and_enum_value_has_a_description(api: Api) -> None:
    missing: list[str] = []
    described: list[str] = []
    for name, kind in _types(await _schema(api)).items():
        described.append(kind.get("description") or "")
        if not kind.get("description"):
            missing.append(name)
        members = (kind.get("fields") or []) + (kind.get("inputFields") or [])
        for member in members:
            where = f"{name}.{member['name']}"
            described.append(member.get("description") or "")
            if not member.get("description"):
                missing.append(where)
            for arg in member.get("args") or []:
                described.append(arg.get("description") or "")
                if not arg.get("description"):
                    missing.append(f"{where}({arg['name']})")
        for value in kind.get("enumValues") or []:
            described.append(value.get("description") or "")
            if not value.get("description"):
                missing.append(f"{name}.{value['name']}")
    assert missing == []
    # No description sends the reader to a document that is not part of the API.
    assert [d for d in described if re.search(r"SPEC|\.md\b|§", d)] == []


async def test_every_mutation_takes_one_input_and_returns_its_own_nullable_payload(
    api: Api,
) -> None:
    schema = await _schema(api)
    mutations = _types(schema)[schema["mutationType"]["name"]]["fields"]
    assert len(mutations) >= 12
    for field in mutations:
        noun = field["name"][0].upper() + field["name"][1:]
        [arg] = field["args"]
        assert arg["name"] == "input", field["name"]
        assert arg["type"]["kind"] == "NON_NULL", field["name"]
        assert arg["type"]["ofType"]["name"] == f"{noun}Input", field["name"]
        assert field["type"]["kind"] == "OBJECT", field["name"]  # nullable
        assert field["type"]["name"] == f"{noun}Payload", field["name"]


async def test_every_connection_uses_relay_page_info_and_an_optional_first(api: Api) -> None:
    types = _types(await _schema(api))
    connections = [n for n in types if n.endswith("Connection")]
    assert {"ProfileConnection", "EventConnection", "ActivityConnection"} <= set(connections)
    assert "TimePageInfo" not in types
    page_info = {f["name"] for f in types["PageInfo"]["fields"]}
    assert page_info == {"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"}
    for name in connections:
        fields = {f["name"]: f for f in types[name]["fields"]}
        assert _named(fields["pageInfo"]["type"]) == "PageInfo", name
    paged = 0
    for kind in types.values():
        for field in kind.get("fields") or []:
            for arg in field["args"]:
                if arg["name"] == "first":
                    paged += 1
                    assert arg["type"] == {"kind": "SCALAR", "name": "Int", "ofType": None}
                    assert arg["defaultValue"] == "20", field["name"]
    assert paged >= 4  # profiles, eventHistory, activity, members


async def test_fields_are_typed_where_a_type_exists(api: Api) -> None:
    types = _types(await _schema(api))
    profile = {f["name"]: _named(f["type"]) for f in types["Profile"]["fields"]}
    assert (profile["lastChannel"], profile["dob"]) == ("Channel", "Date")
    suggestion = {f["name"]: _named(f["type"]) for f in types["MergeSuggestion"]["fields"]}
    assert suggestion["matchedOn"] == "MatchedOn"
    segment = {f["name"]: _named(f["type"]) for f in types["Segment"]["fields"]}
    assert segment["filter"] == "SavedFilter"
    saved = {f["name"] for f in types["SavedFilter"]["fields"]}
    assert saved == {f["name"] for f in types["ProfileFilter"]["inputFields"]}
    for kind in ("Profile", "Segment", "Conversation", "Event"):
        assert {"name": "Node"} in [{"name": i["name"]} for i in types[kind]["interfaces"]]


async def test_a_failing_mutation_never_hides_a_committed_sibling(api: Api) -> None:
    body = await api.post(
        """mutation Two($ok: CapturePropertiesInput!, $bad: CapturePropertiesInput!) {
          first: captureProperties(input: $ok) { created profile { id } }
          second: captureProperties(input: $bad) { created profile { id } }
        }""",
        {
            "ok": capture_input("WEB", "visitor-1")["input"],
            "bad": capture_input("WEB", "null")["input"],  # a placeholder id
        },
    )
    assert body["data"]["first"]["created"] is True
    assert body["data"]["second"] is None
    [error] = body["errors"]
    assert (error["path"], error["extensions"]["code"]) == (["second"], "BLOCKED_IDENTIFIER")
    written = body["data"]["first"]["profile"]["id"]
    assert (await api.ok("query($id: ID!) { node(id: $id) { id } }", {"id": written}))["node"]


NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Profile { userId firstName }
    ... on Segment { name }
    ... on Conversation { conversationId subject }
    ... on Event { name eventId }
  }
}
"""


async def test_every_node_is_fetched_again_by_its_id(api: Api) -> None:
    captured = await api.ok(CAPTURE, capture_input("WEB", "v1", {"firstName": "Asha"}))
    profile_id = captured["captureProperties"]["profile"]["id"]
    tracked = await api.ok(TRACK, track_input("purchase", sender="v1", event_id="order-7"))
    event_id = tracked["trackEvent"]["event"]["id"]
    anonymous = await api.ok(TRACK, track_input("visit", sender="v1"))
    visit_id = anonymous["trackEvent"]["event"]["id"]
    recorded = await api.ok(
        RECORD,
        {"input": {"conversationId": "t-1", "channel": "WEB", "senderId": "v1", "subject": "Hi"}},
    )
    conversation = recorded["recordConversation"]["conversation"]
    created = await api.ok(CREATE_SEGMENT, {"input": {"name": "All", "filter": {"tag": "a"}}})
    segment_id = created["createSegment"]["segment"]["id"]

    found = {
        i: (await api.ok(NODE, {"id": i}))["node"]
        for i in (profile_id, event_id, visit_id, conversation["id"], segment_id)
    }
    assert found[profile_id] == {
        "__typename": "Profile",
        "id": profile_id,
        "userId": None,
        "firstName": "Asha",
    }
    assert found[event_id] == {
        "__typename": "Event",
        "id": event_id,
        "name": "purchase",
        "eventId": "order-7",
    }
    assert found[visit_id]["name"] == "visit"
    assert found[conversation["id"]] == {
        "__typename": "Conversation",
        "id": conversation["id"],
        "conversationId": "t-1",
        "subject": "Hi",
    }
    assert found[segment_id] == {"__typename": "Segment", "id": segment_id, "name": "All"}
    assert conversation["profileId"] == profile_id
    assert len({profile_id, event_id, visit_id, conversation["id"], segment_id}) == 5

    both = await api.ok(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        {"ids": [segment_id, "not-an-id", profile_id]},
    )
    assert both["nodes"] == [{"id": segment_id}, None, {"id": profile_id}]


async def test_an_id_of_another_tenant_or_kind_or_a_malformed_one_finds_nothing(
    api: Api,
) -> None:
    captured = await api.ok(CAPTURE, capture_input("WEB", "v1"))
    profile_id = captured["captureProperties"]["profile"]["id"]
    created = await api.ok(CREATE_SEGMENT, {"input": {"name": "All", "filter": {"tag": "a"}}})
    segment_id = created["createSegment"]["segment"]["id"]
    for other in (profile_id, segment_id):
        assert (await api.ok(NODE, {"id": other}, tenant=OTHER_TENANT))["node"] is None
    for malformed in ("", "x", "UHJvZmlsZTo", profile_gid("zz") + "=", "Profile:" + "0" * 32):
        assert (await api.ok(NODE, {"id": malformed}))["node"] is None
    # A segment's id is not a profile's, and the other way round.
    query = "query($p: ID!, $s: ID!) { profile(id: $s) { id } segment(id: $p) { id } }"
    assert await api.ok(query, {"p": profile_id, "s": segment_id}) == {
        "profile": None,
        "segment": None,
    }
    error = await api.refused(
        "NOT_FOUND", UPDATE, {"input": {"id": segment_id, "set": {"gender": "f"}}}
    )
    assert error["extensions"]["field"] == "id"


async def test_a_not_found_message_is_bounded_however_long_the_id(api: Api) -> None:
    for gid in (profile_gid("a" * 100_000), "x" * 100_000):
        error = await api.refused("NOT_FOUND", UPDATE, {"input": {"id": gid, "addTags": ["t"]}})
        assert len(error["message"]) <= 200, len(error["message"])
        assert error["extensions"]["field"] == "id"


async def test_an_import_job_id_that_cannot_be_stored_finds_nothing(api: Api) -> None:
    key = await api.key()
    query = json.dumps("query($id: ID!) { importJob(id: $id) { status } }")
    for escaped in ("\\ud800x", "\\u0000", "x" * 1000):
        body = '{"query": ' + query + ', "variables": {"id": "' + escaped + '"}}'
        response = await api.http.post(
            "/graphql",
            content=body.encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        assert response.json() == {"data": {"importJob": None}}, (escaped, response.text)


async def test_a_segment_is_not_read_through_node_by_a_key_that_cannot_list(api: Api) -> None:
    created = await api.ok(CREATE_SEGMENT, {"input": {"name": "All", "filter": {"tag": "a"}}})
    segment_id = created["createSegment"]["segment"]["id"]
    error = await api.error(NODE, {"id": segment_id}, role=Role.SDK)
    assert error["extensions"]["code"] == "FORBIDDEN"


async def test_a_saved_filter_reads_back_typed_as_it_was_given(api: Api) -> None:
    given: dict[str, list[dict[str, Any]]] = {
        "and": [
            {"property": {"name": "country", "op": "EQ", "value": "IN"}},
            {"or": [{"tag": "vip"}, {"not": {"tag": "churned"}}]},
            {"event": {"name": "purchase", "minCount": 2, "withinLastDays": 30}},
        ]
    }
    created = await api.ok(CREATE_SEGMENT, {"input": {"name": "Typed", "filter": given}})
    typed = created["createSegment"]["segment"]["filter"]
    assert typed["and"][0]["property"] == {"name": "country", "op": "EQ", "value": "IN"}
    assert typed["and"][2]["event"]["did"] is True
    expected = {
        "and": [
            given["and"][0],
            given["and"][1],
            {"event": {**given["and"][2]["event"], "did": True}},
        ]
    }
    assert saved_filter(typed) == expected


async def test_typed_profile_fields_read_back_as_their_types(api: Api) -> None:
    await api.ok(DEFINE, {"input": {"name": "plan", "type": "STRING"}})
    captured = await api.ok(
        CAPTURE, capture_input("WHATSAPP", "919876543210", {"dob": "1990-04-21"})
    )
    profile_id = captured["captureProperties"]["profile"]["id"]
    data = await api.ok(
        "query($id: ID!) { profile(id: $id) { lastChannel dob } }", {"id": profile_id}
    )
    assert data["profile"] == {"lastChannel": "WHATSAPP", "dob": "1990-04-21"}
    await api.ok(CAPTURE, capture_input("EMAIL", "asha@example.com", {"phone": "+91 98765 43210"}))
    found = await api.ok(SUGGESTIONS, {"id": profile_id}, role=Role.AGENT)
    assert found["mergeSuggestions"][0]["matchedOn"] == ["PHONE"]


def test_every_operation_in_the_readme_is_valid_against_the_schema() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    operations = re.findall(r"^gql '(.*?)'$", readme, re.MULTILINE | re.DOTALL)
    operations += re.findall(r"^```graphql\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert len(operations) >= 10
    schema = build_schema()._schema
    for operation in operations:
        assert validate(schema, parse(operation)) == [], operation
