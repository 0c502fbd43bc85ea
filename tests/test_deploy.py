"""The deployment files name only settings the worker reads (no container engine or cluster here to run them)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from agent.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def setting_names() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        if choices is not None:
            names.update(str(choice) for choice in choices)
        else:
            names.add(str(alias))
    return names


def test_every_webcall_variable_in_the_manifest_and_the_image_is_a_setting() -> None:
    manifest = list(yaml.safe_load_all((ROOT / "deploy/k8s/worker.yaml").read_text(encoding="utf-8")))
    container = manifest[0]["spec"]["template"]["spec"]["containers"][0]
    from_manifest = {entry["name"] for entry in container["env"]}
    from_image = set(re.findall(r"\b(WEBCALL_[A-Z_]+)=", (ROOT / "Dockerfile").read_text(encoding="utf-8")))
    named = {name for name in from_manifest | from_image if name.startswith(("WEBCALL_", "LIVEKIT_"))}
    assert named, "the files set some of the worker's settings"
    assert named <= setting_names()


def test_the_outbox_the_image_points_at_is_the_volume_the_manifest_mounts() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    outbox = re.search(r"WEBCALL_EVENTS_OUTBOX_DIR=(\S+)", dockerfile)
    assert outbox is not None
    manifest = next(yaml.safe_load_all((ROOT / "deploy/k8s/worker.yaml").read_text(encoding="utf-8")))
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert outbox.group(1) in {mount["mountPath"] for mount in container["volumeMounts"]}
