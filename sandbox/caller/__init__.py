"""``python -m sandbox call``: the QA caller. Dispatches the agent into a room from the shell and reports what a
caller got.

Owns one scripted call against any LiveKit server (the bundled sandbox by default): optionally create the room with
metadata (``RoomService.CreateRoom``), join it as a browser does (a published, silent microphone; participant
attributes and metadata), dispatch the agent (``AgentDispatchService.CreateDispatch``) with job metadata, wait for the
welcome, then type on ``lk.chat`` and speak espeak-ng audio into the microphone, step by step, and listen a while.
The first step waits until the welcome has been spoken, each next one until the agent has answered the last (each
wait capped by ``--timeout``); ``--barge-in`` speaks as soon as the agent is speaking, ``--wait`` stays silent,
``--leave`` disconnects. Golden cases of ``config/examples/`` are replayed by ``python -m agent qa call --example``,
which reads them and hands this caller a `Preset` (the sandbox imports nothing of ``agent``).

One module per job: `plan` (the plan, its steps, the error), `speech` (espeak-ng utterances), `participant` (the
room participant: what it hears and reads, its microphone), `script` (running a plan), `report` (the report's
schema), `cli` (arguments and exit codes).

The report is one JSON object on stdout; times are seconds since the dispatch request was sent; ``transcript`` holds
every ``lk.transcription`` segment and ``lk.chat`` message the caller received, the agent's and the agent's
transcription of the caller; the WAV is the agent's voice track (not its ``background_audio``) as received, from
``first_frame_s``::

    {"ok": true, "room": "qa-1a2b3c4d", "dispatch_id": "AD_...",
     "welcome": {"text": "Hello! How can I help you today?", "first_audio_s": 0.41, "first_text_s": 0.43},
     "agent": {"identity": "agent-AJ_...", "joined_s": 0.08, "attributes": {"lk.agent.state": "listening"},
               "states": [{"state": "speaking", "at_s": 0.4}, ...]},
     "transcript": [{"speaker": "agent", "topic": "lk.transcription", "text": "...", "at_s": 0.43, "final": true}],
     "steps": [{"action": "type", "text": "...", "at_s": 3.1, "reply": "You said: ...", "reply_s": 3.2}],
     "audio": {"tracks": [{"name": "...", "audible_s": 2.1, "first_audio_s": 0.41, "peak_dbfs": -3.2}],
               "record": "out.wav", "record_s": 9.8},
     "room_deleted": true}

Exit codes: 0 when a welcome was heard (an audible agent frame) or read (agent text) within ``--timeout``; 1 when
not; 2 on bad arguments, an unreadable file, an unreachable server or refused credentials (one line on stderr).
The API secret and join token never appear in the output. Imports nothing of ``agent``.
"""

from sandbox.caller.cli import main, plan_from_args
from sandbox.caller.plan import CallerError, CallPlan, Preset, Step
from sandbox.caller.script import run_call

__all__ = ["CallPlan", "CallerError", "Preset", "Step", "main", "plan_from_args", "run_call"]
