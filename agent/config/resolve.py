"""Sources + precedence + provenance + warnings -> one `CallConfig`.

Precedence, lowest first, written once (the layers given to `_merge` in `_resolve`)::

    default (built-in, and WEBCALL_* settings) < caller < profile (default.yaml, then the agent's own)
        < room_name (ScaiWave's scaiwave-<call_id>) < room_metadata < job_metadata (dispatch)

Every source is read into leaves (dotted field -> value); the highest source that sets a leaf wins it and is
recorded in ``provenance``. Variables merge name by name. Room and dispatch metadata are the platform's and are
trusted; the caller's leaves pass the allowlist (``caller_not_allowed``), and one a trusted source also sets is
dropped (``caller_overridden``), so the caller only fills what the platform left unset (`agent.config.caller`).
The agent id (which picks the profile) comes from dispatch, else room metadata; never from the caller. Then
`normalize` fits the values to the providers, prompt files are read and the instructions and welcome rendered over
the variables, caller-set values delimited as data (`agent.config.templating`).

`resolve_call` never raises: a document that cannot be read becomes a warning and contributes nothing, and the
call runs on the profile. The module logs one record per call with the dialect, profile and warning codes only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.config.call_config import CallConfig, ConfigWarning, Source, WarningCode
from agent.config.caller import allowed_leaves, attributes_document, overridden_leaves
from agent.config.collections import knowledge_root, unknown_collection_warnings
from agent.config.diagnostics import warn
from agent.config.dialects import ParsedDocument, parse_document
from agent.config.dialects._wire import set_path
from agent.config.dialects.scaiwave import call_id_from_room
from agent.config.fields import LEAF_FIELDS, MAX_CHARS, Leaves, PromptFile, flatten
from agent.config.normalize import Draft, Entry, normalize
from agent.config.profiles import select_profile
from agent.config.prompts import read_prompt
from agent.config.templating import MAX_CALLER_VALUE_CHARS, caller_text, cut, render, with_data_note
from agent.config.voices import load_voice_table
from agent.errors import DialectError, MetadataError, TemplateError
from agent.log import get_logger
from agent.settings import Dialect, Settings

logger = get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class CallSources:
    """The raw per-call inputs, exactly as the worker found them (strings, unparsed)."""

    job_metadata: str | None = None
    room_metadata: str | None = None
    caller_attributes: Mapping[str, str] = field(default_factory=dict)
    caller_metadata: str | None = None
    room_name: str | None = None


def resolve_call(sources: CallSources, *, settings: Settings) -> CallConfig:
    """Resolve one call's config. Never raises: unusable input yields the profile's config with warnings."""
    try:
        config = _resolve(sources, settings=settings)
    except Exception as exc:
        # The last line of defence, for a bug rather than bad input (bad input is handled above): the call still
        # gets a config. Only the exception's type is logged; its text could hold input.
        logger.error("call config resolution failed; built-in defaults used", extra={"error": type(exc).__name__})
        return _built_in(settings).model_copy(update={"warnings": (warn("invalid_value", "config"),)})
    logger.info(
        "call config resolved",
        extra={
            "dialect": config.dialect,
            "profile": config.profile,
            "warnings": [w.code for w in config.warnings],
        },
    )
    return config


def _resolve(sources: CallSources, *, settings: Settings) -> CallConfig:
    warnings: list[ConfigWarning] = []
    room = _read(sources.room_metadata, source="room_metadata", settings=settings, warnings=warnings)
    job = _read(sources.job_metadata, source="job_metadata", settings=settings, warnings=warnings)
    caller_leaves = _caller_leaves(sources, settings=settings, warnings=warnings)
    room_leaves = _leaves(room, source="room_metadata", warnings=warnings)
    job_leaves = _leaves(job, source="job_metadata", warnings=warnings)

    dialect: Dialect | None = job.dialect if job else room.dialect if room else None
    room_name_leaves: Leaves = {}
    call_id = call_id_from_room(sources.room_name)
    if call_id is not None and dialect in (None, "scaiwave"):
        dialect, room_name_leaves = "scaiwave", {"call.call_id": call_id}

    agent_id = next((str(ls["agent_id"]) for ls in (job_leaves, room_leaves) if ls.get("agent_id")), None)
    profiles, profile_warnings = select_profile(agent_id, config_dir=settings.config_dir)
    warnings += profile_warnings
    profile_layers: list[tuple[Source, Leaves]] = [("profile", profile.leaves) for profile in profiles]
    platform_layers: list[tuple[Source, Leaves]] = [
        ("room_name", room_name_leaves),
        ("room_metadata", room_leaves),
        ("job_metadata", job_leaves),
    ]
    caller_leaves, overridden = overridden_leaves(
        caller_leaves, trusted=[leaves for _, leaves in profile_layers + platform_layers]
    )
    warnings += overridden
    defaults: tuple[Source, Leaves] = ("default", _defaults(settings))
    draft = Draft(
        fields=_merge([defaults, ("caller", caller_leaves), *profile_layers, *platform_layers]),
        base=_merge([defaults, *profile_layers]),
    )
    normalize(draft, settings=settings, voices=load_voice_table(settings.config_dir.resolve() / "voices.yaml"))
    _texts(draft, prompts_dir=settings.prompts_dir)
    kb_ids = draft.fields.get("knowledge_base_ids", Entry((), "default")).value
    if isinstance(kb_ids, (list, tuple)):
        root = knowledge_root(settings.config_dir)
        draft.warnings += unknown_collection_warnings((str(kb) for kb in kb_ids), root=root)
    return _build(draft, dialect=dialect or "native", profile=profiles[-1].name, warnings=warnings + draft.warnings)


def _caller_leaves(sources: CallSources, *, settings: Settings, warnings: list[ConfigWarning]) -> Leaves:
    """The caller's participant metadata and attributes (attributes win), cut down to the allowlist."""
    caller = _read(sources.caller_metadata, source="caller", settings=settings, warnings=warnings, trusted=False)
    attributes, attribute_warnings = attributes_document(sources.caller_attributes)
    warnings += attribute_warnings
    leaves = _leaves(caller, source="caller", warnings=warnings) | _leaves(
        attributes, source="caller", warnings=warnings
    )
    if leaves.pop("agent_id", None) is not None:
        warnings.append(warn("caller_not_allowed", "agent_id", source="caller"))
    leaves, refused = allowed_leaves(leaves, allowed=settings.caller_allowed_fields)
    warnings += refused
    return leaves


def _read(
    text: str | None, *, source: str, settings: Settings, warnings: list[ConfigWarning], trusted: bool = True
) -> ParsedDocument | None:
    """One metadata string read in its dialect; None (with a warning) when it cannot be used, or is empty."""
    if text is None or not text.strip():
        return None
    try:
        parsed = parse_document(text, source=source, default_dialect=settings.dialect, trusted=trusted)
    except MetadataError:
        warnings.append(warn("invalid_metadata", source, source=source))
        return None
    except DialectError as exc:
        code: WarningCode = "conflicting_dialect" if exc.code == "conflicting_dialect" else "unknown_dialect"
        warnings.append(warn(code, source, source=source))
        return None
    warnings.extend(parsed.warnings)
    return parsed


def _leaves(
    document: ParsedDocument | dict[str, object] | None, *, source: str, warnings: list[ConfigWarning]
) -> Leaves:
    if document is None:
        return {}
    native = document.document if isinstance(document, ParsedDocument) else document
    leaves, field_warnings = flatten(native, source=source)
    warnings += field_warnings
    return leaves


def _built_in(settings: Settings) -> CallConfig:
    return CallConfig(
        llm={"model": settings.llm_model},
        stt={"provider": settings.stt_provider},
        tts={"provider": settings.tts_provider},
    )


def _defaults(settings: Settings) -> Leaves:
    """Every leaf of the built-in config (with the settings' providers and model), as the lowest layer."""
    dumped = _built_in(settings).model_dump()
    leaves: Leaves = {}
    for path in LEAF_FIELDS:
        node: object = dumped
        for part in path.split("."):
            assert isinstance(node, dict)
            node = node[part]
        if path != "variables":
            leaves[path] = node
    return leaves


def _merge(layers: Sequence[tuple[Source, Leaves]]) -> dict[str, Entry]:
    merged: dict[str, Entry] = {}
    for source, leaves in layers:
        merged.update({path: Entry(value, source) for path, value in leaves.items()})
    return merged


def _texts(draft: Draft, *, prompts_dir: Path) -> None:
    """Instructions from prompt files, then instructions and welcome rendered over the call's variables."""
    for view in (draft.base, draft.fields):
        value, source = view["instructions"].value, view["instructions"].source
        if isinstance(value, PromptFile):
            try:
                view["instructions"] = Entry(read_prompt(value.name, prompts_dir=prompts_dir), source)
            except TemplateError:
                draft.warnings.append(warn("invalid_value", "instructions_file", source=source))
                view["instructions"] = draft.base["instructions"] if view is draft.fields else Entry("", "default")
    caller = _clean_caller_values(draft)
    pre_call = draft.value("call.pre_call_variables")
    variables = {**(pre_call if isinstance(pre_call, dict) else {}), **_variables(draft.fields)}
    for path in ("instructions", "welcome.text"):
        # Delimiters go where the LLM reads the text: the instructions, and the welcome it generates from.
        delimit = path == "instructions" or draft.value("welcome.mode") == "generate"
        rendered = render(draft.text(path), variables, caller=caller, delimit=delimit)
        draft.warnings += [
            warn("missing_variable", f"variables.{name}", source=draft.source(path)) for name in rendered.missing
        ]
        text = with_data_note(rendered.text) if rendered.caller_data and delimit else rendered.text
        if len(text) > MAX_CHARS[path]:
            draft.warnings.append(warn("truncated", path, source=draft.source(path)))
        draft.set(path, cut(text, MAX_CHARS[path]))
    if draft.value("welcome.mode") == "say" and not draft.text("welcome.text").strip():
        draft.set("welcome.mode", "none")


def _clean_caller_values(draft: Draft) -> frozenset[str]:
    """The names of the caller-set variables, their values cleaned and cut in place (`caller_text`)."""
    names: set[str] = set()
    pre_call = draft.fields["call.pre_call_variables"]
    if pre_call.source == "caller" and isinstance(pre_call.value, dict):
        names |= set(pre_call.value)
        cleaned_pre_call = {name: caller_text(str(value)) for name, value in pre_call.value.items()}
        draft.set("call.pre_call_variables", cleaned_pre_call)
    for path, entry in list(draft.fields.items()):
        if entry.source != "caller" or not path.startswith("variables."):
            continue
        value = str(entry.value)
        if len(value) > MAX_CALLER_VALUE_CHARS:
            draft.warnings.append(warn("truncated", path, source="caller"))
        draft.set(path, caller_text(value))
        names.add(path[len("variables.") :])
    return frozenset(names)


def _variables(fields: Mapping[str, Entry]) -> dict[str, str]:
    found = {
        path[len("variables.") :]: str(entry.value) for path, entry in fields.items() if path.startswith("variables.")
    }
    return dict(sorted(found.items()))


def _build(draft: Draft, *, dialect: Dialect, profile: str, warnings: list[ConfigWarning]) -> CallConfig:
    document: dict[str, object] = {"dialect": dialect, "profile": profile, "variables": _variables(draft.fields)}
    provenance: dict[str, Source] = {}
    for path, entry in draft.fields.items():
        if path.startswith("variables."):
            continue
        set_path(document, path, entry.value)
    for path in LEAF_FIELDS:
        if path == "variables":
            provenance.update({p: draft.fields[p].source for p in sorted(draft.fields) if p.startswith("variables.")})
        else:
            provenance[path] = draft.fields[path].source
    document["provenance"] = provenance
    document["warnings"] = list(dict.fromkeys(warnings))
    return CallConfig.model_validate(document)
