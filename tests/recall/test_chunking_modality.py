"""Chunking and per-file routes (text, markdown, JSON, JSON lines, PDF; unsupported ones skipped)."""

from __future__ import annotations

import pytest
from kolm_recall_helpers import make_pdf

from kolmbuild.errors import ConfigError
from kolmbuild.recall.chunking import chunk_text
from kolmbuild.recall.modality import Modality, Unsupported, detect, extract

PROSE = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(200))


def test_chunks_respect_size_overlap_and_cover_the_text() -> None:
    chunks = chunk_text(PROSE, 300, 60)
    assert len(chunks) > 10
    assert all(len(c) <= 300 for c in chunks)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b[:20] in a  # each chunk starts inside the previous one: the overlap
    words = set(PROSE.split())
    assert words == {w for c in chunks for w in c.split()}  # nothing lost
    assert not any(c.startswith(("umber", "entence")) for c in chunks)  # no chunk starts mid-word
    assert chunk_text(PROSE, 300, 60) == chunks


def test_chunks_prefer_paragraph_breaks() -> None:
    text = ("alpha " * 30).strip() + "\n\n" + ("beta " * 30).strip()
    chunks = chunk_text(text, 250, 0)
    assert chunks[0] == ("alpha " * 30).strip()
    assert chunks[1].startswith("beta")


def test_short_and_empty_texts() -> None:
    assert chunk_text("one line", 100, 10) == ["one line"]
    assert chunk_text("   \n\n  ", 100, 10) == []


@pytest.mark.parametrize("overlap", [-1, 51, 100])
def test_bad_overlap_is_a_config_error_naming_the_key(overlap: int) -> None:
    with pytest.raises(ConfigError, match="task.recall.overlap_chars"):
        chunk_text(PROSE, 100, overlap)


def test_routes_by_suffix_and_content() -> None:
    assert detect("a.md", b"# x") is Modality.MARKDOWN
    assert detect("notes/a.TXT", b"x") is Modality.TEXT
    assert detect("a.json", b"{}") is Modality.JSON
    assert detect("a.jsonl", b"{}") is Modality.JSONL
    assert detect("report", b"%PDF-1.7 ...") is Modality.PDF
    assert detect("README", "plain text, ünïcode".encode()) is Modality.TEXT
    with pytest.raises(Unsupported, match="image"):
        detect("photo.png", b"\x89PNG\r\n")
    with pytest.raises(Unsupported, match="binary"):
        detect("blob.bin", b"\x00\x01\x02\xff")


def test_json_and_jsonl_read_as_field_lines() -> None:
    doc = extract("drug.json", b'{"drug": {"name": "aspirin", "doses": [81, 325]}}')
    assert doc.text == "drug.name: aspirin\ndrug.doses[0]: 81\ndrug.doses[1]: 325"
    rows = extract("faq.jsonl", b'{"q": "hours?", "a": "9-5"}\n\n{"q": "where?", "a": "Main St"}\n')
    assert rows.text == "q: hours?\na: 9-5\n\nq: where?\na: Main St"


def test_broken_files_are_unsupported_with_a_reason() -> None:
    with pytest.raises(Unsupported, match="invalid JSON at line 1"):
        extract("bad.json", b'{"a": ')
    with pytest.raises(Unsupported, match="line 2"):
        extract("bad.jsonl", b'{"a": 1}\nnope\n')
    with pytest.raises(Unsupported, match="empty"):
        extract("empty.txt", b"  \n")
    with pytest.raises(Unsupported, match="not UTF-8"):
        extract("latin.txt", "café".encode("latin-1") * 10)
    with pytest.raises(Unsupported, match="unreadable PDF|no extractable text"):
        extract("broken.pdf", b"%PDF-1.4\ngarbage")


def test_pdf_text_is_extracted_with_pypdf() -> None:
    doc = extract("leaflet.pdf", make_pdf(["Take one tablet daily.", "Do not exceed four (4) tablets."]))
    assert doc.modality is Modality.PDF
    assert "Take one tablet daily." in doc.text and "Do not exceed four (4) tablets." in doc.text
