"""Durable file writes for the events' sinks: a file is replaced whole, or not at all, and survives a power cut.

`write_atomically` writes into a temporary file beside the target (``.tmp-*``, mode 0600: events hold caller data),
flushes and fsyncs it, renames it over the target and fsyncs the directory, so a reader sees the old file or the
new one, never a torn one, and a crash right after the call loses neither. A ``.tmp-*`` file left behind is the
trace of a crash mid-write.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Final

TEMP_PREFIX: Final = ".tmp-"


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
