"""Language codes: what is one (BCP 47 with a real ISO 639 language, via ``langcodes``), and the STT language.

`language_code` normalizes a code (``pt_br`` -> ``pt-BR``, ``iw`` -> ``he``) or refuses it: a tag that is not
well-formed, names no registered language (``qq``, ``xyz-abcdefgh``) or is ``und``. `stt_language` turns the
call's languages into the STT provider's terms, from the provider table (`agent.providers`).
"""

from __future__ import annotations

import langcodes

from agent.providers import base_language, stt_spec


def language_code(value: object) -> str | None:
    """``en``, ``pt-BR``, ``zh-Hant-TW``: a normalized BCP 47 code, or None when `value` is not a valid one."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None
    text = value.strip().replace("_", "-")
    try:
        language = langcodes.Language.get(text)
    except (langcodes.tag_parser.LanguageTagError, ValueError):
        return None
    if not langcodes.tag_is_valid(text) or not language.is_valid() or language.language in (None, "und"):
        return None
    return str(language)


def stt_language(*, provider: str, model: str, primary: str, secondary: str | None) -> tuple[str, str | None]:
    """The STT provider's language code for the call, and the language field it cannot honour, if any.

    Both languages must be heard when there is a secondary. A provider that detects the language itself (OpenAI):
    ``multi``, which the pipeline turns into the model's own detection. A one-language model (the bundled offline
    whisper, ``tiny.en``): that language, and any other is unsupported. A code-switching model (Deepgram nova-3):
    ``multi`` when both are in its code-switching set; otherwise the primary, and the secondary is unsupported.
    """
    spec = stt_spec(provider)
    if spec.detects_language:
        return ("multi" if secondary else primary), None
    heard = spec.models.get(model)
    if heard is not None and len(heard) == 1:
        (only,) = heard
        if base_language(primary) != only:
            return only, "language.primary"
        return only, None if secondary is None or base_language(secondary) == only else "language.secondary"
    if secondary is None:
        return primary, None
    if model in spec.multi_models and {base_language(primary), base_language(secondary)} <= spec.multi_languages:
        return "multi", None
    return primary, "language.secondary"
