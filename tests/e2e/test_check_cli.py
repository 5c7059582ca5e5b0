"""`python -m server check`, run by an operator next to a running server (embedded engine)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from tests.e2e.conftest import ROOT, StartServer
from tests.integration.queries import CAPTURE, IDENTIFY, capture_input, identify_input

pytestmark = pytest.mark.e2e


def _check(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "check", *args],
        cwd=ROOT,
        env={"DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _line(output: str, kind: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.startswith(kind + " "))


def test_check_exits_zero_when_clean_and_one_when_a_key_points_at_nothing_until_repaired(
    start_server: StartServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server = start_server({"DATA_DIR": str(data_dir)})
    match = re.search(r"^\s+(p360_\S+)$", server.output, re.MULTILINE)
    assert match, server.output
    headers = {"Authorization": f"Bearer {match.group(1)}"}
    for query, variables in (
        (CAPTURE, capture_input("WEB", "visitor-1", {"firstName": "Asha"})),
        (IDENTIFY, identify_input("API", "crm-1", "u-1")),
        (IDENTIFY, identify_input("WEB", "visitor-1", "u-1")),  # merged into crm-1's profile
    ):
        body = httpx.post(
            f"{server.base_url}/graphql",
            json={"query": query, "variables": variables},
            headers=headers,
        ).json()
        assert not body.get("errors"), body

    clean = _check(data_dir)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert _line(clean.stdout, "key_without_profile")[1] == "0"
    assert clean.stdout.splitlines()[-1] == "clean"

    uri = (data_dir / "engine.uri").read_text().strip()
    with MongoClient[dict[str, Any]](uri) as client:
        client["profile360"]["identities"].insert_one(
            {
                "_id": "demo|VISITOR|lost",
                "tenant": "demo",
                "type": "VISITOR",
                "value": "lost",
                "profileId": "no-such-profile",
                "channels": ["WEB"],
            }
        )

    broken = _check(data_dir, "--tenant", "demo")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert _line(broken.stdout, "key_without_profile")[1:] == ["1", "e.g.", "demo|VISITOR|lost"]
    assert broken.stdout.splitlines()[-1] == "1 problem"

    repaired = _check(data_dir, "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    before, after = repaired.stdout.split("\nafter repair:\n")
    assert before.splitlines()[-3:] == ["1 problem", "", "repaired: 1 record deleted"]
    assert after.splitlines()[-1] == "clean"
