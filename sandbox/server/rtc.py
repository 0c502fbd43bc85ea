"""Signaling: the ``/rtc`` and ``/rtc/v1`` websockets, one ``ParticipantSession`` per connected participant.

v1 (``/rtc/v1``, what the SDK tries first) uses one peer connection: the client always offers and the server
answers. To send a new track the server asks for more receive sections with ``MediaSectionsRequirement``; the
client re-offers and the server answers ``sendonly`` on a free section, naming it in ``mid_to_track_id``.
v0 (``/rtc``, the SDK's fallback when ``/rtc/v1`` answers 404) uses two: the client's publisher connection, which the
server answers, and a subscriber connection on which the server offers the tracks it sends.
Either way an outgoing track carries the msid stream id ``"<participant sid>|<track sid>"``, which is how the SDK
matches media to a publication it already learnt from a ``ParticipantUpdate``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp
from livekit.protocol import models
from livekit.protocol import rtc as rtc_pb

from . import network
from .media import Fanout, new_peer_connection
from .rooms import RoomManager
from .state import Participant, Room, Track, new_sid

logger = logging.getLogger("sandbox.rtc")

SERVER_VERSION = "1.9.0-sandbox"
PROTOCOL_VERSION = 16
PING_INTERVAL_S = 5
PING_TIMEOUT_S = 15
_SENDABLE = ("sendonly", "sendrecv")


@dataclass
class _Link:
    """One peer connection and the data channels the client opened on it."""

    pc: RTCPeerConnection
    channels: dict[str, Any] = field(default_factory=dict)


def decode_join_request(encoded: str) -> rtc_pb.JoinRequest:
    """Decode the v1 ``join_request`` query parameter (base64url ``WrappedJoinRequest``, maybe gzipped)."""
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    wrapped = rtc_pb.WrappedJoinRequest.FromString(raw)
    payload = wrapped.join_request
    if wrapped.compression == rtc_pb.WrappedJoinRequest.Compression.GZIP:
        payload = gzip.decompress(payload)
    return rtc_pb.JoinRequest.FromString(payload)


class ParticipantSession:
    """The signaling websocket and peer connection(s) of one participant."""

    def __init__(
        self,
        *,
        ws: web.WebSocketResponse,
        manager: RoomManager,
        room: Room,
        participant: Participant,
        v1: bool,
        auto_subscribe: bool,
        ping_timeout: float = PING_TIMEOUT_S,
    ) -> None:
        self.ws = ws
        self.manager = manager
        self.room = room
        self.participant = participant
        self.v1 = v1
        self.auto_subscribe = auto_subscribe
        self.ping_timeout = ping_timeout
        self._out: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._publisher = self._new_link(primary=True)
        self._subscriber: _Link | None = None if v1 else self._new_link(primary=False)
        self._pending_tracks: dict[str, Track] = {}  # by cid, announced but no media yet
        self._pending_subs: list[tuple[Participant, Track]] = []
        self._sending: dict[str, tuple[RTCRtpTransceiver, Participant, Track]] = {}  # by track sid
        self._negotiation = asyncio.Lock()
        # v0's subscriber connection negotiates on its own: an offer waiting for its answer must not hold up the
        # client's publisher offers, whose handling shares the read loop with that answer.
        self._subscriber_negotiation = asyncio.Lock()
        self._answer_waiter: asyncio.Future[None] | None = None
        self._data_backlog: list[bytes] = []
        self._retired: set[RTCRtpTransceiver] = set()
        self._ws_open = asyncio.Event()
        self._ws_open.set()
        self._ws_done: dict[web.WebSocketResponse, asyncio.Future[None]] = {}
        self._renegotiate = False
        self._closed = False

    # --- outbound ---------------------------------------------------------------------------------------------

    def send(self, response: rtc_pb.SignalResponse) -> None:
        if not self._closed:
            self._out.put_nowait(response.SerializeToString())

    async def _writer(self) -> None:
        while True:
            data = await self._out.get()
            if data is None:
                return
            while True:
                # While the websocket is down, messages wait for the client to resume the session.
                await self._ws_open.wait()
                try:
                    await self.ws.send_bytes(data)
                    break
                except (ConnectionError, RuntimeError):
                    self._ws_open.clear()

    def send_data(self, packet: models.DataPacket, *, lossy: bool) -> bool:
        """Write a packet to the receiver's own data channel (the SDK reads the channels it opened).

        Reliable packets that arrive before the receiver's channel is open wait for it, as they would in an SFU.
        """
        data = packet.SerializeToString()
        channel = self._channel("_lossy" if lossy else "_reliable")
        if channel is not None:
            channel.send(data)
            return True
        if lossy:
            return False
        self._data_backlog.append(data)
        return True

    def _channel(self, label: str) -> Any:
        for link in (self._publisher, self._subscriber):
            if link is None:
                continue
            channel = link.channels.get(label) or link.channels.get("_reliable")
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

    async def close(self, *, reason: int) -> None:
        """Server-side end: a ``leave`` with the reason, then the websocket and peer connections close."""
        if self._closed:
            return
        self.send(
            rtc_pb.SignalResponse(
                leave=rtc_pb.LeaveRequest(
                    can_reconnect=False,
                    reason=reason,  # type: ignore[arg-type]
                    action=rtc_pb.LeaveRequest.Action.DISCONNECT,
                )
            )
        )
        self._closed = True
        self._out.put_nowait(None)
        await asyncio.sleep(0.05)  # let the writer flush the leave
        await self._teardown()

    async def _teardown(self) -> None:
        self._closed = True
        self._out.put_nowait(None)
        for done in self._ws_done.values():
            if not done.done():
                done.set_result(None)
        for link in (self._publisher, self._subscriber):
            if link is not None:
                await link.pc.close()
        if not self.ws.closed:
            await self.ws.close()

    # --- run --------------------------------------------------------------------------------------------------

    async def run(self, *, join_offer: rtc_pb.SessionDescription | None) -> None:
        writer = asyncio.create_task(self._writer(), name="sandbox.rtc.writer")
        try:
            await self.manager.join(self.room, self.participant)
            self.send(rtc_pb.SignalResponse(join=self._join_response()))
            if join_offer is not None and join_offer.sdp:
                await self._on_offer(join_offer)
            if self.auto_subscribe:
                for other in self.manager.visible(self.room, exclude=self.participant.identity):
                    for track in list(other.tracks.values()):
                        self.manager.subscribe(self.room, self.participant, track_sid=track.info.sid)
            while True:
                await self._read_loop()
                if self._closed or not await self._wait_for_resume():
                    break
        finally:
            if not self._closed:
                await self.manager.remove(self.room, self.participant, reason=models.DisconnectReason.CLIENT_INITIATED)
            await self._teardown()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _wait_for_resume(self) -> bool:
        """The websocket dropped without a leave: keep the participant and its media while the SDK resumes."""
        self._ws_open.clear()
        done = self._ws_done.pop(self.ws, None)
        if done is not None and not done.done():
            done.set_result(None)
        try:
            await asyncio.wait_for(self._ws_open.wait(), self.ping_timeout)
        except TimeoutError:
            return False
        return True

    @property
    def resumable(self) -> bool:
        return not self._closed

    async def resume(self, ws: web.WebSocketResponse) -> asyncio.Future[None]:
        """Carry this session on over a new websocket (SDK resume); returns a future done when that one is."""
        previous = self.ws
        self.ws = ws
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ws_done[ws] = done
        if not previous.closed:
            await previous.close()
        # ReconnectResponse must be the first message on the new websocket; the SDK drops anything before it.
        await ws.send_bytes(
            rtc_pb.SignalResponse(
                reconnect=rtc_pb.ReconnectResponse(server_info=self._join_response().server_info)
            ).SerializeToString()
        )
        self._ws_open.set()
        logger.info("participant resumed", extra={"participant_sid": self.participant.sid})
        return done

    async def _read_loop(self) -> None:
        while True:
            try:
                msg = await self.ws.receive(timeout=self.ping_timeout)
            except TimeoutError:
                # The SDK pings every ping_interval; silence this long means the client is gone.
                logger.info("participant timed out", extra={"participant_sid": self.participant.sid})
                await self.manager.remove(self.room, self.participant, reason=models.DisconnectReason.SIGNAL_CLOSE)
                return
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return
            if msg.type != WSMsgType.BINARY:
                continue
            request = rtc_pb.SignalRequest.FromString(msg.data)
            kind = request.WhichOneof("message")
            if kind == "leave":
                await self.manager.remove(self.room, self.participant, reason=models.DisconnectReason.CLIENT_INITIATED)
                return
            try:
                await self._handle(request, kind)
            except Exception:
                logger.exception("signal request failed", extra={"request": kind})

    def _join_response(self) -> rtc_pb.JoinResponse:
        return rtc_pb.JoinResponse(
            room=self.room.info(),
            participant=self.participant.info(),
            other_participants=[p.info() for p in self.manager.visible(self.room, exclude=self.participant.identity)],
            server_version=SERVER_VERSION,
            subscriber_primary=False,
            # As livekit-server (>= 1.7) answers a participant that may publish: the SDK then negotiates its publisher
            # connection at once, at join and at each publish, instead of after a 150 ms debounce.
            fast_publish=self.participant.permission.can_publish,
            ping_interval=PING_INTERVAL_S,
            ping_timeout=PING_TIMEOUT_S,
            server_info=models.ServerInfo(
                edition=models.ServerInfo.Edition.Standard,
                version=SERVER_VERSION,
                protocol=PROTOCOL_VERSION,
                node_id="sandbox",
            ),
        )

    async def _handle(self, request: rtc_pb.SignalRequest, kind: str | None) -> None:
        match kind:
            case "offer":
                await self._on_offer(request.offer)
            case "answer":
                await self._on_answer(request.answer)
            case "trickle":
                await self._on_trickle(request.trickle)
            case "add_track":
                self._on_add_track(request.add_track)
            case "mute":
                self.manager.set_muted(
                    self.room, self.participant, track_sid=request.mute.sid, muted=request.mute.muted
                )
            case "subscription":
                self._on_subscription(request.subscription)
            case "update_metadata":
                self._on_update_metadata(request.update_metadata)
            case "ping":
                self.send(rtc_pb.SignalResponse(pong=int(time.time() * 1000)))
            case "ping_req":
                self.send(
                    rtc_pb.SignalResponse(
                        pong_resp=rtc_pb.Pong(
                            last_ping_timestamp=request.ping_req.timestamp, timestamp=int(time.time() * 1000)
                        )
                    )
                )
            case _:
                logger.debug("signal request ignored", extra={"request": kind})

    # --- peer connections -------------------------------------------------------------------------------------

    def _new_link(self, *, primary: bool) -> _Link:
        link = _Link(pc=new_peer_connection())

        @link.pc.on("datachannel")  # type: ignore[untyped-decorator,unused-ignore]
        def _on_channel(channel: Any) -> None:
            link.channels[channel.label] = channel
            self._flush_backlog()

            @channel.on("message")  # type: ignore[untyped-decorator,unused-ignore]
            def _on_message(data: bytes | str) -> None:
                if isinstance(data, bytes):
                    self._on_data(data, lossy=channel.label == "_lossy")

        if primary:

            @link.pc.on("track")  # type: ignore[untyped-decorator,unused-ignore]
            def _on_track(track: MediaStreamTrack) -> None:
                self._on_media(link.pc, track)

            @link.pc.on("connectionstatechange")  # type: ignore[untyped-decorator,unused-ignore]
            async def _on_state() -> None:
                if link.pc.connectionState == "connected":
                    self.manager.mark_active(self.room, self.participant)

        return link

    async def _on_offer(self, offer: rtc_pb.SessionDescription) -> None:
        async with self._negotiation:
            pc = self._publisher.pc
            await pc.setRemoteDescription(RTCSessionDescription(sdp=network.filter_sdp(offer.sdp), type="offer"))
            await self._detect_unpublished(pc)
            newly = self._assign_pending(pc) if self.v1 else []
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
            mapping = {t.mid: sid for sid, (t, _, _) in self._sending.items() if t.mid} if self.v1 else {}
            self.send(
                rtc_pb.SignalResponse(
                    answer=rtc_pb.SessionDescription(
                        type="answer", sdp=pc.localDescription.sdp, id=offer.id, mid_to_track_id=mapping
                    )
                )
            )
        for publisher, track in newly:
            self.manager.subscribed(self.room, publisher, track=track)
        if self.v1 and self._pending_subs:
            self._request_sections()

    async def _on_answer(self, answer: rtc_pb.SessionDescription) -> None:
        if self._subscriber is None:
            return
        await self._subscriber.pc.setRemoteDescription(
            RTCSessionDescription(sdp=network.filter_sdp(answer.sdp), type="answer")
        )
        if self._answer_waiter is not None and not self._answer_waiter.done():
            self._answer_waiter.set_result(None)

    async def _on_trickle(self, trickle: rtc_pb.TrickleRequest) -> None:
        parsed = network.parse_trickle(trickle.candidateInit)
        if parsed is None or not network.is_allowed_candidate(parsed[0]):
            return  # only loopback candidates are ever used
        text, mid, index = parsed
        candidate = candidate_from_sdp(text.removeprefix("candidate:"))
        candidate.sdpMid = mid
        candidate.sdpMLineIndex = index
        link = self._subscriber if trickle.target == rtc_pb.SignalTarget.SUBSCRIBER else self._publisher
        if link is not None and link.pc.remoteDescription is not None:
            await link.pc.addIceCandidate(candidate)

    # --- publishing -------------------------------------------------------------------------------------------

    def _on_add_track(self, req: rtc_pb.AddTrackRequest) -> None:
        if not self.participant.permission.can_publish:
            self.send(
                rtc_pb.SignalResponse(
                    request_response=rtc_pb.RequestResponse(
                        reason=rtc_pb.RequestResponse.Reason.NOT_ALLOWED, add_track=req
                    )
                )
            )
            return
        info = models.TrackInfo(
            sid=new_sid("TR"),
            type=req.type,
            name=req.name,
            muted=req.muted,
            source=req.source,
            disable_dtx=req.disable_dtx,
            stereo=req.stereo,
            mime_type="audio/opus" if req.type == models.TrackType.AUDIO else "video/vp8",
            stream=req.stream,
        )
        track = Track(info=info, cid=req.cid)
        if req.type == models.TrackType.AUDIO:
            # Subscribers' sections are negotiated from the announcement on, in parallel with the publisher's offer.
            track.media = Fanout(track, on_speaking=self._speaking_callback())
        self._pending_tracks[req.cid] = track
        self.manager.publish(self.room, self.participant, track=track)
        self.send(rtc_pb.SignalResponse(track_published=rtc_pb.TrackPublishedResponse(cid=req.cid, track=info)))

    def _on_media(self, pc: RTCPeerConnection, media: MediaStreamTrack) -> None:
        track = self._pending_tracks.pop(media.id, None)
        if track is None:
            track = next(
                (
                    t
                    for t in self._pending_tracks.values()
                    if (t.info.type == models.TrackType.AUDIO) == (media.kind == "audio")
                ),
                None,
            )
            if track is None:
                logger.warning("media for an unannounced track", extra={"kind": media.kind})
                return
            self._pending_tracks.pop(track.cid, None)
        transceiver = next((t for t in pc.getTransceivers() if t.receiver.track is media), None)
        track.mid = transceiver.mid if transceiver is not None else None
        track.info.mid = track.mid or ""
        if media.kind != "audio":
            logger.info("video is not forwarded", extra={"track_sid": track.info.sid})
            return
        if track.media is None:
            track.media = Fanout(track, on_speaking=self._speaking_callback())
        track.media.attach(media)
        self.manager.media_ready(self.room, self.participant, track=track)

    def _speaking_callback(self) -> Callable[[bool, float], None]:
        room, participant = self.room, self.participant

        def on_speaking(active: bool, level: float) -> None:
            self.manager.speaking(room, participant, active=active, level=level)

        return on_speaking

    async def _detect_unpublished(self, pc: RTCPeerConnection) -> None:
        """An unpublish is a re-offer whose section no longer sends; the SDK sends no other signal."""
        directions = {t.mid: t._offerDirection for t in pc.getTransceivers()}
        for track in list(self.participant.tracks.values()):
            if track.mid is not None and directions.get(track.mid) not in ("recvonly", "sendrecv"):
                await self.manager.unpublish(self.room, self.participant, track=track)

    # --- subscribing ------------------------------------------------------------------------------------------

    def add_subscription(self, publisher: Participant, track: Track) -> None:
        self._pending_subs.append((publisher, track))
        if self.v1:
            if not self._negotiation.locked():
                self._request_sections()
        else:
            self.manager.spawn(self._offer_subscriber(), name="sandbox.rtc.subscriber_offer")

    def remove_subscription(self, track_sid: str) -> None:
        self._pending_subs = [(p, t) for p, t in self._pending_subs if t.info.sid != track_sid]
        sending = self._sending.pop(track_sid, None)
        if sending is None:
            return
        transceiver = sending[0]
        transceiver.sender.replaceTrack(None)
        transceiver.direction = "inactive"
        # A section that carried a track is never reused: the SDK only announces a new remote track for a section
        # that starts receiving, so a later subscription gets a fresh section.
        self._retired.add(transceiver)
        if not self.v1:
            self._renegotiate = True
            self.manager.spawn(self._offer_subscriber(), name="sandbox.rtc.subscriber_offer")

    def _request_sections(self) -> None:
        count = sum(1 for _, t in self._pending_subs if t.info.type == models.TrackType.AUDIO)
        if count:
            self.send(
                rtc_pb.SignalResponse(media_sections_requirement=rtc_pb.MediaSectionsRequirement(num_audios=count))
            )

    def _attach(self, transceiver: RTCRtpTransceiver, *, publisher: Participant, track: Track) -> None:
        assert track.media is not None
        transceiver.sender.replaceTrack(track.media.subscribe())
        # The SDK matches incoming media to a publication by this stream id.
        transceiver.sender._stream_id = f"{publisher.sid}|{track.info.sid}"
        transceiver.sender._track_id = track.info.sid
        self._sending[track.info.sid] = (transceiver, publisher, track)

    def _assign_pending(self, pc: RTCPeerConnection) -> list[tuple[Participant, Track]]:
        used = {t for t, _, _ in self._sending.values()}
        free = [
            t
            for t in pc.getTransceivers()
            if t.kind == "audio"
            and t._offerDirection in _SENDABLE
            and t not in used
            and t not in self._retired
            and t.sender.track is None
        ]
        assigned: list[tuple[Participant, Track]] = []
        remaining: list[tuple[Participant, Track]] = []
        for publisher, track in self._pending_subs:
            if track.media is None:
                continue
            if not free:
                remaining.append((publisher, track))
                continue
            transceiver = free.pop(0)
            transceiver.direction = "sendonly"
            self._attach(transceiver, publisher=publisher, track=track)
            assigned.append((publisher, track))
        self._pending_subs = remaining
        return assigned

    async def _offer_subscriber(self) -> None:
        """v0: put pending tracks on the subscriber connection and offer it."""
        assert self._subscriber is not None
        async with self._subscriber_negotiation:
            pending, self._pending_subs = self._pending_subs, []
            newly: list[tuple[Participant, Track]] = []
            pc = self._subscriber.pc
            for publisher, track in pending:
                if track.media is None or track.info.sid in self._sending:
                    continue
                transceiver = pc.addTransceiver("audio", direction="sendonly")
                self._attach(transceiver, publisher=publisher, track=track)
                newly.append((publisher, track))
            if not newly and not self._renegotiate:
                return
            self._renegotiate = False
            offer = await pc.createOffer()
            await pc.setLocalDescription(offer)
            mapping = {t.mid: sid for sid, (t, _, _) in self._sending.items() if t.mid}
            self._answer_waiter = asyncio.get_running_loop().create_future()
            self.send(
                rtc_pb.SignalResponse(
                    offer=rtc_pb.SessionDescription(type="offer", sdp=pc.localDescription.sdp, mid_to_track_id=mapping)
                )
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._answer_waiter, timeout=10)
        for publisher, track in newly:
            self.manager.subscribed(self.room, publisher, track=track)

    def _on_subscription(self, req: rtc_pb.UpdateSubscription) -> None:
        sids = list(req.track_sids) + [sid for pt in req.participant_tracks for sid in pt.track_sids]
        for sid in sids:
            if req.subscribe:
                self.manager.subscribe(self.room, self.participant, track_sid=sid)
            else:
                self.manager.unsubscribe(self.room, self.participant, track_sid=sid)

    # --- data and metadata ------------------------------------------------------------------------------------

    def _on_data(self, data: bytes, *, lossy: bool) -> None:
        try:
            packet = models.DataPacket.FromString(data)
        except Exception:
            logger.warning("undecodable data packet dropped")
            return
        if not self.participant.permission.can_publish_data:
            return
        # The channel, not the deprecated ``kind`` field, says how the sender wanted it delivered.
        packet.kind = models.DataPacket.Kind.LOSSY if lossy else models.DataPacket.Kind.RELIABLE
        self.manager.forward_data(self.room, packet, sender=self.participant)

    def _on_update_metadata(self, req: rtc_pb.UpdateParticipantMetadata) -> None:
        if not self.participant.permission.can_update_metadata:
            reason = rtc_pb.RequestResponse.Reason.NOT_ALLOWED
        else:
            reason = rtc_pb.RequestResponse.Reason.OK
            apply_participant_update(
                self.participant, metadata=req.metadata, name=req.name, attributes=dict(req.attributes)
            )
            self.manager.broadcast_participant(self.room, self.participant)
        self.send(
            rtc_pb.SignalResponse(
                request_response=rtc_pb.RequestResponse(request_id=req.request_id, reason=reason, update_metadata=req)
            )
        )


def apply_participant_update(participant: Participant, *, metadata: str, name: str, attributes: dict[str, str]) -> None:
    """LiveKit's merge rule: empty strings leave metadata/name unchanged; an empty attribute value deletes the key."""
    if metadata:
        participant.metadata = metadata
    if name:
        participant.name = name
    for key, value in attributes.items():
        if value:
            participant.attributes[key] = value
        else:
            participant.attributes.pop(key, None)
    participant.bump()
