"""`agent.chat_order.ArrivalOrder`: typed messages handed on in the order their streams began."""

from __future__ import annotations

import asyncio

from agent.chat_order import ArrivalOrder


class Stream:
    """A text stream whose read ends when the test says so."""

    def __init__(self) -> None:
        self._text: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def end(self, text: str) -> None:
        self._text.set_result(text)

    def fail(self) -> None:
        self._text.set_exception(ConnectionError("stream aborted"))

    async def read_all(self) -> str:
        return await self._text


async def settled() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_message_whose_read_ends_first_waits_for_the_one_that_began_before_it() -> None:
    handed: list[tuple[str, str]] = []
    order = ArrivalOrder(deliver=lambda text, speaker: handed.append((text, speaker)))
    first, second = Stream(), Stream()
    order.read(first, "caller")
    order.read(second, "caller")

    second.end("4711")
    await settled()
    assert handed == []
    first.end("my order number is")
    await settled()

    assert handed == [("my order number is", "caller"), ("4711", "caller")]
    await order.aclose()


async def test_a_stream_that_fails_to_read_holds_nothing_and_is_not_handed_on() -> None:
    handed: list[str] = []
    order = ArrivalOrder(deliver=lambda text, speaker: handed.append(text))
    broken, after = Stream(), Stream()
    order.read(broken, "caller")
    order.read(after, "caller")

    after.end("still here?")
    broken.fail()
    await settled()

    assert handed == ["still here?"]
    await order.aclose()


async def test_a_stalled_stream_stops_holding_later_messages_after_the_hold_and_follows_when_it_ends() -> None:
    handed: list[str] = []
    order = ArrivalOrder(deliver=lambda text, speaker: handed.append(text), hold_s=0.05)
    stalled, quick, later = Stream(), Stream(), Stream()
    order.read(stalled, "caller")
    order.read(quick, "caller")
    quick.end("hello?")
    await settled()
    assert handed == []

    async with asyncio.timeout(5):
        while handed != ["hello?"]:  # noqa: ASYNC110 - the hold is a timer inside ArrivalOrder
            await asyncio.sleep(0.01)
    order.read(later, "caller")
    later.end("anyone?")
    await settled()
    stalled.end("a very long message")
    await settled()

    assert handed == ["hello?", "anyone?", "a very long message"]
    await order.aclose()


async def test_closing_drops_what_is_still_being_read() -> None:
    handed: list[str] = []
    order = ArrivalOrder(deliver=lambda text, speaker: handed.append(text))
    pending = Stream()
    order.read(pending, "caller")
    await order.aclose()
    pending.end("too late")
    await settled()

    assert handed == []
