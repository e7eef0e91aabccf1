"""The oracle behind every criterion: the true loss change when one weight alone is removed, and rank correlation.

A criterion is a cheap guess of how much the loss rises when a weight is set to zero. The oracle measures it,
one weight at a time: ΔL_i = L(w with w_i = 0) − L(w) on a fixed batch. Pruning only needs the *order* of the
weights, so a criterion is judged by Spearman's rank correlation ρ between its scores and |ΔL|: pooled over all
sampled weights (what a global threshold compares) and within each layer (what local pruning compares).
Introduced in 04_criteria
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from course import arguments
from course.inputs import batch_loss
from course.pruning.targets import prunable_weights

__all__ = ["Pick", "sample_weights", "loss_change", "gather", "rank", "spearman", "spearman_by_layer"]

#: One weight: (layer name, flat index into that layer's weight).
Pick = tuple[str, int]


def sample_weights(model: nn.Module, per_layer: int, *, seed: int = 0, exclude: Iterable[str] = ()) -> list[Pick]:
    """`per_layer` distinct weights drawn uniformly (seeded) from each prunable layer: [(layer, flat index)].

    Equal numbers per layer, so a small layer (LeNet-300-100's fc3: 1,000 weights) is not drowned by a large one.
    """
    per_layer = arguments.integer(per_layer, "per_layer", low=1)
    gen = torch.Generator().manual_seed(int(seed))
    picks: list[Pick] = []
    for name, layer in prunable_weights(model, exclude=exclude):
        n = layer.weight.numel()
        if per_layer > n:
            raise ValueError(f"per_layer={per_layer} but layer {name!r} has only {n} weights")
        picks += [(name, int(i)) for i in torch.randperm(n, generator=gen)[:per_layer].sort().values]
    return picks


def _check_picks(model: nn.Module, picks: Sequence[Pick]) -> dict:
    layers = dict(prunable_weights(model))
    if not picks:
        raise ValueError("picks is empty: pass [(layer name, flat index), ...], e.g. from sample_weights")
    for name, idx in picks:
        if name not in layers:
            raise ValueError(f"unknown layer {name!r} in picks; prunable layers: {list(layers)}")
        if not 0 <= idx < layers[name].weight.numel():
            raise ValueError(f"flat index {idx} out of range for layer {name!r} "
                             f"({layers[name].weight.numel()} weights)")
    return layers


def _removal_delta(layer: nn.Module, a: torch.Tensor, idx: int) -> tuple[int, torch.Tensor]:
    """(output unit o, its change) when weight `idx` of `layer` is zeroed: −w·(that weight's input), (N, *spatial)."""
    w = layer.weight.view(-1)[idx]
    if isinstance(layer, nn.Linear):
        o, j = divmod(idx, layer.in_features)
        return o, -w * a[:, j]                                             # (N,)
    o, c, kh, kw = torch.unravel_index(torch.tensor(idx), layer.weight.shape)
    kernel = torch.zeros((1, 1, *layer.weight.shape[2:]), dtype=a.dtype, device=a.device)
    kernel[0, 0, kh, kw] = w
    delta = nn.functional.conv2d(a[:, c:c + 1], kernel, stride=layer.stride, padding=layer.padding,
                                 dilation=layer.dilation)                  # (N, 1, H', W')
    return int(o), -delta[:, 0]


def _suffix_position(work: nn.Module, name: str) -> int | None:
    """Index of layer `name` among the children of an nn.Sequential when the shortcut applies to it, else None."""
    if not isinstance(work, nn.Sequential):
        return None
    names = [n for n, _ in work.named_children()]
    if name not in names:
        return None
    layer = work[names.index(name)]
    if isinstance(layer, nn.Conv2d) and (layer.groups != 1 or layer.padding_mode != "zeros"):
        return None
    return names.index(name) if isinstance(layer, (nn.Linear, nn.Conv2d)) else None


@torch.no_grad()
def loss_change(model: nn.Module, X: torch.Tensor, y: torch.Tensor, picks: Sequence[Pick], *,
                loss_fn: Callable | None = None, dtype: torch.dtype = torch.float64, shortcut: bool = True,
                progress: bool = True) -> torch.Tensor:
    """ΔL_i = L(w with weight i zeroed) − L(w) on (X, y), for each pick alone: zero it, evaluate, restore. (n,)

    Runs on a private copy in eval mode and in float64 by default: removing one weight often changes a mean
    loss by less than float32 can resolve (about 1e-7 relative). `model` is never changed.
    shortcut=True (nn.Sequential chains): run the layers before the changed one once, then per weight add its
    change −w·x to that layer's cached output and run only the layers after it; same ΔL, several times faster.
    """
    _check_picks(model, picks)
    loss = batch_loss(loss_fn)                                              # loss(model, (X, y))
    work = copy.deepcopy(model).to(dtype).eval()
    modules = dict(work.named_modules())
    weights = dict(prunable_weights(work))
    dev = next(work.parameters()).device
    X, y = X.to(dev, dtype) if X.is_floating_point() else X.to(dev), y.to(dev)
    base = loss(work, (X, y))
    out = torch.empty(len(picks), dtype=dtype)
    cache: dict[str, tuple[torch.Tensor, torch.Tensor, nn.Module]] = {}
    for i, (name, idx) in enumerate(tqdm(picks, desc="oracle: remove one weight", unit="weight",
                                         disable=not progress)):
        k = _suffix_position(work, name) if shortcut and loss.on_pairs else None
        if k is None:                                                      # the plain way
            w = weights[name].weight.view(-1)                              # (n,) a view: writes reach the layer
            old = w[idx].clone()
            w[idx] = 0.0
            out[i] = loss(work, (X, y)) - base
            w[idx] = old
            continue
        if name not in cache:
            children = list(work.children())                               # a subclass may not slice
            a = nn.Sequential(*children[:k])(X)                            # the layer's input
            cache = {name: (a, children[k](a), nn.Sequential(*children[k + 1:]))}   # input, output, the rest
        a, z, rest = cache[name]
        unit, delta = _removal_delta(modules[name], a, idx)
        z2 = z.clone()
        z2[:, unit] += delta
        out[i] = loss.fn(rest(z2), y) - base
    return out


def gather(scores: dict[str, torch.Tensor], picks: Sequence[Pick]) -> torch.Tensor:
    """The scores of the picked weights, in pick order: (n,) float64."""
    missing = sorted({name for name, _ in picks} - set(scores))
    if missing:
        raise ValueError(f"scores has no layer {missing}; it has {list(scores)}")
    return torch.stack([scores[name].detach().flatten()[idx].double().cpu() for name, idx in picks])


def rank(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n of a 1-D tensor (float64); tied values share the mean of their positions."""
    if x.dim() != 1 or x.numel() == 0:
        raise ValueError(f"rank needs a non-empty 1-D tensor, got shape {tuple(x.shape)}")
    values, inverse, counts = torch.unique(x, sorted=True, return_inverse=True, return_counts=True)
    last = counts.cumsum(0).double()                                       # 1-based position of each group's end
    return (last - (counts.double() - 1) / 2)[inverse]


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's ρ = Pearson correlation of rank(a) and rank(b): +1 same order, 0 unrelated, −1 reversed."""
    a, b = torch.as_tensor(a).flatten(), torch.as_tensor(b).flatten()
    if a.numel() != b.numel() or a.numel() < 2:
        raise ValueError(f"spearman needs two 1-D tensors of the same length >= 2, got {a.numel()} and {b.numel()}")
    ra, rb = rank(a), rank(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = (ra.square().sum() * rb.square().sum()).sqrt()
    if denom == 0:
        raise ValueError("spearman is undefined when one input is constant (all ranks tied)")
    return float((ra * rb).sum() / denom)


def spearman_by_layer(scores: torch.Tensor, truth: torch.Tensor, picks: Sequence[Pick]) -> dict[str, float]:
    """Spearman ρ pooled over all picks ("all") and within each layer: {"all": ρ, "fc1": ρ, ...}, layers in pick order.

    Pooled ρ rewards a criterion for ranking whole layers right (one layer's weights may all matter more than
    another's); the per-layer ρ is what a local scope uses, since it compares weights only within a layer.
    """
    scores, truth = torch.as_tensor(scores).flatten(), torch.as_tensor(truth).flatten()
    if not len(scores) == len(truth) == len(picks):
        raise ValueError(f"scores, truth and picks must have one entry per pick, got {len(scores)}, {len(truth)} and "
                         f"{len(picks)}")
    layers = list(dict.fromkeys(name for name, _ in picks))
    index = {n: torch.tensor([i for i, (name, _) in enumerate(picks) if name == n]) for n in layers}
    return {"all": spearman(scores, truth), **{n: spearman(scores[i], truth[i]) for n, i in index.items()}}
