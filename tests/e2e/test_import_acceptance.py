"""The bulk import's acceptance over HTTP, against a real server on its own embedded SQLite
engine (as `make run` starts it): an admin POSTs a CSV of awkward values; every refused row is
reported with its code, every accepted row reads back through the API value by value, the
figures `importJob` shows while it runs always add up, and a second run of the same file
reports every row unchanged and writes nothing.

IMPORT_E2E_ROWS sets the file's size (default 300; the acceptance figure is 10,000: see
README, Bulk import, for how long that takes on the embedded engine)."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from bench.import_data import DEFINITIONS, awkward_csv
from tests.e2e.conftest import StartServer

pytestmark = pytest.mark.e2e
ROWS = int(os.environ.get("IMPORT_E2E_ROWS", "300"))
JOB = """query J($id: ID!) { importJob(id: $id) {
  status rowsRead written unchanged refused bytesRead totalBytes error } }"""
REFUSED = """query R($id: ID!, $after: String) { importJob(id: $id) {
  refusedRows(first: 100, after: $after) {
    edges { node { row field code message } } pageInfo { hasNextPage endCursor } } } }"""
DEFINE = """mutation D($n: String!, $t: PropertyType!) {
  defineProperty(input: {name: $n, type: $t}) { propertyDefinition { name } } }"""
ALIASES = 15  # GRAPHQL_MAX_ALIASES
DATA = ("profiles", "identities", "events", "conversations", "property_definitions")


def _graphql(client: httpx.Client, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    reply = client.post("/graphql", json={"query": query, "variables": variables})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def _run(client: httpx.Client, body: bytes) -> tuple[dict[str, Any], dict[int, str]]:
    """POST the file and follow the job to its end; the job and every refused row's code.
    At every poll the figures add up and never go back."""
    reply = client.post("/import?format=csv", content=body, headers={"Content-Type": "text/csv"})
    assert reply.status_code == 202, reply.text
    job_id = reply.json()["jobId"]
    seen = (0, 0, 0, 0)
    while True:
        job = _graphql(client, JOB, {"id": job_id})["importJob"]
        figures = (job["rowsRead"], job["written"], job["unchanged"], job["refused"])
        assert job["written"] + job["unchanged"] == job["rowsRead"], job
        assert all(now >= before for now, before in zip(figures, seen, strict=True)), job
        seen = figures
        if job["status"] != "RUNNING":
            break
        time.sleep(0.5)
    refused: dict[int, str] = {}
    after = None
    while True:
        variables = {"id": job_id, "after": after}
        page = _graphql(client, REFUSED, variables)["importJob"]["refusedRows"]
        refused.update({e["node"]["row"]: e["node"]["code"] for e in page["edges"]})
        if not page["pageInfo"]["hasNextPage"]:
            return job, refused
        after = page["pageInfo"]["endCursor"]


def _snapshot(uri: str) -> dict[str, list[Any]]:
    with MongoClient[dict[str, Any]](uri, tz_aware=True) as client:
        db = client["profile360"]
        return {name: list(db[name].find().sort("_id", 1)) for name in DATA}


def test_an_awkward_csv_imports_over_http_reads_back_and_a_second_run_writes_nothing(
    start_server: StartServer, tmp_path: Path
) -> None:
    started = time.monotonic()
    key = f"p360_{secrets.token_urlsafe(24)}"
    data_dir = tmp_path / "data"
    server = start_server(
        {"DATA_DIR": str(data_dir), "BOOTSTRAP_TENANT": "acme", "BOOTSTRAP_API_KEY": key}
    )
    engine_uri = (data_dir / "engine.uri").read_text().strip()
    body, expected = awkward_csv(ROWS)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=120) as client:
        for name, type_ in DEFINITIONS:
            _graphql(client, DEFINE, {"n": name, "t": type_})

        job, refused = _run(client, body)
        imported = time.monotonic()

        assert job["status"] == "DONE", job
        assert job["bytesRead"] == job["totalBytes"] == len(body)
        assert refused == expected.refused
        assert (job["rowsRead"], job["refused"]) == (ROWS, len(expected.refused))
        users = sorted(expected.accepted)
        for start in range(0, len(users), ALIASES):
            chunk = users[start : start + ALIASES]
            fields = " ".join(
                f"p{i}: profileByUserId(userId: $u{i}) {{ userId properties }}"
                for i in range(len(chunk))
            )
            params = ", ".join(f"$u{i}: String!" for i in range(len(chunk)))
            query = f"query Read({params}) {{ {fields} }}"
            data = _graphql(client, query, {f"u{i}": user for i, user in enumerate(chunk)})
            for i, user in enumerate(chunk):
                profile = data[f"p{i}"]
                assert profile is not None, user
                assert profile["userId"] == user
                for name, value in expected.accepted[user].items():
                    assert profile["properties"].get(name) == value, (user, name, profile)

        before = _snapshot(engine_uri)
        again, refused_again = _run(client, body)

        assert again["status"] == "DONE", again
        figures = (again["rowsRead"], again["written"], again["unchanged"], again["refused"])
        assert figures == (ROWS, 0, ROWS, len(expected.refused))
        assert refused_again == expected.refused
        assert _snapshot(engine_uri) == before
    print(
        f"{ROWS} rows over HTTP on the embedded SQLite engine: import "
        f"{imported - started:.0f} s, whole test {time.monotonic() - started:.0f} s"
    )
