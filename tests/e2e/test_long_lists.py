"""Lists of hundreds of values in one condition, on the embedded engine's SQLite store (whose
expressions nest at most 1,000 deep, so a `$in` of 500 values or more is refused there): long
lists are chunked (store.lists). An import batch that names more keys than that, and the
integrity check over a tenant of more profiles than that, run through the command line on a
DATA_DIR of their own, as a user's would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from store.embedded import EmbeddedMongo
from store.lists import IN_CHUNK, none_of, one_of
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e
PEOPLE = 520


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> Iterator[str]:
    engine = EmbeddedMongo(tmp_path / "lists.sqlite")
    yield engine.start()
    engine.stop()


def test_one_of_and_none_of_match_as_plain_lists_do_past_the_engine_limit(sqlite_uri: str) -> None:
    with MongoClient[dict[str, Any]](sqlite_uri) as client:
        scratch = client["lists"]["scratch"]
        scratch.insert_many([{"_id": f"d{i:04d}"} for i in range(650)])
        chosen = [f"d{i:04d}" for i in range(0, 1200, 2)]  # 600 values, 325 of them stored

        assert len(chosen) > 2 * IN_CHUNK
        found = {doc["_id"] for doc in scratch.find(one_of("_id", chosen))}
        others = {doc["_id"] for doc in scratch.find(none_of("_id", chosen))}

    assert found == {f"d{i:04d}" for i in range(0, 650, 2)}
    assert others == {f"d{i:04d}" for i in range(1, 650, 2)}
    assert one_of("_id", ["a"]) == {"_id": {"$in": ["a"]}}  # short lists stay plain


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=ROOT,
        env={"DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_a_batch_of_more_keys_than_one_list_takes_imports_and_checks_clean(
    tmp_path: Path,
) -> None:
    rows = "".join(f"person-{i}@example.com,v-{i}\r\n" for i in range(PEOPLE))
    path = tmp_path / "people.csv"
    path.write_bytes(f"userId,identity.WEB\r\n{rows}".encode())
    data_dir = tmp_path / "data"

    # One batch: its 1,040 keys are looked up at once.
    imported = _cli(data_dir, "import", str(path), "--tenant", "acme", "--batch", str(PEOPLE))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert f"rows read {PEOPLE}: written {PEOPLE}, unchanged 0; refused 0" in imported.stdout
    # Pages of 500 identities and of 500 profiles, each naming 500 profiles.
    checked = _cli(data_dir, "check", "--tenant", "acme")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "clean" in checked.stdout
