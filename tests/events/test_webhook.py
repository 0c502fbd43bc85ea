"""Webhook delivery against a real aiohttp receiver on 127.0.0.1: signed, idempotent, retried only when it helps."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

import pytest

from agent.events.delivery import WebhookSink
from agent.events.payload import Event
from agent.events.policy import DeliveryPolicy
from agent.events.signing import verify
from agent.events.sinks import sinks_from
from agent.settings import Settings
from tests.events.outbox_helpers import a_sender
from tests.events.receiver import running_receiver, secret_for, verifies

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


async def test_every_attempt_carries_the_event_id_as_webhook_id_and_a_signature_the_library_verifies() -> None:
    async with running_receiver(SECRET, statuses=[500, 503]) as receiver:
        await a_webhook(receiver.url).send(an_event(), job_id="AJ_job1")

    assert [r.status for r in receiver.requests] == [500, 503, 200]
    assert {r.headers["webhook-id"] for r in receiver.requests} == {"evt_1"}
    assert all(verifies(SECRET, headers=r.headers, body=r.body) for r in receiver.requests)
    assert all("Webcall-Signature" not in r.headers for r in receiver.requests)


def webhook_settings(url: str, **extra: object) -> Settings:
    return Settings.model_validate({"WEBCALL_EVENTS_URL": url, "WEBCALL_EVENTS_SECRET": SECRET, **extra})


def test_an_http_webhook_url_is_refused_and_the_reason_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="webcall")

    assert sinks_from(webhook_settings("http://127.0.0.1:9/hooks")) == []

    (record,) = [r for r in caplog.records if r.getMessage() == "call events webhook disabled"]
    assert "WEBCALL_EVENTS_ALLOW_HTTP" in str(getattr(record, "reason", ""))
    assert "127.0.0.1" not in record.getMessage() + repr(vars(record))


@pytest.mark.parametrize(
    ("url", "extra", "built"),
    [
        ("https://hooks.example.invalid/calls", {}, True),
        ("http://127.0.0.1:9/hooks", {"WEBCALL_EVENTS_ALLOW_HTTP": True}, True),
        ("ftp://hooks.example.invalid/calls", {"WEBCALL_EVENTS_ALLOW_HTTP": True}, False),
        ("https://hooks.example.invalid/calls", {"WEBCALL_EVENTS_SECRET": "not-a-whsec-secret"}, False),
    ],
    ids=["https", "http allowed for development", "another scheme", "a secret that is not whsec_"],
)
def test_the_webhook_is_built_only_for_https_or_allowed_http_and_a_whsec_secret(
    url: str, extra: dict[str, object], built: bool
) -> None:
    sinks = sinks_from(webhook_settings(url, **extra))

    assert [type(sink) for sink in sinks] == ([WebhookSink] if built else [])


async def test_the_legacy_signature_header_is_sent_only_with_its_setting(tmp_path: Path) -> None:
    async with running_receiver(SECRET) as receiver:
        for legacy in (False, True):
            settings = webhook_settings(
                receiver.url,
                WEBCALL_EVENTS_ALLOW_HTTP=True,
                WEBCALL_EVENTS_LEGACY_SIGNATURE=legacy,
                WEBCALL_EVENTS_OUTBOX_DIR=str(tmp_path),
            )
            (sink,) = sinks_from(settings)
            assert isinstance(sink, WebhookSink)
            await sink.send(an_event(), job_id="AJ_job1")

    without, with_legacy = receiver.requests
    assert "Webcall-Signature" not in without.headers
    assert verify(SECRET, header=with_legacy.headers["Webcall-Signature"], body=with_legacy.body, now=time.time())
    assert without.signature_valid
    assert with_legacy.signature_valid
