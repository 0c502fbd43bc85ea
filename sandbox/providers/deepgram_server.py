"""A fake Deepgram API on loopback that livekit's deepgram plugin (STT and TTS, v1 endpoints) talks to.

- ``/v1/listen``: the streaming websocket (see `sandbox.providers.listen`) and the prerecorded ``POST`` (audio
  body, whisper transcript in Deepgram's ``results.channels[0].alternatives`` shape).
- ``/v1/speak``: ``POST`` with ``{"text": ...}`` answers linear16 audio (raw with ``container=none``, WAV by
  default) and the websocket takes ``Speak`` / ``Flush`` / ``Clear`` / ``Close`` messages, answering binary audio
  then ``Flushed`` per flush. The ``model`` query parameter is the voice (recorded as ``voice``); piper speaks every
  voice. ``speed`` (0.7-1.5) changes piper's phoneme length. Only ``encoding=linear16`` is synthesized.

The livekit plugins take whole endpoint URLs: pass ``listen_url`` to ``deepgram.STT(base_url=...)`` and
``speak_url`` to ``deepgram.TTS(base_url=...)``. Errors use Deepgram's ``err_code``/``err_msg`` body.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Mapping

from aiohttp import WSMsgType, web

from sandbox.providers import speech
from sandbox.providers.audio import transcribe_file
from sandbox.providers.base import FAULT_KEY, RECORD_KEY, FakeProviderServer, drop_connection
from sandbox.providers.controls import Fault, RecordedRequest
from sandbox.providers.listen import ListenOptions, ListenSession, alternative

# ~100 ms of 24 kHz 16-bit audio per binary message or body chunk
AUDIO_CHUNK_SECONDS = 0.1
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _error(status: int, message: str) -> web.Response:
    code = {400: "Bad Request", 401: "INVALID_AUTH", 429: "TOO_MANY_REQUESTS"}.get(status, "INTERNAL_SERVER_ERROR")
    body = {"err_code": code, "err_msg": message, "request_id": str(uuid.uuid4())}
    return web.json_response(body, status=status)


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _wav_header(sample_rate: int) -> bytes:
    # sizes unknown while streaming: 0xFFFFFFFF, as streaming servers write them
    return (
        b"RIFF"
        + (0xFFFFFFFF).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")
        + (1).to_bytes(2, "little")
        + sample_rate.to_bytes(4, "little")
        + (sample_rate * 2).to_bytes(4, "little")
        + (2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + (0xFFFFFFFF).to_bytes(4, "little")
    )


class _SpeakParams:
    """The query parameters of a speak request, validated."""

    def __init__(self, query: Mapping[str, str]) -> None:
        self.model = query.get("model", "aura-asteria-en")
        self.encoding = query.get("encoding", "linear16")
        self.sample_rate = int(query.get("sample_rate", "24000"))
        self.container = query.get("container", "wav")
        raw_speed = query.get("speed")
        self.speed = float(raw_speed) if raw_speed is not None else None

    def problem(self) -> str | None:
        if self.encoding != "linear16":
            return "only encoding=linear16 is supported by the sandbox"
        if self.speed is not None and not 0.7 <= self.speed <= 1.5:
            return "speed must be between 0.7 and 1.5"
        if not 8000 <= self.sample_rate <= 48000:
            return "unsupported sample_rate"
        return None


class FakeDeepgram(FakeProviderServer):
    """The fake Deepgram server."""

    provider = "deepgram"
    service_paths = {"stt": "/v1/listen", "tts": "/v1/speak"}

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speech_threshold_dbfs: float = -45.0,
        min_endpointing_ms: int = 300,
    ) -> None:
        super().__init__(host=host, port=port)
        self.speech_threshold_dbfs = speech_threshold_dbfs
        self.min_endpointing_ms = min_endpointing_ms

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    @property
    def listen_url(self) -> str:
        return f"{self.origin}/v1/listen"

    @property
    def speak_url(self) -> str:
        return f"{self.origin}/v1/speak"

    def error_response(self, status: int, message: str) -> web.Response:
        return _error(status, message)

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/v1/listen", self._listen)
        app.router.add_route("*", "/v1/speak", self._speak)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    async def _not_found(self, request: web.Request) -> web.Response:
        return _error(404, "unknown endpoint")

    # --- listen ----------------------------------------------------------------------------------------------
    async def _listen(self, request: web.Request) -> web.StreamResponse:
        record: RecordedRequest = request[RECORD_KEY]
        if record.query.get("encoding", "linear16") != "linear16" or record.query.get("channels", "1") != "1":
            return _error(400, "the sandbox transcribes mono linear16 only")
        try:
            options = ListenOptions.from_query(record.query, keyterms=tuple(request.query.getall("keyterm", ())))
        except ValueError:
            return _error(400, "malformed query parameter")
        if _is_websocket(request):
            return await self._listen_ws(request, record=record, options=options)
        if request.method != "POST":
            return _error(405, "method not allowed")
        return await self._listen_post(request, record=record, options=options)

    async def _listen_post(
        self, request: web.Request, *, record: RecordedRequest, options: ListenOptions
    ) -> web.StreamResponse:
        record.audio += await request.read()
        try:
            result = await transcribe_file(bytes(record.audio))
        except speech.SpeechEngineError:
            return _error(400, "audio could not be decoded")
        record.text = result.text
        alt = alternative(
            result.text, start=0.0, duration=result.duration, punctuate=options.punctuate, language=options.language
        )
        request_id = str(uuid.uuid4())
        body = {
            "metadata": {
                "request_id": request_id,
                "duration": result.duration,
                "channels": 1,
                "models": [options.model],
            },
            "results": {"channels": [{"alternatives": [alt]}]},
        }
        return web.json_response(body, headers={"dg-request-id": request_id})

    async def _listen_ws(
        self, request: web.Request, *, record: RecordedRequest, options: ListenOptions
    ) -> web.StreamResponse:
        fault: Fault | None = request.get(FAULT_KEY)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        record.status = 101

        async def send(message: dict[str, object]) -> None:
            if ws.closed:
                return
            if message.get("type") == "Results":
                await self.pace(request)
                if message.get("is_final"):
                    alternatives = message["channel"]["alternatives"]  # type: ignore[index]
                    record.text = " ".join(filter(None, (record.text, alternatives[0]["transcript"])))
            await ws.send_json(message)

        session = ListenSession(
            options,
            send=send,
            speech_threshold_dbfs=self.speech_threshold_dbfs,
            min_endpointing_ms=self.min_endpointing_ms,
        )
        results = self.spawn(session.run_results())
        frames = 0
        try:
            async for message in ws:
                if message.type == WSMsgType.BINARY:
                    record.audio += message.data
                    frames += 1
                    if fault is not None and fault.kind == "drop" and frames >= fault.after_chunks:
                        await ws.close(code=1011, message=b"injected drop")
                        break
                    session.push_audio(message.data)
                elif message.type == WSMsgType.TEXT and await self._listen_control(
                    message.data, ws=ws, session=session, record=record, results=results
                ):
                    break
        finally:
            session.close()
            if ws.closed:
                results.cancel()
        return ws

    async def _listen_control(
        self,
        data: str,
        *,
        ws: web.WebSocketResponse,
        session: ListenSession,
        record: RecordedRequest,
        results: asyncio.Task[None],
    ) -> bool:
        """Handle one control message; True when the stream is over."""
        try:
            parsed = json.loads(data)
        except ValueError:
            return False
        record.messages.append(parsed)
        kind = parsed.get("type") if isinstance(parsed, dict) else None
        if kind == "Finalize":
            session.finalize(from_finalize=True)
        elif kind == "CloseStream":
            session.finalize(from_finalize=False)
            session.close()
            await results
            if not ws.closed:
                await ws.send_json(session.metadata())
                await ws.close()
            return True
        return False

    # --- speak -----------------------------------------------------------------------------------------------
    async def _speak(self, request: web.Request) -> web.StreamResponse:
        record: RecordedRequest = request[RECORD_KEY]
        try:
            params = _SpeakParams(record.query)
        except ValueError:
            return _error(400, "malformed query parameter")
        problem = params.problem()
        if problem is not None:
            return _error(400, problem)
        record.voice, record.speed = params.model, params.speed
        if _is_websocket(request):
            return await self._speak_ws(request, record=record, params=params)
        if request.method != "POST":
            return _error(405, "method not allowed")
        body = record.json
        text = body.get("text") if isinstance(body, Mapping) else None
        if not isinstance(text, str) or not text.strip():
            return _error(400, "text is required")
        record.text = text
        fault: Fault | None = request.get(FAULT_KEY)
        response = web.StreamResponse(headers={"Content-Type": "audio/l16", "dg-request-id": str(uuid.uuid4())})
        sent = 0
        if params.container == "wav":
            await response.prepare(request)
            await response.write(_wav_header(params.sample_rate))
        for sentence in _sentences(text):
            pcm = await asyncio.to_thread(_synthesize, sentence, params)
            if not response.prepared:
                await response.prepare(request)
            for piece in _split(pcm, params.sample_rate):
                if fault is not None and fault.kind == "drop" and sent >= fault.after_chunks:
                    drop_connection(request)
                    return response
                if sent:
                    await self.pace(request)
                await response.write(piece)
                sent += 1
        await response.write_eof()
        return response

    async def _speak_ws(
        self, request: web.Request, *, record: RecordedRequest, params: _SpeakParams
    ) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        record.status = 101
        speaker = _Speaker(ws=ws, record=record, params=params, request=request)
        await ws.send_json(
            {
                "type": "Metadata",
                "request_id": str(uuid.uuid4()),
                "model_name": params.model,
                "model_version": "sandbox",
                "model_uuid": str(uuid.uuid4()),
            }
        )
        worker = self.spawn(speaker.run())
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                if await speaker.on_message(message.data):
                    break
        finally:
            speaker.stop()
            if ws.closed:
                worker.cancel()
            else:
                await worker
                await ws.close()
        return ws


class _Speaker:
    """One speak websocket: buffered text, flushes synthesized in order, ``Clear`` cancelling what is queued."""

    def __init__(
        self,
        *,
        ws: web.WebSocketResponse,
        record: RecordedRequest,
        params: _SpeakParams,
        request: web.Request,
    ) -> None:
        self._ws = ws
        self._record = record
        self._params = params
        self._request = request
        self._fault = request.get(FAULT_KEY)
        self._buffer: list[str] = []
        self._flushes: asyncio.Queue[tuple[str, int] | None] = asyncio.Queue()
        self._sequence = 0
        self._generation = 0
        self._sent = 0

    async def on_message(self, data: str) -> bool:
        """Handle one client message; True when the client asked to close."""
        try:
            parsed = json.loads(data)
        except ValueError:
            return False
        self._record.messages.append(parsed)
        kind = parsed.get("type") if isinstance(parsed, dict) else None
        if kind == "Speak" and isinstance(parsed.get("text"), str):
            self._buffer.append(parsed["text"])
            self._record.text += parsed["text"]
        elif kind == "Flush":
            self._flushes.put_nowait(("".join(self._buffer), self._sequence))
            self._buffer.clear()
            self._sequence += 1
        elif kind == "Clear":
            self._buffer.clear()
            self._generation += 1
            while not self._flushes.empty():
                self._flushes.get_nowait()
            await self._ws.send_json({"type": "Cleared", "sequence_id": self._sequence})
        elif kind == "Close":
            return True
        return False

    def stop(self) -> None:
        self._flushes.put_nowait(None)

    async def run(self) -> None:
        while (item := await self._flushes.get()) is not None:
            text, sequence = item
            generation = self._generation
            for sentence in _sentences(text):
                pcm = await asyncio.to_thread(_synthesize, sentence, self._params)
                for piece in _split(pcm, self._params.sample_rate):
                    if generation != self._generation or self._ws.closed:
                        break
                    if (
                        self._fault is not None
                        and self._fault.kind == "drop"
                        and self._sent >= self._fault.after_chunks
                    ):
                        await self._ws.close(code=1011, message=b"injected drop")
                        return
                    if self._sent:
                        await FakeDeepgram.pace(self._request)
                    await self._ws.send_bytes(piece)
                    self._sent += 1
            if generation == self._generation and not self._ws.closed:
                await self._ws.send_json({"type": "Flushed", "sequence_id": sequence})


def _sentences(text: str) -> list[str]:
    return [part for part in _SENTENCE_END.split(text.strip()) if part]


def _synthesize(sentence: str, params: _SpeakParams) -> bytes:
    return speech.synthesizer().synthesize(sentence, speed=params.speed or 1.0, sample_rate=params.sample_rate)


def _split(pcm: bytes, sample_rate: int) -> list[bytes]:
    size = int(sample_rate * AUDIO_CHUNK_SECONDS) * 2
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]
