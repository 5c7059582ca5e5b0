"""The vendored GraphiQL assets are checked against their manifest, offline."""

from __future__ import annotations

import shutil
from pathlib import Path

from scripts.graphiql_assets import ASSETS_DIR, check, load_manifest


def test_every_vendored_asset_matches_the_checksum_in_its_manifest() -> None:
    manifest = load_manifest()
    assert {p["name"] for p in manifest["packages"]} >= {"graphiql", "react", "react-dom"}
    for package in manifest["packages"]:
        assert package["version"], package
        assert package["license"] == "MIT", package
        assert package["integrity"].startswith("sha512-"), package
    assert check(manifest) == []


def test_the_check_names_a_changed_and_a_missing_asset(tmp_path: Path) -> None:
    copy = tmp_path / "graphiql"
    shutil.copytree(ASSETS_DIR, copy)
    manifest = load_manifest()
    assert check(manifest, copy) == []
    (copy / "init.js").write_text("ours, not in the manifest")  # not a vendored file
    with (copy / "react.production.min.js").open("a") as tampered:
        tampered.write("//")
    (copy / "graphiql.min.css").unlink()
    assert check(manifest, copy) == [
        "react.production.min.js: sha256 differs from the manifest",
        "graphiql.min.css: missing",
    ]
