"""Webhook delivery against a real aiohttp receiver on 127.0.0.1: signed, idempotent, retried only when it helps."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from agent.events.delivery import WebhookSink
from agent.events.payload import Event
from agent.events.policy import DeliveryPolicy
from tests.events.outbox_helpers import a_sender
from tests.events.receiver import running_receiver, secret_for

SECRET = secret_for("webhook")
FAST = DeliveryPolicy(attempts=3, budget_s=10.0, attempt_timeout_s=2.0, retry_pause_s=0.05)


def a_webhook(url: str, *, policy: DeliveryPolicy = FAST) -> WebhookSink:
    return WebhookSink(sender=a_sender(url, secrets=(SECRET,)), policy=policy)


def an_event(*, text: str = "hello") -> Event:
    return Event(
        id="evt_1",
        type="call.ended",
        idempotency_key="AJ_job1:call.ended",
        body={"id": "evt_1", "type": "call.ended", "transcript": [{"text": text}]},
    )


async def test_an_event_is_posted_once_signed_with_its_idempotency_key() -> None:
    async with running_receiver(SECRET) as receiver:
        delivery = await a_webhook(receiver.url).send(an_event(), job_id="AJ_job1")

    assert (delivery.delivered, delivery.status, delivery.attempts) == (True, 200, 1)
    (request,) = receiver.requests
    assert request.signature_valid
    assert request.headers["Idempotency-Key"] == "AJ_job1:call.ended"
    assert request.headers["Webcall-Event-Type"] == "call.ended"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json["transcript"] == [{"text": "hello"}]


async def test_a_500_is_retried_and_the_next_attempt_delivers_with_the_same_idempotency_key() -> None:
    async with running_receiver(SECRET, statuses=[500, 503]) as receiver:
        delivery = await a_webhook(receiver.url).send(an_event(), job_id="AJ_job1")

    assert (delivery.delivered, delivery.status, delivery.attempts) == (True, 200, 3)
    assert [r.status for r in receiver.requests] == [500, 503, 200]
    assert {r.headers["Idempotency-Key"] for r in receiver.requests} == {"AJ_job1:call.ended"}
    assert {r.body for r in receiver.requests} == {an_event().to_json()}
    assert all(r.signature_valid for r in receiver.requests)


async def test_a_400_is_not_retried() -> None:
    async with running_receiver(SECRET, statuses=[400]) as receiver:
        delivery = await a_webhook(receiver.url).send(an_event(), job_id="AJ_job1")

    assert (delivery.delivered, delivery.status, delivery.attempts) == (False, 400, 1)
    assert len(receiver.requests) == 1


async def test_a_receiver_failing_every_time_gets_the_bounded_number_of_attempts() -> None:
    async with running_receiver(SECRET, statuses=[500, 500, 500, 500, 500]) as receiver:
        delivery = await a_webhook(receiver.url).send(an_event(), job_id="AJ_job1")

    assert (delivery.delivered, delivery.status, delivery.attempts) == (False, 500, 3)
    assert len(receiver.requests) == 3


def a_closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_refused_connection_is_retried_then_given_up_without_raising() -> None:
    url = f"http://127.0.0.1:{a_closed_port()}/hooks/calls"

    delivery = await a_webhook(url).send(an_event(), job_id="AJ_job1")

    assert (delivery.delivered, delivery.status, delivery.attempts) == (False, None, 3)


async def test_a_receiver_that_never_answers_is_given_up_when_the_budget_runs_out() -> None:
    policy = DeliveryPolicy(attempts=3, budget_s=0.6, attempt_timeout_s=5.0, retry_pause_s=0.05)
    async with running_receiver(SECRET) as receiver:
        receiver.hang = True
        task = asyncio.ensure_future(a_webhook(receiver.url, policy=policy).send(an_event(), job_id="AJ_job1"))
        # the budget (0.6 s) ends the delivery; this outer bound only keeps a broken budget from hanging the test
        delivery = await asyncio.wait_for(task, timeout=5)

    assert delivery.delivered is False
    assert delivery.attempts == 1


async def test_delivery_logs_carry_no_body_and_no_url(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="webcall")
    async with running_receiver(SECRET, statuses=[500]) as receiver:
        await a_webhook(receiver.url).send(an_event(text="my card number is 4242"), job_id="AJ_job1")
        url = receiver.url

    assert caplog.records, "delivery should be logged"
    for record in caplog.records:
        rendered = record.getMessage() + repr(vars(record))
        assert "4242" not in rendered
        assert url not in rendered
        assert SECRET not in rendered
