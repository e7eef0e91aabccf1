"""Weight quantization that keeps the model a float model: linear (symmetric int-b) and k-means weight sharing.

`quantize(model, bits)` returns a copy whose Linear/Conv2d weights take quantized values, so every metric, the
training loop and the storage forms work on it unchanged. Biases, BatchNorm and buffers stay fp32. Pruned weights
(a course mask, or an exact zero where a layer has no mask) stay exactly 0 and are not fitted.
  - "linear": symmetric, per output channel (or per tensor): s = max|w| / (2^(b-1) - 1), ŵ = s·clamp(round(w / s)),
    exactly `torch.fake_quantize_per_channel_affine` with zero point 0 and range [-(2^(b-1) - 1), 2^(b-1) - 1].
  - "kmeans": weight sharing (Han et al. 2016, Deep Compression, Sec. 3): one codebook of 2^b centroids per layer,
    fitted by 1-D k-means (Lloyd) to the kept weights, centroids initialised linearly between their min and max (the
    paper's best initialisation); each kept weight becomes its nearest centroid.
No hidden state: `shared_codebook` and `int_grid` recover the exact codebook / integers and scales from the weights
themselves, which is how the storage forms "bitmask_codebook" and "bitmask_int8" (`course.export`) store a quantized
model exactly, and how `is_weight_shared` / `is_on_int_grid` tell whether they can.
Introduced in 09_beyond_pruning
"""
from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn

from course import arguments
from course.pruning.masks import MASK
from course.pruning.targets import Prunable, prunable_layers

__all__ = ["METHODS", "MAX_CODEBOOK", "quantize", "linear_quantize", "kmeans_1d", "kmeans_quantize",
           "kept_positions", "shared_codebook", "int_grid", "is_weight_shared", "is_on_int_grid"]

METHODS = ("linear", "kmeans")
MAX_CODEBOOK = 256                  # an 8-bit index addresses at most 256 shared values
MAX_ITER = 300                      # Lloyd iterations at most (scikit-learn's default); 1-D usually converges in < 50


def kept_positions(module: nn.Module | Prunable) -> torch.Tensor:
    """Bool tensor shaped like the weight: its course mask when it has one, else weight != 0. `module` is a layer
    with a `weight`, or a `Prunable` (any weight matrix: `in_proj_weight`, `weight_hh_l0`, ...)."""
    mask = module.mask if isinstance(module, Prunable) else getattr(module, MASK, None)
    return (mask if mask is not None else module.weight != 0).detach().bool()


def linear_quantize(w: torch.Tensor, bits: int, kept: torch.Tensor, per_channel: bool = True
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ŵ, q int8, s): s = max|w_kept| / qmax per output channel (or one per tensor), q = clamp(round(w / s), ±qmax),
    ŵ = q·s, qmax = 2^(bits-1) - 1; zero off `kept`. An all-zero row gets s = 0."""
    qmax = 2 ** (bits - 1) - 1
    w = torch.where(kept, w.detach().float(), torch.zeros((), dtype=torch.float32, device=w.device))
    flat = w.reshape(w.shape[0], -1)                                      # (out, rest)
    peak = flat.abs().amax(dim=1) if per_channel else flat.abs().amax().expand(w.shape[0])   # (out,)
    scale = peak / qmax                                                   # (out,)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(flat / safe[:, None]).clamp_(-qmax, qmax)            # (out, rest)
    w_hat = (q * scale[:, None]).reshape(w.shape)
    return w_hat, q.to(torch.int8).reshape(w.shape), scale


def kmeans_1d(values: torch.Tensor, k: int, *, max_iter: int = MAX_ITER,
              relocate_empty: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(centroids (K,) fp32 sorted, labels (n,)): Lloyd's k-means on 1-D values, centroids init linspace(min, max, k).

    Assign each value to its nearest centroid (the centroids stay sorted, so a bucketize on the midpoints finds
    it); move each centroid to the mean of its values; stop when no assignment changes. An empty cluster (linear
    initialisation puts centroids in the gap that pruning leaves around 0) stays where it is, unused, as plain
    Lloyd's does; `relocate_empty=True` moves it onto the worst-represented value (scikit-learn's rule). With at
    most k distinct values, those values are the centroids (exact). K = k unless that shortcut applies.
    """
    v = values.detach().double().flatten().cpu()                          # (n,)
    distinct = torch.unique(v)
    if distinct.numel() <= k:
        return distinct.float(), torch.searchsorted(distinct, v)
    c = torch.linspace(float(v.min()), float(v.max()), k, dtype=torch.float64)   # (k,) linear initialisation
    labels = None
    for _ in range(max_iter):
        new = torch.bucketize(v, (c[1:] + c[:-1]) / 2)                   # (n,) nearest centroid
        if labels is not None and torch.equal(new, labels):
            break
        labels = new
        counts = torch.bincount(labels, minlength=k)
        sums = torch.zeros(k, dtype=torch.float64).scatter_add_(0, labels, v)
        c = torch.where(counts > 0, sums / counts.clamp(min=1), c)
        empty = torch.nonzero(counts == 0).flatten()
        if relocate_empty and empty.numel():
            far = torch.topk((v - c[labels]).abs(), empty.numel()).indices   # the worst-represented values
            c[empty] = v[far]
        c = torch.sort(c).values                                         # bucketize needs sorted centroids
    c32 = c.float()
    labels = torch.bucketize(v.float(), (c32[1:] + c32[:-1]) / 2)       # the final assignment, in fp32 as stored
    return c32, labels


def kmeans_quantize(w: torch.Tensor, bits: int, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ŵ, codebook): the kept weights replaced by their nearest of 2^bits k-means centroids, zero elsewhere."""
    codebook, labels = kmeans_1d(w.detach()[kept], 2 ** bits)
    w_hat = torch.zeros(w.shape, dtype=torch.float32)
    w_hat[kept.cpu()] = codebook[labels]
    return w_hat, codebook


def quantize(model: nn.Module, bits: int = 8, *, method: str = "linear", per_channel: bool = True,
             exclude: Iterable[str] = (), inplace: bool = False) -> nn.Module:
    """A copy of `model` whose Linear/Conv2d weights take `bits`-bit quantized values; masks and zeros are kept.

    method "linear": symmetric, one scale per output channel (`per_channel=True`) or per tensor (False); bits 2-8.
    method "kmeans": one shared codebook of 2^bits values per layer (Deep Compression); bits 1-8. `per_channel`
    does not apply: a per-layer codebook is the only form k-means weight sharing takes here (and the one the
    "bitmask_codebook" storage form stores). Layers in `exclude` stay fp32.
    """
    method = arguments.choice(method, METHODS, "method")
    bits = arguments.integer(bits, "bits", low=2 if method == "linear" else 1, high=8,
                             meaning="linear: 2 to 8; kmeans: 1 to 8")
    per_channel = arguments.boolean(per_channel, "per_channel")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    layers = prunable_layers(model, arguments.names(exclude, "exclude"))
    if not layers:
        raise ValueError("the model has no Linear/Conv2d weights to quantize outside `exclude`")
    out = model if inplace else copy.deepcopy(model)
    with torch.no_grad():
        for name, _ in layers:
            w = out.get_submodule(name).weight
            kept = kept_positions(out.get_submodule(name))
            if method == "linear":
                w_hat = linear_quantize(w, bits, kept, per_channel)[0]
            else:
                w_hat = kmeans_quantize(w.cpu(), bits, kept.cpu())[0]
            w.copy_(w_hat.to(device=w.device, dtype=w.dtype))
    return out


def shared_codebook(module: nn.Module, max_size: int = MAX_CODEBOOK
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(codebook (K,) sorted fp32, index (k,) int64 of each kept weight in row-major order, kept mask), exact.

    Raises ValueError when the kept weights take more than `max_size` distinct values (they are not shared).
    """
    kept = kept_positions(module).cpu()
    values = module.weight.detach().float().cpu()[kept]                   # (k,)
    codebook, index = torch.unique(values, sorted=True, return_inverse=True)
    if codebook.numel() > max_size:
        raise ValueError(f"the kept weights of this {type(getattr(module, 'module', module)).__name__} take {codebook.numel():,} distinct values; "
                         f"a shared codebook holds at most {max_size}. Run quantize(model, bits, method='kmeans') "
                         f"first (fine-tune it with finetune_centroids, which keeps the weights shared)")
    return codebook, index, kept


def is_weight_shared(module: nn.Module, max_size: int = MAX_CODEBOOK) -> bool:
    """Whether the kept weights of `module` take at most `max_size` distinct values (one output row checked first)."""
    w = module.weight.detach()
    kept = kept_positions(module)
    if torch.unique(w[0][kept[0]]).numel() > max_size:                   # cheap rejection of a float model
        return False
    return torch.unique(w[kept]).numel() <= max_size


_QMAXES = (1, 3, 7, 15, 31, 63, 127)           # bits 2..8; the smallest grid first: the fewest distinct integers
_PROBES = 16                                    # values per row that a candidate scale must fit before a full check


def _scale_candidates(peaks: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """(out, C) candidate scales: peak / qmax for each peak and qmax, and their fp32 neighbours ±1, ±2 ulp."""
    cands = []
    for peak in peaks:                                                    # (out,) each
        for qmax in _QMAXES:
            base = peak / qmax
            up1, down1 = (torch.nextafter(base, torch.full_like(base, t)) for t in (float("inf"), 0.0))
            up2, down2 = torch.nextafter(up1, torch.full_like(up1, float("inf"))), \
                torch.nextafter(down1, torch.zeros_like(down1))
            cands += [base, up1, down1, up2, down2]
    return torch.stack(cands, dim=1)


def _fits(values: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """(rows, C) bool: every value of a row is q·s with q an integer in [-127, 127], for each candidate s (rows, C)."""
    safe = torch.where(scales > 0, scales, torch.ones_like(scales))
    q = torch.round(values[:, None, :] / safe[:, :, None])               # (rows, C, P)
    return (scales > 0) & (q.abs() <= 127).all(-1) & (q * scales[:, :, None] == values[:, None, :]).all(-1)


def int_grid(weight: torch.Tensor, kept: torch.Tensor, *, rows: int | None = None
             ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(q int8 shaped like the weight, scale (out,)) with q·s == weight bit for bit on `kept`, or None if none exists.

    Finds the scale `linear_quantize` used (any bits, per channel or per tensor) from the weights alone: the
    candidates are max|w| / qmax (per row and overall) and their fp32 neighbours; a candidate must first fit the
    row's largest values, then the whole row. `rows=r` tests only the first r output rows (a quick rejection).
    """
    w = torch.where(kept, weight.detach().float(), torch.zeros((), device=weight.device)).cpu()
    flat = w.reshape(w.shape[0], -1)                                      # (out, rest)
    peaks = (flat.abs().amax(dim=1), flat.abs().amax().expand(flat.shape[0]))   # per row, per tensor
    if rows is not None:
        flat, peaks, w = flat[:rows], tuple(p[:rows] for p in peaks), w[:rows]
    cands = _scale_candidates(peaks)                                      # (out, C)
    probe = flat.gather(1, flat.abs().topk(min(_PROBES, flat.shape[1]), dim=1).indices)   # (out, P)
    plausible = _fits(probe, cands)                                       # (out, C)
    scale = torch.full((flat.shape[0],), float("nan"))
    scale[(flat == 0).all(dim=1)] = 0.0                                   # an all-zero row: scale 0
    for c in range(cands.shape[1]):                                       # usually one pass: the first plausible fits
        todo = torch.isnan(scale) & plausible[:, c]
        if todo.any():
            s = cands[todo, c]
            fits = _fits(flat[todo], s[:, None])[:, 0]
            scale[torch.nonzero(todo).flatten()[fits]] = s[fits]
        if not torch.isnan(scale).any():
            safe = torch.where(scale > 0, scale, torch.ones_like(scale))
            return torch.round(flat / safe[:, None]).to(torch.int8).reshape(w.shape), scale
    return None


def is_on_int_grid(module: nn.Module) -> bool:
    """Whether the kept weights of `module` are q·s with q int8 per output row (`int_grid` finds it; row 0 first)."""
    w, kept = module.weight.detach(), kept_positions(module)
    if int_grid(w, kept, rows=1) is None:                                # cheap rejection of a float model
        return False
    return int_grid(w, kept) is not None
