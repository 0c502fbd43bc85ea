"""The providers a local run (``run-local``) gives its worker: the developer's where the environment names them, the
sandbox's fake providers for the rest, and the one line that says which.

- No ``OPENAI_API_KEY`` and no ``OPENAI_BASE_URL``: the fake OpenAI (its LLM echoes what it is told, its TTS and STT
  are offline engines) and, without Deepgram credentials, the fake Deepgram. The run says so in one line.
- ``OPENAI_BASE_URL`` (a local OpenAI-compatible server such as Ollama): the LLM goes there. Such a server usually
  has no speech endpoints, so speech and transcription stay on Deepgram (the fake one without credentials) unless
  ``WEBCALL_TTS_PROVIDER`` / ``WEBCALL_STT_PROVIDER`` say otherwise, and a call cannot choose OpenAI for them. With
  ``WEBCALL_LLM_MODEL`` set (a model that server has) and no ``WEBCALL_ALLOWED_LLM_MODELS``, that is the only model
  a call may use.
- ``OPENAI_API_KEY`` alone: OpenAI for the LLM and the voice; transcription on Deepgram (fake without credentials).

Pure: reads a mapping, returns a plan; starting the fakes is `agent.devrun`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

FAKE_DEEPGRAM = "the sandbox's fake Deepgram"


@dataclass(frozen=True, kw_only=True)
class ProviderPlan:
    """Which fakes to run, the settings the worker gets on top of its environment, and the line to print."""

    fake_openai: bool
    fake_deepgram: bool
    env: dict[str, str] = field(default_factory=dict)
    summary: str = ""


def plan_providers(environ: Mapping[str, str]) -> ProviderPlan:
    """The plan for a worker started with `environ` (see the module docstring)."""
    fake_deepgram = not (environ.get("DEEPGRAM_API_KEY") or environ.get("DEEPGRAM_BASE_URL"))
    deepgram = FAKE_DEEPGRAM if fake_deepgram else "Deepgram"
    base_url = environ.get("OPENAI_BASE_URL")
    if base_url:
        env = _speech_off_the_llm_server(environ)
        model = environ.get("WEBCALL_LLM_MODEL")
        if model and not environ.get("WEBCALL_ALLOWED_LLM_MODELS"):
            env["WEBCALL_ALLOWED_LLM_MODELS"] = model
        speech = (
            f"speech and transcription: {deepgram}"
            if "WEBCALL_TTS_PROVIDER" in env
            else "speech and transcription as WEBCALL_TTS_PROVIDER / WEBCALL_STT_PROVIDER say"
        )
        summary = f"LLM: the OpenAI-compatible server at {base_url} (OPENAI_BASE_URL, model {model or 'gpt-4o-mini'})"
        return ProviderPlan(fake_openai=False, fake_deepgram=fake_deepgram, env=env, summary=f"{summary}; {speech}")
    if environ.get("OPENAI_API_KEY"):
        summary = f"LLM and voice: OpenAI (OPENAI_API_KEY); transcription: {deepgram}"
        return ProviderPlan(fake_openai=False, fake_deepgram=fake_deepgram, summary=summary)
    summary = (
        "no OPENAI_API_KEY: the agent runs on the sandbox's fake providers and echoes what you say "
        "(set OPENAI_API_KEY, or OPENAI_BASE_URL for a local server such as Ollama)"
    )
    return ProviderPlan(fake_openai=True, fake_deepgram=fake_deepgram, summary=summary)


def _speech_off_the_llm_server(environ: Mapping[str, str]) -> dict[str, str]:
    if environ.get("WEBCALL_TTS_PROVIDER") or environ.get("WEBCALL_STT_PROVIDER"):
        return {}
    return {
        "WEBCALL_TTS_PROVIDER": "deepgram",
        "WEBCALL_STT_PROVIDER": "deepgram",
        "WEBCALL_ALLOWED_TTS_PROVIDERS": "deepgram",
        "WEBCALL_ALLOWED_STT_PROVIDERS": "deepgram",
    }
