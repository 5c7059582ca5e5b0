"""`python -m server import`: killed with SIGKILL half-way, run again, it resumes; the result
equals a clean run, `python -m server check` is clean, and a re-run writes nothing.

IMPORT_E2E_ROWS sets the file's size (default 400 rows; the acceptance figure is 10,000, which
would take hours on the embedded engine: see README, Bulk import)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from bench.import_data import DEFINITIONS, awkward_csv
from domain.definitions import Definitions
from domain.properties import PropertyType
from server.app import SystemClock
from store.client import open_client
from store.mongo import MongoProfileStore
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e
ROWS = int(os.environ.get("IMPORT_E2E_ROWS", "400"))
TENANT = "acme"
_SUMMARY = re.compile(r"rows read (\d+): written (\d+), unchanged (\d+); refused (\d+)")


def _env(uri: str, db: str) -> dict[str, str]:
    return {"MONGODB_URI": uri, "MONGODB_DB": db, "PATH": "/usr/bin:/bin"}


def _cli(uri: str, db: str, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=ROOT,
        env=_env(uri, db),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _define(uri: str, db: str) -> None:
    async def define() -> None:
        client = open_client(uri)
        definitions = Definitions(MongoProfileStore(client[db]), SystemClock())
        for name, type_ in DEFINITIONS:
            await definitions.define(TENANT, name, PropertyType(type_), "")
        await client.close()

    asyncio.run(define())


def _people(uri: str, db: str) -> list[Any]:
    """Every active profile as what it holds (ids aside): userId, keys, values."""
    with MongoClient[dict[str, Any]](uri, tz_aware=True) as client:
        database = client[db]
        keys: dict[str, list[str]] = {}
        for doc in database["identities"].find({"tenant": TENANT}):
            keys.setdefault(doc["profileId"], []).append(f"{doc['type']}|{doc['value']}")
        people = [
            (doc.get("userId"), sorted(keys.get(doc["_id"], [])), sorted(doc["props"].items()))
            for doc in database["profiles"].find({"tenant": TENANT, "state": None})
        ]
    return sorted(people, key=repr)


def _collections(uri: str, db: str) -> dict[str, list[Any]]:
    with MongoClient[dict[str, Any]](uri, tz_aware=True) as client:
        database = client[db]
        return {
            name: list(database[name].find().sort("_id", 1))
            for name in ("profiles", "identities", "property_definitions")
        }


def _counts(output: str) -> tuple[int, ...]:
    found = _SUMMARY.findall(output)
    assert found, output
    return tuple(int(n) for n in found[-1])


@pytest.fixture
def csv_file(tmp_path: Path) -> tuple[Path, Any]:
    body, expected = awkward_csv(ROWS)
    path = tmp_path / "customers.csv"
    path.write_bytes(body)
    return path, expected


def test_an_import_killed_half_way_resumes_to_the_result_of_a_clean_run(
    mongo_uri: str, csv_file: tuple[Path, Any]
) -> None:
    path, expected = csv_file
    started = time.monotonic()
    clean_db, crash_db = f"imp_clean_{os.getpid()}", f"imp_crash_{os.getpid()}"
    for db in (clean_db, crash_db):
        _define(mongo_uri, db)

    clean = _cli(mongo_uri, clean_db, "import", str(path), "--tenant", TENANT, "--batch", "50")
    assert clean.returncode == 0, clean.stderr
    read, written, unchanged, refused = _counts(clean.stdout)
    assert (read, refused) == (ROWS, len(expected.refused))
    assert written + unchanged == read  # a refused row is one that changed nothing
    # The last progress line (stderr) shows the summary's figures.
    assert _counts(clean.stderr) == (read, written, unchanged, refused)
    with MongoClient[dict[str, Any]](mongo_uri) as client:
        job = client[clean_db]["import_jobs"].find_one({})
        assert job is not None
        assert tuple(job["counts"][k] for k in ("read", "written", "unchanged", "refused")) == (
            read,
            written,
            unchanged,
            refused,
        )
        rows = {d["row"]: d["code"] for d in client[clean_db]["import_refusals"].find({})}
    assert rows == expected.refused

    crashing = subprocess.Popen(
        [sys.executable, "-m", "server", "import", str(path), "--tenant", TENANT, "--batch", "50"],
        cwd=ROOT,
        env=_env(mongo_uri, crash_db),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with MongoClient[dict[str, Any]](mongo_uri) as client:
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            job = client[crash_db]["import_jobs"].find_one({})
            if job is not None and job["checkpoint"]["row"] >= ROWS // 2:
                break
            assert crashing.poll() is None, "the import ended before it could be killed"
            time.sleep(0.05)
    crashing.send_signal(signal.SIGKILL)
    crashing.wait()

    resumed = _cli(mongo_uri, crash_db, "import", str(path), "--tenant", TENANT, "--batch", "50")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming import job" in resumed.stderr
    assert _counts(resumed.stdout)[0] == ROWS
    check = _cli(mongo_uri, crash_db, "check", "--tenant", TENANT)
    assert check.returncode == 0, check.stdout + check.stderr
    assert _people(mongo_uri, crash_db) == _people(mongo_uri, clean_db)

    before = _collections(mongo_uri, clean_db)
    again = _cli(mongo_uri, clean_db, "import", str(path), "--tenant", TENANT)
    assert again.returncode == 0, again.stderr
    assert _counts(again.stdout) == (ROWS, 0, ROWS, len(expected.refused))
    assert _collections(mongo_uri, clean_db) == before
    print(f"{ROWS} rows, clean + killed + resumed + re-run: {time.monotonic() - started:.0f} s")
