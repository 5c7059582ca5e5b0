"""`make bench`, import part: POST /import of BENCH_IMPORT_ROWS awkward CSV rows (see
bench/import_data.py), then the same file again, against the API in its own process; rows/s,
database commands per row and API CPU per row go into bench/results.md (its "Bulk import"
section, replaced on each run).

10,000 rows by default (BENCH_IMPORT_ROWS to change it). On the embedded engine every write
scans its collection a few times, so the first run there takes about a quarter of an hour.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.__main__ import ROOT, _cpu_seconds, _engine, _graphql_commands, _start, _stop
from bench.import_data import DEFINITIONS, awkward_csv

RESULTS = ROOT / "bench" / "results.md"
ROWS = int(os.environ.get("BENCH_IMPORT_ROWS") or "10000")
MARK = "## Bulk import"
JOB = """query J($id: ID!) { importJob(id: $id) { status rowsRead written unchanged refused } }"""


@dataclass
class Run:
    name: str
    seconds: float
    commands: float
    cpu: float
    counts: dict[str, int]


async def _import(client: httpx.AsyncClient, pid: int, body: bytes, name: str) -> Run:
    commands = await _graphql_commands(client)
    cpu = _cpu_seconds(pid)
    started = time.perf_counter()
    response = await client.post("/import?format=csv", content=body)
    response.raise_for_status()
    job_id = response.json()["jobId"]
    polls = 0
    while True:
        await asyncio.sleep(1)
        polls += 1
        reply = await client.post("/graphql", json={"query": JOB, "variables": {"id": job_id}})
        job = reply.json()["data"]["importJob"]
        if job["status"] != "RUNNING":
            break
    seconds = time.perf_counter() - started
    used = _cpu_seconds(pid) - cpu
    # Each poll is one read of the job: not the import's own work.
    spent = await _graphql_commands(client) - commands - polls
    return Run(name, seconds, spent, used, job)


async def _measure(url: str, pid: int, key: str) -> list[Run]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, timeout=600, headers=headers) as client:
        for name, type_ in DEFINITIONS:
            query = (
                "mutation D($n: String!, $t: PropertyType!) {"
                " defineProperty(input: {name: $n, type: $t}) { propertyDefinition { name } } }"
            )
            await client.post(
                "/graphql", json={"query": query, "variables": {"n": name, "t": type_}}
            )
        body, _ = awkward_csv(ROWS)
        return [
            await _import(client, pid, body, "first run (new profiles)"),
            await _import(client, pid, body, "second run (every row unchanged)"),
        ]


def _section(runs: list[Run], engine: str) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        MARK,
        "",
        f"Written by `python -m bench.imports` on {stamp}: "
        f"POST /import of {ROWS} CSV rows (bench/import_data.py: 20% refused, 5% duplicates, "
        f"quotes, CR/LF, unicode), {engine}. Commands exclude the client's job polls.",
        "",
        "| run | rows/s | db commands/row | API CPU ms/row "
        "| written / unchanged / refused | time s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        c = run.counts
        lines.append(
            f"| {run.name} | {ROWS / run.seconds:.0f} | {run.commands / ROWS:.3f} "
            f"| {run.cpu * 1000 / ROWS:.2f} | {c['written']} / {c['unchanged']} / {c['refused']} "
            f"| {run.seconds:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _write(section: str) -> None:
    """Replace the import section (up to the next section), or add it at the end."""
    text = RESULTS.read_text() if RESULTS.exists() else "# profile360 benchmark\n"
    head, found, rest = text.partition(MARK)
    _, heading, tail = rest.partition("\n## ") if found else ("", "", "")
    after = "\n" + heading.lstrip("\n") + tail if heading else ""
    RESULTS.write_text(head.rstrip("\n") + "\n\n" + section + after)


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="p360-bench-import-"))
    key = f"p360_{secrets.token_urlsafe(24)}"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        uri, engine = _engine(workdir, processes)
        env = {
            "MONGODB_URI": uri,
            "MONGODB_DB": f"bench_import_{secrets.token_hex(3)}",
            "DATA_DIR": str(workdir),
            "BOOTSTRAP_TENANT": "bench",
            "BOOTSTRAP_API_KEY": key,
            "APP_ENV": "production",
            "RATE_LIMIT_ADMIN": "0",
        }
        api, url = _start("api", "server", env, workdir / "api.log")
        processes.append(api)
        runs = asyncio.run(_measure(url, api.pid, key))
        section = _section(runs, engine)
        _write(section)
        print(section)
    finally:
        _stop(processes)


if __name__ == "__main__":
    main()
