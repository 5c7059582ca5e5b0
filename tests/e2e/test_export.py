"""GET /export from a real server: streamed, and round-tripping awkward values."""

from __future__ import annotations

import csv
import io
import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from domain.access import Role
from domain.ids import new_id
from store.client import open_client
from store.keys import KeyStore
from tests.e2e.conftest import ServerProcess

# One server and one seeded database for the whole module: seeding 2,000 profiles is the slow part.
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

PROFILES = 2000
AWKWARD = [
    "comma, inside",
    'a "quoted" word',
    "two\nlines",
    "crlf\r\nline",
    "Zoë 李小龍 😀",
    "  padded  ",
    "=SUM(A1)",
    "",
]


def _note(i: int) -> str:
    return AWKWARD[i % len(AWKWARD)] + f" #{i}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def exporting(
    tmp_path_factory: pytest.TempPathFactory, mongo_uri: str
) -> AsyncIterator[tuple[ServerProcess, str, Any]]:
    db_name = f"export_{secrets.token_hex(4)}"
    key = f"p360_{secrets.token_urlsafe(24)}"
    environment = {
        "MONGODB_URI": mongo_uri,
        "MONGODB_DB": db_name,
        "BOOTSTRAP_TENANT": "acme",
        "BOOTSTRAP_API_KEY": key,
    }
    server = ServerProcess(environment, tmp_path_factory.mktemp("export") / "server.log")
    client = open_client(mongo_uri)
    db = client[db_name]
    async with httpx.AsyncClient(base_url=server.base_url, timeout=120) as http:
        headers = {"Authorization": f"Bearer {key}"}
        for name, type_ in (("note", "STRING"), ("labels", "LIST")):
            query = f'mutation {{ defineProperty(input: {{name: "{name}", type: {type_}}}) '
            query += "{ propertyDefinition { name } } }"
            response = await http.post("/graphql", json={"query": query}, headers=headers)
            assert "errors" not in response.json()
    now = datetime.now(UTC)
    batch: list[dict[str, Any]] = []
    for i in range(PROFILES):  # seeded directly, in small batches (the engine is slow at large)
        props: dict[str, Any] = {
            "note": _note(i),
            "labels": ["a,b", 'c"d', f"n{i}"],
            "firstName": "Zoë" if i % 2 else "O'Neil",
        }
        if i % 10 == 0:
            props["tags"] = ["vip"]
        batch.append(
            {
                "_id": new_id(),
                "tenant": "acme",
                "props": props,
                "userId": f"user-{i}" if i % 3 == 0 else None,
                "createdAt": now,
                "updatedAt": now,
            }
        )
        if len(batch) == 100:
            await db["profiles"].insert_many(batch)
            batch = []
    yield server, key, db
    server.stop()
    await client.drop_database(db_name)
    await client.close()


async def _stream(server: ServerProcess, key: str, query: str) -> tuple[str, int, httpx.Response]:
    chunks: list[str] = []
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=120) as http,
        http.stream("GET", f"/export?{query}", headers={"X-API-Key": key}) as response,
    ):
        async for chunk in response.aiter_text():
            chunks.append(chunk)
    return "".join(chunks), len(chunks), response


async def test_csv_export_streams_and_round_trips_awkward_values(
    exporting: tuple[ServerProcess, str, Any],
) -> None:
    server, key, _ = exporting
    text, chunks, response = await _stream(
        server, key, "format=csv&properties=firstName,note,labels"
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert chunks > 10  # it arrived in pieces, row by row, not as one buffered body
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == PROFILES
    assert list(rows[0]) == [
        "id",
        "userId",
        "createdAt",
        "updatedAt",
        "firstName",
        "note",
        "labels",
    ]
    notes = sorted(r["note"] for r in rows)
    # A cell a spreadsheet would run as a formula is quoted (NDJSON keeps it exact).
    quoted = ["'" + n if n.startswith("=") else n for n in map(_note, range(PROFILES))]
    assert notes == sorted(quoted)
    assert {r["firstName"] for r in rows} == {"Zoë", "O'Neil"}
    assert all(json.loads(r["labels"])[:2] == ["a,b", 'c"d'] for r in rows)
    assert sum(1 for r in rows if r["userId"]) == len(range(0, PROFILES, 3))


async def test_ndjson_export_round_trips_through_json(
    exporting: tuple[ServerProcess, str, Any],
) -> None:
    server, key, _ = exporting
    text, chunks, response = await _stream(server, key, "format=ndjson&properties=note,labels")
    assert response.status_code == 200
    assert chunks > 10
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) == PROFILES
    assert sorted(r["properties"]["note"] for r in records) == sorted(
        _note(i) for i in range(PROFILES)
    )
    assert set(records[0]) == {"id", "userId", "createdAt", "updatedAt", "properties"}


async def test_a_segment_export_holds_only_its_members(
    exporting: tuple[ServerProcess, str, Any],
) -> None:
    server, key, _ = exporting
    create = (
        'mutation { createSegment(input: {name: "VIP", filter: {tag: "vip"}}) '
        "{ segment { id count } } }"
    )
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
        response = await http.post("/graphql", json={"query": create}, headers={"X-API-Key": key})
    segment = response.json()["data"]["createSegment"]["segment"]
    assert segment["count"] == PROFILES // 10
    text, _, _ = await _stream(server, key, f"format=ndjson&segment={segment['id']}")
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) == PROFILES // 10
    assert all(r["properties"]["tags"] == ["vip"] for r in records)


async def test_export_refuses_bad_requests_with_a_code(
    exporting: tuple[ServerProcess, str, Any],
) -> None:
    server, key, db = exporting
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:

        async def get(query: str, secret: str | None = key) -> httpx.Response:
            headers = {"X-API-Key": secret} if secret else {}
            return await http.get(f"/export?{query}", headers=headers)

        unauthenticated = await get("format=csv", None)
        assert unauthenticated.status_code == 401
        assert unauthenticated.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        bad_format = (await get("format=xml")).json()["errors"][0]
        assert bad_format["extensions"]["code"] == "VALIDATION_FAILED"
        response = await get("properties=nope")
        assert response.status_code == 400
        (error,) = response.json()["errors"]
        assert error["extensions"] == {"code": "PROPERTY_NOT_DEFINED", "field": "properties"}
        assert "nope" in error["message"]
        assert (await get("segment=unknown")).status_code == 404
        viewer = "p360_viewer_" + secrets.token_hex(8)
        await KeyStore(db).ensure(viewer, "acme", Role.VIEWER, "dash", datetime.now(UTC))
        forbidden = await get("format=csv", viewer)
        assert forbidden.status_code == 403
        assert forbidden.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
