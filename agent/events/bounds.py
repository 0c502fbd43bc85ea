"""Size bounds of an event's JSON: receivers refuse large bodies (413), and a refused ``call.ended`` is dead.

`bounded` returns a body whose compact UTF-8 JSON (`Event.to_json`) fits in `max_bytes`, cutting only while it is
still too large, in this order:

1. ``incidents`` after the first `KEPT_INCIDENTS`;
2. ``transcript`` items from the middle: the first and the last items are kept, about half the room each;
3. ``call.metadata``, replaced by ``call.metadata_keys`` (its sorted top-level keys).

What was cut is counted under ``"truncated": {"incidents": <dropped>, "transcript_items": <dropped>,
"metadata": true}`` (only the keys of the steps taken); a body that fits as it is has no ``truncated`` key. Each
transcript item's text is capped before this (`MAX_ITEM_CHARS`, in `agent.events.payload`). Metadata documents are
capped at 512 KiB when read, so with the default 512 KiB bound step 3 is the last resort it looks like.
"""

from __future__ import annotations

import json
from typing import Final

KEPT_INCIDENTS: Final = 20
# Room left for the ``truncated`` marker itself when the transcript's share is computed.
MARKER_ROOM: Final = 128


def size_of(value: object) -> int:
    """Bytes of `value` as compact UTF-8 JSON, the way `Event.to_json` encodes it."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def bounded(body: dict[str, object], *, max_bytes: int) -> dict[str, object]:
    """`body`, cut to fit in `max_bytes` as described in the module docstring (`body` itself is not changed)."""
    if size_of(body) <= max_bytes:
        return body
    out = dict(body)
    cut: dict[str, object] = {}
    incidents = out.get("incidents")
    if isinstance(incidents, list) and len(incidents) > KEPT_INCIDENTS:
        out["incidents"] = incidents[:KEPT_INCIDENTS]
        cut["incidents"] = len(incidents) - KEPT_INCIDENTS
        out["truncated"] = cut
    transcript = out.get("transcript")
    if isinstance(transcript, list) and size_of(out) > max_bytes:
        out["transcript"] = []
        room = max_bytes - size_of(out) - MARKER_ROOM
        kept = _head_and_tail(transcript, room=room)
        out["transcript"] = kept
        cut["transcript_items"] = len(transcript) - len(kept)
        out["truncated"] = cut
    call = out.get("call")
    if isinstance(call, dict) and isinstance(call.get("metadata"), dict) and size_of(out) > max_bytes:
        metadata = call["metadata"]
        out["call"] = {k: v for k, v in call.items() if k != "metadata"} | {"metadata_keys": sorted(metadata)}
        cut["metadata"] = True
        out["truncated"] = cut
    return out


def _head_and_tail(items: list[object], *, room: int) -> list[object]:
    """As many of the first items as fit in half of `room`, then as many of the last as fit in what is left."""
    sizes = [size_of(item) + 1 for item in items]
    head = 0
    used = 0
    while head < len(items) and used + sizes[head] <= room // 2:
        used += sizes[head]
        head += 1
    tail = len(items)
    while tail > head and used + sizes[tail - 1] <= room:
        tail -= 1
        used += sizes[tail]
    return items[:head] + items[tail:]
