"""profiles(where, search), segments with live membership, and stable pagination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.access import Role
from tests.conftest import Api, CommandCounter
from tests.integration.queries import (
    CAPTURE,
    CREATE_SEGMENT,
    DEFINE,
    FILTERED,
    IDENTIFY,
    SEGMENT,
    TRACK,
    capture_input,
    identify_input,
    raw_id,
    saved_filter,
    track_input,
)

DAY = timedelta(days=1)


def _ago(days: float) -> str:
    return (datetime.now(UTC) - days * DAY).isoformat()


async def _person(
    api: Api, user: str, country: str, purchases_ago: list[float], **props: Any
) -> str:
    data = await api.ok(IDENTIFY, identify_input("API", user, user, {"country": country, **props}))
    for i, days in enumerate(purchases_ago):
        await api.ok(
            TRACK,
            track_input(
                "purchase", channel="API", sender=user, at=_ago(days), event_id=f"{user}-{i}"
            ),
        )
    profile_id: str = data["identify"]["profile"]["id"]
    return profile_id


async def _users(
    api: Api, where: dict[str, Any] | None = None, search: str | None = None
) -> list[str]:
    data = await api.ok(FILTERED, {"where": where, "search": search, "first": 100})
    return sorted(e["node"]["userId"] or e["node"]["id"] for e in data["profiles"]["edges"])


IN_AND_TWO_PURCHASES = {
    "and": [
        {"property": {"name": "country", "op": "EQ", "value": "IN"}},
        {"event": {"name": "purchase", "minCount": 2, "withinLastDays": 30}},
    ]
}


async def test_a_segment_returns_exactly_the_matching_profiles_and_follows_new_events(
    api: Api,
) -> None:
    await _person(api, "asha", "IN", [1, 5, 40])  # two in the window
    await _person(api, "ravi", "IN", [2, 45, 60])  # one in the window
    await _person(api, "john", "US", [1, 2, 3])  # wrong country
    await _person(api, "mira", "IN", [])  # never bought
    await _person(api, "neel", "IN", [3, 4, 5, 6])  # four in the window
    created = await api.ok(
        CREATE_SEGMENT, {"input": {"name": "Loyal India", "filter": IN_AND_TWO_PURCHASES}}
    )
    segment = created["createSegment"]["segment"]
    assert segment["count"] == 2

    data = await api.ok(SEGMENT, {"id": segment["id"], "first": 10})
    members = sorted(e["node"]["userId"] for e in data["segment"]["members"]["edges"])
    assert members == ["asha", "neel"]

    await api.ok(TRACK, track_input("purchase", channel="API", sender="ravi", at=_ago(0.5)))
    data = await api.ok(SEGMENT, {"id": segment["id"], "first": 10})
    assert data["segment"]["count"] == 3
    assert sorted(e["node"]["userId"] for e in data["segment"]["members"]["edges"]) == [
        "asha",
        "neel",
        "ravi",
    ]


async def test_not_and_or_combine(api: Api) -> None:
    await _person(api, "a", "IN", [1], firstName="Asha")
    await _person(api, "b", "US", [], firstName="Bob")
    await _person(api, "c", "GB", [1, 2])
    await _person(api, "d", "IN", [])
    not_in = {"not": {"property": {"name": "country", "op": "EQ", "value": "IN"}}}
    assert await _users(api, not_in) == ["b", "c"]
    never_bought = {"event": {"name": "purchase", "did": False}}
    assert await _users(api, never_bought) == ["b", "d"]
    either = {
        "or": [
            {"property": {"name": "country", "op": "EQ", "value": "US"}},
            {"event": {"name": "purchase", "minCount": 2}},
        ]
    }
    assert await _users(api, either) == ["b", "c"]
    nested = {
        "and": [
            {
                "not": {
                    "or": [
                        {"property": {"name": "country", "op": "EQ", "value": "GB"}},
                        {"property": {"name": "firstName", "op": "EXISTS"}},
                    ]
                }
            }
        ]
    }
    assert await _users(api, nested) == ["d"]
    at_most_one = {"event": {"name": "purchase", "maxCount": 1}}
    assert await _users(api, at_most_one) == ["a"]


async def test_property_operators(api: Api) -> None:
    await api.ok(DEFINE, {"input": {"name": "score", "type": "NUMBER"}})
    await api.ok(DEFINE, {"input": {"name": "plan", "type": "STRING"}})
    await api.ok(DEFINE, {"input": {"name": "renewal", "type": "DATE"}})
    await _person(
        api,
        "a",
        "IN",
        [],
        score=10,
        plan="Gold Plus",
        tags=["vip", "beta"],
        renewal="2024-01-10",
        lastSession=_ago(2),
    )
    await _person(
        api, "b", "US", [], score=20, plan="silver", renewal="2024-03-01", lastSession=_ago(20)
    )
    await _person(api, "c", "GB", [], score=30, tags=["beta"])
    assert await _users(api, {"property": {"name": "score", "op": "GT", "value": 10}}) == ["b", "c"]
    assert await _users(api, {"property": {"name": "score", "op": "LTE", "value": 20}}) == [
        "a",
        "b",
    ]
    assert await _users(
        api, {"property": {"name": "score", "op": "BETWEEN", "value": [15, 30]}}
    ) == ["b", "c"]
    assert await _users(
        api, {"property": {"name": "country", "op": "IN", "value": ["IN", "GB"]}}
    ) == ["a", "c"]
    assert await _users(api, {"property": {"name": "plan", "op": "CONTAINS", "value": "gold"}}) == [
        "a"
    ]
    assert await _users(api, {"property": {"name": "plan", "op": "NOT_EXISTS"}}) == ["c"]
    assert await _users(api, {"property": {"name": "score", "op": "NE", "value": 20}}) == ["a", "c"]
    assert await _users(
        api, {"property": {"name": "renewal", "op": "LT", "value": "2024-02-01"}}
    ) == ["a"]
    # c gave no lastSession: its identify was its last contact, just now.
    assert await _users(
        api, {"property": {"name": "lastSession", "op": "WITHIN_LAST_DAYS", "value": 7}}
    ) == ["a", "c"]
    assert await _users(api, {"tag": "beta"}) == ["a", "c"]
    assert await _users(api, {"property": {"name": "tags", "op": "CONTAINS", "value": "vip"}}) == [
        "a"
    ]
    assert await _users(api, {"property": {"name": "userId", "op": "EQ", "value": "b"}}) == ["b"]


async def test_search_covers_names_email_phone_and_user_id(api: Api) -> None:
    await _person(api, "u-100", "IN", [], firstName="Priya", email="p.rao@example.com")
    await _person(api, "u-200", "IN", [], lastName="Raman", phone="+919876543210")
    await _person(api, "someone", "IN", [])
    assert await _users(api, search="priya") == ["u-100"]
    assert await _users(api, search="RAO@EXAMPLE") == ["u-100"]
    assert await _users(api, search="98765") == ["u-200"]
    assert await _users(api, search="u-") == ["u-100", "u-200"]
    assert await _users(api, search="a.*") == []  # the text is literal, not a pattern


@pytest.mark.parametrize(
    ("where", "code", "field"),
    [
        (
            {"property": {"name": "nope", "op": "EQ", "value": 1}},
            "PROPERTY_NOT_DEFINED",
            "where.property.name",
        ),
        (
            {"property": {"name": "firstName", "op": "GT", "value": "a"}},
            "VALIDATION_FAILED",
            "where.property.op",
        ),
        (
            {"property": {"name": "emailOptin", "op": "EQ", "value": "yes"}},
            "VALIDATION_FAILED",
            "where.property.value",
        ),
        (
            {"property": {"name": "country", "op": "BETWEEN", "value": ["A"]}},
            "VALIDATION_FAILED",
            "where.property.op",
        ),
        (
            {"property": {"name": "lastSession", "op": "WITHIN_LAST_DAYS", "value": 0}},
            "VALIDATION_FAILED",
            "where.property.value",
        ),
        ({"tag": "vip", "event": {"name": "x"}}, "VALIDATION_FAILED", "where"),
        ({}, "VALIDATION_FAILED", "where"),
        ({"and": []}, "VALIDATION_FAILED", "where.and"),
        ({"event": {"name": "bad name"}}, "VALIDATION_FAILED", "where.event.name"),
        (
            {"event": {"name": "x", "minCount": 3, "maxCount": 1}},
            "VALIDATION_FAILED",
            "where.event.minCount",
        ),
        (
            {"event": {"name": "x", "did": False, "minCount": 1}},
            "VALIDATION_FAILED",
            "where.event.did",
        ),
        (
            {"event": {"name": "x", "withinLastDays": 99999}},
            "VALIDATION_FAILED",
            "where.event.withinLastDays",
        ),
    ],
)
async def test_bad_filters_are_refused_with_the_offending_node(
    api: Api, where: dict[str, Any], code: str, field: str
) -> None:
    error = await api.refused(code, FILTERED, {"where": where})
    assert error["extensions"]["field"] == field


async def test_an_oversized_filter_is_refused(api: Api) -> None:
    wide = {"or": [{"tag": f"t{i}"} for i in range(60)]}
    await api.refused("VALIDATION_FAILED", FILTERED, {"where": wide})
    deep: dict[str, Any] = {"tag": "x"}
    for _ in range(10):
        deep = {"not": deep}
    await api.refused("VALIDATION_FAILED", FILTERED, {"where": deep})
    await api.refused("VALIDATION_FAILED", FILTERED, {"search": "x" * 101})


async def test_pages_are_capped_at_one_hundred(api: Api) -> None:
    error = await api.refused("VALIDATION_FAILED", FILTERED, {"first": 101})
    assert error["extensions"]["field"] == "first"
    await api.refused("VALIDATION_FAILED", FILTERED, {"first": 5, "after": "not-a-cursor"})


async def test_paging_through_250_profiles_sees_each_once_while_others_are_added(
    api: Api,
) -> None:
    for i in range(250):
        await api.ok(CAPTURE, capture_input("API", f"p{i:03}"), role=Role.SDK)
    seen: list[str] = []
    after = None
    added = 0
    while True:
        data = await api.ok(FILTERED, {"first": 40, "after": after})
        page = data["profiles"]
        seen.extend(raw_id(e["node"]["id"]) for e in page["edges"])
        for _ in range(3):  # new profiles arrive between pages
            await api.ok(CAPTURE, capture_input("API", f"late{added}"), role=Role.SDK)
            added += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen))  # no duplicates
    originals = {
        d["_id"] async for d in api.db["profiles"].find({"_id": {"$in": seen}}, {"_id": 1})
    }
    assert len(originals) == len(seen)
    first_250 = (
        await api.db["profiles"].find({}, {"_id": 1}).sort("_id", 1).limit(250).to_list(None)
    )
    assert {d["_id"] for d in first_250} <= set(seen)  # no gaps


async def test_segments_are_created_updated_listed_and_deleted_by_admins(api: Api) -> None:
    created = await api.ok(
        CREATE_SEGMENT,
        {"input": {"name": "VIP", "description": "vip tag", "filter": {"tag": "vip"}}},
    )
    segment_id = created["createSegment"]["segment"]["id"]
    assert saved_filter(created["createSegment"]["segment"]["filter"]) == {"tag": "vip"}
    update = """mutation U($input: UpdateSegmentInput!) {
        updateSegment(input: $input) { segment { id name filter { not { tag } } } } }"""
    updated = await api.ok(
        update, {"input": {"id": segment_id, "name": "Very VIP", "filter": {"not": {"tag": "vip"}}}}
    )
    assert updated["updateSegment"]["segment"] == {
        "id": segment_id,
        "name": "Very VIP",
        "filter": {"not": {"tag": "vip"}},
    }
    listed = await api.ok("{ segments { id name } }", role=Role.VIEWER)
    assert listed["segments"] == [{"id": segment_id, "name": "Very VIP"}]
    await api.refused(
        "FORBIDDEN",
        CREATE_SEGMENT,
        {"input": {"name": "x", "filter": {"tag": "x"}}},
        role=Role.AGENT,
    )
    await api.refused(
        "VALIDATION_FAILED", CREATE_SEGMENT, {"input": {"name": " ", "filter": {"tag": "x"}}}
    )
    await api.refused(
        "PROPERTY_NOT_DEFINED",
        CREATE_SEGMENT,
        {"input": {"name": "x", "filter": {"property": {"name": "zz", "op": "EXISTS"}}}},
    )
    other: dict[str, Any] = {"tenant": "globex"}
    assert (await api.ok(SEGMENT, {"id": segment_id}, **other))["segment"] is None
    assert (await api.ok("{ segments { id } }", **other))["segments"] == []
    await api.refused("NOT_FOUND", update, {"input": {"id": segment_id, "name": "x"}}, **other)
    delete = "mutation D($id: ID!) { deleteSegment(input: {id: $id}) { deletedSegmentId } }"
    await api.refused("NOT_FOUND", delete, {"id": segment_id}, **other)
    assert await api.ok(delete, {"id": segment_id}) == {
        "deleteSegment": {"deletedSegmentId": segment_id}
    }
    await api.refused("NOT_FOUND", delete, {"id": segment_id})
    assert (await api.ok(SEGMENT, {"id": segment_id}))["segment"] is None


async def test_a_page_of_fifty_with_nested_fields_takes_a_constant_number_of_commands(
    api: Api, commands: CommandCounter
) -> None:
    page_query = """query Page($first: Int, $where: ProfileFilter) {
      profiles(first: $first, where: $where) { edges { node {
        id userId firstName tags
        identities { type value channels }
        events { name count firstSeen lastSeen }
        contactCard { displayName phone email complete }
      } } } }"""
    where = {"property": {"name": "country", "op": "EQ", "value": "IN"}}

    async def cost(size: int) -> list[str]:
        for i in range(size):
            phone = f"9198765{size:02}{i:03}"  # country IN is auto-captured from the number
            await api.ok(CAPTURE, capture_input("WHATSAPP", phone, {}, displayName="Asha Rao"))
            await api.ok(IDENTIFY, identify_input("WHATSAPP", phone, f"user{size}-{i}"))
            await api.ok(TRACK, track_input("purchase", channel="WHATSAPP", sender=phone))
        commands.reset()
        data = await api.ok(page_query, {"first": 50, "where": where}, role=Role.VIEWER)
        edges = data["profiles"]["edges"]
        assert len(edges) == min(50, total + size)
        assert all(len(e["node"]["identities"]) == 2 for e in edges)
        assert all(e["node"]["events"][0]["count"] == 1 for e in edges)
        assert all(e["node"]["contactCard"]["complete"] for e in edges)
        return list(commands.names)

    # Warm-up: the key is created and cached, and so are the tenant's property definitions.
    await api.ok(page_query, {"first": 1, "where": where}, role=Role.VIEWER)
    total = 0
    small = await cost(10)
    total = 10
    large = await cost(60)
    assert small == large, (small, large)
    assert len(small) <= 3, small


async def test_a_property_defined_by_another_process_can_be_filtered_on(api: Api) -> None:
    await api.ok(FILTERED, {"where": {"tag": "warm"}})  # this process has cached the definitions
    await api.db["property_definitions"].insert_one(
        {
            "_id": "acme|plan",
            "tenant": "acme",
            "name": "plan",
            "type": "STRING",
            "description": "",
            "createdAt": datetime.now(UTC),
        }
    )
    await api.db["profiles"].update_one(
        {"_id": raw_id(await _person(api, "p", "IN", []))}, {"$set": {"props.plan": "gold"}}
    )
    assert await _users(api, {"property": {"name": "plan", "op": "EQ", "value": "gold"}}) == ["p"]
