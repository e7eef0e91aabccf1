"""Target (b): structured pruning of VGGSmall to <= 50% of its dense FLOPs runs at >= 0.9x the FLOP ratio on CPU.

speedup = dense latency / pruned latency and FLOP ratio = dense FLOPs / pruned FLOPs, both at batch 256, measured
in one process with the dense and pruned models timed in turn (medians over rounds). The pruned model must also
stay within 1 pp of the dense accuracy after fine-tuning. Both models get the same deployment treatment
(eval mode, inference_mode; "channels_last" = NHWC memory layout, the layout oneDNN's convolutions and PyTorch's
pooling kernels prefer); the plain NCHW layout is reported too.
"""
from __future__ import annotations

import copy
import time

import torch
from torch import nn

from course.metrics import count_flops
from course.pruning import prune_structured
from course.table import Table
from course.train import evaluate, train

import benchkit

MAX_FLOP_FRACTION = 0.5
SPEEDUP_SHARE = 0.9
ACCURACY_PP = 1.0
RATIOS = tuple(r / 100 for r in range(5, 80, 5))
LAYOUTS = ("channels_last", "NCHW")
COLUMNS = ["layout", "dense FLOPs", "pruned FLOPs", "FLOP ratio", "dense ms", "dense IQR", "pruned ms",
           "pruned IQR", "speedup", "speedup / FLOP ratio", "status"]


def choose_ratio(model: nn.Module, *, round_to: int = 8, criterion: str = "l1",
                 max_fraction: float = MAX_FLOP_FRACTION) -> tuple[float, nn.Module]:
    """The smallest ratio in RATIOS whose `prune_structured` model (kept channels rounded down to multiples of
    `round_to`) has at most `max_fraction` of the dense FLOPs; returns (ratio, pruned model)."""
    dense = count_flops(model).dense
    for r in RATIOS:
        pruned = prune_structured(model, r, criterion=criterion, round_to=round_to)
        if count_flops(pruned).dense <= max_fraction * dense:
            return r, pruned
    raise ValueError(f"no ratio in {RATIOS} brings the model to {max_fraction:.0%} of its FLOPs")


def deploy(model: nn.Module, layout: str) -> nn.Module:
    """An eval-mode copy in `layout` ("channels_last" or "NCHW") for timing."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {list(LAYOUTS)}")
    out = copy.deepcopy(model).eval()
    return out.to(memory_format=torch.channels_last) if layout == "channels_last" else out


def widths(model: nn.Module) -> list[int]:
    """Output channels / features of every Conv2d and Linear, in order."""
    return [m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
            for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def speed_table(dense: nn.Module, pruned: nn.Module, *, batch_size: int = 256, rounds: int = 11,
                min_run_time: float = 0.3, layouts=LAYOUTS) -> Table:
    """FLOP ratio and interleaved median latencies of `dense` vs `pruned`, one row per layout."""
    d_flops, p_flops = count_flops(dense).dense, count_flops(pruned).dense
    models = {}
    for layout in layouts:
        models[f"dense {layout}"], models[f"pruned {layout}"] = deploy(dense, layout), deploy(pruned, layout)
    timing = benchkit.interleaved_latency(models, batch_size, rounds=rounds, min_run_time=min_run_time)
    rows = []
    ratio = d_flops / p_flops
    for layout in layouts:
        d, p = timing[f"dense {layout}"], timing[f"pruned {layout}"]
        speedup = benchkit.paired_ratio(d, p)
        ok = p_flops <= MAX_FLOP_FRACTION * d_flops and speedup >= SPEEDUP_SHARE * ratio
        rows.append((layout, d_flops, p_flops, ratio, d["median_ms"], d["iqr_ms"], p["median_ms"], p["iqr_ms"],
                     speedup, speedup / ratio, "PASS" if ok else "MISS"))
    return Table(COLUMNS, rows, title=f"(b) VGGSmall, structured pruning: speedup vs FLOP ratio at batch {batch_size}",
                 formats={"dense FLOPs": "count", "pruned FLOPs": "count", "FLOP ratio": ".2f", "dense ms": ".1f",
                          "dense IQR": ".1f", "pruned ms": ".1f", "pruned IQR": ".1f", "speedup": ".2f",
                          "speedup / FLOP ratio": ".2f"},
                 note=f"FLOPs per image (torch.utils.flop_counter). Latency: course.metrics.latency, dense and pruned "
                      f"timed in turn (ABBA order), {rounds} rounds: ms = median of the per-round medians (IQR across "
                      f"rounds); speedup = median of the per-round dense / pruned ratios; "
                      f"{torch.get_num_threads()} thread(s). PASS: pruned FLOPs ≤ {MAX_FLOP_FRACTION:.0%} of dense "
                      f"and speedup ≥ {SPEEDUP_SHARE} × FLOP ratio.")


def accuracy_table(dense: nn.Module, pruned: nn.Module, ratio: float, train_loader, test_loader, *,
                   epochs: int = 2, lr: float = 0.01, dense_acc: float | None = None) -> tuple[Table, nn.Module]:
    """Accuracy of dense, pruned and pruned + `epochs` of SGD fine-tuning (cosine lr); returns (table, tuned)."""
    dense_acc = evaluate(dense, test_loader) if dense_acc is None else dense_acc
    before = evaluate(pruned, test_loader)
    tuned = copy.deepcopy(pruned)
    start = time.perf_counter()
    train(tuned, train_loader, epochs=epochs, lr=lr, momentum=0.9, weight_decay=5e-4, schedule="cosine",
          progress=False, seed=0)
    seconds = time.perf_counter() - start
    after = evaluate(tuned.eval(), test_loader)
    delta = 100 * (after - dense_acc)
    status = "PASS" if delta >= -ACCURACY_PP - 1e-9 else "MISS"
    rows = [("dense", widths(dense), dense_acc, None, None, "–"),
            (f"pruned (ratio {ratio:.2f}), no fine-tuning", widths(pruned), before, 100 * (before - dense_acc), None,
             "–"),
            (f"pruned + {epochs} epochs fine-tuning", widths(tuned), after, delta, seconds, status)]
    table = Table(["model", "widths", "test acc", "Δ pp", "fine-tune s", "status"], rows,
                  title="(b) VGGSmall accuracy after structured pruning",
                  formats={"test acc": ".2%", "Δ pp": "+.2f", "fine-tune s": ".0f"},
                  note=f"l1 filter norms, local scope, kept channels rounded down to multiples of 8; fine-tuning "
                       f"SGD momentum 0.9, weight decay 5e-4, cosine lr from {lr}. PASS: Δ ≥ −{ACCURACY_PP} pp.")
    return table, tuned
