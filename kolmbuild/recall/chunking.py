"""Split text into overlapping chunks of at most ``chunk_chars`` characters.

A chunk ends at the last paragraph break, line break, sentence end or space inside its window
(whichever comes first in that order of preference, as long as it keeps the chunk at least half
full), so chunks rarely cut a word. The next chunk starts ``overlap_chars`` before the previous
one ended, so a passage that straddles a boundary is whole in at least one chunk.
"""

from __future__ import annotations

from kolmbuild.errors import ConfigError

_BREAKS = ("\n\n", "\n", ". ", "? ", "! ", "; ", " ")


def check_params(chunk_chars: int, overlap_chars: int) -> None:
    if chunk_chars < 1:
        raise ConfigError(f"task.recall.chunk_chars: must be positive, got {chunk_chars}")
    if overlap_chars < 0 or overlap_chars > chunk_chars // 2:
        raise ConfigError(
            f"task.recall.overlap_chars: {overlap_chars} must be at least 0 and at most half of "
            f"task.recall.chunk_chars ({chunk_chars})"
        )


def _cut(text: str, start: int, limit: int) -> int:
    """End of the chunk that starts at ``start``: a natural break inside the window, else the limit."""
    end = start + limit
    if end >= len(text):
        return len(text)
    window = text[start:end]
    for sep in _BREAKS:
        pos = window.rfind(sep)
        if pos >= limit // 2:
            return start + pos + len(sep)
    return end


def chunk_text(text: str, chunk_chars: int, overlap_chars: int) -> list[str]:
    """Chunks of ``text`` (stripped; empty ones dropped). Deterministic: same text, same chunks."""
    check_params(chunk_chars, overlap_chars)
    chunks: list[str] = []
    start = 0
    n = len(text)
    while start < n:
        end = _cut(text, start, chunk_chars)
        piece = text[start:end].strip()
        if piece:
            chunks.append(piece)
        if end >= n:
            break
        nxt = end - overlap_chars
        # move the overlap start forward to a word boundary so a chunk does not begin mid-word
        space = text.find(" ", nxt, end)
        if overlap_chars and space != -1:
            nxt = space + 1
        start = max(nxt, start + 1)
    return chunks
