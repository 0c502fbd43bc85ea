"""The sandbox: a LiveKit-compatible loopback server and fake providers for tests, demos and QA.

Nothing here is production media infrastructure, and nothing here imports the ``agent`` package. The server lives in
``sandbox.server`` (``python -m sandbox`` serves it with ``livekit-server --dev`` defaults); the fake OpenAI and
Deepgram providers live in ``sandbox.providers`` (``python -m sandbox providers ...``).
"""
