"""Loopback-only networking: candidate filtering, what the server advertises, and the namespace tooling."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys

import aioice
import pytest
from aioice import stun

from sandbox.server import network
from sandbox.server.media import new_peer_connection

HOST_CANDIDATE = "candidate:1 1 udp 2122260223 192.0.2.2 50000 typ host generation 0"
LOOPBACK_CANDIDATE = "candidate:2 1 udp 2122260223 127.0.0.1 50001 typ host generation 0"
MDNS_CANDIDATE = "candidate:3 1 udp 2122260223 4f1e0c4a-7c1c-4f63-8f4c-0d4b8c1f2a3b.local 50002 typ host"
TCP_LOOPBACK = "candidate:4 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active"
SRFLX = "candidate:5 1 udp 1686052607 203.0.113.9 40000 typ srflx raddr 192.0.2.2 rport 50000"


def test_only_udp_loopback_candidates_are_allowed() -> None:
    assert network.is_allowed_candidate(LOOPBACK_CANDIDATE)
    for other in (HOST_CANDIDATE, MDNS_CANDIDATE, TCP_LOOPBACK, SRFLX, "candidate:garbage"):
        assert not network.is_allowed_candidate(other), other


def test_filter_sdp_drops_every_non_loopback_candidate_line() -> None:
    sdp = "\r\n".join(
        [
            "v=0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            f"a={HOST_CANDIDATE}",
            f"a={LOOPBACK_CANDIDATE}",
            f"a={SRFLX}",
            "a=mid:0",
        ]
    )
    kept = network.filter_sdp(sdp).splitlines()
    assert [line for line in kept if line.startswith("a=candidate")] == [f"a={LOOPBACK_CANDIDATE}"]
    assert "a=mid:0" in kept


def test_trickle_json_is_decoded_into_candidate_mid_and_index() -> None:
    encoded = network.encode_trickle(f"a={LOOPBACK_CANDIDATE}", mid="0", index=0)
    assert network.parse_trickle(encoded) == (LOOPBACK_CANDIDATE, "0", 0)
    assert network.parse_trickle("not json") is None
    assert network.parse_trickle('{"candidate": ""}') is None


async def test_the_server_side_advertises_only_127_0_0_1_and_no_stun() -> None:
    network.restrict_ice_to_loopback()
    pc = new_peer_connection()
    try:
        pc.createDataChannel("probe")
        await pc.setLocalDescription(await pc.createOffer())
        candidates = [line for line in pc.localDescription.sdp.splitlines() if line.startswith("a=candidate")]
        assert candidates
        assert {line.split()[4] for line in candidates} == {"127.0.0.1"}
        assert all(" typ host" in line for line in candidates)
    finally:
        await pc.close()


def test_a_host_with_a_non_loopback_interface_passes_the_check() -> None:
    assert network.has_non_loopback_interface()
    network.check_host_network()


_UNSHARE_WORKS = (
    shutil.which("unshare") is not None
    and subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False).returncode == 0
)
needs_unshare = pytest.mark.skipif(not _UNSHARE_WORKS, reason="unprivileged user+network namespaces unavailable")


@needs_unshare
def test_the_server_refuses_to_start_where_only_loopback_exists() -> None:
    result = subprocess.run(
        ["unshare", "-rn", sys.executable, "-m", "sandbox", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "no non-loopback network interface" in result.stderr
    assert "python -m sandbox netns" in result.stderr


_EXCHANGE = """
import asyncio, sys
from sandbox.server import network, running
from tests.sandbox.server_helpers import Listener, eventually, joined, publish_tone

async def main() -> None:
    assert network.in_own_network_namespace()
    async with running(port=0) as server:
        async with joined(server, room="ns", identities=["alice", "bob"]) as (alice, bob):
            listener = Listener()
            listener.attach(bob)
            tone = await publish_tone(alice)
            await eventually(lambda: listener.loud_frames("alice") >= 20, within=20)
            await tone.aclose()
            await listener.aclose()
    print("exchanged")

asyncio.run(main())
"""


@needs_unshare
async def test_netns_runs_two_clients_exchanging_audio_inside_a_private_namespace() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "ignore",
        "-m",
        "sandbox",
        "netns",
        "--",
        sys.executable,
        "-W",
        "ignore",
        "-c",
        _EXCHANGE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert stdout.decode().strip().endswith("exchanged")


class _RecordingProtocol(aioice.ice.StunProtocol):
    """aioice's UDP protocol without a socket: records where the ICE agent would send."""

    def __init__(self, receiver: aioice.Connection) -> None:
        super().__init__(receiver)
        self.sent: list[tuple[str, int]] = []

    def send_stun(self, message: stun.Message, addr: tuple[str, int]) -> None:
        self.sent.append(addr)


def _binding_request() -> stun.Message:
    return stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)


async def test_the_ice_agent_answers_checks_only_from_this_hosts_addresses() -> None:
    network.restrict_ice_to_loopback()
    connection = aioice.Connection(ice_controlling=False)
    protocol = _RecordingProtocol(connection)
    try:
        connection.request_received(_binding_request(), ("203.0.113.9", 4000), protocol)
        assert protocol.sent == []
        # From this host the check is processed (here: answered with an error, it carries no credentials).
        connection.request_received(_binding_request(), ("127.0.0.1", 4000), protocol)
        assert protocol.sent == [("127.0.0.1", 4000)]
    finally:
        await connection.close()


async def test_the_ice_agent_drops_remote_candidates_that_are_not_loopback() -> None:
    network.restrict_ice_to_loopback()
    connection = aioice.Connection(ice_controlling=False)
    try:
        await connection.add_remote_candidate(aioice.Candidate.from_sdp(SRFLX.removeprefix("candidate:")))
        await connection.add_remote_candidate(aioice.Candidate.from_sdp(HOST_CANDIDATE.removeprefix("candidate:")))
        await connection.add_remote_candidate(aioice.Candidate.from_sdp(LOOPBACK_CANDIDATE.removeprefix("candidate:")))
        assert [c.host for c in connection.remote_candidates] == ["127.0.0.1"]
    finally:
        await connection.close()
