"""What a test can see and steer in a fake provider: the request record, latency, and injected faults.

Every request a fake receives becomes one `RecordedRequest` (websocket sessions too: one record per connection,
with the messages and audio it carried). Authorization headers are never recorded, only their scheme.
`Controls` holds the latency settings and a queue of one-shot faults that the next matching requests consume.
`FaultSpec` is a fault asked for by service (``llm``, ``stt``, ``tts``) and name, as the control API
(``POST /sandbox/faults``) takes it; each fake maps a service to its own endpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, assert_never

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal["status", "hang", "drop", "refuse", "slow"]
Service = Literal["llm", "stt", "tts"]
# The fault names of the control API, one per provider failure a worker must survive.
FaultName = Literal["http_500", "http_429", "refuse", "timeout", "cut", "slow"]

_SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "cookie"})


@dataclass
class RecordedRequest:
    """One request (or websocket connection) as the fake saw it.

    Attributes:
        provider: ``openai`` or ``deepgram``.
        method: HTTP method (``GET`` for a websocket).
        path: URL path, e.g. ``/v1/chat/completions``.
        query: query parameters, first value of each.
        headers: request headers without credentials.
        auth_scheme: ``Bearer`` or ``Token`` if credentials were sent (never the credential itself).
        json: the parsed JSON body, if the body was JSON.
        form: multipart text fields.
        audio: audio bytes received (an uploaded file, a POSTed body, or websocket binary frames).
        messages: JSON text messages received on a websocket, in order.
        text: the text a TTS endpoint was asked to speak (joined over a websocket session).
        voice: the voice asked for (OpenAI ``voice``; Deepgram's ``model``, which names the voice).
        speed: the speaking rate asked for, if any.
        status: the HTTP status answered (101 for an accepted websocket, 499 when the client closed the connection
            before the answer was complete).
        fault: the injected fault this request consumed, if any.
        done: the answer is complete (or the connection is gone).
        started: ``time.monotonic()`` when the request arrived.
    """

    provider: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    auth_scheme: str | None
    json: object | None = None
    form: dict[str, str] = field(default_factory=dict)
    audio: bytearray = field(default_factory=bytearray)
    messages: list[object] = field(default_factory=list)
    text: str = ""
    voice: str | None = None
    speed: float | None = None
    status: int = 0
    fault: FaultKind | None = None
    done: bool = False
    started: float = field(default_factory=time.monotonic)


def redact_headers(headers: object) -> tuple[dict[str, str], str | None]:
    """Headers without credentials, and the auth scheme if one was present."""
    kept: dict[str, str] = {}
    scheme: str | None = None
    items = headers.items() if hasattr(headers, "items") else ()
    for name, value in items:
        lowered = str(name).lower()
        if lowered in _SECRET_HEADERS:
            # keep only the scheme ("Bearer", "Token"): enough to assert a key was sent
            scheme = str(value).split(" ", 1)[0] or None if lowered == "authorization" else scheme or str(name)
            continue
        kept[str(name)] = str(value)
    return kept, scheme


@dataclass
class Fault:
    """A one-shot fault: the next ``remaining`` requests whose path starts with ``path`` get it.

    ``status`` answers with an HTTP error (or refuses the websocket upgrade), a 429 with ``Retry-After:
    retry_after``; ``hang`` never answers (until the server closes or ``Controls.hang_limit`` passes); ``drop``
    starts the answer and cuts the connection after ``after_chunks`` streamed chunks (websockets: after that many
    received audio frames or sent results); ``refuse`` resets the connection (TCP RST) before any byte of an
    answer, which clients raise as the same connection error as a refused connect; ``slow`` waits ``delay``
    seconds before the first byte, then answers normally.
    """

    kind: FaultKind
    status: int = 500
    path: str | None = None
    remaining: int = 1
    after_chunks: int = 1
    retry_after: float | None = None
    delay: float = 0.0


class FaultSpec(BaseModel):
    """A fault by service and name: the body of ``POST /sandbox/faults``.

    ``{"service": "llm", "kind": "http_429", "count": 2, "retry_after": 1}`` makes the next two chat completions
    answer 429 with ``Retry-After: 1``. Kinds: ``http_500``, ``http_429`` (``retry_after`` seconds), ``refuse``
    (connection reset before any answer), ``timeout`` (accepted, never answered), ``cut`` (the stream cut after
    ``after_chunks`` chunks: SSE events, audio body chunks, websocket frames), ``slow`` (``delay`` seconds to the
    first byte).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: Service
    kind: FaultName
    count: int = Field(default=1, ge=1, le=1000)
    retry_after: float = Field(default=1.0, ge=0, le=3600)
    delay: float = Field(default=5.0, ge=0, le=600)
    after_chunks: int = Field(default=1, ge=0, le=10_000)

    def fault(self, path: str) -> Fault:
        """The one-shot fault for the endpoint at `path`."""
        match self.kind:
            case "http_500":
                return Fault(kind="status", status=500, path=path, remaining=self.count)
            case "http_429":
                return Fault(kind="status", status=429, path=path, remaining=self.count, retry_after=self.retry_after)
            case "refuse":
                return Fault(kind="refuse", path=path, remaining=self.count)
            case "timeout":
                return Fault(kind="hang", path=path, remaining=self.count)
            case "cut":
                return Fault(kind="drop", path=path, remaining=self.count, after_chunks=self.after_chunks)
            case "slow":
                return Fault(kind="slow", path=path, remaining=self.count, delay=self.delay)
            case _ as unreachable:
                assert_never(unreachable)


@dataclass(frozen=True)
class Latency:
    """Added latency: ``first_byte`` seconds before answering (on top of real synthesis/inference time) and
    ``chunk_interval`` seconds between streamed chunks (LLM tokens, audio chunks, websocket results)."""

    first_byte: float = 0.0
    chunk_interval: float = 0.0


@dataclass
class Controls:
    """Latency and fault settings of one fake server; change them at any time, they apply to the next request.

    Attributes:
        latency: the latency of every path without its own entry in ``path_latency``.
        path_latency: latency per path prefix (the longest matching prefix wins).
        hang_limit: longest a hanging request is held open.
    """

    latency: Latency = field(default_factory=Latency)
    path_latency: dict[str, Latency] = field(default_factory=dict)
    hang_limit: float = 120.0
    faults: list[Fault] = field(default_factory=list)

    def latency_for(self, path: str) -> Latency:
        prefixes = [prefix for prefix in self.path_latency if path.startswith(prefix)]
        return self.path_latency[max(prefixes, key=len)] if prefixes else self.latency

    def take_fault(self, path: str) -> Fault | None:
        """Consume and return the first queued fault that matches ``path``."""
        for fault in self.faults:
            if fault.path is None or path.startswith(fault.path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def reset(self) -> None:
        self.latency = Latency()
        self.path_latency.clear()
        self.faults.clear()
