"""A knowledge collection's documents, read and cut into passages (`agent.knowledge` indexes and searches them).

Documents are Markdown, plain text and PDF files under the collection's directory (`SUFFIXES`; the saved index in
`INDEX_DIR` is not one). Passages are ~600 characters cut on paragraph boundaries: Markdown headings start a new
passage and title each passage under them. Each has a stable source id, ``<collection>/<relative path>#<n>``. A
collection's `fingerprint` is of its files' names and content, never their times. Everything here blocks: the
worker calls it at image build, in the forkserver's preload or on a thread, never on a call's event loop.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.log import get_logger

logger = get_logger(__name__)

SUFFIXES = (".md", ".markdown", ".txt", ".pdf")
INDEX_DIR = ".index"
PASSAGE_CHARS = 600


@dataclass(frozen=True, kw_only=True)
class Passage:
    source_id: str
    title: str
    text: str


def read_document(path: Path) -> str:
    """The text of one document. PDFs are read with pypdf; text files as UTF-8 (undecodable bytes replaced)."""
    if path.suffix.lower() == ".pdf":
        from pypdf import PdfReader

        reader = PdfReader(str(path))
        return "\n\n".join((page.extract_text() or "") for page in reader.pages)
    return path.read_text(encoding="utf-8", errors="replace")


def split_passages(text: str, *, source: str, max_chars: int = PASSAGE_CHARS) -> list[Passage]:
    """Cut a document into passages on paragraph boundaries; Markdown headings title the passages under them."""
    passages: list[Passage] = []
    title = ""
    buffer: list[str] = []

    def emit() -> None:
        body = "\n\n".join(buffer).strip()
        buffer.clear()
        if body:
            passages.append(Passage(source_id=f"{source}#{len(passages)}", title=title, text=body))

    for block in _blocks(text):
        heading = re.match(r"^#{1,6}\s+(.*)$", block)
        if heading:
            emit()
            title = heading.group(1).strip()
            continue
        for piece in _fit(block, max_chars):
            if buffer and sum(len(b) + 2 for b in buffer) + len(piece) > max_chars:
                emit()
            buffer.append(piece)
    emit()
    return passages


def _blocks(text: str) -> Iterator[str]:
    for raw in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        block = raw.strip()
        if not block:
            continue
        # a heading line directly followed by text (no blank line) is still a heading
        first, _, rest = block.partition("\n")
        if re.match(r"^#{1,6}\s", first) and rest.strip():
            yield first
            yield rest.strip()
        else:
            yield block


def _fit(block: str, max_chars: int) -> Iterator[str]:
    """Split an over-long paragraph on sentence ends (or hard, as a last resort)."""
    if len(block) <= max_chars:
        yield block
        return
    current = ""
    for sentence in re.split(r"(?<=[.!?])\s+", block):
        while len(sentence) > max_chars:
            if current:
                yield current
                current = ""
            yield sentence[:max_chars]
            sentence = sentence[max_chars:]
        if current and len(current) + 1 + len(sentence) > max_chars:
            yield current
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        yield current


def collection_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and p.suffix.lower() in SUFFIXES and INDEX_DIR not in p.relative_to(directory).parts
    )


def fingerprint(directory: Path) -> str:
    """Changes whenever a document of the collection is added, removed, renamed or edited.

    Of the files' content, not their times: an index saved at image build stays valid in the image, where copying
    the files between stages or a fresh checkout may set other modification times.
    """
    digest = hashlib.sha256()
    for path in collection_files(directory):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def read_collection(directory: Path, *, collection_id: str) -> list[Passage]:
    passages: list[Passage] = []
    for path in collection_files(directory):
        source = f"{collection_id}/{path.relative_to(directory).as_posix()}"
        try:
            text = read_document(path)
        except Exception:
            # one unreadable document must not take the whole collection down
            logger.warning("knowledge document unreadable", extra={"collection": collection_id})
            continue
        passages.extend(split_passages(text, source=source))
    return passages
