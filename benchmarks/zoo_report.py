"""The library on every model of the test zoo (tests/zoo.py), one markdown table: the closing table of issue 11.

    .venv/bin/python benchmarks/zoo_report.py            # ~1 min; prints the table

Per model: sparsity requested (0.9, global) vs achieved over the prunable weight matrices (every Linear, Conv,
attention and recurrent weight; a tied lm_head included), then over every weight matrix (embeddings included); the same after 3 steps of a plain Adam loop (lr 1e-2, batch 8, the model's own loss); the largest output
difference between the model in memory and the one `save_pruned(bitmask_fp32)` + `load_pruned` give back;
`count_flops` against the hand count (batch 2); and what `prune_with_torch_pruning(model, 0.3, example)` did.
"""
from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from zoo import ZOO  # noqa: E402

from course import count_flops, load_pruned, prune_unstructured, prune_with_torch_pruning, save_pruned  # noqa: E402
from course.inputs import call  # noqa: E402
from course.pruning.targets import prunable_weights, weight_matrices  # noqa: E402


def sparsity(model: nn.Module, embeddings: bool) -> float:
    """Zeros / weights over the prunable weight matrices (a tied lm_head included), or over every one."""
    ws = [t.weight.detach() for t in (weight_matrices(model) if embeddings else prunable_weights(model))]
    return sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws)


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def row(name: str) -> str:
    spec = ZOO[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruned = prune_unstructured(spec.model(), 0.9, scope="global")
    achieved = f"{sparsity(pruned, False):.4f} ({sparsity(pruned, True):.4f})"
    opt = torch.optim.Adam(pruned.parameters(), lr=1e-2)
    pruned.train()
    for step in range(3):
        opt.zero_grad()
        spec.loss_fn(pruned, spec.batch(8, seed=step)).backward()
        opt.step()
    after = f"{sparsity(pruned, False):.4f}"
    with tempfile.TemporaryDirectory() as folder:
        loaded = load_pruned(save_pruned(pruned, Path(folder) / "m.pt", "bitmask_fp32"), spec.model())
    x = spec.inputs(spec.batch(16, seed=99))
    with torch.no_grad():
        diff = float((call(pruned.eval(), x) - call(loaded.eval(), x)).abs().max())
    batch = spec.batch(2)
    flops = count_flops(spec.model(), example_inputs=spec.inputs(batch))
    hand = spec.flops(batch)
    fl = f"{flops.dense:,} / {hand:,} {'✓' if flops.dense == hand else '✗'}" + (
        f" (formula: {', '.join(flops.analytic)})" if flops.analytic else "")
    model = spec.model()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            slim = prune_with_torch_pruning(model, 0.3, spec.inputs(spec.batch(2)))
        said = [str(w.message).split(":")[0] for w in caught if "removed nothing" in str(w.message)]
        tp = f"{params(model):,} → {params(slim):,} params" + (f"; warned: {said[0]}" if said else "")
    except Exception as e:                                   # noqa: BLE001 - the translated error is the result
        tp = f"{type(e).__name__}: {str(e)[:150]}…"
    return f"| {name} | 0.9 → {achieved} | {after} | {diff:.1e} | {fl} | {tp} |"


def main() -> None:
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="The PyTorch API of nested tensors")
    print("| model | requested → achieved, global (with embeddings) | after 3 Adam steps | save/reload max |Δout| "
          "| count_flops / hand (batch 2) | prune_with_torch_pruning(0.3) |")
    print("|---|---|---|---|---|---|")
    for name in ZOO:
        print(row(name), flush=True)


if __name__ == "__main__":
    main()
