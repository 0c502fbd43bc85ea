"""The dev page in a real browser: Debian's Chromium, driven by Playwright, against ``run-local``'s whole stack.

Chromium's fake microphone plays an espeak-ng WAV (a question between silences), so the spoken turn is real speech
through the browser's WebRTC stack, the sandbox, the fake Deepgram (whisper) and back as the agent's voice. Every
wait is bounded. Set ``WEBCALL_SCREENSHOTS_DIR=docs`` to refresh the README's screenshots.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.dev_stack import DevStack

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Debian chromium is not installed at /usr/bin/chromium (apt-get install chromium)", allow_module_level=True
    )

from playwright.async_api import BrowserContext, Page, async_playwright, expect  # noqa: E402 - only once chromium exists

pytestmark = [pytest.mark.e2e]
# Read at import: the suite's autouse fixture clears WEBCALL_* variables before each test.
SCREENSHOTS_DIR = os.environ.get("WEBCALL_SCREENSHOTS_DIR")

QUESTION = "What time does the shop open tomorrow?"
WAIT_MS = 60_000
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


def spoken_question(path: Path) -> Path:
    """The question in espeak-ng's voice, with 1 s of silence before and 3 s after (so the turn ends)."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(raw), QUESTION], check=True, timeout=30)
    with wave.open(str(raw), "rb") as source:
        params, frames = source.getparams(), source.readframes(source.getnframes())
    silence = b"\0" * params.sampwidth * params.nchannels
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(silence * params.framerate + frames + silence * params.framerate * 3)
    return path


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required for the fake microphone (apt-get install espeak-ng)")
    wav = spoken_question(tmp_path / "question.wav")
    async with async_playwright() as playwright:
        # A fresh --user-data-dir: Playwright passes it for a persistent context (it refuses it in `args`).
        launched = await playwright.chromium.launch_persistent_context(
            tmp_path / "profile",
            executable_path=str(CHROMIUM),
            args=[*LAUNCH_FLAGS, f"--use-file-for-fake-audio-capture={wav}%noloop"],
            viewport={"width": 1366, "height": 820},
            timeout=WAIT_MS,
        )
        try:
            yield launched
        finally:
            await launched.close()


async def shoot(page: Page, name: str) -> None:
    if SCREENSHOTS_DIR:
        await page.screenshot(path=str(Path(SCREENSHOTS_DIR) / name))


# Runs in the page: `page` is app.js's state, `page.room` its livekit-client Room.
LEGACY_CHAT = """async (text) => {
  const room = page.room;
  const reply = new Promise((resolve) => {
    room.on(LivekitClient.RoomEvent.ChatMessage, (message, from) => {
      if (from && from.identity !== room.localParticipant.identity) resolve(message.message);
    });
  });
  await room.localParticipant.sendChatMessage(text);
  const late = new Promise((_, reject) => setTimeout(() => reject(new Error("no ChatMessage reply")), 60000));
  return await Promise.race([reply, late]);
}"""


async def test_a_caller_in_chromium_is_welcomed_answered_typed_and_spoken_and_sees_config_and_events(
    dev_stack: DevStack, browser: BrowserContext
) -> None:
    page = await browser.new_page()
    page.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    await page.goto(dev_stack.page_url)

    # The page loads with the examples offered; a Sawt case is ready to dispatch, editable.
    await expect(page.get_by_label("Example payload")).to_have_value("sawt/arabic_on_deepgram")
    await page.get_by_label("Example payload").select_option("sawt/documented_body")
    await expect(page.get_by_label("Dispatch metadata")).to_have_value(re.compile('"userRef": "user_12345"'))
    await page.get_by_label("Microphone on when the call starts").uncheck()
    await page.get_by_role("button", name="Start call").click()

    # The welcome is shown (lk.transcription) and heard (the agent meter's WebAudio level).
    transcript = page.locator("#transcript")
    welcome = transcript.locator(".entry.agent", has_text="Hello Mohammed, welcome to support")
    await expect(welcome).to_have_attribute("data-final", "true")
    await page.wait_for_function("Number(document.getElementById('agent-level').dataset.peak) > 0.05", timeout=WAIT_MS)
    await expect(page.locator("#agent-state")).to_have_attribute("data-state", "listening")

    # The config panel shows the dialect and where each value came from, with caller data redacted.
    await expect(page.locator("#config-summary")).to_have_attribute("data-dialect", "sawt")
    user_ref = page.locator('#config-table tr[data-field="call.user_ref"]')
    await expect(user_ref.locator(".source")).to_have_text("job_metadata")
    variable = page.locator('#config-table tr[data-field="variables.customer_name"]')
    await expect(variable.locator(".value")).to_have_text("[redacted]")
    await expect(page.locator('#config-table tr[data-field="welcome.text"] .source')).to_have_text("profile")

    # The call events as the worker's webhook posted them.
    await expect(page.locator('#events li[data-type="call.started"]')).to_have_count(1)

    # Typed on lk.chat (Enter sends), answered by the fake LLM's echo.
    chat = page.get_by_label("Message to the agent (sent on lk.chat)")
    await expect(chat).to_be_focused()
    await chat.fill("Do you deliver to Dubai?")
    await chat.press("Enter")
    await expect(transcript.locator(".entry.user", has_text="Do you deliver to Dubai?")).to_have_count(1)
    await expect(transcript.locator(".entry.agent", has_text="You said: Do you deliver to Dubai?")).to_have_count(1)
    await expect(page.locator("#latency tbody tr")).to_have_count(1)
    await expect(page.locator("#latency tbody tr").first.locator("td").nth(2)).to_have_text(re.compile(r"^\d+ ms$"))
    await shoot(page, "page-chat.png")

    # livekit-client's deprecated sendChatMessage() (a ChatMessage data packet) is answered too: on lk.transcription,
    # and back as a ChatMessage (RoomEvent.ChatMessage), which is what a frontend built on it shows.
    legacy_reply = await page.evaluate(LEGACY_CHAT, "Is parking free?")
    assert legacy_reply == "You said: Is parking free?"
    await expect(transcript.locator(".entry.agent", has_text="You said: Is parking free?")).to_have_count(1)

    # Spoken: the microphone plays the question; the caller's transcript and the agent's answer both appear.
    await page.get_by_role("button", name="Microphone off").click()
    await expect(page.get_by_role("button", name="Microphone on")).to_have_attribute("aria-pressed", "true")
    spoken = transcript.locator('.entry.user[data-channel="voice"][data-final="true"]', has_text="shop")
    await expect(spoken).to_have_count(1, timeout=90_000)
    answer = transcript.locator(".entry.agent", has_text="You said:").filter(has_text="shop")
    await expect(answer).to_have_count(1, timeout=90_000)
    await expect(page.locator("#latency tbody tr")).to_have_count(2)
    await shoot(page, "page.png")

    # Hanging up ends the call: call.ended arrives from the worker's webhook.
    await page.get_by_role("button", name="Hang up").click()
    await expect(page.locator('#events li[data-type="call.ended"]')).to_have_count(1)
    await expect(page.locator("#status")).to_have_text("Call ended")
    await page.locator('#events li[data-type="call.ended"] summary').click()
    await shoot(page, "page-events.png")
