"""The real livekit openai plugins (LLM, TTS, STT) against the fake OpenAI server, with real speech both ways."""

from __future__ import annotations

import json

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import (
    Agent,
    AgentSession,
    APIConnectionError,
    APIConnectOptions,
    APIStatusError,
    RunResult,
    function_tool,
    llm,
)
from livekit.plugins import openai

from sandbox.providers import FakeOpenAI, Reply, ToolCall, speech

pytestmark = pytest.mark.slow

NO_RETRY = APIConnectOptions(max_retry=0, retry_interval=0.0, timeout=10.0)
ONE_RETRY = APIConnectOptions(max_retry=1, retry_interval=0.0, timeout=10.0)
SENTENCE = "The quick brown fox jumps over the lazy dog."


def _llm(server: FakeOpenAI, **kwargs: object) -> openai.LLM:
    return openai.LLM(base_url=server.base_url, api_key="sandbox", **kwargs)  # type: ignore[arg-type]


def _chat(text: str) -> llm.ChatContext:
    ctx = llm.ChatContext()
    ctx.add_message(role="system", content="You are a helpful assistant.")
    ctx.add_message(role="user", content=text)
    return ctx


async def _collect(stream: llm.LLMStream) -> tuple[str, list[llm.FunctionToolCall], llm.CompletionUsage | None]:
    text, calls, usage = "", [], None
    async with stream:
        async for chunk in stream:
            if chunk.delta is not None:
                text += chunk.delta.content or ""
                calls += chunk.delta.tool_calls
            if chunk.usage is not None:
                usage = chunk.usage
    return text, calls, usage


def _overlap(expected: str, heard: str) -> float:
    wanted = speech.words_of(expected)
    got = set(speech.words_of(heard))
    return sum(word in got for word in wanted) / len(wanted)


async def _synthesized_pcm(stream: object) -> tuple[bytes, int]:
    frames: list[rtc.AudioFrame] = []
    async with stream:  # type: ignore[attr-defined]
        async for audio in stream:  # type: ignore[attr-defined]
            frames.append(audio.frame)
    frame = rtc.combine_audio_frames(frames)
    return bytes(frame.data), frame.sample_rate


async def test_llm_streams_the_echo_reply_with_usage(fake_openai: FakeOpenAI) -> None:
    model = _llm(fake_openai, model="gpt-4o-mini", temperature=0.3)
    text, calls, usage = await _collect(model.chat(chat_ctx=_chat("book a table for two"), conn_options=NO_RETRY))
    assert text == "You said: book a table for two"
    assert calls == []
    assert usage is not None
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    [request] = fake_openai.requests_to("/v1/chat/completions")
    assert isinstance(request.json, dict)
    assert request.json["model"] == "gpt-4o-mini"
    assert request.json["temperature"] == 0.3
    assert request.json["stream_options"] == {"include_usage": True}
    assert request.auth_scheme == "Bearer"
    assert "Authorization" not in request.headers


async def test_llm_receives_a_scripted_tool_call_with_streamed_arguments(fake_openai: FakeOpenAI) -> None:
    @function_tool
    async def book_table(people: int, time: str) -> str:
        """Book a table.

        Args:
            people: how many guests
            time: when
        """
        return "booked"

    fake_openai.script(Reply(tool_calls=(ToolCall(name="book_table", arguments={"people": 2, "time": "19:00"}),)))
    model = _llm(fake_openai, model="gpt-4.1-mini")
    stream = model.chat(chat_ctx=_chat("table for two at seven"), tools=[book_table], conn_options=NO_RETRY)
    text, calls, _usage = await _collect(stream)
    assert text == ""
    assert [(call.name, json.loads(call.arguments)) for call in calls] == [
        ("book_table", {"people": 2, "time": "19:00"})
    ]
    [request] = fake_openai.requests_to("/v1/chat/completions")
    assert isinstance(request.json, dict)
    assert [tool["function"]["name"] for tool in request.json["tools"]] == ["book_table"]


async def test_llm_after_the_script_falls_back_to_the_reply_policy(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("First scripted answer.")
    fake_openai.replies.policy = lambda body: Reply(text="policy answer")
    model = _llm(fake_openai, model="gpt-4o-mini")
    first, _, _ = await _collect(model.chat(chat_ctx=_chat("one"), conn_options=NO_RETRY))
    second, _, _ = await _collect(model.chat(chat_ctx=_chat("two"), conn_options=NO_RETRY))
    assert (first, second) == ("First scripted answer.", "policy answer")


async def test_llm_retries_after_an_injected_500_and_the_retry_is_recorded(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_next(500)
    text, _, _ = await _collect(_llm(fake_openai).chat(chat_ctx=_chat("hello"), conn_options=ONE_RETRY))
    assert text == "You said: hello"
    assert [(r.status, r.fault) for r in fake_openai.requests_to("/v1/chat")] == [(500, "status"), (200, None)]


async def test_llm_surfaces_a_429_as_api_status_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_next(429)
    with pytest.raises(APIStatusError) as caught:
        await _collect(_llm(fake_openai).chat(chat_ctx=_chat("hello"), conn_options=NO_RETRY))
    assert caught.value.status_code == 429


async def test_llm_gives_up_after_its_retries_on_a_persistent_500(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_next(500, times=5)
    with pytest.raises(APIConnectionError) as caught:
        await _collect(_llm(fake_openai).chat(chat_ctx=_chat("hello"), conn_options=ONE_RETRY))
    assert isinstance(caught.value.__cause__, APIStatusError)
    assert [r.status for r in fake_openai.requests_to("/v1/chat")] == [500, 500]


async def test_llm_sees_a_dropped_stream_as_a_connection_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.drop_next(after_chunks=2)
    with pytest.raises(APIConnectionError):
        await _collect(_llm(fake_openai).chat(chat_ctx=_chat("a long enough message"), conn_options=NO_RETRY))
    [request] = fake_openai.requests_to("/v1/chat")
    assert request.fault == "drop"


async def test_llm_times_out_on_a_hanging_server(fake_openai: FakeOpenAI) -> None:
    fake_openai.hang_next()
    quick = APIConnectOptions(max_retry=0, retry_interval=0.0, timeout=1.0)
    with pytest.raises(APIConnectionError):  # APITimeoutError is a subclass
        await _collect(_llm(fake_openai).chat(chat_ctx=_chat("hello"), conn_options=quick))


async def test_llm_prewarm_lists_models(fake_openai: FakeOpenAI) -> None:
    model = _llm(fake_openai)
    await model._prewarm_impl()
    assert [r.path for r in fake_openai.requests] == ["/v1/models"]


@pytest.mark.parametrize(
    ("model", "response_format"),
    [
        ("gpt-4o-mini-tts", "mp3"),
        ("gpt-4o-mini-tts", "wav"),
        ("tts-1", "pcm"),
        ("tts-1", "opus"),
        ("tts-1", "aac"),
        ("tts-1", "flac"),
    ],
    ids=["sse-mp3", "sse-wav", "raw-pcm", "raw-opus", "raw-aac", "raw-flac"],
)
async def test_tts_speaks_the_requested_text(fake_openai: FakeOpenAI, model: str, response_format: str) -> None:
    tts = openai.TTS(
        model=model,
        voice="coral",
        speed=1.25,
        response_format=response_format,
        base_url=fake_openai.base_url,
        api_key="sandbox",
    )
    pcm, rate = await _synthesized_pcm(tts.synthesize(SENTENCE, conn_options=NO_RETRY))
    heard = speech.transcriber().transcribe(pcm, sample_rate=rate)
    assert _overlap(SENTENCE, heard.text) >= 0.6, heard.text
    [request] = fake_openai.requests_to("/v1/audio/speech")
    assert (request.voice, request.speed, request.text) == ("coral", 1.25, SENTENCE)
    assert isinstance(request.json, dict)
    assert request.json["model"] == model
    assert request.json["response_format"] == response_format


async def test_tts_speed_shortens_the_speech(fake_openai: FakeOpenAI) -> None:
    durations = []
    for speed in (0.8, 1.6):
        tts = openai.TTS(
            model="tts-1", voice="alloy", speed=speed, response_format="pcm", base_url=fake_openai.base_url, api_key="k"
        )
        pcm, rate = await _synthesized_pcm(tts.synthesize(SENTENCE, conn_options=NO_RETRY))
        durations.append(len(pcm) / 2 / rate)
    assert durations[1] < durations[0] * 0.7


async def test_tts_gets_an_api_status_error_from_an_injected_500(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_next(500, path="/v1/audio/speech")
    tts = openai.TTS(voice="alloy", base_url=fake_openai.base_url, api_key="sandbox")
    with pytest.raises(APIStatusError) as caught:
        await _synthesized_pcm(tts.synthesize(SENTENCE, conn_options=NO_RETRY))
    assert caught.value.status_code == 500


async def test_stt_transcribes_an_espeak_utterance(fake_openai: FakeOpenAI) -> None:
    pcm = speech.espeak_utterance("Hello, I would like to order a pizza please.", sample_rate=16000)
    frame = rtc.AudioFrame(data=pcm, sample_rate=16000, num_channels=1, samples_per_channel=len(pcm) // 2)
    stt = openai.STT(model="whisper-1", language="en", base_url=fake_openai.base_url, api_key="sandbox")
    event = await stt.recognize([frame], conn_options=NO_RETRY)
    heard = speech.words_of(event.alternatives[0].text)
    assert {"order", "pizza"} <= set(heard), heard
    [request] = fake_openai.requests_to("/v1/audio/transcriptions")
    assert request.form["model"] == "whisper-1"
    assert request.form["language"] == "en"
    assert request.form["response_format"] == "verbose_json"
    assert bytes(request.audio[:4]) == b"RIFF"


async def test_stt_of_silence_is_empty(fake_openai: FakeOpenAI) -> None:
    silence = np.zeros(16000, dtype=np.int16).tobytes()
    frame = rtc.AudioFrame(data=silence, sample_rate=16000, num_channels=1, samples_per_channel=16000)
    stt = openai.STT(base_url=fake_openai.base_url, api_key="sandbox")
    event = await stt.recognize([frame], conn_options=NO_RETRY)
    assert speech.words_of(event.alternatives[0].text) == ()


async def test_stt_sees_a_dropped_connection_as_a_connection_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.drop_next(path="/v1/audio/transcriptions")
    pcm = speech.espeak_utterance("Hello.", sample_rate=16000)
    frame = rtc.AudioFrame(data=pcm, sample_rate=16000, num_channels=1, samples_per_channel=len(pcm) // 2)
    stt = openai.STT(base_url=fake_openai.base_url, api_key="sandbox")
    with pytest.raises(APIConnectionError):
        await stt.recognize([frame], conn_options=NO_RETRY)
    [request] = fake_openai.requests_to("/v1/audio/transcriptions")
    assert request.fault == "drop"


class _OrderDesk(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Answer order questions briefly.")

    @function_tool
    async def lookup(self, order: int) -> str:
        """Look up an order.

        Args:
            order: the order number
        """
        return f"order {order} ships tomorrow"


async def test_agent_session_runs_a_tool_turn_through_the_fake(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply(tool_calls=(ToolCall(name="lookup", arguments={"order": 7}),)), "It ships tomorrow.")
    model = _llm(fake_openai, model="gpt-4o-mini", temperature=0.2)
    async with AgentSession(llm=model) as session:
        await session.start(_OrderDesk())
        result: RunResult[None] = await session.run(user_input="where is order 7")
    result.expect.next_event().is_function_call(name="lookup", arguments={"order": 7})
    result.expect.next_event().is_function_call_output(output="order 7 ships tomorrow")
    result.expect.next_event().is_message(role="assistant")
    chats = [r.json for r in fake_openai.requests_to("/v1/chat/completions")]
    assert all(isinstance(body, dict) and body["temperature"] == 0.2 for body in chats)
    second = chats[1]
    assert isinstance(second, dict)
    assert second["messages"][0]["content"] == "Answer order questions briefly."
    assert second["messages"][-1]["role"] == "tool"
