"""Fake OpenAI and Deepgram servers on loopback that speak the real wire formats, with real offline speech.

`FakeOpenAI` and `FakeDeepgram` record every request, take latency settings and one-shot faults, and answer with
piper speech and whisper transcripts (`sandbox.providers.speech`). `python -m sandbox providers` runs both.
"""

from sandbox.providers.controls import Controls, Fault, FaultSpec, Latency, RecordedRequest
from sandbox.providers.deepgram_server import FakeDeepgram
from sandbox.providers.openai_server import FakeOpenAI
from sandbox.providers.replies import Reply, ToolCall, echo_policy

__all__ = [
    "Controls",
    "FakeDeepgram",
    "FakeOpenAI",
    "Fault",
    "FaultSpec",
    "Latency",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "echo_policy",
]
