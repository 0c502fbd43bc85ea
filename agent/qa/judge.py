"""The optional LLM judge of a QA scenario: criteria in plain words, decided by a real LLM over the call's transcript.

    expect:
      judge: the reply offers an appointment     # or a list; each criterion is one check: judge[1], judge[2], ...

The judge runs only when a real LLM is configured for it (`JudgeSettings.from_env`):

    WEBCALL_QA_JUDGE_BASE_URL   an OpenAI-compatible server (a local Ollama too); unset: OpenAI itself, when
                                OPENAI_API_KEY is set and OPENAI_BASE_URL is not (a run against the sandbox has
                                OPENAI_BASE_URL pointing at the fakes, whose LLM echoes: it cannot judge)
    WEBCALL_QA_JUDGE_API_KEY    its key (default: OPENAI_API_KEY)
    WEBCALL_QA_JUDGE_MODEL      default gpt-4o-mini

Without one, each judge check has the status ``skipped`` and says why: it neither passes nor fails its scenario.

Wire: one non-streamed chat completion per criterion (the ``openai`` SDK, ``POST {base}/chat/completions``), at
temperature 0: a system message asking for a JSON object ``{"verdict": "pass" | "fail", "reason": "..."}``, and a
user message with the criterion and the transcript (`transcript_lines`). The verdict is the
first JSON object in the answer with a ``verdict`` of pass or fail, else a leading PASS or FAIL word; anything else
fails the check as unreadable. A request that fails fails the check with the error's type (never the key or the
server's message).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import openai

from agent.qa.checks import Check

DEFAULT_MODEL: Final = "gpt-4o-mini"
OPENAI_URL: Final = "https://api.openai.com/v1"
# A local server that needs no key still gets one: the SDK refuses to build a client without.
NO_KEY: Final = "not-needed"
TIMEOUT_S: Final = 60.0
NOT_CONFIGURED: Final = "no judge LLM (set WEBCALL_QA_JUDGE_BASE_URL or OPENAI_API_KEY)"
SYSTEM: Final = (
    "You judge a recorded voice call between an AI agent and a caller. You are given one criterion and the call's "
    "transcript. Decide whether the criterion holds for the call. Answer with only a JSON object: "
    '{"verdict": "pass" or "fail", "reason": "one short sentence"}.'
)
_OBJECT = re.compile(r"\{.*?\}", re.DOTALL)
_LEADING_WORD = re.compile(r"^\W*(pass|fail)\b", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class JudgeSettings:
    """Where the judge's LLM is. The key is never shown."""

    base_url: str
    model: str = DEFAULT_MODEL
    api_key: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> JudgeSettings | None:
        """The judge's LLM the environment configures, or ``None`` (see the module docstring)."""
        key = env.get("WEBCALL_QA_JUDGE_API_KEY") or env.get("OPENAI_API_KEY") or ""
        base_url = env.get("WEBCALL_QA_JUDGE_BASE_URL")
        if not base_url:
            if not env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL"):
                return None
            base_url = OPENAI_URL
        return cls(base_url=base_url.rstrip("/"), model=env.get("WEBCALL_QA_JUDGE_MODEL") or DEFAULT_MODEL, api_key=key)


def transcript_lines(report: Mapping[str, Any]) -> str:
    """The call as the judge reads it, in time order: a ``<speaker>: <text>`` line per final segment the caller
    received (``agent``, ``caller``, ``other``) and per message the caller typed."""
    entries: list[tuple[float, str, str]] = []
    for segment in report.get("transcript") or ():
        text = " ".join(str(segment.get("text", "")).split())
        if text and segment.get("final", True):
            entries.append((float(segment.get("at_s") or 0.0), str(segment.get("speaker", "other")), text))
    for step in report.get("steps") or ():
        if step.get("action") == "type":
            entries.append((float(step.get("at_s") or 0.0), "caller", str(step.get("text", ""))))
    return "\n".join(f"{speaker}: {text}" for _, speaker, text in sorted(entries, key=lambda e: e[0]))


def parse_verdict(answer: str) -> tuple[bool, str] | None:
    """(passed, reason) from the judge's answer, or ``None`` when it says neither pass nor fail."""
    for candidate in _OBJECT.findall(answer):
        try:
            parsed = json.loads(candidate)
        except ValueError:
            continue
        verdict = parsed.get("verdict") if isinstance(parsed, dict) else None
        if isinstance(verdict, str) and verdict.strip().lower() in ("pass", "fail"):
            reason = parsed.get("reason")
            return verdict.strip().lower() == "pass", reason if isinstance(reason, str) else ""
    word = _LEADING_WORD.match(answer)
    if word is not None:
        return word.group(1).lower() == "pass", answer[word.end() :].strip(" \t\n:-.")
    return None


async def judge_checks(
    criteria: Sequence[str], report: Mapping[str, Any], *, settings: JudgeSettings | None
) -> list[Check]:
    """One check per criterion: ``skipped`` without `settings`, else the judge's verdict."""
    names = [f"judge[{n}]" for n in range(1, len(criteria) + 1)]
    if settings is None:
        return [Check(name, False, NOT_CONFIGURED, skipped=True) for name in names]
    transcript = transcript_lines(report)
    client = openai.AsyncClient(
        api_key=settings.api_key or NO_KEY, base_url=settings.base_url, max_retries=0, timeout=TIMEOUT_S
    )
    try:
        return [
            await _judge(client, name, criterion, transcript, model=settings.model)
            for name, criterion in zip(names, criteria, strict=True)
        ]
    finally:
        await client.close()


async def _judge(client: openai.AsyncClient, name: str, criterion: str, transcript: str, *, model: str) -> Check:
    user = f"Criterion: {criterion}\n\nTranscript:\n{transcript or '(nothing was said)'}"
    try:
        completion = await client.chat.completions.create(
            model=model,
            temperature=0,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
        )
    except openai.OpenAIError as error:
        # The server's message can echo the request; the type says enough (timeout, 401, 500...).
        return Check(name, False, f"the judge's request failed ({type(error).__name__})")
    answer = (completion.choices[0].message.content or "") if completion.choices else ""
    verdict = parse_verdict(answer)
    if verdict is None:
        return Check(name, False, f"the judge's answer says neither pass nor fail: {answer[:120]!r}")
    passed, reason = verdict
    return Check(name, passed, "" if passed else f"{criterion!r}: {reason or 'the judge says it does not hold'}")
