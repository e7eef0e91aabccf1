"""Course-wide settings: the fast-mode switch, paths, seeding and the device."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

#: `COURSE_FAST=1` shrinks epochs and data sizes (for CI and nbval). It never changes which code runs.
FAST: bool = os.environ.get("COURSE_FAST", "0").strip().lower() not in ("", "0", "false", "no")

#: Repository root (the folder holding `course/`, `data/`, `notebooks/`).
ROOT: Path = Path(__file__).resolve().parent.parent
#: Where datasets live. Override with `COURSE_DATA_DIR`.
DATA_DIR: Path = Path(os.environ.get("COURSE_DATA_DIR", ROOT / "data")).expanduser()
#: Shipped, verified dense baselines.
CHECKPOINT_DIR: Path = ROOT / "data" / "checkpoints"


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
