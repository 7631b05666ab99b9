"""A canonical zip writer and a strict, safe zip reader for kolm/1.

The writer emits one layout only: members sorted by name, no extra fields, no comments, no data
descriptors, DOS time 1980-01-01 00:00, mode 0644 regular files, "made by" Unix 2.0, deflate level 9
(raw, wbits -15) or stored as :func:`~kolmbuild.artifact.format.member_method` prescribes. The
reader accepts that layout only, so a flipped byte anywhere in a header or the central directory is
an error, and a flipped byte in member data shows as a CRC, size or CID mismatch.

Untrusted input: names are checked (no absolute paths, ``..``, backslashes, odd characters),
symlinks, duplicates, encryption, zip64 and unknown methods are refused, and inflation is capped
at the declared size and at configurable limits, so declared sizes are never trusted.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from kolmbuild.artifact.format import DEFLATED, STORED, member_method
from kolmbuild.atomic import atomic_writer
from kolmbuild.errors import ArtifactError

LOCAL_SIG = 0x04034B50
CENTRAL_SIG = 0x02014B50
EOCD_SIG = 0x06054B50
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<IHHHHIIH")
VERSION = 20
MADE_BY = (3 << 8) | VERSION  # Unix, zip 2.0
DOS_TIME = 0
DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01
EXTERNAL_ATTR = (0o100644 << 16) & 0xFFFFFFFF
CHUNK = 1 << 20
ZIP32_MAX = 0xFFFFFFFF

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$")


@dataclass(frozen=True)
class Limits:
    """Caps on untrusted input. Sizes in bytes.

    Stored members cannot inflate (their size is their size on disk); deflated members are capped
    separately and must also be within deflate's maximum ratio of their compressed size.
    """

    max_members: int = 64
    max_member_inflated: int = 4 * 1024**3  # kolm/1 has no zip64, so never more than 4 GiB anyway
    max_deflated_inflated: int = 1024**3
    max_total_inflated: int = 16 * 1024**3


# Deflate cannot expand better than about 1032:1; a declared size beyond this is a lie (a bomb).
MAX_DEFLATE_RATIO = 1100
DEFLATE_SLACK = 1024


@dataclass(frozen=True)
class Member:
    name: str
    method: int
    crc: int
    csize: int
    usize: int
    offset: int  # of the local header

    @property
    def data_offset(self) -> int:
        return self.offset + _LOCAL.size + len(self.name.encode())


# ----------------------------------------------------------------------------------------- write


def _local_header(m: Member) -> bytes:
    name = m.name.encode()
    return _LOCAL.pack(
        LOCAL_SIG, VERSION, 0, m.method, DOS_TIME, DOS_DATE, m.crc, m.csize, m.usize, len(name), 0
    ) + name


def _central_header(m: Member) -> bytes:
    name = m.name.encode()
    return _CENTRAL.pack(
        CENTRAL_SIG, MADE_BY, VERSION, 0, m.method, DOS_TIME, DOS_DATE, m.crc, m.csize, m.usize,
        len(name), 0, 0, 0, 0, EXTERNAL_ATTR, m.offset,
    ) + name  # fmt: skip


def _eocd(count: int, cd_size: int, cd_offset: int) -> bytes:
    return _EOCD.pack(EOCD_SIG, 0, 0, count, count, cd_size, cd_offset, 0)


def check_name(name: str) -> None:
    """Raise ArtifactError unless ``name`` is a safe relative member name."""
    if not name:
        raise ArtifactError("unsafe zip entry: empty name")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise ArtifactError(f"unsafe zip entry {name!r}: absolute path")
    parts = re.split(r"[/\\]", name)
    if ".." in parts:
        raise ArtifactError(f"unsafe zip entry {name!r}: path traversal ('..')")
    if "\\" in name:
        raise ArtifactError(f"unsafe zip entry {name!r}: backslash in name")
    if len(name) > 255 or not _NAME_RE.match(name):
        raise ArtifactError(f"unsafe zip entry {name!r}: only [A-Za-z0-9._-] path parts are allowed")


def _compress(src: bytes | Path, method: int, spool: IO[bytes]) -> tuple[int, int, int]:
    """Write ``src`` compressed to ``spool``; return (crc, compressed size, size)."""
    crc = usize = csize = 0
    comp = zlib.compressobj(9, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY) if method == DEFLATED else None

    def chunks() -> Iterator[bytes]:
        if isinstance(src, bytes):
            yield src
            return
        with open(src, "rb") as f:
            while block := f.read(CHUNK):
                yield block

    for block in chunks():
        crc = zlib.crc32(block, crc)
        usize += len(block)
        out = comp.compress(block) if comp else block
        csize += len(out)
        spool.write(out)
    if comp:
        out = comp.flush()
        csize += len(out)
        spool.write(out)
    return crc & 0xFFFFFFFF, csize, usize


class _HashingWriter:
    """A file that also hashes and counts what is written to it."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.sha = hashlib.sha256()
        self.pos = 0

    def write(self, data: bytes) -> None:
        self._f.write(data)
        self.sha.update(data)
        self.pos += len(data)


Trailer = Callable[[int, str], Sequence[tuple[str, bytes]]]


def _file_crc(src: Path) -> tuple[int, int]:
    crc = size = 0
    with open(src, "rb") as f:
        while block := f.read(CHUNK):
            crc = zlib.crc32(block, crc)
            size += len(block)
    return crc & 0xFFFFFFFF, size


def _add_stored_file(out: _HashingWriter, name: str, src: Path) -> Member:
    """A stored member straight from its file (no temp copy of a multi-GB model): CRC first, then copy."""
    crc, size = _file_crc(src)
    if size >= ZIP32_MAX:
        raise ArtifactError(f"{name}: kolm/1 members must be smaller than 4 GiB")
    m = Member(name, STORED, crc, size, size, out.pos)
    out.write(_local_header(m))
    check = copied = 0
    with open(src, "rb") as f:
        while block := f.read(CHUNK):
            check = zlib.crc32(block, check)
            copied += len(block)
            out.write(block)
    if copied != size or check & 0xFFFFFFFF != crc:
        raise ArtifactError(f"{src}: the file changed while it was being written into the artifact")
    return m


def write_zip(dest: Path, members: Sequence[tuple[str, bytes | Path]], trailer: Trailer | None = None) -> None:
    """Write the canonical zip of ``members`` (name, bytes or file) to ``dest`` (temp file + rename).

    ``trailer(length, sha256_hex)``, when given, is called with the size and digest of everything
    written so far (every entry, headers included) and returns entries to append; they must sort
    after all others, so the archive stays in canonical order.
    """
    names = [n for n, _ in members]
    if len(set(names)) != len(names):
        raise ArtifactError("duplicate member names")
    for n in names:
        check_name(n)
    with atomic_writer(dest, mode=0o644) as raw_out:
        out = _HashingWriter(raw_out)
        written: list[Member] = []

        def add(name: str, src: bytes | Path) -> None:
            method = member_method(name)
            if method == STORED and isinstance(src, Path):
                written.append(_add_stored_file(out, name, src))
                return
            with tempfile.SpooledTemporaryFile(max_size=64 * 1024**2) as spool:
                crc, csize, usize = _compress(src, method, spool)
                if usize >= ZIP32_MAX or csize >= ZIP32_MAX:
                    raise ArtifactError(f"{name}: kolm/1 members must be smaller than 4 GiB")
                m = Member(name, method, crc, csize, usize, out.pos)
                out.write(_local_header(m))
                spool.seek(0)
                while block := spool.read(CHUNK):
                    out.write(block)
            written.append(m)

        for name, src in sorted(members, key=lambda m: m[0].encode()):
            add(name, src)
        if trailer is not None:
            last = written[-1].name.encode() if written else b""
            for name, data in trailer(out.pos, out.sha.hexdigest()):
                check_name(name)
                if name.encode() <= last:
                    raise ArtifactError(f"trailer entry {name!r} must sort after every other entry")
                last = name.encode()
                add(name, data)
        cd_offset = out.pos
        for m in written:
            out.write(_central_header(m))
        cd_size = out.pos - cd_offset
        if out.pos >= ZIP32_MAX:
            raise ArtifactError(f"{dest}: kolm/1 archives must be smaller than 4 GiB")
        out.write(_eocd(len(written), cd_size, cd_offset))


# ------------------------------------------------------------------------------------------ read


class ZipReader:
    """Strict reader over an open binary file. Construct with :meth:`open`; close when done."""

    def __init__(self, f: BinaryIO, label: str, limits: Limits) -> None:
        self._f = f
        self.label = label
        self.limits = limits
        self.members: dict[str, Member] = {}
        self._parse()

    @classmethod
    def open(cls, path: Path, limits: Limits | None = None) -> ZipReader:
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise ArtifactError(f"{path}: cannot open: {exc.strerror or exc}") from exc
        try:
            return cls(f, str(path), limits or Limits())
        except BaseException:
            f.close()
            raise

    def close(self) -> None:
        self._f.close()

    def _err(self, what: str) -> ArtifactError:
        return ArtifactError(f"{self.label}: {what}")

    def _read_at(self, offset: int, n: int) -> bytes:
        self._f.seek(offset)
        data = self._f.read(n)
        if len(data) != n:
            raise self._err("truncated archive")
        return data

    def _parse(self) -> None:
        size = self._f.seek(0, os.SEEK_END)
        if size < _EOCD.size:
            raise self._err("not a .kolm file (too short for a zip)")
        # lenient search first (so an unsafe zip gets its specific error), canonical checks after
        tail_len = min(size, _EOCD.size + 0xFFFF)
        tail = self._read_at(size - tail_len, tail_len)
        pos = tail.rfind(struct.pack("<I", EOCD_SIG))
        if pos < 0:
            raise self._err("not a .kolm file (no zip end-of-central-directory record)")
        eocd_offset = size - tail_len + pos
        if eocd_offset + _EOCD.size > size:
            raise self._err("not a .kolm file (truncated end-of-central-directory record)")
        sig, disk, cd_disk, n_disk, n, cd_size, cd_offset, comment_len = _EOCD.unpack(
            tail[pos : pos + _EOCD.size]
        )
        if disk or cd_disk or n_disk != n:
            raise self._err("multi-disk zips are not supported")
        if n == 0xFFFF or cd_offset == ZIP32_MAX or cd_size == ZIP32_MAX:
            raise self._err("zip64 archives are not supported by kolm/1")
        if n > self.limits.max_members:
            raise self._err(f"too many zip entries ({n} > {self.limits.max_members})")
        if cd_offset + cd_size > eocd_offset:
            raise self._err("corrupt zip: central directory overlaps its end record")
        cd = self._read_at(cd_offset, cd_size)
        entries: list[tuple[Member, tuple[int, ...], bytes]] = []
        p = 0
        total = 0
        for _ in range(n):
            if p + _CENTRAL.size > len(cd):
                raise self._err("corrupt zip: truncated central directory")
            fields = _CENTRAL.unpack(cd[p : p + _CENTRAL.size])
            (sig, _made, _need, flags, method, _t, _d, crc, csize, usize, nlen, xlen, clen, _disk, _iattr,
             eattr, offset) = fields  # fmt: skip
            if sig != CENTRAL_SIG:
                raise self._err("corrupt zip: bad central directory entry")
            raw_name = cd[p + _CENTRAL.size : p + _CENTRAL.size + nlen]
            end = p + _CENTRAL.size + nlen + xlen + clen
            if end > len(cd):
                raise self._err("corrupt zip: truncated central directory")
            try:
                name = raw_name.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise self._err(f"unsafe zip entry {raw_name!r}: name is not UTF-8") from exc
            try:
                check_name(name)
            except ArtifactError as exc:
                raise self._err(exc.message) from None
            ftype = (eattr >> 16) & 0o170000
            if ftype == 0o120000:
                raise self._err(f"unsafe zip entry {name!r}: symbolic link")
            if ftype not in (0, 0o100000):
                raise self._err(f"unsafe zip entry {name!r}: not a regular file")
            if name in self.members:
                raise self._err(f"unsafe zip: duplicate entry {name!r}")
            if flags & 0x1:
                raise self._err(f"zip entry {name!r} is encrypted")
            if method not in (STORED, DEFLATED):
                raise self._err(f"zip entry {name!r}: unsupported compression method {method}")
            if ZIP32_MAX in (csize, usize, offset):
                raise self._err(f"zip entry {name!r}: zip64 is not supported by kolm/1")
            if usize > self.limits.max_member_inflated:
                raise self._err(
                    f"zip entry {name!r} inflates to {usize} bytes, over the limit of "
                    f"{self.limits.max_member_inflated} (zip bomb?)"
                )
            if method == DEFLATED and usize > self.limits.max_deflated_inflated:
                raise self._err(
                    f"zip entry {name!r} inflates to {usize} bytes, over the limit of "
                    f"{self.limits.max_deflated_inflated} for compressed entries (zip bomb?)"
                )
            if method == DEFLATED and usize > csize * MAX_DEFLATE_RATIO + DEFLATE_SLACK:
                raise self._err(
                    f"zip entry {name!r} claims {usize} bytes from {csize} compressed bytes, more than "
                    "deflate can produce (zip bomb?)"
                )
            total += usize
            if total > self.limits.max_total_inflated:
                raise self._err(
                    f"zip entries inflate to more than {self.limits.max_total_inflated} bytes (zip bomb?)"
                )
            if method == STORED and csize != usize:
                raise self._err(f"zip entry {name!r}: stored entry with mismatched sizes")
            m = Member(name, method, crc, csize, usize, offset)
            self.members[name] = m
            entries.append((m, fields, cd[p:end]))
            p = end
        self._check_canonical(size, eocd_offset, cd_offset, cd_size, comment_len, entries, p == len(cd))

    def _check_canonical(
        self,
        size: int,
        eocd_offset: int,
        cd_offset: int,
        cd_size: int,
        comment_len: int,
        entries: list[tuple[Member, tuple[int, ...], bytes]],
        cd_consumed: bool,
    ) -> None:
        if comment_len or eocd_offset + _EOCD.size != size:
            raise self._err("not a canonical kolm/1 zip: trailing data or a zip comment")
        if not cd_consumed or cd_offset + cd_size != eocd_offset:
            raise self._err("not a canonical kolm/1 zip: extra bytes around the central directory")
        names = [m.name for m, _, _ in entries]
        if names != sorted(names, key=str.encode):
            raise self._err("not a canonical kolm/1 zip: entries are not sorted by name")
        expect_offset = 0
        for m, _fields, raw in entries:
            if m.offset != expect_offset:
                raise self._err(f"not a canonical kolm/1 zip: unexpected bytes before entry {m.name!r}")
            if m.method != member_method(m.name):
                raise self._err(f"not a canonical kolm/1 zip: entry {m.name!r} uses the wrong compression")
            if raw != _central_header(m):
                raise self._err(f"not a canonical kolm/1 zip: central directory entry {m.name!r} differs")
            local = _local_header(m)
            if self._read_at(m.offset, len(local)) != local:
                raise self._err(f"not a canonical kolm/1 zip: local header of {m.name!r} differs")
            expect_offset = m.data_offset + m.csize
        if expect_offset != cd_offset:
            raise self._err("not a canonical kolm/1 zip: extra bytes before the central directory")
        if _eocd(len(entries), cd_size, cd_offset) != self._read_at(eocd_offset, _EOCD.size):
            raise self._err("not a canonical kolm/1 zip: end-of-central-directory record differs")

    def iter_member(self, name: str) -> Iterator[bytes]:
        """The member's bytes in chunks; checks CRC and size, and never inflates past the declared size.

        A deflate stream must also end canonically: the unused high bits of its last byte are zero,
        as zlib writes them. Inflate ignores those bits, so without this check a flipped padding bit
        would leave a tampered file that still reads the same.
        """
        m = self.members[name]
        if m.method == STORED:
            yield from self._iter_stored(m)
        else:
            yield from self._iter_deflated(m)

    def _iter_stored(self, m: Member) -> Iterator[bytes]:
        remaining = m.csize
        crc = 0
        while remaining:
            self._f.seek(m.data_offset + m.csize - remaining)  # the consumer may read other members meanwhile
            block = self._f.read(min(CHUNK, remaining))
            if not block:
                raise self._err(f"truncated data for {m.name!r}")
            remaining -= len(block)
            crc = zlib.crc32(block, crc)
            yield block
        if crc & 0xFFFFFFFF != m.crc:
            raise self._err(f"{m.name!r}: CRC mismatch (corrupt data)")

    def _iter_deflated(self, m: Member) -> Iterator[bytes]:
        name = m.name
        inflater = zlib.decompressobj(-15)
        crc = produced = 0
        remaining = m.csize - 1  # the last byte is fed on its own, for the padding check
        if remaining < 0:
            raise self._err(f"corrupt compressed data in {name!r}: empty stream")

        def feed(data: bytes, inf: Any) -> bytes:
            nonlocal produced
            try:
                out = inf.decompress(data, m.usize - produced + 1)
            except zlib.error as exc:
                raise self._err(f"corrupt compressed data in {name!r}: {exc}") from exc
            if inf.unconsumed_tail or produced + len(out) > m.usize:
                raise self._err(f"{name!r} inflates past its declared size of {m.usize} bytes (zip bomb?)")
            produced += len(out)
            return out

        while remaining:
            self._f.seek(m.data_offset + m.csize - 1 - remaining)
            block = self._f.read(min(CHUNK, remaining))
            if not block:
                raise self._err(f"truncated data for {name!r}")
            remaining -= len(block)
            if inflater.eof:
                raise self._err(f"corrupt compressed data in {name!r}: data after the end of the stream")
            out = feed(block, inflater)
            crc = zlib.crc32(out, crc)
            if out:
                yield out
        self._f.seek(m.data_offset + m.csize - 1)
        last = self._f.read(1)
        if len(last) != 1:
            raise self._err(f"truncated data for {name!r}")
        if inflater.eof:
            raise self._err(f"corrupt compressed data in {name!r}: data after the end of the stream")
        before = inflater.copy()
        out = feed(last, inflater)
        if not inflater.eof or inflater.unused_data:
            raise self._err(f"corrupt compressed data in {name!r}: bad end of stream")
        _check_padding(before, last[0], out, self._err, name)
        crc = zlib.crc32(out, crc)
        if out:
            yield out
        if produced != m.usize:
            raise self._err(f"{name!r}: size {produced} differs from the declared {m.usize}")
        if crc & 0xFFFFFFFF != m.crc:
            raise self._err(f"{name!r}: CRC mismatch (corrupt data)")

    def prefix_digest(self, length: int) -> str:
        """sha256 hex of the archive's first ``length`` bytes."""
        h = hashlib.sha256()
        self._f.seek(0)
        remaining = length
        while remaining:
            block = self._f.read(min(CHUNK, remaining))
            if not block:
                raise self._err("truncated archive")
            h.update(block)
            remaining -= len(block)
        return h.hexdigest()

    def read(self, name: str, max_bytes: int | None = None) -> bytes:
        m = self.members[name]
        if max_bytes is not None and m.usize > max_bytes:
            raise self._err(f"{name!r} is {m.usize} bytes, over the {max_bytes}-byte limit for it")
        return b"".join(self.iter_member(name))


def _check_padding(
    before: Any,
    last: int,
    out: bytes,
    err: Callable[[str], ArtifactError],
    name: str,
) -> None:
    """Require the bits of the final byte that inflate does not use to be zero (zlib's padding).

    Deflate packs bits from the low end, so the used bits are the low ``k``: the smallest ``k``
    for which the byte with its higher bits cleared still ends the stream with the same output.
    """
    for k in range(1, 9):
        trial = before.copy()
        try:
            got = trial.decompress(bytes((last & ((1 << k) - 1),)))
        except zlib.error:
            continue
        if trial.eof and not trial.unused_data and got == out:
            if last >> k:
                raise err(f"corrupt compressed data in {name!r}: non-zero padding bits at the end of the stream")
            return
    raise err(f"corrupt compressed data in {name!r}: bad end of stream")  # pragma: no cover - k=8 always matches
