"""Prompt templates: {{name}}, {{name | fallback}}, values as data."""

from __future__ import annotations

from agent.config.templating import MAX_VALUE_CHARS, render
from tests.config.conftest import Resolve, codes


def test_a_variable_is_replaced_by_its_value() -> None:
    assert render("Hi {{name}}!", {"name": "Ada"}).text == "Hi Ada!"


def test_spaces_inside_the_braces_are_allowed() -> None:
    assert render("Hi {{  name  |  friend  }}!", {}).text == "Hi friend!"


def test_a_fallback_is_used_when_the_variable_is_missing_or_empty() -> None:
    assert render("Hi {{name | there}}", {}).text == "Hi there"
    assert render("Hi {{name | there}}", {"name": ""}).text == "Hi there"


def test_a_missing_variable_without_fallback_renders_empty_and_is_reported() -> None:
    rendered = render("Hi {{name}}, {{name}} and {{other}}.", {})
    assert rendered.text == "Hi ,  and ."
    assert rendered.missing == ("name", "other")


def test_an_empty_value_without_fallback_is_not_missing() -> None:
    assert render("[{{name}}]", {"name": ""}).missing == ()


def test_values_are_not_expanded_again() -> None:
    rendered = render("{{a}}", {"a": "{{b}}", "b": "secret"})
    assert rendered.text == "{{b}}"


def test_values_are_inserted_as_text_never_evaluated() -> None:
    value = "{0.__class__} %(x)s ${HOME} `id`"
    assert render("{{v}}", {"v": value}).text == value


def test_literal_braces_survive() -> None:
    template = 'Reply as JSON: {"ok": true}. Sets look like {a, b}. {{ not a tag }} {{}} { {x} } }}{{'
    assert render(template, {"x": "X"}).text == template


def test_inserted_values_lose_control_characters_and_are_cut() -> None:
    assert render("{{v}}", {"v": "a\x00b\x1bc"}).text == "a b c"
    assert len(render("{{v}}", {"v": "x" * (MAX_VALUE_CHARS + 50)}).text) == MAX_VALUE_CHARS


def test_unicode_values_and_names_of_every_kind_render() -> None:
    assert render("{{n}} 👋", {"n": "محمد 山田 Zoë"}).text == "محمد 山田 Zoë 👋"


def test_resolve_warns_once_per_missing_variable_and_field(resolve: Resolve) -> None:
    config = resolve(job={"instructions": "{{who}} {{who}}", "welcome": {"text": "{{who}}"}})
    assert codes(config) == [("missing_variable", "variables.who")]
    assert config.instructions == " "


def test_pre_call_variables_are_usable_in_templates_but_kept_apart(resolve: Resolve) -> None:
    config = resolve(
        job={"agentId": "x", "metadata": {"preCallVariables": {"account_id": "ACC1"}}},
        room={"instructions": "Account {{account_id}}."},
    )
    assert config.instructions == "Account ACC1."
    assert config.variables == {}
    assert config.call.pre_call_variables == {"account_id": "ACC1"}


def test_variable_values_are_normalized_when_read(resolve: Resolve) -> None:
    config = resolve(job={"variables": {"v": "  two\nlines\t here "}, "instructions": "[{{v}}]"})
    assert config.instructions == "[two lines here]"


def test_variable_names_must_be_identifiers(resolve: Resolve) -> None:
    config = resolve(job={"variables": {"ok_name-1.x": "1", "bad name": "2", "": "3"}})
    assert config.variables == {"ok_name-1.x": "1"}
    assert codes(config) == [("invalid_value", "variables.bad_name"), ("invalid_value", "variables._")]


def test_instructions_may_come_from_a_prompt_file(resolve: Resolve) -> None:
    config = resolve(job={"instructions_file": "scribe.md"})
    assert config.instructions.startswith("You are the scribe of a group call.")
    assert config.provenance["instructions"] == "job_metadata"


def test_a_missing_prompt_file_keeps_the_profiles_instructions(resolve: Resolve) -> None:
    default = resolve().instructions
    config = resolve(job={"instructions_file": "nope.md"})
    assert config.instructions == default
    assert codes(config) == [("invalid_value", "instructions_file")]


def test_a_prompt_file_name_cannot_leave_the_prompts_directory(resolve: Resolve) -> None:
    for name in ("../README.md", "/etc/passwd", "sub/x.md", "..md", "x.py"):
        config = resolve(job={"instructions_file": name})
        assert codes(config) == [("invalid_value", "instructions_file")], name


def test_inline_instructions_win_over_a_file_in_the_same_document(resolve: Resolve) -> None:
    config = resolve(job={"instructions_file": "scribe.md", "instructions": "Inline."})
    assert config.instructions == "Inline."
    assert codes(config) == [("ignored_field", "instructions_file")]
