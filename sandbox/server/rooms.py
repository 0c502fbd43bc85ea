"""The room manager: joins, leaves, state broadcasts, subscriptions, data forwarding and room deletion.

It owns every ``Room`` and is the one place that decides who hears about a change: a ``ParticipantUpdate`` goes
to every connected participant of the room (hidden participants are never announced), a room update likewise.
Auto-created rooms (on join, on ``CreateDispatch``) are allowed, as in ``livekit-server --dev``.
Like LiveKit, a room closes by itself ``departure_timeout`` seconds after its last participant left, or
``empty_timeout`` seconds after creation when nobody ever joined; closing is a deletion (jobs are terminated).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from livekit.protocol import models
from livekit.protocol import rtc as rtc_pb

from .state import Participant, Room, Track, new_sid

logger = logging.getLogger("sandbox.rooms")

MEDIA_WAIT_S = 30.0  # how long a subscription waits for the publisher's first packet before it is not announced

RoomHook = Callable[[Room], Awaitable[None]]


class RoomNotFound(LookupError):
    """A request named a room that does not exist."""


class ParticipantNotFound(LookupError):
    """A request named a participant that is not in the room."""


class RoomManager:
    def __init__(self, *, empty_timeout: float = 300.0, departure_timeout: float = 20.0) -> None:
        self.empty_timeout = empty_timeout
        self.departure_timeout = departure_timeout
        self.rooms: dict[str, Room] = {}
        self._closers: dict[str, asyncio.TimerHandle] = {}
        self.on_room_created: list[RoomHook] = []
        self.on_room_deleted: list[RoomHook] = []
        self.on_participant_left: list[Callable[[Room, Participant], Awaitable[None]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None:
            raise RoomNotFound(name)
        return room

    async def get_or_create(self, name: str, *, metadata: str = "", auto_dispatch: bool = True) -> Room:
        room = self.rooms.get(name)
        if room is not None:
            return room
        room = Room(
            sid=new_sid("RM"),
            name=name,
            metadata=metadata,
            empty_timeout=self.empty_timeout,
            departure_timeout=self.departure_timeout,
        )
        self.rooms[name] = room
        self._close_later(room, room.empty_timeout)
        logger.info("room created", extra={"room_sid": room.sid})
        if auto_dispatch:
            for hook in self.on_room_created:
                await hook(room)
        return room

    # --- state broadcasts -------------------------------------------------------------------------------------

    def visible(self, room: Room, *, exclude: str | None = None) -> list[Participant]:
        return [
            p
            for p in room.participants.values()
            if not p.hidden and p.identity != exclude and p.state != models.ParticipantInfo.State.DISCONNECTED
        ]

    def broadcast_participant(self, room: Room, participant: Participant, *, to_self: bool = True) -> None:
        """Tell every connected participant (including itself, unless told not to) about a participant's state."""
        update = rtc_pb.SignalResponse(update=rtc_pb.ParticipantUpdate(participants=[participant.info()]))
        for other in list(room.participants.values()):
            if other.session is None or (other is participant and not to_self):
                continue
            if participant.hidden and other.identity != participant.identity:
                continue
            other.session.send(update)

    def broadcast_room(self, room: Room) -> None:
        update = rtc_pb.SignalResponse(room_update=rtc_pb.RoomUpdate(room=room.info()))
        for p in room.participants.values():
            if p.session is not None:
                p.session.send(update)

    # --- membership -------------------------------------------------------------------------------------------

    async def join(self, room: Room, participant: Participant) -> None:
        previous = room.participants.get(participant.identity)
        if previous is not None:
            # Same identity joining again replaces the old connection, as LiveKit does.
            await self.remove(room, previous, reason=models.DisconnectReason.DUPLICATE_IDENTITY)
        room.participants[participant.identity] = participant
        self._cancel_close(room)
        participant.state = models.ParticipantInfo.State.JOINED
        # The newcomer learns about itself from its JoinResponse, which must be the first message it gets.
        self.broadcast_participant(room, participant, to_self=False)
        logger.info("participant joined", extra={"room_sid": room.sid, "participant_sid": participant.sid})

    def mark_active(self, room: Room, participant: Participant) -> None:
        if participant.state != models.ParticipantInfo.State.ACTIVE:
            participant.state = models.ParticipantInfo.State.ACTIVE
            participant.bump()
            self.broadcast_participant(room, participant)

    async def remove(
        self, room: Room, participant: Participant, *, reason: int = models.DisconnectReason.CLIENT_INITIATED
    ) -> None:
        """Take a participant out of the room, unpublish its tracks and tell everyone."""
        if room.participants.get(participant.identity) is not participant:
            return
        del room.participants[participant.identity]
        session = participant.session
        participant.session = None
        for track in list(participant.tracks.values()):
            await self.unpublish(room, participant, track=track, notify=False)
        participant.state = models.ParticipantInfo.State.DISCONNECTED
        participant.bump()
        self.broadcast_participant(room, participant)
        if session is not None:
            await session.close(reason=reason)
        logger.info("participant left", extra={"room_sid": room.sid, "participant_sid": participant.sid})
        for hook in self.on_participant_left:
            await hook(room, participant)
        if not room.participants and self.rooms.get(room.name) is room:
            self._close_later(room, room.departure_timeout)

    def set_timeouts(self, room: Room, *, empty: float | None, departure: float | None) -> None:
        """Per-room timeouts from CreateRoom; the empty-room timer restarts with the new value."""
        if departure:
            room.departure_timeout = departure
        if empty:
            room.empty_timeout = empty
            if not room.participants:
                self._close_later(room, empty)

    def _close_later(self, room: Room, delay: float) -> None:
        self._cancel_close(room)
        loop = asyncio.get_running_loop()
        self._closers[room.name] = loop.call_later(delay, self._close_if_empty, room)

    def _cancel_close(self, room: Room) -> None:
        handle = self._closers.pop(room.name, None)
        if handle is not None:
            handle.cancel()

    def _close_if_empty(self, room: Room) -> None:
        self._closers.pop(room.name, None)
        if not room.participants and self.rooms.get(room.name) is room:
            logger.info("empty room closed", extra={"room_sid": room.sid})
            self.spawn(self.delete_room(room.name), name="sandbox.rooms.close")

    async def delete_room(self, name: str) -> None:
        room = self.get(name)
        self._cancel_close(room)
        for hook in self.on_room_deleted:
            await hook(room)
        self.rooms.pop(name, None)
        for p in list(room.participants.values()):
            await self.remove(room, p, reason=models.DisconnectReason.ROOM_DELETED)
        logger.info("room deleted", extra={"room_sid": room.sid})

    # --- tracks -----------------------------------------------------------------------------------------------

    def publish(self, room: Room, participant: Participant, *, track: Track) -> None:
        participant.tracks[track.info.sid] = track
        participant.bump()
        self.broadcast_participant(room, participant)
        if track.media is not None:
            # An audio track's fan-out exists from the announcement: subscribers negotiate their sections now,
            # while the publisher's own offer is on its way, not one renegotiation after it.
            self._subscribe_interested(room, participant, track=track)

    def media_ready(self, room: Room, publisher: Participant, *, track: Track) -> None:
        """The publisher's section for a publication is negotiated: subscribe automatic subscribers and those who
        already asked (if the announcement did not already)."""
        self._subscribe_interested(room, publisher, track=track)

    def _subscribe_interested(self, room: Room, publisher: Participant, *, track: Track) -> None:
        for other in self.visible(room, exclude=publisher.identity):
            if other.session is not None and (other.session.auto_subscribe or other.identity in track.wanted_by):
                self.subscribe(room, other, track_sid=track.info.sid)
        track.wanted_by.clear()

    def subscribe(self, room: Room, subscriber: Participant, *, track_sid: str) -> None:
        found = room.track(track_sid)
        if found is None or subscriber.session is None or not subscriber.permission.can_subscribe:
            return
        publisher, track = found
        if publisher.identity == subscriber.identity or subscriber.identity in track.subscribers:
            return
        if track.media is None:
            track.wanted_by.add(subscriber.identity)  # subscribed once media arrives (media_ready)
            return
        track.subscribers.add(subscriber.identity)
        subscriber.session.add_subscription(publisher, track)

    def unsubscribe(self, room: Room, subscriber: Participant, *, track_sid: str) -> None:
        found = room.track(track_sid)
        if found is None or subscriber.session is None:
            return
        _, track = found
        track.wanted_by.discard(subscriber.identity)
        if subscriber.identity in track.subscribers:
            track.subscribers.discard(subscriber.identity)
            subscriber.session.remove_subscription(track_sid)

    def subscribed(self, room: Room, publisher: Participant, *, track: Track) -> None:
        """A subscriber's transceiver carries the track: the hidden ``track_subscribed`` the SDK waits for.

        It goes out once the publisher's media flows too (an SFU binds a down track to a receiving up track):
        the SDK starts sending what it captured when it gets it, and nothing sent before its own section is
        negotiated would arrive.
        """
        media = track.media
        if media is not None and not media.flowing.is_set():
            self.spawn(self._subscribed_when_flowing(room, publisher, track=track), name="sandbox.rooms.subscribed")
            return
        if publisher.session is not None:
            publisher.session.send(
                rtc_pb.SignalResponse(track_subscribed=rtc_pb.TrackSubscribed(track_sid=track.info.sid))
            )

    async def _subscribed_when_flowing(self, room: Room, publisher: Participant, *, track: Track) -> None:
        media = track.media
        if media is None:
            return
        try:
            await asyncio.wait_for(media.flowing.wait(), MEDIA_WAIT_S)
        except TimeoutError:
            return  # the publisher never sent media: no subscription to announce
        if track.media is media and publisher.session is not None:
            self.subscribed(room, publisher, track=track)

    async def unpublish(self, room: Room, participant: Participant, *, track: Track, notify: bool = True) -> None:
        participant.tracks.pop(track.info.sid, None)
        for identity in list(track.subscribers):
            sub = room.participants.get(identity)
            if sub is not None and sub.session is not None:
                sub.session.remove_subscription(track.info.sid)
        track.subscribers.clear()
        fanout = track.media
        track.media = None
        if fanout is not None:
            await fanout.aclose()
        if notify:
            participant.bump()
            if participant.session is not None:
                participant.session.send(
                    rtc_pb.SignalResponse(track_unpublished=rtc_pb.TrackUnpublishedResponse(track_sid=track.info.sid))
                )
            self.broadcast_participant(room, participant)

    def set_muted(self, room: Room, participant: Participant, *, track_sid: str, muted: bool) -> None:
        track = participant.tracks.get(track_sid)
        if track is None or track.info.muted == muted:
            return
        track.info.muted = muted
        participant.bump()
        self.broadcast_participant(room, participant)

    def speaking(self, room: Room, participant: Participant, *, active: bool, level: float) -> None:
        """A participant started or stopped speaking: ``speakers_changed`` to everyone in the room."""
        if participant.hidden or room.participants.get(participant.identity) is not participant:
            return
        info = models.SpeakerInfo(sid=participant.sid, level=level if active else 0.0, active=active)
        update = rtc_pb.SignalResponse(speakers_changed=rtc_pb.SpeakersChanged(speakers=[info]))
        for p in room.participants.values():
            if p.session is not None:
                p.session.send(update)

    # --- data -------------------------------------------------------------------------------------------------

    def forward_data(self, room: Room, packet: models.DataPacket, *, sender: Participant | None) -> int:
        """Deliver a data packet to its destinations (everyone else when none are named); returns the count."""
        if sender is not None:
            packet.participant_identity = sender.identity
            packet.participant_sid = sender.sid
        destinations = set(packet.destination_identities)
        if not destinations and packet.HasField("user"):
            destinations = set(packet.user.destination_identities)
        lossy = packet.kind == models.DataPacket.Kind.LOSSY
        delivered = 0
        for p in list(room.participants.values()):
            if sender is not None and p.identity == sender.identity:
                continue
            if destinations and p.identity not in destinations:
                continue
            if p.session is not None and p.session.send_data(packet, lossy=lossy):
                delivered += 1
        return delivered

    def spawn(self, coro: Awaitable[None], *, name: str) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for name in list(self.rooms):
            await self.delete_room(name)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
