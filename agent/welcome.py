"""The welcome synthesized while the worker joins the room, so the first words are out sooner.

The worker starts `WelcomePrefetch` with the config resolved before any caller is there (job and room metadata
only). Once the caller joined and the config is final, `audio_for` hands the audio over only if the final config
would say the same text with the same voice; otherwise the prefetch is cancelled and the session synthesizes the
welcome itself, as it does when the prefetch fails. What the prefetch spends is in `usage`: the session never sees
it, so the call's events add it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from livekit import rtc
from livekit.agents.metrics.usage import ModelUsageCollector

from agent import pipeline
from agent.config.call_config import CallConfig
from agent.errors import PipelineError
from agent.log import get_logger
from agent.pipeline import TtsEngine
from agent.settings import Settings

logger = get_logger(__name__)


class WelcomePrefetch:
    """The welcome synthesized with the early config while the worker joins the room."""

    def __init__(self, *, config: CallConfig, engine: TtsEngine | None) -> None:
        self._config = config
        self._frames: asyncio.Queue[rtc.AudioFrame | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.failed = False
        self.usage = ModelUsageCollector()
        if engine is not None:
            self._task = asyncio.create_task(self._run(engine), name="welcome_prefetch")

    @classmethod
    def start(cls, config: CallConfig, *, settings: Settings, shared: pipeline.Shared) -> WelcomePrefetch:
        if config.welcome.mode != "say" or not config.welcome.text.strip():
            return cls(config=config, engine=None)
        try:
            engine = pipeline.build_tts(config.tts, settings=settings, shared=shared)
        except PipelineError:
            return cls(config=config, engine=None)
        return cls(config=config, engine=engine)

    def audio_for(self, config: CallConfig) -> AsyncIterator[rtc.AudioFrame] | None:
        """The prefetched audio if the final config would say the same thing the same way, else None."""
        if self._task is None or self.failed:
            return None
        if config.welcome.text != self._config.welcome.text or config.tts != self._config.tts:
            self._task.cancel()
            return None
        return self._iter()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, engine: TtsEngine) -> None:
        engine.on("metrics_collected", self.usage)
        try:
            async with engine.synthesize(self._config.welcome.text) as stream:
                async for audio in stream:
                    self._frames.put_nowait(audio.frame)
        except Exception:
            # The session then synthesizes the welcome itself (with its retries and fallbacks).
            self.failed = True
            logger.warning("welcome prefetch failed", exc_info=True)
        finally:
            self._frames.put_nowait(None)
            await engine.aclose()

    async def _iter(self) -> AsyncIterator[rtc.AudioFrame]:
        while (frame := await self._frames.get()) is not None:
            yield frame
            # Prefetched audio is all there at once. Handing it over in one go would let the transcript
            # synchronizer's speaking-rate analysis of the whole welcome (about 40 ms of numpy on this box) run
            # before the first frame reaches the room's audio source; a yield per frame lets that frame go first.
            await asyncio.sleep(0)
