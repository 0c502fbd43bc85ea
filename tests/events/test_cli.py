"""``agent.events.cli.main``: the outbox listing (identity and state, never content) and redelivery by hand."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from agent.events.cli import main
from agent.events.outbox import Outbox
from agent.events.signing import parse_secrets
from agent.settings import Settings
from tests.events.outbox_helpers import SECRET, an_event, files
from tests.events.receiver import running_receiver


def settings_for(outbox_dir: Path, *, url: str | None = None) -> Settings:
    return Settings(
        _env_file=None,
        WEBCALL_EVENTS_OUTBOX_DIR=str(outbox_dir),
        WEBCALL_EVENTS_URL=url,
        WEBCALL_EVENTS_SECRET=SecretStr(SECRET) if url else None,
        WEBCALL_EVENTS_ALLOW_HTTP=True,
    )


def an_outbox_with_pending_dead_and_corrupt(directory: Path) -> None:
    now = time.time()
    outbox = Outbox(directory)
    outbox.put(
        an_event("AJ_p", "call.started", created_at=now - 300, text="secret words"),
        job_id="AJ_p",
        status=503,
        attempts=3,
    )
    outbox.put(
        an_event("AJ_d", "call.ended", created_at=now - 60, text="secret words"),
        job_id="AJ_d",
        status=422,
        attempts=1,
        dead_reason="refused",
    )
    (directory / "corrupt").mkdir()
    (directory / "corrupt" / "0000000000001-0-evt_x-AJ_x.json").write_text("{torn")


def test_the_outbox_listing_shows_counts_ids_types_and_ages_but_no_content(tmp_path: Path) -> None:
    an_outbox_with_pending_dead_and_corrupt(tmp_path)
    out = io.StringIO()

    code = main(["outbox"], settings=settings_for(tmp_path), out=out)

    text = out.getvalue()
    assert code == 0
    assert "pending 1  inflight 0  dead 1  corrupt 1" in text
    lines = text.splitlines()
    pending = next(line for line in lines if line.startswith("pending "))
    assert "evt_aj_p_started" in pending
    assert "call.started" in pending
    assert "age 5m" in pending
    assert "status 503" in pending
    dead = next(line for line in lines if line.startswith("dead "))
    assert "call.ended" in dead
    assert dead.endswith("refused")
    assert any(line.startswith("corrupt") and "evt_x" in line for line in lines)
    assert "secret words" not in text


def test_the_outbox_listing_as_json_has_one_entry_per_file(tmp_path: Path) -> None:
    an_outbox_with_pending_dead_and_corrupt(tmp_path)
    out = io.StringIO()

    assert main(["outbox", "--json"], settings=settings_for(tmp_path), out=out) == 0

    entries = json.loads(out.getvalue())
    assert [(e["state"], e["event_type"], e["last_status"]) for e in entries] == [
        ("pending", "call.started", 503),
        ("dead", "call.ended", 422),
        ("corrupt", None, None),
    ]
    assert 299 <= entries[0]["age_s"] < 400
    assert "secret words" not in out.getvalue()


def test_an_empty_or_missing_outbox_lists_zero_everywhere(tmp_path: Path) -> None:
    out = io.StringIO()

    assert main(["outbox"], settings=settings_for(tmp_path / "never-made"), out=out) == 0

    assert "pending 0  inflight 0  dead 0  corrupt 0" in out.getvalue()


async def test_redeliver_once_delivers_the_pending_events_and_exits_zero(tmp_path: Path) -> None:
    an_outbox_with_pending_dead_and_corrupt(tmp_path)
    async with running_receiver(SECRET) as receiver:
        out = io.StringIO()
        # main runs its own event loop: off this test's loop, in a thread, as a shell would run it beside a server
        code = await asyncio_to_thread_main(["redeliver", "--once"], settings_for(tmp_path, url=receiver.url), out)

    assert code == 0
    assert json.loads(out.getvalue())["delivered"] == 1
    assert [r.headers["Idempotency-Key"] for r in receiver.requests] == ["AJ_p:call.started"]
    assert all(r.signature_valid for r in receiver.requests)
    assert [name for name in files(tmp_path) if name.endswith(".json")] == []
    assert len(files(tmp_path / "dead")) == 1


async def test_redeliver_once_exits_one_when_an_event_fails_again(tmp_path: Path) -> None:
    an_outbox_with_pending_dead_and_corrupt(tmp_path)
    async with running_receiver(SECRET, statuses=[502]) as receiver:
        out = io.StringIO()
        code = await asyncio_to_thread_main(["redeliver", "--once"], settings_for(tmp_path, url=receiver.url), out)

    assert code == 1
    assert json.loads(out.getvalue())["kept"] == 1
    assert len(files(tmp_path)) == 1


def test_redeliver_without_a_webhook_url_and_secret_exits_two(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["redeliver", "--once"], settings=settings_for(tmp_path)) == 2
    assert "WEBCALL_EVENTS_URL" in capsys.readouterr().err


async def asyncio_to_thread_main(argv: list[str], settings: Settings, out: io.StringIO) -> int:
    import asyncio

    return await asyncio.to_thread(main, argv, settings=settings, out=out)


def test_redeliver_to_an_http_url_without_the_development_setting_exits_two_naming_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(
        _env_file=None,
        WEBCALL_EVENTS_OUTBOX_DIR=str(tmp_path),
        WEBCALL_EVENTS_URL="http://127.0.0.1:9/hooks",
        WEBCALL_EVENTS_SECRET=SecretStr(SECRET),
    )

    assert main(["redeliver", "--once"], settings=settings) == 2
    err = capsys.readouterr().err
    assert "WEBCALL_EVENTS_ALLOW_HTTP" in err
    assert "127.0.0.1" not in err


def test_new_secret_prints_a_whsec_secret_the_settings_accept(tmp_path: Path) -> None:
    out = io.StringIO()

    assert main(["new-secret"], settings=settings_for(tmp_path), out=out) == 0

    secret = out.getvalue().strip()
    assert parse_secrets(secret) == (secret,)
