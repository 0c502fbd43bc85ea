"""The framework's private names `agent.framework` reaches are still there, in the version it was written against."""

from __future__ import annotations

import dataclasses
import inspect
import ssl
import typing
from importlib.metadata import version
from typing import Any

from livekit.agents import AgentServer, llm, stt, tts
from livekit.agents.cli import log as framework_log
from livekit.agents.ipc import proc_pool
from livekit.agents.ipc.job_proc_executor import ProcJobExecutor
from livekit.agents.job import RunningJobInfo
from livekit.agents.tts import fallback_adapter
from livekit.agents.utils import http_context
from livekit.rtc._ffi_client import FfiClient

from agent import framework


def test_the_installed_livekit_agents_is_the_version_the_private_calls_were_checked_against() -> None:
    # On an upgrade: re-read each private name below in the new release, then move FRAMEWORK_VERSION.
    assert version("livekit-agents") == framework.FRAMEWORK_VERSION


def test_the_tls_context_of_the_shared_http_session_is_built_by_the_private_factory() -> None:
    assert isinstance(http_context._create_ssl_context(), ssl.SSLContext)
    framework.warm_tls()


def test_warming_the_rtc_library_makes_the_process_ffi_client_that_rooms_use() -> None:
    framework.warm_rtc()
    assert isinstance(FfiClient._instance, FfiClient)
    assert FfiClient.instance is FfiClient._instance


def test_the_log_setup_takes_the_level_and_the_colored_and_console_switches() -> None:
    parameters = list(inspect.signature(framework_log.setup_logging).parameters)
    assert parameters[:3] == ["log_level", "devmode", "console"]


def test_the_process_pool_lists_its_executors_and_a_process_executor_has_a_pid_and_its_job() -> None:
    assert isinstance(inspect.getattr_static(proc_pool.ProcPool, "processes"), property)
    assert isinstance(inspect.getattr_static(ProcJobExecutor, "pid"), property)
    assert isinstance(inspect.getattr_static(ProcJobExecutor, "running_job"), property)


def test_a_running_server_keeps_its_process_pool_where_job_processes_reads_it() -> None:
    # `job_processes` reads it with a default (no pool before the server runs): a rename would silently list none.
    assert "self._proc_pool = ipc.proc_pool.ProcPool(" in inspect.getsource(AgentServer.run)
    assert "fake_job" in {field.name for field in dataclasses.fields(RunningJobInfo)}


def test_the_pool_emits_process_closed_for_an_executor_which_has_its_exit_code() -> None:
    # What `framework.on_job_process_exit` listens to (its behaviour: tests/faults/test_process_faults_e2e.py).
    assert "process_closed" in typing.get_args(proc_pool.EventTypes)
    assert 'self.emit("process_closed", proc)' in inspect.getsource(proc_pool.ProcPool._monitor_process_task)
    assert isinstance(inspect.getattr_static(ProcJobExecutor, "exitcode"), property)


def test_an_idle_server_has_no_job_process_to_signal() -> None:
    from agent.settings import Settings
    from agent.worker import build_server

    assert framework.job_process_ids(build_server(Settings())) == []


def test_a_fallback_chain_lists_its_providers_in_the_order_it_tries_them() -> None:
    first, second = _Tone(), _Tone()
    adapter = tts.FallbackAdapter([first, second])
    assert framework.fallback_members(adapter) == (first, second)
    # The adapter's own private list, read by the framework's fallback loop: the name fallback_members reads.
    assert adapter._tts_instances == [first, second]


def test_a_fallback_stt_chain_lists_its_providers_in_order() -> None:
    first, second = _Hearing(), _Hearing()
    adapter = stt.FallbackAdapter([first, second])
    assert framework.fallback_members(adapter) == (first, second)


def test_a_fallback_llm_chain_lists_its_providers_in_order() -> None:
    first, second = _Thinking(), _Thinking()
    adapter = llm.FallbackAdapter([first, second])
    assert framework.fallback_members(adapter) == (first, second)
    assert adapter._llm_instances == [first, second]


def test_markup_is_stripped_as_the_transcript_sinks_strip_it() -> None:
    assert framework.strip_markup('Hello <break time="1s"/> there. ') == "Hello there."
    assert framework.strip_markup("plain text") == "plain text"


class _Tone(tts.TTS[Any]):
    def __init__(self) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=16000, num_channels=1)

    def synthesize(self, text: str, *, conn_options: Any = None) -> tts.ChunkedStream:
        raise NotImplementedError


class _Hearing(stt.STT[Any]):
    def __init__(self) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=False))

    async def _recognize_impl(self, buffer: Any, *, language: Any = None, conn_options: Any = None) -> stt.SpeechEvent:
        raise NotImplementedError


class _Thinking(llm.LLM[Any]):
    def chat(self, **kwargs: Any) -> llm.LLMStream:
        raise NotImplementedError


def test_a_server_that_has_not_run_is_neither_registered_nor_given_up_and_has_no_job_processes() -> None:
    server = AgentServer()
    # The private flags `registered` and `gave_up` read, as the constructor sets them.
    assert (server._connecting, server._connection_failed, server._closed) == (False, False, True)
    assert server.id == "unregistered"
    assert not framework.registered(server)
    assert not framework.gave_up(server)
    assert framework.job_processes(server) == []


def test_a_server_that_gave_up_is_reported_so() -> None:
    server = AgentServer()
    server._connection_failed = True  # what the connection task sets after max_retry failed attempts
    assert framework.gave_up(server)
    assert not framework.registered(server)


def test_the_tts_fallback_adapter_keeps_what_the_sentence_chain_reads_and_overrides() -> None:
    # `agent.tts_chain` subclasses the adapter and its chunked stream: it reads the members, their status and the
    # stream's attempt and recovery helpers, and replaces only `_run` (its behaviour: tests/faults/test_tts_chain.py).
    adapter_init = inspect.getsource(tts.FallbackAdapter.__init__)
    assert "self._tts_instances = tts" in adapter_init
    assert "self._status.append(" in adapter_init
    assert {"available", "needs_resampling"} <= {f.name for f in dataclasses.fields(fallback_adapter._TTSStatus)}
    stream = tts.FallbackChunkedStream
    assert list(inspect.signature(stream._try_synthesize).parameters) == ["self", "tts", "recovering"]
    assert list(inspect.signature(stream._try_recovery).parameters) == ["self", "tts"]
    assert inspect.iscoroutinefunction(stream._run)
    assert "self._fallback_adapter = tts" in inspect.getsource(stream.__init__)
