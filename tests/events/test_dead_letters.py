"""What the outbox sets aside: ``dead/`` and ``corrupt/`` are pruned after the retention, and dead events can be sent
back by an operator (``python -m agent events replay-dead``) and are then delivered by the next pass."""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from pathlib import Path

from pydantic import SecretStr

from agent.events.cli import main
from agent.events.outbox import Outbox
from agent.events.record import Record
from agent.events.redelivery import Redeliverer
from agent.settings import Settings
from tests.events.outbox_helpers import SECRET, a_redeliverer, an_event, files
from tests.events.receiver import running_receiver

DAY = 86_400.0


def aged(path: Path, *, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def a_dead_event(outbox_dir: Path, job: str, *, created_at: float | None = None, reason: str = "refused") -> Path:
    created = time.time() if created_at is None else created_at
    return Outbox(outbox_dir).put(
        an_event(job, "call.ended", created_at=created),
        job_id=job,
        status=401 if reason == "refused" else 503,
        attempts=3,
        dead_reason="refused" if reason == "refused" else "expired",
        now=created,
    )


async def test_a_pass_deletes_dead_and_corrupt_files_older_than_the_retention_and_keeps_younger_ones(
    tmp_path: Path,
) -> None:
    old_dead = a_dead_event(tmp_path, "AJ_old")
    young_dead = a_dead_event(tmp_path, "AJ_young")
    (tmp_path / "corrupt").mkdir()
    old_corrupt = tmp_path / "corrupt" / "0000000000001-0-evt_x-AJ_x.json"
    old_corrupt.write_text("{torn")
    young_corrupt = tmp_path / "corrupt" / "notes.json"
    young_corrupt.write_text("{}")
    aged(old_dead, seconds=8 * DAY)
    aged(old_corrupt, seconds=8 * DAY)
    aged(young_dead, seconds=6 * DAY)

    async with running_receiver(SECRET) as receiver:
        counts = await a_redeliverer(tmp_path, url=receiver.url, retention_s=7 * DAY).run_once()

    assert counts.pruned == 2
    assert files(tmp_path / "dead") == [young_dead.name]
    assert files(tmp_path / "corrupt") == [young_corrupt.name]
    assert receiver.requests == []


async def test_a_file_just_quarantined_is_kept_for_the_whole_retention_whatever_its_own_age(tmp_path: Path) -> None:
    stray = tmp_path / "notes.json"
    stray.write_text("{}")
    aged(stray, seconds=30 * DAY)

    async with running_receiver(SECRET) as receiver:
        first = await a_redeliverer(tmp_path, url=receiver.url, retention_s=DAY).run_once()
        second = await a_redeliverer(tmp_path, url=receiver.url, retention_s=DAY).run_once()

    assert (first.corrupt, first.pruned, second.pruned) == (1, 0, 0)
    assert files(tmp_path / "corrupt") == ["notes.json"]


def test_the_retention_comes_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        WEBCALL_EVENTS_URL="https://hooks.invalid/calls",
        WEBCALL_EVENTS_SECRET=SecretStr(SECRET),
        WEBCALL_EVENTS_OUTBOX_DIR=str(tmp_path),
        WEBCALL_EVENTS_OUTBOX_RETENTION_S=3600,
    )

    redeliverer = Redeliverer.from_settings(settings)

    assert isinstance(redeliverer, Redeliverer)
    assert redeliverer.retention_s == 3600


def settings_for(outbox_dir: Path, url: str) -> Settings:
    return Settings(
        _env_file=None,
        WEBCALL_EVENTS_URL=url,
        WEBCALL_EVENTS_SECRET=SecretStr(SECRET),
        WEBCALL_EVENTS_OUTBOX_DIR=str(outbox_dir),
        WEBCALL_EVENTS_ALLOW_HTTP=True,
    )


async def run_cli(argv: list[str], settings: Settings) -> tuple[int, str]:
    out = io.StringIO()
    # main runs its own event loop: off this test's loop, in a thread, as a shell would run it
    code = await asyncio.to_thread(main, argv, settings=settings, out=out)
    return code, out.getvalue()


async def test_replay_dead_sends_a_refused_event_back_and_the_next_pass_delivers_it(tmp_path: Path) -> None:
    a_dead_event(tmp_path, "AJ_1")
    async with running_receiver(SECRET) as receiver:
        settings = settings_for(tmp_path, receiver.url)
        replayed = await run_cli(["replay-dead"], settings)
        delivered = await run_cli(["redeliver", "--once"], settings)

    assert replayed == (0, json.dumps({"replayed": 1, "busy": 0}) + "\n")
    assert delivered[0] == 0
    assert [r.headers["Idempotency-Key"] for r in receiver.requests] == ["AJ_1:call.ended"]
    assert all(r.signature_valid for r in receiver.requests)
    assert files(tmp_path / "dead") == []
    assert [name for name in files(tmp_path) if name.endswith(".json")] == []


async def test_a_replayed_expired_event_counts_its_age_from_the_replay_and_is_sent(tmp_path: Path) -> None:
    a_dead_event(tmp_path, "AJ_1", created_at=time.time() - 3 * DAY, reason="expired")
    async with running_receiver(SECRET) as receiver:
        settings = settings_for(tmp_path, receiver.url)
        await run_cli(["replay-dead"], settings)
        code, out = await run_cli(["redeliver", "--once"], settings)

    assert (code, json.loads(out)["expired"], json.loads(out)["delivered"]) == (0, 0, 1)
    (request,) = receiver.requests
    assert request.json["job_id"] == "AJ_1"


def test_replay_dead_can_pick_events_by_id_or_job_and_skips_a_job_another_process_holds(tmp_path: Path) -> None:
    for job in ("AJ_a", "AJ_b", "AJ_c"):
        a_dead_event(tmp_path, job)
    (tmp_path / ".locks").mkdir()
    (tmp_path / ".locks" / "AJ_c.lock").write_text("a redeliverer")
    outbox = Outbox(tmp_path)

    by_id = outbox.replay_dead(now=time.time(), event_ids=["evt_aj_a_ended"])
    by_job = outbox.replay_dead(now=time.time(), job="AJ_c")

    assert (by_id.replayed, by_id.busy) == (1, 0)
    assert (by_job.replayed, by_job.busy) == (0, 1)
    assert [Record.model_validate_json((tmp_path / n).read_bytes()).job_id for n in files(tmp_path)] == ["AJ_a"]
    replayed = Record.model_validate_json((tmp_path / files(tmp_path)[0]).read_bytes())
    assert (replayed.dead_reason, replayed.redeliveries) == (None, 0)
    assert replayed.replayed_at is not None
    assert len(files(tmp_path / "dead")) == 2
