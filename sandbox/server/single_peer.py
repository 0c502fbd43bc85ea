"""``/rtc/v1`` negotiation: one peer connection, on which the client always offers and the server answers.

To send a new track the server asks for more receive sections with ``MediaSectionsRequirement{num_audios}``; the
client adds recvonly transceivers and re-offers, and the answer sends the track ``sendonly`` on a free section,
named in ``SessionDescription.mid_to_track_id``. A section that once carried a track is never reused: the SDK only
announces a new remote track for a section that starts receiving, so a later subscription gets a fresh section.
"""

from __future__ import annotations

import asyncio

from aiortc import RTCPeerConnection, RTCRtpTransceiver
from livekit.protocol import models
from livekit.protocol import rtc as rtc_pb

from . import aiortc_shim
from .negotiator import Negotiator, NegotiatorHost
from .state import Participant, Track

_SENDABLE = ("sendonly", "sendrecv")  # offer directions, server side, on which the server may send


class SinglePeerNegotiator(Negotiator):
    def __init__(self, host: NegotiatorHost) -> None:
        super().__init__(host)
        self._negotiation = asyncio.Lock()
        self._retired: set[RTCRtpTransceiver] = set()

    async def on_offer(self, offer: rtc_pb.SessionDescription) -> None:
        async with self._negotiation:
            pc = await self.apply_offer(offer)
            newly = self._assign_pending(pc)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
            self.host.send(
                rtc_pb.SignalResponse(
                    answer=rtc_pb.SessionDescription(
                        type="answer", sdp=pc.localDescription.sdp, id=offer.id, mid_to_track_id=self.mid_to_track_id()
                    )
                )
            )
        for publisher, track in newly:
            self.host.on_subscribed(publisher, track)
        if self.pending:
            self._request_sections()

    async def on_answer(self, answer: rtc_pb.SessionDescription) -> None:
        """The server never offers in v1."""

    def add_subscription(self, publisher: Participant, track: Track) -> None:
        self.pending.append((publisher, track))
        # An offer being answered assigns pending tracks itself and asks for sections for the rest afterwards.
        if not self._negotiation.locked():
            self._request_sections()

    def remove_subscription(self, track_sid: str) -> None:
        transceiver = self.detach(track_sid)
        if transceiver is not None:
            self._retired.add(transceiver)

    def connection(self, target: int) -> RTCPeerConnection | None:
        return self.publisher

    async def aclose(self) -> None:
        await self.publisher.close()

    def _request_sections(self) -> None:
        count = sum(1 for _, t in self.pending if t.info.type == models.TrackType.AUDIO)
        if count:
            self.host.send(
                rtc_pb.SignalResponse(media_sections_requirement=rtc_pb.MediaSectionsRequirement(num_audios=count))
            )

    def _assign_pending(self, pc: RTCPeerConnection) -> list[tuple[Participant, Track]]:
        used = {t for t, _, _ in self.sending.values()}
        free = [
            t
            for t in pc.getTransceivers()
            if t.kind == "audio"
            and aiortc_shim.offer_direction(t) in _SENDABLE
            and t not in used
            and t not in self._retired
            and t.sender.track is None
        ]
        assigned: list[tuple[Participant, Track]] = []
        remaining: list[tuple[Participant, Track]] = []
        for publisher, track in self.pending:
            if track.media is None:
                continue
            if not free:
                remaining.append((publisher, track))
                continue
            transceiver = free.pop(0)
            transceiver.direction = "sendonly"
            self.attach(transceiver, publisher=publisher, track=track)
            assigned.append((publisher, track))
        self.pending = remaining
        return assigned
