"""The price table (``config/prices.yaml``) and the estimated cost of one call's provider usage.

The cost in a ``call.ended`` event is an estimate from list prices, labelled as such (``estimate: true``,
``prices_as_of``), never a bill: providers round, discount and bill per request in ways a call cannot see.

Usage entries come from ``AgentSession.usage`` (one per provider/model). A provider is named by the framework's
plugin (``Deepgram``; the OpenAI plugins name their base URL's host), so an entry is matched to the table's provider
whose name it contains, else to any provider of that kind that prices the model. Models match exactly or by prefix
at a dash; the longest key wins. An entry with no price goes under ``unpriced`` and is left out of the total.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import yaml
from livekit.agents.metrics.usage import LLMModelUsage, ModelUsage, STTModelUsage, TTSModelUsage
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.errors import SettingsError

Kind = Literal["llm", "tts", "stt"]
PRICES_FILE = "prices.yaml"


class Rates(BaseModel):
    """Per-unit prices of one model. Units not listed cost nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_1m_tokens: float = Field(default=0.0, ge=0)
    cached_input_per_1m_tokens: float | None = Field(default=None, ge=0)
    output_per_1m_tokens: float = Field(default=0.0, ge=0)
    per_1m_characters: float = Field(default=0.0, ge=0)
    per_audio_minute: float = Field(default=0.0, ge=0)


class PriceTable(BaseModel):
    """``config/prices.yaml``: kind -> provider -> model (or model prefix) -> rates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    currency: str = "USD"
    as_of: str
    llm: dict[str, dict[str, Rates]] = Field(default_factory=dict)
    tts: dict[str, dict[str, Rates]] = Field(default_factory=dict)
    stt: dict[str, dict[str, Rates]] = Field(default_factory=dict)

    def rates_for(self, kind: Kind, *, provider: str, model: str) -> tuple[str, Rates] | None:
        """The table's provider name and rates for one usage entry, or None when the table has no price for it."""
        providers: Mapping[str, Mapping[str, Rates]] = getattr(self, kind)
        named = [name for name in providers if name.lower() in provider.lower()]
        candidates = named or list(providers)
        best: tuple[int, str, Rates] | None = None
        for name in candidates:
            for key, rates in providers[name].items():
                if (model == key or model.startswith(key + "-")) and (best is None or len(key) > best[0]):
                    best = (len(key), name, rates)
        return None if best is None else (best[1], best[2])


def load_prices(config_dir: Path) -> PriceTable | None:
    """The table in ``<config_dir>/prices.yaml``; None when there is none (events then carry no cost)."""
    path = config_dir / PRICES_FILE
    if not path.is_file():
        return None
    try:
        return PriceTable.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValidationError):
        raise SettingsError("invalid price table", fields=(str(path),)) from None


def _kind(usage: ModelUsage) -> Kind | None:
    if isinstance(usage, LLMModelUsage):
        return "llm"
    if isinstance(usage, TTSModelUsage):
        return "tts"
    if isinstance(usage, STTModelUsage):
        return "stt"
    return None


def _amount(usage: ModelUsage, rates: Rates) -> float:
    if isinstance(usage, LLMModelUsage):
        cached = usage.input_cached_tokens
        cached_rate = rates.cached_input_per_1m_tokens
        cached_rate = rates.input_per_1m_tokens if cached_rate is None else cached_rate
        return (
            (usage.input_tokens - cached) * rates.input_per_1m_tokens
            + cached * cached_rate
            + usage.output_tokens * rates.output_per_1m_tokens
        ) / 1e6
    if isinstance(usage, TTSModelUsage):
        return (
            usage.characters_count * rates.per_1m_characters / 1e6 + usage.audio_duration / 60 * rates.per_audio_minute
        )
    if isinstance(usage, STTModelUsage):
        return usage.audio_duration / 60 * rates.per_audio_minute
    return 0.0


def estimate_cost(usages: Sequence[ModelUsage], prices: PriceTable) -> dict[str, object]:
    """The ``cost`` object of ``call.ended``: total, one line per priced entry, and what had no price."""
    lines: list[dict[str, object]] = []
    unpriced: list[dict[str, object]] = []
    total = 0.0
    for usage in usages:
        kind = _kind(usage)
        if kind is None:
            continue
        found = prices.rates_for(kind, provider=usage.provider, model=usage.model)
        if found is None:
            unpriced.append({"kind": kind, "provider": usage.provider, "model": usage.model})
            continue
        provider, rates = found
        amount = round(_amount(usage, rates), 6)
        total += amount
        lines.append({"kind": kind, "provider": provider, "model": usage.model, "amount": amount})
    return {
        "estimate": True,
        "currency": prices.currency,
        "prices_as_of": prices.as_of,
        "total": round(total, 6),
        "lines": lines,
        "unpriced": unpriced,
    }
