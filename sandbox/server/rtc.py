"""Signaling: the ``/rtc`` and ``/rtc/v1`` websockets, one ``ParticipantSession`` per connected participant.

The session owns the participant's websocket: it sends the ``JoinResponse``, reads signal requests, answers pings,
turns ``AddTrack`` and incoming media into publications, forwards data packets and metadata updates to the room
manager, and keeps the participant while the SDK resumes on a new websocket. Peer connections are its
``Negotiator``'s business: ``single_peer`` for ``/rtc/v1`` (what the SDK tries first), ``two_peers`` for ``/rtc``
(the SDK's fallback when ``/rtc/v1`` answers 404).
Either way an outgoing track carries the msid stream id ``"<participant sid>|<track sid>"``, which is how the SDK
matches media to a publication it already learnt from a ``ParticipantUpdate``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import WSMsgType, web
from aiortc import MediaStreamTrack
from livekit.protocol import models
from livekit.protocol import rtc as rtc_pb

from .media import Fanout
from .negotiator import Negotiator
from .rooms import RoomManager
from .single_peer import SinglePeerNegotiator
from .state import Participant, Room, Track, new_sid
from .two_peers import TwoPeersNegotiator

logger = logging.getLogger("sandbox.rtc")

SERVER_VERSION = "1.9.0-sandbox"
PROTOCOL_VERSION = 16
PING_INTERVAL_S = 5
PING_TIMEOUT_S = 15


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
        self.auto_subscribe = auto_subscribe
        self.ping_timeout = ping_timeout
        self._out: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._peers: Negotiator = SinglePeerNegotiator(self) if v1 else TwoPeersNegotiator(self)
        self._pending_tracks: dict[str, Track] = {}  # by cid, announced but no media yet
        self._ws_open = asyncio.Event()
        self._ws_open.set()
        self._ws_done: dict[web.WebSocketResponse, asyncio.Future[None]] = {}
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
        """Write a packet to the receiver's own data channel (the SDK reads the channels it opened)."""
        return self._peers.send_data(packet, lossy=lossy)

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        self.manager.spawn(coro, name=name)

    async def drop(self) -> None:
        """Close the websocket without a leave, as a network blip would; the SDK resumes on a new one."""
        await self.ws.close()

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
        await self._peers.aclose()
        if not self.ws.closed:
            await self.ws.close()

    # --- run --------------------------------------------------------------------------------------------------

    async def run(self, *, join_offer: rtc_pb.SessionDescription | None) -> None:
        writer = asyncio.create_task(self._writer(), name="sandbox.rtc.writer")
        try:
            await self.manager.join(self.room, self.participant)
            self.send(rtc_pb.SignalResponse(join=self._join_response()))
            if join_offer is not None:
                await self._peers.on_offer(join_offer)
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
                await self._peers.on_offer(request.offer)
            case "answer":
                await self._peers.on_answer(request.answer)
            case "trickle":
                await self._peers.on_trickle(request.trickle)
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

    # --- what the negotiator reports -------------------------------------------------------------------------

    def on_connected(self) -> None:
        self.manager.mark_active(self.room, self.participant)

    def on_subscribed(self, publisher: Participant, track: Track) -> None:
        self.manager.subscribed(self.room, publisher, track=track)

    async def on_receiving(self, mids: set[str]) -> None:
        """An unpublish is a re-offer whose section no longer sends; the SDK sends no other signal."""
        for track in list(self.participant.tracks.values()):
            if track.mid is not None and track.mid not in mids:
                await self.manager.unpublish(self.room, self.participant, track=track)

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

    def on_media(self, media: MediaStreamTrack, *, mid: str | None) -> None:
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
        track.mid = mid
        track.info.mid = mid or ""
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

    # --- subscribing ------------------------------------------------------------------------------------------

    def add_subscription(self, publisher: Participant, track: Track) -> None:
        self._peers.add_subscription(publisher, track)

    def remove_subscription(self, track_sid: str) -> None:
        self._peers.remove_subscription(track_sid)

    def _on_subscription(self, req: rtc_pb.UpdateSubscription) -> None:
        sids = list(req.track_sids) + [sid for pt in req.participant_tracks for sid in pt.track_sids]
        for sid in sids:
            if req.subscribe:
                self.manager.subscribe(self.room, self.participant, track_sid=sid)
            else:
                self.manager.unsubscribe(self.room, self.participant, track_sid=sid)

    # --- data and metadata ------------------------------------------------------------------------------------

    def on_data(self, data: bytes, *, lossy: bool) -> None:
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
            self.participant.apply_update(metadata=req.metadata, name=req.name, attributes=dict(req.attributes))
            self.manager.broadcast_participant(self.room, self.participant)
        self.send(
            rtc_pb.SignalResponse(
                request_response=rtc_pb.RequestResponse(request_id=req.request_id, reason=reason, update_metadata=req)
            )
        )
