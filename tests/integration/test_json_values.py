"""Every JSON value, text and time is checked before anything is written: 64-bit integers,
finite numbers, no NUL, no lone surrogates in keys or text, bounded nesting of objects and
lists, datetimes in range. Each refusal is VALIDATION_FAILED naming its field, never INTERNAL,
and leaves every collection as it was (no profile, no event, no identity key bound).

Lone surrogates, NaN and infinities are not in JSON as a client library writes it, so these
tests build the request body themselves: json.dumps escapes a lone surrogate as "\\ud800"
(valid JSON text) and writes NaN and Infinity as the parser on the server accepts them.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from domain.access import Role
from tests.conftest import Api
from tests.integration.queries import (
    CAPTURE,
    CREATE_SEGMENT,
    DEFINE,
    FILTERED,
    IDENTIFY,
    RECORD,
    TRACK,
    UPDATE,
)

UPDATE_SEGMENT = """
mutation UpdateSegment($input: UpdateSegmentInput!) {
  updateSegment(input: $input) { segment { id name } }
}
"""

DEFINITIONS = {
    "note": "STRING",
    "choices": "LIST",
    "amount": "NUMBER",
    "site": "URL",
    "contact": "EMAIL",
    "seenAt": "DATETIME",
}

KNOWN_SENDER = "known-visitor"
NEW_SENDER = "brand-new-visitor"
KNOWN_USER = "known-user"


async def post_raw(api: Api, query: str, variables: dict[str, Any], role: Role) -> dict[str, Any]:
    """Posts a body json.dumps writes: lone surrogates escaped, NaN and Infinity as is."""
    body = json.dumps({"query": query, "variables": variables})
    response = await api.http.post(
        "/graphql",
        content=body,
        headers={
            "Authorization": f"Bearer {await api.key(role)}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def refused(
    api: Api,
    query: str,
    variables: dict[str, Any],
    field: str,
    *,
    role: Role = Role.ADMIN,
) -> dict[str, Any]:
    """Asserts VALIDATION_FAILED on `field`, and that no collection changed."""
    before = await api.snapshot()
    body = await post_raw(api, query, variables, role)
    assert body.get("errors"), f"expected an error, got {body}"
    error: dict[str, Any] = body["errors"][0]
    assert error["extensions"]["code"] == "VALIDATION_FAILED", error
    assert error["extensions"].get("field") == field, error
    assert await api.snapshot() == before, "a refused operation wrote something"
    return error


async def accepted(
    api: Api, query: str, variables: dict[str, Any], *, role: Role = Role.ADMIN
) -> dict[str, Any]:
    body = await post_raw(api, query, variables, role)
    assert not body.get("errors"), body
    data: dict[str, Any] = body["data"]
    return data


@pytest.fixture
async def known(api: Api) -> str:
    """Definitions of every type the cases use, and a known sender with a known userId."""
    for name, type_ in DEFINITIONS.items():
        await api.ok(DEFINE, {"input": {"name": name, "type": type_}})
    data = await api.ok(
        IDENTIFY, {"input": {"channel": "WEB", "senderId": KNOWN_SENDER, "userId": KNOWN_USER}}
    )
    profile_id: str = data["identify"]["profile"]["id"]
    return profile_id


SENDERS = [pytest.param(NEW_SENDER, id="new-sender"), pytest.param(KNOWN_SENDER, id="known")]

# A property, a value its type cannot store, and why.
BAD_PROPERTY_VALUES = [
    pytest.param("note", "\ud800", id="string-lone-surrogate"),
    pytest.param("note", "trailing\udfff", id="string-trailing-surrogate"),
    pytest.param("note", "a\x00b", id="string-nul"),
    pytest.param("firstName", "Asha\ud800", id="first-name-surrogate"),
    pytest.param("choices", ["ok", "\ud800"], id="list-item-surrogate"),
    pytest.param("choices", ["ok", "a\x00"], id="list-item-nul"),
    pytest.param("site", "https://example.com/\ud800", id="url-surrogate"),
    pytest.param("site", "https://example.com/a\x00", id="url-nul"),
    pytest.param("contact", "asha\ud800@example.com", id="email-surrogate"),
    pytest.param("amount", 2**63, id="number-2^63"),
    pytest.param("amount", -(2**63) - 1, id="number-below-int64"),
    pytest.param("amount", 10**30, id="number-10^30"),
    pytest.param("amount", 10**400, id="number-10^400"),
    pytest.param("amount", math.nan, id="number-nan"),
    pytest.param("amount", math.inf, id="number-infinity"),
    pytest.param("amount", -math.inf, id="number-minus-infinity"),
    pytest.param("seenAt", "0001-01-01T00:00:00+14:00", id="datetime-before-year-1"),
    pytest.param("seenAt", "9999-12-31T23:59:59-14:00", id="datetime-after-year-9999"),
]


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize(("name", "value"), BAD_PROPERTY_VALUES)
async def test_capture_refuses_a_property_value_the_database_cannot_hold(
    api: Api, known: str, sender: str, name: str, value: Any
) -> None:
    variables = {"input": {"channel": "WEB", "senderId": sender, "properties": {name: value}}}
    await refused(api, CAPTURE, variables, f"properties.{name}")


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize(("name", "value"), BAD_PROPERTY_VALUES)
async def test_identify_refuses_a_property_value_the_database_cannot_hold(
    api: Api, known: str, sender: str, name: str, value: Any
) -> None:
    variables = {
        "input": {
            "channel": "WEB",
            "senderId": sender,
            "userId": "someone-new",
            "properties": {name: value},
        }
    }
    await refused(api, IDENTIFY, variables, f"properties.{name}")


@pytest.mark.parametrize(("name", "value"), BAD_PROPERTY_VALUES)
async def test_update_refuses_a_property_value_the_database_cannot_hold(
    api: Api, known: str, name: str, value: Any
) -> None:
    await refused(api, UPDATE, {"input": {"id": known, "set": {name: value}}}, f"set.{name}")


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize(
    ("key", "field"),
    [
        # A key that is not text cannot be part of the field path: the map is named instead.
        pytest.param("\ud800", "properties", id="surrogate"),
        pytest.param("n\udc00te", "properties", id="surrogate-inside"),
        pytest.param("note\x00", "properties", id="nul"),
        pytest.param("note\n", "properties.note\n", id="trailing-newline"),
    ],
)
async def test_a_property_name_with_a_surrogate_nul_or_newline_is_refused(
    api: Api, known: str, sender: str, key: str, field: str
) -> None:
    variables = {"input": {"channel": "WEB", "senderId": sender, "properties": {key: "x"}}}
    await refused(api, CAPTURE, variables, field)


@pytest.mark.parametrize(
    ("literal", "field"),
    [
        # The GraphQL parser itself refuses a lone surrogate, escaped or not: no field.
        pytest.param('"\\ud800"', None, id="escaped-surrogate"),
        pytest.param('"\ud800"', None, id="raw-surrogate"),
        # A NUL passes the parser; the domain refuses it.
        pytest.param('"\\u0000"', "properties.note", id="escaped-nul"),
    ],
)
async def test_a_graphql_literal_from_a_new_email_sender_that_is_not_text_writes_nothing(
    api: Api, known: str, literal: str, field: str | None
) -> None:
    query = f"""mutation {{ captureProperties(input: {{channel: EMAIL,
      senderId: "victim@example.com", properties: {{note: {literal}}}}}) {{ created }} }}"""
    before = await api.snapshot()
    body = await post_raw(api, query, {}, Role.ADMIN)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "VALIDATION_FAILED", error
    assert error["extensions"].get("field") == field, error
    assert await api.snapshot() == before


async def test_the_64_bit_bounds_and_nesting_three_deep_are_accepted(api: Api, known: str) -> None:
    values = {"biggest": 2**63 - 1, "smallest": -(2**63), "ratio": 0.5, "grid": [[1, 2], [3]]}
    data = await accepted(
        api,
        TRACK,
        {"input": {"name": "edge", "channel": "WEB", "senderId": NEW_SENDER, "properties": values}},
        role=Role.SDK,
    )
    assert data["trackEvent"]["event"]["properties"] == values
    updated = await accepted(api, UPDATE, {"input": {"id": known, "set": {"amount": -1e15}}})
    assert updated["updateProfile"]["profile"]["properties"]["amount"] == -1e15


# Event properties, and the field each refusal names.
BAD_EVENT_PROPERTIES = [
    pytest.param({"k": "\ud800"}, "properties.k", id="value-surrogate"),
    pytest.param({"k": "x\x00"}, "properties.k", id="value-nul"),
    pytest.param({"\ud800": 1}, "properties", id="key-surrogate"),
    pytest.param({"a\x00": 1}, "properties", id="key-nul"),
    pytest.param({"meta": {"\udfff": 1}}, "properties.meta", id="nested-key-surrogate"),
    pytest.param({"k": ["a", ["\ud800"]]}, "properties.k[1][0]", id="surrogate-in-nested-list"),
    pytest.param({"k": [{"$set": 1}]}, "properties.k[0]", id="dollar-key-in-a-list"),
    pytest.param({"n": 2**63}, "properties.n", id="2^63"),
    pytest.param({"n": -(2**63) - 1}, "properties.n", id="below-int64"),
    pytest.param({"n": 10**30}, "properties.n", id="10^30"),
    pytest.param({"n": [1, 10**30]}, "properties.n[1]", id="10^30-in-a-list"),
    pytest.param({"n": math.nan}, "properties.n", id="nan"),
    pytest.param({"n": math.inf}, "properties.n", id="infinity"),
    pytest.param({"n": -math.inf}, "properties.n", id="minus-infinity"),
    pytest.param({"deep": [[[[[1]]]]]}, "properties.deep[0][0]", id="five-levels-of-lists"),
    pytest.param({"a": {"b": {"c": [1]}}}, "properties.a.b.c", id="four-levels-mixed"),
]


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize(("properties", "field"), BAD_EVENT_PROPERTIES)
async def test_track_event_refuses_properties_the_database_cannot_hold(
    api: Api, known: str, sender: str, properties: dict[str, Any], field: str
) -> None:
    variables = {
        "input": {
            "name": "purchase",
            "channel": "WEB",
            "senderId": sender,
            "properties": properties,
        }
    }
    await refused(api, TRACK, variables, field, role=Role.SDK)


async def test_track_event_by_profile_id_refuses_a_ten_to_the_thirty(api: Api, known: str) -> None:
    variables = {"input": {"name": "purchase", "profileId": known, "properties": {"n": 10**30}}}
    await refused(api, TRACK, variables, "properties.n", role=Role.SDK)


OUT_OF_RANGE_TIMES = [
    pytest.param("0001-01-01T00:00:00+14:00", id="before-year-1-in-utc"),
    pytest.param("0001-01-01T13:59:59+14:00", id="one-second-before-year-1"),
    pytest.param("9999-12-31T23:59:59-14:00", id="after-year-9999-in-utc"),
]


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("at", OUT_OF_RANGE_TIMES)
async def test_track_event_refuses_an_occurred_at_out_of_range(
    api: Api, known: str, sender: str, at: str
) -> None:
    variables = {
        "input": {"name": "purchase", "channel": "WEB", "senderId": sender, "occurredAt": at}
    }
    await refused(api, TRACK, variables, "occurredAt", role=Role.SDK)


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("at", OUT_OF_RANGE_TIMES)
@pytest.mark.parametrize("field", ["startedAt", "updatedAt", "closedAt"])
async def test_record_conversation_refuses_a_date_out_of_range(
    api: Api, known: str, sender: str, at: str, field: str
) -> None:
    variables = {
        "input": {"conversationId": "chat-1", "channel": "WEB", "senderId": sender, field: at}
    }
    await refused(api, RECORD, variables, field, role=Role.SDK)


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("subject", ["\ud800", "help\udfff", "a\x00b"])
async def test_record_conversation_refuses_a_subject_that_is_not_text(
    api: Api, known: str, sender: str, subject: str
) -> None:
    variables = {
        "input": {
            "conversationId": "chat-1",
            "channel": "WEB",
            "senderId": sender,
            "subject": subject,
        }
    }
    await refused(api, RECORD, variables, "subject", role=Role.SDK)


async def test_the_earliest_and_latest_utc_times_are_accepted(api: Api, known: str) -> None:
    variables = {
        "input": {
            "conversationId": "chat-1",
            "channel": "WEB",
            "senderId": KNOWN_SENDER,
            "startedAt": "0001-01-01T00:00:00Z",
            "closedAt": "0001-01-01T14:00:00+14:00",
        }
    }
    data = await accepted(api, RECORD, variables, role=Role.SDK)
    assert data["recordConversation"]["conversation"]["startedAt"].startswith("0001-01-01T00:00:00")
    assert data["recordConversation"]["conversation"]["closedAt"].startswith("0001-01-01T00:00:00")


@pytest.mark.parametrize("sender", ["v-1\ud800", "\udfffv-1", "v-1\x00", "\x00"])
@pytest.mark.parametrize("operation", ["capture", "identify", "track", "record"])
async def test_a_sender_id_with_a_surrogate_or_nul_is_refused(
    api: Api, known: str, sender: str, operation: str
) -> None:
    query, variables, role = {
        "capture": (CAPTURE, {"channel": "WEB", "senderId": sender}, Role.ADMIN),
        "identify": (
            IDENTIFY,
            {"channel": "WEB", "senderId": sender, "userId": "someone-new"},
            Role.ADMIN,
        ),
        "track": (TRACK, {"name": "purchase", "channel": "WEB", "senderId": sender}, Role.SDK),
        "record": (
            RECORD,
            {"conversationId": "chat-1", "channel": "WEB", "senderId": sender},
            Role.SDK,
        ),
    }[operation]
    await refused(api, query, {"input": variables}, "senderId", role=role)


@pytest.mark.parametrize("sender", ["victim@example.com\ud800", "victim\x00@example.com"])
async def test_an_email_sender_id_with_a_surrogate_or_nul_is_refused(
    api: Api, known: str, sender: str
) -> None:
    await refused(api, CAPTURE, {"input": {"channel": "EMAIL", "senderId": sender}}, "senderId")


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("user_id", ["user-1\ud800", "\udc00", "user-1\x00"])
async def test_a_user_id_with_a_surrogate_or_nul_is_refused(
    api: Api, known: str, sender: str, user_id: str
) -> None:
    variables = {"input": {"channel": "WEB", "senderId": sender, "userId": user_id}}
    await refused(api, IDENTIFY, variables, "userId")


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        pytest.param({"name": "purchase\n"}, "name", id="event-name-newline"),
        pytest.param({"name": "purchase", "eventId": "order-1\n"}, "eventId", id="event-id"),
    ],
)
async def test_event_names_and_ids_refuse_a_trailing_newline(
    api: Api, known: str, variables: dict[str, Any], field: str
) -> None:
    full = {"channel": "WEB", "senderId": NEW_SENDER, **variables}
    await refused(api, TRACK, {"input": full}, field, role=Role.SDK)


async def test_a_conversation_id_refuses_a_trailing_newline(api: Api, known: str) -> None:
    variables = {"input": {"conversationId": "chat-1\n", "channel": "WEB", "senderId": NEW_SENDER}}
    await refused(api, RECORD, variables, "conversationId", role=Role.SDK)


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        pytest.param({"name": "plan", "description": "\ud800"}, "description", id="surrogate"),
        pytest.param({"name": "plan", "description": "a\x00"}, "description", id="nul"),
        pytest.param({"name": "plan\n"}, "name", id="name-newline"),
    ],
)
async def test_define_property_refuses_text_that_is_not_text(
    api: Api, definition: dict[str, Any], field: str
) -> None:
    await refused(api, DEFINE, {"input": {"type": "STRING", **definition}}, field)


# Filters the database could not store with a segment, nor compare in a query.
BAD_FILTERS = [
    pytest.param({"filter": {"tag": "\ud800"}}, "filter.tag", id="tag-surrogate"),
    pytest.param({"filter": {"tag": "vip\x00"}}, "filter.tag", id="tag-nul"),
    pytest.param(
        {"filter": {"property": {"name": "note", "op": "EQ", "value": "\ud800"}}},
        "filter.property.value",
        id="string-value-surrogate",
    ),
    pytest.param(
        {"filter": {"property": {"name": "firstName", "op": "EQ", "value": "A\ud800"}}},
        "filter.property.value",
        id="first-name-surrogate",
    ),
    pytest.param(
        {"filter": {"property": {"name": "choices", "op": "EQ", "value": "\x00"}}},
        "filter.property.value",
        id="list-item-nul",
    ),
    pytest.param(
        {"filter": {"property": {"name": "note", "op": "CONTAINS", "value": "\ud800"}}},
        "filter.property.value",
        id="contains-surrogate",
    ),
    pytest.param(
        {"filter": {"property": {"name": "amount", "op": "EQ", "value": 10**30}}},
        "filter.property.value",
        id="number-10^30",
    ),
    pytest.param(
        {"filter": {"property": {"name": "amount", "op": "GT", "value": 10**400}}},
        "filter.property.value",
        id="number-10^400",
    ),
    pytest.param(
        {"filter": {"property": {"name": "amount", "op": "IN", "value": [1, math.nan]}}},
        "filter.property.value",
        id="number-nan-in-a-list",
    ),
    pytest.param(
        {
            "filter": {
                "or": [
                    {"tag": "vip"},
                    {
                        "property": {
                            "name": "seenAt",
                            "op": "GT",
                            "value": "0001-01-01T00:00:00+14:00",
                        }
                    },
                ]
            }
        },
        "filter.or[1].property.value",
        id="datetime-before-year-1",
    ),
]
BAD_SEGMENTS = [
    pytest.param({"name": "\ud800"}, "name", id="name-surrogate"),
    pytest.param({"name": "vip\x00"}, "name", id="name-nul"),
    pytest.param({"description": "\udfff"}, "description", id="description-surrogate"),
    *BAD_FILTERS,
]


def _segment(change: dict[str, Any]) -> dict[str, Any]:
    return {"name": "vip", "filter": {"tag": "vip"}, **change}


@pytest.mark.parametrize(("change", "field"), BAD_SEGMENTS)
async def test_create_segment_refuses_what_cannot_be_stored(
    api: Api, known: str, change: dict[str, Any], field: str
) -> None:
    await refused(api, CREATE_SEGMENT, {"input": _segment(change)}, field)


@pytest.mark.parametrize(("change", "field"), BAD_SEGMENTS)
async def test_update_segment_refuses_what_cannot_be_stored(
    api: Api, known: str, change: dict[str, Any], field: str
) -> None:
    created = await api.ok(CREATE_SEGMENT, {"input": _segment({})})
    segment_id = created["createSegment"]["segment"]["id"]
    await refused(api, UPDATE_SEGMENT, {"input": {"id": segment_id, **change}}, field)


@pytest.mark.parametrize(("change", "field"), BAD_FILTERS)
async def test_a_profiles_filter_that_cannot_be_compared_is_refused(
    api: Api, known: str, change: dict[str, Any], field: str
) -> None:
    where_field = "where" + field.removeprefix("filter")
    await refused(api, FILTERED, {"where": change["filter"], "first": 10}, where_field)


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("name", ["displayName", "timezone", "locale"])
@pytest.mark.parametrize("text", ["Asha\ud800", "a\x00"])
async def test_capture_context_text_with_a_surrogate_or_nul_is_refused(
    api: Api, known: str, sender: str, name: str, text: str
) -> None:
    variables = {"input": {"channel": "WEB", "senderId": sender, "context": {name: text}}}
    await refused(api, CAPTURE, variables, f"context.{name}")


async def test_a_context_ip_with_a_surrogate_or_nul_is_refused(api: Api, known: str) -> None:
    for ip in ["1.2.3.4\ud800", "1.2.3.4\x00"]:
        variables = {"input": {"channel": "WEB", "senderId": NEW_SENDER, "context": {"ip": ip}}}
        await refused(api, CAPTURE, variables, "context.ip")


@pytest.mark.parametrize("field", ["addTags", "removeTags"])
@pytest.mark.parametrize("tag", ["vip\ud800", "vip\x00"])
async def test_update_profile_refuses_a_tag_with_a_surrogate_or_nul(
    api: Api, known: str, field: str, tag: str
) -> None:
    await refused(api, UPDATE, {"input": {"id": known, field: [tag]}}, field)


# An id that is not text can name nothing: it is not found, and nothing is written.
SEGMENT_BY_ID = "query Segment($id: ID!) { segment(id: $id) { id } }"
DELETE_SEGMENT = """mutation Delete($id: ID!) {
  deleteSegment(input: {id: $id}) { deletedSegmentId } }"""
DELETE_PROFILE = """mutation Delete($id: ID!) {
  deleteProfile(input: {id: $id}) { deletedProfileId } }"""
MERGE = """mutation Merge($input: MergeProfilesInput!) {
  mergeProfiles(input: $input) { mergedProfileId } }"""
BAD_IDS = [pytest.param("x\ud800", id="surrogate"), pytest.param("\udc00", id="lone-low")]


async def not_found(
    api: Api, query: str, variables: dict[str, Any], field: str, *, role: Role = Role.ADMIN
) -> None:
    before = await api.snapshot()
    body = await post_raw(api, query, variables, role)
    assert body.get("errors"), body
    error = body["errors"][0]
    assert error["extensions"]["code"] == "NOT_FOUND", error
    assert error["extensions"].get("field") == field, error
    assert await api.snapshot() == before, "a refused operation wrote something"


@pytest.mark.parametrize("bad_id", BAD_IDS)
async def test_a_segment_id_that_is_not_text_is_not_found(
    api: Api, known: str, bad_id: str
) -> None:
    await not_found(api, DELETE_SEGMENT, {"id": bad_id}, "id")
    await not_found(api, UPDATE_SEGMENT, {"input": {"id": bad_id, "name": "vip"}}, "id")
    body = await post_raw(api, SEGMENT_BY_ID, {"id": bad_id}, Role.ADMIN)
    assert body == {"data": {"segment": None}}


@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize(
    "operation", ["track", "record", "update", "mergeTarget", "mergeSource", "delete"]
)
async def test_a_profile_id_that_is_not_text_is_not_found(
    api: Api, known: str, bad_id: str, operation: str
) -> None:
    cases: dict[str, tuple[str, dict[str, Any], str, Role]] = {
        "track": (TRACK, {"input": {"name": "a", "profileId": bad_id}}, "profileId", Role.SDK),
        "record": (
            RECORD,
            {"input": {"conversationId": "chat-1", "channel": "WEB", "profileId": bad_id}},
            "profileId",
            Role.SDK,
        ),
        "update": (UPDATE, {"input": {"id": bad_id, "set": {}}}, "id", Role.ADMIN),
        "mergeTarget": (
            MERGE,
            {"input": {"targetId": bad_id, "sourceId": known}},
            "targetId",
            Role.ADMIN,
        ),
        "mergeSource": (
            MERGE,
            {"input": {"targetId": known, "sourceId": bad_id}},
            "sourceId",
            Role.ADMIN,
        ),
        "delete": (DELETE_PROFILE, {"id": bad_id}, "id", Role.ADMIN),
    }
    query, variables, field, role = cases[operation]
    await not_found(api, query, variables, field, role=role)
