"""Subscribing to the callers' audio once the agent's own voice is on its way.

``AutoSubscribe.AUDIO_ONLY`` subscribes the moment the room is joined. Over a single peer connection (``/rtc/v1``,
what the SDK uses first) a subscription is a section the agent must offer, and the SDK negotiates one offer at a
time: the caller's audio section, asked for at join, went out first and the agent's own track waited for its
answer, a round trip later (about 50 ms on the 2-vCPU box, `bench/dispatch_latency.py`). The agent speaks first in
a web call, so its track goes first: ``DeferredAudioSubscription`` subscribes to every remote audio track (and to
those published later) once the agent has published an audio track of its own, or when ``release`` is called,
whichever comes first. Video is never subscribed.

Contract:
- Subscribes each remote audio publication exactly once, present ones at release and later ones as they appear.
- ``release`` is idempotent; the worker calls it after the session started, so a session that publishes no audio
  (a text-only call) still hears its callers, and before the session starts in a scribe call (which says nothing
  first, and must not miss what is said while its session starts).
"""

from __future__ import annotations

from livekit import rtc

from agent.log import get_logger

logger = get_logger(__name__)


class DeferredAudioSubscription:
    """Holds the room's audio subscriptions back until the agent's first audio track is published."""

    def __init__(self, room: rtc.Room) -> None:
        self._room = room
        self._released = False
        room.on("local_track_published", self._on_local_track_published)
        room.on("track_published", self._on_track_published)

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        """Subscribe to the audio published so far, and from now on to all that is published."""
        if self._released:
            return
        self._released = True
        self._room.off("local_track_published", self._on_local_track_published)
        for participant in self._room.remote_participants.values():
            for publication in participant.track_publications.values():
                self._subscribe(publication)

    def _on_local_track_published(self, publication: rtc.LocalTrackPublication, _track: rtc.Track) -> None:
        if publication.kind == rtc.TrackKind.KIND_AUDIO:
            logger.debug("own audio published, subscribing to callers")
            self.release()

    def _on_track_published(self, publication: rtc.RemoteTrackPublication, _participant: rtc.RemoteParticipant) -> None:
        if self._released:
            self._subscribe(publication)

    @staticmethod
    def _subscribe(publication: rtc.TrackPublication) -> None:
        if (
            isinstance(publication, rtc.RemoteTrackPublication)
            and publication.kind == rtc.TrackKind.KIND_AUDIO
            and not publication.subscribed
        ):
            publication.set_subscribed(True)
