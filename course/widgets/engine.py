"""The explorers' engine: prune a private working copy from cached scores and measure it, fast enough for a slider.

One `PruningEngine` holds a pristine copy of the model, a working copy, the held-out batch and the scores of
each criterion (computed once, on a fixed batch). Every update restores the working copy's weights from the
pristine copy, applies the library's own selection to the cached scores (weights: `unstructured_masks`, the
selection `prune_unstructured` makes; units: `structured_masks` + `remove_units`) and measures accuracy, size and
FLOPs with the library's own tools (`stored_size`, `count_flops`). The widgets and their plain twins both call
`PruningEngine.run`, so a slider move and a function call give identical numbers.
Introduced in 01_what_is_pruning
"""
from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from course import arguments
from course.metrics import count_flops, size_bytes, stored_size
from course.pruning.criteria import CRITERIA, UNIT_CRITERIA, criterion_for, score
from course.pruning.masks import apply_masks, remove_masks
from course.pruning.targets import prunable_weights
from course.pruning.stats import detect_layer_collapse
from course.pruning.structured import structured_masks
from course.pruning.surgery import chain_links, remove_units
from course.pruning.structured import SCOPES          # local and global: the scopes both granularities share
from course.pruning.unstructured import unstructured_masks

__all__ = ["GRANULARITIES", "UNIT_CRITERIA", "ExplorerNumbers", "EngineResult", "PruningEngine", "check_batch"]

#: "weights": zero single weights (unstructured); "units": remove whole neurons/channels (structured).
#: They are also the two kinds of the criterion registry (`course.pruning.criteria`).
GRANULARITIES = ("weights", "units")


@dataclass(frozen=True)
class ExplorerNumbers:
    """What one explorer setting measures. sparsity = 1 - nonzero weights / weights of the unpruned model."""

    setting: float                 # the slider: target sparsity (weights) or ratio of units removed (units)
    criterion: str
    scope: str
    granularity: str
    sparsity: float                # measured over all Linear/Conv2d weights
    size_bytes: int                # the model's stored_size: its smallest lossless file (see `size_format`)
    size_format: str
    accuracy: float                # fraction correct on the held-out batch
    effective_flops: float         # FLOPs that touch a nonzero weight, one image
    dense_flops: int               # FLOPs of the unpruned model, one image
    dense_size_bytes: int          # the unpruned model's dense file
    layer_sparsity: dict[str, float] = field(default_factory=dict)
    collapsed: tuple[str, ...] = ()
    collapse: str = ""             # detect_layer_collapse's message, "" when nothing collapsed

    def readout(self) -> str:
        """The one-line readout the widgets show: 'sparsity 50.0%, size 357,833 bytes, accuracy 97.3%'."""
        return f"sparsity {self.sparsity:.1%}, size {self.size_bytes:,} bytes, accuracy {self.accuracy:.1%}"

    def details(self) -> str:
        """Second line: storage form, compression and FLOPs against the dense model."""
        form = "dense file of the smaller model" if self.granularity == "units" and self.size_format == "dense" \
            else f"{self.size_format} file"
        return (f"{form}, {self.dense_size_bytes / self.size_bytes:.2f}x smaller than the dense original; "
                f"effective FLOPs {self.effective_flops:,.0f} of {self.dense_flops:,} "
                f"({self.effective_flops / self.dense_flops:.1%}) per image")


@dataclass(frozen=True)
class EngineResult:
    """Numbers plus what the figures draw: weight-level keep masks and, per layer, the largest pruned score."""

    numbers: ExplorerNumbers
    masks: dict[str, torch.Tensor]             # layer -> bool, shaped like the unpruned weight (True = kept)
    thresholds: dict[str, float | None]        # layer -> largest score among pruned weights (None: none pruned)


def check_batch(X, y, input_shape) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """Validate the held-out batch: X float (N, *input_shape), y int64 (N,) class indices."""
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"X and y must be torch tensors (e.g. from course.held_out_batch), "
                        f"got {type(X).__name__} and {type(y).__name__}")
    input_shape = tuple(arguments.each(input_shape, "input_shape (e.g. (1, 28, 28))",
                                       lambda d, name: arguments.integer(d, name, low=1)))
    if not X.is_floating_point() or X.dim() != len(input_shape) + 1 or tuple(X.shape[1:]) != input_shape:
        raise ValueError(f"X must be a float tensor of shape (N, {', '.join(map(str, input_shape))}), "
                         f"got {X.dtype} {tuple(X.shape)}")
    if y.dtype != torch.int64 or y.shape != (X.shape[0],) or X.shape[0] == 0:
        raise ValueError(f"y must be an int64 tensor of shape ({X.shape[0]},) with N >= 1, got {y.dtype} {tuple(y.shape)}")
    return X, y, input_shape


def check_granularity(granularity: str, criterion: str) -> None:
    """Raise ValueError unless `granularity` is known and `criterion` is registered at that granularity."""
    arguments.choice(granularity, GRANULARITIES, "granularity")
    if granularity == "units" and criterion in CRITERIA and criterion not in UNIT_CRITERIA:
        raise ValueError(f"criterion {criterion!r} scores single weights only; for granularity 'units' "
                         f"choose one of {list(UNIT_CRITERIA)}")
    criterion_for(criterion, granularity)


@contextmanager
def num_threads(threads: int | None):
    """Run the block with `torch.set_num_threads(threads)` (None: leave it), then restore the old count."""
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class PruningEngine:
    """Prunes a working copy of `model` at any setting in a few tens of ms; `model` itself is never touched.

    `threads` (default 1): torch threads during an update. Its tensors are small (<= a few 1e5 elements, a batch
    of 1,000 images), so a second thread gains little, while on a busy 2-core machine (a browser, a kernel, other
    work) OpenMP threads that wait for each other made updates about 4x slower. None keeps the process setting.
    """

    def __init__(self, model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, input_shape,
                 score_data: tuple[torch.Tensor, torch.Tensor] | None = None, seed: int = 0,
                 threads: int | None = 1):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.X, self.y, self.input_shape = check_batch(X, y, input_shape)
        if score_data is None:
            score_data = (self.X, self.y)
        self.score_data = tuple(score_data)
        check_batch(*self.score_data, self.input_shape)
        self.seed = seed
        self.threads = arguments.integer(threads, "threads", low=1, none=True)
        self.source = copy.deepcopy(model).eval()         # pristine: weights are restored from here
        self.work = copy.deepcopy(model).eval()           # pruned in place on every update
        self.layers = prunable_weights(self.source)
        if not self.layers:
            raise ValueError("model has no prunable layers (Linear, Conv, attention or recurrent weights)")
        self.layer_names = [n for n, _ in self.layers]
        self._src_state = {k: v.detach().clone() for k, v in self.source.state_dict().items()}
        self._scores: dict[str, dict[str, torch.Tensor]] = {}
        self._unit_keep: dict[tuple, dict[str, torch.Tensor]] = {}
        self.dense_size = size_bytes(self.source, "dense")
        self.dense_flops = count_flops(self.source, self.input_shape).dense

    def __repr__(self) -> str:
        return (f"PruningEngine({type(self.source).__name__}, {len(self.layers)} prunable layers, "
                f"batch {tuple(self.X.shape)}, cached criteria {sorted(self._scores)})")

    def scores(self, criterion: str) -> dict[str, torch.Tensor]:
        """`course.pruning.score` of the pristine model, computed once per criterion (gradients on `score_data`)."""
        if criterion not in self._scores:
            data = self.score_data if criterion_for(criterion, "weights").needs_data else None
            self._scores[criterion] = score(self.source, criterion, data, seed=self.seed)
        return self._scores[criterion]

    @torch.no_grad()
    def _restore(self) -> None:
        """Copy the pristine weights back and drop the working copy's masks (no new model is built)."""
        remove_masks(self.work, inplace=True)
        for k, v in self.work.state_dict().items():
            v.copy_(self._src_state[k])

    @torch.no_grad()
    def accuracy(self, model: nn.Module) -> float:
        """Fraction of the held-out batch classified correctly: #(argmax model(X) == y) / N."""
        return int((model(self.X).argmax(1) == self.y).sum()) / self.y.numel()

    def _measure(self, model: nn.Module, setting: float, criterion: str, scope: str, granularity: str) -> ExplorerNumbers:
        """Accuracy, size (`stored_size`), effective FLOPs and per-layer sparsity of a pruned model."""
        fmt, size = stored_size(model)
        weights = dict(prunable_weights(model))
        per_layer, nonzero, total = {}, 0, 0
        for name, src in self.layers:                      # against the unpruned shapes (units shrink layers)
            nz = int((weights[name].weight != 0).sum())
            per_layer[name] = 1.0 - nz / src.weight.numel()
            nonzero, total = nonzero + nz, total + src.weight.numel()
        report = detect_layer_collapse(model, warn=False)
        return ExplorerNumbers(
            setting=setting, criterion=criterion, scope=scope, granularity=granularity,
            sparsity=1.0 - nonzero / total, size_bytes=size, size_format=fmt,
            accuracy=self.accuracy(model), effective_flops=count_flops(model, self.input_shape).effective,
            dense_flops=self.dense_flops, dense_size_bytes=self.dense_size, layer_sparsity=per_layer,
            collapsed=tuple(report.collapsed), collapse=str(report) if report else "")

    def run(self, setting: float, criterion: str = "magnitude", scope: str = "local",
            granularity: str = "weights") -> EngineResult:
        """Prune at `setting` (sparsity for weights, ratio for units) and measure; the one code path of every view."""
        check_granularity(granularity, criterion)
        scope = arguments.choice(scope, SCOPES, "scope")
        setting = arguments.sparsity(setting) if granularity == "weights" else arguments.ratio(setting)
        with num_threads(self.threads):
            if granularity == "weights":
                return self._run_weights(setting, criterion, scope)
            return self._run_units(setting, criterion, scope)

    def _run_weights(self, sparsity: float, criterion: str, scope: str) -> EngineResult:
        scores = self.scores(criterion)
        masks = unstructured_masks(self.layers, scores, sparsity, scope)    # what prune_unstructured selects
        self._restore()
        apply_masks(self.work, masks, inplace=True)
        largest_pruned = {n: float(scores[n].masked_fill(m, -math.inf).max()) for n, m in masks.items()}
        thresholds = {n: None if t == -math.inf else t for n, t in largest_pruned.items()}
        return EngineResult(self._measure(self.work, sparsity, criterion, scope, "weights"), masks, thresholds)

    def _run_units(self, ratio: float, criterion: str, scope: str) -> EngineResult:
        key = (ratio, criterion, scope)
        if key not in self._unit_keep:                  # unit scores are cheap except taylor; cache the choice
            data = self.score_data if criterion_for(criterion, "units").needs_data else None
            self._unit_keep[key] = structured_masks(self.source, ratio, criterion=criterion, scope=scope, data=data,
                                                    seed=self.seed)
        keep = self._unit_keep[key]
        # The physically smaller model, exactly as prune_structured builds it: its bytes and FLOPs are the honest ones.
        small = remove_units(self.source, keep).eval()
        masks = self._unit_weight_masks(keep)
        return EngineResult(self._measure(small, ratio, criterion, scope, "units"), masks,
                            {n: None for n in self.layer_names})

    def _unit_weight_masks(self, keep: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weight-level view of unit keep-masks: a removed unit clears its row and its consumer's input columns."""
        masks = {n: torch.ones_like(m.weight, dtype=torch.bool) for n, m in self.layers}
        for link in chain_links(self.source):
            kept = keep.get(link.layer)
            if kept is None:
                continue
            masks[link.layer][~kept] = False                                     # rows of the producer
            cols = kept.repeat_interleave(link.block)                            # (consumer inputs,)
            masks[link.consumer][:, ~cols] = False                               # columns of the consumer
        return masks
