"""Which route a corpus file takes (text, markdown, JSON, JSON lines, PDF), and its text.

The route is chosen from the file's suffix, then from its first bytes when the suffix says
nothing. A file no route can read (an image, an archive, undecodable bytes, a broken PDF) is
reported as :class:`Unsupported` with the reason: the build lists and skips it, it does not fail.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

_SUFFIXES = {
    ".txt": "text", ".text": "text", ".rst": "text", ".log": "text", ".csv": "text", ".tsv": "text",
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown",
    ".json": "json",
    ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".pdf": "pdf",
}
_BINARY_SUFFIXES = {
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".gif": "image", ".webp": "image", ".bmp": "image",
    ".zip": "archive", ".gz": "archive", ".tar": "archive", ".7z": "archive",
    ".docx": "office document", ".xlsx": "office document", ".pptx": "office document",
    ".mp3": "audio", ".wav": "audio", ".mp4": "video", ".mov": "video",
}


class Modality(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"
    JSONL = "jsonl"
    PDF = "pdf"


class Unsupported(Exception):
    """This file cannot be read by any route; ``reason`` says why (shown to the user)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Document:
    name: str
    modality: Modality
    text: str


def _suffix(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    return base[dot:].lower() if dot > 0 else ""


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a multi-byte character cut at the end of the sample
    return True


def detect(name: str, head: bytes) -> Modality:
    """The route for a file named ``name`` whose first bytes are ``head``; raises Unsupported."""
    suffix = _suffix(name)
    if suffix in _SUFFIXES:
        return Modality(_SUFFIXES[suffix])
    if head.startswith(b"%PDF-"):
        return Modality.PDF
    if suffix in _BINARY_SUFFIXES:
        raise Unsupported(f"{_BINARY_SUFFIXES[suffix]} ({suffix}): no route reads this kind of file")
    if _looks_like_text(head):
        return Modality.TEXT
    raise Unsupported("binary file of unknown format")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unsupported(f"not UTF-8 text (bad byte at offset {exc.start})") from exc


def _leaves(value: Any, path: str, out: list[str]) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _leaves(child, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            _leaves(child, f"{path}[{i}]", out)
    else:
        text = value if isinstance(value, str) else json.dumps(value)
        out.append(f"{path}: {text}" if path else text)


def json_as_text(value: Any) -> str:
    """One ``path: value`` line per leaf, so a chunk of a JSON file reads like its fields."""
    lines: list[str] = []
    _leaves(value, "", lines)
    return "\n".join(lines)


def _json_text(text: str) -> str:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Unsupported(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    return json_as_text(value)


def _jsonl_text(text: str) -> str:
    records: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json_as_text(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise Unsupported(f"invalid JSON on line {lineno}: {exc.msg}") from exc
    return "\n\n".join(records)


def _pdf_text(data: bytes) -> str:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as exc:
        raise Unsupported("PDF route needs pypdf (pip install 'kolmbuild[recall]')") from exc
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise Unsupported("encrypted PDF")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise Unsupported(f"unreadable PDF: {exc}") from exc
    text = "\n\n".join(p for p in pages if p)
    if not text:
        raise Unsupported("PDF has no extractable text (scanned images?)")
    return text


def extract(name: str, data: bytes) -> Document:
    """The file's text by its route; raises Unsupported with the reason."""
    if not data.strip():
        raise Unsupported("empty file")
    modality = detect(name, data[:4096])
    if modality is Modality.PDF:
        text = _pdf_text(data)
    elif modality is Modality.JSON:
        text = _json_text(_decode(data))
    elif modality is Modality.JSONL:
        text = _jsonl_text(_decode(data))
    else:
        text = _decode(data)
    return Document(name, modality, text)
