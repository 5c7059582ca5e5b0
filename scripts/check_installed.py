"""Exit 1, naming them, when pyproject.toml's requirements (the dev extra included) are not all
installed: requirements.lock is older than a dependency added since (`make lock` fixes it)."""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement


def unmet(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = [*project["dependencies"], *project.get("optional-dependencies", {}).get("dev", [])]
    missing = []
    for text in wanted:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": "dev"}):
            continue
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            missing.append(f"{text} (not installed)")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            missing.append(f"{text} (installed: {installed})")
    return missing


if __name__ == "__main__":
    problems = unmet(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml"))
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)
