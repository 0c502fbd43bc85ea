"""Call events: ``call.started`` and ``call.ended`` per call, to a JSONL spool and/or a signed webhook.

- `payload`: the events' JSON, built purely from the call's config, transcript and usage; `bounds`: its size cap;
- `prices`: the price table (``config/prices.yaml``) and the estimated cost;
- `signing`: Standard Webhooks signatures (and the legacy ``Webcall-Signature``);
- `spool`: the JSONL sink; `files`: the durable write both the spool and the outbox use;
- `outbox` (with `record`, `locks`): the file store holding every webhook event until the receiver has it;
- `webhook`: the sender (one signed POST); `policy`: the one status table and the retry schedules;
- `delivery`: `WebhookSink`, the live send composing the three; `sinks`: where the sinks are built from the settings;
- `redelivery`: `Redeliverer`, which re-sends the outbox's pending events (in the worker's main process);
- `cli`: ``python -m agent events outbox|redeliver|replay-dead|new-secret``;
- `emitter`: `CallEvents`, the one object the worker uses.
"""

from agent.events.emitter import CallEvents
from agent.events.payload import Event

__all__ = ["CallEvents", "Event"]
