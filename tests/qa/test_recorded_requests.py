"""``GET /sandbox/requests?since=N`` on a fake provider: what QA reads to see what the providers were asked for."""

from __future__ import annotations

import aiohttp

from sandbox.providers import FakeOpenAI


async def test_the_recorded_requests_are_listed_from_an_offset_without_the_control_requests() -> None:
    async with FakeOpenAI() as fake, aiohttp.ClientSession(headers={"Authorization": "Bearer sk-test"}) as http:
        for text in ("first", "second"):
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], "stream": False}
            async with http.post(f"{fake.base_url}/chat/completions", json=body) as answer:
                assert answer.status == 200
        async with http.get(f"{fake.origin}/sandbox/requests") as answer:
            everything = await answer.json()
        async with http.get(f"{fake.origin}/sandbox/requests", params={"since": "1"}) as answer:
            later = await answer.json()
        async with http.get(f"{fake.origin}/sandbox/requests", params={"since": "soon"}) as answer:
            refused = answer.status

    assert everything["next"] == 2, "the listing itself is not recorded"
    assert [r["json"]["messages"][0]["content"] for r in everything["requests"]] == ["first", "second"]
    assert [r["json"]["messages"][0]["content"] for r in later["requests"]] == ["second"]
    assert later["requests"][0]["path"] == "/v1/chat/completions"
    assert later["requests"][0]["auth_scheme"] == "Bearer"
    assert "audio" not in later["requests"][0]
    assert later["requests"][0]["audio_bytes"] == 0
    assert refused == 400
