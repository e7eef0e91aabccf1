"""N:M sparsity in pictures and on hardware: the pattern drawn next to unstructured pruning, and 2:4 on a GPU.

`draw_nm_pattern` shows one block of a weight matrix: which weights 2:4 keeps (the 2 largest |w| of every group of 4
consecutive inputs) and which 50% unstructured pruning keeps (the largest |w| of the whole layer), group by group.
`semi_structured_speedup` times a large Linear made 2:4 sparse with `torch.sparse.to_sparse_semi_structured` against
the dense one. Sparse tensor cores (NVIDIA Ampere and later) skip the zeros using the 2-bit position of every kept
value: up to 2× the dense math throughput (Mishra et al. 2021). torch needs a CUDA tensor (fp16/bf16/int8), 2-D, with
both sizes multiples of the kernel's tile; LeNet-300-100's 300 × 784 does not qualify, hence the 4096 × 4096 layer.
On a machine without CUDA it measures nothing and returns None.
Introduced in 09_beyond_pruning
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils import benchmark

from course import arguments
from course.pruning.nm import nm_mask, parse_pattern
from course.pruning.unstructured import select

__all__ = ["draw_nm_pattern", "semi_structured_speedup"]


def draw_nm_pattern(weight: torch.Tensor, pattern: str = "2:4", *, rows: int = 8, cols: int = 16, axes=None):
    """Two panels over weight[:rows, :cols]: |w| shaded, kept weights framed, for N:M and for the same sparsity
    unstructured (local, whole layer); vertical lines separate the groups of M inputs. Returns the figure."""
    import matplotlib.pyplot as plt

    n, m = parse_pattern(pattern)
    rows = arguments.integer(rows, "rows", low=1, high=weight.shape[0])
    cols = arguments.integer(cols, "cols", low=m, high=weight.shape[1])
    w = weight.detach().float().cpu().reshape(weight.shape[0], -1)       # (out, in)
    kept_nm = nm_mask(w.abs(), n, m)[:rows, :cols]
    kept_un = select({"w": w.abs()}, 1 - n / m, "local")["w"][:rows, :cols]
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * rows + 1.2))
    block = w[:rows, :cols].abs()
    for ax, kept, title in ((axes[0], kept_nm, f"{pattern}: {n} of every {m} inputs kept"),
                            (axes[1], kept_un, f"unstructured {1 - n / m:.0%}: the layer's largest |w| kept")):
        ax.imshow(block, cmap="Greys", vmin=0, vmax=float(block.max()))
        r, c = torch.nonzero(kept, as_tuple=True)
        ax.scatter(c, r, s=70, facecolors="none", edgecolors="tab:red", linewidths=1.5, label="kept")
        for x in range(m, cols, m):
            ax.axvline(x - 0.5, color="tab:blue", lw=1)
        per_group = kept.reshape(rows, cols // m, m).sum(-1) if cols % m == 0 else None
        counts = "" if per_group is None else f" (kept per group: {int(per_group.min())} to {int(per_group.max())})"
        ax.set(title=title + counts, xlabel="input", ylabel="output", xticks=range(0, cols, m))
        ax.title.set_fontsize(9)
    axes[0].figure.tight_layout()
    return axes[0].figure


def semi_structured_speedup(features: int = 4096, batch: int = 4096, *, dtype: torch.dtype = torch.float16,
                            min_run_time: float = 1.0) -> dict | None:
    """{"dense_ms", "sparse_ms", "speedup", "max_abs_diff", "device"} for a features × features Linear made 2:4
    sparse (by magnitude) and compressed with `to_sparse_semi_structured`; None where no CUDA device is present."""
    if not torch.cuda.is_available():
        return None
    from torch.sparse import to_sparse_semi_structured

    layer = nn.Linear(features, features, bias=False).to("cuda", dtype).eval()
    with torch.no_grad():
        layer.weight.mul_(nm_mask(layer.weight.abs(), 2, 4).to(layer.weight.device))   # (out, in), 2:4 along in
    x = torch.randn(batch, features, device="cuda", dtype=dtype)                       # (batch, in)

    def timed() -> float:
        timer = benchmark.Timer("layer(x)", globals={"layer": layer, "x": x})
        return timer.blocked_autorange(min_run_time=min_run_time).median

    with torch.inference_mode():
        dense_out, dense_s = layer(x), timed()
        layer.weight = nn.Parameter(to_sparse_semi_structured(layer.weight))           # values + 2-bit metadata
        sparse_out, sparse_s = layer(x), timed()
    return {"dense_ms": 1e3 * dense_s, "sparse_ms": 1e3 * sparse_s, "speedup": dense_s / sparse_s,
            "max_abs_diff": float((dense_out - sparse_out).abs().max()), "device": torch.cuda.get_device_name()}
