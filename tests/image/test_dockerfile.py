"""The Dockerfile: its base image is pulled by digest, and its install and bake steps are the tested script's."""

from __future__ import annotations

import re

from tests.image.lockfiles import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def lines() -> list[str]:
    return DOCKERFILE.read_text(encoding="utf-8").splitlines()


def base_images() -> list[str]:
    return [line.split()[1] for line in lines() if line.startswith("FROM ")]


def arguments_before_the_first_stage() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for line in lines():
        if line.startswith("FROM "):
            break
        if line.startswith("ARG "):
            name, equals, default = line.removeprefix("ARG ").strip().partition("=")
            found[name] = default if equals else None
    return found


def is_pinned(reference: str, arguments: dict[str, str | None]) -> bool:
    """A literal ``image@sha256:<digest>``, or ``${IMAGE}@${DIGEST}`` whose DIGEST argument is declared before the
    first stage with no default (the build then fails without one) or a well-formed digest as its default."""
    _image, at, digest = reference.partition("@")
    if not at:
        return False
    if DIGEST.fullmatch(digest):
        return True
    argument = re.fullmatch(r"\$\{(\w+)\}", digest)
    if argument is None or argument.group(1) not in arguments:
        return False
    default = arguments[argument.group(1)]
    return default is None or DIGEST.fullmatch(default) is not None


def test_every_stage_pulls_its_base_image_by_digest() -> None:
    arguments = arguments_before_the_first_stage()
    assert len(base_images()) == 2
    assert [reference for reference in base_images() if not is_pinned(reference, arguments)] == []


def test_the_pin_check_rejects_a_tag_alone_a_made_up_argument_and_a_malformed_default() -> None:
    arguments: dict[str, str | None] = {"PYTHON_IMAGE": "python:3.11-slim-bookworm", "PYTHON_DIGEST": None}
    assert not is_pinned("python:3.11-slim-bookworm", arguments)
    assert not is_pinned("${PYTHON_IMAGE}", arguments)
    assert not is_pinned("${PYTHON_IMAGE}@${UNDECLARED}", arguments)
    assert not is_pinned("${PYTHON_IMAGE}@${PYTHON_DIGEST}", {**arguments, "PYTHON_DIGEST": "latest"})
    assert is_pinned("${PYTHON_IMAGE}@${PYTHON_DIGEST}", arguments)
    assert is_pinned(f"python@sha256:{'0' * 64}", {})


def test_the_digest_argument_says_where_the_image_comes_from_and_how_to_read_its_digest() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    header = text[: text.index("ARG PYTHON_DIGEST")]
    assert "docker buildx imagetools inspect python:3.11-slim-bookworm" in header
    assert arguments_before_the_first_stage()["PYTHON_IMAGE"] == "python:3.11-slim-bookworm"


def test_the_image_installs_and_bakes_with_the_build_script_from_the_hashed_runtime_lock() -> None:
    runs = [line for line in lines() if line.startswith("RUN ") and "build.sh" in line]
    assert runs == [
        "RUN sh /build/build.sh deps /opt/venv /build/requirements-runtime.lock",
        "RUN sh /build/build.sh bake /opt/venv /app",
    ]
    assert "--require-hashes" in (ROOT / "deploy" / "image" / "build.sh").read_text(encoding="utf-8")
    assert "requirements.lock" not in "\n".join(line for line in lines() if not line.startswith("#"))
