"""Sensitivity: prune one layer at a time to see which layers are fragile, then spend a budget where it hurts least.

    scan = sensitivity_scan(model, [0.5, 0.9, 0.99], (X, y), kind="unstructured")   # accuracy with one layer pruned
    scan.drop("fc1", 0.9)                         # baseline accuracy - accuracy with fc1 alone at 90%
    plan = allocate_sparsity(scan, 0.95)          # {layer: sparsity}, overall exactly 95% of the weights
    pruned = prune_per_layer(model, plan)         # magnitude within each layer, at its own sparsity

Introduced in 05_local_vs_global (the capstone, 08_capstone_cifar10, scans structured pruning too)
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn
from tqdm.auto import tqdm

from course import arguments
from course.inputs import reusable
from course.metrics import evaluate
from course.pruning.criteria import DEFAULT_NUM_BATCHES, criterion_for
from course.pruning.masks import apply_masks
from course.pruning.targets import prunable_layers, prunable_weights
from course.pruning.structured import prune_structured
from course.pruning.surgery import chain_links
from course.pruning.unstructured import prune_unstructured, unstructured_masks
from course.table import Table

__all__ = ["KINDS", "SensitivityScan", "sensitivity_scan", "allocate_sparsity", "prune_per_layer",
           "overall_sparsity"]

KINDS = ("structured", "unstructured")
_CRITERION = {"structured": "l1", "unstructured": "magnitude"}
_EVAL_BATCH = 500


def _fraction_pruned(value: Any, name: str) -> float:
    """A scanned ratio or sparsity: a number in (0, 1)."""
    return arguments.number(value, name, low=0.0, high=1.0, low_open=True, high_open=True,
                            meaning="the fraction pruned")


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


def sensitivity_scan(model: nn.Module, ratios: Sequence[float], data, *, kind: str = "structured",
                     criterion: str | Callable | None = None, layers: Sequence[str] | None = None,
                     progress: bool = True) -> SensitivityScan:
    """For every layer L and ratio r: prune ONLY L of a copy of `model`, then measure accuracy on `data`.

    structured: `prune_structured(model, r, exclude=<every other layer>)` removes round(r·units) of L's units
    (criterion "l1" by default); unstructured: `prune_unstructured(model, r, exclude=...)` zeroes round(r·n) of
    L's weights ("magnitude" by default). No fine-tuning. `data` (an (x, y) pair or a DataLoader) is what
    the accuracy is measured on, and what gradient criteria ("taylor", ...) score on.
    `model` is not changed.
    """
    kind = arguments.choice(kind, KINDS, "kind")
    ratios = sorted(arguments.each(ratios, "ratios", _fraction_pruned, distinct=True))
    criterion = criterion or _CRITERION[kind]
    if kind == "structured":
        sizes = {link.layer: link.units for link in chain_links(model)}
    else:
        sizes = {n: t.weight.numel() for n, t in prunable_weights(model)}
    if layers is not None:
        layers = list(arguments.names(layers, "layers"))
        unknown = [n for n in layers if n not in sizes]
        if unknown or not layers:
            raise ValueError(f"layers {unknown or layers} cannot be scanned ({kind}); choose from {list(sizes)}")
        sizes = {n: sizes[n] for n in layers}
    batches = reusable(data, batch_size=_EVAL_BATCH)
    baseline = evaluate(model, batches)
    n_samples = sum(len(y) for _, y in batches)
    prune = prune_structured if kind == "structured" else prune_unstructured
    if kind == "unstructured":                          # exact parameter names: excluding one never excludes another
        exclusion = {t.name: t.param_name for t in prunable_weights(model)}
    else:
        exclusion = {n: n for n, _ in prunable_layers(model)}
    accuracy: dict[str, dict[float, float]] = {}
    bar = tqdm(total=len(sizes) * len(ratios), desc=f"{kind} scan", disable=not progress, leave=False)
    for name in sizes:
        others = [full for n, full in exclusion.items() if n != name]
        accuracy[name] = {}
        for r in ratios:
            pruned = prune(model, r, criterion=criterion, exclude=others, data=batches)
            accuracy[name][r] = evaluate(pruned, batches)
            bar.update(1)
    bar.close()
    label = criterion if isinstance(criterion, str) else getattr(criterion, "__name__", type(criterion).__name__)
    return SensitivityScan(kind, label, baseline, sizes, accuracy, ratios, n_samples)


def _check_scan(scan: Any) -> None:
    for attr in ("accuracy", "sizes", "baseline", "ratios"):
        if not hasattr(scan, attr):
            raise TypeError(f"scan must be a SensitivityScan (sensitivity_scan(..., "
                            f"kind='unstructured')); got {type(scan).__name__} without .{attr}")
    if getattr(scan, "kind", "unstructured") != "unstructured":
        raise ValueError(f"allocate_sparsity needs an unstructured scan (weights zeroed), got kind={scan.kind!r}")


def allocate_sparsity(scan: Any, budget: float) -> dict[str, float]:
    """{layer: sparsity} with Σ n_l·s_l = budget·Σ n_l, chosen greedily from a one-layer-at-a-time scan.

    Every layer starts dense. Each step raises one layer to its next scanned sparsity: the step with the smallest
    cost = (accuracy lost by that layer alone) / (weights it removes), i.e. accuracy per weight. The last step
    is cut short so the overall sparsity equals `budget`. Layers the scan does not cover stay dense.
    """
    _check_scan(scan)
    budget = arguments.sparsity(budget, "budget")
    sizes: dict[str, int] = dict(scan.sizes)
    total = sum(sizes.values())
    want = float(budget) * total                                    # weights to remove in all
    grid = [0.0] + sorted(scan.ratios)
    acc = {name: [scan.baseline] + [scan.accuracy[name][r] for r in sorted(scan.ratios)] for name in sizes}
    level = dict.fromkeys(sizes, 0)                                 # index into grid, per layer
    removed = 0.0
    sparsity = dict.fromkeys(sizes, 0.0)
    while removed < want - 1e-9:
        steps = [((acc[n][k] - acc[n][k + 1]) / (sizes[n] * (grid[k + 1] - grid[k])), -sizes[n], n)
                 for n, k in level.items() if k + 1 < len(grid)]
        if not steps:
            top = sum(sizes[n] * grid[-1] for n in sizes) / total
            raise ValueError(f"budget {budget} is beyond the scan: with every layer at its largest scanned "
                             f"sparsity ({grid[-1]}) the overall sparsity is {top:.4f}; scan larger sparsities")
        _, _, name = min(steps)
        k = level[name]
        gain = sizes[name] * (grid[k + 1] - grid[k])
        if removed + gain >= want:                                  # cut the last step short: exact budget
            sparsity[name] = grid[k] + (want - removed) / sizes[name]
            break
        removed += gain
        level[name] = k + 1
        sparsity[name] = grid[k + 1]
    return sparsity


def prune_per_layer(model: nn.Module, sparsities: Mapping[str, float], *, criterion: str = "magnitude",
                    data: Any = None, seed: int = 0, loss_fn: Callable | None = None,
                    num_batches: int = DEFAULT_NUM_BATCHES, inplace: bool = False) -> nn.Module:
    """Prune each layer named in `sparsities` to its own sparsity: drop round(s_l·n_l) lowest scores of layer l.

    Scores come from one call of `criterion` on the whole model (so gradient criteria see the unpruned model);
    layers not named stay as they are. Returns a new model unless `inplace`.
    """
    crit = criterion_for(criterion, "weights")
    layers = dict(prunable_weights(model))
    unknown = sorted(set(sparsities) - set(layers))
    if unknown:
        raise ValueError(f"unknown layers {unknown}; prunable layers: {list(layers)}")
    if not sparsities:
        raise ValueError("sparsities is empty: pass {layer name: sparsity}")
    values = {n: arguments.sparsity(s, f"sparsity of {n!r}") for n, s in sparsities.items()}
    scores = crit(model, [t for n, t in layers.items() if n in values], data=data, seed=seed, loss_fn=loss_fn,
                  num_batches=num_batches)
    masks = {}
    for name, s in values.items():
        masks.update(unstructured_masks([layers[name]], {name: scores[name]}, s, "local"))
    out = model if inplace else copy.deepcopy(model)
    return apply_masks(out, masks, inplace=True)


def overall_sparsity(sizes: Mapping[str, int], sparsities: Mapping[str, float]) -> float:
    """Σ n_l·s_l / Σ n_l over the layers in `sizes` (a layer missing from `sparsities` counts as dense)."""
    total = sum(sizes.values())
    return math.fsum(sizes[n] * sparsities.get(n, 0.0) for n in sizes) / total
