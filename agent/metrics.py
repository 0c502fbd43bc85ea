"""Prometheus metrics: what a call counts in its job process, and what the main process reads when it is scraped.

Job processes (the framework's forkserver pool) reach the main process's ``/metrics`` through prometheus_client's
multiprocess mode: every process writes its counters and histograms to files in ``PROMETHEUS_MULTIPROC_DIR`` (set by
``python -m agent`` before prometheus_client is first imported, since the library picks its mode then) and a
scrape sums them (`render`). Job processes keep no gauges: what only the main process knows (active calls,
registration, the outbox, job-process memory) is read at scrape time by `WorkerCollector`, never stored.

Labels take values from closed sets written in code: dialects, end reasons, warning and incident codes, roles,
provider names (`provider_name`, from the plugin's module, never a URL), error kinds, delivery answers. No room
name, identity, variable or text is ever a label value.

Metrics (``_total`` is added to counters by the client):
- ``webcall_calls_total{dialect, end_reason}``, ``webcall_config_warnings_total{code}``;
- ``webcall_turn_latency_seconds`` (end of caller speech to the first agent audio), ``webcall_llm_ttft_seconds``,
  ``webcall_tts_ttfb_seconds``: histograms of each answered turn, from the framework's per-message metrics;
- ``webcall_provider_errors_total{role, provider, kind}``, ``webcall_provider_fallbacks_total{role, provider, kind}``
  (``kind``: ``unavailable`` when a fallback chain stops using a provider, ``recovered`` when it comes back);
- ``webcall_chat_incidents_total{code}``; ``webcall_scribe_stt_failures_total{outcome}`` (a scribe's transcription
  of one participant failed for good: ``restarted`` or ``stopped``);
- ``webcall_event_deliveries_total{path}``, ``webcall_event_delivery_failures_total{path, answer}`` (``path``:
  ``live`` from the job, ``redelivery`` from the outbox); ``webcall_outbox_events{state}`` at scrape time;
- ``webcall_active_calls``, ``webcall_max_calls``, ``webcall_worker_registered``, ``webcall_worker_draining``,
  ``webcall_worker_ready``, ``webcall_job_processes{state}``, ``webcall_job_process_memory_bytes{state}`` (PSS
  summed over the pool's processes, ``state`` ``call`` or ``idle``) and ``webcall_job_process_memory_max_bytes``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import psutil
from livekit.agents import AgentSession, APIConnectionError, APIStatusError, APITimeoutError, llm, stt, tts
from livekit.agents.voice.events import ConversationItemAddedEvent
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.registry import Collector

from agent import framework
from agent.providers import Role

if TYPE_CHECKING:
    from agent.chat_limits import ChatEventCode
    from agent.config.call_config import WarningCode
    from agent.events.policy import Answer

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
DeliveryPath = Literal["live", "redelivery"]

# Seconds; a voice turn under 0.5 s feels instant, over 2 s broken.
LATENCY_BUCKETS: Final = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

CALLS = Counter("webcall_calls", "Calls ended, by dialect and end reason.", ["dialect", "end_reason"])
CONFIG_WARNINGS = Counter("webcall_config_warnings", "Call config warnings, by code.", ["code"])
TURN_LATENCY = Histogram(
    "webcall_turn_latency_seconds", "End of the caller's speech to the agent's first audio.", buckets=LATENCY_BUCKETS
)
LLM_TTFT = Histogram("webcall_llm_ttft_seconds", "LLM time to first token, per turn.", buckets=LATENCY_BUCKETS)
TTS_TTFB = Histogram("webcall_tts_ttfb_seconds", "TTS time to first audio byte, per turn.", buckets=LATENCY_BUCKETS)
PROVIDER_ERRORS = Counter(
    "webcall_provider_errors", "Provider request errors, by role, provider and kind.", ["role", "provider", "kind"]
)
PROVIDER_FALLBACKS = Counter(
    "webcall_provider_fallbacks",
    "A fallback chain stopped (unavailable) or resumed (recovered) using a provider.",
    ["role", "provider", "kind"],
)
CHAT_INCIDENTS = Counter("webcall_chat_incidents", "Chat channel incidents, by code.", ["code"])
SCRIBE_STT_FAILURES = Counter(
    "webcall_scribe_stt_failures",
    "A scribe's transcription of one participant failed for good, by outcome (restarted or stopped).",
    ["outcome"],
)
EVENT_DELIVERIES = Counter("webcall_event_deliveries", "Call events the webhook accepted, by path.", ["path"])
EVENT_DELIVERY_FAILURES = Counter(
    "webcall_event_delivery_failures",
    "Call event sends the webhook did not accept, by path and answer.",
    ["path", "answer"],
)


def call_ended(*, dialect: str, end_reason: str) -> None:
    CALLS.labels(dialect=dialect, end_reason=end_reason).inc()


def config_warning(code: WarningCode) -> None:
    CONFIG_WARNINGS.labels(code=code).inc()


def chat_incident(code: ChatEventCode) -> None:
    CHAT_INCIDENTS.labels(code=code).inc()


def scribe_stt_failure(outcome: Literal["restarted", "stopped"]) -> None:
    SCRIBE_STT_FAILURES.labels(outcome=outcome).inc()


def event_delivery(*, path: DeliveryPath, answer: Answer) -> None:
    """One send of a call event: `answer` is the delivery policy's reading of the receiver's answer."""
    if answer == "delivered":
        EVENT_DELIVERIES.labels(path=path).inc()
    else:
        EVENT_DELIVERY_FAILURES.labels(path=path, answer=answer).inc()


def turn_measured(metrics: Mapping[str, Any]) -> None:
    """An agent message's per-turn metrics (`llm.ChatMessage.metrics`): each measured latency is observed."""
    for key, histogram in (("e2e_latency", TURN_LATENCY), ("llm_node_ttft", LLM_TTFT), ("tts_node_ttfb", TTS_TTFB)):
        value = metrics.get(key)
        if isinstance(value, int | float) and value >= 0:
            histogram.observe(value)


def provider_name(engine: object) -> str:
    """A provider's name from its class: the ``livekit.plugins.<name>`` it is or extends (our wrappers of a plugin
    included), else our own class's name (``WhisperSTT`` -> ``whisper``)."""
    for cls in type(engine).__mro__:
        if cls.__module__.startswith("livekit.plugins."):
            return cls.__module__.split(".")[2]
    name = type(engine).__name__.lower()
    for suffix in ("stt", "tts", "llm"):
        name = name.removesuffix(suffix)
    return name or "unknown"


def error_kind(error: BaseException) -> str:
    """The kind of a provider error: ``timeout``, ``connection``, ``http_4xx``/``http_5xx`` or ``other``."""
    if isinstance(error, APITimeoutError):
        return "timeout"
    if isinstance(error, APIStatusError):
        return "http_4xx" if 400 <= error.status_code < 500 else "http_5xx"
    if isinstance(error, APIConnectionError):
        return "connection"
    return "other"


def watch_providers(engines: Mapping[Role, object]) -> None:
    """Count every error of each provider of a call (fallback chains member by member) and each fallback switch."""
    for role, engine in engines.items():
        members: tuple[Any, ...] = (engine,)
        if isinstance(engine, tts.FallbackAdapter | stt.FallbackAdapter):
            members = framework.fallback_members(engine)
        if isinstance(engine, tts.FallbackAdapter):
            engine.on("tts_availability_changed", _on_availability(role))
        elif isinstance(engine, stt.FallbackAdapter):
            engine.on("stt_availability_changed", _on_availability(role))
        elif isinstance(engine, llm.FallbackAdapter):
            engine.on("llm_availability_changed", _on_availability(role))
        for member in members:
            if hasattr(member, "on"):
                member.on("error", _on_error(role, provider_name(member)))


def _on_error(role: Role, provider: str) -> Callable[[Any], None]:
    def counted(event: Any) -> None:
        cause = getattr(event, "error", None)
        kind = error_kind(cause) if isinstance(cause, BaseException) else "other"
        PROVIDER_ERRORS.labels(role=role, provider=provider, kind=kind).inc()

    return counted


def _on_availability(role: Role) -> Callable[[Any], None]:
    def counted(event: Any) -> None:
        member = getattr(event, role, None)
        kind = "recovered" if getattr(event, "available", False) else "unavailable"
        PROVIDER_FALLBACKS.labels(role=role, provider=provider_name(member), kind=kind).inc()

    return counted


def watch_turns(session: AgentSession[Any]) -> None:
    """Observe the latencies of every agent turn the session adds to its history."""

    def added(event: ConversationItemAddedEvent) -> None:
        item = event.item
        if isinstance(item, llm.ChatMessage) and item.role == "assistant":
            turn_measured(item.metrics)

    session.on("conversation_item_added", added)


# -- the main process ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WorkerState:
    """What the main process knows at scrape time."""

    active_calls: int
    max_calls: int
    registered: bool
    draining: bool
    ready: bool


class WorkerCollector(Collector):
    """Gauges read when scraped: the worker's state, the outbox's depth and the job processes' memory."""

    def __init__(
        self,
        *,
        state: Callable[[], WorkerState],
        processes: Callable[[], Iterable[framework.JobProcess]],
        outbox: Callable[[], Mapping[Any, int]] | None = None,
    ) -> None:
        self._state = state
        self._processes = processes
        self._outbox = outbox

    def collect(self) -> Iterable[Metric]:
        state = self._state()
        yield _gauge("webcall_active_calls", "Calls this worker runs now.", state.active_calls)
        yield _gauge("webcall_max_calls", "WEBCALL_MAX_CALLS: calls this worker takes at most.", state.max_calls)
        yield _gauge("webcall_worker_registered", "1 while registered with LiveKit.", int(state.registered))
        yield _gauge("webcall_worker_draining", "1 once the worker drains (takes no new call).", int(state.draining))
        yield _gauge("webcall_worker_ready", "1 while /ready answers 200.", int(state.ready))
        yield from _memory(self._processes())
        if self._outbox is not None:
            depth = GaugeMetricFamily("webcall_outbox_events", "Call events in the webhook outbox.", labels=["state"])
            for state_name, count in self._outbox().items():
                depth.add_metric([state_name], count)
            yield depth


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _memory(processes: Iterable[framework.JobProcess]) -> Iterable[Metric]:
    count = GaugeMetricFamily("webcall_job_processes", "Job processes in the pool.", labels=["state"])
    total = GaugeMetricFamily(
        "webcall_job_process_memory_bytes", "Job processes' memory (PSS, else RSS), summed.", labels=["state"]
    )
    largest = GaugeMetricFamily(
        "webcall_job_process_memory_max_bytes", "The largest job process's memory (PSS, else RSS).", labels=["state"]
    )
    sizes: dict[str, list[int]] = {"call": [], "idle": []}
    for process in processes:
        size = process_memory(process.pid)
        if size is not None:
            sizes["call" if process.running_job else "idle"].append(size)
    for state, found in sizes.items():
        count.add_metric([state], len(found))
        total.add_metric([state], sum(found))
        largest.add_metric([state], max(found, default=0))
    return (count, total, largest)


def process_memory(pid: int) -> int | None:
    """A process's proportional set size (shared pages divided among their sharers), else its RSS; None if gone."""
    try:
        process = psutil.Process(pid)
        try:
            info: Any = process.memory_full_info()
        except psutil.AccessDenied:
            info = process.memory_info()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None
    return int(getattr(info, "pss", 0) or info.rss)


# Compaction and reading of the files never overlap in the main process: a scrape between a merge and the delete of
# the merged file would count its values twice (and the next one would see a counter go down).
_files_lock = threading.Lock()
ARCHIVE: Final = "archive"
_MERGED_TYPES: Final = ("counter", "histogram")


def render(*collectors: Collector) -> bytes:
    """The exposition text: every process's counters and histograms (multiprocess mode), then `collectors`.

    The files of job processes that have exited are merged first (`compact`). Without ``PROMETHEUS_MULTIPROC_DIR``
    (in-process tests) this process's default registry stands in.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    registry = CollectorRegistry(auto_describe=True)
    if directory:
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    for collector in collectors:
        registry.register(collector)
    with _files_lock:
        if directory:
            compact(directory)
        text = generate_latest(registry)
    if not directory:
        text = generate_latest(REGISTRY) + text
    return text


def compact(directory: str) -> int:
    """Merge the counter and histogram files of processes that no longer exist into ``<type>_archive.db``, summing
    each series, and delete them; returns how many files were merged.

    Every job process leaves its files behind (one call, one process): without this a worker's directory and the
    time of each scrape grow with every call it has run (10,000 calls: 20,000 files, 78 MiB, 2.2 s a scrape).
    Gauges are left alone (job processes keep none). Caller: the main process, under `_files_lock`.
    """
    merged = 0
    for kind in _MERGED_TYPES:
        dead = [name for name in os.listdir(directory) if _dead_process_file(name, kind)]
        if not dead:
            continue
        archive = MmapedDict(os.path.join(directory, f"{kind}_{ARCHIVE}.db"))  # type: ignore[no-untyped-call]
        try:
            for name in dead:
                path = os.path.join(directory, name)
                for key, value, timestamp, _pos in MmapedDict.read_all_values_from_file(path):  # type: ignore[no-untyped-call]
                    total, _ = archive.read_value(key)  # type: ignore[no-untyped-call]
                    archive.write_value(key, total + value, timestamp)  # type: ignore[no-untyped-call]
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                merged += 1
        finally:
            archive.close()  # type: ignore[no-untyped-call]
    return merged


def _dead_process_file(name: str, kind: str) -> bool:
    prefix, _, rest = name.partition("_")
    pid = rest.removesuffix(".db")
    return prefix == kind and pid.isdigit() and not psutil.pid_exists(int(pid))
