"""Target (b): structured pruning of VGGSmall to <= 50% of its dense FLOPs runs at >= 0.9x the FLOP ratio on CPU.

speedup = dense latency / pruned latency and FLOP ratio = dense FLOPs / pruned FLOPs, both at batch 256, measured
in one process with the dense and pruned models timed in turn. The pruned model must also stay within 1 pp of
the dense accuracy after fine-tuning. Two ways to choose the pruned widths, both scoring filters by L1 norm:
  - "uniform": `prune_structured` with one ratio for every layer, kept channels rounded down to multiples of 8,
    the smallest ratio that reaches <= 50% FLOPs;
  - "latency-aware": per-block widths (multiples of 8) searched on this machine: every width combination with
    35-50% of the dense FLOPs is timed, and the one with the highest speedup / FLOP ratio is kept (the idea of
    NetAdapt, Yang et al. 2018). FLOPs fall with width², but the memory-bound BatchNorm/ReLU/pooling work only
    with width, so where the channels go matters as much as how many.
Both models get the same deployment: eval mode, inference_mode, and "channels_last" (NHWC, the layout oneDNN's
convolutions and PyTorch's pooling kernels prefer) or plain NCHW.
"""
from __future__ import annotations

import copy
import itertools
import time

import torch
from torch import nn

from course.metrics import count_flops
from course.pruning import prune_structured, remove_units, unit_scores
from course.table import Table
from course import evaluate, train

import benchkit

MAX_FLOP_FRACTION = 0.5
MIN_FLOP_FRACTION = 0.35
SPEEDUP_SHARE = 0.9
ACCURACY_PP = 1.0
RATIOS = tuple(r / 100 for r in range(5, 80, 5))
LAYOUTS = ("channels_last", "NCHW")
COLUMNS = ["method", "layout", "threads", "widths", "FLOP ratio", "dense ms", "dense IQR", "pruned ms", "pruned IQR",
           "speedup", "speedup / FLOP ratio", "status"]


def widths(model: nn.Module) -> list[int]:
    """Output channels / features of every Conv2d and Linear, in order."""
    return [m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
            for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


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


def conv_blocks(model: nn.Module) -> list[list[str]]:
    """Names of the Conv2d layers of each block of a chain (a block ends at a pooling layer)."""
    blocks, current = [], []
    for name, module in model.named_children():
        if isinstance(module, nn.Conv2d):
            current.append(name)
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)) and current:
            blocks.append(current)
            current = []
    return blocks + ([current] if current else [])


def prune_to_widths(model: nn.Module, keep_units: dict[str, int], criterion: str = "l1") -> nn.Module:
    """A physically smaller copy keeping the `keep_units[layer]` highest-scoring units of each named layer."""
    scores = unit_scores(model, criterion)
    keep = {}
    for name, s in scores.items():
        mask = torch.zeros(len(s), dtype=torch.bool)
        mask[torch.argsort(s, descending=True, stable=True)[:keep_units.get(name, len(s))]] = True
        keep[name] = mask
    return remove_units(model, keep)


def width_candidates(model: nn.Module, *, step: int = 8, fractions=(MIN_FLOP_FRACTION, MAX_FLOP_FRACTION)
                     ) -> dict[tuple[int, ...], nn.Module]:
    """Every per-block width (multiples of `step`, up to the dense width) whose FLOPs are within `fractions` of
    the dense FLOPs -> the pruned model."""
    blocks = conv_blocks(model)
    modules = dict(model.named_modules())
    dense = count_flops(model).dense
    choices = [range(step, modules[b[0]].out_channels + 1, step) for b in blocks]
    out = {}
    for combo in itertools.product(*choices):
        pruned = prune_to_widths(model, {name: w for block, w in zip(blocks, combo) for name in block})
        if fractions[0] * dense <= count_flops(pruned).dense <= fractions[1] * dense:
            out[combo] = pruned
    return out


def latency_aware(model: nn.Module, *, batch_size: int = 256, rounds: int = 5, min_run_time: float = 0.1,
                  layout: str = "channels_last") -> tuple[tuple[int, ...], Table]:
    """Time every `width_candidates` model against the dense one; (best per-block widths, candidates table)."""
    cands = width_candidates(model)
    if not cands:
        raise ValueError("no per-block widths give 35-50% of the dense FLOPs")
    models = {"dense": deploy(model, layout)} | {str(k): deploy(m, layout) for k, m in cands.items()}
    t = benchkit.interleaved_latency(models, batch_size, rounds=rounds, min_run_time=min_run_time)
    dense = count_flops(model).dense
    rows, share = [], {}
    for combo, m in cands.items():
        ratio = dense / count_flops(m).dense
        speedup = benchkit.paired_ratio(t["dense"], t[str(combo)])
        share[combo] = speedup / ratio
        rows.append((str(list(combo)), ratio, t[str(combo)]["median_ms"], speedup, speedup / ratio))
    rows.sort(key=lambda r: -r[-1])
    table = Table(["block widths", "FLOP ratio", "ms", "speedup", "speedup / FLOP ratio"], rows,
                  title=f"(b) Latency-aware search: block widths with {MIN_FLOP_FRACTION:.0%}–{MAX_FLOP_FRACTION:.0%} "
                        f"of the dense FLOPs (untrained copies; latency does not depend on the weights)",
                  formats={"FLOP ratio": ".2f", "ms": ".1f", "speedup": ".2f", "speedup / FLOP ratio": ".2f"},
                  note=f"{layout}, batch {batch_size}, {rounds} interleaved rounds; dense "
                       f"{t['dense']['median_ms']:.1f} ms. The best row is pruned from the trained model, fine-tuned "
                       "and timed again below (a fresh measurement, not this one).")
    return max(share, key=share.get), table


def deploy(model: nn.Module, layout: str) -> nn.Module:
    """An eval-mode copy in `layout` ("channels_last" or "NCHW") for timing."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {list(LAYOUTS)}")
    out = copy.deepcopy(model).eval()
    return out.to(memory_format=torch.channels_last) if layout == "channels_last" else out


def speed_table(dense: nn.Module, pruned: dict[str, nn.Module], *, batch_size: int = 256, rounds: int = 11,
                min_run_time: float = 0.2, layouts=LAYOUTS, threads=(1, 2)) -> Table:
    """FLOP ratio and interleaved latencies of `dense` vs each pruned model, one row per (method, layout, threads)."""
    d_flops = count_flops(dense).dense
    models = {}
    for layout in layouts:
        models[f"dense|{layout}"] = deploy(dense, layout)
        models |= {f"{name}|{layout}": deploy(m, layout) for name, m in pruned.items()}
    timing = {n: benchkit.interleaved_latency(models, batch_size, rounds=rounds, min_run_time=min_run_time, threads=n)
              for n in threads}
    rows = []
    for name, m in pruned.items():
        p_flops = count_flops(m).dense
        ratio = d_flops / p_flops
        for layout in layouts:
            for n in threads:
                d, p = timing[n][f"dense|{layout}"], timing[n][f"{name}|{layout}"]
                speedup = benchkit.paired_ratio(d, p)
                ok = p_flops <= MAX_FLOP_FRACTION * d_flops and speedup >= SPEEDUP_SHARE * ratio
                rows.append((name, layout, n, str(widths(m)[:-2]), ratio, d["median_ms"], d["iqr_ms"], p["median_ms"],
                             p["iqr_ms"], speedup, speedup / ratio, "PASS" if ok else "MISS"))
    return Table(COLUMNS, rows, title=f"(b) VGGSmall, structured pruning: speedup vs FLOP ratio at batch {batch_size}",
                 formats={"FLOP ratio": ".2f", "dense ms": ".1f", "dense IQR": ".1f", "pruned ms": ".1f",
                          "pruned IQR": ".1f", "speedup": ".2f", "speedup / FLOP ratio": ".2f"},
                 note=f"Dense widths {widths(dense)[:-2]}, {d_flops:,} FLOPs per image (torch.utils.flop_counter). "
                      f"Latency: course.timing.latency, every model timed in turn (ABBA order), {rounds} rounds: "
                      f"ms = median of the per-round medians (IQR across rounds); speedup = median of the per-round "
                      f"dense / pruned ratios; threads = torch threads while timing (2 = both cores, which other "
                      f"jobs may be using). PASS: pruned FLOPs ≤ "
                      f"{MAX_FLOP_FRACTION:.0%} of dense and speedup ≥ {SPEEDUP_SHARE} × FLOP ratio.")


def accuracy_table(dense: nn.Module, pruned: dict[str, nn.Module], train_loader, test_loader, *, epochs: int = 2,
                   lr: float = 0.01, dense_acc: float | None = None) -> tuple[Table, dict[str, nn.Module]]:
    """Accuracy of dense and of each pruned model before and after `epochs` of SGD fine-tuning (cosine lr);
    returns (table, {name: fine-tuned model})."""
    dense_acc = evaluate(dense, test_loader) if dense_acc is None else dense_acc
    rows = [("dense", str(widths(dense)[:-2]), "–", dense_acc, None, None, "–")]
    tuned = {}
    for name, model in pruned.items():
        before = evaluate(model, test_loader)
        tuned[name] = copy.deepcopy(model)
        start = time.perf_counter()
        train(tuned[name], train_loader, epochs=epochs, lr=lr, momentum=0.9, weight_decay=5e-4, schedule="cosine",
              progress=False, seed=0)
        seconds = time.perf_counter() - start
        after = evaluate(tuned[name].eval(), test_loader)
        delta = 100 * (after - dense_acc)
        rows.append((name, str(widths(model)[:-2]), f"{before:.2%}", after, delta, seconds,
                     "PASS" if delta >= -ACCURACY_PP - 1e-9 else "MISS"))
    table = Table(["model", "conv/fc widths", "acc before fine-tuning", "test acc", "Δ pp", "fine-tune s", "status"],
                  rows, title="(b) VGGSmall accuracy after structured pruning and fine-tuning",
                  formats={"test acc": ".2%", "Δ pp": "+.2f", "fine-tune s": ".0f"},
                  note=f"Filters scored by L1 norm. Fine-tuning: {epochs} epochs of SGD (momentum 0.9, weight decay "
                       f"5e-4, cosine lr from {lr}). PASS: Δ ≥ −{ACCURACY_PP} pp.")
    return table, tuned
