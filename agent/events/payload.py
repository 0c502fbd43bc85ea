"""The call events' JSON: ``call.started``, ``call.config_resolved`` and ``call.ended``, built purely from a
`CallConfig`, facts about the job, the call's `Transcript` items and the session's usage.

Every event shares an envelope and the call's identity (`_common`, where content on/off is applied)::

    {
      "id": "evt_<32 hex>", "type": "call.started" | "call.config_resolved" | "call.ended",
      "idempotency_key": "<job id>:<type>",     # stable across retries and re-sends of the same event
                                                # (call.config_resolved: "<job id>:<type>:<revision>")
      "created_at": "2026-01-01T12:00:00.000Z", "version": 1,
      "job_id", "room", "dialect", "agent_id", "profile",
      "call": {"call_id", "user_ref", "source", "type", "room_id",
               "metadata": {...},                # content: the platform's free-form metadata, verbatim
               "participant_name", "pre_call_variables"},          # content (see below)
      "variables": {...},                                           # content
      "warnings": [{"code", "field"}],         # config warnings: codes and fields only, no messages or values
                                               # (content off: a key an input chose is "*", e.g. "variables.*")
      "started_at": "...",
      "content_included": true
    }

``call.config_resolved`` is sent once the call's config is resolved at its start (``"trigger": "start"``,
``"revision": 0``) and again each time a mid-call change re-resolves it (``"trigger": "room_metadata"`` or
``"caller"``, revision 1, 2, ...); its ``warnings`` are that resolution's (a caller attribute refused mid-call is a
``caller_not_allowed`` there), and ``config`` is what the call runs on: languages, providers, models, voice,
speed, welcome mode, chat, limits, knowledge base ids and ``provenance`` (field -> source; with content off,
without the ``variables.*`` entries, and without the values the caller set, e.g. its language). No text the call
speaks or is told (instructions, welcome text) is in it.

``call.ended`` adds ``ended_at``, ``duration_s``, ``end_reason``, ``status`` (``error`` when the worker failed the
call: ``job_process_died``, ``unavailable``, ``provider_error``, a session ``error``; else ``ok``), ``usage``
(`agent.events.usage`: ``llm`` tokens, ``tts`` characters and audio seconds, ``stt`` audio seconds: one entry per
provider/model, plus ``totals``), ``incidents`` (the first few of each code, e.g. ``chat_queue_full``, with counts
and codes only), ``incident_counts`` (every incident, by code), ``record_complete`` (false only in a ``call.ended``
the main process built for a job process that died, `orphan_ended_event`: its transcript is what the job process
journaled), ``cost`` (an estimate, see `agent.events.prices`; absent without a price table) and ``transcript``: both
channels in order, each item ``{"seq", "at", "channel": "chat"|"voice", "role": "user"|"assistant", "speaker",
"interrupted", "text"}``; a text longer than `MAX_ITEM_CHARS` is cut there and the item says ``"text_truncated":
true, "chars": <full length>``.

Content: transcript text, prompt variables, pre-call variables, the caller's name and the metadata's values are caller
data (for Vyom and Vaani the metadata holds the caller's name and number). With ``include_content=False`` they are
left out: ``call.metadata`` becomes ``call.metadata_keys`` (its sorted top-level keys), transcript items keep
everything but ``text``, plus ``chars``, with ``speaker`` as ``agent`` or ``participant-<n>`` (an identity can be a
user id or a number), and ``content_included`` is false. What stays are the platform's own identifiers
(``call_id``, ``user_ref``, ``room_id``, ``source``, ``type``), codes, counts and times.

Size: each event is cut to `max_bytes` by `agent.events.bounds.bounded` (a ``truncated`` key says what was cut).
Nothing from process settings is ever read here, so no secret can reach an event.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Literal, Protocol

from livekit.agents.metrics.usage import ModelUsage

from agent.config.call_config import CallConfig, ConfigWarning
from agent.config.fields import field_without_input_key
from agent.events.bounds import bounded
from agent.events.prices import PriceTable, estimate_cost
from agent.events.usage import usage_summary
from agent.transcript import TranscriptItem

if TYPE_CHECKING:
    from agent.chat_limits import ChatEventCode
    from agent.provider_faults import IncidentCode as ProviderIncidentCode

    # The codes of ``call.ended.incidents`` (the keys of ``incident_counts``).
    IncidentCode = ChatEventCode | ProviderIncidentCode

EventType = Literal["call.started", "call.config_resolved", "call.ended"]
ResolveTrigger = Literal["start", "room_metadata", "caller"]
VERSION: Final = 1
MAX_ITEM_CHARS: Final = 4000
DEFAULT_MAX_BYTES: Final = 512 * 1024
# ``call.ended.status`` is ``error`` for these end reasons (the worker failed the call), else ``ok``.
ERROR_END_REASONS: Final = frozenset({"job_process_died", "unavailable", "provider_error", "error"})
# The fields every event of a call shares (`_common`), which a ``call.ended`` built from ``call.started`` copies.
COMMON_FIELDS: Final = frozenset(
    {
        "job_id",
        "room",
        "dialect",
        "agent_id",
        "profile",
        "call",
        "warnings",
        "started_at",
        "content_included",
        "variables",
    }
)


@dataclass(frozen=True, kw_only=True)
class Event:
    """One event: its identity and its JSON body (which repeats the identity)."""

    id: str
    type: EventType
    idempotency_key: str
    body: dict[str, object]

    def to_json(self) -> bytes:
        """The wire form: compact UTF-8 JSON; the bytes a webhook signs and a spool line holds."""
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True, kw_only=True)
class CallFacts:
    """What the job knows about the call beyond its config."""

    job_id: str
    room: str
    started_at: float


class Incident(Protocol):
    """Something a part of the call recorded for the call's events (a chat message cut or throttled, ...).

    `data` holds counts and codes only, never message text (`agent.chat_limits.ChatEvent` is one).
    """

    @property
    def code(self) -> IncidentCode: ...

    @property
    def at(self) -> float: ...

    @property
    def data(self) -> Mapping[str, object]: ...


def idempotency_key(job_id: str, event_type: EventType, *, revision: int | None = None) -> str:
    key = f"{job_id}:{event_type}"
    return key if revision is None else f"{key}:{revision}"


def iso(timestamp: float) -> str:
    """Unix seconds as ISO-8601 UTC with milliseconds (``...Z``)."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def started_event(
    config: CallConfig, *, facts: CallFacts, include_content: bool, now: float, max_bytes: int = DEFAULT_MAX_BYTES
) -> Event:
    """``call.started``."""
    fields = _common(config, facts=facts, include_content=include_content)
    return _event("call.started", fields, now=now, max_bytes=max_bytes)


def config_resolved_event(
    config: CallConfig,
    *,
    facts: CallFacts,
    trigger: ResolveTrigger,
    revision: int,
    include_content: bool,
    now: float,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Event:
    """``call.config_resolved``: the common fields (with this resolution's warnings) and what the call runs on."""
    fields = _common(config, facts=facts, include_content=include_content)
    fields["trigger"] = trigger
    fields["revision"] = revision
    fields["config"] = _runs_on(config, include_content=include_content)
    return _event("call.config_resolved", fields, now=now, max_bytes=max_bytes, revision=revision)


def ended_event(
    config: CallConfig,
    *,
    facts: CallFacts,
    ended_at: float,
    end_reason: str,
    transcript: Sequence[TranscriptItem],
    usage: Sequence[ModelUsage],
    prices: PriceTable | None,
    include_content: bool,
    incidents: Sequence[Incident] = (),
    incident_counts: Mapping[str, int] | None = None,
    warnings: Sequence[ConfigWarning] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Event:
    """``call.ended``: the common fields plus duration, end reason, usage, estimated cost, transcript and incidents
    (the first few of each code whole, every code counted). `warnings`: every warning of the call (its start's and
    its mid-call changes'), by default the config's."""
    body = _common(config, facts=facts, include_content=include_content, warnings=warnings)
    _end(body, started_at=facts.started_at, ended_at=ended_at, end_reason=end_reason)
    body["usage"] = usage_summary(usage)
    if prices is not None:
        body["cost"] = estimate_cost(usage, prices)
    speakers = transcript_speakers(transcript, include_content=include_content)
    body["transcript"] = [
        transcript_entry(item, speaker=speakers[item.speaker], include_content=include_content) for item in transcript
    ]
    body["incidents"] = [{"code": i.code, "at": iso(i.at), **i.data} for i in incidents]
    body["incident_counts"] = dict(incident_counts) if incident_counts is not None else _counts(incidents)
    body["record_complete"] = True
    return _event("call.ended", body, now=ended_at, max_bytes=max_bytes)


def orphan_ended_event(
    started: Event,
    *,
    ended_at: float,
    end_reason: str,
    incident: Mapping[str, object],
    max_bytes: int,
    transcript: Sequence[Mapping[str, object]] = (),
) -> Event:
    """``call.ended`` of a call whose job process died, built by the worker's main process from the call's
    ``call.started``: its common fields, the end, `incident` (``{"code": ..., **data}``) and `transcript`, the items
    the job process journaled (`transcript_entry`, in ``seq`` order). What only the job process held in memory
    (usage, the call's own incidents, an utterance not yet recorded) died with it: the usage is zero and
    ``record_complete`` is false."""
    body = {key: value for key, value in started.body.items() if key in COMMON_FIELDS}
    started_at = started.body.get("started_at")
    begun = datetime.fromisoformat(started_at).timestamp() if isinstance(started_at, str) else ended_at
    _end(body, started_at=begun, ended_at=ended_at, end_reason=end_reason)
    body["usage"] = usage_summary(())
    body["transcript"] = sorted((dict(entry) for entry in transcript), key=_journaled_order)
    body["incidents"] = [{**incident, "at": iso(ended_at)}]
    body["incident_counts"] = {str(incident["code"]): 1}
    body["record_complete"] = False
    return _event("call.ended", body, now=ended_at, max_bytes=max_bytes)


def _journaled_order(entry: Mapping[str, object]) -> tuple[str, int]:
    at, seq = entry.get("at"), entry.get("seq")
    return (at if isinstance(at, str) else "", seq if isinstance(seq, int) else 0)


def _end(body: dict[str, object], *, started_at: float, ended_at: float, end_reason: str) -> None:
    body["ended_at"] = iso(ended_at)
    body["duration_s"] = round(max(0.0, ended_at - started_at), 3)
    body["end_reason"] = end_reason
    body["status"] = "error" if end_reason in ERROR_END_REASONS else "ok"


def _event(
    event_type: EventType, fields: dict[str, object], *, now: float, max_bytes: int, revision: int | None = None
) -> Event:
    event_id = f"evt_{uuid.uuid4().hex}"
    job_id = str(fields["job_id"])
    key = idempotency_key(job_id, event_type, revision=revision)
    envelope: dict[str, object] = {
        "id": event_id,
        "type": event_type,
        "idempotency_key": key,
        "created_at": iso(now),
        "version": VERSION,
    }
    body = bounded({**envelope, **fields}, max_bytes=max_bytes)
    return Event(id=event_id, type=event_type, idempotency_key=key, body=body)


def _common(
    config: CallConfig,
    *,
    facts: CallFacts,
    include_content: bool,
    warnings: Sequence[ConfigWarning] | None = None,
) -> dict[str, object]:
    info = config.call
    call: dict[str, object] = {
        "call_id": info.call_id,
        "user_ref": info.user_ref,
        "source": info.source,
        "type": info.type,
        "room_id": info.room_id,
    }
    fields: dict[str, object] = {
        "job_id": facts.job_id,
        "room": facts.room,
        "dialect": config.dialect,
        "agent_id": config.agent_id,
        "profile": config.profile,
        "call": call,
        "warnings": [
            {"code": w.code, "field": w.field if include_content else field_without_input_key(w.field)}
            for w in (config.warnings if warnings is None else warnings)
        ],
        "started_at": iso(facts.started_at),
        "content_included": include_content,
    }
    if include_content:
        call["metadata"] = info.metadata
        call["participant_name"] = info.participant_name
        call["pre_call_variables"] = dict(info.pre_call_variables)
        fields["variables"] = dict(config.variables)
    else:
        call["metadata_keys"] = sorted(info.metadata)
    return fields


def _runs_on(config: CallConfig, *, include_content: bool) -> dict[str, object]:
    provenance = {
        field: source
        for field, source in config.provenance.items()
        if include_content or not field.startswith("variables.")
    }
    runs_on: dict[str, object] = {
        "language": config.language.model_dump(mode="json"),
        "stt": config.stt.model_dump(mode="json"),
        "llm": config.llm.model_dump(mode="json"),
        "tts": config.tts.model_dump(mode="json"),
        "welcome": {"mode": config.welcome.mode, "interruptible": config.welcome.interruptible},
        "chat": config.chat.model_dump(mode="json"),
        "limits": config.limits.model_dump(mode="json"),
        "knowledge_base_ids": list(config.knowledge_base_ids),
        "provenance": provenance,
    }
    if not include_content:
        # What the caller chose (its language, say) is caller data too: only its provenance says it was set.
        for field, source in config.provenance.items():
            group, _, name = field.partition(".")
            values = runs_on.get(group)
            if source == "caller" and isinstance(values, dict):
                values.pop(name, None)
    return runs_on


def _counts(incidents: Sequence[Incident]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for incident in incidents:
        counts[incident.code] = counts.get(incident.code, 0) + 1
    return counts


def transcript_speakers(transcript: Sequence[TranscriptItem], *, include_content: bool) -> dict[str, str]:
    """What each item names as its speaker: the participant's identity, or with content off (an identity can be a
    user id or a phone number) ``agent`` for the agent's items and ``participant-<n>`` in order of first word."""
    names: dict[str, str] = {}
    participants = 0
    for item in transcript:
        if item.speaker in names:
            continue
        if include_content:
            names[item.speaker] = item.speaker
        elif item.role == "assistant":
            names[item.speaker] = "agent"
        else:
            participants += 1
            names[item.speaker] = f"participant-{participants}"
    return names


def transcript_entry(item: TranscriptItem, *, speaker: str, include_content: bool) -> dict[str, object]:
    """`item` as ``call.ended`` lists it: with content off no text (its length), `speaker` as `transcript_speakers`
    names it."""
    out: dict[str, object] = {
        "seq": item.seq,
        "at": iso(item.at),
        "channel": item.channel,
        "role": item.role,
        "speaker": speaker,
        "interrupted": item.interrupted,
    }
    if include_content:
        out["text"] = item.text[:MAX_ITEM_CHARS]
    if not include_content or len(item.text) > MAX_ITEM_CHARS:
        out["chars"] = len(item.text)
    if include_content and len(item.text) > MAX_ITEM_CHARS:
        out["text_truncated"] = True
    return out
