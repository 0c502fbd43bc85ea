"""``/rtc`` (v0) negotiation: the client's publisher connection, which the server answers, and a subscriber
connection on which the server offers the tracks it sends.

``JoinResponse.subscriber_primary=false`` makes the client negotiate its publisher connection at once. The
subscriber connection negotiates on its own: an offer waiting for its answer must not hold up the client's
publisher offers, whose handling shares the session's read loop with that answer.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiortc import RTCPeerConnection, RTCSessionDescription
from livekit.protocol import rtc as rtc_pb

from . import network
from .negotiator import Negotiator, NegotiatorHost
from .state import Participant, Track

ANSWER_TIMEOUT_S = 10.0


class TwoPeersNegotiator(Negotiator):
    def __init__(self, host: NegotiatorHost) -> None:
        super().__init__(host)
        self.subscriber = self._new_pc(receives_media=False)
        self._publisher_negotiation = asyncio.Lock()
        self._subscriber_negotiation = asyncio.Lock()
        self._answer_waiter: asyncio.Future[None] | None = None
        self._renegotiate = False

    async def on_offer(self, offer: rtc_pb.SessionDescription) -> None:
        async with self._publisher_negotiation:
            pc = await self.apply_offer(offer)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
            self.host.send(
                rtc_pb.SignalResponse(
                    answer=rtc_pb.SessionDescription(type="answer", sdp=pc.localDescription.sdp, id=offer.id)
                )
            )

    async def on_answer(self, answer: rtc_pb.SessionDescription) -> None:
        await self.subscriber.setRemoteDescription(
            RTCSessionDescription(sdp=network.filter_sdp(answer.sdp), type="answer")
        )
        if self._answer_waiter is not None and not self._answer_waiter.done():
            self._answer_waiter.set_result(None)

    def add_subscription(self, publisher: Participant, track: Track) -> None:
        self.pending.append((publisher, track))
        self.host.spawn(self._offer_subscriber(), name="sandbox.rtc.subscriber_offer")

    def remove_subscription(self, track_sid: str) -> None:
        if self.detach(track_sid) is not None:
            self._renegotiate = True
            self.host.spawn(self._offer_subscriber(), name="sandbox.rtc.subscriber_offer")

    def connection(self, target: int) -> RTCPeerConnection | None:
        return self.subscriber if target == rtc_pb.SignalTarget.SUBSCRIBER else self.publisher

    async def aclose(self) -> None:
        await self.publisher.close()
        await self.subscriber.close()

    async def _offer_subscriber(self) -> None:
        """Put pending tracks on the subscriber connection and offer it."""
        async with self._subscriber_negotiation:
            pending, self.pending = self.pending, []
            newly: list[tuple[Participant, Track]] = []
            pc = self.subscriber
            for publisher, track in pending:
                if track.media is None or track.info.sid in self.sending:
                    continue
                transceiver = pc.addTransceiver("audio", direction="sendonly")
                self.attach(transceiver, publisher=publisher, track=track)
                newly.append((publisher, track))
            if not newly and not self._renegotiate:
                return
            self._renegotiate = False
            offer = await pc.createOffer()
            await pc.setLocalDescription(offer)
            self._answer_waiter = asyncio.get_running_loop().create_future()
            self.host.send(
                rtc_pb.SignalResponse(
                    offer=rtc_pb.SessionDescription(
                        type="offer", sdp=pc.localDescription.sdp, mid_to_track_id=self.mid_to_track_id()
                    )
                )
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._answer_waiter, timeout=ANSWER_TIMEOUT_S)
        for publisher, track in newly:
            self.host.on_subscribed(publisher, track)
