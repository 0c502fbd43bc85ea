"""agent.prefork: what the forkserver does once so that job processes do not, and that it is safe to fork after it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from agent import worker

ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter, as the forkserver does: the preload modules, then what a job process's prewarm and its
# first call would import, recorded as what was new.
PROBE = textwrap.dedent(
    """
    import importlib, json, sys, threading
    from agent.worker import PRELOAD_MODULES
    for name in PRELOAD_MODULES:
        importlib.import_module(name)
    threads = threading.active_count()
    before = set(sys.modules)
    from agent import pipeline
    from agent.settings import get_settings
    client = pipeline._openai_sdk_client("key", "http://127.0.0.1:9/v1")
    _ = (client.audio.speech, client.audio.transcriptions, client.chat.completions)
    import livekit.agents.voice.report
    print(json.dumps({"threads": threads, "new": sorted(set(sys.modules) - before),
                      "tls_cached": pipeline.tls_context.cache_info().currsize}))
    """
)


def _probe() -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIVEKIT_URL": "ws://127.0.0.1:9", "OPENAI_API_KEY": "key"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_the_prefork_module_is_the_last_module_the_forkserver_preloads() -> None:
    assert worker.PRELOAD_MODULES[-1] == "agent.prefork"


def test_after_the_preload_an_openai_client_imports_nothing_and_the_tls_context_is_built_and_no_thread_runs() -> None:
    found = _probe()
    assert found["new"] == []
    assert found["tls_cached"] == 1
    # the forkserver forks job processes: a thread started by the preload would not exist in them
    assert found["threads"] == 1
