"""What a signaling session asks of its peer connection(s), and the plumbing both signaling protocols share.

A ``Negotiator`` answers the client's offers, applies trickled candidates, puts the tracks a participant subscribes
to on its connection, and writes data packets to the data channels the client opened. ``single_peer`` (``/rtc/v1``,
one peer connection) and ``two_peers`` (``/rtc``, a publisher and a subscriber connection) implement it; the session
(``rtc``) neither knows nor cares which one it holds. A negotiator reports back through its ``NegotiatorHost``.

Data channels: the SDK reads the channels it opened itself, so packets for a participant go to its own
``_reliable``/``_lossy`` channel; reliable packets that arrive before that channel is open wait for it, as they
would in an SFU.
"""

from __future__ import annotations

import abc
from collections.abc import Coroutine
from typing import Any, Protocol

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp
from livekit.protocol import models
from livekit.protocol import rtc as rtc_pb

from . import aiortc_shim, network
from .media import new_peer_connection
from .state import Participant, Track

RECEIVING = ("recvonly", "sendrecv")  # offer directions, server side, on which the client sends media


class NegotiatorHost(Protocol):
    """The session a negotiator serves."""

    def send(self, response: rtc_pb.SignalResponse) -> None: ...

    def on_data(self, data: bytes, *, lossy: bool) -> None: ...

    def on_media(self, media: MediaStreamTrack, *, mid: str | None) -> None: ...

    def on_connected(self) -> None: ...

    async def on_receiving(self, mids: set[str]) -> None:
        """After each client offer: the sections on which the client still sends media."""

    def on_subscribed(self, publisher: Participant, track: Track) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None: ...


class Negotiator(abc.ABC):
    """The peer connection(s) of one participant. ``publisher`` is the connection the client offers on."""

    def __init__(self, host: NegotiatorHost) -> None:
        self.host = host
        self._channels: dict[str, Any] = {}  # by label, whichever connection the client opened it on
        self._data_backlog: list[bytes] = []
        self.pending: list[tuple[Participant, Track]] = []  # subscriptions not on a section yet
        self.sending: dict[str, tuple[RTCRtpTransceiver, Participant, Track]] = {}  # by track sid
        self.publisher = self._new_pc(receives_media=True)

    # --- the interface --------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def on_offer(self, offer: rtc_pb.SessionDescription) -> None:
        """Answer a client offer on the publisher connection."""

    @abc.abstractmethod
    async def on_answer(self, answer: rtc_pb.SessionDescription) -> None:
        """Apply the client's answer to a server offer."""

    @abc.abstractmethod
    def add_subscription(self, publisher: Participant, track: Track) -> None:
        """Start sending ``track`` to this participant."""

    @abc.abstractmethod
    def remove_subscription(self, track_sid: str) -> None:
        """Stop sending a track to this participant."""

    @abc.abstractmethod
    def connection(self, target: int) -> RTCPeerConnection | None:
        """The connection a ``SignalTarget`` names, if this protocol has it."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close every peer connection."""

    # --- shared ---------------------------------------------------------------------------------------------

    async def on_trickle(self, trickle: rtc_pb.TrickleRequest) -> None:
        parsed = network.parse_trickle(trickle.candidateInit)
        if parsed is None or not network.is_allowed_candidate(parsed[0]):
            return  # only loopback candidates are ever used
        text, mid, index = parsed
        candidate = candidate_from_sdp(text.removeprefix("candidate:"))
        candidate.sdpMid = mid
        candidate.sdpMLineIndex = index
        pc = self.connection(trickle.target)
        if pc is not None and pc.remoteDescription is not None:
            await pc.addIceCandidate(candidate)

    def send_data(self, packet: models.DataPacket, *, lossy: bool) -> bool:
        """Write a packet to the receiver's own data channel; False when a lossy one had nowhere to go."""
        data = packet.SerializeToString()
        channel = self._channel("_lossy" if lossy else "_reliable")
        if channel is not None:
            channel.send(data)
            return True
        if lossy:
            return False
        self._data_backlog.append(data)
        return True

    async def apply_offer(self, offer: rtc_pb.SessionDescription) -> RTCPeerConnection:
        """Set a client offer as the publisher's remote description and tell the host where media still flows."""
        pc = self.publisher
        await pc.setRemoteDescription(RTCSessionDescription(sdp=network.filter_sdp(offer.sdp), type="offer"))
        receiving = {t.mid for t in pc.getTransceivers() if t.mid and aiortc_shim.offer_direction(t) in RECEIVING}
        await self.host.on_receiving(receiving)
        return pc

    def attach(self, transceiver: RTCRtpTransceiver, *, publisher: Participant, track: Track) -> None:
        """Send ``track`` on ``transceiver``, announced with the stream id the SDK matches publications by."""
        assert track.media is not None
        transceiver.sender.replaceTrack(track.media.subscribe())
        aiortc_shim.set_msid(transceiver.sender, stream_id=f"{publisher.sid}|{track.info.sid}", track_id=track.info.sid)
        self.sending[track.info.sid] = (transceiver, publisher, track)

    def detach(self, track_sid: str) -> RTCRtpTransceiver | None:
        """Stop sending a track; its section goes inactive. Returns the transceiver it used, if any."""
        self.pending = [(p, t) for p, t in self.pending if t.info.sid != track_sid]
        sending = self.sending.pop(track_sid, None)
        if sending is None:
            return None
        transceiver = sending[0]
        transceiver.sender.replaceTrack(None)
        transceiver.direction = "inactive"
        return transceiver

    def mid_to_track_id(self) -> dict[str, str]:
        return {t.mid: sid for sid, (t, _, _) in self.sending.items() if t.mid}

    def _new_pc(self, *, receives_media: bool) -> RTCPeerConnection:
        pc = new_peer_connection()

        @pc.on("datachannel")  # type: ignore[untyped-decorator,unused-ignore]
        def _on_channel(channel: Any) -> None:
            self._channels.setdefault(channel.label, channel)
            self._flush_backlog()

            @channel.on("message")  # type: ignore[untyped-decorator,unused-ignore]
            def _on_message(data: bytes | str) -> None:
                if isinstance(data, bytes):
                    self.host.on_data(data, lossy=channel.label == "_lossy")

        if receives_media:

            @pc.on("track")  # type: ignore[untyped-decorator,unused-ignore]
            def _on_track(media: MediaStreamTrack) -> None:
                transceiver = next((t for t in pc.getTransceivers() if t.receiver.track is media), None)
                self.host.on_media(media, mid=transceiver.mid if transceiver is not None else None)

            @pc.on("connectionstatechange")  # type: ignore[untyped-decorator,unused-ignore]
            async def _on_state() -> None:
                if pc.connectionState == "connected":
                    self.host.on_connected()

        return pc

    def _channel(self, label: str) -> Any:
        channel = self._channels.get(label) or self._channels.get("_reliable")
        if channel is not None and channel.readyState == "open":
            return channel
        return None

    def _flush_backlog(self) -> None:
        channel = self._channel("_reliable")
        if channel is None:
            return
        backlog, self._data_backlog = self._data_backlog, []
        for data in backlog:
            channel.send(data)
