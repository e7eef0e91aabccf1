"""Fetch and verify the full datasets: mirrors, checksums, atomic writes, safe tar extraction.

Every file is written to a temporary name in the target folder and renamed into place only after its checksum
matched, so an interrupted or corrupt download never leaves a file that looks finished. A download has an overall
deadline (`DEADLINE_S`) besides the per-read timeout, a compressed file or archive is refused before it inflates past
`MAX_INFLATED_BYTES` (a decompression bomb), and processes fetching into one cache take turns (a file lock).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from tqdm.auto import tqdm

from course import arguments, config
from course.files import atomic_write_bytes, file_lock


class DataUnavailableError(RuntimeError):
    """The dataset is neither on disk nor downloadable right now; the message says how to get it."""


class ChecksumError(DataUnavailableError):
    """A file's bytes do not match the published checksum; it was not used."""

    def __init__(self, path: Path, detail: str, fix: str = "") -> None:
        self.path, self.detail, self.fix = Path(path), detail, fix
        super().__init__(f"{path}: {detail}. The file is corrupt or incomplete and was not used. {fix}".rstrip())


@dataclass(frozen=True)
class Checksum:
    """An expected digest of a file (`of="file"`) or of its gunzipped content (`of="raw"`)."""

    algo: str  # "md5" or "sha256"
    hexdigest: str
    of: str = "file"  # "file" or "raw"

    def __post_init__(self) -> None:
        arguments.choice(self.algo, ("md5", "sha256"), "Checksum.algo")
        arguments.choice(self.of, ("file", "raw"), "Checksum.of")


_IDX = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
_CIFAR_DIR = "cifar-10-batches-py"

#: The files that make up each full dataset, relative to DATA_DIR/downloads/<name>/, per split.
FILES: dict[str, dict[str, tuple[str, ...]]] = {
    "mnist": {"train": _IDX[:2], "test": _IDX[2:]},
    "fashion-mnist": {"train": _IDX[:2], "test": _IDX[2:]},
    "cifar10": {
        "train": tuple(f"{_CIFAR_DIR}/data_batch_{i}" for i in range(1, 6)),
        "test": (f"{_CIFAR_DIR}/test_batch",),
    },
}
#: Datasets published as one archive: fetch it, then unpack FILES from it.
ARCHIVES: dict[str, str] = {"cifar10": "cifar-10-python.tar.gz"}

#: Official mirrors, tried in order. `COURSE_MIRROR=<base url>` (or a `mirrors=` argument) replaces them.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/",),
}

#: Published checksums. MNIST: .gz md5 (torchvision/datasets/mnist.py) and raw md5 (yann.lecun.com files).
#: Fashion-MNIST: sha256 of the decompressed bytes (Debian re-gzipped the files, so only those match every copy).
#: CIFAR-10: md5 of the tarball and of each unpacked batch (torchvision/datasets/cifar.py).
CHECKSUMS: dict[str, dict[str, tuple[Checksum, ...]]] = {
    "mnist": {
        _IDX[0]: (Checksum("md5", "f68b3c2dcbeaaa9fbdd348bbdeb94873"), Checksum("md5", "6bbc9ace898e44ae57da46a324031adb", "raw")),
        _IDX[1]: (Checksum("md5", "d53e105ee54ea40749a09fcbcd1e9432"), Checksum("md5", "a25bea736e30d166cdddb491f175f624", "raw")),
        _IDX[2]: (Checksum("md5", "9fb629c4189551a2d022fa330f9573f3"), Checksum("md5", "2646ac647ad5339dbf082846283269ea", "raw")),
        _IDX[3]: (Checksum("md5", "ec29112dd5afa0611ce80d1b7f02629c"), Checksum("md5", "27ae3e4e09519cfbb04c329615203637", "raw")),
    },
    "fashion-mnist": {
        _IDX[0]: (Checksum("sha256", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", "raw"),),
        _IDX[1]: (Checksum("sha256", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", "raw"),),
        _IDX[2]: (Checksum("sha256", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", "raw"),),
        _IDX[3]: (Checksum("sha256", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", "raw"),),
    },
    "cifar10": {
        "cifar-10-python.tar.gz": (Checksum("md5", "c58f30108f718f92721af3b95e74349a"),),
        f"{_CIFAR_DIR}/data_batch_1": (Checksum("md5", "c99cafc152244af753f735de768cd75f"),),
        f"{_CIFAR_DIR}/data_batch_2": (Checksum("md5", "d4bba439e000b95fd0a9bffe97cbabec"),),
        f"{_CIFAR_DIR}/data_batch_3": (Checksum("md5", "54ebc095f3ab1f0389bbae665268c751"),),
        f"{_CIFAR_DIR}/data_batch_4": (Checksum("md5", "634d18415352ddfa80567beed471001a"),),
        f"{_CIFAR_DIR}/data_batch_5": (Checksum("md5", "482c414d41f54cd18b22e5b47cb7c3cb"),),
        f"{_CIFAR_DIR}/test_batch": (Checksum("md5", "40351d587109b95175f43aff81a1287e"),),
    },
}

TIMEOUT_S = 30.0  # per socket operation
DEADLINE_S = 30 * 60.0  # per file, all reads together: a server that trickles bytes cannot hold a download forever
#: The most bytes a compressed file or archive may inflate to (the largest the course reads: CIFAR-10's tar, ~178 MB).
MAX_INFLATED_BYTES = 512 * 2**20
_CHUNK = 1 << 16
#: Hosts that refused a connection or failed DNS in this process; skipped afterwards (`forget_unreachable` clears it).
UNREACHABLE: set[str] = set()


def forget_unreachable() -> None:
    """Try every mirror again, also the hosts that were unreachable earlier in this process."""
    UNREACHABLE.clear()


def mirrors_for(name: str, mirrors: Sequence[str] | None = None) -> tuple[str, ...]:
    """Base URLs to try: the `mirrors` argument (a list of URLs), else $COURSE_MIRROR, else MIRRORS[name]."""
    if mirrors is not None:
        return arguments.names(mirrors, "mirrors", single=False)
    env = os.environ.get("COURSE_MIRROR", "").strip()
    return (env,) if env else MIRRORS[name]


def _hexdigest(data: bytes, algo: str) -> str:
    return hashlib.new(algo, data).hexdigest()


def _bomb(path: Path, fix: str) -> ChecksumError:
    return ChecksumError(path, f"refusing to inflate it: it would exceed {MAX_INFLATED_BYTES:,} bytes (a "
                               f"decompression bomb, or not the dataset file)", fix)


def _gunzip(path: Path, data: bytes, fix: str) -> bytes:
    """The inflated bytes of gzip `data`, refused before inflating when its declared size is over the limit, and
    stopped as soon as the output passes it (the declared size, mod 2**32, can lie)."""
    if len(data) >= 4 and int.from_bytes(data[-4:], "little") > MAX_INFLATED_BYTES:
        raise _bomb(path, fix)
    out, rest = [], data
    try:
        while rest:                                          # one gzip member after another
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out.append(inflater.decompress(rest, MAX_INFLATED_BYTES + 1 - sum(map(len, out))))
            if sum(map(len, out)) > MAX_INFLATED_BYTES or inflater.unconsumed_tail:
                raise _bomb(path, fix)
            if not inflater.eof:
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
            rest = inflater.unused_data
    except (zlib.error, EOFError) as err:
        raise ChecksumError(path, f"not a valid gzip file ({err})", fix) from None
    return b"".join(out)


def verify(path: Path, data: bytes, checks: Sequence[Checksum], *, fix: str, want_raw: bool = False) -> bytes:
    """Check `data` (the bytes of `path`) against `checks`; return them, gunzipped if `want_raw` and a .gz name."""
    gz = Path(path).name.endswith(".gz")
    raw = None
    for check in sorted(checks, key=lambda c: c.of != "file"):  # file checks first: cheap, no decompression
        if check.of == "raw" and raw is None:
            raw = _gunzip(path, data, fix) if gz else data
        got = _hexdigest(data if check.of == "file" else raw, check.algo)
        if got != check.hexdigest:
            what = "decompressed content" if check.of == "raw" else "file"
            raise ChecksumError(path, f"checksum mismatch ({check.algo} of the {what} is {got}, expected {check.hexdigest})", fix)
    if not want_raw or not gz:
        return data
    return raw if raw is not None else _gunzip(path, data, fix)


def read_verified(path: Path, checks: Sequence[Checksum], *, fix: str, want_raw: bool = True) -> bytes:
    """Read `path`, verify it, and return its raw bytes; raise ChecksumError (naming the file and `fix`) otherwise."""
    return verify(path, Path(path).read_bytes(), checks, fix=fix, want_raw=want_raw)


def _describe(err: BaseException) -> str:
    """A one-line reason for a failed request, without a traceback."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"cannot connect ({err.reason})"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def fetch_url(url: str, dest: Path, checks: Sequence[Checksum], *, progress: bool = True) -> Path:
    """Download `url` into memory, check its length and checksums, then write it to `dest` atomically."""
    dest = Path(dest)
    chunks, received = [], 0
    start = time.monotonic()
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
        expected = resp.headers.get("Content-Length")
        expected = int(expected) if expected and expected.isdigit() else None
        with tqdm(total=expected, unit="B", unit_scale=True, desc=dest.name, disable=not progress, leave=False) as bar:
            while chunk := resp.read1(_CHUNK):              # what arrived, so the deadline is checked between reads
                chunks.append(chunk)
                received += len(chunk)
                bar.update(len(chunk))
                if time.monotonic() - start > DEADLINE_S:
                    raise DataUnavailableError(f"download took longer than the {DEADLINE_S:.0f} s deadline "
                                               f"({received:,} bytes received); try again later or another mirror")
    if expected is not None and received != expected:
        raise DataUnavailableError(f"truncated download: got {received} of {expected} bytes")
    data = b"".join(chunks)
    verify(dest, data, checks, fix="")
    return atomic_write_bytes(dest, data)


def fetch_from_mirrors(filename: str, dest: Path, checks: Sequence[Checksum], mirrors: Sequence[str], *, progress: bool = True) -> Path:
    """Try each mirror for `filename` until one gives a verified copy; raise DataUnavailableError listing every failure."""
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        host = urllib.parse.urlsplit(url).netloc
        if host in UNREACHABLE:
            failures.append(f"{url}: skipped ({host} was unreachable earlier in this session)")
            continue
        try:
            return fetch_url(url, dest, checks, progress=progress)
        except urllib.error.HTTPError as err:
            failures.append(f"{url}: {_describe(err)}")
        except urllib.error.URLError as err:
            UNREACHABLE.add(host)
            failures.append(f"{url}: {_describe(err)}")
        except ChecksumError as err:
            failures.append(f"{url}: {err.detail}")
        except (DataUnavailableError, OSError, ValueError) as err:  # truncation, timeouts, resets
            failures.append(f"{url}: {_describe(err)}")
    raise DataUnavailableError(f"could not download {filename}:\n  " + "\n  ".join(failures or ["no mirrors given"]))


class _Capped(io.RawIOBase):
    """A read-only stream that raises once more than `limit` bytes were read from `inner` (decompression bombs)."""

    def __init__(self, inner, limit: int, error: Exception):
        self.inner, self.left, self.error = inner, limit, error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.inner.read(min(len(buffer), self.left + 1))
        self.left -= len(data)
        if self.left < 0:
            raise self.error
        buffer[: len(data)] = data
        return len(data)


def extract_members(archive: Path, dest_dir: Path, members: Mapping[str, Sequence[Checksum]]) -> list[Path]:
    """Unpack only the named regular files from a tar archive, each verified and written atomically.

    The archive is read as a stream that stops at `MAX_INFLATED_BYTES` inflated bytes, and a member whose header
    declares more is refused before it is read."""
    fix = f"The archive {archive} is corrupt: delete it and run {config.command('download')}."
    for member_name in members:
        rel = Path(member_name)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"refusing unsafe archive path {member_name!r}")
    found: dict[str, bytes] = {}
    with open(archive, "rb") as raw:
        magic = raw.read(2)
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw) if magic == b"\x1f\x8b" else raw
        capped = io.BufferedReader(_Capped(stream, MAX_INFLATED_BYTES, _bomb(archive, fix)))
        try:
            with tarfile.open(fileobj=capped, mode="r|") as tar:
                for info in tar:
                    if info.name not in members or info.name in found:
                        continue
                    if not info.isreg():
                        raise DataUnavailableError(f"{archive}: {info.name} is not a regular file; refusing to extract it")
                    if info.size > MAX_INFLATED_BYTES:
                        raise _bomb(archive, fix)
                    found[info.name] = tar.extractfile(info).read()
                    if len(found) == len(members):
                        break
        except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
            raise ChecksumError(archive, f"not a valid tar archive ({err})", fix) from None
    missing = [m for m in members if m not in found]
    if missing:
        raise DataUnavailableError(f"{archive} has no member {missing[0]}; delete it and download again")
    out = []
    for member_name, checks in members.items():
        target = dest_dir / Path(member_name)
        verify(target, found[member_name], checks, fix=fix)
        out.append(atomic_write_bytes(target, found[member_name]))
    return out


def fetch_dataset(
    name: str,
    dest_dir: Path,
    *,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, Sequence[Checksum]] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Download the full dataset `name` into `dest_dir` (DATA_DIR/downloads/<name>/) and return its verified files.

    Processes fetching into one `dest_dir` take turns (a file lock beside it): the second finds the first's files."""
    arguments.choice(name, FILES, "dataset")
    bases = mirrors_for(name, mirrors)
    dest_dir = Path(dest_dir)
    with file_lock(dest_dir.parent / f".{dest_dir.name}.fetch"):
        return _fetch(name, dest_dir, bases, CHECKSUMS[name] if checksums is None else checksums, progress)


def _verified(path: Path, checks: Sequence[Checksum]) -> Path:
    read_verified(path, checks, fix="", want_raw=False)
    return path


def _fetch(name: str, dest_dir: Path, bases: tuple[str, ...], checksums: Mapping[str, Sequence[Checksum]],
           progress: bool) -> list[Path]:
    wanted = [f for split in ("train", "test") for f in FILES[name][split]]
    if name in ARCHIVES:
        archive = dest_dir / ARCHIVES[name]
        try:                                   # unpacked already (by another process that held the lock first)
            if not archive.exists():
                return [_verified(dest_dir / f, checksums.get(f, ())) for f in wanted]
        except (FileNotFoundError, ChecksumError):
            pass
        if not archive.exists():
            fetch_from_mirrors(archive.name, archive, checksums.get(archive.name, ()), bases, progress=progress)
        else:
            read_verified(archive, checksums.get(archive.name, ()), fix=f"Delete it and run {config.command('download')} again.", want_raw=False)
        paths = extract_members(archive, dest_dir, {f: checksums.get(f, ()) for f in wanted})
        archive.unlink()  # the unpacked, verified batches are all the course reads
        return paths
    paths = []
    for filename in wanted:
        target = dest_dir / filename
        try:
            read_verified(target, checksums.get(filename, ()), fix="", want_raw=False)
        except (FileNotFoundError, ChecksumError):  # absent or bad: (re)fetch; os.replace swaps it atomically
            fetch_from_mirrors(filename, target, checksums.get(filename, ()), bases, progress=progress)
        paths.append(target)
    return paths
