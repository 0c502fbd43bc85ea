"""The call decides its end reason in one place: the first cause noted is the one reported."""

from __future__ import annotations

from agent.call import EndReason


def test_the_first_end_reason_noted_is_kept_over_its_consequences() -> None:
    reason = EndReason()
    reason.note("caller_left")
    reason.note("participant_disconnected")
    assert reason.value == "caller_left"


def test_a_call_that_ended_without_a_noted_cause_reports_unknown() -> None:
    assert EndReason().value == "unknown"
