"""The local-directory repository: which files it lists, and the text and title of each kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from airuntime.retrieval.documents import LocalDirectory, content_hash
from airuntime.retrieval.errors import DocumentError


def minimal_pdf(text: str, title: str | None = None) -> bytes:
    """A one-page PDF showing `text` in Helvetica (offsets computed, so pypdf reads it cleanly)."""
    stream = f"BT /F1 12 Tf 72 712 Td ({text}) Tj ET".encode()
    info = f"<< /Title ({title}) >>".encode() if title else b"<< >>"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        info,
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return out


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "guide.md").write_text("# Install guide\n\nRun make.\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("Plain notes.\r\nSecond line.\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "page.html").write_text(
        "<html><head><title>Refund &amp; returns</title><style>p{color:red}</style></head>"
        "<body><h1>Refunds</h1><p>Refunds take <b>five</b> days.</p>"
        "<script>alert('x')</script><h2>Returns</h2><p>Within 30 days.</p></body></html>",
        encoding="utf-8",
    )
    (tmp_path / "manual.pdf").write_bytes(minimal_pdf("Press the red button.", "Manual"))
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "secret.md").write_text("no", encoding="utf-8")
    return tmp_path


def test_lists_supported_files_sorted_and_skips_hidden_ones(folder: Path) -> None:
    assert LocalDirectory(folder).sources() == [
        "guide.md",
        "manual.pdf",
        "notes.txt",
        "sub/page.html",
    ]


def test_markdown_title_is_its_first_heading_and_text_is_kept(folder: Path) -> None:
    document = LocalDirectory(folder).load("guide.md")
    assert document.title == "Install guide"
    assert document.text == "# Install guide\n\nRun make.\n"
    assert document.content_hash == content_hash(document.text)


def test_plain_text_is_titled_by_its_name_with_newlines_normalised(folder: Path) -> None:
    document = LocalDirectory(folder).load("notes.txt")
    assert (document.title, document.text) == ("notes", "Plain notes.\nSecond line.\n")


def test_html_keeps_visible_text_and_headings_as_markdown(folder: Path) -> None:
    document = LocalDirectory(folder).load("sub/page.html")
    assert document.title == "Refund & returns"
    assert document.text == (
        "# Refunds\n\nRefunds take five days.\n\n## Returns\n\nWithin 30 days."
    )


def test_pdf_text_and_title_come_from_pypdf(folder: Path) -> None:
    document = LocalDirectory(folder).load("manual.pdf")
    assert document.title == "Manual"
    assert document.text == "Press the red button."


def test_an_unreadable_pdf_is_one_clear_error(folder: Path) -> None:
    (folder / "broken.pdf").write_bytes(b"not a pdf at all")
    with pytest.raises(DocumentError, match=r"^broken\.pdf: not a readable PDF"):
        LocalDirectory(folder).load("broken.pdf")


def test_text_that_is_not_utf8_is_one_clear_error(folder: Path) -> None:
    (folder / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DocumentError, match=r"latin\.txt: not UTF-8 text"):
        LocalDirectory(folder).load("latin.txt")


def test_a_missing_file_is_one_clear_error(folder: Path) -> None:
    with pytest.raises(DocumentError, match=r"gone\.txt: cannot read it"):
        LocalDirectory(folder).load("gone.txt")


def test_the_root_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="is not a directory"):
        LocalDirectory(tmp_path / "missing")
