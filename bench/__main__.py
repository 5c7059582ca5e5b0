"""`make bench`: where the time goes, per operation.

Starts the embedded engine (SQLite, its own process) unless MONGODB_URI is set, the GraphQL API
(`python -m server`) and the plain-JSON baseline (`python -m bench.plain`) as separate
processes, drives both from this process with concurrent clients, and writes bench/results.md:
per operation, database commands, API-process CPU time, throughput and p50/p99 latency, and
the GraphQL/plain CPU ratio. The run rewrites the top of results.md and keeps its `## `
sections.
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.md"
OPS = int(os.environ.get("BENCH_OPS", "200"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
TICKS = os.sysconf("SC_CLK_TCK")

CAPTURE = """mutation C($input: CapturePropertiesInput!) {
  captureProperties(input: $input) { created profile { id userId } } }"""
IDENTIFY = """mutation I($input: IdentifyInput!) {
  identify(input: $input) { outcome mergedProfileId profile { id userId properties } } }"""
TRACK = """mutation T($input: TrackEventInput!) {
  trackEvent(input: $input) { counted profile { id } } }"""
PROFILE = """query P($id: ID!) { profile(id: $id) {
  id userId firstName lastName country tags properties
  events { name count firstSeen lastSeen } contactCard { displayName phone email complete } } }"""
PAGE = """query Page { profiles(first: 50) { edges { node {
  id userId firstName lastName country tags properties
  identities { type value channels }
  events { name count firstSeen lastSeen } contactCard { displayName phone email complete }
} } pageInfo { hasNextPage endCursor } } }"""
# The same page with every nested field that reads the database (issue 10): each loads in one
# batched query for the whole page.
PAGE_ALL = """query PageAll { profiles(first: 50) { edges { node {
  id userId firstName lastName country tags properties
  identities { type value channels }
  events { name count firstSeen lastSeen } contactCard { displayName phone email complete }
  mergeHistory { sourceId at trigger actor }
  activity(first: 5) { edges { cursor node {
    __typename
    ... on Event { name occurredAt }
    ... on Conversation { id kind status subject startedAt }
  } } pageInfo { hasNextPage endCursor } }
  eventHistory(first: 5) { edges { cursor node { name occurredAt eventId } }
    pageInfo { hasNextPage endCursor } }
} } pageInfo { hasNextPage endCursor } } }"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    counters: Callable[[httpx.AsyncClient], Awaitable[float]]


@dataclass
class Figures:
    operation: str
    commands: float
    cpu_ms: float
    throughput: float
    p50: float
    p99: float


async def _graphql_commands(client: httpx.AsyncClient) -> float:
    text = (await client.get("/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("profile360_db_commands_total{")
    )


async def _plain_commands(client: httpx.AsyncClient) -> float:
    return float((await client.get("/counters")).json()["commands"])


def _start(
    name: str, module: str, env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    full = {**os.environ, **env, "PORT": str(port), "HOST": "127.0.0.1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", module], cwd=ROOT, env=full, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited early; see {log}")
        try:
            httpx.get(f"{url}/healthz" if module == "server" else f"{url}/counters", timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{name} did not start; see {log}")


class Driver:
    """Sends operations to one server and measures them."""

    def __init__(self, server: Server, key: str) -> None:
        self.server = server
        self.client = httpx.AsyncClient(
            base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {key}"}
        )
        self.gate = asyncio.Semaphore(CONCURRENCY)

    async def graphql(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}
        )
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        return body["data"]

    async def measure(self, operation: str, calls: list[Callable[[], Awaitable[Any]]]) -> Figures:
        latencies: list[float] = []

        async def timed(call: Callable[[], Awaitable[Any]]) -> None:
            async with self.gate:
                started = time.perf_counter()
                await call()
                latencies.append(time.perf_counter() - started)

        commands_before = await self.server.counters(self.client)
        cpu_before = _cpu_seconds(self.server.process.pid)
        started = time.perf_counter()
        await asyncio.gather(*(timed(c) for c in calls))
        elapsed = time.perf_counter() - started
        cpu = _cpu_seconds(self.server.process.pid) - cpu_before
        commands = await self.server.counters(self.client) - commands_before
        latencies.sort()
        return Figures(
            operation=operation,
            commands=commands / len(calls),
            cpu_ms=cpu * 1000 / len(calls),
            throughput=len(calls) / elapsed,
            p50=statistics.median(latencies) * 1000,
            p99=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        )


class GraphQLCalls:
    """The benchmark's operations as GraphQL requests."""

    def __init__(self, driver: Driver) -> None:
        self._d = driver

    async def capture(self, channel: str, sender: str, props: dict[str, Any]) -> Any:
        data = await self._d.graphql(
            CAPTURE, {"input": {"channel": channel, "senderId": sender, "properties": props}}
        )
        return data["captureProperties"]["profile"]["id"]

    async def identify(self, channel: str, sender: str, user_id: str) -> Any:
        return await self._d.graphql(
            IDENTIFY, {"input": {"channel": channel, "senderId": sender, "userId": user_id}}
        )

    async def track(self, sender: str, event_id: str) -> Any:
        return await self._d.graphql(
            TRACK,
            {
                "input": {
                    "channel": "WHATSAPP",
                    "senderId": sender,
                    "name": "purchase",
                    "eventId": event_id,
                }
            },
        )

    async def profile(self, profile_id: str) -> Any:
        return await self._d.graphql(PROFILE, {"id": profile_id})

    async def page(self) -> Any:
        return await self._d.graphql(PAGE)

    async def page_all(self) -> Any:
        return await self._d.graphql(PAGE_ALL)


class PlainCalls:
    """The same operations against the plain JSON baseline."""

    def __init__(self, driver: Driver) -> None:
        self._c = driver.client

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = await self._c.post(path, json=body)
        response.raise_for_status()
        return response.json()

    async def capture(self, channel: str, sender: str, props: dict[str, Any]) -> Any:
        body = {"channel": channel, "senderId": sender, "properties": props}
        return (await self._post("/capture", body))["profile"]["id"]

    async def identify(self, channel: str, sender: str, user_id: str) -> Any:
        return await self._post(
            "/identify", {"channel": channel, "senderId": sender, "userId": user_id}
        )

    async def track(self, sender: str, event_id: str) -> Any:
        return await self._post(
            "/track",
            {"channel": "WHATSAPP", "senderId": sender, "name": "purchase", "eventId": event_id},
        )

    async def profile(self, profile_id: str) -> Any:
        return (await self._c.get(f"/profile/{profile_id}")).json()

    async def page(self) -> Any:
        return (await self._c.get("/profiles?first=50")).json()

    async def page_all(self) -> Any:
        return (await self._c.get("/profiles?first=50&nested=all")).json()


async def _bench(d: Driver, calls: GraphQLCalls | PlainCalls, tag: str) -> list[Figures]:
    """Seed, then measure each operation: the same scenario whatever the transport. `tag`
    keeps the two runs' senders apart (distinct phone prefixes and ids)."""
    n = OPS
    phone = "9198765" if tag == "graphql" else "9197765"
    print(f"{tag}: seeding {n * 4} senders")
    for i in range(n):
        await calls.capture("WHATSAPP", f"{phone}{i:05}", {"gender": "f"})
        await calls.capture("WEB", f"{tag}-idn-{i}", {})
        await calls.identify("API", f"{tag}-crm-{i}", f"{tag}-merge-user-{i}")
        await calls.capture("WEB", f"{tag}-mrg-{i}", {"tags": [f"t{i}"]})
    ids = [await calls.capture("WHATSAPP", f"{phone}{i:05}", {}) for i in range(n)]
    await calls.page()  # warm the caches
    await calls.page_all()
    print(f"{tag}: measuring")
    return [
        await d.measure(
            "captureProperties (known sender)",
            [
                partial(calls.capture, "WHATSAPP", f"{phone}{i:05}", {"gender": "m"})
                for i in range(n)
            ],
        ),
        await d.measure(
            "identify IDENTIFIED",
            [
                partial(calls.identify, "WEB", f"{tag}-idn-{i}", f"{tag}-new-user-{i}")
                for i in range(n)
            ],
        ),
        await d.measure(
            "identify MERGED",
            [
                partial(calls.identify, "WEB", f"{tag}-mrg-{i}", f"{tag}-merge-user-{i}")
                for i in range(n)
            ],
        ),
        await d.measure(
            "trackEvent", [partial(calls.track, f"{phone}{i:05}", f"{tag}-o-{i}") for i in range(n)]
        ),
        await d.measure("profile by id", [partial(calls.profile, ids[i]) for i in range(n)]),
        await d.measure(
            "profiles page of 50, nested", [calls.page for _ in range(max(20, n // 4))]
        ),
        await d.measure(
            "profiles page of 50, all nested (+ activity, eventHistory, mergeHistory)",
            [calls.page_all for _ in range(max(20, n // 4))],
        ),
    ]


def _write(graphql: list[Figures], plain: list[Figures], engine: str, seconds: float) -> None:
    lines = [
        "# profile360 benchmark",
        "",
        f"Written by `make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
        f"at commit {_commit()}: "
        f"{OPS} operations of each kind ({CONCURRENCY} concurrent clients in a separate "
        f"process), {engine}, Python {platform.python_version()}, {os.cpu_count()} cores. "
        f"Whole run: {seconds:.0f} s.",
        "",
        "CPU is the API process's own (user + system, from /proc), so the database engine's "
        "work is not in it. Commands are counted by pymongo command monitoring in the API "
        "process. Latency is as seen by the client, including the engine.",
        "",
        "| operation | db commands/op | API CPU ms/op (GraphQL) | API CPU ms/op (plain) "
        "| CPU ratio GraphQL/plain | throughput ops/s (GraphQL / plain) "
        "| p50 ms (GraphQL / plain) | p99 ms (GraphQL / plain) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for g, p in zip(graphql, plain, strict=True):
        ratio = g.cpu_ms / p.cpu_ms if p.cpu_ms else float("nan")
        lines.append(
            f"| {g.operation} | {g.commands:.1f} (plain {p.commands:.1f}) | {g.cpu_ms:.2f} "
            f"| {p.cpu_ms:.2f} | {ratio:.2f} | {g.throughput:.0f} / {p.throughput:.0f} "
            f"| {g.p50:.1f} / {p.p50:.1f} | {g.p99:.1f} / {p.p99:.1f} |"
        )
    lines += [
        "",
        "Targets: API CPU per `captureProperties` <= 3 ms, per page of 50 <= 25 ms, "
        "GraphQL/plain CPU ratio <= 2.5.",
        "",
    ]
    _save("\n".join(lines))


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.strip() + (" (with uncommitted changes)" if dirty else "")


def _save(table: str) -> None:
    """Rewrite the top of results.md and keep its `## ` sections (notes, and the driver
    comparison made before the switch to PyMongo's async API)."""
    old = RESULTS.read_text() if RESULTS.exists() else ""
    _, *sections = re.split(r"(?m)^(?=## )", old)
    parts = [table.rstrip("\n") + "\n", *(section.rstrip("\n") + "\n" for section in sections)]
    RESULTS.write_text("\n".join(parts))


async def _measure(api: Server, plain: Server, key: str) -> tuple[list[Figures], list[Figures]]:
    graphql_driver, plain_driver = Driver(api, key), Driver(plain, key)
    try:
        return (
            await _bench(graphql_driver, GraphQLCalls(graphql_driver), "graphql"),
            await _bench(plain_driver, PlainCalls(plain_driver), "plain"),
        )
    finally:
        await graphql_driver.client.aclose()
        await plain_driver.client.aclose()


def _engine(workdir: Path, processes: list[subprocess.Popen[bytes]]) -> tuple[str, str]:
    """The database to measure against and how to name it: MONGODB_URI when set, otherwise
    the embedded engine started in a process of its own (added to `processes`)."""
    uri = os.environ.get("MONGODB_URI")
    if uri:
        return uri, "MongoDB at MONGODB_URI"
    engine_process = subprocess.Popen(
        [sys.executable, "-m", "store.embedded", "--path", str(workdir / "bench.sqlite")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    processes.append(engine_process)
    if engine_process.stdout is None:  # pragma: no cover - PIPE was asked for
        raise SystemExit("the engine gave no address")
    uri = engine_process.stdout.readline().decode().strip()
    return uri, "the embedded engine (mongoeco on SQLite) in its own process"


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Stop what a bench started, newest first; kill what does not stop within 20 s."""
    for process in reversed(processes):
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="p360-bench-"))
    key = f"p360_{secrets.token_urlsafe(24)}"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        uri, engine = _engine(workdir, processes)
        env = {
            "MONGODB_URI": uri,
            "BOOTSTRAP_TENANT": "bench",
            "BOOTSTRAP_API_KEY": key,
            "APP_ENV": "production",
            "RATE_LIMIT_SDK": "0",
            "RATE_LIMIT_ADMIN": "0",
            "RATE_LIMIT_VIEWER": "0",
            "RATE_LIMIT_AGENT": "0",
        }
        database = f"bench_{secrets.token_hex(3)}"
        api, api_url = _start(
            "api", "server", {**env, "MONGODB_DB": database + "_gql"}, workdir / "api.log"
        )
        processes.append(api)
        plain, plain_url = _start(
            "plain",
            "bench.plain",
            {**env, "MONGODB_DB": database + "_plain"},
            workdir / "plain.log",
        )
        processes.append(plain)
        graphql, baseline = asyncio.run(
            _measure(
                Server("graphql", api, api_url, _graphql_commands),
                Server("plain", plain, plain_url, _plain_commands),
                key,
            )
        )
        _write(graphql, baseline, engine, time.perf_counter() - started)
        print(RESULTS.read_text())
    finally:
        _stop(processes)


if __name__ == "__main__":
    main()
