#!/bin/sh
# The image's install and bake steps, one script: the Dockerfile runs it, and tests/image/test_build_script.py runs
# the same steps in a clean venv (no container engine is needed to test what the image gets).
#
#   build.sh deps VENV LOCK   a new venv with the lock's packages only, each file checked against its hash
#   build.sh bake VENV APP    in APP (agent/, config/, prompts/): plugin model files, the offline speech models
#                             loaded once (they ship in wheels; loading proves them complete), every knowledge
#                             collection indexed into config/knowledge/<id>/.index, bytecode compiled
#
# PYTHON names the interpreter that makes the venv (default: python). pip reads its usual environment: PIP_NO_INDEX and PIP_FIND_LINKS install from a local wheelhouse instead of PyPI.
set -eu

usage() {
  echo "usage: build.sh deps VENV LOCK | build.sh bake VENV APP" >&2
  exit 2
}

deps() {
  "${PYTHON:-python}" -m venv "$1"
  "$1/bin/python" -m pip install --quiet --require-hashes --requirement "$2"
}

bake() {
  python="$1/bin/python"
  cd "$2"
  # The image runs the agent from APP (PYTHONPATH); it is not installed into the venv.
  export PYTHONPATH="$2" HF_HUB_OFFLINE=1 WEBCALL_CONFIG_DIR="$2/config"
  "$python" -m agent download-files
  "$python" -c "from agent.offline.whisper_stt import WhisperSTT; from agent.offline.piper_tts import PiperTTS; WhisperSTT.load(); PiperTTS.load()"
  "$python" -m agent index
  "$python" -m compileall -q -j 0 "$1/lib" "$2/agent"
}

[ $# -eq 3 ] || usage
case "$1" in
  deps) deps "$2" "$3" ;;
  bake) bake "$2" "$3" ;;
  *) usage ;;
esac
