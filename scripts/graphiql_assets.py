"""GraphiQL's browser assets: fetched from the npm registry, pinned, checked, vendored.

`server/static/graphiql/assets.json` lists each npm package (name, version, licence, the
registry's tarball integrity) and the files taken from it with their sha256. The service serves
those files itself, so GraphiQL works offline and under `default-src 'self'`.

    python -m scripts.graphiql_assets           # re-download the pinned tarballs with `npm pack`,
                                                # verify integrity and sha256, write the files
    python -m scripts.graphiql_assets --check   # offline: the vendored files match the manifest
    python -m scripts.graphiql_assets --update  # after editing a version: record the new
                                                # integrity, licence and sha256 (review the diff)

`make assets` runs the first form (ASSETS_ARGS=--check or --update for the others).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ASSETS_DIR = ROOT / "server" / "static" / "graphiql"
MANIFEST = ASSETS_DIR / "assets.json"


class AssetError(Exception):
    """A download or a vendored file does not match what the manifest records."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_manifest(path: Path = MANIFEST) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def check(manifest: dict[str, Any], directory: Path = ASSETS_DIR) -> list[str]:
    """Every vendored file's problem (missing, or not the recorded sha256); empty when all match."""
    problems = []
    for package in manifest["packages"]:
        for entry in package["files"]:
            path = directory / entry["to"]
            if not path.is_file():
                problems.append(f"{entry['to']}: missing")
            elif sha256(path.read_bytes()) != entry.get("sha256"):
                problems.append(f"{entry['to']}: sha256 differs from the manifest")
    return problems


def _npm_pack(name: str, version: str, into: Path) -> tuple[Path, str]:
    """The package's tarball, downloaded by npm (which checks it against the registry's
    integrity), and that integrity."""
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError("npm is needed to download the assets (apt-get install npm)")
    done = subprocess.run(
        [npm, "pack", f"{name}@{version}", "--json", "--pack-destination", str(into)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise AssetError(f"npm pack {name}@{version} failed:\n{done.stderr}")
    packed = json.loads(done.stdout)[0]
    if packed["name"] != name or packed["version"] != version:
        raise AssetError(f"npm returned {packed['name']}@{packed['version']}, not {name}@{version}")
    return into / packed["filename"], str(packed["integrity"])


def _read_member(archive: tarfile.TarFile, member: str) -> bytes:
    extracted = archive.extractfile(member)
    if extracted is None:
        raise AssetError(f"{member} is not a file in the tarball")
    return extracted.read()


def refresh(manifest: dict[str, Any], *, update: bool, directory: Path = ASSETS_DIR) -> None:
    """Downloads every pinned package and writes its files; without `update`, anything that
    differs from the manifest (tarball integrity, a file's sha256) stops the refresh before a
    file is written."""
    staged: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for package in manifest["packages"]:
            name, version = package["name"], package["version"]
            tarball, integrity = _npm_pack(name, version, Path(tmp))
            if not update and integrity != package.get("integrity"):
                raise AssetError(f"{name}@{version}: tarball integrity differs from the manifest")
            package["integrity"] = integrity
            with tarfile.open(tarball) as archive:
                about = json.loads(_read_member(archive, "package/package.json"))
                package["license"] = about.get("license", "UNKNOWN")
                for entry in package["files"]:
                    data = _read_member(archive, entry["from"])
                    digest = sha256(data)
                    if not update and digest != entry.get("sha256"):
                        raise AssetError(f"{entry['from']} of {name}@{version}: sha256 differs")
                    entry["sha256"] = digest
                    staged[entry["to"]] = data
            print(f"{name}@{version} ({package['license']}): {integrity}")
    for target, data in staged.items():
        (directory / target).write_bytes(data)
    if update:
        order = ("name", "version", "license", "integrity", "files")
        manifest["packages"] = [
            {key: package[key] for key in order} for package in manifest["packages"]
        ]
        MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="verify the vendored files, offline")
    mode.add_argument("--update", action="store_true", help="record new checksums after a bump")
    args = parser.parse_args(argv)
    manifest = load_manifest()
    try:
        if not args.check:
            refresh(manifest, update=args.update)
    except AssetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    problems = check(manifest)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(f"{MANIFEST.relative_to(ROOT)}: every vendored file matches its sha256")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
