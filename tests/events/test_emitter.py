"""`CallEvents` end to end in-process: a real Transcript, the spool and a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from livekit.agents.metrics.usage import LLMModelUsage, ModelUsage
from pydantic import SecretStr

from agent.config.call_config import CallConfig
from agent.config.resolve import CallSources, resolve_call
from agent.events.delivery import WebhookSink
from agent.events.emitter import MAX_CONFIG_EVENTS, CallEvents
from agent.events.outbox import Outbox
from agent.events.payload import CallFacts
from agent.events.policy import DeliveryPolicy
from agent.events.prices import load_prices
from agent.events.redelivery import Redeliverer
from agent.events.sinks import sinks_from
from agent.events.spool import SpoolSink
from agent.settings import Settings
from agent.transcript import Transcript
from tests.events.outbox_helpers import a_sender
from tests.events.receiver import running_receiver, secret_for

SECRET = secret_for("emitter")
CONVOI = {"type": "web", "agent_id": "agt_1", "metadata": {"source": "landing-page", "nested": {"a": [1, 2]}}}


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def usage() -> list[ModelUsage]:
    return [LLMModelUsage(provider="127.0.0.1:9", model="gpt-4o-mini", input_tokens=40, output_tokens=7)]


def an_emitter(*, url: str, spool: Path, transcript: Transcript, include_content: bool = True) -> CallEvents:
    config = resolve_call(CallSources(job_metadata=json.dumps(CONVOI)), settings=Settings())
    return CallEvents(
        config=config,
        facts=CallFacts(job_id="AJ_emit", room="room-1", started_at=1_700_000_000.0),
        transcript=transcript,
        usage=usage,
        sinks=[SpoolSink(spool), WebhookSink(sender=a_sender(url, secrets=(SECRET,)), policy=DeliveryPolicy())],
        prices=load_prices(Path("config")),
        include_content=include_content,
    )


async def test_started_then_ended_reach_the_receiver_and_the_spool_with_the_same_bodies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="webcall")
    transcript = Transcript()
    async with running_receiver(SECRET) as receiver:
        events = an_emitter(url=receiver.url, spool=tmp_path, transcript=transcript)
        events.started()
        transcript.add(channel="chat", role="user", speaker="caller", text="my secret plan")
        transcript.add(channel="chat", role="assistant", speaker="agent", text="noted")
        await events.ended(end_reason="caller_left")

    started, ended = receiver.delivered()
    assert [started["type"], ended["type"]] == ["call.started", "call.ended"]
    call = ended["call"]
    assert isinstance(call, dict)
    assert call["metadata"] == {"source": "landing-page", "nested": {"a": [1, 2]}}
    assert ended["end_reason"] == "caller_left"
    items = ended["transcript"]
    assert isinstance(items, list)
    assert [item["text"] for item in items] == ["my secret plan", "noted"]
    spooled = [json.loads(line) for line in (tmp_path / "AJ_emit.jsonl").read_text().splitlines()]
    assert spooled == [started, ended]
    for record in caplog.records:
        assert "my secret plan" not in record.getMessage() + repr(vars(record))


async def test_ended_without_started_sends_nothing(tmp_path: Path) -> None:
    async with running_receiver(SECRET) as receiver:
        events = an_emitter(url=receiver.url, spool=tmp_path, transcript=Transcript())
        await events.ended(end_reason="caller_left")

    assert receiver.requests == []
    assert listing(tmp_path) == []


def test_a_webhook_url_without_a_secret_is_refused() -> None:
    settings = Settings(WEBCALL_EVENTS_URL="http://127.0.0.1:9/hooks")

    assert sinks_from(settings) == []


def test_no_sink_is_built_when_events_are_not_configured() -> None:
    assert sinks_from(Settings()) == []


def test_both_sinks_are_built_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        WEBCALL_EVENTS_DIR=str(tmp_path),
        WEBCALL_EVENTS_URL="http://127.0.0.1:9/hooks",
        WEBCALL_EVENTS_SECRET=SecretStr(SECRET),
        WEBCALL_EVENTS_ALLOW_HTTP=True,
    )

    assert [type(sink) for sink in sinks_from(settings)] == [SpoolSink, WebhookSink]


async def test_a_call_whose_receiver_is_down_keeps_both_events_and_a_later_pass_delivers_them_in_order(
    tmp_path: Path,
) -> None:
    config = resolve_call(CallSources(job_metadata=json.dumps(CONVOI)), settings=Settings())
    transcript = Transcript()
    outbox_dir = tmp_path / "outbox"
    async with running_receiver(SECRET, statuses=[503] * 3) as receiver:
        webhook = WebhookSink(
            sender=a_sender(receiver.url, secrets=(SECRET,)),
            policy=DeliveryPolicy(attempts=3, budget_s=5.0, attempt_timeout_s=2.0, retry_pause_s=0.01),
            outbox=Outbox(outbox_dir),
        )
        events = CallEvents(
            config=config,
            facts=CallFacts(job_id="AJ_down", room="room-1", started_at=1_700_000_000.0),
            transcript=transcript,
            usage=usage,
            sinks=[SpoolSink(tmp_path / "spool"), webhook],
            prices=None,
            include_content=True,
        )
        events.started()
        transcript.add(channel="chat", role="user", speaker="caller", text="hello")
        await events.ended(end_reason="caller_left")
        # three failed attempts for call.started; call.ended went straight behind it, unsent
        assert [r.status for r in receiver.requests] == [503, 503, 503]
        assert len(Outbox(outbox_dir).pending_jobs()["AJ_down"]) == 2

        sender = a_sender(receiver.url, secrets=(SECRET,))
        counts = await Redeliverer(Outbox(outbox_dir), sender=sender).run_once()

    assert counts.delivered == 2
    spooled = [json.loads(line) for line in (tmp_path / "spool" / "AJ_down.jsonl").read_text().splitlines()]
    assert receiver.delivered() == spooled
    assert [body["type"] for body in spooled] == ["call.started", "call.ended"]
    assert Outbox(outbox_dir).pending_jobs() == {}


async def test_a_flooded_calls_ended_stays_under_the_receivers_body_limit_and_is_delivered_not_dead(
    tmp_path: Path,
) -> None:
    transcript = Transcript()
    async with running_receiver(SECRET) as receiver:
        # aiohttp's receiver answers 413 to a body over 1 MiB (its default client_max_size), as many servers do
        events = an_emitter(url=receiver.url, spool=tmp_path / "spool", transcript=transcript)
        events.started()
        for n in range(3000):
            transcript.add(channel="chat", role="user", speaker="caller", text=f"flood {n} " + "x" * 500)
        await events.ended(end_reason="caller_left")

    assert [r.status for r in receiver.requests] == [200, 200]
    ended = receiver.requests[-1]
    assert len(ended.body) <= 512 * 1024
    truncated = ended.json["truncated"]
    assert isinstance(truncated, dict)
    assert truncated["transcript_items"] > 0


async def test_with_include_content_false_the_spooled_events_of_a_vaani_call_hold_no_caller_data(
    tmp_path: Path,
) -> None:
    settings = Settings(_env_file=None, WEBCALL_EVENTS_DIR=str(tmp_path), WEBCALL_EVENTS_INCLUDE_CONTENT="false")
    vaani = {
        "agent_name": "agt_v",
        "voice_gender": "female",
        "metadata": {"customer_name": "Priya", "phone": "+919800000001"},
    }
    config = resolve_call(CallSources(job_metadata=json.dumps(vaani)), settings=settings)

    await CallEvents.unserved(settings, config=config, job_id="AJ_vaani", room="room-v", notice="Sorry, Priya.")

    text = (tmp_path / "AJ_vaani.jsonl").read_text()
    started, resolved, ended = (json.loads(line) for line in text.splitlines())
    assert [started["type"], resolved["type"], ended["type"]] == ["call.started", "call.config_resolved", "call.ended"]
    assert "Priya" not in text
    assert "+919800000001" not in text
    assert started["content_included"] is resolved["content_included"] is False
    assert ended["call"]["metadata_keys"] == resolved["call"]["metadata_keys"] == ["customer_name", "phone"]
    assert not any(field.startswith("variables.") for field in resolved["config"]["provenance"])


def mid_call(attributes: dict[str, str]) -> CallConfig:
    """The Convoi call re-resolved after the caller set `attributes` (default allowlist: language, tts.speed)."""
    sources = CallSources(job_metadata=json.dumps(CONVOI), caller_attributes=attributes)
    return resolve_call(sources, settings=Settings())


def warned(body: dict[str, object]) -> list[tuple[object, object]]:
    warnings = body["warnings"]
    assert isinstance(warnings, list)
    return [(w["code"], w["field"]) for w in warnings]


async def test_config_resolved_follows_started_in_order_and_ended_carries_every_warning_of_the_call(
    tmp_path: Path,
) -> None:
    async with running_receiver(SECRET) as receiver:
        events = an_emitter(url=receiver.url, spool=tmp_path, transcript=Transcript())
        events.started()
        events.config_resolved(mid_call({}), trigger="start")
        events.config_resolved(mid_call({"webcall.variables.plan": "gold"}), trigger="caller")
        await events.ended(end_reason="caller_left")

    started, at_start, changed, ended = receiver.delivered()
    assert [b["type"] for b in (started, at_start, changed, ended)] == [
        "call.started",
        "call.config_resolved",
        "call.config_resolved",
        "call.ended",
    ]
    assert [(b["trigger"], b["revision"]) for b in (at_start, changed)] == [("start", 0), ("caller", 1)]
    refused = ("caller_not_allowed", "variables.plan")
    assert refused not in warned(started) + warned(at_start)
    assert refused in warned(changed)
    assert refused in warned(ended), "a warning of a mid-call change reaches call.ended"
    assert len({r.headers["Idempotency-Key"] for r in receiver.requests}) == 4
    config = at_start["config"]
    assert isinstance(config, dict)
    assert config["tts"]["provider"] == "openai"
    assert config["provenance"]["agent_id"] == "job_metadata"


async def test_a_caller_that_changes_attributes_without_end_gets_a_bounded_number_of_config_events(
    tmp_path: Path,
) -> None:
    events = CallEvents(
        config=mid_call({}),
        facts=CallFacts(job_id="AJ_churn", room="room-1", started_at=1_700_000_000.0),
        transcript=Transcript(),
        usage=usage,
        sinks=[SpoolSink(tmp_path)],
        prices=None,
        include_content=True,
    )
    events.started()
    for i in range(MAX_CONFIG_EVENTS * 3):
        events.config_resolved(mid_call({f"webcall.variables.v{i}": "x"}), trigger="caller")
    await events.ended(end_reason="caller_left")

    bodies = [json.loads(line) for line in (tmp_path / "AJ_churn.jsonl").read_text().splitlines()]
    assert [b["type"] for b in bodies].count("call.config_resolved") == MAX_CONFIG_EVENTS
    last = f"variables.v{MAX_CONFIG_EVENTS * 3 - 1}"
    assert ("caller_not_allowed", last) in warned(bodies[-1]), "past the cap, warnings still reach call.ended"
