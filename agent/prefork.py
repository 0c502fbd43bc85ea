"""What every job process would otherwise do for itself after the fork, done once in the forkserver.

The worker lists this module last in its ``preload_modules`` (`agent.worker.PRELOAD_MODULES`): the framework's
forkserver imports it before forking any job process, so each process starts with these modules imported, these
tables built and these caches filled, in pages it shares with its siblings (copy on write), not in pages of its own.
Before, every job process did this in its ``setup_fnc`` (or its first call did), measured with ``bench.profile``:

- the modules the OpenAI SDK and httpx import lazily on a client's first use (`LAZY_MODULES`): the SDK's
  ``openai.resources.chat``/``audio`` packages are lazy, so preloading them imported none of their resources;
- the TLS contexts (the OpenAI clients' and the framework's aiohttp session's): parsing the CA bundle, about 60 ms
  of CPU a process on the 2-vCPU box;
- the transcript hyphenation table, the agent profiles, voices and prompt files a first ``resolve_call`` reads, the
  chat message model's pydantic schema, and the signature pydantic inspects on the first ``AgentConfigUpdate`` (the
  session's start makes one);
- every knowledge collection (its saved index, or indexed here), in `agent.knowledge`'s process cache, where each
  job process's prewarm (`knowledge.load_all`) finds it: one copy for all job processes, none built in a call.

Each process then only makes what cannot cross a fork: the VAD's onnxruntime session, the HTTP clients (their
connection pools belong to one event loop) and the WebRTC FFI client (threads). Nothing here starts a thread or keeps
a socket or file open.
"""

from __future__ import annotations

import importlib
from typing import Final

import tqdm
from livekit.agents import llm, tokenize

from agent import framework, knowledge, pipeline
from agent.config.resolve import CallSources, resolve_call
from agent.log import get_logger
from agent.settings import get_settings

logger = get_logger("prefork")

LAZY_MODULES: Final = (
    "anyio._backends._asyncio",
    "anyio._core._sockets",
    "h11",
    "httpcore2",
    "jiter",
    "truststore",
    "numpy.fft",
    "openai.lib.streaming.chat",
    "openai.resources.audio.audio",
    "openai.resources.audio.speech",
    "openai.resources.audio.transcriptions",
    "openai.resources.chat.chat",
    "openai.resources.chat.completions",
    "livekit.agents.voice.report",
)


def warm() -> None:
    for module in LAZY_MODULES:
        importlib.import_module(module)
    pipeline.tls_context()
    framework.warm_tls()
    tokenize.basic.hyphenate_word("warm")
    resolve_call(CallSources(), settings=get_settings())
    llm.ChatContext.empty().add_message(role="system", content="warm")
    llm.AgentConfigUpdate(instructions="warm")
    # bm25s's tokenizer (the knowledge indexes) makes hidden tqdm bars, and tqdm's first bar starts a monitor thread:
    # a thread of the forkserver is missing from every process it forks, and may hold tqdm's lock as it forks.
    tqdm.tqdm.monitor_interval = 0
    try:
        knowledge.load_all()
    except Exception:
        # An error here would end the forkserver and every job process with it; each job process's prewarm loads
        # the collections again and reports what fails.
        logger.warning("knowledge collections not preloaded", exc_info=True)


warm()
