"""The webhook outbox against a real aiohttp receiver on 127.0.0.1: what the webhook cannot deliver is kept on disk
and re-sent later, signed afresh, in order, once, or set aside as dead or corrupt."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from agent.errors import CorruptRecord, WebcallError
from agent.events.delivery import WebhookSink
from agent.events.outbox import Claim, Outbox
from agent.events.payload import Event
from agent.events.policy import DeliveryPolicy
from agent.events.record import Record
from agent.events.sinks import sinks_from
from agent.settings import Settings
from tests.events.outbox_helpers import SECRET, a_redeliverer, a_sender, a_sink, an_event, files
from tests.events.receiver import running_receiver

# Subprocesses import `tests.*` too: they run from the repository's root whatever pytest's working directory.
ROOT = Path(__file__).resolve().parents[2]


def record_of(path: Path) -> Record:
    return Record.model_validate_json(path.read_bytes())


async def test_an_event_the_receiver_503s_is_kept_then_redelivered_with_its_key_and_a_valid_signature(
    tmp_path: Path,
) -> None:
    event = an_event("AJ_1", "call.started", created_at=time.time())
    async with running_receiver(SECRET, statuses=[503, 503, 503]) as receiver:
        delivery = await a_sink(receiver.url, tmp_path).send(event, job_id="AJ_1")

        assert (delivery.delivered, delivery.status, delivery.attempts, delivery.kept) == (False, 503, 3, "outbox")
        (name,) = files(tmp_path)
        assert record_of(tmp_path / name).event.idempotency_key == "AJ_1:call.started"

        counts = await a_redeliverer(tmp_path, url=receiver.url).run_once()

    assert counts.delivered == 1
    assert [r.status for r in receiver.requests] == [503, 503, 503, 200]
    last = receiver.requests[-1]
    assert last.signature_valid
    assert last.headers["Idempotency-Key"] == "AJ_1:call.started"
    assert last.body == event.to_json()
    assert files(tmp_path) == []
    assert files(tmp_path / ".inflight") == []


async def test_a_redelivered_event_is_signed_at_send_time_not_when_it_was_kept(tmp_path: Path) -> None:
    an_hour_ago = time.time() - 3600
    event = an_event("AJ_1", "call.ended", created_at=an_hour_ago)
    Outbox(tmp_path).put(event, job_id="AJ_1", status=503, attempts=3, now=an_hour_ago)

    async with running_receiver(SECRET) as receiver:
        await a_redeliverer(tmp_path, url=receiver.url).run_once()

    # the receiver rejects signatures more than 5 minutes old: this one verifies, so it was made at send time
    (request,) = receiver.requests
    assert request.signature_valid
    assert request.body == event.to_json()


async def test_a_connection_refused_keeps_the_event_in_the_outbox(tmp_path: Path) -> None:
    async with running_receiver(SECRET) as receiver:
        url = receiver.url
    # the receiver is gone: nothing listens on its port any more
    delivery = await a_sink(url, tmp_path).send(an_event("AJ_1", "call.started", created_at=time.time()), job_id="AJ_1")

    assert (delivery.status, delivery.kept) == (None, "outbox")
    assert len(files(tmp_path)) == 1


async def test_a_4xx_answer_puts_the_event_in_dead_and_it_is_never_retried(tmp_path: Path) -> None:
    event = an_event("AJ_1", "call.started", created_at=time.time())
    async with running_receiver(SECRET, statuses=[400]) as receiver:
        delivery = await a_sink(receiver.url, tmp_path).send(event, job_id="AJ_1")
        counts = await a_redeliverer(tmp_path, url=receiver.url).run_once()

    assert delivery.kept == "dead"
    assert len(receiver.requests) == 1
    assert counts.delivered == 0
    assert files(tmp_path) == []
    (name,) = files(tmp_path / "dead")
    dead = record_of(tmp_path / "dead" / name)
    assert (dead.dead_reason, dead.last_status, dead.event.id) == ("refused", 400, event.id)


async def test_a_4xx_on_redelivery_moves_the_event_to_dead(tmp_path: Path) -> None:
    Outbox(tmp_path).put(an_event("AJ_1", "call.ended", created_at=time.time()), job_id="AJ_1", status=500, attempts=3)
    async with running_receiver(SECRET, statuses=[410]) as receiver:
        redeliverer = a_redeliverer(tmp_path, url=receiver.url)
        first = await redeliverer.run_once()
        second = await redeliverer.run_once()

    assert (first.refused, second.refused, second.delivered) == (1, 0, 0)
    assert len(receiver.requests) == 1
    (name,) = files(tmp_path / "dead")
    dead = record_of(tmp_path / "dead" / name)
    assert (dead.dead_reason, dead.last_status, dead.attempts) == ("refused", 410, 4)


async def test_a_429_on_redelivery_keeps_the_event_and_backs_off(tmp_path: Path) -> None:
    Outbox(tmp_path).put(an_event("AJ_1", "call.ended", created_at=time.time()), job_id="AJ_1", status=500, attempts=3)
    async with running_receiver(SECRET, statuses=[429]) as receiver:
        redeliverer = a_redeliverer(tmp_path, url=receiver.url, backoff_s=600.0)
        first = await redeliverer.run_once()
        second = await redeliverer.run_once()

    assert (first.kept, second.waiting, second.delivered) == (1, 1, 0)
    assert len(receiver.requests) == 1
    (name,) = files(tmp_path)
    kept = record_of(tmp_path / name)
    assert (kept.last_status, kept.redeliveries, kept.attempts) == (429, 1, 4)
    assert kept.next_attempt_at > time.time() + 500


async def test_a_jobs_ended_waits_behind_its_kept_started_and_both_arrive_in_order(tmp_path: Path) -> None:
    now = time.time()
    started = an_event("AJ_1", "call.started", created_at=now)
    ended = an_event("AJ_1", "call.ended", created_at=now + 1)
    async with running_receiver(SECRET, statuses=[503, 503, 503]) as receiver:
        sink = a_sink(receiver.url, tmp_path)
        await sink.send(started, job_id="AJ_1")
        # the receiver answers again, but ended must not overtake the started still in the outbox
        delivery = await sink.send(ended, job_id="AJ_1")
        assert (delivery.attempts, delivery.kept) == (0, "outbox")
        assert len(receiver.requests) == 3

        counts = await a_redeliverer(tmp_path, url=receiver.url).run_once()

    assert counts.delivered == 2
    assert [body["type"] for body in receiver.delivered()] == ["call.started", "call.ended"]


async def test_a_redelivery_pass_stops_at_a_jobs_failing_started_and_holds_its_ended(tmp_path: Path) -> None:
    now = time.time()
    outbox = Outbox(tmp_path)
    outbox.put(an_event("AJ_1", "call.started", created_at=now), job_id="AJ_1", status=503, attempts=3)
    outbox.put(an_event("AJ_1", "call.ended", created_at=now + 5), job_id="AJ_1", status=None, attempts=0)
    outbox.put(an_event("AJ_2", "call.started", created_at=now + 2), job_id="AJ_2", status=503, attempts=3)

    async with running_receiver(SECRET, statuses=[503]) as receiver:
        counts = await a_redeliverer(tmp_path, url=receiver.url).run_once()

    assert (counts.kept, counts.delivered) == (1, 1)
    assert [(r.headers["Idempotency-Key"], r.status) for r in receiver.requests] == [
        ("AJ_1:call.started", 503),
        ("AJ_2:call.started", 200),
    ]
    assert len(files(tmp_path)) == 2


async def test_started_goes_before_ended_even_when_the_clock_stepped_back_between_them(tmp_path: Path) -> None:
    now = time.time()
    outbox = Outbox(tmp_path)
    outbox.put(an_event("AJ_1", "call.started", created_at=now), job_id="AJ_1", status=503, attempts=3)
    outbox.put(an_event("AJ_1", "call.ended", created_at=now - 30), job_id="AJ_1", status=None, attempts=0)

    async with running_receiver(SECRET) as receiver:
        await a_redeliverer(tmp_path, url=receiver.url).run_once()

    assert [body["type"] for body in receiver.delivered()] == ["call.started", "call.ended"]


async def test_jobs_are_redelivered_oldest_first(tmp_path: Path) -> None:
    now = time.time()
    outbox = Outbox(tmp_path)
    for offset, job in ((30, "AJ_c"), (10, "AJ_a"), (20, "AJ_b")):
        outbox.put(an_event(job, "call.ended", created_at=now - 100 + offset), job_id=job, status=503, attempts=3)

    async with running_receiver(SECRET) as receiver:
        await a_redeliverer(tmp_path, url=receiver.url).run_once()

    assert [body["job_id"] for body in receiver.delivered()] == ["AJ_a", "AJ_b", "AJ_c"]


def fill(outbox_dir: Path, *, jobs: int) -> None:
    now = time.time()
    outbox = Outbox(outbox_dir)
    for n in range(jobs):
        job = f"AJ_{n:02d}"
        outbox.put(an_event(job, "call.started", created_at=now + n), job_id=job, status=503, attempts=3)
        outbox.put(an_event(job, "call.ended", created_at=now + n + 0.5), job_id=job, status=None, attempts=0)


async def test_two_concurrent_redeliverers_send_each_event_exactly_once_and_in_order(tmp_path: Path) -> None:
    fill(tmp_path, jobs=8)
    async with running_receiver(SECRET) as receiver:
        first, second = await asyncio.gather(
            a_redeliverer(tmp_path, url=receiver.url).run_once(),
            a_redeliverer(tmp_path, url=receiver.url).run_once(),
        )

    keys = [r.headers["Idempotency-Key"] for r in receiver.requests]
    assert sorted(keys) == sorted({f"AJ_{n:02d}:call.{t}" for n in range(8) for t in ("started", "ended")})
    assert len(keys) == len(set(keys)) == 16
    assert first.delivered + second.delivered == 16
    # they did contend: each found jobs the other held
    assert first.busy > 0
    assert second.busy > 0
    for n in range(8):
        assert keys.index(f"AJ_{n:02d}:call.started") < keys.index(f"AJ_{n:02d}:call.ended")
    assert files(tmp_path) == []


async def test_two_redeliverer_processes_send_each_event_exactly_once(tmp_path: Path) -> None:
    fill(tmp_path, jobs=10)
    async with running_receiver(SECRET) as receiver:
        env = {
            **os.environ,
            "WEBCALL_EVENTS_URL": receiver.url,
            "WEBCALL_EVENTS_SECRET": SECRET,
            "WEBCALL_EVENTS_OUTBOX_DIR": str(tmp_path),
            "WEBCALL_EVENTS_ALLOW_HTTP": "true",
        }
        code = "import sys; from agent.events.cli import main; sys.exit(main(['redeliver', '--once']))"
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                code,
                env=env,
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(2)
        ]
        outputs = [await proc.communicate() for proc in procs]

    assert [proc.returncode for proc in procs] == [0, 0], [err.decode()[-2000:] for _, err in outputs]
    delivered = [json.loads(out)["delivered"] for out, _ in outputs]
    keys = [r.headers["Idempotency-Key"] for r in receiver.requests]
    assert len(keys) == len(set(keys)) == 20
    assert sum(delivered) == 20
    assert files(tmp_path) == []


async def test_an_event_older_than_the_maximum_age_goes_to_dead_unsent(tmp_path: Path) -> None:
    two_days_ago = time.time() - 2 * 86_400
    old = an_event("AJ_old", "call.ended", created_at=two_days_ago)
    Outbox(tmp_path).put(old, job_id="AJ_old", status=503, attempts=3, now=two_days_ago)
    Outbox(tmp_path).put(
        an_event("AJ_new", "call.ended", created_at=time.time()), job_id="AJ_new", status=503, attempts=3
    )

    async with running_receiver(SECRET) as receiver:
        counts = await a_redeliverer(tmp_path, url=receiver.url).run_once()

    assert (counts.expired, counts.delivered) == (1, 1)
    assert [r.headers["Idempotency-Key"] for r in receiver.requests] == ["AJ_new:call.ended"]
    (name,) = files(tmp_path / "dead")
    assert record_of(tmp_path / "dead" / name).dead_reason == "expired"


async def test_corrupt_partial_and_stray_files_are_quarantined_and_the_rest_delivered(tmp_path: Path) -> None:
    Outbox(tmp_path).put(
        an_event("AJ_ok", "call.ended", created_at=time.time()), job_id="AJ_ok", status=503, attempts=3
    )
    (tmp_path / "0000000000001-0-evt_torn-AJ_torn.json").write_bytes(b'{"format": "webcall.outbox/1", "job_id": "AJ')
    (tmp_path / "0000000000002-1-evt_bin-AJ_bin.json").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "notes.json").write_text("{}")
    leftover = tmp_path / ".tmp-crashed.json"
    leftover.write_text('{"partial')
    os.utime(leftover, (time.time() - 3600, time.time() - 3600))

    async with running_receiver(SECRET) as receiver:
        counts = await a_redeliverer(tmp_path, url=receiver.url).run_once()

    assert (counts.corrupt, counts.delivered) == (4, 1)
    assert [r.headers["Idempotency-Key"] for r in receiver.requests] == ["AJ_ok:call.ended"]
    assert files(tmp_path) == []
    assert files(tmp_path / "corrupt") == [
        ".tmp-crashed.json",
        "0000000000001-0-evt_torn-AJ_torn.json",
        "0000000000002-1-evt_bin-AJ_bin.json",
        "notes.json",
    ]


async def test_a_fresh_lock_of_another_redeliverer_is_respected(tmp_path: Path) -> None:
    Outbox(tmp_path).put(an_event("AJ_1", "call.ended", created_at=time.time()), job_id="AJ_1", status=503, attempts=3)
    (tmp_path / ".locks").mkdir()
    (tmp_path / ".locks" / "AJ_1.lock").write_text("another")

    async with running_receiver(SECRET) as receiver:
        counts = await a_redeliverer(tmp_path, url=receiver.url).run_once()

    assert (counts.busy, counts.delivered) == (1, 0)
    assert receiver.requests == []
    assert (tmp_path / ".locks" / "AJ_1.lock").read_text() == "another"


async def test_the_claim_of_a_redeliverer_that_died_mid_send_is_taken_back_after_its_lease(tmp_path: Path) -> None:
    path = Outbox(tmp_path).put(
        an_event("AJ_1", "call.ended", created_at=time.time()), job_id="AJ_1", status=503, attempts=3
    )
    (tmp_path / ".inflight").mkdir()
    os.rename(path, tmp_path / ".inflight" / path.name)
    lock = tmp_path / ".locks" / "AJ_1.lock"
    lock.parent.mkdir()
    lock.write_text("dead holder")
    os.utime(lock, (time.time() - 3600, time.time() - 3600))

    async with running_receiver(SECRET) as receiver:
        counts = await a_redeliverer(tmp_path, url=receiver.url).run_once()

    assert counts.delivered == 1
    assert [r.headers["Idempotency-Key"] for r in receiver.requests] == ["AJ_1:call.ended"]
    assert files(tmp_path / ".inflight") == []
    assert files(tmp_path / ".locks") == []


async def test_a_pass_cancelled_mid_send_leaves_the_event_pending_and_the_job_unlocked(tmp_path: Path) -> None:
    Outbox(tmp_path).put(an_event("AJ_1", "call.ended", created_at=time.time()), job_id="AJ_1", status=503, attempts=3)
    async with running_receiver(SECRET) as receiver:
        receiver.hang = True
        task = asyncio.ensure_future(a_redeliverer(tmp_path, url=receiver.url).run_once())
        async with asyncio.timeout(10):
            # Polled: the claim is a rename on disk, which signals nothing a test could await.
            while not files(tmp_path / ".inflight"):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert len(files(tmp_path)) == 1
    assert files(tmp_path / ".inflight") == []
    assert files(tmp_path / ".locks") == []


async def test_run_forever_logs_a_failing_pass_and_keeps_going(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="webcall")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the outbox should be")
    redeliverer = a_redeliverer(blocker, url="http://127.0.0.1:9/hooks")

    task = asyncio.ensure_future(redeliverer.run_forever(interval_s=0.01))
    async with asyncio.timeout(10):
        while sum(r.getMessage() == "outbox pass failed" for r in caplog.records) < 3:
            assert not task.done()
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    failed = [r for r in caplog.records if r.getMessage() == "outbox pass failed"]
    assert {getattr(r, "error", None) for r in failed} == {"NotADirectoryError"}


async def test_outbox_logs_carry_no_body_no_url_and_no_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="webcall")
    event = an_event("AJ_1", "call.ended", created_at=time.time(), text="my card number is 4242")
    async with running_receiver(SECRET, statuses=[503, 503, 503, 503, 400]) as receiver:
        await a_sink(receiver.url, tmp_path).send(event, job_id="AJ_1")
        await a_redeliverer(tmp_path, url=receiver.url).run_once()
        await a_redeliverer(tmp_path, url=receiver.url).run_once()
        url = receiver.url

    messages = {r.getMessage() for r in caplog.records}
    assert {"call event kept", "call event redelivery failed", "call event refused"} <= messages
    for record in caplog.records:
        rendered = record.getMessage() + repr(vars(record))
        assert "4242" not in rendered
        assert url not in rendered
        assert SECRET not in rendered


def test_the_outbox_lives_beside_the_spool_unless_set(tmp_path: Path) -> None:
    assert Settings(_env_file=None).outbox_dir() == Path("events-outbox")
    assert Settings(_env_file=None, WEBCALL_EVENTS_DIR=str(tmp_path)).outbox_dir() == tmp_path / "outbox"
    explicit = Settings(_env_file=None, WEBCALL_EVENTS_DIR=str(tmp_path), WEBCALL_EVENTS_OUTBOX_DIR="/var/outbox")
    assert explicit.outbox_dir() == Path("/var/outbox")


def test_the_settings_webhook_sink_keeps_undelivered_events_in_the_configured_outbox(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        WEBCALL_EVENTS_URL="http://127.0.0.1:9/hooks",
        WEBCALL_EVENTS_SECRET=SecretStr(SECRET),
        WEBCALL_EVENTS_OUTBOX_DIR=str(tmp_path / "box"),
        WEBCALL_EVENTS_ALLOW_HTTP=True,
    )

    (sink,) = sinks_from(settings)

    assert isinstance(sink, WebhookSink)
    assert sink.outbox is not None
    assert sink.outbox.directory == tmp_path / "box"


async def test_a_delivered_event_leaves_no_file_and_no_lock(tmp_path: Path) -> None:
    async with running_receiver(SECRET) as receiver:
        delivery = await a_sink(receiver.url, tmp_path).send(
            an_event("AJ_1", "call.started", created_at=time.time()), job_id="AJ_1"
        )

    assert (delivery.delivered, delivery.kept) == (True, None)
    assert files(tmp_path) == []
    assert files(tmp_path / ".inflight") == []
    assert files(tmp_path / ".locks") == []


async def test_a_live_event_queues_unsent_while_a_redeliverer_holds_its_job(tmp_path: Path) -> None:
    (tmp_path / ".locks").mkdir()
    (tmp_path / ".locks" / "AJ_1.lock").write_text("a redeliverer")
    async with running_receiver(SECRET) as receiver:
        delivery = await a_sink(receiver.url, tmp_path).send(
            an_event("AJ_1", "call.ended", created_at=time.time()), job_id="AJ_1"
        )

    assert (delivery.attempts, delivery.kept) == (0, "outbox")
    assert receiver.requests == []
    assert len(files(tmp_path)) == 1


async def test_a_live_send_cancelled_mid_request_leaves_the_event_pending(tmp_path: Path) -> None:
    async with running_receiver(SECRET) as receiver:
        receiver.hang = True
        task = asyncio.ensure_future(
            a_sink(receiver.url, tmp_path).send(an_event("AJ_1", "call.ended", created_at=time.time()), job_id="AJ_1")
        )
        async with asyncio.timeout(10):
            while not files(tmp_path / ".inflight"):  # noqa: ASYNC110 - a rename on disk signals nothing
                await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert len(files(tmp_path)) == 1
    assert files(tmp_path / ".inflight") == []
    assert files(tmp_path / ".locks") == []


KILLED_SENDER = """
import asyncio, sys, time
from pathlib import Path
from agent.events.policy import DeliveryPolicy
from tests.events.outbox_helpers import a_sink, an_event

url, directory = sys.argv[1], Path(sys.argv[2])
sink = a_sink(url, directory, policy=DeliveryPolicy())
asyncio.run(sink.send(an_event("AJ_kill", "call.ended", created_at=time.time()), job_id="AJ_kill"))
"""


async def test_a_job_process_killed_mid_send_leaves_its_event_for_the_redeliverer(tmp_path: Path) -> None:
    async with running_receiver(SECRET) as receiver:
        receiver.hang = True
        sender = await asyncio.create_subprocess_exec(
            sys.executable, "-c", KILLED_SENDER, receiver.url, str(tmp_path), cwd=ROOT
        )
        try:
            async with asyncio.timeout(30):
                # Until the claim is renamed into place: its temporary file (``.tmp-*``) shows first.
                while not [n for n in files(tmp_path / ".inflight") if not n.startswith(".")]:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        finally:
            sender.kill()
            await sender.wait()
        receiver.hang = False
        (claimed,) = files(tmp_path / ".inflight")
        assert files(tmp_path / ".locks") == ["AJ_kill.lock"]

        # within the lease the dead process's lock still holds the job
        held = await a_redeliverer(tmp_path, url=receiver.url).run_once()
        lock = tmp_path / ".locks" / "AJ_kill.lock"
        os.utime(lock, (time.time() - 3600, time.time() - 3600))
        after_lease = await a_redeliverer(tmp_path, url=receiver.url).run_once()
        delivered = receiver.delivered()

    assert (held.busy, held.delivered) == (1, 0)
    assert after_lease.delivered == 1
    (body,) = delivered
    assert body["idempotency_key"] == "AJ_kill:call.ended"
    assert claimed.endswith("-AJ_kill.json")
    assert files(tmp_path / ".inflight") == []


def test_a_torn_outbox_file_reads_as_a_corrupt_record_in_the_error_tree_named_by_its_file(tmp_path: Path) -> None:
    path = tmp_path / "0000000000001-0-evt_x-AJ_1.json"
    path.write_bytes(b'{"format": "webcall.outbox/1", "job_')

    with pytest.raises(WebcallError) as caught:
        Outbox.read_record(path)

    assert isinstance(caught.value, CorruptRecord)
    assert caught.value.name == path.name


async def test_a_live_send_cancelled_while_claiming_puts_the_claim_back_and_unlocks_the_job(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    claimed = threading.Event()
    proceed = threading.Event()
    claim_new = outbox.claim_new

    def slow_claim(event: Event, *, job_id: str, now: float) -> Claim | None:
        made = claim_new(event, job_id=job_id, now=now)
        claimed.set()
        proceed.wait(10)
        return made

    outbox.claim_new = slow_claim  # type: ignore[method-assign]
    sink = WebhookSink(sender=a_sender("http://127.0.0.1:9/never"), policy=DeliveryPolicy(), outbox=outbox)
    task = asyncio.ensure_future(sink.send(an_event("AJ_1", "call.ended", created_at=time.time()), job_id="AJ_1"))
    assert await asyncio.to_thread(claimed.wait, 10)
    task.cancel()
    proceed.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)

    assert len(files(tmp_path)) == 1
    assert files(tmp_path / ".inflight") == []
    assert files(tmp_path / ".locks") == []
