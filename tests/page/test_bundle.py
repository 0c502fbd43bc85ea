"""The dev page's livekit-client bundle is committed, built from the version web/package-lock.json pins."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "agent" / "devpage" / "static" / "livekit-client.js"


def locked_version() -> str:
    lock = json.loads((ROOT / "web" / "package-lock.json").read_text(encoding="utf-8"))
    version: str = lock["packages"]["node_modules/livekit-client"]["version"]
    return version


def test_the_committed_bundle_is_the_locked_livekit_client_version() -> None:
    banner = BUNDLE.read_text(encoding="utf-8").splitlines()[0]
    assert banner == f"/* livekit-client {locked_version()} (npm), bundled by web/build.mjs */"


def test_package_json_pins_livekit_client_exactly_as_the_lock_has_it() -> None:
    package = json.loads((ROOT / "web" / "package.json").read_text(encoding="utf-8"))
    assert package["dependencies"]["livekit-client"] == locked_version()


def test_the_bundle_exposes_the_sdk_as_one_global_and_loads_nothing_from_a_cdn() -> None:
    text = BUNDLE.read_text(encoding="utf-8")
    assert "var LivekitClient=" in text
    assert "unpkg.com" not in text
    assert "cdn.jsdelivr" not in text
