"""The image's lock: runtime packages only, each with hashes, at the versions the tests run (requirements.lock)."""

from __future__ import annotations

from tests.image.lockfiles import ROOT, RUNTIME_LOCK, dev_packages, hashes, pins, runtime_closure


def test_the_runtime_lock_pins_exactly_the_packages_the_runtime_and_the_offline_extra_need() -> None:
    assert set(pins(RUNTIME_LOCK)) == runtime_closure()


def test_the_runtime_lock_pins_each_package_at_the_version_requirements_lock_pins() -> None:
    everything = pins(ROOT / "requirements.lock")
    runtime = pins(RUNTIME_LOCK)
    disagreeing = {name: (version, everything.get(name)) for name, version in runtime.items()}
    assert {name: pair for name, pair in disagreeing.items() if pair[0] != pair[1]} == {}


def test_the_runtime_lock_has_no_development_package() -> None:
    assert dev_packages() & set(pins(RUNTIME_LOCK)) == set()


def test_every_package_of_the_runtime_lock_has_a_sha256_hash() -> None:
    found = hashes(RUNTIME_LOCK)
    assert set(found) == set(pins(RUNTIME_LOCK))
    assert [name for name, digests in found.items() if not digests] == []
