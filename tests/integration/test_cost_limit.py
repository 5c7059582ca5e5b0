"""The cost limit: an operation's cost is estimated from the operation and its variables before
anything runs, and one over GRAPHQL_MAX_COST is refused with QUERY_TOO_COSTLY, its cost and the
limit, without a single database command."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
from graphql import GraphQLSchema, parse

from domain.access import Role
from domain.segments import MAX_SEGMENTS
from resolvers.root import build_schema
from server.config import Settings
from server.cost import LIST_ESTIMATE, SAVED_FILTER_ESTIMATE, operation_cost
from server.geo import GeoIP
from tests.conftest import Api, CommandCounter, running
from tests.integration.test_batched_loading import README, _readme_dashboard

# The attack of issue 10: 15 aliases, each a page of 100 profiles with 100 activity items and
# 100 events each; without the limit, about 4,500 database queries and seconds of work.
_ONE = (
    "a{i}: profiles(first: 100) { edges { node {"
    " activity(first: 100) { edges { node { __typename } } }"
    " eventHistory(first: 100) { edges { node { name } } } } } }"
)
ATTACK = "{ " + " ".join(_ONE.replace("{i}", str(i)) for i in range(15)) + " }"


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    built: GraphQLSchema = build_schema()._schema
    return built


def _cost(schema: GraphQLSchema, query: str, variables: dict[str, Any] | None = None) -> int:
    cost = operation_cost(schema, parse(query), None, variables)
    assert cost is not None
    return cost


async def _refused(
    api: Api, commands: CommandCounter, query: str, variables: dict[str, Any] | None = None
) -> tuple[dict[str, Any], float]:
    await api.post("{ propertyDefinitions { name } }", role=Role.VIEWER)  # key cached
    commands.reset()
    started = time.perf_counter()
    body = await api.post(query, variables, role=Role.VIEWER)
    elapsed = time.perf_counter() - started
    assert commands.names == [], "the database was asked"
    assert body["data"] is None, body
    [error] = body["errors"]
    return error, elapsed


async def test_the_alias_attack_is_refused_in_under_50_ms_without_a_database_command(
    api: Api, commands: CommandCounter
) -> None:
    # The acceptance figure; the best of three, so one pause of the collector or of a
    # busy machine does not decide it.
    timings = []
    for _ in range(3):
        error, elapsed = await _refused(api, commands, ATTACK)
        assert error["extensions"] == {
            "code": "QUERY_TOO_COSTLY",
            "cost": 606_015,
            "limit": 25_000,
        }
        assert "606015" in error["message"]
        timings.append(elapsed)
    assert min(timings) < 0.05, f"refused in {[round(t * 1000, 1) for t in timings]} ms"


async def test_the_readme_dashboard_query_is_well_under_the_limit(schema: GraphQLSchema) -> None:
    # The connection 1 + its one windowed event condition 1; 50 profiles, each 1 + identities
    # 10 + events 10 + contact card 1 + activity 1 + 5 × 2; pageInfo 1.
    assert _cost(schema, _readme_dashboard()) == 1 + 1 + 50 * (1 + 33) + 1
    assert _cost(schema, _readme_dashboard()) < Settings().max_cost


async def test_the_limit_comes_from_graphql_max_cost(
    settings: Settings, commands: CommandCounter, geo: GeoIP
) -> None:
    assert Settings.from_env({"GRAPHQL_MAX_COST": "500"}).max_cost == 500
    assert Settings.from_env({}).max_cost == 25_000
    query = "{ profiles(first: 60) { edges { node { id contactCard { phone } } } } }"
    async with running(replace(settings, max_cost=100), commands, geo) as api:
        error, _ = await _refused(api, commands, query)
        assert error["extensions"] == {"code": "QUERY_TOO_COSTLY", "cost": 181, "limit": 100}
        assert await api.ok("{ profiles(first: 30) { edges { node { id } } } }")
    async with running(replace(settings, max_cost=0), commands, geo) as api:
        assert await api.ok(ATTACK, role=Role.VIEWER)  # 0: no limit (and an empty tenant)


async def test_page_sizes_come_from_the_variables(
    api: Api, commands: CommandCounter, schema: GraphQLSchema
) -> None:
    query = """
    query Q($n: Int, $m: Int!) { profiles(first: $n) { edges { node {
      activity(first: $m) { edges { node { __typename } } }
      eventHistory(first: $m) { edges { node { name } } } } } } }
    """
    # Per profile: its edge, the node, two connections of m edges and nodes (leaves are free).
    assert _cost(schema, query, {"n": 10, "m": 10}) == 1 + 10 * (1 + 1 + 2 * (1 + 10 * 2))
    assert _cost(schema, query, {"n": 100, "m": 100}) == 40_401
    error, _ = await _refused(api, commands, query, {"n": 100, "m": 100})
    assert error["extensions"]["cost"] == 40_401
    body = await api.post(query, {"n": 50, "m": 100}, role=Role.VIEWER)
    assert "errors" not in body, body


async def test_an_absent_or_null_page_size_counts_as_the_schema_default(
    schema: GraphQLSchema,
) -> None:
    explicit = (
        "{ profiles(first: 20) { edges { node { activity(first: 20) { edges { cursor } } } } } }"
    )
    absent = "{ profiles { edges { node { activity { edges { cursor } } } } } }"
    null = "{ profiles(first: null) { edges { node { activity { edges { cursor } } } } } }"
    assert _cost(schema, absent) == _cost(schema, explicit) == _cost(schema, null)
    assert _cost(schema, explicit) == 1 + 20 * (1 + 1 + 1 + 20)


async def test_aliases_and_fragments_count_every_time_they_are_used(
    schema: GraphQLSchema,
) -> None:
    inline = "{ profiles(first: 10) { edges { node { identities { type } } } } }"
    single = _cost(schema, inline)
    assert single == 1 + 10 * (1 + 1 + LIST_ESTIMATE)
    aliased = "{ a: profiles(first: 10) { edges { node { identities { type } } } }"
    aliased += " b: profiles(first: 10) { edges { node { identities { type } } } } }"
    assert _cost(schema, aliased) == 2 * single
    fragments = """
    { a: profiles(first: 10) { ...Page } b: profiles(first: 10) { ...Page } }
    fragment Page on ProfileConnection { edges { node { ...P ...P } } }
    fragment P on Profile { identities { type } }
    """
    assert _cost(schema, fragments) == 2 * (1 + 10 * (1 + 1 + 2 * LIST_ESTIMATE))
    spread = "{ profiles(first: 10) { ... on ProfileConnection { edges { node { id } } } } }"
    assert _cost(schema, spread) == 1 + 10 * 2


async def test_leaves_are_free_and_lists_of_objects_have_a_fixed_estimate(
    schema: GraphQLSchema,
) -> None:
    assert _cost(schema, "{ profile(id: 1) { id tags mergedFrom properties } }") == 1
    assert _cost(schema, "{ profile(id: 1) { events { name } } }") == 1 + LIST_ESTIMATE


async def test_segments_count_as_many_as_a_tenant_may_have_each_evaluating_its_filter(
    schema: GraphQLSchema,
) -> None:
    saved = 1 + SAVED_FILTER_ESTIMATE  # one read, and the saved filter's windowed conditions
    assert _cost(schema, "{ segments { id } }") == MAX_SEGMENTS
    assert _cost(schema, "{ segments { count } }") == MAX_SEGMENTS * (1 + saved)
    nested = "{ segments { count members(first: 5) { edges { node { id } } } } }"
    assert _cost(schema, nested) == MAX_SEGMENTS * (1 + saved + saved + 5 * 2)


async def test_every_windowed_event_condition_of_a_filter_costs_one_aggregation(
    schema: GraphQLSchema,
) -> None:
    where = {"or": [{"event": {"name": f"e{i}", "withinLastDays": 30}} for i in range(5)]}
    where["or"].append({"event": {"name": "unwindowed"}})
    page = "query($w: ProfileFilter) { profiles(first: 0, where: $w) { pageInfo { hasNextPage } } }"
    assert _cost(schema, page, {"w": where}) == 1 + 5 + 1
    assert _cost(schema, page, {"w": None}) == 1 + 1
    count = "query($w: ProfileFilter) { profileCount(where: $w) }"
    assert _cost(schema, count, {"w": where}) == 1 + 5
    literal = '{ profileCount(where: {not: {event: {name: "e", withinLastDays: 1}}}) }'
    assert _cost(schema, literal) == 1 + 1
    assert _cost(schema, "{ profileCount }") == 1


async def test_aliased_windowed_filters_cost_at_least_the_commands_they_run(
    api: Api, commands: CommandCounter
) -> None:
    where = {"or": [{"event": {"name": f"e{i}", "withinLastDays": 30}} for i in range(10)]}
    one = "a%d: profiles(first: 0, where: $w) { pageInfo { hasNextPage } }"
    query = "query Q($w: ProfileFilter) { " + " ".join(one % i for i in range(5)) + " }"
    cost = operation_cost(build_schema()._schema, parse(query), None, {"w": where})
    assert cost is not None
    await api.post("{ propertyDefinitions { name } }", role=Role.VIEWER)
    commands.reset()
    body = await api.post(query, {"w": where}, role=Role.VIEWER)
    assert "errors" not in body, body
    assert 5 * 10 <= commands.count <= cost


async def test_members_of_every_segment_with_windowed_filters_are_refused_before_any_command(
    api: Api, commands: CommandCounter
) -> None:
    windowed = ", ".join(f'{{event: {{name: "e{i}", withinLastDays: 30}}}}' for i in range(20))
    await api.ok(
        'mutation { createSegment(input: {name: "s", filter: {or: [' + windowed + "]}}) "
        "{ segment { id } } }"
    )
    one = "a%d: segments { members(first: 0) { pageInfo { hasNextPage } } }"
    error, _ = await _refused(api, commands, "{ " + " ".join(one % i for i in range(3)) + " }")
    assert error["extensions"]["cost"] == 3 * MAX_SEGMENTS * (1 + 1 + SAVED_FILTER_ESTIMATE + 1)


async def test_the_readme_shows_the_costs_the_estimator_computes(schema: GraphQLSchema) -> None:
    text = " ".join(README.read_text().split())
    hundred = "{ profiles(first: 100) { edges { node { activity(first: 100) { edges { node {"
    hundred += " __typename } } } } } } }"
    for query in (_readme_dashboard(), hundred, ATTACK):
        assert f"{_cost(schema, query):,}" in text


async def test_the_rate_limit_charges_an_operation_by_its_cost(
    settings: Settings, commands: CommandCounter, geo: GeoIP
) -> None:
    tight = replace(
        settings, rate_limits=(("sdk", 600), ("viewer", 6), ("agent", 600), ("admin", 600))
    )
    cheap = "{ profiles(first: 5) { edges { node { id } } } }"
    costly = """{ profiles(first: 100) { edges { node {
      identities { type } activity(first: 40) { edges { cursor } } } } } }"""
    async with running(tight, commands, geo) as api:
        limiter = api.app.state.runtime.get().limiter
        now = [1000.0]
        limiter.clock = lambda: now[0]
        viewer = await api.key(Role.VIEWER)
        for _ in range(6):  # six cheap requests a minute go through
            await api.ok(cheap, key=viewer)
        now[0] += 60
        # 5,301 counts as 5.3 requests: with the request itself, the minute's budget is spent.
        await api.ok(costly, key=viewer)
        response = await api.http.post(
            "/graphql", json={"query": cheap}, headers={"Authorization": f"Bearer {viewer}"}
        )
        assert response.status_code == 429
        assert response.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        now[0] += 60
        await api.ok(cheap, key=viewer)
