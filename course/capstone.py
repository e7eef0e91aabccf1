"""The capstone's two helpers: choose the dataset (with a visible banner when it falls back) and a sensitivity scan.

    choice = choose_dataset("cifar10")              # CIFAR-10 if on disk or downloadable, else the best real fallback
    choice                                          # displays a banner saying which dataset is used and why
    scan = sensitivity_scan(model, [0.25, 0.5, 0.75], (x, y), kind="structured")   # prune one layer at a time
    scan.drop("conv3", 0.5)                         # baseline accuracy - accuracy with conv3 pruned by half

The fallback is always a real dataset found on disk, never synthetic data.
Introduced in 08_capstone_cifar10
"""
from __future__ import annotations

import html
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from course.catalog import SPECS
from course.data import DataUnavailableError, available, load_dataset, locate
from course.pruning.masks import prunable_layers
from course.pruning.structured import prune_structured
from course.pruning.surgery import chain_links
from course.pruning.unstructured import prune_unstructured
from course.table import Table
from course.train import evaluate

__all__ = ["DatasetChoice", "choose_dataset", "KINDS", "SensitivityScan", "sensitivity_scan"]

KINDS = ("structured", "unstructured")
_CRITERION = {"structured": "l1", "unstructured": "magnitude"}
_EVAL_BATCH = 500


# --- which dataset ------------------------------------------------------------------------------------------

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
        return (f"{wanted} is not available on this machine: {self.reason} Running the same recipe on {self.title} "
                f"instead. To use {wanted}: run `make data` (or `python -m course.data download`) on a machine with "
                f"internet, which downloads and checksum-verifies it into data/downloads/{self.wanted}/, or put the "
                f"official archive in that folder by hand; then rerun this notebook.")

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
    if isinstance(fallbacks, str):
        fallbacks = (fallbacks,)
    for name in (wanted, *fallbacks):
        if name not in SPECS:
            raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(SPECS)}")
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
                                   f"({', '.join(fallbacks)}) is on disk either. Run `make data` on a machine "
                                   f"with internet, or `make data-offline` here.")
    name, loc = (full or on_disk)[0]
    return DatasetChoice(name, wanted, loc.variant, reason)


# --- sensitivity scan ---------------------------------------------------------------------------------------

class SensitivityScan(Table):
    """Accuracy after pruning ONE layer at a time: `.accuracy[layer][ratio]`, `.baseline`, `.drop(layer, ratio)`."""

    def __init__(self, kind: str, criterion: str, baseline: float, sizes: dict[str, int],
                 accuracy: dict[str, dict[float, float]], ratios: Sequence[float], n_samples: int):
        self.kind, self.criterion, self.baseline, self.n_samples = kind, criterion, baseline, n_samples
        self.ratios = list(ratios)
        self.layers = list(accuracy)
        self.accuracy = accuracy
        self.sizes = sizes
        unit = "units" if kind == "structured" else "weights"
        cols = ["layer", unit] + [f"{r:.0%}" for r in self.ratios]
        rows = [(n, sizes[n], *[accuracy[n][r] for r in self.ratios]) for n in self.layers]
        what = "units removed (ratio)" if kind == "structured" else "weights zeroed (sparsity)"
        super().__init__(cols, rows, title=f"Sensitivity ({kind}, {criterion}): accuracy with one layer pruned",
                         formats={c: ".2%" for c in cols[2:]},
                         note=f"columns: fraction of the layer's {what}; unpruned accuracy {baseline:.2%} on "
                              f"{n_samples:,} images; no fine-tuning")

    def drop(self, layer: str, ratio: float) -> float:
        """baseline accuracy - accuracy with only `layer` pruned at `ratio` (a fraction; > 0 means worse)."""
        if layer not in self.accuracy:
            raise KeyError(f"no layer {layer!r} in the scan; layers: {self.layers}")
        if ratio not in self.accuracy[layer]:
            raise KeyError(f"ratio {ratio!r} was not scanned; ratios: {self.ratios}")
        return self.baseline - self.accuracy[layer][ratio]

    def plot(self, ax=None):
        """Accuracy vs ratio, one line per layer, the unpruned accuracy dashed; returns the matplotlib Axes."""
        import matplotlib.pyplot as plt

        if ax is None:  # a fresh figure: never draw over whatever figure happens to be current
            _, ax = plt.subplots(figsize=(6, 3.5))
        xs = [0.0] + self.ratios
        for name in self.layers:
            ax.plot([100 * x for x in xs], [100 * self.baseline] + [100 * self.accuracy[name][r] for r in self.ratios],
                    marker="o", ms=3, label=name)
        ax.axhline(100 * self.baseline, color="k", ls="--", lw=0.8)
        ax.set_xlabel("% of units removed" if self.kind == "structured" else "% of weights zeroed")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"{self.kind} ({self.criterion}), one layer at a time")
        ax.legend(fontsize=7, ncol=2)
        return ax


def _batches(data) -> list[tuple[torch.Tensor, torch.Tensor]] | Iterable:
    """An (x, y) pair split into batches of 500 (to bound memory), or a re-iterable of batches as it is."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"data must be a non-empty (x, y) pair of equal length, got {len(x)} and {len(y)}")
        return list(zip(x.split(_EVAL_BATCH), y.split(_EVAL_BATCH)))
    if not isinstance(data, Iterable) or iter(data) is data:
        raise TypeError(f"data must be an (x, y) pair of tensors or a re-iterable of batches such as a DataLoader "
                        f"(it is read once per layer and ratio), got {type(data).__name__}")
    return data


def _check_ratios(ratios: Sequence[float]) -> list[float]:
    out = []
    for r in ratios:
        if isinstance(r, bool) or not isinstance(r, numbers.Real) or not 0.0 < float(r) < 1.0:
            raise ValueError(f"ratios must be numbers in (0, 1) (the fraction pruned), got {r!r}")
        out.append(float(r))
    if not out or len(set(out)) != len(out):
        raise ValueError(f"ratios must be a non-empty list of distinct values, got {list(ratios)}")
    return sorted(out)


def sensitivity_scan(model: nn.Module, ratios: Sequence[float], data, *, kind: str = "structured",
                     criterion: str | None = None, layers: Sequence[str] | None = None,
                     progress: bool = True) -> SensitivityScan:
    """For every layer L and ratio r: prune ONLY L of a copy of `model`, then measure accuracy on `data`.

    structured: `prune_structured(model, r, exclude=<every other layer>)` removes round(r·units) of L's units
    (criterion "l1" by default); unstructured: `prune_unstructured(model, r, exclude=...)` zeroes round(r·n) of
    L's weights ("magnitude" by default). No fine-tuning. `data` (an (x, y) pair or a DataLoader) is what
    the accuracy is measured on, and what gradient criteria ("taylor", ...) score on.
    `model` is not changed. Introduced in 08_capstone_cifar10
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {list(KINDS)}")
    ratios = _check_ratios(ratios)
    criterion = criterion or _CRITERION[kind]
    if kind == "structured":
        sizes = {link.layer: link.units for link in chain_links(model)}
    else:
        sizes = {n: m.weight.numel() for n, m in prunable_layers(model)}
    if layers is not None:
        layers = [layers] if isinstance(layers, str) else list(layers)
        unknown = [n for n in layers if n not in sizes]
        if unknown or not layers:
            raise ValueError(f"layers {unknown or layers} cannot be scanned ({kind}); choose from {list(sizes)}")
        sizes = {n: sizes[n] for n in layers}
    batches = _batches(data)
    baseline = evaluate(model, batches)
    n_samples = sum(len(y) for _, y in batches)
    prune = prune_structured if kind == "structured" else prune_unstructured
    all_layers = [n for n, _ in prunable_layers(model)]
    accuracy: dict[str, dict[float, float]] = {}
    bar = tqdm(total=len(sizes) * len(ratios), desc=f"{kind} scan", disable=not progress, leave=False)
    for name in sizes:
        others = [n for n in all_layers if n != name]
        accuracy[name] = {}
        for r in ratios:
            pruned = prune(model, r, criterion=criterion, exclude=others, data=batches)
            accuracy[name][r] = evaluate(pruned, batches)
            bar.update(1)
    bar.close()
    return SensitivityScan(kind, criterion, baseline, sizes, accuracy, ratios, n_samples)
