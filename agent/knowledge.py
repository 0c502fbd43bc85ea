"""Knowledge bases: document collections in `config/knowledge/<id>/`, indexed once, searched by a retrieval tool.

`knowledge.py` owns the BM25 index over a collection's passages (`bm25s`), its cache, and the `search_knowledge`
tool the LLM calls; reading the documents (Markdown, plain text, PDF) and cutting them into passages is
`agent.documents`. Contract with the worker:

    load_all(settings) -> dict[id, Collection]                  every collection, once per process, before any call
    await knowledge_for(config, loaded=...) -> KnowledgeBase    the call's, from those (None: it selects none)
    tools_for(knowledge) -> list[FunctionTool]                  empty without a knowledge base

Passages are ~600 characters cut on paragraph boundaries (Markdown headings start a new passage and are carried
into each passage under them, so a passage says what it is about). Each passage has a stable source id,
``<collection>/<relative path>#<n>``; the tool returns passages with their ids and the agent is instructed to cite
only ids it was given (`KNOWLEDGE_INSTRUCTIONS`).

Nothing is read, parsed or indexed in a call's path. The image indexes every collection at build
(``python -m agent index`` writes `<collection>/.index/`: the bm25s arrays and the passages); the forkserver loads
them all once (`agent.preload`), so job processes share them, and each job process's prewarm takes them with
`load_all` (`load_collection` is cached and keyed by the collection's content fingerprint; a saved index is used when
its fingerprint matches the files, otherwise the collection is indexed in memory there). A call's collection that
was not loaded (added since the process started) is loaded on a thread, never on the call's event loop. Why BM25
and not an embedding model is measured in `bench/knowledge.py`.

Unknown ids: `knowledge_for` logs one `unknown_knowledge_base` warning per call (a count, no id) and goes on with
the collections it has; the resolver puts one warning per unknown id in the call's config.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
from livekit.agents import llm

from agent.cli import Subcommand
from agent.config import collections
from agent.config.call_config import CallConfig
from agent.config.collections import collection_dir
from agent.documents import INDEX_DIR, Passage, fingerprint, read_collection
from agent.log import get_logger
from agent.settings import Settings, get_settings

logger = get_logger(__name__)

DEFAULT_TOP_K = 4
MAX_QUERY_CHARS = 500
MAX_RESULT_CHARS = 4000

KNOWLEDGE_INSTRUCTIONS = (
    "You can search the call's knowledge base with the search_knowledge tool. Use it for any question about facts "
    "that may be in the documents. Answer only from passages the tool returned; when you use a passage, you may "
    "name its source id exactly as given. Never cite a source you did not retrieve, and say you don't know when "
    "the passages don't contain the answer."
)


@dataclass(frozen=True, kw_only=True)
class Hit:
    passage: Passage
    score: float


class Collection:
    """One indexed collection: its passages and a BM25 index over them."""

    def __init__(self, *, collection_id: str, passages: Sequence[Passage], index: bm25s.BM25 | None) -> None:
        self.collection_id = collection_id
        self.passages = tuple(passages)
        self._index = index
        # bm25s retrieval keeps scratch state in the index object: one query at a time per collection
        self._lock = threading.Lock()

    @classmethod
    def build(cls, *, collection_id: str, passages: Sequence[Passage]) -> Collection:
        if not passages:
            return cls(collection_id=collection_id, passages=(), index=None)
        index = bm25s.BM25()
        index.index(_tokenize([_indexed_text(p) for p in passages]), show_progress=False)
        return cls(collection_id=collection_id, passages=passages, index=index)

    def search(self, query: str, *, k: int = DEFAULT_TOP_K) -> list[Hit]:
        if self._index is None or not query.strip():
            return []
        tokens = _tokenize([query])
        if not any(tokens):
            return []
        k = min(k, len(self.passages))
        with self._lock:
            docs, scores = self._index.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return [
            Hit(passage=self.passages[int(doc)], score=float(score))
            for doc, score in zip(docs[0], scores[0], strict=True)
            if score > 0
        ]

    def save(self, directory: Path, *, fingerprint: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self._index is not None:
            self._index.save(str(directory), show_progress=False)
        manifest = {
            "fingerprint": fingerprint,
            "passages": [{"source_id": p.source_id, "title": p.title, "text": p.text} for p in self.passages],
        }
        (directory / "passages.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load_saved(cls, *, collection_id: str, directory: Path, fingerprint: str) -> Collection | None:
        manifest_path = directory / "passages.json"
        if not manifest_path.is_file():
            return None
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("fingerprint") != fingerprint:
            return None
        passages = [Passage(**p) for p in manifest["passages"]]
        if not passages:
            return cls(collection_id=collection_id, passages=(), index=None)
        index = bm25s.BM25.load(str(directory), show_progress=False)
        return cls(collection_id=collection_id, passages=passages, index=index)


# -- reading and cutting documents ----------------------------------------------------------------------------------


def _tokenize(texts: list[str]) -> list[list[str]]:
    tokens: list[list[str]] = bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)
    return tokens


def _indexed_text(passage: Passage) -> str:
    return f"{passage.title}\n{passage.text}" if passage.title else passage.text


# -- the per-process cache ------------------------------------------------------------------------------------------

_cache: dict[tuple[str, str], tuple[str, Collection]] = {}
_cache_lock = threading.Lock()


def knowledge_root(settings: Settings | None = None) -> Path:
    return collections.knowledge_root((settings or get_settings()).config_dir)


def load_collection(collection_id: str, *, root: Path) -> Collection | None:
    """The indexed collection, from the process cache, a saved index, or indexed now. None if unknown."""
    directory = collection_dir(collection_id, root=root)
    if directory is None:
        return None
    print_ = fingerprint(directory)
    key = (str(root.resolve()), collection_id)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == print_:
            return cached[1]
        collection = _saved(collection_id, directory=directory, fingerprint=print_) or Collection.build(
            collection_id=collection_id, passages=read_collection(directory, collection_id=collection_id)
        )
        _cache[key] = (print_, collection)
        logger.info(
            "knowledge collection loaded", extra={"collection": collection_id, "passages": len(collection.passages)}
        )
        return collection


def _saved(collection_id: str, *, directory: Path, fingerprint: str) -> Collection | None:
    try:
        return Collection.load_saved(
            collection_id=collection_id, directory=directory / INDEX_DIR, fingerprint=fingerprint
        )
    except Exception:
        # A damaged saved index is indexed again: loading runs in the forkserver and in prewarm, where an error would
        # leave the worker without job processes.
        logger.warning("knowledge index unreadable, indexing again", extra={"collection": collection_id})
        return None


def collection_ids(root: Path) -> list[str]:
    """Every collection under `root`, by id, sorted."""
    if not root.is_dir():
        return []
    return sorted(path.name for path in root.iterdir() if collection_dir(path.name, root=root) is not None)


def load_all(settings: Settings | None = None) -> dict[str, Collection]:
    """Every collection of the deployment, by id, for a process to keep before it takes a call.

    Blocking (it reads every document, and parses them where no saved index matches): for prewarm and preload, or a
    thread.
    """
    root = knowledge_root(settings)
    loaded = {cid: load_collection(cid, root=root) for cid in collection_ids(root)}
    return {cid: collection for cid, collection in loaded.items() if collection is not None}


def index_collection(collection_id: str, *, root: Path) -> Collection:
    """Index one collection ahead of time and save it to `<collection>/.index/`."""
    directory = collection_dir(collection_id, root=root)
    if directory is None:
        raise FileNotFoundError(collection_id)
    print_ = fingerprint(directory)
    collection = Collection.build(
        collection_id=collection_id, passages=read_collection(directory, collection_id=collection_id)
    )
    collection.save(directory / INDEX_DIR, fingerprint=print_)
    return collection


# -- search over a call's collections and the tool -----------------------------------------------------------------


class KnowledgeBase:
    """The collections one call selected, searched together (hits merged by score)."""

    def __init__(self, collections: Sequence[Collection]) -> None:
        self.collections = tuple(collections)

    def search(self, query: str, *, k: int = DEFAULT_TOP_K) -> list[Hit]:
        query = query[:MAX_QUERY_CHARS]
        hits = [hit for c in self.collections for hit in c.search(query, k=k)]
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits[:k]

    def format_hits(self, hits: Iterable[Hit]) -> str:
        """What the LLM gets back: passages with their source ids, within a size budget."""
        parts: list[str] = []
        used = 0
        for hit in hits:
            heading = f" ({hit.passage.title})" if hit.passage.title else ""
            part = f"[{hit.passage.source_id}]{heading}\n{hit.passage.text}"
            if used + len(part) > MAX_RESULT_CHARS:
                break
            parts.append(part)
            used += len(part)
        if not parts:
            return "No passage in the knowledge base matches this query. Do not guess; say you don't know."
        return "\n\n".join(parts)


async def knowledge_for(
    config: CallConfig, *, loaded: Mapping[str, Collection], settings: Settings | None = None
) -> KnowledgeBase | None:
    """The call's knowledge base from the collections its process loaded (`load_all`), or None when it selects no
    known collection. One the process has not loaded is looked for on a thread."""
    if not config.knowledge_base_ids:
        return None
    found: list[Collection] = []
    for kb in config.knowledge_base_ids:
        collection = loaded.get(kb)
        if collection is None:
            collection = await asyncio.to_thread(load_collection, kb, root=knowledge_root(settings))
        if collection is not None:
            found.append(collection)
    missing = len(config.knowledge_base_ids) - len(found)
    if missing:
        logger.warning("unknown_knowledge_base", extra={"code": "unknown_knowledge_base", "count": missing})
    return KnowledgeBase(found) if found else None


def search_tool(knowledge: KnowledgeBase) -> llm.FunctionTool[..., Awaitable[str]]:
    """The `search_knowledge` tool over one call's knowledge base."""

    async def search_knowledge(query: str) -> str:
        """Search the knowledge base of this call for passages about a question.

        Answer only from the passages this returns; each starts with its source id in brackets. Cite only source
        ids returned here, never any other, and say you don't know when no passage answers the question.

        Args:
            query: the question or keywords to look up, in the words of the documents if possible.
        """
        hits = knowledge.search(query)
        logger.info("knowledge searched", extra={"hits": len(hits)})
        return knowledge.format_hits(hits)

    return llm.function_tool(search_knowledge)


def tools_for(knowledge: KnowledgeBase | None) -> list[llm.FunctionTool[..., Awaitable[str]]]:
    """The retrieval tool over a call's knowledge base (none without one)."""
    return [search_tool(knowledge)] if knowledge is not None else []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``python -m agent index [ID ...]``: index collections ahead of time (all of them without ids)."""
    parser.add_argument("ids", nargs="*", help="collection ids (default: every collection)")
    parser.add_argument(
        "--root", type=Path, default=None, help="knowledge directory (default: $WEBCALL_CONFIG_DIR/knowledge)"
    )


def run(args: argparse.Namespace) -> int:
    root: Path = args.root or knowledge_root()
    ids: list[str] = list(args.ids) or collection_ids(root)
    status = 0
    for collection_id in ids:
        try:
            collection = index_collection(collection_id, root=root)
        except FileNotFoundError:
            print(f"unknown collection: {collection_id}")
            status = 1
            continue
        print(json.dumps({"collection": collection_id, "passages": len(collection.passages)}))
    return status


COMMAND = Subcommand(add_arguments=add_arguments, run=run)
