"""Which dataset a notebook runs on: the one it wants, or a real fallback announced by a banner.

    choice = choose_dataset("cifar10")      # CIFAR-10 if on disk or downloadable, else the best real fallback
    choice                                  # displays a banner saying which dataset is used and why

The fallback is always a real dataset found on disk, never synthetic data.
Introduced in 08_capstone_cifar10
"""
from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from course import arguments, config
from course.data.catalog import DATASET_NAMES, SPECS
from course.data.download import DataUnavailableError
from course.data.loading import available, cache_dir, load_dataset, locate

__all__ = ["DatasetChoice", "choose_dataset"]


@dataclass(frozen=True)
class DatasetChoice:
    """The dataset a notebook uses (`name`, `variant`), the one it `wanted`, and why that one was not used."""

    name: str
    wanted: str
    variant: str
    reason: str = ""          # why `wanted` is not used; "" when it is

    @property
    def fallback(self) -> bool:
        """True when the notebook runs on something other than the dataset it wanted."""
        return self.name != self.wanted

    @property
    def title(self) -> str:
        """E.g. 'Fashion-MNIST (full, real)' or 'MNIST (10k-subset, real)'."""
        return f"{SPECS[self.name].title} ({self.variant}, real)"

    def message(self) -> str:
        """The banner's text: what is used, and (on a fallback) why and how to get the wanted dataset."""
        if not self.fallback:
            return f"Using {self.title}: the recipe runs on the dataset it was written for."
        wanted = SPECS[self.wanted].title
        apt = (" On Debian/Ubuntu, `sudo apt install dataset-fashion-mnist` installs it offline."
               if self.wanted == "fashion-mnist" else "")
        return (f"{wanted} is not available on this machine: {self.reason} Running the same recipe on {self.title} "
                f"instead. To use {wanted}: run {config.command('download')} on a machine with internet, which "
                f"downloads and checksum-verifies it into {cache_dir(self.wanted)}/, or put the official files in "
                f"that folder by hand.{apt} Then rerun this notebook.")

    def __repr__(self) -> str:
        return ("⚠ " if self.fallback else "✔ ") + self.message()

    def _repr_html_(self) -> str:
        fg, bg, head = (("#8a5300", "#fff4e0", f"⚠ {SPECS[self.wanted].title} is not available: "
                         f"running on {self.title}") if self.fallback
                        else ("#1e6b34", "#e7f5ea", f"✔ Running on {self.title}"))
        body = html.escape(self.message())
        body = re.sub(r"`([^`]+)`", r"<code>\1</code>", body)
        return (f'<div style="border:2px solid {fg};background:{bg};color:#222;border-radius:6px;padding:8px 12px;'
                f'margin:4px 0;font-family:sans-serif"><b style="color:{fg}">{html.escape(head)}</b>'
                f'<div style="margin-top:4px">{body}</div></div>')


def _reason(err: DataUnavailableError) -> str:
    """The 'why' of a DataUnavailableError on one line: the text between 'not available here:' and 'To get it:'."""
    text = str(err).split("\nTo get it:")[0]
    text = text.split("is not available here:", 1)[-1]
    return " ".join(text.split())


def choose_dataset(wanted: str = "cifar10", fallbacks: Sequence[str] = ("fashion-mnist", "mnist"), *,
                   download: bool = True, root: str | Path | None = None, **load_kwargs) -> DatasetChoice:
    """`wanted` if a copy is on disk or (download=True) downloads; else the first fallback with a full copy on disk,
    else the first fallback with any real copy (e.g. the shipped MNIST subset). Raises DataUnavailableError if none.

    `load_kwargs` (mirrors=, checksums=) go to `load_dataset` for `wanted`. Introduced in 08_capstone_cifar10
    """
    fallbacks = arguments.names(fallbacks, "fallbacks")
    for name in (wanted, *fallbacks):
        arguments.choice(name, DATASET_NAMES, "dataset")
    found = locate(wanted, root=root)
    if found is not None and found.variant == "full":
        return DatasetChoice(wanted, wanted, found.variant)
    try:
        ds = load_dataset(wanted, "test", root=root, download=download, **load_kwargs)
        if ds.info.variant == "full":
            return DatasetChoice(wanted, wanted, ds.info.variant)
        reason = f"only the {ds.info.variant} is on disk ({ds.info.note or 'no full copy'})."
    except DataUnavailableError as err:
        reason = _reason(err)
    on_disk = [(name, locate(name, root=root)) for name in fallbacks if available(name, root=root)]
    full = [(n, loc) for n, loc in on_disk if loc.variant == "full"]
    if not (full or on_disk):
        raise DataUnavailableError(f"{SPECS[wanted].title} is not available ({reason}) and no fallback "
                                   f"({', '.join(fallbacks)}) is on disk either. Run {config.command('download')} "
                                   f"on a machine with internet, or {config.command('prepare')} here.")
    name, loc = (full or on_disk)[0]
    return DatasetChoice(name, wanted, loc.variant, reason)
