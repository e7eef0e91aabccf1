"""Quantization experiments of notebook 09: accuracy against bits (linear vs k-means, with and without a short
fine-tune), and int8 inference on the CPU with torch's dynamic quantization.

`quantization_sweep` quantizes one model at each bit width with each method, measures its stored size (the model's
smallest exact form: "bitmask_int8" or "bitmask_codebook") and test accuracy, then fine-tunes a copy briefly (k-means:
`finetune_centroids`; linear: `finetune_linear_quantized`, straight-through QAT) and measures it again.
`dynamic_int8` is `torch.ao.quantization.quantize_dynamic` on every Linear: int8 weights (per tensor), activations
quantized per batch at run time, int8 matrix products (fbgemm/onednn). torch 2.13 marks `torch.ao.quantization` as
deprecated in favour of torchao; torchao's eager int8 path was slower than fp32 on this course's CPU and needs
`torch.compile`, so the course uses the torch API while it exists and silences its deprecation warning here.
Introduced in 09_beyond_pruning
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from course import arguments
from course.metrics import evaluate, size_bytes, stored_size
from course.pruning.masks import remove_masks
from course.quantization import METHODS, quantize
from course.quantized_training import finetune_centroids, finetune_linear_quantized
from course.table import Table

__all__ = ["FINETUNE_LR", "quantization_sweep", "dynamic_int8"]

#: Fine-tuning learning rates of a *dense* quantized LeNet-300-100. A centroid's gradient is the sum over its cluster
#: (tens of thousands of weights in a dense layer), so k-means needs a far smaller lr than linear QAT.
FINETUNE_LR = {"linear": 0.01, "kmeans": 1e-4}


def quantization_sweep(model: nn.Module, bits: Sequence[int], train_loader: Iterable | None, test_loader: Iterable, *,
                       methods: Sequence[str] = METHODS, epochs: int = 1, lrs: Mapping[str, float] | None = None,
                       seed: int = 0, progress: bool = True) -> Table:
    """One row per (method, bits): stored form and bytes, xz bytes, test accuracy, and after `epochs` of fine-tuning
    (skipped when epochs=0 or no train_loader) its accuracy; `model` is not changed."""
    bits = arguments.each(bits, "bits", lambda b, name: arguments.integer(b, name, low=1, high=8))
    methods = [arguments.choice(m, METHODS, "method") for m in methods]
    lrs = dict(FINETUNE_LR, **(lrs or {}))
    tune = train_loader is not None and arguments.integer(epochs, "epochs", low=0) > 0
    rows = []
    jobs = [(m, b) for m in methods for b in bits if not (m == "linear" and b < 2)]
    for method, b in tqdm(jobs, desc="quantize", disable=not progress):
        q = quantize(model, b, method=method)
        form, nbytes = stored_size(q)
        tuned = None
        if tune:
            q2 = copy.deepcopy(q)
            finetune = finetune_centroids if method == "kmeans" else finetune_linear_quantized
            extra = {} if method == "kmeans" else {"bits": b}
            finetune(q2, train_loader, epochs=epochs, lr=lrs[method], seed=seed, progress=False, **extra)
            tuned = evaluate(q2, test_loader)
        rows.append((method, b, form, nbytes, size_bytes(q, form, compressed=True), evaluate(q, test_loader), tuned))
    return Table(["method", "bits", "form", "bytes", "xz bytes", "accuracy", "fine-tuned"], rows,
                 title="Quantization on its own",
                 formats={"bytes": "bytes", "xz bytes": "bytes", "accuracy": ".2%", "fine-tuned": ".2%"},
                 note=f"bytes = the smallest exact form (stored_size); fine-tuned: {epochs} epoch(s), "
                      f"k-means centroids lr {lrs['kmeans']:g}, linear straight-through QAT lr {lrs['linear']:g}")


def dynamic_int8(model: nn.Module) -> nn.Module:
    """A copy of `model` (masks removed, zeros kept) whose Linear layers run in int8: `quantize_dynamic`."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)      # torch.ao.quantization -> torchao
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        return quantize_dynamic(remove_masks(copy.deepcopy(model).cpu().eval()), {nn.Linear}, dtype=torch.qint8)
