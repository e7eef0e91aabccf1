"""Bytes on disk: atomic writes, deterministic gzip and xz, file checksums, a checksum trailer and a file lock (the one
home of each).

    atomic_write_bytes(path, seal(data))       # the file ends in a 45-byte sha256 trailer
    payload = unseal(path.read_bytes(), path)  # FileFormatError if one byte changed
    with file_lock(folder / "manifest.json"):  # one process at a time reads, changes and replaces it
        ...
"""
from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["FileFormatError", "atomic_write_bytes", "gzip_bytes", "xz_bytes", "unpack_compressed", "file_sha256", "TRAILER", "seal", "is_sealed", "unseal",
           "file_lock"]

#: The trailer `seal` appends: this tag, then the 32-byte sha256 of everything before it. Zip readers (torch.load)
#: find their directory from the end of the file and ignore bytes after it, so a sealed torch.save file still loads.
TRAILER = b"\ncourse-sha256"
_SEAL_BYTES = len(TRAILER) + 32


class FileFormatError(ValueError):
    """A file is not one this library wrote, or it was damaged after writing (checksum, truncation, parse error)."""


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


def seal(data: bytes) -> bytes:
    """data + TRAILER + sha256(data): what `unseal` checks."""
    return data + TRAILER + hashlib.sha256(data).digest()


def is_sealed(data: bytes) -> bool:
    """Whether `data` ends in a `seal` trailer (its tag at the right place)."""
    return len(data) >= _SEAL_BYTES and data[-_SEAL_BYTES:-32] == TRAILER


def unseal(data: bytes, source: object = "the file") -> bytes:
    """The payload of sealed `data`, after checking its sha256; FileFormatError naming `source` if it differs.

    Data without a trailer (a plain torch.save, written elsewhere) comes back as it is: there is nothing to check.
    """
    if not is_sealed(data):
        return data
    payload, digest = data[:-_SEAL_BYTES], data[-32:]
    if hashlib.sha256(payload).digest() != digest:
        raise FileFormatError(f"{source} is damaged: its sha256 does not match the checksum written with it (a byte "
                              f"changed on disk or in transfer). Save the model again, or restore the file from a copy.")
    return payload


@contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on `<path>.lock` for the block; other processes that ask for it wait (POSIX flock).
    Guards read-modify-replace of shared files (a manifest, a download cache).

    The lock file is removed on release (so no file is left behind); a waiter that then holds the lock of a removed
    file sees that its inode is gone and locks the new file instead. Where flock is missing (Windows), msvcrt locks
    the file and it stays.
    """
    lock = Path(f"{os.fspath(path)}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:                                               # Windows
        yield from _msvcrt_lock(lock)
        return
    while True:
        f = open(lock, "a+b")
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            if os.fstat(f.fileno()).st_ino == os.stat(lock).st_ino:    # still the file at that path: ours
                break
        except FileNotFoundError:                                     # removed by the holder we waited for
            pass
        f.close()
    try:
        yield lock
    finally:
        os.unlink(lock)                                               # before unlocking: waiters see a stale inode
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        f.close()


def _msvcrt_lock(lock: Path) -> Iterator[Path]:
    import msvcrt

    with open(lock, "a+b") as f:
        f.seek(0)
        while True:
            try:
                msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
                break
            except OSError:                                           # LK_LOCK gives up after 10 s: ask again
                continue
        try:
            yield lock
        finally:
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
