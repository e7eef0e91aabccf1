"""Target (d): course masks are no slower than `torch.nn.utils.prune`'s reparametrisation.

Same model, same masks, two forms: course (plain weights + a bool `prune_mask` buffer, re-applied after each
optimizer step by `enforce_masks`) and torch (`weight_orig` × `weight_mask` recomputed by a forward pre-hook,
from `to_torch_prune`). Timed in one process, in turn, with `torch.utils.benchmark` (median over rounds):
(i) inference forward, (ii) one training step with the masks enforced, and the time to compute the masks
(`prune_unstructured` vs `prune.l1_unstructured` per layer / `prune.global_unstructured`).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune as torch_prune

from course.pruning import prunable_layers, prunable_weights, prune_unstructured, to_torch_prune
from course.table import Table
from course.training import make_optimizer

import benchkit

SLOWER_TOLERANCE = 1.05
COLUMNS = ["operation", "course ms", "course IQR", "torch ms", "torch IQR", "course / torch", "status"]


def _forward(model: nn.Module, x: torch.Tensor):
    model.eval()

    def run() -> None:
        with torch.inference_mode():
            model(x)
    return run


def _train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: str):
    """One SGD-momentum (or Adam) step on `model` in place; course masks hold through their own hooks."""
    model.train()
    opt = make_optimizer(model, optimizer, lr=1e-3 if optimizer == "sgd" else 1e-4, momentum=0.9)

    def run() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return run


def _torch_masks(model: nn.Module, sparsity: float, scope: str):
    def run() -> nn.Module:
        net = copy.deepcopy(model)                      # prune_unstructured copies too: same footing
        params = [(m, "weight") for _, m in prunable_layers(net)]
        if scope == "local":
            for m, name in params:
                torch_prune.l1_unstructured(m, name, amount=sparsity)
        else:
            torch_prune.global_unstructured(params, pruning_method=torch_prune.L1Unstructured, amount=sparsity)
        return net
    return run


def masks_table(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, sparsity: float = 0.9, rounds: int = 15,
                min_run_time: float = 0.1, forward_batches=(1, 256)) -> Table:
    """Course vs torch.nn.utils.prune, one row per operation; course / torch < 1 means the course form is faster."""
    course = prune_unstructured(model, sparsity, scope="global")
    torch_form = to_torch_prune(course)
    stmts: dict[str, tuple] = {}
    for b in forward_batches:
        xb = x[:b]
        stmts[f"forward, batch {b}"] = (_forward(course, xb), _forward(torch_form, xb))
    for opt in ("sgd", "adam"):
        stmts[f"train step ({opt}), batch {len(x)}"] = (
            _train_step(copy.deepcopy(course), x, y, opt), _train_step(to_torch_prune(course), x, y, opt))
    for scope in ("local", "global"):
        stmts[f"compute masks ({scope}, {sparsity:.0%})"] = (
            lambda s=scope: prune_unstructured(model, sparsity, scope=s), _torch_masks(model, sparsity, scope))
    flat = {f"{name}|{who}": fn for name, pair in stmts.items() for who, fn in zip(("course", "torch"), pair)}
    timing = benchkit.interleaved_timer(flat, rounds=rounds, min_run_time=min_run_time,
                                        threads=torch.get_num_threads())
    rows = []
    for name in stmts:
        c, t = timing[f"{name}|course"], timing[f"{name}|torch"]
        share = benchkit.paired_ratio(c, t)
        rows.append((name, c["median_ms"], c["iqr_ms"], t["median_ms"], t["iqr_ms"], share,
                     "PASS" if share <= SLOWER_TOLERANCE else "MISS"))
    return Table(COLUMNS, rows, title=f"(d) Course masks vs torch.nn.utils.prune ({type(model).__name__}, "
                                      f"{sparsity:.0%} sparsity)",
                 formats={"course ms": ".3f", "course IQR": ".3f", "torch ms": ".3f", "torch IQR": ".3f",
                          "course / torch": ".2f"},
                 note=f"torch.utils.benchmark, {rounds} interleaved rounds (ABBA order), {torch.get_num_threads()} "
                      f"thread(s): ms = median of the per-round medians; course / torch = median of the per-round "
                      f"ratios (each pair timed moments apart, so load drift cancels). "
                      f"PASS: course / torch ≤ {SLOWER_TOLERANCE} (no slower, up to 5% timing noise). "
                      "Training steps: course = plain forward/backward/step (the masks' gradient and step hooks "
                      "run by themselves); torch = "
                      "reparametrised forward (weight = weight_orig * weight_mask) + backward + step. Mask "
                      "computation includes the model copy on both sides (prune_unstructured returns a new model).")


def zoo_masks_table(model: nn.Module, *, sparsity: float = 0.9, rounds: int = 15, min_run_time: float = 0.1) -> Table:
    """prune_unstructured(model, sparsity, scope="global") against torch.nn.utils.prune.global_unstructured over the
    same weight matrices (`prunable_weights`), each on a fresh copy, timed in one run: one row."""
    params = [(t.module_name, t.attr) for t in prunable_weights(model)]

    def theirs() -> nn.Module:
        net = copy.deepcopy(model)                      # prune_unstructured copies too: same footing
        torch_prune.global_unstructured([(net.get_submodule(m), a) for m, a in params],
                                        pruning_method=torch_prune.L1Unstructured, amount=sparsity)
        return net

    flat = {"course": lambda: prune_unstructured(model, sparsity, scope="global"), "torch": theirs}
    timing = benchkit.interleaved_timer(flat, rounds=rounds, min_run_time=min_run_time,
                                        threads=torch.get_num_threads())
    c, t = timing["course"], timing["torch"]
    share = benchkit.paired_ratio(c, t)
    name = f"compute masks (global, {sparsity:.0%}), {type(model).__name__} of the test zoo"
    return Table(COLUMNS, [(name, c["median_ms"], c["iqr_ms"], t["median_ms"], t["iqr_ms"], share,
                            "PASS" if share <= SLOWER_TOLERANCE else "MISS")],
                 title=f"(d) prune_unstructured vs torch.nn.utils.prune.global_unstructured, {type(model).__name__} "
                       f"({sum(p.numel() for p in model.parameters()):,} parameters, {len(params)} weight matrices)",
                 formats={"course ms": ".3f", "course IQR": ".3f", "torch ms": ".3f", "torch IQR": ".3f",
                          "course / torch": ".2f"},
                 note=f"the largest model of tests/zoo.py; {rounds} interleaved rounds, {torch.get_num_threads()} "
                      "thread(s); both sides copy the model and prune the same weight matrices (torch's list is "
                      "course.prunable_weights)")
