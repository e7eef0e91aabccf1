"""Bytes on disk: atomic writes, deterministic gzip and xz, and file checksums (the one home of each)."""
from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "gzip_bytes", "xz_bytes", "unpack_compressed", "file_sha256"]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` via a temp file in the same folder + rename, so no half-written file is ever seen."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)                   # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def gzip_bytes(data: bytes) -> bytes:
    """gzip at level 9 with mtime 0, no file name and OS byte 255: the same bytes for the same input on any machine."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def xz_bytes(data: bytes) -> bytes:
    """xz (LZMA2, preset 9 + extreme, CRC64): an LZ77 + range coder, deterministic (no time stamp, no file name)."""
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=9 | lzma.PRESET_EXTREME)


def unpack_compressed(data: bytes) -> bytes:
    """Undo `xz_bytes` or `gzip_bytes`, told apart by their magic bytes; anything else comes back unchanged.

    Raises ValueError ("a damaged xz file (...)") for a truncated or corrupted stream.
    """
    codec = "xz" if data[:6] == b"\xfd7zXZ\x00" else "gzip" if data[:2] == b"\x1f\x8b" else None
    try:
        if codec == "xz":
            return lzma.decompress(data, format=lzma.FORMAT_XZ)
        if codec == "gzip":
            return gzip.decompress(data)
    except (OSError, EOFError, lzma.LZMAError) as e:
        raise ValueError(f"a damaged {codec} file ({e})") from e
    return data


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 hex digest of a file's bytes, read in 1 MB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
