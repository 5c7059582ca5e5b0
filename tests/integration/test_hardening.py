"""The API is safe to expose: limits refuse abusive operations before any resolver runs,
production hides the schema, errors are masked, keys are rate limited, and every operation is
logged and counted."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from domain.access import Role
from server.config import Settings
from server.geo import GeoIP
from tests.conftest import Api, CommandCounter, running
from tests.integration.queries import CAPTURE, PROFILE, capture_input


async def _refused_before_resolvers(
    api: Api, commands: CommandCounter, query: str
) -> dict[str, Any]:
    await api.key()  # the key is created (and cached) before counting
    await api.post("{ propertyDefinitions { name } }")
    commands.reset()
    body = await api.post(query)
    assert body.get("data") is None, body
    assert commands.names == [], "a resolver ran"
    error: dict[str, Any] = body["errors"][0]
    assert error["extensions"]["code"] == "VALIDATION_FAILED"
    return error


# The deepest query the schema allows is 8 levels, under the default limit of 10; this test
# lowers the limit to show the mechanism.
EIGHT_LEVELS = (
    "{ segments { members(first: 1) { edges { node { activity(first: 1) { edges { node {"
    " ... on Event { name } } } } } } } } }"
)


async def test_a_query_deeper_than_the_limit_is_refused(
    settings: Settings, commands: CommandCounter, geo: GeoIP
) -> None:
    async with running(replace(settings, max_depth=5), commands, geo) as api:
        error = await _refused_before_resolvers(api, commands, EIGHT_LEVELS)
        assert "exceeds maximum operation depth" in error["message"]
    async with running(settings, commands, geo) as api:
        assert "errors" not in await api.post(EIGHT_LEVELS)


async def test_too_many_aliases_are_refused_also_through_fragments(
    api: Api, commands: CommandCounter
) -> None:
    aliases = " ".join(f"a{i}: propertyDefinitions {{ name }}" for i in range(16))
    error = await _refused_before_resolvers(api, commands, f"{{ {aliases} }}")
    assert "aliases" in error["message"]
    fragment = " ".join(f"f{i}: name" for i in range(16))
    error = await _refused_before_resolvers(
        api,
        commands,
        f"{{ propertyDefinitions {{ ...F }} }} fragment F on PropertyDefinition {{ {fragment} }}",
    )
    assert "aliases" in error["message"]


async def test_a_query_over_the_token_limit_is_refused(api: Api, commands: CommandCounter) -> None:
    fields = " ".join(["name"] * 2100)
    error = await _refused_before_resolvers(
        api, commands, f"{{ propertyDefinitions {{ {fields} }} }}"
    )
    assert "token" in error["message"].lower()


async def test_a_circular_fragment_is_refused(api: Api, commands: CommandCounter) -> None:
    error = await _refused_before_resolvers(
        api,
        commands,
        "{ propertyDefinitions { ...A } } "
        "fragment A on PropertyDefinition { name ...B } "
        "fragment B on PropertyDefinition { type ...A }",
    )
    assert "fragment" in error["message"].lower()


# Refusals outside GraphQL (413, GET mutations, batching, JSON, content type): test_refusals.py


@pytest.fixture
async def production(
    settings: Settings, commands: CommandCounter, geo: GeoIP
) -> AsyncIterator[Api]:
    async with running(replace(settings, app_env="production"), commands, geo) as api:
        yield api


async def test_production_refuses_introspection_and_hides_graphiql_and_suggestions(
    production: Api,
) -> None:
    api = production
    body = await api.post("{ __schema { types { name } } }")
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"
    assert "introspection" in body["errors"][0]["message"].lower()
    page = await api.http.get("/graphql", headers={"Accept": "text/html"})
    assert "graphiql" not in page.text.lower()
    typo = await api.post('{ profil(id: "x") { id } }')
    assert "Did you mean" not in typo["errors"][0]["message"]


# Every kind of typo graphql-core answers with a suggestion: its validation rules (unknown
# types, fields, arguments, input fields, enum values; a missing sub-selection) and the
# coercion of variables (input fields, enum values).
_PAGE = "{ edges { cursor } }"
TYPOS = [
    pytest.param(
        f"query($f: ProfileFiltr) {{ profiles(where: $f) {_PAGE} }}", {}, id="type-of-variable"
    ),
    pytest.param(
        "query { ...F } fragment F on Quer { segments { id } }", {}, id="type-of-fragment"
    ),
    pytest.param('{ profil(id: "x") { id } }', {}, id="field"),
    pytest.param('{ profile(idd: "x") { id } }', {}, id="argument"),
    pytest.param(f'{{ profiles(where: {{tagg: "x"}}) {_PAGE} }}', {}, id="input-field-literal"),
    pytest.param(
        f"query($f: ProfileFilter) {{ profiles(where: $f) {_PAGE} }}",
        {"f": {"tagg": "x"}},
        id="input-field-variable",
    ),
    pytest.param(
        '{ profileByIdentity(channel: WEBB, senderId: "x") { id } }', {}, id="enum-value-literal"
    ),
    pytest.param(
        'query($c: Channel!) { profileByIdentity(channel: $c, senderId: "x") { id } }',
        {"c": "WEBB"},
        id="enum-value-variable",
    ),
    pytest.param('{ profile(id: "x") }', {}, id="missing-selection"),
]


@pytest.mark.parametrize(("query", "variables"), TYPOS)
async def test_production_suggests_nothing_for_any_typo(
    production: Api, query: str, variables: dict[str, Any]
) -> None:
    body = await production.post(query, variables)
    assert body["errors"], body
    for error in body["errors"]:
        assert "Did you mean" not in error["message"], error
        assert error["message"].strip(), error
        assert error["extensions"]["code"] == "VALIDATION_FAILED", error


@pytest.mark.parametrize(("query", "variables"), TYPOS)
async def test_development_suggests_a_fix_for_every_typo(
    api: Api, query: str, variables: dict[str, Any]
) -> None:
    body = await api.post(query, variables)
    assert any("Did you mean" in e["message"] for e in body["errors"]), body


async def test_development_keeps_introspection_and_suggestions(api: Api) -> None:
    body = await api.post("{ __schema { queryType { name } } }")
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"
    typo = await api.post('{ profil(id: "x") { id } }')
    assert "Did you mean" in typo["errors"][0]["message"]


@pytest.fixture
async def limited(settings: Settings, commands: CommandCounter, geo: GeoIP) -> AsyncIterator[Api]:
    tight = replace(
        settings, rate_limits=(("sdk", 3), ("viewer", 600), ("agent", 600), ("admin", 600))
    )
    async with running(tight, commands, geo) as api:
        yield api


async def test_rate_limiting_trips_and_recovers(limited: Api) -> None:
    api = limited
    limiter = api.app.state.runtime.get().limiter
    now = [1000.0]
    limiter.clock = lambda: now[0]
    key = await api.key(Role.SDK)
    for i in range(3):
        await api.ok(CAPTURE, capture_input("WEB", f"v{i}"), key=key)
    response = await api.http.post(
        "/graphql",
        json={"query": CAPTURE, "variables": capture_input("WEB", "v9")},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) == 20  # one token every 20 s at 3 a minute
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert await api.db["identities"].count_documents({"value": "v9"}) == 0
    await api.ok(PROFILE, {"id": "0" * 32}, role=Role.VIEWER)  # other keys are unaffected
    now[0] += 20
    await api.ok(CAPTURE, capture_input("WEB", "v9"), key=key)


async def test_each_request_is_one_access_line_with_its_operation_and_without_values(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="profile360.requests"):
        await api.ok(
            CAPTURE, capture_input("WEB", "v1", {"firstName": "Secretname"}), role=Role.SDK
        )
        await api.post(CAPTURE, capture_input("WEB", "null"), role=Role.SDK)
        await api.http.get("/graphql?query={__typename}&variables={%22x%22:%22Secretname%22}")
    lines: list[Any] = [r for r in caplog.records if r.name == "profile360.requests"]
    assert len(lines) == 3
    ok, refused, got = lines
    assert (ok.method, ok.path, ok.status, ok.operation) == ("POST", "/graphql", 200, "Capture")
    assert (ok.type, ok.tenant, ok.key, ok.outcome) == ("mutation", "acme", "sdk-key", "ok")
    assert ok.ms > 0
    assert len({ok.request_id, refused.request_id, got.request_id}) == 3
    assert refused.codes == ["BLOCKED_IDENTIFIER"]
    assert (got.method, got.path, got.operation) == ("GET", "/graphql", "anonymous")
    assert "Secretname" not in caplog.text
    assert all("Secretname" not in json.dumps(vars(r), default=str) for r in lines)


async def test_every_response_carries_a_request_id_the_client_may_choose(api: Api) -> None:
    mine = await api.http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"X-Request-Id": "trace-1.a_B"}
    )
    assert mine.headers["X-Request-Id"] == "trace-1.a_B"
    for response in (
        await api.http.get("/healthz", headers={"X-Request-Id": "no spaces allowed"}),
        await api.http.get("/nowhere"),
        await api.http.post("/graphql", content=b"x" * 300_000),
    ):
        assert len(response.headers["X-Request-Id"]) == 16


async def test_metrics_count_requests_errors_merges_and_database_commands(api: Api) -> None:
    from tests.integration.queries import IDENTIFY, identify_input

    await api.ok(IDENTIFY, identify_input("API", "crm", "u1"))
    await api.ok(CAPTURE, capture_input("WEB", "v1"))
    await api.ok(IDENTIFY, identify_input("WEB", "v1", "u1"))
    await api.post(CAPTURE, capture_input("WEB", "null"))
    text = (await api.http.get("/metrics")).text
    assert (
        'profile360_requests_total{operation="Identify",outcome="ok",type="mutation"} 2.0' in text
    )
    assert 'profile360_requests_total{operation="Capture",outcome="ok",type="mutation"} 1.0' in text
    assert (
        'profile360_requests_total{operation="Capture",outcome="error",type="mutation"} 1.0' in text
    )
    assert 'profile360_errors_total{code="BLOCKED_IDENTIFIER"} 1.0' in text
    assert 'profile360_merges_total{trigger="IDENTIFY"} 1.0' in text
    assert 'profile360_db_commands_total{command="findAndModify"}' in text
    assert 'profile360_request_duration_seconds_bucket{le="0.005",operation="Capture"}' in text


async def test_metrics_count_operation_names_past_the_first_200_as_other(api: Api) -> None:
    key = await api.key(Role.VIEWER)
    for i in range(205):
        await api.ok(f"query Dashboard{i} {{ __typename }}", key=key)
    await api.ok("query Dashboard0 { __typename }", key=key)  # a known name keeps its label
    await api.ok("{ __typename }", key=key)
    text = (await api.http.get("/metrics")).text
    counted = re.findall(r'profile360_requests_total\{operation="([^"]+)"', text)
    assert len(set(counted)) == 201
    assert 'profile360_requests_total{operation="other",outcome="ok",type="query"} 6.0' in text
    assert 'profile360_requests_total{operation="Dashboard0",outcome="ok",type="query"} 2.0' in text
