"""The call journal and the main process's completion of a dead job's events (`agent.events.journal`,
`agent.events.orphans`), in-process: a real spool, a real outbox and a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from agent.config.resolve import CallSources, resolve_call
from agent.events.emitter import CallEvents
from agent.events.journal import Journal, Owner
from agent.events.orphans import Orphans
from agent.events.outbox import Outbox
from agent.events.payload import CallFacts, ended_event
from agent.events.sinks import Sink
from agent.events.spool import SpoolSink
from agent.framework import ExitedJob
from agent.settings import Settings
from agent.transcript import Transcript
from tests.e2e.stack import until
from tests.events.outbox_helpers import SECRET, a_redeliverer, a_sink, an_event, files
from tests.events.receiver import Receiver, running_receiver

JOB = "AJ_orphan"
SAWT = {"agentId": "agt_1", "metadata": {"promptVariables": {"customer_name": "Mohammed"}}}


def exited(*, exit_code: int | None = -9, pid: int | None = 4242) -> ExitedJob:
    return ExitedJob(
        job_id=JOB, room="room-1", job_metadata=json.dumps(SAWT), room_metadata="", pid=pid, exit_code=exit_code
    )


def an_emitter(
    sinks: Sequence[Sink], journal: Journal, *, transcript: Transcript | None = None, include_content: bool = True
) -> CallEvents:
    config = resolve_call(CallSources(job_metadata=json.dumps(SAWT)), settings=Settings())
    return CallEvents(
        config=config,
        facts=CallFacts(job_id=JOB, room="room-1", started_at=1_700_000_000.0),
        transcript=transcript or Transcript(),
        usage=list,
        sinks=sinks,
        prices=None,
        include_content=include_content,
        journal=journal,
    )


@dataclass
class Parts:
    """The main process's completer and the sinks and journal it shares with the job's emitter."""

    completer: Orphans
    spool: SpoolSink
    journal: Journal
    sinks: list[Sink]


def parts(tmp_path: Path, url: str) -> Parts:
    spool = SpoolSink(tmp_path / "spool")
    journal = Journal(tmp_path / "outbox" / ".journal")
    sinks: list[Sink] = [spool, a_sink(url, tmp_path / "outbox")]
    return Parts(Orphans(Settings(), sinks=sinks, journal=journal), spool, journal, sinks)


def spooled(spool: SpoolSink) -> list[dict[str, object]]:
    return [json.loads(line) for line in spool.path_for(JOB).read_text().splitlines()]


def transcript_of(event: dict[str, object]) -> list[dict[str, Any]]:
    items = event["transcript"]
    assert isinstance(items, list)
    return items


def keys(receiver: Receiver) -> list[str]:
    return [str(r.headers["Idempotency-Key"]) for r in receiver.requests if r.status == 200]


async def started_sent(journal: Journal) -> None:
    def sent() -> bool:
        found = journal.read(JOB)
        entry = found.entry("call.started") if found is not None else None
        return entry is not None and entry.state == "sent"

    await until(sent, within_s=10, what="call.started sent")


async def test_a_job_that_died_mid_call_gets_a_call_ended_built_from_its_call_started(tmp_path: Path) -> None:
    async with running_receiver(SECRET) as receiver:
        made = parts(tmp_path, receiver.url)
        completer, spool, journal = made.completer, made.spool, made.journal
        an_emitter(made.sinks, journal).started()
        await started_sent(journal)

        handed = await completer.complete(exited())

        assert [e.type for e in handed] == ["call.started", "call.ended"]
        assert keys(receiver) == [f"{JOB}:call.started", f"{JOB}:call.ended"], "call.started is not sent again"
        started, ended = spooled(spool)
        assert (ended["end_reason"], ended["status"], ended["record_complete"]) == ("job_process_died", "error", False)
        assert ended["incidents"] == [{"code": "job_process_died", "exit_code": -9, "at": ended["ended_at"]}]
        assert ended["incident_counts"] == {"job_process_died": 1}
        for field in ("job_id", "room", "dialect", "agent_id", "call", "variables", "started_at", "warnings"):
            assert ended[field] == started[field], field
        assert ended["transcript"] == []
        assert journal.read(JOB) is None, "the journal is removed"


async def test_a_job_that_died_mid_call_ends_with_the_transcript_it_journaled_up_to_its_death(tmp_path: Path) -> None:
    async with running_receiver(SECRET) as receiver:
        made = parts(tmp_path, receiver.url)
        transcript = Transcript()
        an_emitter(made.sinks, made.journal, transcript=transcript).started()
        await started_sent(made.journal)
        transcript.add(channel="voice", role="user", speaker="caller-7", text="Do you open on Saturday?")
        transcript.add(channel="voice", role="assistant", speaker="agent", text="Yes, from nine.", interrupted=True)
        await until(lambda: len(made.journal.transcript(JOB)) == 2, within_s=10, what="two items journaled")
        # the process died writing a third line
        with made.journal.transcript_path_for(JOB).open("ab") as half:
            half.write(b'{"seq":2,"at":"2026-')

        await made.completer.complete(exited())

        _, ended = spooled(made.spool)
        assert [(i["seq"], i["role"], i["speaker"], i["text"], i["interrupted"]) for i in transcript_of(ended)] == [
            (0, "user", "caller-7", "Do you open on Saturday?", False),
            (1, "assistant", "agent", "Yes, from nine.", True),
        ]
        assert ended["record_complete"] is False, "the usage died with the process"
        assert not made.journal.transcript_path_for(JOB).exists(), "the transcript journal is removed"


async def test_with_content_off_the_journaled_transcript_holds_no_text_and_no_identity(tmp_path: Path) -> None:
    async with running_receiver(SECRET) as receiver:
        made = parts(tmp_path, receiver.url)
        transcript = Transcript()
        an_emitter(made.sinks, made.journal, transcript=transcript, include_content=False).started()
        await started_sent(made.journal)
        transcript.add(channel="chat", role="user", speaker="+15551234567", text="my card is 4111 1111")
        transcript.add(channel="chat", role="assistant", speaker="agent", text="Thanks.")
        transcript.add(channel="voice", role="user", speaker="sip_+15557654321", text="and my pin")
        await until(lambda: len(made.journal.transcript(JOB)) == 3, within_s=10, what="three items journaled")
        written = made.journal.transcript_path_for(JOB).read_bytes()
        for secret in (b"4111", b"pin", b"5551234567", b"5557654321", b"Thanks"):
            assert secret not in written, secret
        assert made.journal.transcript_path_for(JOB).stat().st_mode & 0o777 == 0o600

        await made.completer.complete(exited())

        _, ended = spooled(made.spool)
        assert [(i["speaker"], i["chars"], "text" in i) for i in transcript_of(ended)] == [
            ("participant-1", 20, False),
            ("agent", 7, False),
            ("participant-2", 10, False),
        ]


async def test_a_job_that_ended_its_call_itself_gets_nothing_more_and_its_journal_is_removed(tmp_path: Path) -> None:
    async with running_receiver(SECRET) as receiver:
        made = parts(tmp_path, receiver.url)
        completer, spool, journal = made.completer, made.spool, made.journal
        events = an_emitter(made.sinks, journal)
        events.started()
        await events.ended(end_reason="caller_left")
        assert journal.read(JOB) is not None

        assert await completer.complete(exited(exit_code=-9)) == []

        assert keys(receiver) == [f"{JOB}:call.started", f"{JOB}:call.ended"]
        assert [e["end_reason"] for e in spooled(spool) if e["type"] == "call.ended"] == ["caller_left"]
        assert journal.read(JOB) is None


async def test_a_job_that_died_before_call_started_gets_the_pair_from_its_dispatch(tmp_path: Path) -> None:
    async with running_receiver(SECRET) as receiver:
        made = parts(tmp_path, receiver.url)
        completer, spool = made.completer, made.spool

        handed = await completer.complete(exited(exit_code=1))

        assert [e.type for e in handed] == ["call.started", "call.ended"]
        started, ended = spooled(spool)
        assert started["agent_id"] == "agt_1"
        assert started["variables"] == {"customer_name": "Mohammed"}
        assert (ended["end_reason"], ended["status"]) == ("job_process_died", "error")
        assert keys(receiver) == [f"{JOB}:call.started", f"{JOB}:call.ended"]


async def test_a_job_that_exited_cleanly_with_no_journal_is_left_alone(tmp_path: Path) -> None:
    async with running_receiver(SECRET) as receiver:
        made = parts(tmp_path, receiver.url)
        completer, spool = made.completer, made.spool
        assert await completer.complete(exited(exit_code=0)) == []
        assert receiver.requests == []
        assert not spool.path_for(JOB).exists()


async def test_an_event_the_job_died_handing_over_is_handed_over_again_only_where_it_is_missing(
    tmp_path: Path,
) -> None:
    async with running_receiver(SECRET) as receiver:
        made = parts(tmp_path, receiver.url)
        completer, spool, journal = made.completer, made.spool, made.journal
        started = an_event(JOB, "call.started", created_at=time.time() - 60)
        ended = an_event(JOB, "call.ended", created_at=time.time() - 1)
        # call.started: spooled, then the process died before the webhook had it; call.ended: in the outbox already.
        journal.note(started, job_id=JOB, state="sending")
        journal.note(ended, job_id=JOB, state="sending")
        spool.append(started, job_id=JOB)
        Outbox(tmp_path / "outbox").put(ended, job_id=JOB, status=503, attempts=1)

        await completer.complete(exited())

        assert [e["id"] for e in spooled(spool)] == [started.id, ended.id], "call.ended spooled, call.started not again"
        # call.started is queued behind the job's kept call.ended; the redeliverer sends both, in order, once each.
        assert receiver.requests == []
        assert len(files(tmp_path / "outbox")) == 2
        await a_redeliverer(tmp_path / "outbox", url=receiver.url).run_once()
        assert [r.headers["webhook-id"] for r in receiver.requests] == [started.id, ended.id]


def test_a_lock_is_broken_only_for_the_process_that_holds_it(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    lock = outbox.locks.acquire(JOB, now=0.0)
    assert lock is not None
    holder = int(lock.token.split("-", 1)[0])
    assert not outbox.locks.break_if_held_by(JOB, pid=holder + 1)
    assert lock.path.exists()
    assert outbox.locks.break_if_held_by(JOB, pid=holder)
    assert not lock.path.exists()


def test_the_journal_keeps_one_entry_per_event_type_and_ignores_the_others(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    started = an_event(JOB, "call.started", created_at=1.0)
    journal.note(started, job_id=JOB, state="sending")
    journal.note(started, job_id=JOB, state="sent")
    journal.note(an_event(JOB, "call.config_resolved", created_at=2.0), job_id=JOB, state="sending")
    found = journal.read(JOB)
    assert found is not None
    assert [(e.event.type, e.state) for e in found.events] == [("call.started", "sent")]
    assert found.entry("call.started") is not None
    assert found.entry("call.ended") is None


def test_an_unreadable_journal_is_none(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.path_for(JOB).write_text("{not json")
    assert journal.read(JOB) is None


def test_call_ended_says_status_error_when_the_worker_failed_the_call_and_ok_otherwise() -> None:
    config = resolve_call(CallSources(job_metadata=json.dumps(SAWT)), settings=Settings())
    facts = CallFacts(job_id=JOB, room="room-1", started_at=1_700_000_000.0)

    def ended(reason: str) -> dict[str, object]:
        return ended_event(
            config,
            facts=facts,
            ended_at=1_700_000_060.0,
            end_reason=reason,
            transcript=(),
            usage=(),
            prices=None,
            include_content=True,
        ).body

    for reason in ("job_process_died", "unavailable", "provider_error", "error"):
        assert ended(reason)["status"] == "error", reason
    for reason in ("caller_left", "max_duration", "shutdown", "no_caller"):
        assert ended(reason)["status"] == "ok", reason
    assert ended("caller_left")["record_complete"] is True


def a_dead_owner() -> Owner:
    """The owner of a journal whose job process and its parent are both gone: a child process that has exited."""
    child = psutil.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    started_at = child.create_time()
    child.kill()
    child.wait(10)
    return Owner(
        host=socket.gethostname(),
        pid=child.pid,
        started_at=started_at,
        parent_pid=child.pid,
        parent_started_at=started_at,
    )


async def test_at_start_a_journal_left_by_a_worker_that_died_with_its_job_processes_is_completed(
    tmp_path: Path,
) -> None:
    async with running_receiver(SECRET) as receiver:
        made = parts(tmp_path, receiver.url)
        started = an_event(JOB, "call.started", created_at=time.time() - 60)
        started.body["room"] = "room-1"
        made.journal.note(started, job_id=JOB, state="sent")
        left = made.journal.read(JOB)
        assert left is not None
        dead = left.model_copy(update={"owner": a_dead_owner()})
        made.journal.path_for(JOB).write_text(dead.model_dump_json())
        # A journal of a job process that still runs (this one) is another worker's live call: left alone.
        made.journal.note(an_event("AJ_live", "call.started", created_at=time.time()), job_id="AJ_live", state="sent")

        handed = await made.completer.sweep()

        assert [(e.type, e.body["job_id"]) for e in handed] == [("call.started", JOB), ("call.ended", JOB)]
        assert keys(receiver) == [f"{JOB}:call.ended"], "only the missing call.ended is sent"
        (ended,) = spooled(made.spool)
        assert (ended["end_reason"], ended["status"], ended["room"]) == ("job_process_died", "error", "room-1")
        assert made.journal.read(JOB) is None
        assert made.journal.read("AJ_live") is not None
