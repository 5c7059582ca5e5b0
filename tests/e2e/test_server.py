"""The service as a user meets it: a real uvicorn process over real HTTP."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from store.client import open_client
from tests import scenarios
from tests.e2e.conftest import ROOT, ServerProcess, StartServer
from tests.integration.queries import CAPTURE, capture_input

pytestmark = pytest.mark.e2e

PROFILE_BY_IDENTITY = """
query { profileByIdentity(channel: WEB, senderId: "visitor-1") { id firstName } }
"""


def _dev_key(output: str) -> str:
    match = re.search(r"^\s+(p360_\S+)$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def test_a_fresh_start_prints_graphiql_and_a_dev_key_and_restarts_keep_data(
    start_server: StartServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server = start_server({"DATA_DIR": str(data_dir)})
    assert f"GraphiQL at http://127.0.0.1:{server.port}/graphql" in server.output
    assert "embedded engine" in server.output
    key = _dev_key(server.output)
    assert httpx.get(f"{server.base_url}/readyz").status_code == 200
    page = httpx.get(f"{server.base_url}/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()

    headers = {"Authorization": f"Bearer {key}"}
    variables = capture_input("WEB", "visitor-1", {"firstName": "Asha"})
    created = httpx.post(
        f"{server.base_url}/graphql",
        json={"query": CAPTURE, "variables": variables},
        headers=headers,
    ).json()
    profile_id = created["data"]["captureProperties"]["profile"]["id"]
    assert server.stop() == 0
    assert not (data_dir / "engine.uri").exists()  # the engine was stopped cleanly

    again = start_server({"DATA_DIR": str(data_dir)})
    assert _dev_key(again.output) == key  # created once, kept under DATA_DIR
    found = httpx.post(
        f"{again.base_url}/graphql", json={"query": PROFILE_BY_IDENTITY}, headers=headers
    ).json()
    assert found["data"]["profileByIdentity"] == {"id": profile_id, "firstName": "Asha"}


def test_the_embedded_engine_listens_on_loopback_only(
    start_server: StartServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    start_server({"DATA_DIR": str(data_dir)})
    uri = (data_dir / "engine.uri").read_text()
    assert uri.startswith("mongodb://profile360:")
    assert uri.split("@", 1)[1].startswith("127.0.0.1:")


def test_the_cli_creates_lists_and_revokes_keys_next_to_a_running_server(
    start_server: StartServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server = start_server({"DATA_DIR": str(data_dir), "API_KEY_CACHE_SECONDS": "0"})
    env = {"DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "server", "keys", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    created = cli("create", "--tenant", "acme", "--role", "viewer", "--name", "dashboard")
    key_id = created.split()[2]
    secret = created.strip().splitlines()[-1]
    assert secret.startswith("p360_")
    header, *rows = cli("list", "--tenant", "acme").splitlines()
    assert header.split() == ["ID", "TENANT", "ROLE", "STATE", "CREATED", "(UTC)", "NAME"]
    assert [row.split()[:4] for row in rows] == [[key_id, "acme", "viewer", "active"]]
    query = {"query": "{ profiles(first: 1) { edges { cursor } } }"}
    headers = {"X-API-Key": secret}
    assert httpx.post(f"{server.base_url}/graphql", json=query, headers=headers).json()["data"]
    assert "revoked" in cli("revoke", key_id)
    assert "revoked" in cli("list", "--tenant", "acme")
    refused = httpx.post(f"{server.base_url}/graphql", json=query, headers=headers).json()
    assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert refused["errors"][0]["message"] == "this API key was revoked"


@pytest.fixture
async def shared_server(
    start_server: StartServer, mongo_uri: str
) -> AsyncIterator[tuple[ServerProcess, str, Any]]:
    db_name = f"e2e_{secrets.token_hex(4)}"
    key = f"p360_{secrets.token_urlsafe(24)}"
    server = start_server(
        {
            "MONGODB_URI": mongo_uri,
            "MONGODB_DB": db_name,
            "BOOTSTRAP_TENANT": "acme",
            "BOOTSTRAP_API_KEY": key,
        }
    )
    client = open_client(mongo_uri)
    yield server, key, client[db_name]
    await client.drop_database(db_name)
    await client.close()


async def test_fifty_concurrent_identifies_over_real_http_end_with_one_profile(
    shared_server: tuple[ServerProcess, str, Any],
) -> None:
    server, key, db = shared_server
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
        await scenarios.many_senders_identify_as_one_new_user(http, key, db, "acme", 50)


async def test_fifty_concurrent_first_captures_over_real_http_end_with_one_profile(
    shared_server: tuple[ServerProcess, str, Any],
) -> None:
    server, key, db = shared_server
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
        await scenarios.one_sender_first_captures_at_once(http, key, db, "acme", 50)
