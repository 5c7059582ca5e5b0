"""Start-up as an operator meets it: `python -m server` checks settings, takes DATA_DIR, reaches
the database, binds the port and only then says it is up; each failure is one line and a
non-zero exit, and the embedded engine is one OS user's alone."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from server.config import VARIABLES
from tests.e2e.conftest import ROOT, ServerProcess, StartServer, free_port
from tests.integration.queries import CAPTURE, IDENTIFY, capture_input, identify_input

pytestmark = pytest.mark.e2e


def _run(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m server` that is expected to stop by itself."""
    full_env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    full_env.update({"HOST": "127.0.0.1", "PORT": str(free_port()), **env})
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr + done.stdout
    assert "is up" not in done.stdout
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line


def _snapshot(directory: Path) -> dict[str, tuple[int, int, int]]:
    return {
        p.name: (p.stat().st_mtime_ns, p.stat().st_size, p.stat().st_mode)
        for p in sorted(directory.iterdir())
    }


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("APP_ENV", "prod", "one of development, production"),
        ("PORT", "abc", "a whole number from 1 to 65535"),
        ("WORKERS", "0", "a whole number from 1 to 64"),
        ("GRAPHIQL_ENABLED", "maybe", "one of 1, 0, true, false"),
        ("API_KEY_CACHE_SECONDS", "soon", "a number of seconds"),
        ("MONGODB_URI", "localhost:27017", "a mongodb:// or mongodb+srv:// address"),
    ],
)
def test_a_bad_setting_exits_with_one_line_naming_the_variable_and_what_it_accepts(
    tmp_path: Path, variable: str, value: str, accepted: str
) -> None:
    data_dir = tmp_path / "data"
    done = _run({"DATA_DIR": str(data_dir), variable: value})
    assert done.returncode == 2
    line = _one_error_line(done)
    assert line.startswith(f"error: {variable}=")
    assert accepted in line
    assert not data_dir.exists()  # nothing was started or written


def test_a_secret_setting_is_named_but_never_echoed(tmp_path: Path) -> None:
    done = _run({"DATA_DIR": str(tmp_path), "MONGODB_URI": "http://user:hunter2@db"})
    assert done.returncode == 2
    line = _one_error_line(done)
    assert "MONGODB_URI" in line
    assert "hunter2" not in line


def test_help_lists_every_environment_variable_with_its_default() -> None:
    done = _run({}, "--help")
    assert done.returncode == 0
    for variable in VARIABLES:
        line = next(x for x in done.stdout.splitlines() if x.split()[:1] == [variable.name])
        assert variable.default in line


def test_serve_takes_host_port_and_workers_and_refuses_a_bad_one() -> None:
    done = _run({}, "serve", "--workers", "many")
    assert done.returncode == 2
    assert "--workers" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_banner_comes_only_once_the_port_answers(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    env.update({"DATA_DIR": str(tmp_path / "data"), "HOST": "127.0.0.1", "PORT": str(port)})
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "server"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 60
        while "is up" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        # No waiting and no retry: by the time the banner is out, requests are served.
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        output = log.read_text()
        assert output.index("embedded engine") < output.index("is up") < output.index("p360_")
    finally:
        process.send_signal(2)
        process.wait(30)
    assert process.returncode == 0
    assert not (tmp_path / "data" / "engine.uri").exists()


def test_a_second_server_on_the_same_data_dir_names_the_holder_and_touches_nothing(
    start_server: StartServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = start_server({"DATA_DIR": str(data_dir)})
    before = _snapshot(data_dir)
    started = time.monotonic()
    done = _run({"DATA_DIR": str(data_dir)})
    assert done.returncode == 1
    line = _one_error_line(done)
    assert f"process {first.process.pid}" in line
    assert str(data_dir) in line
    assert time.monotonic() - started < 30
    time.sleep(0.5)  # the first server keeps its files, engine.uri included
    after = _snapshot(data_dir)
    assert after.keys() == before.keys()
    assert after["engine.uri"] == before["engine.uri"]
    assert _snapshot(data_dir)["dev-api-key"] == before["dev-api-key"]
    assert _snapshot(data_dir)["server.lock"] == before["server.lock"]
    assert httpx.get(f"{first.base_url}/readyz").status_code == 200


def test_an_unreachable_database_is_one_line_naming_host_and_variable_within_the_timeout(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    done = _run(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "MONGODB_URI": "mongodb://127.0.0.1:1/?directConnection=true",
            "MONGODB_TIMEOUT_SECONDS": "1",
        }
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 1
    line = _one_error_line(done)
    assert "127.0.0.1:1" in line
    assert "MONGODB_URI" in line
    assert "Application startup failed" not in done.stderr
    assert elapsed < 1 + 10  # the timeout, plus starting Python on a busy machine


def test_a_taken_port_is_one_line_with_no_banner_and_no_new_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run({"DATA_DIR": str(data_dir), "PORT": str(port)})
    assert done.returncode == 1
    line = _one_error_line(done)
    assert f"127.0.0.1:{port}" in line
    assert "already in use" in line
    assert "p360_" not in done.stdout + done.stderr
    assert not (data_dir / "dev-api-key").exists()
    assert not (data_dir / "engine.uri").exists()  # the engine it started is stopped again


def test_the_embedded_engine_files_are_this_users_only(
    start_server: StartServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    start_server({"DATA_DIR": str(data_dir)})
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    names = {p.name for p in data_dir.iterdir()}
    assert {"profile360.sqlite", "engine.uri", "dev-api-key", "server.lock"} <= names
    for path in data_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_a_client_without_the_engines_secret_is_refused(
    start_server: StartServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    start_server({"DATA_DIR": str(data_dir)})
    uri = (data_dir / "engine.uri").read_text().strip()
    assert uri.startswith("mongodb://profile360:")
    address = uri.split("@", 1)[1].split("/", 1)[0]
    outsider: MongoClient[dict[str, Any]] = MongoClient(
        f"mongodb://{address}/?directConnection=true", serverSelectionTimeoutMS=5000
    )
    guesser: MongoClient[dict[str, Any]] = MongoClient(
        f"mongodb://profile360:guess@{address}/?directConnection=true&authMechanism=SCRAM-SHA-256",
        serverSelectionTimeoutMS=5000,
    )
    owner: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        with pytest.raises(OperationFailure, match="Authentication required"):
            outsider["profile360"]["api_keys"].insert_one({"_id": "x", "role": "admin"})
        with pytest.raises(OperationFailure, match="Authentication required"):
            outsider["profile360"]["api_keys"].find_one()
        with pytest.raises(OperationFailure, match="Authentication failed"):
            guesser["profile360"]["api_keys"].find_one()
        assert owner["profile360"]["api_keys"].find_one({"name": "development"}) is not None
        assert owner["profile360"]["api_keys"].count_documents({"_id": "x"}) == 0
    finally:
        for client in (outsider, guesser, owner):
            client.close()


def test_production_runs_on_the_embedded_engine_only_when_told_to(
    start_server: StartServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    done = _run({"DATA_DIR": str(data_dir), "APP_ENV": "production"})
    assert done.returncode == 1
    line = _one_error_line(done)
    assert "MONGODB_URI" in line
    assert "EMBEDDED_ENGINE_IN_PRODUCTION=1" in line
    assert not data_dir.exists()

    server = start_server(
        {"DATA_DIR": str(data_dir), "APP_ENV": "production", "EMBEDDED_ENGINE_IN_PRODUCTION": "1"}
    )
    assert "is up" in server.output
    assert "p360_" not in server.output  # production: no development key
    assert not (data_dir / "dev-api-key").exists()


def _wait_for_banner(server: ServerProcess) -> None:
    deadline = time.monotonic() + 60
    while "is up" not in server.output and time.monotonic() < deadline:
        time.sleep(0.1)


async def test_two_workers_both_serve_and_a_burst_of_writes_keeps_every_invariant(
    start_server: StartServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server = start_server({"DATA_DIR": str(data_dir), "WORKERS": "2"})
    _wait_for_banner(server)  # one worker may answer before the other is ready
    assert "is up (2 workers)" in server.output
    key = next(w for w in server.output.split() if w.startswith("p360_"))

    pids: set[int] = set()
    deadline = time.monotonic() + 30
    while len(pids) < 2 and time.monotonic() < deadline:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as fresh:
            answers = await asyncio.gather(*(fresh.get("/healthz") for _ in range(20)))
        pids |= {a.json()["pid"] for a in answers}
    assert len(pids) == 2, pids
    assert server.process.pid not in pids  # the supervisor only supervises

    headers = {"Authorization": f"Bearer {key}"}
    operations: list[tuple[str, dict[str, Any]]] = []
    for s in range(40):
        operations.append((CAPTURE, capture_input("WEB", f"v{s}", {"tags": [f"t{s}"]})))
        operations.append((IDENTIFY, identify_input("WEB", f"v{s}", f"user-{s % 5}")))
    async with httpx.AsyncClient(base_url=server.base_url, timeout=120, headers=headers) as http:
        for query, variables in operations[::2]:  # every visitor exists before the burst
            assert await http.post("/graphql", json={"query": query, "variables": variables})
        results = await asyncio.gather(
            *(http.post("/graphql", json={"query": q, "variables": v}) for q, v in operations)
        )
    for result in results:
        assert result.status_code == 200
        for error in result.json().get("errors") or []:
            assert error["extensions"]["code"] == "MERGE_CONFLICT", error

    check = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "server", "check"],
        cwd=ROOT,
        env={"DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert server.stop() == 0
    assert not (data_dir / "engine.uri").exists()


def _children(pid: int) -> dict[int, str]:
    """The processes whose parent is pid, with their command lines."""
    found = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                cmdline = (stat_file.parent / "cmdline").read_bytes()
                found[int(stat_file.parent.name)] = cmdline.replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
    return found


def test_the_engine_runs_in_a_process_of_its_own_and_ends_when_the_server_is_killed(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server({"DATA_DIR": str(tmp_path / "data")})
    [engine] = [
        pid for pid, cmd in _children(server.process.pid).items() if "store.embedded" in cmd
    ]
    server.process.kill()  # no clean-up of its own: the engine notices its parent is gone
    server.process.wait()
    deadline = time.monotonic() + 15
    while Path(f"/proc/{engine}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    stat_file = Path(f"/proc/{engine}/stat")
    assert not stat_file.exists() or stat_file.read_text().split()[2] == "Z", "engine still runs"
