"""Native: webcall-agent's own shape, the shape of the resolved config itself. Partial documents are the norm.

Every key is the canonical field of the same dotted name (see `CallConfig`), so the mapping table is the identity;
its wire model is `CallConfig`'s schema, walked leniently by `agent.config.fields.flatten`. Besides the settable
fields (everything but ``dialect``, ``profile``, ``provenance``, ``warnings`` and the derived ``stt.language``) a
native document may carry:

| key                  | meaning                                                                                |
|----------------------|----------------------------------------------------------------------------------------|
| ``dialect``          | ``"native"`` (or another dialect's name): the explicit hint, taken before detection    |
| ``instructions_file``| a file in ``prompts/`` (``support.md``) whose text is the instructions template        |
| ``tts.voice_gender`` | ``male`` / ``female``: a voice from ``config/voices.yaml`` for the provider and language|
| ``language`` (string)| shorthand for ``language.primary``                                                     |

Agent profiles (``config/agents/*.yaml``) are native documents. Detected by any top-level group or field that only
the native shape has (``instructions``, ``welcome``, ``language``, ``stt``, ``llm``, ``tts``, ``variables``...).
A document that no dialect claims is also read as native (or as ``WEBCALL_DIALECT`` when set), so its unknown keys
surface as ``ignored_field``. Example::

    {"agent_id": "support", "language": {"primary": "en", "secondary": "es"}, "tts": {"voice": "nova", "speed": 1.1},
     "variables": {"customer_name": "Ada"}, "welcome": {"text": "Hi {{customer_name | there}}!"}}
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.config.dialects._wire import Converted, DialectSpec

MARKERS = frozenset(
    {
        "instructions",
        "instructions_file",
        "welcome",
        "language",
        "stt",
        "llm",
        "tts",
        "ambience",
        "variables",
        "call",
        "knowledge_base_ids",
        "chat",
        "limits",
    }
)


def matches(document: Mapping[str, object]) -> bool:
    return bool(MARKERS & document.keys())


def convert(document: Mapping[str, object], *, source: str, trusted: bool) -> Converted:
    del source, trusted
    native = dict(document)
    if isinstance(native.get("language"), str):
        native["language"] = {"primary": native["language"]}
    return native, []


SPEC = DialectSpec(name="native", matches=matches, convert=convert)
