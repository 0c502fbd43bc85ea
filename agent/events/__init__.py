"""Call events: ``call.started`` and ``call.ended`` per call, to a JSONL spool and/or a signed webhook.

- `payload`: the events' JSON, built purely from the call's config, transcript and usage;
- `prices`: the price table (``config/prices.yaml``) and the estimated cost;
- `signing`: HMAC-SHA256 signatures (and how a receiver verifies one);
- `spool`, `webhook`: the sinks; `files`: the durable write both the spool and the outbox use;
- `outbox`: every webhook event on disk until the receiver has it (write-ahead, pending, dead, corrupt);
- `redelivery`: `Redeliverer`, which re-sends the outbox's pending events (in the worker's main process);
- `cli`: ``python -m agent events outbox|redeliver``;
- `emitter`: `CallEvents`, the one object the worker uses.
"""

from agent.events.emitter import CallEvents
from agent.events.payload import Event

__all__ = ["CallEvents", "Event"]
