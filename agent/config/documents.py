"""Untrusted JSON in: one loader that checks size, depth, numbers and shape before anything reads a document.

Every metadata string (room, dispatch, participant) and every JSON string nested in one goes through
`load_document`. It returns a plain ``dict`` of JSON values, or raises `MetadataError` with a stable ``code``:

    not_utf8            bytes that are not UTF-8
    too_large           over 512 KiB (LiveKit's limit for dispatch metadata), measured in UTF-8 bytes
    invalid_json        not JSON (including integers past Python's digit limit)
    non_finite_number   NaN, Infinity, or a float that overflows to infinity (1e400)
    too_deep            containers nested deeper than 32
    not_an_object       valid JSON, but not an object (after unwrapping JSON-in-a-string twice at most)

Strings are returned with lone surrogates (legal in JSON's ``\\ud800`` escapes, illegal in UTF-8) replaced by
U+FFFD, so that nothing downstream fails to encode them. Errors never contain input text.
"""

from __future__ import annotations

import json
import math
import re
from typing import Final

from agent.errors import MetadataError

MAX_DOCUMENT_BYTES: Final = 512 * 1024
MAX_DEPTH: Final = 32
# A platform that JSON-encodes its metadata before putting it into a JSON field produces a string holding an
# object; two levels of that are unwrapped, more is not a shape anyone sends on purpose.
_MAX_UNWRAPS: Final = 2
_SURROGATE = re.compile("[\ud800-\udfff]")


def load_document(text: str | bytes, *, source: str) -> dict[str, object]:
    """Parse one untrusted document into a JSON object, or raise `MetadataError`.

    Args:
        text: the document as received; bytes must be UTF-8.
        source: where it came from (``job_metadata``...), recorded on the error.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise MetadataError("not_utf8", source=source) from None
    value = _parse(text, source=source)
    for _ in range(_MAX_UNWRAPS):
        if not isinstance(value, str):
            break
        try:
            value = _parse(value, source=source)
        except MetadataError as exc:
            # A JSON string that does not hold JSON is valid JSON that is not an object.
            raise MetadataError("not_an_object" if exc.code == "invalid_json" else exc.code, source=source) from None
    if not isinstance(value, dict):
        raise MetadataError("not_an_object", source=source)
    return _clean_strings(value)


def nested_object(value: object, *, source: str) -> dict[str, object]:
    """A JSON object found inside a document: an object as is, or a string holding one (checked like a document)."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        return load_document(value, source=source)
    raise MetadataError("not_an_object", source=source)


def _parse(text: str, *, source: str) -> object:
    if len(text) > MAX_DOCUMENT_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise MetadataError("too_large", source=source)
    try:
        value: object = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except _NonFinite:
        raise MetadataError("non_finite_number", source=source) from None
    except RecursionError:
        raise MetadataError("too_deep", source=source) from None
    except ValueError:
        raise MetadataError("invalid_json", source=source) from None
    if _depth_exceeds(value, MAX_DEPTH):
        raise MetadataError("too_deep", source=source)
    return value


class _NonFinite(Exception):
    pass


def _reject_constant(_name: str) -> float:
    raise _NonFinite


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NonFinite
    return number


def _depth_exceeds(value: object, limit: int) -> bool:
    """Iterative, so that a hostile document cannot exhaust the stack here either."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: list[object] = list(node.values())
        elif isinstance(node, list):
            children = list(node)
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _clean_strings(value: dict[str, object]) -> dict[str, object]:
    return {_clean_str(key): _clean(item) for key, item in value.items()}


def _clean(value: object) -> object:
    # Recursion is bounded: `_parse` has already rejected anything deeper than MAX_DEPTH.
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, dict):
        return _clean_strings(value)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    return value


def _clean_str(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text
