"""The names inside an archive, read from its bytes in memory: Gmail refuses a .js inside a .zip
as it refuses the .js itself (support.google.com/mail/answer/6590), so what an archive holds must
be known before a mail carrying it is queued. Bounded: nested archives are opened a few levels
deep and never past `MAX_UNPACKED` bytes in all, so a zip bomb costs nothing."""
from __future__ import annotations

import bz2
import gzip
import io
import tarfile
import zipfile
import zlib
from dataclasses import dataclass

import rarfile

MAX_DEPTH = 3  # an archive in an archive in an archive
MAX_UNPACKED = 64 * 1024 * 1024  # bytes decompressed in all, to look inside nested archives
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".taz", ".tar.gz", ".gz", ".z", ".rar", ".bz2", ".tbz2", ".tar.bz2")


@dataclass(frozen=True)
class Listing:
    """`names`: every member, nested ones as "outer.zip/inner.zip/setup.js". `unreadable`: why part of
    it could not be read ("password-protected archive inside", "damaged archive"), else None."""
    names: tuple[str, ...]
    unreadable: str | None = None


def is_archive(filename: str, content: bytes | None) -> bool:
    return filename.lower().endswith(ARCHIVE_SUFFIXES) or _kind(content or b"") is not None


def listing(filename: str, content: bytes) -> Listing | None:
    """What the archive holds, or None when the file is not an archive."""
    if _kind(content) is None and not filename.lower().endswith(ARCHIVE_SUFFIXES):
        return None
    walk = _Walk()
    walk.open(filename, content, "", 0)
    return Listing(tuple(walk.names), walk.unreadable)


def _kind(content: bytes) -> str | None:
    if content[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if content[:2] == b"\x1f\x8b":
        return "gzip"
    if content[:3] == b"BZh":
        return "bz2"
    if content[:7] == b"Rar!\x1a\x07\x00" or content[:8] == b"Rar!\x1a\x07\x01\x00":
        return "rar"
    if content[257:262] == b"ustar":
        return "tar"
    if content[:2] == b"\x1f\x9d":  # compress(1): .Z, .taz; its content has no names of its own
        return "compress"
    return None


class _Walk:
    def __init__(self):
        self.names: list[str] = []
        self.unreadable: str | None = None
        self.budget = MAX_UNPACKED

    def note(self, why: str) -> None:
        self.unreadable = self.unreadable or why

    def open(self, filename: str, content: bytes, prefix: str, depth: int) -> None:
        kind = _kind(content)
        try:
            if kind == "zip":
                self._zip(content, prefix, depth)
            elif kind == "tar":
                self._tar(content, prefix, depth)
            elif kind == "rar":
                self._rar(content, prefix)
            elif kind in ("gzip", "bz2"):
                self._stream(filename, content, kind, prefix, depth)
            elif kind == "compress":
                self.names.append(prefix + _without_suffix(filename))
            elif filename.lower().endswith(ARCHIVE_SUFFIXES):
                self.note("damaged archive")
        except (zipfile.BadZipFile, tarfile.TarError, rarfile.Error, OSError, EOFError, zlib.error,
                ValueError, NotImplementedError, RuntimeError, IndexError, KeyError) as e:
            self.note("damaged archive" if not isinstance(e, rarfile.NeedFirstVolume) else "split archive")

    def _inner(self, name: str, read, size: int, prefix: str, depth: int) -> None:
        """A member that is itself an archive: opened while depth and budget allow."""
        if not name.lower().endswith(ARCHIVE_SUFFIXES):
            return
        if depth + 1 >= MAX_DEPTH or size > self.budget:
            self.note("archive nested too deep or too large to look inside")
            return
        self.budget -= size
        self.open(name, read(), prefix + name + "/", depth + 1)

    def _zip(self, content: bytes, prefix: str, depth: int) -> None:
        with zipfile.ZipFile(io.BytesIO(content)) as zf:
            for info in zf.infolist():
                self.names.append(prefix + info.filename)
                if info.flag_bits & 0x1:  # encrypted: the name shows, the bytes do not
                    if info.filename.lower().endswith(ARCHIVE_SUFFIXES):
                        self.note("password-protected archive inside")
                    continue
                self._inner(info.filename, lambda i=info: zf.read(i), info.file_size, prefix, depth)

    def _tar(self, content: bytes, prefix: str, depth: int) -> None:
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:") as tf:
            for member in tf:
                self.names.append(prefix + member.name)
                if member.isfile():
                    self._inner(member.name, lambda m=member: tf.extractfile(m).read(), member.size, prefix, depth)

    def _rar(self, content: bytes, prefix: str) -> None:
        with rarfile.RarFile(io.BytesIO(content)) as rf:
            if rf.needs_password() and not rf.infolist():
                self.note("password-protected archive")  # even its names are hidden
                return
            for info in rf.infolist():
                self.names.append(prefix + info.filename)
                if info.filename.lower().endswith(ARCHIVE_SUFFIXES):
                    self.note("archive inside a RAR archive")  # unpacking RAR needs unrar: not looked into

    def _stream(self, filename: str, content: bytes, kind: str, prefix: str, depth: int) -> None:
        """A .gz or .bz2 holds one file: a tar (.tgz), or a file named like the archive without its suffix."""
        limit = min(self.budget, MAX_UNPACKED)
        opener = gzip.GzipFile(fileobj=io.BytesIO(content)) if kind == "gzip" else bz2.BZ2File(io.BytesIO(content))
        with opener as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            self.note("archive too large to look inside")
            data = data[:limit]
        self.budget -= len(data)
        if data[257:262] == b"ustar":
            self._tar(data, prefix, depth)
            return
        name = _gzip_name(content) if kind == "gzip" else None
        self.names.append(prefix + (name or _without_suffix(filename)))
        inner = name or _without_suffix(filename)
        if _kind(data) is not None and depth + 1 < MAX_DEPTH:
            self.open(inner, data, prefix + inner + "/", depth + 1)


def _without_suffix(filename: str) -> str:
    lower = filename.lower()
    for suffix, becomes in ((".tgz", ".tar"), (".taz", ".tar"), (".tbz2", ".tar"), (".gz", ""), (".bz2", ""),
                            (".z", "")):
        if lower.endswith(suffix):
            return filename[: len(filename) - len(suffix)] + becomes
    return filename


def _gzip_name(content: bytes) -> str | None:
    """The original file name a gzip header may carry (FNAME, RFC 1952)."""
    if len(content) < 10 or not content[3] & 0x08:
        return None
    start = 10
    if content[3] & 0x04:  # FEXTRA comes first
        if len(content) < 12:
            return None
        start += 2 + int.from_bytes(content[10:12], "little")
    end = content.find(b"\x00", start, start + 1024)
    return content[start:end].decode("latin-1") if end > start else None
