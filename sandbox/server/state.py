"""Room state: rooms, participants and their published tracks, and how each renders as protobuf.

The state is plain data owned by one event loop; nothing here does I/O. ``Participant.session`` is the
participant's signaling connection as far as room changes need it (the ``Connection`` protocol, which
``rtc.ParticipantSession`` implements). Versions increase on every change because the SDK ignores a
``ParticipantInfo`` older than the one it holds.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from livekit.protocol import models
from livekit.protocol import rtc as rtc_pb


def new_sid(prefix: str) -> str:
    """A LiveKit-style id such as ``RM_3fa9c2d1e0b4``."""
    return f"{prefix}_{secrets.token_hex(6)}"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Track:
    """A track a participant published: its announced info plus the media the server receives for it."""

    info: models.TrackInfo
    cid: str
    mid: str | None = None
    media: Any = None  # an aiortc MediaStreamTrack once RTP arrives
    subscribers: set[str] = field(default_factory=set)  # identities
    wanted_by: set[str] = field(default_factory=set)  # identities that asked before media arrived
    frames_received: int = 0
    peak_level: float = 0.0


class Connection(Protocol):
    """What the room manager asks of a participant's signaling connection."""

    @property
    def auto_subscribe(self) -> bool: ...

    def send(self, response: rtc_pb.SignalResponse) -> None: ...

    def send_data(self, packet: models.DataPacket, *, lossy: bool) -> bool: ...

    def add_subscription(self, publisher: Participant, track: Track) -> None: ...

    def remove_subscription(self, track_sid: str) -> None: ...

    async def close(self, *, reason: int) -> None: ...

    async def drop(self) -> None:
        """Close the signaling connection without a leave, as a network blip would."""


@dataclass
class Participant:
    sid: str
    identity: str
    name: str
    kind: int
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    permission: models.ParticipantPermission = field(default_factory=models.ParticipantPermission)
    state: int = models.ParticipantInfo.State.JOINING
    joined_at_ms: int = field(default_factory=now_ms)
    version: int = 1
    tracks: dict[str, Track] = field(default_factory=dict)  # by track sid
    hidden: bool = False
    client_protocol: int = 0  # from the client's ClientInfo, passed on to the others as livekit-server does
    capabilities: list[int] = field(default_factory=list)  # ClientInfo.Capability values
    session: Connection | None = None

    def bump(self) -> None:
        self.version += 1

    def apply_update(self, *, metadata: str, name: str, attributes: dict[str, str]) -> None:
        """LiveKit's merge rule: empty metadata/name leave them unchanged; an empty attribute value deletes the key."""
        if metadata:
            self.metadata = metadata
        if name:
            self.name = name
        for key, value in attributes.items():
            if value:
                self.attributes[key] = value
            else:
                self.attributes.pop(key, None)
        self.bump()

    def info(self) -> models.ParticipantInfo:
        return models.ParticipantInfo(
            sid=self.sid,
            identity=self.identity,
            name=self.name,
            state=self.state,  # type: ignore[arg-type]
            tracks=[t.info for t in self.tracks.values()],
            metadata=self.metadata,
            joined_at=self.joined_at_ms // 1000,
            joined_at_ms=self.joined_at_ms,
            version=self.version,
            permission=self.permission,
            is_publisher=bool(self.tracks),
            kind=self.kind,  # type: ignore[arg-type]
            attributes=self.attributes,
            client_protocol=self.client_protocol,
            capabilities=self.capabilities,  # type: ignore[arg-type]
        )


@dataclass
class Room:
    sid: str
    name: str
    metadata: str = ""
    empty_timeout: float = 300.0  # seconds; floats so tests can use short ones
    departure_timeout: float = 20.0
    max_participants: int = 0
    created_ms: int = field(default_factory=now_ms)
    participants: dict[str, Participant] = field(default_factory=dict)  # by identity

    def info(self) -> models.Room:
        return models.Room(
            sid=self.sid,
            name=self.name,
            metadata=self.metadata,
            empty_timeout=round(self.empty_timeout),
            departure_timeout=round(self.departure_timeout),
            max_participants=self.max_participants,
            creation_time=self.created_ms // 1000,
            creation_time_ms=self.created_ms,
            num_participants=sum(1 for p in self.participants.values() if not p.hidden),
            num_publishers=sum(1 for p in self.participants.values() if p.tracks),
        )

    def track(self, track_sid: str) -> tuple[Participant, Track] | None:
        for p in self.participants.values():
            if track_sid in p.tracks:
                return p, p.tracks[track_sid]
        return None
