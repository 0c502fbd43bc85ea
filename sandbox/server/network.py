"""Keeping every packet on this machine: loopback-only ICE and the host-interface check.

Contract:
- the server's ICE agent gathers exactly one host address, ``127.0.0.1``, and no STUN/TURN candidates;
- every remote candidate that is not a loopback address is dropped, in SDP and in trickle, before aiortc sees it;
- libwebrtc sends its checks from the host's own interface address (it skips loopback), so the server learns that
  address as peer-reflexive and answers it: that address belongs to this host, and traffic to it never leaves it.
  Checks from any address that is not this host's are ignored, so no other peer-reflexive address is ever learnt
  (the kernel delivers packets to 127.0.0.0/8 only from this host anyway);
- libwebrtc (inside the ``livekit`` SDK) ignores loopback adapters, so a host or namespace with nothing but ``lo``
  cannot connect at all: the server refuses to start there with a message naming ``python -m sandbox netns``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from typing import Any

import aioice.ice
import ifaddr

LOOPBACK_HOST = "127.0.0.1"
NETNS_ENV = "LK_SANDBOX_NETNS"

_CANDIDATE_LINE = re.compile(r"^a=candidate:", re.IGNORECASE)


class NetworkSetupError(RuntimeError):
    """The host cannot run loopback WebRTC (no non-loopback interface for libwebrtc)."""


def _loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return [LOOPBACK_HOST] if use_ipv4 else []


_ORIGINAL_REQUEST_RECEIVED = aioice.ice.Connection.request_received
_ORIGINAL_ADD_REMOTE_CANDIDATE = aioice.ice.Connection.add_remote_candidate
_local_addresses: frozenset[str] = frozenset()


# The two patches keep aioice's own positional signatures.
def _local_only_request_received(
    self: aioice.ice.Connection, message: Any, addr: tuple[str, int], protocol: Any
) -> None:
    if addr[0] in _local_addresses:
        _ORIGINAL_REQUEST_RECEIVED(self, message, addr, protocol)


async def _loopback_only_add_remote_candidate(
    self: aioice.ice.Connection, remote_candidate: aioice.Candidate | None
) -> None:
    if remote_candidate is not None and not is_loopback_address(remote_candidate.host):
        return
    await _ORIGINAL_ADD_REMOTE_CANDIDATE(self, remote_candidate)


def local_addresses() -> frozenset[str]:
    """Every address of this host's interfaces (loopback included)."""
    found = {"127.0.0.1", "::1"}
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            found.add(ip.ip if isinstance(ip.ip, str) else ip.ip[0])
    return frozenset(found)


def restrict_ice_to_loopback() -> None:
    """Confine aioice to this host. Process-wide and idempotent.

    It gathers only ``127.0.0.1`` (aioice leaves loopback out by default), accepts only loopback remote candidates,
    and answers connectivity checks only from this host's own addresses.
    """
    global _local_addresses
    _local_addresses = local_addresses()
    aioice.ice.get_host_addresses = _loopback_host_addresses
    aioice.ice.Connection.request_received = _local_only_request_received  # type: ignore[method-assign]
    aioice.ice.Connection.add_remote_candidate = _loopback_only_add_remote_candidate  # type: ignore[method-assign]


def is_loopback_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        # mDNS names (``*.local``) and anything unparsable are not loopback.
        return False


def is_allowed_candidate(candidate: str) -> bool:
    """A remote candidate is kept only when its address is loopback and it is UDP."""
    parts = candidate.strip().split()
    if len(parts) < 6 or parts[2].lower() != "udp":
        return False
    return is_loopback_address(parts[4])


def filter_sdp(sdp: str) -> str:
    """Drop every ``a=candidate`` line whose address is not loopback."""
    lines = sdp.splitlines()
    kept = [line for line in lines if not _CANDIDATE_LINE.match(line) or is_allowed_candidate(line[2:])]
    return "\r\n".join(kept) + "\r\n"


def parse_trickle(candidate_init: str) -> tuple[str, str | None, int | None] | None:
    """Decode the SDK's trickle JSON ``{candidate, sdpMid, sdpMLineIndex}``; None when it is unusable."""
    try:
        data = json.loads(candidate_init)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    candidate = data.get("candidate")
    if not isinstance(candidate, str) or not candidate:
        return None
    mid = data.get("sdpMid")
    index = data.get("sdpMLineIndex")
    return (
        candidate.removeprefix("a="),
        mid if isinstance(mid, str) else None,
        index if isinstance(index, int) else None,
    )


def encode_trickle(candidate: str, *, mid: str | None, index: int | None) -> str:
    return json.dumps({"candidate": candidate, "sdpMid": mid, "sdpMLineIndex": index})


def has_non_loopback_interface() -> bool:
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            address = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            if not is_loopback_address(address):
                return True
    return False


def in_own_network_namespace() -> bool:
    """True inside a namespace made by ``python -m sandbox netns`` or when it differs from PID 1's."""
    if os.environ.get(NETNS_ENV) == "1":
        return True
    try:
        return os.readlink("/proc/self/ns/net") != os.readlink("/proc/1/ns/net")
    except OSError:
        return False


def check_host_network() -> None:
    """Refuse to run where the SDK's WebRTC cannot connect over loopback."""
    if has_non_loopback_interface():
        return
    where = "this network namespace" if in_own_network_namespace() else "this host"
    raise NetworkSetupError(
        f"{where} has no non-loopback network interface; libwebrtc ignores 'lo', so no client could connect. "
        "Run the server and its clients together in a private namespace with a veth pair: "
        "python -m sandbox netns -- <command>"
    )
