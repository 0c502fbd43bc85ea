"""One worker, one sandbox server and three fakes, for the provider-fault calls.

The worker has every fallback there is. LLM: the fake OpenAI, then a second fake OpenAI
(``WEBCALL_LLM_FALLBACK_BASE_URL``); STT: Deepgram, then OpenAI; TTS: OpenAI, then Deepgram. A fault on the first
provider of a chain shows the switch; the same fault on every provider of the chain is what a call without a
fallback meets (the session sees its one engine fail either way). One worker serves every case: starting one costs
tens of seconds on a loaded 2-core machine.

Time-outs are small (``WEBCALL_*_TIMEOUT_S=2``) so a never-answered or 5 s-slow provider costs 2 s, not 5; faults are
one-shot and queued on the fakes' endpoints, so the cases run one after another, never two calls at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livekit import api, rtc

from sandbox.providers import FakeDeepgram, FakeOpenAI, speech
from sandbox.server.process import ServerProcess, start_server_process
from tests.e2e.stack import Caller, WorkerProcess, room_name, spool_events, until, worker_env

AGENT = "webcall-faults"
PROVIDER_TIMEOUT_S = 2.0
# What the tests allow between the caller's turn and the apology: the LLM time-out plus the apology's synthesis and
# delivery on a loaded 2-core machine (the documented bound is WEBCALL_LLM_TIMEOUT_S + 1 s on an idle one).
APOLOGY_WITHIN_S = 20.0
# A never-answered request is held this long by a fake (longer than any time-out here, shorter than a test).
HANG_LIMIT_S = 15.0


@dataclass
class FaultStacks:
    server: ServerProcess
    openai: FakeOpenAI
    deepgram: FakeDeepgram
    openai_fallback: FakeOpenAI
    worker: WorkerProcess
    lk: api.LiveKitAPI
    spool: Path

    def fakes(self) -> tuple[FakeOpenAI, FakeDeepgram, FakeOpenAI]:
        return self.openai, self.deepgram, self.openai_fallback

    def ended(self, room: str) -> dict[str, Any] | None:
        """The room's ``call.ended`` event from the spool, once written."""
        for event in spool_events(self.spool):
            if event.get("room") == room and event.get("type") == "call.ended":
                return dict(event)
        return None


@contextlib.asynccontextmanager
async def fault_stacks(spool: Path) -> AsyncIterator[FaultStacks]:
    await asyncio.to_thread(speech.load_all)
    server = await start_server_process(port=0)
    try:
        async with FakeOpenAI() as openai, FakeDeepgram() as deepgram, FakeOpenAI() as openai_fallback:
            for fake in (openai, deepgram, openai_fallback):
                fake.controls.hang_limit = HANG_LIMIT_S
            common = {
                "WEBCALL_EVENTS_DIR": str(spool),
                "WEBCALL_LLM_TIMEOUT_S": str(PROVIDER_TIMEOUT_S),
                "WEBCALL_TTS_TIMEOUT_S": str(PROVIDER_TIMEOUT_S),
                "WEBCALL_STT_TIMEOUT_S": str(PROVIDER_TIMEOUT_S),
                "WEBCALL_IDLE_PROCESSES": "1",
            }
            env = worker_env(
                server,
                openai,
                deepgram,
                LIVEKIT_AGENT_NAME=AGENT,
                WEBCALL_LLM_FALLBACK_BASE_URL=openai_fallback.base_url,
                **common,
            )
            worker = await WorkerProcess.start(env)
            lk = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
            try:
                yield FaultStacks(
                    server=server,
                    openai=openai,
                    deepgram=deepgram,
                    openai_fallback=openai_fallback,
                    worker=worker,
                    lk=lk,
                    spool=spool,
                )
            finally:
                await lk.aclose()
                await worker.aclose()
    finally:
        await server.aclose()


@dataclass
class FaultCall:
    """One call to one of the workers: the caller, what they read on ``lk.chat``, and the room."""

    stacks: FaultStacks
    room: str
    caller: Caller
    chat: list[str] = field(default_factory=list)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, stacks: FaultStacks, *, metadata: dict[str, object], microphone: bool = False
    ) -> AsyncIterator[FaultCall]:
        room = room_name("faults")
        await stacks.lk.room.create_room(api.CreateRoomRequest(name=room))
        caller = await Caller.join(stacks.server, room=room, microphone=microphone)
        call = cls(stacks=stacks, room=room, caller=caller)
        caller.room.register_text_stream_handler("lk.chat", call._on_chat)
        try:
            await stacks.lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=AGENT, room=room, metadata=json.dumps(metadata))
            )
            yield call
        finally:
            await caller.leave()
            with contextlib.suppress(api.TwirpError):
                await stacks.lk.room.delete_room(api.DeleteRoomRequest(room=room))

    def _on_chat(self, reader: rtc.TextStreamReader, _identity: str) -> None:
        async def read() -> None:
            self.chat.append(await reader.read_all())

        self.caller._tasks.spawn(read())

    def read(self, text: str) -> int:
        """How many ``lk.transcription`` segments contain `text`."""
        return sum(text in t for t in self.caller.transcriptions)

    async def until_read(self, text: str, *, times: int = 1, within_s: float, what: str) -> None:
        await until(lambda: self.read(text) >= times, within_s=within_s, what=what)

    async def until_heard(self, since: float, *, within_s: float, what: str) -> None:
        await until(lambda: self.caller.loud_since(since) > 0.3, within_s=within_s, what=what)
