"""The deployment files name only settings the worker reads (no container engine or cluster here to run them)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from agent import drain
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
    container = by_kind("Deployment")["spec"]["template"]["spec"]["containers"][0]
    from_manifest = {entry["name"] for entry in container["env"]}
    from_image = set(re.findall(r"\b(WEBCALL_[A-Z_]+)=", (ROOT / "Dockerfile").read_text(encoding="utf-8")))
    named = {name for name in from_manifest | from_image if name.startswith(("WEBCALL_", "LIVEKIT_"))}
    assert named, "the files set some of the worker's settings"
    assert named <= setting_names()


def test_the_outbox_the_image_points_at_is_the_volume_the_manifest_mounts() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    outbox = re.search(r"WEBCALL_EVENTS_OUTBOX_DIR=(\S+)", dockerfile)
    assert outbox is not None
    container = by_kind("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert outbox.group(1) in {mount["mountPath"] for mount in container["volumeMounts"]}


# Kubernetes' own schemas (kubernetes-validate bundles them) for the core kinds; the oldest release the manifests
# must still apply to.
KUBERNETES_VERSION = "1.29.0"
CORE = ("apps/", "policy/", "autoscaling/")
VALIDATOR = ROOT / "deploy/k8s/validate"


def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((ROOT / "deploy/k8s").glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc)
    return docs


def by_kind(kind: str) -> dict[str, Any]:
    return next(doc for doc in manifests() if doc["kind"] == kind)


def custom_resource_errors(docs: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    assert (VALIDATOR / "node_modules").is_dir(), "run `make setup` (npm ci in deploy/k8s/validate)"
    return subprocess.run(
        ["node", "validate.mjs"],
        cwd=VALIDATOR,
        input=json.dumps(docs),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "doc",
    [doc for doc in manifests() if "." not in doc["apiVersion"].split("/")[0] or doc["apiVersion"].startswith(CORE)],
    ids=lambda doc: f"{doc['kind']}/{doc['metadata']['name']}",
)
def test_every_core_manifest_is_valid_against_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_keda_scaledobject_and_the_servicemonitor_are_valid_against_their_crds() -> None:
    custom = [doc for doc in manifests() if doc["apiVersion"].startswith(("keda.sh/", "monitoring.coreos.com/"))]
    assert {doc["kind"] for doc in custom} == {"ScaledObject", "ServiceMonitor"}
    result = custom_resource_errors(custom)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": valid") == len(custom)


def test_the_crd_validator_rejects_a_scaledobject_with_a_numeric_threshold() -> None:
    broken = copy.deepcopy(by_kind("ScaledObject"))
    broken["spec"]["triggers"][0]["metadata"]["threshold"] = 6
    result = custom_resource_errors([broken])
    assert result.returncode == 1
    assert "threshold must be string" in result.stdout


def test_the_kubernetes_schema_rejects_a_deployment_with_an_unknown_field() -> None:
    broken = copy.deepcopy(by_kind("Deployment"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_pool_scales_on_active_calls_never_on_cpu() -> None:
    keda = by_kind("ScaledObject")["spec"]["triggers"]
    hpa = by_kind("HorizontalPodAutoscaler")["spec"]["metrics"]
    assert [trigger["type"] for trigger in keda] == ["prometheus"]
    assert "webcall_active_calls" in keda[0]["metadata"]["query"]
    assert [metric["pods"]["metric"]["name"] for metric in hpa] == ["webcall_active_calls"]


def test_the_worker_pod_is_locked_down_and_probed_on_readiness_and_liveness() -> None:
    pod = by_kind("Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["automountServiceAccountToken"] is False
    assert by_kind("ServiceAccount")["automountServiceAccountToken"] is False
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/"
    claims = [volume for volume in pod["volumes"] if "persistentVolumeClaim" in volume]
    assert [volume["persistentVolumeClaim"]["claimName"] for volume in claims] == ["webcall-agent-outbox"]


def test_the_pods_grace_period_covers_the_prestop_the_drain_of_the_longest_call_and_the_goodbyes() -> None:
    # What the worker reads from the manifest's env, the same way it reads its own environment.
    pod = by_kind("Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    settings = Settings.model_validate({k: v for k, v in env.items() if k.startswith("WEBCALL_")})
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop_s = float(command[1])

    assert settings.drain_timeout_s >= settings.max_call_duration_s, "a call as long as allowed finishes in the drain"
    needed = pre_stop_s + settings.drain_timeout_s + drain.GOODBYE_GRACE_S
    assert pod["terminationGracePeriodSeconds"] > needed, "Kubernetes would SIGKILL live calls before they end"
