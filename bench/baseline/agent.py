"""A plain LiveKit voice agent, written the way ``livekit-examples/agent-starter-python`` writes one.

    python -m livekit.agents start bench/baseline/agent.py --simulation

`AgentServer` + ``@server.rtc_session`` + `AgentSession`, Silero VAD prewarmed in ``setup_fnc``, OpenAI STT, LLM
and TTS (the ``openai`` client reads ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``), and the framework's defaults for
everything else: turn detection (``inference.TurnDetector()``, the local ``v1-mini`` audio model under ``start``),
endpointing, interruptions, preemptive generation, the 3 s AEC warm-up, the session host, RoomIO's ``lk.chat``
handling and the TTS's response format. No per-call configuration: the greeting is a constant. The agent name
comes from ``LIVEKIT_AGENT_NAME``, as the framework reads it.

It imports nothing of ``agent``. ``--simulation`` is the framework's own switch that turns its CPU-based load limit
off: on a 2-core box shared with other work the default limit (0.7 of the CPU) would refuse every dispatch.
"""

from __future__ import annotations

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, JobProcess
from livekit.plugins import openai, silero

GREETING = "Hello! Thanks for calling. How can I help you today?"


class Assistant(Agent):
    def __init__(self) -> None:
        super().__init__(
            instructions="You are a helpful voice AI assistant. Keep your answers short and friendly.",
        )


server = AgentServer()


def prewarm(proc: JobProcess) -> None:
    proc.userdata["vad"] = silero.VAD.load()


server.setup_fnc = prewarm


@server.rtc_session()
async def baseline_agent(ctx: JobContext) -> None:
    ctx.log_context_fields = {"room": ctx.room.name}
    session: AgentSession[None] = AgentSession(
        stt=openai.STT(),
        llm=openai.LLM(model="gpt-4.1-mini"),
        tts=openai.TTS(),
        vad=ctx.proc.userdata["vad"],
    )
    await session.start(agent=Assistant(), room=ctx.room)
    await ctx.connect()
    session.say(GREETING)
