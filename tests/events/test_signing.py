"""Signatures are verified the way a receiver verifies them: HMAC-SHA256 over ``<timestamp>.<raw body>``."""

from __future__ import annotations

import hashlib
import hmac

from agent.events.signing import sign, verify

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
