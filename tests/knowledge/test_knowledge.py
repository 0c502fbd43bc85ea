"""Knowledge bases: reading Markdown, text and PDF, passages with source ids, BM25 search, caching, the tool."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Awaitable
from pathlib import Path

import pytest
from livekit.agents import llm

from agent import cli, documents, knowledge
from agent.config.call_config import CallConfig
from agent.config.collections import unknown_collection_warnings
from agent.settings import Settings
from tests.knowledge.pdf_writer import pdf_bytes

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "knowledge"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    shutil.copytree(SAMPLES, tmp_path / "knowledge", ignore=shutil.ignore_patterns(".index"))
    return tmp_path / "knowledge"


@pytest.fixture
def settings(root: Path) -> Settings:
    return Settings(WEBCALL_CONFIG_DIR=str(root.parent))


def test_a_fact_only_in_the_pdf_is_found_with_the_pdf_as_its_source(root: Path) -> None:
    collection = knowledge.load_collection("clinic", root=root)
    assert collection is not None
    hits = collection.search("what is the code for the garage barrier")
    assert hits[0].passage.source_id.startswith("clinic/parking-and-access.pdf#")
    assert "PELICAN-7731" in hits[0].passage.text


def test_markdown_headings_title_the_passages_under_them(root: Path) -> None:
    collection = knowledge.load_collection("clinic", root=root)
    assert collection is not None
    hit = collection.search("cancellation fee")[0]
    assert hit.passage.title == "Booking and cancelling"
    assert hit.passage.source_id == "clinic/hours-and-services.md#3"


def test_text_documents_are_searched_too(root: Path) -> None:
    collection = knowledge.load_collection("clinic", root=root)
    assert collection is not None
    assert collection.search("referral physiotherapy")[0].passage.source_id.startswith("clinic/faq.txt#")


def test_a_query_with_no_matching_word_returns_no_hits(root: Path) -> None:
    collection = knowledge.load_collection("clinic", root=root)
    assert collection is not None
    assert collection.search("zeppelin quasar") == []
    assert collection.search("   ") == []


def test_long_paragraphs_are_cut_into_passages_no_longer_than_the_limit() -> None:
    text = "# Title\n\n" + " ".join(f"Sentence number {i} is here." for i in range(200))
    passages = documents.split_passages(text, source="c/doc.md", max_chars=300)
    assert len(passages) > 5
    assert all(len(p.text) <= 300 for p in passages)
    assert [p.source_id for p in passages] == [f"c/doc.md#{i}" for i in range(len(passages))]
    assert all(p.title == "Title" for p in passages)


def test_a_collection_is_indexed_once_per_process_and_again_when_a_document_changes(root: Path) -> None:
    first = knowledge.load_collection("returns", root=root)
    assert knowledge.load_collection("returns", root=root) is first
    doc = root / "returns" / "policy.md"
    doc.write_text(doc.read_text() + "\n\n## Gift cards\n\nGift cards never expire and cannot be refunded.\n")
    os.utime(doc, ns=(doc.stat().st_atime_ns, doc.stat().st_mtime_ns + 1_000_000))
    second = knowledge.load_collection("returns", root=root)
    assert second is not first
    assert second is not None
    assert "Gift cards never expire" in second.search("do gift cards expire")[0].passage.text


def test_the_index_command_saves_an_index_that_a_fresh_process_loads_instead_of_reindexing(root: Path) -> None:
    assert cli.main(["index", "--root", str(root), "clinic"]) == 0
    manifest = json.loads((root / "clinic" / ".index" / "passages.json").read_text())
    assert manifest["fingerprint"] == documents.fingerprint(root / "clinic")
    loaded = knowledge.Collection.load_saved(
        collection_id="clinic", directory=root / "clinic" / ".index", fingerprint=manifest["fingerprint"]
    )
    assert loaded is not None
    assert "PELICAN-7731" in loaded.search("garage barrier code")[0].passage.text
    stale = knowledge.Collection.load_saved(
        collection_id="clinic", directory=root / "clinic" / ".index", fingerprint="something else"
    )
    assert stale is None


def test_the_index_command_fails_on_an_unknown_collection(root: Path) -> None:
    assert cli.main(["index", "--root", str(root), "no-such-collection"]) == 1


async def tools_of(config: CallConfig, settings: Settings) -> list[llm.FunctionTool[..., Awaitable[str]]]:
    """The call's tools as the worker makes them: from what its process loaded at start."""
    loaded = knowledge.load_all(settings)
    return knowledge.tools_for(await knowledge.knowledge_for(config, loaded=loaded, settings=settings))


async def test_a_call_without_knowledge_base_ids_gets_no_tool(settings: Settings) -> None:
    assert await tools_of(CallConfig(), settings) == []


async def test_unknown_ids_are_warned_about_and_the_known_ones_still_work(settings: Settings) -> None:
    config = CallConfig(knowledge_base_ids=("nope", "clinic", "../clinic"))
    # The resolver's warnings for the call's ids (`agent.config.resolve`).
    warnings = unknown_collection_warnings(config.knowledge_base_ids, root=knowledge.knowledge_root(settings))
    assert [(w.code, w.field) for w in warnings] == [
        ("unknown_knowledge_base", "knowledge_base_ids[0]"),
        ("unknown_knowledge_base", "knowledge_base_ids[2]"),
    ]
    assert all("nope" not in w.message for w in warnings)
    tools = await tools_of(config, settings)
    assert [t.id for t in tools] == ["search_knowledge"]


async def test_only_unknown_ids_give_no_tool_and_no_error(settings: Settings) -> None:
    assert await tools_of(CallConfig(knowledge_base_ids=("nope",)), settings) == []


async def test_the_tool_returns_passages_with_their_source_ids(settings: Settings) -> None:
    (tool,) = await tools_of(CallConfig(knowledge_base_ids=("clinic", "returns")), settings)
    assert isinstance(tool, llm.FunctionTool)
    result = await tool("visitor code for the garage")
    assert "[clinic/parking-and-access.pdf#0]" in result
    assert "PELICAN-7731" in result
    returns = await tool("how many days to return an item")
    assert "[returns/policy.md#" in returns
    assert "30 days" in returns


async def test_the_tool_says_so_when_nothing_matches(settings: Settings) -> None:
    (tool,) = await tools_of(CallConfig(knowledge_base_ids=("returns",)), settings)
    assert "No passage" in await tool("zeppelin quasar")


def test_a_pdf_with_several_pages_is_read_page_by_page(tmp_path: Path) -> None:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "two.pdf").write_bytes(pdf_bytes([["First page about apples."], ["Second page: unicorns."]]))
    collection = knowledge.load_collection("kb", root=tmp_path)
    assert collection is not None
    assert "unicorns" in collection.search("unicorns")[0].passage.text


def test_an_unreadable_document_is_skipped_and_the_rest_of_the_collection_loads(tmp_path: Path) -> None:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    (tmp_path / "kb" / "ok.md").write_text("Lighthouse tours start at noon.\n", encoding="utf-8")
    collection = knowledge.load_collection("kb", root=tmp_path)
    assert collection is not None
    assert collection.search("lighthouse tours")[0].passage.source_id == "kb/ok.md#0"


def test_unicode_documents_and_queries_work(tmp_path: Path) -> None:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "multi.md").write_text(
        "Die Öffnungszeiten: Montag bis Freitag.\n\nमरीज़ों के लिए पार्किंग मुफ़्त है।\n\n診療時間は午前九時からです。\n",
        encoding="utf-8",
    )
    collection = knowledge.load_collection("kb", root=tmp_path)
    assert collection is not None
    assert "Öffnungszeiten" in collection.search("öffnungszeiten")[0].passage.text


def test_a_process_loads_every_collection_before_any_call(settings: Settings) -> None:
    loaded = knowledge.load_all(settings)
    assert sorted(loaded) == ["clinic", "returns"]
    assert "PELICAN-7731" in loaded["clinic"].search("garage barrier code")[0].passage.text


def never(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("a call read, parsed or indexed a collection")


async def test_a_call_gets_its_knowledge_from_what_its_process_loaded_and_reads_no_file(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = knowledge.load_all(settings)
    for module, name in ((documents, "read_document"), (knowledge, "fingerprint"), (knowledge, "load_collection")):
        monkeypatch.setattr(module, name, never)
    monkeypatch.setattr(knowledge.Collection, "build", never)
    monkeypatch.setattr(knowledge.Collection, "load_saved", never)
    base = await knowledge.knowledge_for(CallConfig(knowledge_base_ids=("clinic",)), loaded=loaded, settings=settings)
    assert base is not None
    assert base.collections == (loaded["clinic"],)
    (tool,) = knowledge.tools_for(base)
    assert "PELICAN-7731" in await tool("visitor code for the garage")


async def test_a_collection_its_process_did_not_load_is_read_on_a_thread_not_the_event_loop(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    readers: set[int] = set()
    read = documents.read_document

    def recorded(path: Path) -> str:
        readers.add(threading.get_ident())
        return read(path)

    monkeypatch.setattr(documents, "read_document", recorded)
    base = await knowledge.knowledge_for(CallConfig(knowledge_base_ids=("returns",)), loaded={}, settings=settings)
    assert base is not None
    assert "30 days" in base.search("how many days to return an item")[0].passage.text
    assert readers
    assert threading.get_ident() not in readers


def test_a_damaged_saved_index_is_indexed_again(root: Path) -> None:
    assert cli.main(["index", "--root", str(root), "returns"]) == 0
    (root / "returns" / ".index" / "passages.json").write_text("{not json", encoding="utf-8")
    collection = knowledge.load_collection("returns", root=root)
    assert collection is not None
    assert "30 days" in collection.search("how many days to return an item")[0].passage.text


def test_the_forkserver_preload_fills_the_cache_job_processes_take_their_collections_from(root: Path) -> None:
    # What the forkserver imports (`agent.prefork`), then what a job process forked from it does in prewarm, with
    # every way of reading or indexing a collection made to fail.
    script = """
import agent.prefork
from agent import documents, knowledge

def never(*args, **kwargs):
    raise AssertionError("indexed after the preload")

documents.read_document = knowledge.Collection.build = knowledge.Collection.load_saved = never
print(sorted(knowledge.load_all()))
"""
    env = {**os.environ, "WEBCALL_CONFIG_DIR": str(root.parent), "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "['clinic', 'returns']"
