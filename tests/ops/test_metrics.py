"""The metric helpers: provider names and error kinds are closed sets, deliveries split by answer, turn metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from livekit.agents import APIConnectionError, APIStatusError, APITimeoutError
from livekit.plugins import deepgram, openai
from prometheus_client import REGISTRY

from agent import metrics
from tests.ops.scrape import value


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class WrappedOpenAITTS(openai.TTS):
    """A project wrapper around a plugin class keeps the plugin's name."""


class WhisperSTT:
    pass


def test_a_provider_is_named_by_its_plugin_or_its_own_class_never_by_its_url() -> None:
    local = openai.LLM(api_key="k", base_url="http://10.0.0.7:8000/v1")
    assert metrics.provider_name(local) == "openai"
    assert metrics.provider_name(WrappedOpenAITTS(api_key="k")) == "openai"
    assert metrics.provider_name(deepgram.STT(api_key="k")) == "deepgram"
    assert metrics.provider_name(WhisperSTT()) == "whisper"


def test_provider_errors_fall_into_five_kinds() -> None:
    assert metrics.error_kind(APITimeoutError()) == "timeout"
    assert metrics.error_kind(APIConnectionError()) == "connection"
    assert metrics.error_kind(APIStatusError("x", status_code=429)) == "http_4xx"
    assert metrics.error_kind(APIStatusError("x", status_code=503)) == "http_5xx"
    assert metrics.error_kind(ValueError("x")) == "other"


def test_a_delivered_event_counts_as_a_delivery_and_any_other_answer_as_a_failure() -> None:
    delivered = sample("webcall_event_deliveries_total", path="redelivery")
    refused = sample("webcall_event_delivery_failures_total", path="redelivery", answer="refused")
    metrics.event_delivery(path="redelivery", answer="delivered")
    metrics.event_delivery(path="redelivery", answer="refused")
    assert sample("webcall_event_deliveries_total", path="redelivery") == delivered + 1
    assert sample("webcall_event_delivery_failures_total", path="redelivery", answer="refused") == refused + 1


def test_a_turn_observes_only_the_latencies_it_measured() -> None:
    before = [sample(f"{name}_count") for name in ("webcall_turn_latency_seconds", "webcall_llm_ttft_seconds")]
    metrics.turn_measured({"e2e_latency": 0.42, "llm_node_tps": 50.0})
    assert sample("webcall_turn_latency_seconds_count") == before[0] + 1
    assert sample("webcall_llm_ttft_seconds_count") == before[1], "no llm_node_ttft in that turn"


def test_the_files_of_exited_processes_are_merged_and_the_sums_stay_the_same(tmp_path: Path, monkeypatch: Any) -> None:
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    key = mmap_key("webcall_calls", "webcall_calls_total", ["dialect", "end_reason"], ["native", "caller_left"], "h")
    # Above any Linux pid_max (4194304): these processes cannot exist.
    for pid in (5_000_001, 5_000_002, 5_000_003):
        written = MmapedDict(str(tmp_path / f"counter_{pid}.db"))  # type: ignore[no-untyped-call]
        written.write_value(key, 1.0, 0)  # type: ignore[no-untyped-call]
        written.close()  # type: ignore[no-untyped-call]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    first = metrics.render()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_archive.db"]
    second = metrics.render()
    for text in (first, second):
        assert value(text.decode(), "webcall_calls_total", dialect="native", end_reason="caller_left") == 3
