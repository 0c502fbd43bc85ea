"""Safe loading of untrusted metadata: size, depth, numbers, shape, JSON in a string."""

from __future__ import annotations

import json

import pytest

from agent.config.documents import MAX_DEPTH, MAX_DOCUMENT_BYTES, load_document, nested_object
from agent.errors import MetadataError


def error_code(text: str | bytes) -> str:
    with pytest.raises(MetadataError) as info:
        load_document(text, source="job_metadata")
    assert info.value.source == "job_metadata"
    return info.value.code


def test_an_object_is_returned_as_a_dict() -> None:
    assert load_document('{"a": [1, {"b": null}]}', source="job_metadata") == {"a": [1, {"b": None}]}


def test_bytes_must_be_utf8() -> None:
    assert load_document('{"a": "é"}'.encode(), source="job_metadata") == {"a": "é"}
    assert error_code(b'{"a": "\xff"}') == "not_utf8"


def test_a_document_over_512_kib_is_too_large() -> None:
    padding = "x" * (MAX_DOCUMENT_BYTES - len('{"a": ""}'))
    assert load_document(json.dumps({"a": padding}), source="job_metadata")["a"] == padding
    assert error_code(json.dumps({"a": padding + "x"})) == "too_large"


def test_size_counts_utf8_bytes_not_characters() -> None:
    # 200k three-byte characters: 600 KB in UTF-8 although only 200k characters long.
    assert error_code(json.dumps({"a": "€" * 200_000}, ensure_ascii=False)) == "too_large"


def test_nesting_up_to_32_is_accepted_and_deeper_is_not() -> None:
    def nested(depth: int) -> str:
        return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)

    assert load_document(nested(MAX_DEPTH), source="job_metadata")
    assert error_code(nested(MAX_DEPTH + 1)) == "too_deep"


def test_nesting_that_would_exhaust_the_parser_is_too_deep() -> None:
    assert error_code("[" * 200_000 + "]" * 200_000) == "too_deep"


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}', '{"a": 1e400}'])
def test_non_finite_numbers_are_refused(text: str) -> None:
    assert error_code(text) == "non_finite_number"


@pytest.mark.parametrize("text", ["", "not json", "{'a': 1}", '{"a": 1', '{"a": ' + "1" * 5000 + "}"])
def test_text_that_is_not_json_is_invalid(text: str) -> None:
    assert error_code(text) == "invalid_json"


@pytest.mark.parametrize("text", ["[1, 2]", '"text"', "42", "null", "true"])
def test_json_that_is_not_an_object_is_refused(text: str) -> None:
    assert error_code(text) == "not_an_object"


def test_json_in_a_string_is_unwrapped_twice_at_most() -> None:
    once = json.dumps(json.dumps({"a": 1}))
    twice = json.dumps(once)
    assert load_document(once, source="job_metadata") == {"a": 1}
    assert load_document(twice, source="job_metadata") == {"a": 1}
    assert error_code(json.dumps(twice)) == "not_an_object"


def test_lone_surrogates_become_replacement_characters() -> None:
    document = load_document('{"a\\ud800": ["\\udfff x"]}', source="job_metadata")
    assert document == {"a\ufffd": ["\ufffd x"]}
    json.dumps(document, ensure_ascii=False).encode("utf-8")


def test_a_nested_object_may_be_given_as_json_text() -> None:
    assert nested_object('{"b": 2}', source="job_metadata") == {"b": 2}
    assert nested_object({"b": 2}, source="job_metadata") == {"b": 2}
    with pytest.raises(MetadataError):
        nested_object(["b"], source="job_metadata")
