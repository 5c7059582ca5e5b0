"""The API is safe to expose: limits refuse abusive operations before any resolver runs,
production hides the schema, errors are masked, keys are rate limited, and every operation is
logged and counted."""

from __future__ import annotations

import json
import logging
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
    "{ segments { members { edges { node { activity { edges { node { ... on Event { name } } }"
    " } } } } } }"
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


async def test_each_operation_is_logged_once_without_values(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="profile360.requests"):
        await api.ok(
            CAPTURE, capture_input("WEB", "v1", {"firstName": "Secretname"}), role=Role.SDK
        )
        await api.post(CAPTURE, capture_input("WEB", "null"), role=Role.SDK)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "profile360.requests"]
    assert len(lines) == 2
    ok, refused = lines
    assert ok["operation"] == "Capture"
    assert (ok["type"], ok["tenant"], ok["key"], ok["outcome"]) == (
        "mutation",
        "acme",
        "sdk-key",
        "ok",
    )
    assert ok["ms"] > 0
    assert refused["codes"] == ["BLOCKED_IDENTIFIER"]
    assert "Secretname" not in caplog.text


async def test_metrics_count_requests_errors_merges_and_database_commands(api: Api) -> None:
    from tests.integration.queries import IDENTIFY, identify_input

    await api.ok(IDENTIFY, identify_input("API", "crm", "u1"))
    await api.ok(CAPTURE, capture_input("WEB", "v1"))
    await api.ok(IDENTIFY, identify_input("WEB", "v1", "u1"))
    await api.post(CAPTURE, capture_input("WEB", "null"))
    text = (await api.http.get("/metrics")).text
    assert 'profile360_requests_total{operation="mutation",outcome="ok"} 3.0' in text
    assert 'profile360_errors_total{code="BLOCKED_IDENTIFIER"} 1.0' in text
    assert 'profile360_merges_total{trigger="IDENTIFY"} 1.0' in text
    assert 'profile360_db_commands_total{command="findAndModify"}' in text
    assert "profile360_request_duration_seconds_bucket" in text
