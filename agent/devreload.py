"""The development worker of a local run, restarted when its code changes (`watchfiles`).

`run_worker` starts ``python -m agent dev`` and watches Python files under the given directories (the ``agent``
package by default). A change (debounced, so one save of several files is one restart) stops the worker with SIGINT
(killed if it is still running after `STOP_WITHIN_S`) and starts a new one with the same environment; the sandbox
server, the fakes and the dev page are not touched. A call in progress ends with the old worker. A worker that
exits by itself (a syntax error, a bad setting) is reported and started again at the next change. Ctrl-C or SIGTERM
(raised as `KeyboardInterrupt` in the main thread) ends the watch and stops the worker.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import watchfiles

AGENT_PACKAGE: Final = Path(__file__).resolve().parent
STOP_WITHIN_S: Final = 20.0


def stop_process(process: subprocess.Popen[str]) -> None:
    """SIGINT `process`, wait for it, kill it after `STOP_WITHIN_S`."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class _Worker:
    """One worker process; an exit it was not asked for is reported."""

    def __init__(self, start: Callable[[], subprocess.Popen[str]]) -> None:
        self.process = start()
        self._stopping = threading.Event()
        threading.Thread(target=self._report_exit, daemon=True).start()

    def _report_exit(self) -> None:
        code = self.process.wait()
        if not self._stopping.is_set():
            print(f"the worker exited (code {code}); it starts again when a file changes", file=sys.stderr, flush=True)

    def stop(self) -> None:
        self._stopping.set()
        stop_process(self.process)


def run_worker(start: Callable[[], subprocess.Popen[str]], *, paths: Sequence[Path] = (AGENT_PACKAGE,)) -> None:
    """Run the worker `start` makes, restarting it on every change to a Python file under `paths`, until
    interrupted; then stop it."""
    worker = _Worker(start)
    try:
        for changes in watchfiles.watch(*paths, watch_filter=watchfiles.PythonFilter(), raise_interrupt=True):
            names = sorted({Path(path).name for _, path in changes})
            print(f"code changed ({', '.join(names)}): restarting the worker", flush=True)
            worker.stop()
            worker = _Worker(start)
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()
