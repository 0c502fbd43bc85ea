"""What a client asks for when it connects to ``/rtc/v1`` or ``/rtc``: one ``JoinParams`` from either query.

v1 carries a ``join_request`` parameter: base64url ``WrappedJoinRequest``, whose ``JoinRequest`` may be gzipped and
holds the client's ``ClientInfo``, connection settings, metadata, attributes and first publisher offer.
v0 spreads the same over query parameters, parsed as livekit-server's ``ParseClientInfo`` does: ``sdk``,
``version``, ``protocol``, ``client_protocol``, ``capabilities`` (comma-separated ``ClientInfo.Capability`` names),
``auto_subscribe``, ``reconnect`` and ``sid``.
The client's ``client_protocol`` and ``capabilities`` reach the other participants in its ``ParticipantInfo``:
the JS SDK uses them to decide, per recipient, whether a text stream may go as one packet.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from livekit.protocol import models
from livekit.protocol import rtc as rtc_pb

_TRUE = ("1", "true")
_SDKS = {
    "js": models.ClientInfo.SDK.JS,
    "reactnative": models.ClientInfo.SDK.REACT_NATIVE,
    "swift": models.ClientInfo.SDK.SWIFT,
    "ios": models.ClientInfo.SDK.SWIFT,
    "android": models.ClientInfo.SDK.ANDROID,
    "flutter": models.ClientInfo.SDK.FLUTTER,
    "go": models.ClientInfo.SDK.GO,
    "unity": models.ClientInfo.SDK.UNITY,
    "rust": models.ClientInfo.SDK.RUST,
    "python": models.ClientInfo.SDK.PYTHON,
    "cpp": models.ClientInfo.SDK.CPP,
    "node": models.ClientInfo.SDK.NODE,
}


class BadJoinRequest(ValueError):
    """The ``join_request`` parameter is missing or cannot be decoded."""


@dataclass(frozen=True)
class JoinParams:
    v1: bool
    client: models.ClientInfo
    auto_subscribe: bool
    resume_sid: str = ""  # set when the client asks to resume this participant's session
    offer: rtc_pb.SessionDescription | None = None
    metadata: str = ""
    attributes: Mapping[str, str] | None = None


def decode_join_request(encoded: str) -> rtc_pb.JoinRequest:
    """Decode the v1 ``join_request`` query parameter (base64url ``WrappedJoinRequest``, maybe gzipped)."""
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        wrapped = rtc_pb.WrappedJoinRequest.FromString(raw)
        payload = wrapped.join_request
        if wrapped.compression == rtc_pb.WrappedJoinRequest.Compression.GZIP:
            payload = gzip.decompress(payload)
        return rtc_pb.JoinRequest.FromString(payload)
    except (binascii.Error, ValueError, DecodeError, OSError, EOFError):
        raise BadJoinRequest("join_request cannot be decoded") from None


def v1_params(query: Mapping[str, str]) -> JoinParams:
    encoded = query.get("join_request")
    if not encoded:
        raise BadJoinRequest("join_request missing")
    join = decode_join_request(encoded)
    return JoinParams(
        v1=True,
        client=join.client_info,
        auto_subscribe=join.connection_settings.auto_subscribe,
        resume_sid=join.participant_sid if join.reconnect else "",
        offer=join.publisher_offer if join.publisher_offer.sdp else None,
        metadata=join.metadata,
        attributes=dict(join.participant_attributes),
    )


def v0_params(query: Mapping[str, str]) -> JoinParams:
    return JoinParams(
        v1=False,
        client=client_info(query),
        auto_subscribe=query.get("auto_subscribe", "1") not in ("0", "false"),
        resume_sid=query.get("sid", "") if query.get("reconnect") in _TRUE else "",
    )


def client_info(query: Mapping[str, str]) -> models.ClientInfo:
    """The ``ClientInfo`` a v0 client describes in its query parameters; unknown or malformed values are left out."""
    info = models.ClientInfo(
        version=query.get("version", ""),
        os=query.get("os", ""),
        os_version=query.get("os_version", ""),
        browser=query.get("browser", ""),
        browser_version=query.get("browser_version", ""),
        device_model=query.get("device_model", ""),
        network=query.get("network", ""),
    )
    sdk = _SDKS.get(query.get("sdk", ""))
    if sdk is not None:
        info.sdk = sdk
    for name in ("protocol", "client_protocol"):
        with contextlib.suppress(ValueError):  # not a number, or outside int32
            setattr(info, name, int(query.get(name, "")))
    known = dict(models.ClientInfo.Capability.items())
    for name in query.get("capabilities", "").split(","):
        if name.strip() in known:
            info.capabilities.append(known[name.strip()])  # type: ignore[arg-type]
    return info
