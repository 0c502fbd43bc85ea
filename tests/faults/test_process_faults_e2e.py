"""Process faults through real calls: the sandbox server, the fakes, a signed webhook receiver and the spool; workers
(``python -m agent start``) each leading their own process group.

- One call's job process is SIGKILLed mid-call: the other call on the same worker goes on, and the worker's main
  process sends the killed call's ``call.ended`` (``job_process_died``, ``status: error``).
- A worker is SIGKILLed with events in its outbox (the receiver answering 503), then restarted with the receiver
  up: each event reaches the receiver exactly once.
- The sandbox cuts the worker's connection mid-call (a websocket close, a TCP abort): the worker registers again,
  the call goes on, and its events are complete.
- Everything these runs wrote holds none of the marker secrets.
"""

from __future__ import annotations

import asyncio
import collections
import signal
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.e2e.stack import until
from tests.faults.processes import ProcessStack, job_process_of, kill_group, process_stack
from tests.ops.pool import answered
from tests.trust.test_log_redaction_e2e import SECRETS

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

ANSWER_WITHIN_S = 40.0
EVENTS_WITHIN_S = 60.0
BEFORE_THE_KILL = "Please keep a table for two"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ProcessStack]:
    async with process_stack(tmp_path_factory.mktemp("process-faults")) as running:
        yield running


def once_per_key(stack: ProcessStack, room: str) -> dict[str, int]:
    """How many times the receiver took each idempotency key of `room` (2xx, signed), and each webhook-id."""
    keys = collections.Counter(
        str(r.headers.get("Idempotency-Key"))
        for r in stack.receiver.requests
        if 200 <= r.status < 300 and r.signature_valid and r.json.get("room") == room
    )
    return dict(keys)


def delivered_ids(stack: ProcessStack) -> collections.Counter[str]:
    return collections.Counter(
        str(r.headers.get("webhook-id")) for r in stack.receiver.requests if 200 <= r.status < 300
    )


@pytest.mark.timeout(600)
async def test_a_job_process_killed_mid_call_gets_its_call_ended_from_the_main_process_and_the_other_call_goes_on(
    stack: ProcessStack,
) -> None:
    worker = await stack.start_worker()
    (killed, doomed), (kept, caller) = [await stack.start_call(p) for p in ("killed", "kept")]
    try:
        await until(lambda: stack.events(killed, "call.started"), within_s=EVENTS_WITHIN_S, what="call.started")
        await doomed.type(BEFORE_THE_KILL)
        await until(lambda: answered(doomed, BEFORE_THE_KILL), within_s=ANSWER_WITHIN_S, what="the doomed answer")
        job_process = job_process_of(worker, killed)
        job_process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(job_process.wait, 30)

        await until(
            lambda: stack.events(killed, "call.ended"), within_s=EVENTS_WITHIN_S, what="the killed call's call.ended"
        )
        await caller.type("Are you still there?")
        await until(lambda: answered(caller, "Are you still there?"), within_s=ANSWER_WITHIN_S, what="the answer")
    finally:
        await doomed.leave()
        await caller.leave()
    await until(lambda: stack.events(kept, "call.ended"), within_s=EVENTS_WITHIN_S, what="the other call's end")

    (ended,) = stack.events(killed, "call.ended")
    assert (ended["end_reason"], ended["status"], ended["record_complete"]) == ("job_process_died", "error", False)
    assert ended["incidents"] == [{"code": "job_process_died", "exit_code": -signal.SIGKILL, "at": ended["ended_at"]}]
    # the transcript up to the kill, journaled by the job process as the call recorded it
    items = ended["transcript"]
    assert isinstance(items, list)
    said = [(i["channel"], i["role"], i.get("text")) for i in items]
    assert ("chat", "user", BEFORE_THE_KILL) in said, said
    (started,) = stack.events(killed, "call.started")
    assert ended["started_at"] == started["started_at"]
    assert ended["job_id"] == started["job_id"]
    assert once_per_key(stack, killed) == {
        f"{ended['job_id']}:call.started": 1,
        f"{ended['job_id']}:call.config_resolved:0": 1,
        f"{ended['job_id']}:call.ended": 1,
    }
    assert [e["end_reason"] for e in stack.spooled(killed, "call.ended")] == ["job_process_died"]
    (other,) = stack.events(kept, "call.ended")
    assert (other["end_reason"], other["status"]) == ("caller_left", "ok")
    # Written by the main process: the job process was dead by then.
    sent = [r for r in worker.records() if r.get("message") == "call ended for an exited job process"]
    assert [(r["pid"], r["job_pid"]) for r in sent] == [(worker.process.pid, job_process.pid)]
    assert worker.process.returncode is None
    journal = stack.outbox / ".journal"
    await until(lambda: not list(journal.glob("*.json")), within_s=EVENTS_WITHIN_S, what="the journal cleared")
    await stack.scrape(worker)
    await worker.aclose()


@pytest.mark.timeout(600)
async def test_a_worker_killed_with_events_in_its_outbox_delivers_each_exactly_once_after_a_restart(
    stack: ProcessStack,
) -> None:
    # Redelivery only at start: the killed worker makes no pass of its own while the receiver is down.
    worker = await stack.start_worker(WEBCALL_EVENTS_REDELIVER_INTERVAL_S="3600")
    stack.receiver.statuses.extend([503] * 1000)
    # One call over before the kill (its 3 events kept), one still live when the whole worker is killed with it.
    ended_room, ended_caller = await stack.start_call("outboxed")
    await ended_caller.leave()
    live_room, live_caller = await stack.start_call("killed-with-worker")
    try:
        await until(lambda: stack.spooled(ended_room, "call.ended"), within_s=EVENTS_WITHIN_S, what="the call's end")
        await until(
            lambda: stack.spooled(live_room, "call.config_resolved"), within_s=EVENTS_WITHIN_S, what="the live call's"
        )
        await until(lambda: len(list(stack.outbox.glob("*.json"))) >= 5, within_s=EVENTS_WITHIN_S, what="5 kept")
        kept = sorted(p.name for p in stack.outbox.glob("*.json"))
        assert stack.events(ended_room, "call.started") == []
        await stack.scrape(worker)
        kill_group(worker)
        await asyncio.wait_for(worker.process.wait(), 30)
    finally:
        await live_caller.leave()

    stack.receiver.statuses.clear()
    restarted = await stack.start_worker(WEBCALL_EVENTS_REDELIVER_INTERVAL_S="0.5")
    await until(
        lambda: stack.events(ended_room, "call.ended") and stack.events(live_room, "call.ended"),
        within_s=EVENTS_WITHIN_S,
        what="both calls' events delivered",
    )
    await until(lambda: not list(stack.outbox.glob("*.json")), within_s=EVENTS_WITHIN_S, what="the outbox empty")
    await asyncio.sleep(2.0)  # further redelivery passes: nothing is sent again
    assert len(kept) == 5
    for room in (ended_room, live_room):
        job = stack.spooled(room, "call.started")[0]["job_id"]
        assert once_per_key(stack, room) == {
            f"{job}:call.started": 1,
            f"{job}:call.config_resolved:0": 1,
            f"{job}:call.ended": 1,
        }, room
    assert [n for n, c in delivered_ids(stack).items() if c > 1] == [], "each webhook-id taken once"
    (live_end,) = stack.events(live_room, "call.ended")
    assert (live_end["end_reason"], live_end["status"]) == ("job_process_died", "error")
    (normal_end,) = stack.events(ended_room, "call.ended")
    assert normal_end["end_reason"] == "caller_left"
    await stack.scrape(restarted)
    await restarted.aclose()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("abort", [False, True], ids=["websocket-close", "tcp-abort"])
async def test_a_dropped_worker_connection_mid_call_reconnects_and_the_call_goes_on_with_its_events(
    stack: ProcessStack, abort: bool
) -> None:
    worker = await stack.start_worker()
    worker_id = str(next(r["id"] for r in worker.records() if r.get("message") == "registered worker"))
    room, caller = await stack.start_call("dropped")
    try:
        registered = worker.messages().count("registered worker")
        assert await stack.drop(worker_id, abort=abort) == [worker_id]
        await until(
            lambda: worker.messages().count("registered worker") > registered,
            within_s=EVENTS_WITHIN_S,
            what="the worker registered again",
        )
        await caller.type("Did you hear me?")
        await until(lambda: answered(caller, "Did you hear me?"), within_s=ANSWER_WITHIN_S, what="the answer")
    finally:
        await caller.leave()
    await until(lambda: stack.events(room, "call.ended"), within_s=EVENTS_WITHIN_S, what="call.ended")
    (ended,) = stack.events(room, "call.ended")
    assert (ended["end_reason"], ended["status"]) == ("caller_left", "ok")
    assert len(stack.events(room, "call.started")) == 1
    assert worker.process.returncode is None
    await stack.scrape(worker)
    await worker.aclose()


@pytest.mark.timeout(300)
async def test_no_marker_secret_is_in_anything_the_process_fault_runs_wrote(stack: ProcessStack) -> None:
    # Self-contained: one call of its own (a worker, a typed turn, a hang-up, a scrape) so that there is a webhook,
    # a spool file and a worker log to read even when it runs alone; what the earlier fault runs wrote is read too.
    worker = await stack.start_worker()
    room, caller = await stack.start_call("secrets")
    try:
        await caller.type("Is anything secret here?")
        await until(lambda: answered(caller, "Is anything secret here?"), within_s=ANSWER_WITHIN_S, what="the answer")
    finally:
        await caller.leave()
    await until(lambda: stack.events(room, "call.ended"), within_s=EVENTS_WITHIN_S, what="call.ended")
    await stack.scrape(worker)
    await worker.aclose()

    written = stack.written()
    assert stack.scrapes
    assert any(k.startswith("webhook request") for k in written)
    assert any("/spool/" in k for k in written)
    assert any(k.startswith("worker ") for k in written)
    leaks = {
        (what, where)
        for where, text in written.items()
        for what, value in SECRETS.items()
        if value.lower() in text.lower()
    }
    assert leaks == set()
