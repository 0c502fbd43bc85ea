"""Media: Opus forwarded without re-encoding, one fan-out per published audio track, and peer-connection settings.

aiortc's receiver normally decodes every frame and its sender re-encodes; a second Opus pass plus the timing
jitter of a Python event loop audibly degrades speech (whisper mishears words it gets right after one pass). So
for Opus the receiver's decoder thread is replaced by one that hands the encoded frame on as an ``av.Packet``
(RTP timestamp as pts), and the sender packs it unchanged: the payload the publisher encoded is what every
subscriber decodes, as with a real SFU. ``MediaRelay`` fans the packets out to every subscriber's sender. A sink
always reads the track, so packets never pile up while nobody is subscribed, and it decodes them to record how
many frames arrived and how loud they were (introspection for tests) and whether the track is speaking (speaker
updates).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection
from aiortc.contrib.media import MediaRelay
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamError

from . import aiortc_shim
from .state import Track

logger = logging.getLogger("sandbox.media")

_OPUS_TIME_BASE = fractions.Fraction(1, 48000)


def _passthrough_decoder_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any],
    output_q: asyncio.Queue[Any],
    decode_error: threading.Event,
) -> None:
    """aiortc's decoder thread (same positional signature), except that Opus frames are passed on encoded and
    everything else is dropped.

    Video is never forwarded, so decoding it would only burn CPU and pile frames up in a queue nobody reads.
    """
    while True:
        task = input_q.get()
        if task is None:
            asyncio.run_coroutine_threadsafe(output_q.put(None), loop)
            return
        codec, encoded_frame = task
        if codec.name.lower() != "opus":
            continue
        packet = av.Packet(encoded_frame.data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = _OPUS_TIME_BASE
        asyncio.run_coroutine_threadsafe(output_q.put(packet), loop)


class _ForwardingJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer without the audio prefetch.

    aiortc holds four audio frames back before handing the oldest on (80 ms of 20 ms Opus frames), which suits a
    player but not a forwarder: an SFU passes each packet on as it arrives and leaves the smoothing to the
    receiving client's jitter buffer. A frame is still handed on only once the next one starts (one packet later).
    """

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False) -> None:
        super().__init__(capacity, prefetch=prefetch if is_video else 0, is_video=is_video)


def enable_opus_passthrough() -> None:
    """Forward Opus as received instead of decoding and re-encoding it, and without holding packets back.
    Process-wide and idempotent."""
    aiortc_shim.replace_receiver_pipeline(
        decoder_worker=_passthrough_decoder_worker, jitter_buffer=_ForwardingJitterBuffer
    )


def new_peer_connection() -> RTCPeerConnection:
    """A peer connection with no STUN/TURN servers (aiortc would otherwise default to a public STUN server)."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


SPEAKING_LEVEL = 0.03  # peak amplitude (about -30 dBFS) above which a track counts as speaking
SPEAKING_HOLD_S = 0.5  # how long a track stays "speaking" after its last loud measurement

SpeakingCallback = Callable[[bool, float], None]


class _AnnouncedSource(MediaStreamTrack):
    """The source of a track announced (``AddTrack``) whose media has not arrived yet: reading it waits for the
    receiver's track, then reads that one."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._received: MediaStreamTrack | None = None
        self._settled = asyncio.Event()

    @property
    def attached(self) -> bool:
        return self._received is not None

    def attach(self, received: MediaStreamTrack) -> None:
        if self._received is None and self.readyState == "live":
            self._received = received
            self._settled.set()

    async def recv(self) -> Any:
        await self._settled.wait()
        if self._received is None:
            raise MediaStreamError
        return await self._received.recv()

    def stop(self) -> None:
        super().stop()
        self._settled.set()


class Fanout:
    """Delivers one published audio track to any number of subscribers.

    It exists from the track's announcement on, so a subscriber's sender can be negotiated while the publisher's
    own offer is still on its way (as an SFU binds a down track before the first packet); ``attach`` connects the
    received media once the publisher's section is negotiated.
    """

    def __init__(self, track: Track, *, on_speaking: SpeakingCallback | None = None) -> None:
        self._track = track
        self._on_speaking = on_speaking
        self._speaking = False
        self._last_loud = 0.0
        self._relay = MediaRelay()
        self._source = _AnnouncedSource()
        self.flowing = asyncio.Event()  # set at the publisher's first packet
        self._sink = asyncio.create_task(self._drain(self._relay.subscribe(self._source)), name="sandbox.media.sink")

    @property
    def receiving(self) -> bool:
        """Whether the publisher's media is connected (its section negotiated)."""
        return self._source.attached

    def attach(self, received: MediaStreamTrack) -> None:
        self._source.attach(received)

    def subscribe(self) -> MediaStreamTrack:
        proxy: MediaStreamTrack = self._relay.subscribe(self._source)
        return proxy

    async def _drain(self, proxy: MediaStreamTrack) -> None:
        decoder = av.CodecContext.create("libopus", "r")
        while True:
            try:
                item: Any = await asyncio.wait_for(proxy.recv(), SPEAKING_HOLD_S)
            except TimeoutError:
                self._update_speaking(0.0)  # no packets at all (a stopped or DTX source) is silence
                continue
            except MediaStreamError:
                return
            self._track.frames_received += 1
            self.flowing.set()
            # Every packet goes through the decoder (Opus carries state from packet to packet); every fifth is
            # measured.
            frames = decoder.decode(item) if isinstance(item, av.Packet) else [item]
            if self._track.frames_received % 5:
                continue
            for frame in frames:
                samples = frame.to_ndarray()
                if samples.size:
                    peak = float(np.abs(samples.astype(np.float32)).max())
                    scale = 1.0 if samples.dtype.kind == "f" else 32768.0
                    self._track.peak_level = max(self._track.peak_level, peak / scale)
                    self._update_speaking(peak / scale)

    def _update_speaking(self, level: float) -> None:
        now = time.monotonic()
        if level >= SPEAKING_LEVEL:
            self._last_loud = now
        speaking = now - self._last_loud < SPEAKING_HOLD_S
        if speaking != self._speaking:
            self._speaking = speaking
            if self._on_speaking is not None:
                self._on_speaking(speaking, level)

    async def aclose(self) -> None:
        if self._speaking and self._on_speaking is not None:
            self._speaking = False
            self._on_speaking(False, 0.0)
        if not self._source.attached:
            self._source.stop()  # never received: the relay's reader must not wait for it forever
        self._sink.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sink
