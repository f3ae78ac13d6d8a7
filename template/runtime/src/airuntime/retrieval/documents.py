"""Where documents come from: a repository interface and a local-directory implementation.

A document is its source (a stable name: the path relative to the root), a title, its text and
the SHA-256 of its text: the indexer compares hashes to skip what did not change.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Protocol

from airuntime.retrieval.errors import DocumentError

SUPPORTED_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf"})
_MARKDOWN_TITLE = re.compile(r"^#\s+(?P<title>.+?)\s*#*\s*$", re.MULTILINE)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Document:
    source: str
    title: str
    text: str
    content_hash: str

    @classmethod
    def of(cls, source: str, title: str, text: str) -> Document:
        return cls(source, title, text, content_hash(text))


class DocumentRepository(Protocol):
    """Documents to index. `sources` lists what is there now (the indexer removes the rest)."""

    def sources(self) -> list[str]:
        """Every document's source, sorted."""
        ...

    def load(self, source: str) -> Document:
        """One document; DocumentError when it cannot be read."""
        ...


class LocalDirectory:
    """The .txt, .md, .html and .pdf files under a directory (recursively; hidden files and
    directories are left out). Sources are POSIX paths relative to the root."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise DocumentError(f"{root} is not a directory: give a directory of documents.")
        self.root = root

    def sources(self) -> list[str]:
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in self._files()
            if path.suffix.lower() in SUPPORTED_SUFFIXES
        )

    def _files(self) -> Iterator[Path]:
        for path in self.root.rglob("*"):
            relative = path.relative_to(self.root)
            if any(part.startswith(".") for part in relative.parts) or not path.is_file():
                continue
            yield path

    def load(self, source: str) -> Document:
        path = self.root / source
        suffix = path.suffix.lower()
        try:
            if suffix == ".pdf":
                return pdf_document(source, path.read_bytes())
            raw = path.read_text(encoding="utf-8")
        except OSError as error:
            raise DocumentError(f"{source}: cannot read it ({error.strerror}).") from None
        except UnicodeDecodeError:
            raise DocumentError(f"{source}: not UTF-8 text; save it as UTF-8.") from None
        if suffix in {".html", ".htm"}:
            return html_document(source, raw)
        return text_document(source, raw)


def _stem_title(source: str) -> str:
    return Path(source).stem.replace("-", " ").replace("_", " ")


def text_document(source: str, text: str) -> Document:
    """Plain text or Markdown: the title is the first `# heading`, else the file name."""
    found = _MARKDOWN_TITLE.search(text)
    title = found.group("title") if found else _stem_title(source)
    return Document.of(source, title, text.replace("\r\n", "\n"))


class _HTMLText(HTMLParser):
    """The visible text of a page, headings kept as Markdown headings so chunking respects
    them; script and style skipped."""

    _BLOCKS = frozenset({"p", "div", "li", "br", "tr", "section", "article", "pre", "table"})
    _SKIPPED = frozenset({"script", "style", "noscript", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        del attrs  # HTMLParser's signature: the attributes are not needed
        if tag in self._SKIPPED:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in self._BLOCKS or (len(tag) == 2 and tag[0] == "h" and tag[1] in "123456"):
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title += data
            return
        self.parts.append(re.sub(r"\s+", " ", data))


def html_document(source: str, raw: str) -> Document:
    parser = _HTMLText()
    parser.feed(raw)
    parser.close()
    text = re.sub(r"\n[ \t]+", "\n", "".join(parser.parts))
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    found = _MARKDOWN_TITLE.search(text)
    title = html.unescape(parser.title.strip()) or (
        found.group("title") if found else _stem_title(source)
    )
    return Document.of(source, title, text)


def pdf_document(source: str, data: bytes) -> Document:
    """The text of every page (pypdf's extraction), pages as paragraphs; the title from the
    PDF's metadata, else the file name."""
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        metadata = reader.metadata
    except (PdfReadError, ValueError, OSError) as error:
        raise DocumentError(f"{source}: not a readable PDF ({error}).") from None
    title = (metadata.title if metadata is not None else None) or _stem_title(source)
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    return Document.of(source, str(title), text)
