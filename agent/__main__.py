"""``python -m agent COMMAND ...``: see `agent.cli` (``python -m agent --help`` lists the commands).

Nothing else is imported here: `agent.cli` sets ``PROMETHEUS_MULTIPROC_DIR`` for a worker command before the
worker's modules, and prometheus_client with them, are imported.
"""

from __future__ import annotations

from agent.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
