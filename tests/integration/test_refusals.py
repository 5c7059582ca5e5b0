"""Refusals outside GraphQL execution answer in GraphQL's shape, as JSON with a code and a fitting
status, and run nothing; `GET /` points to the API; GraphiQL's page is the service's own, under
a Content-Security-Policy that allows only its origin."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from domain.access import Role
from server.config import Settings
from server.geo import GeoIP
from server.graphiql import CONTENT_SECURITY_POLICY
from tests.conftest import Api, CommandCounter, running
from tests.integration.queries import CAPTURE, capture_input

DEFINE = (
    'mutation { defineProperty(input: {name: "plan", type: STRING}) '
    "{ propertyDefinition { name } } }"
)


def refusal(response: httpx.Response, status: int, code: str) -> str:
    """The refusal's message, once its status, content type and shape are checked."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"errors"}, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == code, error
    message: str = error["message"]
    assert message
    return message


@pytest.fixture
async def keyed(api: Api, commands: CommandCounter) -> dict[str, str]:
    """An admin key's headers, checked and cached before commands are counted."""
    key = await api.key()
    await api.post("{ propertyDefinitions { name } }")
    commands.reset()
    return {"Authorization": f"Bearer {key}"}


async def test_a_mutation_over_get_is_refused_with_405_and_writes_nothing(
    api: Api, commands: CommandCounter, keyed: dict[str, str]
) -> None:
    response = await api.http.get("/graphql", params={"query": DEFINE}, headers=keyed)
    message = refusal(response, 405, "METHOD_NOT_ALLOWED")
    assert "mutation" in message.lower()
    assert "POST" in message
    assert response.headers["allow"] == "POST"
    assert commands.names == []


async def test_a_batched_body_is_refused_and_runs_none_of_its_operations(
    api: Api, commands: CommandCounter, keyed: dict[str, str]
) -> None:
    batch = [{"query": DEFINE}, {"query": "{ propertyDefinitions { name } }"}]
    response = await api.http.post("/graphql", json=batch, headers=keyed)
    assert "one operation per request" in refusal(response, 400, "BATCHING_NOT_SUPPORTED")
    assert commands.names == []


@pytest.mark.parametrize(
    "body",
    [b'{"query": "{ propertyDefinitions { name } }"', b"", b"\xff\xfe", b'"a string"', b"42"],
    ids=["truncated", "empty", "not-utf8", "a-string", "a-number"],
)
async def test_a_body_that_is_not_a_json_object_is_a_bad_request(
    api: Api, commands: CommandCounter, keyed: dict[str, str], body: bytes
) -> None:
    headers = {**keyed, "Content-Type": "application/json"}
    response = await api.http.post("/graphql", content=body, headers=headers)
    refusal(response, 400, "BAD_REQUEST")
    assert commands.names == []


async def test_a_query_that_is_not_a_string_is_a_bad_request(
    api: Api, keyed: dict[str, str]
) -> None:
    response = await api.http.post("/graphql", json={"query": 5}, headers=keyed)
    assert "query" in refusal(response, 400, "BAD_REQUEST")


async def test_json_nested_thousands_deep_is_a_bad_request(
    api: Api, commands: CommandCounter, keyed: dict[str, str]
) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    body = '{"query": "{ __typename }", "variables": {"a": ' + deep + "}}"
    headers = {**keyed, "Content-Type": "application/json"}
    response = await api.http.post("/graphql", content=body.encode(), headers=headers)
    assert "deep" in refusal(response, 400, "BAD_REQUEST")
    deep = "[" * 10_000 + "]" * 10_000  # a URL is shorter than a body
    response = await api.http.get(
        "/graphql",
        params={"query": "{ propertyDefinitions { name } }", "variables": '{"a": ' + deep + "}"},
        headers=keyed,
    )
    assert "deep" in refusal(response, 400, "BAD_REQUEST")
    assert commands.names == []


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", json.dumps({"query": "{ propertyDefinitions { name } }"})),
        (
            "application/x-www-form-urlencoded",
            "query=%7B%20propertyDefinitions%20%7B%20name%20%7D%20%7D",
        ),
        ("application/graphql", "{ propertyDefinitions { name } }"),
        (None, json.dumps({"query": "{ propertyDefinitions { name } }"})),
    ],
)
async def test_a_body_of_another_content_type_is_refused_with_415(
    api: Api, commands: CommandCounter, keyed: dict[str, str], content_type: str | None, body: str
) -> None:
    headers = dict(keyed)
    if content_type:
        headers["Content-Type"] = content_type
    response = await api.http.post("/graphql", content=body.encode(), headers=headers)
    assert "application/json" in refusal(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert commands.names == []


@pytest.mark.parametrize("content_type", ["Application/JSON", "APPLICATION/JSON; charset=UTF-8"])
async def test_the_json_media_type_is_accepted_in_any_case(
    api: Api, keyed: dict[str, str], content_type: str
) -> None:
    response = await api.http.post(
        "/graphql",
        content=json.dumps({"query": "{ propertyDefinitions { name } }"}),
        headers={**keyed, "Content-Type": content_type},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["propertyDefinitions"]


async def test_json_with_a_charset_is_accepted(api: Api, keyed: dict[str, str]) -> None:
    response = await api.http.post(
        "/graphql",
        content=json.dumps({"query": "{ propertyDefinitions { name } }"}),
        headers={**keyed, "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200
    assert response.json()["data"]["propertyDefinitions"]


async def test_an_oversized_body_is_refused_with_413(
    api: Api, commands: CommandCounter, keyed: dict[str, str]
) -> None:
    payload = json.dumps({"query": "{ propertyDefinitions { name } }", "pad": "x" * 300_000})
    headers = {**keyed, "Content-Type": "application/json"}
    response = await api.http.post("/graphql", content=payload, headers=headers)
    assert "262144 bytes" in refusal(response, 413, "PAYLOAD_TOO_LARGE")
    assert commands.names == []


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_other_methods_on_graphql_are_refused_with_405(
    api: Api, keyed: dict[str, str], method: str
) -> None:
    response = await api.http.request(method, "/graphql", headers=keyed)
    refusal(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "GET, POST"


async def test_a_get_without_a_query_from_a_non_browser_is_a_bad_request(api: Api) -> None:
    response = await api.http.get("/graphql", headers={"Accept": "*/*"})
    assert "query" in refusal(response, 400, "BAD_REQUEST").lower()


async def test_an_unknown_route_is_a_graphql_shaped_404(api: Api) -> None:
    response = await api.http.get("/graphq", headers={"Accept": "text/html"})
    assert "/graphql" in refusal(response, 404, "NOT_FOUND")
    missing_asset = await api.http.get("/static/graphiql/nothing.js")
    refusal(missing_asset, 404, "NOT_FOUND")


async def test_a_wrong_method_on_a_route_is_a_graphql_shaped_405(api: Api) -> None:
    response = await api.http.post("/healthz")
    refusal(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response.headers["allow"]


@pytest.fixture
async def limited(settings: Settings, commands: CommandCounter, geo: GeoIP) -> AsyncIterator[Api]:
    tight = replace(
        settings, rate_limits=(("sdk", 1), ("viewer", 600), ("agent", 600), ("admin", 600))
    )
    async with running(tight, commands, geo) as api:
        yield api


async def test_a_rate_limited_key_gets_a_graphql_shaped_429(limited: Api) -> None:
    api = limited
    key = await api.key(Role.SDK)
    await api.ok(CAPTURE, capture_input("WEB", "v1"), key=key)
    response = await api.http.post(
        "/graphql",
        json={"query": CAPTURE, "variables": capture_input("WEB", "v2")},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 429
    assert response.headers["content-type"].startswith("application/json")
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert await api.db["identities"].count_documents({"value": "v2"}) == 0


async def test_the_root_points_to_the_api_and_to_graphiql(api: Api) -> None:
    as_json = await api.http.get("/")
    assert as_json.status_code == 200
    assert as_json.json() == {
        "graphql": "/graphql",
        "graphiql": "/graphql",
        "console": "/console",
    }
    page = await api.http.get("/", headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    assert 'href="/graphql"' in page.text


async def test_graphiql_is_the_services_own_page_under_a_same_origin_policy(api: Api) -> None:
    page = await api.http.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    # Styles: 'self' and this response's nonce (GraphiQL's dialogs add one <style> with it).
    nonce = re.search(r"style-src 'self' 'nonce-([\w-]+)'", policy)
    assert nonce is not None, policy
    assert f'data-style-nonce="{nonce[1]}"' in page.text
    again = await api.http.get("/graphql", headers={"Accept": "text/html"})
    assert nonce[1] not in again.headers["content-security-policy"]
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "http" not in policy  # no other origin is allowed
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text), "an asset from elsewhere"
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), "an inline script"
    sources = re.findall(r'(?:src|href)="(static/graphiql/[^"]+)"', page.text)
    assert "static/graphiql/graphiql.min.js" in sources
    for source in sources:
        asset = await api.http.get(f"/{source}")
        assert asset.status_code == 200, source
        assert asset.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


@pytest.fixture
async def production(
    settings: Settings, commands: CommandCounter, geo: GeoIP
) -> AsyncIterator[Api]:
    async with running(replace(settings, app_env="production"), commands, geo) as api:
        yield api


async def test_production_serves_neither_graphiql_nor_its_assets(production: Api) -> None:
    api = production
    page = await api.http.get("/graphql", headers={"Accept": "text/html"})
    refusal(page, 400, "BAD_REQUEST")
    assert "graphiql" not in page.text.lower()
    refusal(await api.http.get("/static/graphiql/graphiql.min.js"), 404, "NOT_FOUND")
    assert (await api.http.get("/")).json() == {
        "graphql": "/graphql",
        "graphiql": None,
        "console": "/console",
    }


@pytest.fixture
async def with_cors(settings: Settings, commands: CommandCounter, geo: GeoIP) -> AsyncIterator[Api]:
    allowed = replace(settings, cors_origins=("https://app.example",))
    async with running(allowed, commands, geo) as api:
        yield api


async def test_a_refused_cors_preflight_is_graphql_shaped(with_cors: Api) -> None:
    def preflight(origin: str) -> dict[str, str]:
        return {"Origin": origin, "Access-Control-Request-Method": "POST"}

    ok = await with_cors.http.options("/graphql", headers=preflight("https://app.example"))
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    refused = await with_cors.http.options("/graphql", headers=preflight("https://evil.example"))
    assert "origin" in refusal(refused, 400, "BAD_REQUEST")
