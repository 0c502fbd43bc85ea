"""The aiortc internals ``sandbox.server.aiortc_shim`` relies on, checked against the installed aiortc.

Each test fails loudly when aiortc is upgraded or its internals move, before a subtler media bug shows up.
"""

from __future__ import annotations

import inspect

import aiortc
import aiortc.rtcrtpreceiver
from aiortc import RTCSessionDescription
from aiortc.jitterbuffer import JitterBuffer

from sandbox.server import aiortc_shim
from sandbox.server.media import new_peer_connection


def test_the_installed_aiortc_is_the_version_the_shim_was_checked_against() -> None:
    assert aiortc.__version__ == aiortc_shim.AIORTC_VERSION, (
        "aiortc changed: re-check every private access in sandbox/server/aiortc_shim.py, then update AIORTC_VERSION"
    )


async def test_offer_direction_reads_the_remote_offer_direction_from_the_answering_side() -> None:
    offerer, answerer = new_peer_connection(), new_peer_connection()
    try:
        offerer.addTransceiver("audio", direction="sendonly")
        offerer.addTransceiver("audio", direction="recvonly")
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(RTCSessionDescription(sdp=offerer.localDescription.sdp, type="offer"))
        assert [aiortc_shim.offer_direction(t) for t in answerer.getTransceivers()] == ["recvonly", "sendonly"]
    finally:
        await offerer.close()
        await answerer.close()


async def test_set_msid_is_what_the_sdp_announces() -> None:
    pc = new_peer_connection()
    try:
        transceiver = pc.addTransceiver("audio", direction="sendonly")
        aiortc_shim.set_msid(transceiver.sender, stream_id="PA_1|TR_2", track_id="TR_2")
        await pc.setLocalDescription(await pc.createOffer())
        assert "a=msid:PA_1|TR_2 TR_2" in pc.localDescription.sdp.splitlines()
    finally:
        await pc.close()


def test_the_receiver_looks_up_the_decoder_thread_and_jitter_buffer_as_module_globals() -> None:
    source = inspect.getsource(aiortc.rtcrtpreceiver.RTCRtpReceiver)
    assert "target=decoder_worker" in source
    assert "JitterBuffer(" in source
    assert list(inspect.signature(aiortc.rtcrtpreceiver.decoder_worker).parameters) == [
        "loop",
        "input_q",
        "output_q",
        "decode_error",
    ]
    assert list(inspect.signature(JitterBuffer).parameters) == ["capacity", "prefetch", "is_video"]


def test_replace_receiver_pipeline_sets_what_receivers_start_with() -> None:
    original = aiortc.rtcrtpreceiver.decoder_worker, aiortc.rtcrtpreceiver.JitterBuffer  # type: ignore[attr-defined]

    def worker(loop: object, input_q: object, output_q: object, decode_error: object) -> None:
        return None

    class Buffer(JitterBuffer):
        pass

    try:
        aiortc_shim.replace_receiver_pipeline(decoder_worker=worker, jitter_buffer=Buffer)
        assert aiortc.rtcrtpreceiver.decoder_worker is worker
        assert aiortc.rtcrtpreceiver.JitterBuffer is Buffer  # type: ignore[attr-defined]
    finally:
        aiortc_shim.replace_receiver_pipeline(decoder_worker=original[0], jitter_buffer=original[1])
