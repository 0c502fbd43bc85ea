"""Every access to aiortc's private internals, in one place, for the pinned aiortc ``AIORTC_VERSION``.

aiortc has no public API for three things an SFU-like server needs, so this module reaches inside it:
- the direction a remote offer gave a transceiver (``RTCRtpTransceiver._offerDirection``, from the server's side):
  an unpublish is a re-offer whose section stops sending, and v1 answers ``sendonly`` only on sections the client
  offered to receive on;
- the msid a sender announces (``RTCRtpSender._stream_id`` / ``_track_id``, written into every SDP it makes): the
  SDK matches incoming media to a publication by the stream id ``"<participant sid>|<track sid>"``;
- the receiver's decoder thread and jitter buffer (the module globals ``decoder_worker`` and ``JitterBuffer`` of
  ``aiortc.rtcrtpreceiver``, looked up each time a receiver starts), which ``media`` replaces to forward Opus as
  received.

``tests/sandbox/test_server_aiortc_shim.py`` checks each of these against the installed aiortc and fails loudly on
any other version, so an upgrade re-checks them before anything subtler breaks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiortc.rtcrtpreceiver
from aiortc import RTCRtpSender, RTCRtpTransceiver

AIORTC_VERSION = "1.16.0"


def offer_direction(transceiver: RTCRtpTransceiver) -> str | None:
    """The direction the last remote offer gave this section, seen from this side (``recvonly``: the client sends)."""
    direction: str | None = transceiver._offerDirection
    return direction


def set_msid(sender: RTCRtpSender, *, stream_id: str, track_id: str) -> None:
    """Make the SDP this sender appears in announce ``a=msid:<stream_id> <track_id>``."""
    sender._stream_id = stream_id
    sender._track_id = track_id


def replace_receiver_pipeline(*, decoder_worker: Callable[..., None], jitter_buffer: type[Any]) -> None:
    """Receivers started from now on run ``decoder_worker`` (aiortc's positional signature
    ``(loop, input_q, output_q, decode_error)``) and buffer with ``jitter_buffer`` (``JitterBuffer``'s signature
    ``(capacity, prefetch=0, is_video=False)``). Process-wide."""
    aiortc.rtcrtpreceiver.decoder_worker = decoder_worker
    aiortc.rtcrtpreceiver.JitterBuffer = jitter_buffer  # type: ignore[attr-defined]
