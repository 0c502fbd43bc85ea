"""Durable file writes for the events' sinks: a file is replaced whole, or not at all, and survives a power cut.

`write_atomically` writes into a temporary file beside the target (``.tmp-*``, mode 0600: events hold caller data),
flushes and fsyncs it, renames it over the target and fsyncs the directory, so a reader sees the old file or the
new one, never a torn one, and a crash right after the call loses neither. A ``.tmp-*`` file left behind is the
trace of a crash mid-write.

`run_blocking` runs such a step in a thread, off the event loop, and never lets a cancellation abandon it halfway.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

TEMP_PREFIX: Final = ".tmp-"

T = TypeVar("T")


def write_atomically(path: Path, data: bytes) -> None:
    """Blocking: replace `path` with `data` durably (see the module docstring)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Blocking: make a rename or creation in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def run_blocking(step: Callable[[], T], *, undo: Callable[[T], object] | None = None) -> T:
    """Run the blocking `step` in a thread. A caller cancelled meanwhile still waits for the step to finish, hands
    its result (if it made one) to `undo`, then re-raises: a lock is never released while a step under it is still
    moving files, and what the step made is not left behind."""
    running = asyncio.ensure_future(asyncio.to_thread(step))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        await asyncio.wait([running])
        if undo is not None and not running.cancelled() and running.exception() is None:
            undo(running.result())
        raise
