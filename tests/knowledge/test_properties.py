"""Properties of the pure text helpers, over arbitrary unicode."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.chat_limits import clean_text
from agent.documents import split_passages
from agent.framework import strip_markup


@given(st.text())
def test_clean_text_keeps_every_character_but_controls_other_than_newline_and_tab(text: str) -> None:
    cleaned = clean_text(text)
    assert all(ch in "\n\t" or unicodedata.category(ch) != "Cc" for ch in cleaned)
    assert cleaned == "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")


@given(st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=300))
def test_text_without_angle_brackets_passes_the_markup_stripper_unchanged_up_to_outer_whitespace(text: str) -> None:
    assert strip_markup(text) == text.strip()


@settings(max_examples=200)
@given(st.text(alphabet=st.characters(blacklist_characters="#"), min_size=1, max_size=3000), st.integers(40, 800))
def test_passages_never_exceed_the_limit_and_keep_every_character_in_order(text: str, limit: int) -> None:
    passages = split_passages(text, source="c/d.md", max_chars=limit)
    assert all(len(p.text) <= limit for p in passages)
    assert "".join("".join(p.text.split()) for p in passages) == "".join(text.split())


def test_markdown_heading_lines_become_titles_not_passage_text() -> None:
    passages = split_passages("# Parking\nLevel 2.\n\n## Bikes\n\nRacks by the door.", source="c/d.md")
    assert [(p.title, p.text) for p in passages] == [("Parking", "Level 2."), ("Bikes", "Racks by the door.")]
