# One toolchain: `make run` sets up and runs the worker; `make test` sets up and runs every check.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test check lint types unit e2e lock bench

K8S_VALIDATE := deploy/k8s/validate/node_modules/.installed
WHEELHOUSE := .cache/wheelhouse

setup: $(STAMP) $(K8S_VALIDATE) $(WHEELHOUSE)/.downloaded

# The CRD validators the manifest tests use (npm, pinned by the lock).
$(K8S_VALIDATE): deploy/k8s/validate/package-lock.json
	npm ci --prefix deploy/k8s/validate --no-audit --no-fund --loglevel=error
	touch $(K8S_VALIDATE)

# The image's packages as wheels, hashes checked: tests/image builds the image's venv from them, offline (the tests
# run in a network namespace).
$(WHEELHOUSE)/.downloaded: requirements-runtime.lock | $(STAMP)
	$(PY) -m pip download -q --require-hashes --no-deps -r requirements-runtime.lock -d $(WHEELHOUSE)
	touch $@

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[offline,sandbox,dev]'
	touch $(STAMP)

# Runs the dev stack: a worker restarted on code changes, the sandbox server (unless LIVEKIT_URL), the fake providers
# for what has no key, and the dev page, its URL printed; see README. Only the venv: the test tools' npm validators
# and the image's wheels are not needed to talk to the agent.
run: $(STAMP)
	$(PY) -m agent run-local

# Tests run inside a private user + network namespace that the run makes itself (lo and a veth pair,
# `python -m sandbox netns`), so WebRTC's connectivity checks never address anything outside it, not even this
# host's own interfaces. Where namespaces are not permitted, they fall back to the host's loopback, said loudly.
IN_NETNS := $(shell unshare -rn true >/dev/null 2>&1 && echo "$(PY) -m sandbox netns --")
ifeq ($(IN_NETNS),)
PYTEST = @echo "warning: no private network namespace here; tests use the host's loopback"; $(PY) -m pytest
else
PYTEST = $(IN_NETNS) $(PY) -m pytest
endif

lint: setup
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .

types: setup
	$(PY) -m mypy agent sandbox bench tests

unit: setup
	$(PYTEST) -q -m "not e2e"

e2e: setup
	$(PYTEST) -q -m e2e

check: lint types
	$(PYTEST) -q

test: check

# requirements.lock: every package of the dev venv ('.[offline,sandbox,dev]'), as installed. requirements-runtime.lock:
# the image's packages only (the runtime and offline extra), with hashes, at the versions requirements.lock pins
# (`--constraint`), so the image runs what the tests ran; the image installs it with `pip install --require-hashes`.
lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > requirements.lock
	$(PY) -m uv pip compile pyproject.toml --extra offline --constraint requirements.lock --generate-hashes \
	  --python-version 3.11 --python-platform linux --no-header --quiet --output-file requirements-runtime.lock
