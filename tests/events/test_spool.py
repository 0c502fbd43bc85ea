"""The spool: one JSONL file per call, each event a whole line, written by an atomic rename."""

from __future__ import annotations

import json
import os
from pathlib import Path

from agent.events.payload import Event
from agent.events.spool import SpoolSink


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def an_event(event_type: str, *, n: int) -> Event:
    return Event(
        id=f"evt_{n}",
        type="call.started" if event_type == "started" else "call.ended",
        idempotency_key=f"AJ_1:call.{event_type}",
        body={"id": f"evt_{n}", "text": "naïve ☎ \n newline"},
    )


async def test_the_events_of_a_call_are_lines_of_its_own_file_in_order(tmp_path: Path) -> None:
    spool = SpoolSink(tmp_path / "events")

    assert await spool.send(an_event("started", n=1), job_id="AJ_1")
    assert await spool.send(an_event("ended", n=2), job_id="AJ_1")
    assert await spool.send(an_event("started", n=3), job_id="AJ_2")

    lines = (tmp_path / "events" / "AJ_1.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["evt_1", "evt_2"]
    assert json.loads(lines[0])["text"] == "naïve ☎ \n newline"
    assert listing(tmp_path / "events") == ["AJ_1.jsonl", "AJ_2.jsonl"]


async def test_a_write_replaces_the_file_by_rename_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    spool = SpoolSink(tmp_path)
    await spool.send(an_event("started", n=1), job_id="AJ_1")
    before = os.stat(tmp_path / "AJ_1.jsonl").st_ino

    await spool.send(an_event("ended", n=2), job_id="AJ_1")

    # a new inode: readers holding the old file see it whole, never half of the new line
    assert os.stat(tmp_path / "AJ_1.jsonl").st_ino != before
    assert listing(tmp_path) == ["AJ_1.jsonl"]


async def test_a_job_id_cannot_escape_the_spool_directory(tmp_path: Path) -> None:
    spool = SpoolSink(tmp_path / "spool")

    await spool.send(an_event("started", n=1), job_id="../../etc/passwd")

    assert listing(tmp_path / "spool") == ["_.._etc_passwd.jsonl"]


async def test_an_unwritable_spool_is_reported_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the directory should be")

    assert await SpoolSink(blocker / "events").send(an_event("started", n=1), job_id="AJ_1") is False
