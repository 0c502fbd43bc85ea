"""Media: one fan-out per published audio track, and the aiortc peer-connection settings the server uses.

aiortc decodes each incoming Opus stream; ``MediaRelay`` hands the decoded frames to every subscriber's sender,
which re-encodes them. A sink always reads the track, so frames never pile up while nobody is subscribed, and it
records how many frames arrived and how loud they were (introspection for tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from .state import Track

logger = logging.getLogger("sandbox.media")


def new_peer_connection() -> RTCPeerConnection:
    """A peer connection with no STUN/TURN servers (aiortc would otherwise default to a public STUN server)."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


class Fanout:
    """Delivers one received track to any number of subscribers."""

    def __init__(self, track: Track, source: MediaStreamTrack) -> None:
        self._track = track
        self._relay = MediaRelay()
        self._source = source
        self._sink = asyncio.create_task(self._drain(self._relay.subscribe(source)), name="sandbox.media.sink")

    def subscribe(self) -> MediaStreamTrack:
        proxy: MediaStreamTrack = self._relay.subscribe(self._source)
        return proxy

    async def _drain(self, proxy: MediaStreamTrack) -> None:
        while True:
            try:
                frame: Any = await proxy.recv()
            except MediaStreamError:
                return
            self._track.frames_received += 1
            if self._track.frames_received % 5 == 0:
                samples = frame.to_ndarray()
                if samples.size:
                    level = float(np.abs(samples.astype(np.float32)).max()) / 32768.0
                    self._track.peak_level = max(self._track.peak_level, level)

    async def aclose(self) -> None:
        self._sink.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sink
