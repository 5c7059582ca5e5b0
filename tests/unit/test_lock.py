"""Installs are reproducible: every dependency pyproject.toml asks for is pinned in the lock
to one exact version with hashes, and the Makefile installs from the lock with hashes required."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)")


def _pins(lock: Path) -> dict[str, tuple[str, int]]:
    """Each locked package's version and how many hashes it carries."""
    pins: dict[str, tuple[str, int]] = {}
    current: str | None = None
    for line in lock.read_text().splitlines():
        if match := PIN.match(line):
            current = canonicalize_name(match[1])
            pins[current] = (match[2], 0)
        elif current is not None and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def test_every_dependency_is_pinned_to_an_exact_version_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    pins = _pins(ROOT / "requirements.lock")
    for text in wanted:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: run 'make lock'"
        version, hashes = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (text, version)
        assert hashes > 0, f"{name} has no hash in requirements.lock"
    assert "motor" not in pins


def test_every_locked_package_carries_a_hash() -> None:
    for lock in ("requirements.lock", "requirements-uv.lock"):
        pins = _pins(ROOT / lock)
        assert pins, lock
        assert all(hashes > 0 for _, hashes in pins.values()), lock


def test_make_install_requires_the_hashes_of_both_locks() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes --no-deps -r $(UV_LOCK)" in makefile
    assert "--require-hashes --no-deps -r $(LOCK)" in makefile
