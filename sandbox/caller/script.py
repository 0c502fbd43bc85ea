"""Running a `CallPlan`: create the room, join as a browser, dispatch the agent, play the steps, delete the room.

The first step waits until the welcome has been spoken (a ``barge_in`` first step speaks over it instead), each
next one until the agent has answered the last; every wait is capped by the plan's timeout. ``leave`` disconnects
and ends the script. Times in the report are seconds since the dispatch request was sent.
"""

from __future__ import annotations

import asyncio
import functools
import math
from typing import Any

import aiohttp
from livekit import api, rtc

from sandbox.caller.participant import LiveCall
from sandbox.caller.plan import CallerError, CallPlan, Step, http_url, shown_url
from sandbox.caller.report import summary
from sandbox.caller.speech import MIC_RATE, utterances

CONNECT_TIMEOUT_S = 15.0


async def run_call(plan: CallPlan) -> dict[str, Any]:
    """Run one QA call and return its report. Raises ``CallerError`` when the server cannot be used."""
    speech = utterances(plan.steps)
    async with api.LiveKitAPI(http_url(plan.url), plan.api_key, plan.api_secret) as lk:
        await _preflight(lk, plan)
        call = LiveCall(room=rtc.Room(), identity=plan.identity, keep_pcm=plan.record is not None)
        report: dict[str, Any] = {"room": plan.room, "agent_name": plan.agent_name, "url": shown_url(plan.url)}
        if plan.example_env:
            report["example_env"] = plan.example_env
        try:
            await _join(call, plan)
            call.mark_dispatched()
            report["dispatch_id"] = await _dispatch(lk, plan)
            call.adopt_present_agent()
            report["steps"] = await _script(call, plan, speech)
            report.update(summary(call, plan))
        finally:
            await call.aclose()
            report["room_deleted"] = await _delete_room(lk, plan)
    # The verdict and the welcome first: what a reader looks for.
    first = ("ok", "welcome", "room", "dispatch_id", "agent")
    return {**{k: report[k] for k in first if k in report}, **report}


async def _preflight(lk: api.LiveKitAPI, plan: CallPlan) -> None:
    """Reach the server's RoomService once (and create the room with its metadata): fail fast with one line."""
    where = shown_url(plan.url)
    try:
        if plan.room_metadata is None:
            await lk.room.list_rooms(api.ListRoomsRequest(names=[plan.room]))
            return
        created = await lk.room.create_room(api.CreateRoomRequest(name=plan.room, metadata=plan.room_metadata))
        if created.metadata != plan.room_metadata:
            # CreateRoom returns an existing room unchanged.
            await lk.room.update_room_metadata(
                api.UpdateRoomMetadataRequest(room=plan.room, metadata=plan.room_metadata)
            )
    except api.TwirpError as exc:
        raise CallerError(
            f"the LiveKit server at {where} refused the request: {exc.code} (HTTP {exc.status})"
        ) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise CallerError(f"cannot reach the LiveKit server at {where}: {type(exc).__name__}") from None


async def _dispatch(lk: api.LiveKitAPI, plan: CallPlan) -> str:
    try:
        dispatch = await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=plan.agent_name, room=plan.room, metadata=plan.metadata)
        )
    except api.TwirpError as exc:
        raise CallerError(f"the dispatch was refused: {exc.code} (HTTP {exc.status})") from None
    return dispatch.id


async def _join(call: LiveCall, plan: CallPlan) -> None:
    token = (
        api.AccessToken(plan.api_key, plan.api_secret)
        .with_identity(plan.identity)
        .with_name(plan.name)
        .with_metadata(plan.participant_metadata)
        .with_attributes(plan.attributes)
        .with_grants(api.VideoGrants(room_join=True, room=plan.room, can_update_own_metadata=True))
        .to_jwt()
    )
    try:
        await asyncio.wait_for(call.room.connect(plan.url, token), CONNECT_TIMEOUT_S)
    except (rtc.ConnectError, TimeoutError) as exc:
        raise CallerError(f"cannot join the room at {shown_url(plan.url)}: {type(exc).__name__}") from None
    await call.publish_microphone()


async def _script(call: LiveCall, plan: CallPlan, speech: dict[str, bytes]) -> list[dict[str, Any]]:
    if not await call.until(call.welcomed, within_s=plan.timeout_s):
        return []
    if not plan.steps or plan.steps[0].action != "barge_in":
        # Steps start once the welcome has been spoken, as a polite caller would (a capped wait: it may never end).
        await call.until(lambda: call.answered_since(-math.inf), within_s=plan.timeout_s)
    done: list[dict[str, Any]] = []
    for step in plan.steps:
        done.append(await _step(call, step, plan=plan, speech=speech))
        if step.action == "leave":
            return done
    await asyncio.sleep(plan.listen_s)
    return done


async def _step(call: LiveCall, step: Step, *, plan: CallPlan, speech: dict[str, bytes]) -> dict[str, Any]:
    at_s = call.now()
    if step.action == "wait":
        await asyncio.sleep(step.seconds)
        return {"action": "wait", "seconds": step.seconds, "at_s": at_s}
    if step.action == "leave":
        await call.leave()
        return {"action": "leave", "at_s": at_s}
    record: dict[str, Any] = {"action": step.action, "text": step.text}
    reply_from = at_s
    if step.action == "type":
        await call.type(step.text)
    else:
        if step.action == "barge_in":
            spoke_over = await call.until(lambda: call.agent_state() == "speaking", within_s=plan.timeout_s)
            record["agent_speaking"] = spoke_over
            at_s = call.now()
        pcm = speech[step.text]
        # A reply starts after the words do: what the agent began saying while the caller spoke (the speech the
        # caller talked over) is not one.
        reply_from = at_s + len(pcm) / 2 / MIC_RATE
        await call.say(pcm)
    await call.until(functools.partial(call.answered_since, reply_from), within_s=plan.timeout_s)
    replies = call.agent_segments(since_s=reply_from)
    return {
        **record,
        "at_s": at_s,
        "reply": " ".join(s.text.strip() for s in replies) or None,
        "reply_s": replies[0].at_s if replies else None,
    }


async def _delete_room(lk: api.LiveKitAPI, plan: CallPlan) -> bool:
    if plan.keep:
        return False
    try:
        await lk.room.delete_room(api.DeleteRoomRequest(room=plan.room))
    except (api.TwirpError, aiohttp.ClientError, OSError):
        return False
    return True
