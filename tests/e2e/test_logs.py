"""What a real `python -m server` process writes to its log, and how it treats slow, vanishing
and failing requests."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.ids import new_id
from store.client import open_client
from tests.e2e.conftest import ServerProcess, StartServer
from tests.integration.queries import profile_gid

pytestmark = pytest.mark.e2e

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
SECRET_EMAIL = "asha.secret@example.com"
LOOKUP = "query FindAsha($u: String!) { profileByUserId(userId: $u) { id } }"


@pytest.fixture
async def database(mongo_uri: str) -> AsyncIterator[tuple[str, Any]]:
    name = f"logs_{secrets.token_hex(4)}"
    client = open_client(mongo_uri)
    yield name, client[name]
    await client.drop_database(name)
    await client.close()


def _start(
    start_server: StartServer, mongo_uri: str, db_name: str, **env: str
) -> tuple[ServerProcess, str]:
    key = f"p360_{secrets.token_urlsafe(24)}"
    server = start_server(
        {
            "MONGODB_URI": mongo_uri,
            "MONGODB_DB": db_name,
            "BOOTSTRAP_TENANT": "acme",
            "BOOTSTRAP_API_KEY": key,
            **env,
        }
    )
    return server, key


def _lines(server: ServerProcess) -> list[str]:
    return [line for line in server.output.splitlines() if line.strip()]


def _json_lines(server: ServerProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _lines(server)]


def _wait_for(server: ServerProcess, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.output:
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} never logged:\n{server.output}")
        time.sleep(0.05)


async def _poison(db: Any, good: int) -> str:
    """`good` profiles, then one whose stored createdAt no reader can turn into a time."""
    now = datetime.now(UTC)
    if good:
        await db["profiles"].insert_many(
            [
                {"_id": new_id(), "tenant": "acme", "props": {"firstName": "Ok"}, "createdAt": now}
                for _ in range(good)
            ]
        )
    poisoned = "f" * 32  # after every generated id in _id order
    await db["profiles"].insert_one(
        {"_id": poisoned, "tenant": "acme", "props": {}, "createdAt": "not a time"}
    )
    return poisoned


def test_with_log_format_json_every_line_is_json_with_an_iso_utc_time_and_no_values(
    start_server: StartServer, mongo_uri: str, database: tuple[str, Any]
) -> None:
    server, key = _start(start_server, mongo_uri, database[0], LOG_FORMAT="json")
    headers = {"Authorization": f"Bearer {key}"}
    variables = json.dumps({"u": SECRET_EMAIL})
    got = httpx.get(
        f"{server.base_url}/graphql",
        params={"query": LOOKUP, "variables": variables},
        headers=headers,
    )
    assert got.status_code == 200, got.text
    posted = httpx.post(
        f"{server.base_url}/graphql",
        json={"query": LOOKUP, "variables": {"u": SECRET_EMAIL}},
        headers=headers,
    )
    assert posted.json() == {"data": {"profileByUserId": None}}
    assert server.stop() == 0

    lines = _json_lines(server)  # raises if any line is not JSON
    assert all(ISO_UTC.fullmatch(line["time"]) for line in lines)
    loggers = {line["logger"] for line in lines}
    assert "uvicorn.error" in loggers  # uvicorn's own lines are JSON too
    assert "uvicorn.access" not in loggers
    access = [line for line in lines if line["logger"] == "profile360.requests"]
    graphql = [line for line in access if line["path"] == "/graphql"]
    assert [(a["method"], a["status"], a["operation"]) for a in graphql] == [
        ("GET", 200, "FindAsha"),
        ("POST", 200, "FindAsha"),
    ]
    assert [a["request_id"] for a in graphql] == [
        got.headers["X-Request-Id"],
        posted.headers["X-Request-Id"],
    ]
    assert all(a["ms"] > 0 and a["tenant"] == "acme" for a in graphql)
    assert "asha" not in server.output  # neither the query string nor the body was logged
    assert "variables" not in server.output


def test_text_log_lines_start_with_an_iso_utc_time(
    start_server: StartServer, mongo_uri: str, database: tuple[str, Any]
) -> None:
    server, _ = _start(start_server, mongo_uri, database[0])
    response = httpx.get(f"{server.base_url}/healthz?token=hunter2")
    assert server.stop() == 0
    lines = _lines(server)
    assert lines
    # The start-up banner is for people (printed, as `make run` shows it); the rest is log lines.
    records = [line for line in lines if not line.startswith("profile360 is up")]
    assert all(ISO_UTC.match(line.split(" ", 1)[0]) for line in records), records
    request_id = f"request_id={response.headers['X-Request-Id']}"
    [access] = [line for line in lines if request_id in line]  # the start-up probes have theirs
    assert "profile360.requests: GET /healthz 200" in access
    assert "hunter2" not in server.output


def test_a_well_formed_request_id_is_kept_and_any_other_is_replaced(
    start_server: StartServer, mongo_uri: str, database: tuple[str, Any]
) -> None:
    server, _ = _start(start_server, mongo_uri, database[0], LOG_FORMAT="json")
    mine = "client-7.A_" + "x" * 117  # 128 characters
    kept = httpx.get(f"{server.base_url}/healthz", headers={"X-Request-Id": mine})
    assert kept.headers["X-Request-Id"] == mine
    for bad in (b"has space", b"x" * 129, "emoji-😀".encode(), b""):
        replaced = httpx.get(f"{server.base_url}/healthz", headers={b"X-Request-Id": bad})
        assert re.fullmatch(r"[0-9a-f]{16}", replaced.headers["X-Request-Id"]), bad
    missing = httpx.post(f"{server.base_url}/graphql", json={"query": "{ __typename }"})
    assert missing.headers["X-Request-Id"]
    server.stop()
    ids = [line.get("request_id") for line in _json_lines(server)]
    assert mine in ids
    assert "has space" not in server.output


def _open_upload(
    port: int, declared: int = 1000, sent: bytes = b'{"query": "{ __ty'
) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {declared}\r\n\r\n".encode()
        + sent
    )
    return sock


def test_a_client_that_disconnects_mid_upload_is_one_info_line(
    start_server: StartServer, mongo_uri: str, database: tuple[str, Any]
) -> None:
    server, _ = _start(start_server, mongo_uri, database[0], LOG_FORMAT="json")
    httpx.get(f"{server.base_url}/healthz", headers={"X-Request-Id": "mark"})
    _wait_for(server, '"request_id": "mark"')  # the start-up probes' lines are all written
    before = len(_lines(server))
    for _ in range(3):
        sock = _open_upload(server.port)
        time.sleep(0.2)
        sock.close()
    deadline = time.monotonic() + 10
    while len(_lines(server)) < before + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # anything else it would write (a traceback) comes with the same request
    new = _json_lines(server)[before:]
    assert len(new) == 3, new
    for line in new:
        assert (line["level"], line["logger"], line["outcome"]) == (
            "INFO",
            "profile360.requests",
            "client disconnected",
        )
        assert line["path"] == "/graphql"
    assert "ClientDisconnect" not in server.output
    assert "Traceback" not in server.output


def _read_all(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes the connection (True) or `timeout`."""
    sock.settimeout(0.2)
    received = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            return received, True
        received += chunk
    return received, False


def test_a_body_that_does_not_arrive_in_time_is_answered_408_and_the_connection_closed(
    start_server: StartServer, mongo_uri: str, database: tuple[str, Any]
) -> None:
    server, _ = _start(start_server, mongo_uri, database[0], BODY_TIMEOUT_SECONDS="1")
    stalled = [_open_upload(server.port) for _ in range(20)]
    # A slow loris: keeps sending a byte at a time, never finishing the declared body.
    loris = _open_upload(server.port, declared=100_000, sent=b"{")
    started = time.monotonic()
    loris_closed = False
    loris_received = b""
    loris.settimeout(0.1)
    while time.monotonic() - started < 5:
        try:
            loris.sendall(b" ")
            chunk = loris.recv(65536)
        except TimeoutError:
            continue
        except OSError:  # reset by the server after it closed
            loris_closed = True
            break
        if not chunk:
            loris_closed = True
            break
        loris_received += chunk
    loris.close()
    assert loris_closed
    assert time.monotonic() - started < 4
    assert loris_received.startswith(b"HTTP/1.1 408")

    for sock in stalled:
        received, closed = _read_all(sock, timeout=3)
        assert closed, "the server left a stalled upload open"
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), received
        assert b"x-request-id:" in head.lower()
        assert json.loads(body) == {
            "errors": [
                {
                    "message": "The request body did not arrive within 1 s",
                    "extensions": {"code": "REQUEST_TIMEOUT"},
                }
            ]
        }
        sock.close()
    # A refusal sent before the body was read closes the connection too.
    refused = socket.create_connection(("127.0.0.1", server.port))
    refused.sendall(b"POST /healthz HTTP/1.1\r\nHost: test\r\nContent-Length: 99\r\n\r\n{")
    received, closed = _read_all(refused, timeout=3)
    refused.close()
    assert received.startswith(b"HTTP/1.1 405")
    assert closed
    # A body that arrives in time is served as usual.
    ok = httpx.post(f"{server.base_url}/graphql", json={"query": "{ __typename }"})
    assert ok.json() == {"data": {"__typename": "Query"}}


async def test_an_export_that_fails_half_way_breaks_the_transfer_and_logs_its_correlation_id(
    start_server: StartServer, mongo_uri: str, database: tuple[str, Any]
) -> None:
    db_name, db = database
    server, key = _start(start_server, mongo_uri, db_name, LOG_FORMAT="json")
    await _poison(db, good=300)
    received: list[bytes] = []

    async def download(http: httpx.AsyncClient, fmt: str) -> str:
        async with http.stream(
            "GET", f"/export?format={fmt}", headers={"X-API-Key": key}
        ) as response:
            assert response.status_code == 200
            request_ids.append(response.headers["X-Request-Id"])
            async for chunk in response.aiter_bytes():
                received.append(chunk)
        return "complete"

    request_ids: list[str] = []
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
        for fmt in ("csv", "ndjson"):
            with pytest.raises(httpx.RemoteProtocolError):
                await download(http, fmt)
            request_id = request_ids[-1]
            await asyncio.sleep(0.2)
            [failure] = [
                line
                for line in _json_lines(server)
                if line["level"] == "ERROR" and line.get("request_id") == request_id
            ]
            assert failure["logger"] == "profile360.errors"
            assert re.fullmatch(r"[0-9a-f]{16}", failure["correlation_id"])
            assert "not a time" not in failure["message"]
            [access] = [
                line
                for line in _json_lines(server)
                if line["logger"] == "profile360.requests" and line["request_id"] == request_id
            ]
            assert access["outcome"] == "aborted"
    assert sum(map(len, received)) > 1000  # rows were on their way when it failed


async def test_an_unexpected_error_is_logged_with_the_request_id_and_the_correlation_id(
    start_server: StartServer, mongo_uri: str, database: tuple[str, Any]
) -> None:
    db_name, db = database
    server, key = _start(start_server, mongo_uri, db_name, LOG_FORMAT="json")
    poisoned = await _poison(db, good=0)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.post(
            "/graphql",
            json={"query": f'{{ profile(id: "{profile_gid(poisoned)}") {{ id }} }}'},
            headers={"X-API-Key": key, "X-Request-Id": "support-ticket-42"},
        )
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "INTERNAL"
    correlation = error["extensions"]["correlationId"]
    assert response.headers["X-Request-Id"] == "support-ticket-42"
    _wait_for(server, '"request_id": "support-ticket-42"')
    [logged] = [line for line in _json_lines(server) if line["level"] == "ERROR"]
    assert (logged["request_id"], logged["correlation_id"]) == ("support-ticket-42", correlation)
    assert "Traceback" in logged["exception"]  # the cause, in the same one line


def test_with_the_embedded_engine_and_json_logs_the_start_up_banner_is_json_too(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server({"DATA_DIR": str(tmp_path / "data"), "LOG_FORMAT": "json"})
    key = (tmp_path / "data" / "dev-api-key").read_text().strip()
    served = httpx.post(
        f"{server.base_url}/graphql",
        json={"query": "{ profiles(first: 1) { edges { cursor } } }"},
        headers={"X-API-Key": key},
    )
    assert served.json() == {"data": {"profiles": {"edges": []}}}
    assert server.stop() == 0
    lines = _json_lines(server)
    assert all(ISO_UTC.fullmatch(line["time"]) for line in lines)
    [banner] = [line for line in lines if line["message"].startswith("profile360 is up")]
    assert banner["dev_key"] == key
    assert banner["url"] == f"{server.base_url}/graphql"
