"""The events' JSON, built purely from a resolved `CallConfig` (the seeds' own example bodies), a real `Transcript`
and real usage objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest
from livekit.agents.metrics.usage import LLMModelUsage, ModelUsage, STTModelUsage, TTSModelUsage

from agent.chat_limits import ChatEvent
from agent.config.call_config import CallConfig
from agent.config.golden import GoldenCase, read_case, read_cases
from agent.config.resolve import CallSources, resolve_call
from agent.events.bounds import KEPT_INCIDENTS, size_of
from agent.events.payload import (
    MAX_ITEM_CHARS,
    CallFacts,
    config_resolved_event,
    ended_event,
    started_event,
)
from agent.events.prices import load_prices
from agent.events.usage import merge_usage
from agent.settings import Settings
from agent.transcript import Transcript

EXAMPLES = Path("config/examples")
FACTS = CallFacts(job_id="AJ_abc123", room="web-room-1", started_at=1_700_000_000.0)
USAGE: list[ModelUsage] = [
    LLMModelUsage(provider="api.openai.com", model="gpt-4o-mini", input_tokens=1200, output_tokens=80),
    TTSModelUsage(provider="api.openai.com", model="gpt-4o-mini-tts", characters_count=150, audio_duration=9.5),
    STTModelUsage(provider="Deepgram", model="nova-3", audio_duration=30.0),
]


def resolved(example: str) -> CallConfig:
    """The config of a golden case's dispatch metadata alone."""
    case = read_case(EXAMPLES / example)
    return resolve_call(CallSources(job_metadata=case.job_metadata), settings=Settings())


def a_transcript() -> Transcript:
    transcript = Transcript()
    transcript.add(channel="voice", role="assistant", speaker="agent", text="Hi, how can I help?", at=1_700_000_001.0)
    transcript.add(channel="chat", role="user", speaker="caller", text="Do you ship to Oman?", at=1_700_000_003.0)
    transcript.add(channel="chat", role="assistant", speaker="agent", text="Yes, in five days.", at=1_700_000_004.0)
    return transcript


def transcript_of(body: dict[str, object]) -> list[dict[str, object]]:
    items = body["transcript"]
    assert isinstance(items, list)
    return items


def the_end(config: CallConfig, *, include_content: bool = True) -> dict[str, object]:
    return ended_event(
        config,
        facts=FACTS,
        ended_at=1_700_000_042.5,
        end_reason="caller_left",
        transcript=a_transcript().items,
        usage=USAGE,
        prices=load_prices(Path("config")),
        include_content=include_content,
    ).body


def test_call_started_carries_the_convoi_metadata_verbatim_and_the_warnings_as_codes_and_fields() -> None:
    config = resolved("convoi/with_overrides.json")

    event = started_event(config, facts=FACTS, include_content=True, now=1_700_000_000.5)

    body = event.body
    assert body["type"] == "call.started"
    assert body["id"] == event.id
    assert event.id.startswith("evt_")
    assert body["idempotency_key"] == event.idempotency_key == "AJ_abc123:call.started"
    assert body["created_at"] == "2023-11-14T22:13:20.500Z"
    assert (body["room"], body["dialect"], body["agent_id"]) == (
        "web-room-1",
        "convoi",
        "agt_b88d642dd68747f28305c428b209xxxx",
    )
    call = body["call"]
    assert isinstance(call, dict)
    assert call["metadata"] == {"source": "landing-page", "user_ref": "u_42"}
    assert call["participant_name"] == "xyz"
    assert body["warnings"] == [
        {"code": "not_allowed", "field": "tts.voice"},
        {"code": "unknown_knowledge_base", "field": "knowledge_base_ids[0]"},
    ]


def test_sawt_pre_call_variables_are_kept_apart_from_the_prompt_variables() -> None:
    config = resolved("sawt/documented_body.json")

    body = started_event(config, facts=FACTS, include_content=True, now=1_700_000_000.0).body

    call = body["call"]
    assert isinstance(call, dict)
    assert call["pre_call_variables"] == {"account_id": "ACC123"}
    assert call["user_ref"] == "user_12345"
    assert body["variables"] == {"customer_name": "Mohammed", "language": "Arabic"}


def test_call_ended_holds_both_channels_in_order_with_channel_role_and_speaker() -> None:
    body = the_end(resolved("convoi/with_overrides.json"))

    assert body["type"] == "call.ended"
    assert body["idempotency_key"] == "AJ_abc123:call.ended"
    assert [(i["channel"], i["role"], i["speaker"], i["text"]) for i in transcript_of(body)] == [
        ("voice", "assistant", "agent", "Hi, how can I help?"),
        ("chat", "user", "caller", "Do you ship to Oman?"),
        ("chat", "assistant", "agent", "Yes, in five days."),
    ]
    assert (body["duration_s"], body["end_reason"]) == (42.5, "caller_left")


def test_call_ended_reports_usage_and_an_estimated_cost_per_model() -> None:
    body = the_end(resolved("convoi/with_overrides.json"))

    usage = body["usage"]
    assert isinstance(usage, dict)
    assert usage["totals"] == {
        "llm_input_tokens": 1200,
        "llm_output_tokens": 80,
        "tts_characters": 150,
        "tts_audio_s": 9.5,
        "stt_audio_s": 30.0,
    }
    cost = body["cost"]
    assert isinstance(cost, dict)
    assert cost["estimate"] is True
    assert cost["currency"] == "USD"
    # gpt-4o-mini 1200 in * 0.15/M + 80 out * 0.60/M; gpt-4o-mini-tts 9.5 s * 0.015/min; nova-3 30 s * 0.0077/min
    expected = {"llm": 0.000228, "tts": 0.002375, "stt": 0.00385}
    assert {line["kind"]: line["amount"] for line in cost["lines"]} == expected
    assert [line["provider"] for line in cost["lines"]] == ["openai", "openai", "deepgram"]
    assert cost["total"] == round(sum(expected.values()), 6)
    assert cost["unpriced"] == []


def test_a_model_missing_from_the_price_table_is_listed_unpriced_and_left_out_of_the_total() -> None:
    from agent.events.prices import estimate_cost

    prices = load_prices(Path("config"))
    assert prices is not None
    cost = estimate_cost([TTSModelUsage(provider="local", model="mystery-voice", characters_count=10)], prices)

    assert cost["total"] == 0.0
    assert cost["unpriced"] == [{"kind": "tts", "provider": "local", "model": "mystery-voice"}]


def test_deepgram_voices_are_priced_by_the_longest_matching_model_prefix() -> None:
    prices = load_prices(Path("config"))
    assert prices is not None

    aura2 = prices.rates_for("tts", provider="Deepgram", model="aura-2-thalia-en")
    aura1 = prices.rates_for("tts", provider="Deepgram", model="aura-asteria-en")

    assert aura2 is not None
    assert aura2[1].per_1m_characters == 30.0
    assert aura1 is not None
    assert aura1[1].per_1m_characters == 15.0


def test_without_content_the_event_has_no_transcript_text_no_variables_and_no_caller_name() -> None:
    config = resolved("sawt/documented_body.json")

    body = the_end(config, include_content=False)

    text = json.dumps(body)
    for caller_data in ("Do you ship to Oman?", "Mohammed", "ACC123", "Yes, in five days."):
        assert caller_data not in text
    assert body["content_included"] is False
    assert [i["chars"] for i in transcript_of(body)] == [19, 20, 18]
    assert "variables" not in body


def test_without_content_speakers_are_named_by_role_and_order_never_by_their_identity() -> None:
    transcript = Transcript()
    transcript.add(channel="voice", role="user", speaker="+96890012345", text="Hello", at=1_700_000_001.0)
    transcript.add(channel="voice", role="assistant", speaker="agent-AJ_x1", text="Hi", at=1_700_000_002.0)
    transcript.add(channel="chat", role="user", speaker="amira@example.com", text="Me too", at=1_700_000_003.0)
    transcript.add(channel="voice", role="user", speaker="+96890012345", text="Again", at=1_700_000_004.0)

    def speakers(include_content: bool) -> list[object]:
        return [item["speaker"] for item in transcript_of(an_end_of(transcript, include_content=include_content))]

    assert speakers(False) == ["participant-1", "agent", "participant-2", "participant-1"]
    assert speakers(True) == ["+96890012345", "agent-AJ_x1", "amira@example.com", "+96890012345"]


def test_no_setting_and_no_warning_message_reaches_an_event() -> None:
    config = resolved("convoi/with_overrides.json")

    text = json.dumps(the_end(config))

    assert all(w.message not in text for w in config.warnings)
    assert config.instructions not in text


def test_usage_spent_outside_the_session_is_added_to_the_same_models_entry() -> None:
    session_tts = TTSModelUsage(provider="openai", model="gpt-4o-mini-tts", characters_count=40, audio_duration=2.5)
    welcome_tts = TTSModelUsage(provider="openai", model="gpt-4o-mini-tts", characters_count=30, audio_duration=2.0)
    other_tts = TTSModelUsage(provider="deepgram", model="aura-2-thalia-en", characters_count=5, audio_duration=0.5)
    llm_usage = LLMModelUsage(provider="openai", model="gpt-4o-mini", input_tokens=10, output_tokens=3)

    merged = merge_usage([session_tts, llm_usage, welcome_tts, other_tts])

    tts = [u for u in merged if isinstance(u, TTSModelUsage)]
    assert [(u.provider, u.characters_count, u.audio_duration) for u in tts] == [
        ("openai", 70, 4.5),
        ("deepgram", 5, 0.5),
    ]
    assert [u for u in merged if isinstance(u, LLMModelUsage)] == [llm_usage]
    assert session_tts.characters_count == 40, "the inputs are not changed"


def ended_with(incidents: list[ChatEvent], *, counts: dict[str, int] | None = None) -> dict[str, object]:
    return ended_event(
        resolved("convoi/with_overrides.json"),
        facts=FACTS,
        ended_at=1_700_000_042.5,
        end_reason="caller_left",
        transcript=a_transcript().items,
        usage=USAGE,
        prices=None,
        include_content=False,
        incidents=incidents,
        incident_counts=counts,
    ).body


def test_call_ended_lists_what_the_chat_channel_did_with_codes_and_counts_but_no_text() -> None:
    incidents = [
        ChatEvent(code="chat_message_truncated", data={"length": 9000, "limit": 4000}, at=1_700_000_005.0),
        ChatEvent(code="chat_throttled", data={"messages": 3}, at=1_700_000_006.25),
    ]
    body = ended_with(incidents)
    assert body["incidents"] == [
        {"code": "chat_message_truncated", "at": "2023-11-14T22:13:25.000Z", "length": 9000, "limit": 4000},
        {"code": "chat_throttled", "at": "2023-11-14T22:13:26.250Z", "messages": 3},
    ]
    assert the_end(resolved("convoi/with_overrides.json"))["incidents"] == []
    assert body["incident_counts"] == {"chat_message_truncated": 1, "chat_throttled": 1}


def test_call_ended_counts_every_incident_of_a_flood_beside_the_few_it_lists() -> None:
    kept = [ChatEvent(code="chat_queue_full", data={"pending": 50}, at=1_700_000_005.0)] * 5
    body = ended_with(kept, counts={"chat_queue_full": 950, "chat_throttled": 4})
    assert body["incident_counts"] == {"chat_queue_full": 950, "chat_throttled": 4}
    assert len(body["incidents"]) == 5  # type: ignore[arg-type]


CASES = read_cases(EXAMPLES)


def caller_values(config: CallConfig, case: GoldenCase) -> set[str]:
    """Every string the caller's side put into the config: metadata leaves, variables, the caller's name,
    pre-call variables and participant attributes."""
    found: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    info = config.call
    walk(info.metadata)
    walk(dict(config.variables))
    walk(dict(info.pre_call_variables))
    walk(info.participant_name)
    walk(dict(case.attributes))
    # The platform's own identifiers stay in events by design (see agent.events.payload).
    kept = {info.call_id, info.user_ref, info.room_id, info.source, info.type, config.agent_id, config.profile}
    return {value for value in found - kept if len(value) >= 2}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_with_content_off_no_event_of_any_dialects_example_carries_caller_data(case: GoldenCase) -> None:
    config = resolve_call(case.sources(), settings=Settings.model_validate(dict(case.env)))
    markers = caller_values(config, case)

    started = started_event(config, facts=FACTS, include_content=False, now=1_700_000_000.0)
    ended = ended_event(
        config,
        facts=FACTS,
        ended_at=1_700_000_042.5,
        end_reason="caller_left",
        transcript=a_transcript().items,
        usage=USAGE,
        prices=None,
        include_content=False,
    )
    resolved_at_start = config_resolved_event(
        config, facts=FACTS, trigger="start", revision=0, include_content=False, now=1_700_000_000.5
    )

    for event in (started, resolved_at_start, ended):
        text = event.to_json().decode("utf-8")
        leaked = sorted(value for value in markers if json.dumps(value, ensure_ascii=False) in text)
        assert leaked == [], f"{event.type} carries caller values"
        call = event.body["call"]
        assert isinstance(call, dict)
        assert {"metadata", "participant_name", "pre_call_variables"}.isdisjoint(call)
        assert call["metadata_keys"] == sorted(config.call.metadata)
        assert "variables" not in event.body


def test_with_content_off_a_warning_names_no_key_the_caller_chose_and_with_content_on_it_does() -> None:
    sources = CallSources(
        job_metadata=json.dumps({"tts": {"speeed": 1.2}}),
        caller_attributes={"webcall.variables.ana_4111_5555": "x", "webcall.Bob_5551234": "1"},
    )
    config = resolve_call(sources, settings=Settings())
    assert {w.field for w in config.warnings} >= {"variables.ana_4111_5555", "Bob_5551234", "tts.speeed"}

    def fields(include_content: bool) -> set[object]:
        body = started_event(config, facts=FACTS, include_content=include_content, now=1_700_000_000.0).body
        warnings = body["warnings"]
        assert isinstance(warnings, list)
        return {w["field"] for w in warnings}

    assert fields(False) >= {"variables.*", "*", "tts.*"}
    assert not {f for f in fields(False) if any(key in str(f) for key in ("ana_4111", "Bob_555", "speeed"))}
    assert fields(True) >= {"variables.ana_4111_5555", "Bob_5551234", "tts.speeed"}


def test_the_vaani_example_with_content_off_lists_its_metadata_keys_but_not_the_customers_name() -> None:
    config = resolved("vaani/every_field.json")

    body = started_event(config, facts=FACTS, include_content=False, now=1_700_000_000.0).body

    call = body["call"]
    assert isinstance(call, dict)
    assert call["metadata_keys"] == ["customer_name", "order"]
    assert "Priya" not in json.dumps(body)


def a_flooded_transcript(*, items: int, chars: int) -> Transcript:
    transcript = Transcript()
    for n in range(items):
        role: Literal["user", "assistant"] = "user" if n % 2 == 0 else "assistant"
        transcript.add(
            channel="chat", role=role, speaker="caller", text=f"{n:05d}" + "x" * chars, at=1_700_000_001.0 + n
        )
    return transcript


def an_end_of(transcript: Transcript, *, incidents: int = 0, include_content: bool = True) -> dict[str, object]:
    return ended_event(
        resolved("convoi/with_overrides.json"),
        facts=FACTS,
        ended_at=1_700_009_000.0,
        end_reason="caller_left",
        transcript=transcript.items,
        usage=USAGE,
        prices=None,
        include_content=include_content,
        incidents=[ChatEvent(code="chat_throttled", data={"messages": 200}, at=1_700_000_005.0)] * incidents,
        max_bytes=64 * 1024,
    ).body


def test_a_flooded_call_ended_fits_its_byte_bound_keeping_the_first_and_last_items_and_counting_the_rest() -> None:
    body = an_end_of(a_flooded_transcript(items=2000, chars=300))

    assert size_of(body) <= 64 * 1024
    items = transcript_of(body)
    texts = [str(item["text"])[:5] for item in items]
    assert texts[0] == "00000"
    assert texts[-1] == "01999"
    truncated = body["truncated"]
    assert isinstance(truncated, dict)
    assert truncated["transcript_items"] == 2000 - len(items)
    assert len(items) > 50
    seqs = [int(str(item["seq"])) for item in items]
    assert seqs == sorted(seqs)


def test_without_content_a_long_call_is_bounded_too() -> None:
    body = an_end_of(a_flooded_transcript(items=3000, chars=10), include_content=False)

    assert size_of(body) <= 64 * 1024
    truncated = body["truncated"]
    assert isinstance(truncated, dict)
    assert truncated["transcript_items"] > 0


def test_incidents_past_the_first_few_are_counted_not_listed_when_the_event_is_too_big() -> None:
    body = an_end_of(a_flooded_transcript(items=400, chars=300), incidents=5000)

    assert size_of(body) <= 64 * 1024
    incidents = body["incidents"]
    assert isinstance(incidents, list)
    assert len(incidents) == KEPT_INCIDENTS
    truncated = body["truncated"]
    assert isinstance(truncated, dict)
    assert truncated["incidents"] == 5000 - KEPT_INCIDENTS


def test_an_event_that_fits_is_not_cut_and_has_no_truncated_marker() -> None:
    body = an_end_of(a_flooded_transcript(items=10, chars=100), incidents=30)

    assert "truncated" not in body
    assert len(transcript_of(body)) == 10
    incidents = body["incidents"]
    assert isinstance(incidents, list)
    assert len(incidents) == 30


def test_one_very_long_utterance_is_cut_to_the_item_limit_and_says_so() -> None:
    transcript = Transcript()
    transcript.add(channel="voice", role="assistant", speaker="agent", text="y" * 9000, at=1_700_000_001.0)

    (item,) = transcript_of(an_end_of(transcript))

    assert item["text"] == "y" * MAX_ITEM_CHARS
    assert (item["text_truncated"], item["chars"]) == (True, 9000)


def test_huge_metadata_is_replaced_by_its_keys_as_the_last_resort() -> None:
    config = resolved("convoi/with_overrides.json")
    info = config.call.model_copy(update={"metadata": {"notes": "z" * 100_000, "plan": "gold"}})
    body = started_event(
        config.model_copy(update={"call": info}),
        facts=FACTS,
        include_content=True,
        now=1_700_000_000.0,
        max_bytes=32 * 1024,
    ).body

    assert size_of(body) <= 32 * 1024
    call = body["call"]
    assert isinstance(call, dict)
    assert "metadata" not in call
    assert call["metadata_keys"] == ["notes", "plan"]
    assert body["truncated"] == {"metadata": True}
