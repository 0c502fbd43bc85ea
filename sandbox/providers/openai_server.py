"""A fake OpenAI API on loopback that the real ``openai`` client and livekit's openai plugin talk to.

Endpoints (under ``/v1``): ``GET /models`` and ``/models/{id}``; ``POST /chat/completions`` (streamed as SSE with
``stream_options.include_usage`` honoured, tool calls in OpenAI's delta format, or one JSON completion);
``POST /audio/speech`` (piper speech of ``input`` at 24 kHz in ``response_format`` pcm/wav/mp3/opus/aac/flac,
as raw bytes or, with ``stream_format: "sse"``, as ``speech.audio.delta`` events; ``speed`` changes piper's
phoneme length); ``POST /audio/transcriptions`` (multipart upload, whisper ``tiny.en``; json, verbose_json or
text). Errors use OpenAI's ``{"error": {...}}`` body. Point a client at ``base_url`` with any non-empty key.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from sandbox.providers import speech
from sandbox.providers.audio import SUPPORTED_FORMATS, StreamEncoder, content_type, transcribe_file
from sandbox.providers.base import FAULT_KEY, RECORD_KEY, FakeProviderServer, drop_connection
from sandbox.providers.controls import Fault, RecordedRequest
from sandbox.providers.replies import Reply, ReplyBook, estimate_tokens, prompt_tokens, split_tokens

SPEECH_SAMPLE_RATE = 24000
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o-mini-tts", "tts-1", "whisper-1")
# ~100 ms of 24 kHz 16-bit audio per streamed chunk
AUDIO_CHUNK_BYTES = 4800
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error"}


def _error(status: int, message: str) -> web.Response:
    kind = _ERROR_TYPES.get(status, "rate_limit_exceeded" if status == 429 else "server_error")
    body = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
    return web.json_response(body, status=status)


def sentences_of(text: str) -> list[str]:
    return [part for part in _SENTENCE_END.split(text.strip()) if part]


class FakeOpenAI(FakeProviderServer):
    """The fake OpenAI server. ``replies`` scripts the LLM; ``base_url`` goes to the client."""

    provider = "openai"
    service_paths = {"llm": "/v1/chat/completions", "stt": "/v1/audio/transcriptions", "tts": "/v1/audio/speech"}

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.replies = ReplyBook()

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def script(self, *replies: Reply | str) -> None:
        """Queue LLM replies for the next chat completions (then the reply policy, echo by default)."""
        self.replies.script(*replies)

    def reset(self) -> None:
        super().reset()
        self.replies.reset()

    def error_response(self, status: int, message: str) -> web.Response:
        return _error(status, message)

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/models/{model}", self._model)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    async def _not_found(self, request: web.Request) -> web.Response:
        return _error(404, "unknown endpoint")

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": model, "object": "model", "created": 1700000000, "owned_by": "sandbox"} for model in MODELS]
        return web.json_response({"object": "list", "data": data})

    async def _model(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        return web.json_response({"id": model, "object": "model", "created": 1700000000, "owned_by": "sandbox"})

    # --- chat ------------------------------------------------------------------------------------------------
    async def _chat(self, request: web.Request) -> web.StreamResponse:
        record: RecordedRequest = request[RECORD_KEY]
        body = record.json
        if not isinstance(body, Mapping) or not isinstance(body.get("messages"), list):
            return _error(400, "messages is required")
        reply = self.replies.next_reply(body)
        model = str(body.get("model", "gpt-4o-mini"))
        completion_id = "chatcmpl-" + uuid.uuid4().hex[:24]
        usage = _usage(body, reply)
        if not body.get("stream"):
            return web.json_response(_completion(reply, completion_id=completion_id, model=model, usage=usage))
        options = body.get("stream_options")
        include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
        chunks = _chat_chunks(reply)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        response.headers["x-request-id"] = "req_" + uuid.uuid4().hex[:16]
        await response.prepare(request)
        fault: Fault | None = request.get(FAULT_KEY)
        created = int(time.time())
        for index, (delta, finish) in enumerate(chunks):
            if fault is not None and fault.kind == "drop" and index >= fault.after_chunks:
                drop_connection(request)
                return response
            if index:
                await self.pace(request)
            payload = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_sandbox",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                payload["usage"] = None
            await response.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
        if include_usage:
            final = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_sandbox",
                "choices": [],
                "usage": usage,
            }
            await response.write(b"data: " + json.dumps(final).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    # --- speech ----------------------------------------------------------------------------------------------
    async def _speech(self, request: web.Request) -> web.StreamResponse:
        record: RecordedRequest = request[RECORD_KEY]
        parsed = _SpeechRequest.parse(record.json)
        if isinstance(parsed, str):
            return _error(400, parsed)
        text, fmt, speed, sse = parsed.text, parsed.response_format, parsed.speed, parsed.sse
        record.text, record.voice, record.speed = text, parsed.voice, speed
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream" if sse else content_type(fmt)},
        )
        response.headers["x-request-id"] = "req_" + uuid.uuid4().hex[:16]
        encoder = StreamEncoder(fmt, sample_rate=SPEECH_SAMPLE_RATE)
        fault: Fault | None = request.get(FAULT_KEY)
        sent = 0
        for sentence in sentences_of(text):
            pcm = await asyncio.to_thread(_synthesize, sentence, float(speed))
            pieces = _split(encoder.push(pcm))
            if not response.prepared:
                await response.prepare(request)
            for piece in pieces:
                if fault is not None and fault.kind == "drop" and sent >= fault.after_chunks:
                    drop_connection(request)
                    return response
                if sent:
                    await self.pace(request)
                await response.write(_speech_event(piece) if sse else piece)
                sent += 1
        if not response.prepared:
            await response.prepare(request)
        tail = encoder.finish()
        if tail:
            await response.write(_speech_event(tail) if sse else tail)
        if sse:
            tokens = estimate_tokens(text)
            done = {"type": "speech.audio.done", "usage": {"input_tokens": tokens, "output_tokens": 0}}
            await response.write(b"data: " + json.dumps(done).encode() + b"\n\n")
        await response.write_eof()
        return response

    # --- transcription ---------------------------------------------------------------------------------------
    async def _transcriptions(self, request: web.Request) -> web.StreamResponse:
        record: RecordedRequest = request[RECORD_KEY]
        if not request.content_type.startswith("multipart/"):
            return _error(400, "multipart/form-data is required")
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is not None:
                record.audio += await part.read()
            else:
                record.form[part.name] = await part.text()
        if not record.audio:
            return _error(400, "file is required")
        try:
            result = await transcribe_file(bytes(record.audio))
        except speech.SpeechEngineError:
            return _error(400, "audio file could not be decoded")
        record.text = result.text
        fmt = record.form.get("response_format", "json")
        if fmt == "text":
            return web.Response(text=result.text + "\n", content_type="text/plain")
        if fmt == "verbose_json":
            return web.json_response(
                {"task": "transcribe", "language": "english", "duration": result.duration, "text": result.text}
            )
        if fmt != "json":
            return _error(400, "unsupported response_format")
        usage = {"type": "duration", "seconds": max(1, round(result.duration))}
        return web.json_response({"text": result.text, "usage": usage})


@dataclass(frozen=True, kw_only=True)
class _SpeechRequest:
    text: str
    voice: str
    response_format: str
    speed: float
    sse: bool

    @classmethod
    def parse(cls, body: object) -> _SpeechRequest | str:
        """The validated request, or the reason it is invalid."""
        if not isinstance(body, Mapping):
            return "a JSON body is required"
        text, voice = body.get("input"), body.get("voice")
        fmt, speed = body.get("response_format", "mp3"), body.get("speed", 1.0)
        if not isinstance(text, str) or not text.strip() or len(text) > 4096:
            return "input must be 1 to 4096 characters"
        if not isinstance(voice, str) or not voice:
            return "voice is required"
        if not isinstance(fmt, str) or fmt not in SUPPORTED_FORMATS:
            return "unsupported response_format"
        if not isinstance(speed, int | float) or not 0.25 <= float(speed) <= 4.0:
            return "speed must be between 0.25 and 4.0"
        sse = body.get("stream_format") == "sse"
        return cls(text=text, voice=voice, response_format=fmt, speed=float(speed), sse=sse)


def _synthesize(sentence: str, speed: float) -> bytes:
    return speech.synthesizer().synthesize(sentence, speed=speed, sample_rate=SPEECH_SAMPLE_RATE)


def _split(data: bytes) -> list[bytes]:
    return [data[i : i + AUDIO_CHUNK_BYTES] for i in range(0, len(data), AUDIO_CHUNK_BYTES)]


def _speech_event(audio: bytes) -> bytes:
    event = {"type": "speech.audio.delta", "audio": base64.b64encode(audio).decode("ascii")}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def _usage(body: Mapping[str, object], reply: Reply) -> dict[str, int]:
    completion = estimate_tokens(reply.text) + sum(
        estimate_tokens(call.name + call.arguments_json()) for call in reply.tool_calls
    )
    prompt = prompt_tokens(body)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _chat_chunks(reply: Reply) -> list[tuple[dict[str, Any], str | None]]:
    """The deltas of a streamed reply, each with its finish_reason (only the last one has one)."""
    chunks: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": ""}, None)]
    chunks += [({"content": piece}, None) for piece in split_tokens(reply.text)]
    for index, call in enumerate(reply.tool_calls):
        call_id = call.call_id or "call_" + uuid.uuid4().hex[:24]
        head = {"index": index, "id": call_id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        chunks.append(({"tool_calls": [head]}, None))
        arguments = call.arguments_json()
        for start in range(0, len(arguments), 12):
            piece = {"index": index, "function": {"arguments": arguments[start : start + 12]}}
            chunks.append(({"tool_calls": [piece]}, None))
    chunks.append(({}, "tool_calls" if reply.tool_calls else "stop"))
    return chunks


def _completion(reply: Reply, *, completion_id: str, model: str, usage: dict[str, int]) -> dict[str, object]:
    message: dict[str, object] = {"role": "assistant", "content": reply.text or None, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.call_id or "call_" + uuid.uuid4().hex[:24],
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json()},
            }
            for call in reply.tool_calls
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_sandbox",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            }
        ],
        "usage": usage,
    }
