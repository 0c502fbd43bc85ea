"""The delivery policy's one status table, and what it makes of a 401/403: retried for a bounded time (a skewed clock
or a secret mid-rotation heals), then dead; checked live and on redelivery against a real receiver on 127.0.0.1."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.events.outbox import Outbox
from agent.events.policy import Answer, DeliveryPolicy, answer
from agent.events.record import Record
from tests.events.outbox_helpers import SECRET, a_redeliverer, a_sink, an_event, files
from tests.events.receiver import running_receiver

TABLE: list[tuple[int | None, Answer]] = [
    (200, "delivered"),
    (204, "delivered"),
    (500, "transient"),
    (503, "transient"),
    (None, "transient"),
    (408, "later"),
    (425, "later"),
    (429, "later"),
    (302, "later"),
    (401, "auth"),
    (403, "auth"),
    (400, "refused"),
    (404, "refused"),
    (410, "refused"),
    (413, "refused"),
    (422, "refused"),
]


@pytest.mark.parametrize(("status", "expected"), TABLE, ids=[str(status) for status, _ in TABLE])
def test_each_status_has_one_meaning(status: int | None, expected: Answer) -> None:
    assert answer(status) == expected


def test_an_auth_failure_is_retried_while_the_event_is_young_and_refused_after_the_window() -> None:
    policy = DeliveryPolicy(auth_retry_s=3600.0)

    assert policy.verdict(401, age_s=10.0) == "retry"
    assert policy.verdict(403, age_s=3599.0) == "retry"
    assert policy.verdict(401, age_s=3601.0) == "refused"
    assert policy.verdict(400, age_s=0.0) == "refused"


async def test_a_live_401_keeps_the_event_pending_not_dead_and_is_not_retried_at_once(tmp_path: Path) -> None:
    async with running_receiver(SECRET, statuses=[401]) as receiver:
        delivery = await a_sink(receiver.url, tmp_path).send(
            an_event("AJ_1", "call.started", created_at=time.time()), job_id="AJ_1"
        )

    assert (delivery.status, delivery.attempts, delivery.kept) == (401, 1, "outbox")
    assert len(files(tmp_path)) == 1
    assert files(tmp_path / "dead") == []


async def test_a_403_on_redelivery_is_kept_then_delivered_once_the_receiver_accepts_again(tmp_path: Path) -> None:
    Outbox(tmp_path).put(an_event("AJ_1", "call.ended", created_at=time.time()), job_id="AJ_1", status=401, attempts=1)
    async with running_receiver(SECRET, statuses=[403]) as receiver:
        redeliverer = a_redeliverer(tmp_path, url=receiver.url)
        first = await redeliverer.run_once()
        second = await redeliverer.run_once()

    assert (first.kept, first.refused, second.delivered) == (1, 0, 1)
    assert [r.status for r in receiver.requests] == [403, 200]
    assert files(tmp_path) == []
    assert files(tmp_path / "dead") == []


async def test_a_401_for_an_event_older_than_the_auth_window_sends_it_to_dead_as_refused(tmp_path: Path) -> None:
    two_hours_ago = time.time() - 7200
    old = an_event("AJ_1", "call.ended", created_at=two_hours_ago)
    Outbox(tmp_path).put(old, job_id="AJ_1", status=401, attempts=1, now=two_hours_ago)
    async with running_receiver(SECRET, statuses=[401]) as receiver:
        counts = await a_redeliverer(tmp_path, url=receiver.url, auth_retry_s=3600.0).run_once()

    assert counts.refused == 1
    (name,) = files(tmp_path / "dead")
    dead = Record.model_validate_json((tmp_path / "dead" / name).read_bytes())
    assert (dead.dead_reason, dead.last_status) == ("refused", 401)
