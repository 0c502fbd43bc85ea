"""Signatures are verified the way a receiver verifies them: Standard Webhooks with the `standardwebhooks` library,
and the legacy HMAC-SHA256 over ``<timestamp>.<raw body>``."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from agent.errors import SettingsError
from agent.events.signing import SIGNATURE_HEADER, Signer, new_secret, parse_secrets, sign, verify
from tests.events.receiver import secret_for

SECRET = "whsec_test"
BODY = '{"type":"call.ended","text":"héllo"}'.encode()


def test_the_header_carries_the_timestamp_and_an_hmac_sha256_of_timestamp_dot_body() -> None:
    header = sign(SECRET, timestamp=1_700_000_000, body=BODY)

    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_a_receiver_accepts_a_fresh_signature_over_the_exact_body() -> None:
    header = sign(SECRET, timestamp=1_700_000_000, body=BODY)

    assert verify(SECRET, header=header, body=BODY, now=1_700_000_010)


def test_a_changed_body_fails_verification() -> None:
    header = sign(SECRET, timestamp=1_700_000_000, body=BODY)

    assert not verify(SECRET, header=header, body=BODY.replace(b"ended", b"endeD"), now=1_700_000_000)


def test_another_secret_fails_verification() -> None:
    header = sign(SECRET, timestamp=1_700_000_000, body=BODY)

    assert not verify("whsec_other", header=header, body=BODY, now=1_700_000_000)


def test_a_signature_older_than_the_tolerance_is_rejected_as_a_replay() -> None:
    header = sign(SECRET, timestamp=1_700_000_000, body=BODY)

    assert not verify(SECRET, header=header, body=BODY, now=1_700_000_000 + 301)


def test_a_header_without_timestamp_or_signature_is_rejected() -> None:
    assert not verify(SECRET, header="", body=BODY, now=1_700_000_000)
    assert not verify(SECRET, header="t=1700000000", body=BODY, now=1_700_000_000)


# Standard Webhooks 1.0, verified with the `standardwebhooks` library the way a receiver does.

NEW = secret_for("rotation-new")
OLD = secret_for("rotation-old")


def library_accepts(secret: str, headers: dict[str, str], body: bytes = BODY) -> bool:
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except WebhookVerificationError:
        return False
    return True


def test_a_request_carries_the_event_id_the_timestamp_and_a_v1_signature_the_library_verifies() -> None:
    now = int(time.time())

    headers = Signer((NEW,)).headers(event_id="evt_1", body=BODY, timestamp=now)

    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-timestamp"] == str(now)
    assert headers["webhook-signature"].startswith("v1,")
    assert SIGNATURE_HEADER not in headers
    assert library_accepts(NEW, headers)
    assert not library_accepts(NEW, headers, body=BODY.replace(b"ended", b"endeD"))
    assert not library_accepts(secret_for("someone-else"), headers)


def test_a_replayed_request_with_a_timestamp_older_than_five_minutes_is_rejected_by_the_library() -> None:
    signer = Signer((NEW,))
    now = int(time.time())

    assert library_accepts(NEW, signer.headers(event_id="evt_1", body=BODY, timestamp=now - 240))
    assert not library_accepts(NEW, signer.headers(event_id="evt_1", body=BODY, timestamp=now - 301))


def test_during_a_rotation_every_request_is_signed_with_each_secret_and_either_receiver_verifies() -> None:
    headers = Signer((NEW, OLD)).headers(event_id="evt_1", body=BODY, timestamp=int(time.time()))

    assert len(headers["webhook-signature"].split(" ")) == 2
    assert library_accepts(NEW, headers)
    assert library_accepts(OLD, headers)
    assert not library_accepts(secret_for("retired"), headers)


def test_the_legacy_header_is_added_only_when_asked_and_verifies_as_before() -> None:
    now = int(time.time())

    headers = Signer((NEW, OLD), legacy=True).headers(event_id="evt_1", body=BODY, timestamp=now)

    assert verify(NEW, header=headers[SIGNATURE_HEADER], body=BODY, now=now)
    assert library_accepts(NEW, headers)


def test_the_setting_holds_several_whsec_secrets_separated_by_spaces_or_commas() -> None:
    assert parse_secrets(f" {NEW}, {OLD}\n") == (NEW, OLD)
    assert parse_secrets(new_secret())[0].startswith("whsec_")


@pytest.mark.parametrize(
    "value",
    ["plain-text-secret", "whsec_", "whsec_c2hvcnQ=", "whsec_not*base64*at*all*padding*here*xx", f"{NEW} hunter2"],
    ids=["no prefix", "empty", "too short", "not base64", "one bad of two"],
)
def test_a_secret_that_is_not_a_whsec_secret_is_a_settings_error_naming_the_setting_not_the_value(value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_secrets(value)

    assert caught.value.fields == ("WEBCALL_EVENTS_SECRET",)
    assert value not in str(caught.value)
    assert "hunter2" not in str(caught.value)
