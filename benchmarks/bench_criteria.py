"""Criteria × scope sweep: LeNet-300-100 accuracy after one-shot pruning, and after a short fine-tuning budget.

For each dataset, seed, criterion (magnitude, gradient, taylor, taylor_signed_mean, snip, obd, lamp, random), scope
(local, global) and sparsity, prune the seed's dense baseline once with `prune_unstructured` and measure test
accuracy; at a subset of the sparsities also fine-tune for a fixed number of SGD steps. Seeds change the dense
baseline (seed 0 is the shipped one, seeds 1.. are the same recipe retrained with that seed), the calibration
batches of the gradient criteria, the random criterion and the fine-tuning order. Mean ± std over seeds, random
included: the reporting practice of ShrinkBench (Blalock et al. 2020).

    .venv/bin/python benchmarks/bench_criteria.py            # ~3 min on a quiet 2-core CPU (+2 min once for seeds 1-2)
    .venv/bin/python benchmarks/bench_criteria.py --quick    # smoke run, under a minute
"""
from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from itertools import islice
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchkit  # noqa: E402

from course.pruning import CRITERIA, prune_unstructured  # noqa: E402
from course.table import Table  # noqa: E402
from course import evaluate, train  # noqa: E402

CRITERIA_NAMES = ("magnitude", "gradient", "taylor", "taylor_signed_mean", "snip", "obd", "lamp", "random")
SCOPES = ("local", "global")
SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
FT_SPARSITIES = (0.8, 0.95, 0.99)
DATASETS = ("fashion-mnist", "mnist")
COLUMNS = ["dataset", "mode", "criterion", "scope", "sparsity", "accuracy mean", "accuracy std", "seeds"]
#: Compared elsewhere: Wanda is a post-training criterion for transformers (bench_transformers.py, target (f)).
ELSEWHERE = {"wanda"}
assert set(CRITERIA_NAMES) == set(CRITERIA) - ELSEWHERE, "the sweep must cover every registered criterion"


class Steps:
    """The first `steps` batches of `loader`, its shuffle reseeded with `seed` on every pass (a fixed budget)."""

    def __init__(self, loader: DataLoader, steps: int, seed: int):
        self.loader, self.steps, self.seed = loader, steps, seed

    def __len__(self) -> int:
        return min(self.steps, len(self.loader))

    def __iter__(self):
        if getattr(self.loader, "generator", None) is not None:
            self.loader.generator.manual_seed(self.seed)
        return islice(iter(self.loader), len(self))


def calibration_batches(loader: DataLoader, seed: int, num_batches: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`num_batches` batches drawn from `loader.dataset` with a generator seeded by `seed` (gradient criteria)."""
    gen = torch.Generator().manual_seed(seed)
    draw = DataLoader(loader.dataset, batch_size=loader.batch_size, shuffle=True, generator=gen,
                      collate_fn=loader.collate_fn)
    return list(islice(iter(draw), num_batches))


def run_sweep(models: dict[int, nn.Module], train_loader: DataLoader, test_loader: DataLoader, *,
              sparsities: Sequence[float] = SPARSITIES, ft_sparsities: Iterable[float] = FT_SPARSITIES,
              criteria: Sequence[str] = CRITERIA_NAMES, scopes: Sequence[str] = SCOPES, ft_steps: int = 200,
              lr: float = 0.01, progress: bool = True) -> list[dict]:
    """One record per (seed, criterion, scope, sparsity, mode): mode "one-shot", "fine-tuned" or "dense".

    Fine-tuning: `ft_steps` SGD steps (momentum 0.9, cosine lr from `lr`) with the masks enforced by
    `course.train` (course/training.py). The models in `models` are never changed.
    """
    ft_sparsities = set(ft_sparsities)
    total = len(models) * len(criteria) * len(scopes) * len(sparsities)
    bar = tqdm(total=total, desc="criteria sweep", disable=not progress, leave=False)
    records = []
    for seed, model in models.items():
        calib = calibration_batches(train_loader, seed)
        records.append({"seed": seed, "criterion": "dense", "scope": "–", "sparsity": 0.0, "mode": "dense",
                        "accuracy": evaluate(model, test_loader)})
        for criterion in criteria:
            for scope in scopes:
                for s in sparsities:
                    pruned = prune_unstructured(model, s, criterion=criterion, scope=scope, data=calib, seed=seed)
                    row = {"seed": seed, "criterion": criterion, "scope": scope, "sparsity": s}
                    records.append(row | {"mode": "one-shot", "accuracy": evaluate(pruned, test_loader)})
                    if s in ft_sparsities:
                        train(pruned, Steps(train_loader, ft_steps, seed), epochs=1, lr=lr, momentum=0.9,
                              schedule="cosine", progress=False, seed=seed)
                        records.append(row | {"mode": "fine-tuned", "accuracy": evaluate(pruned, test_loader)})
                    bar.update(1)
    bar.close()
    return records


def summarize(records: list[dict], dataset: str) -> Table:
    """Mean ± std of accuracy over seeds, one row per (mode, criterion, scope, sparsity)."""
    groups: dict[tuple, list[float]] = {}
    for r in records:
        groups.setdefault((r["mode"], r["criterion"], r["scope"], r["sparsity"]), []).append(r["accuracy"])
    order = {"dense": 0, "one-shot": 1, "fine-tuned": 2}
    rows = []
    for (mode, criterion, scope, s), accs in sorted(groups.items(), key=lambda kv: (order[kv[0][0]],) + kv[0][1:]):
        mean, std = benchkit.mean_std(accs)
        rows.append((dataset, mode, criterion, scope, s, mean, std, len(accs)))
    return Table(COLUMNS, rows, title=f"LeNet-300-100 on {dataset}: test accuracy after pruning",
                 formats={"sparsity": ".0%", "accuracy mean": ".2%", "accuracy std": ".2%"})


def wide_markdown(table: Table, mode: str, ft_steps: int) -> str:
    """One markdown grid for `mode`: rows criterion/scope, columns sparsity, cells 'mean ± std' in %."""
    rows = [r for r in table if r["mode"] == mode]
    sparsities = sorted({r["sparsity"] for r in rows})
    cells = {(r["criterion"], r["scope"], r["sparsity"]): r for r in rows}
    keys = list(dict.fromkeys((r["criterion"], r["scope"]) for r in rows))
    dense = [r for r in table if r["mode"] == "dense"][0]
    what = "one-shot (no fine-tuning)" if mode == "one-shot" else f"after {ft_steps} fine-tuning steps"
    lines = [f"**{table.rows[0][0]}, {what}** — dense baseline {dense['accuracy mean']:.2%} ± "
             f"{dense['accuracy std']:.2%} ({dense['seeds']} seeds)", "",
             "| criterion | scope | " + " | ".join(f"{s:.0%}" for s in sparsities) + " |",
             "|---|---|" + "---|" * len(sparsities)]
    for c, sc in keys:
        vals = [cells.get((c, sc, s)) for s in sparsities]
        lines.append(f"| {c} | {sc} | " + " | ".join(
            "–" if v is None else f"{v['accuracy mean']:.2%} ± {v['accuracy std']:.2%}" for v in vals) + " |")
    return "\n".join(lines)


def plot(tables: list[Table]):
    """Accuracy vs sparsity, one panel per (dataset, scope); solid = one-shot, dashed = fine-tuned; ±1 std bars."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(tables), 2, figsize=(10, 3.6 * len(tables)), squeeze=False)
    colors = dict(zip(CRITERIA_NAMES, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for i, table in enumerate(tables):
        sparsities = sorted({r["sparsity"] for r in table if r["mode"] != "dense"})
        pos = {s: j for j, s in enumerate(sparsities)}
        dense = [r for r in table if r["mode"] == "dense"][0]["accuracy mean"]
        for j, scope in enumerate(SCOPES):
            ax = axes[i][j]
            for crit in CRITERIA_NAMES:
                for mode, style in (("one-shot", "-o"), ("fine-tuned", "--s")):
                    pts = [r for r in table if r["criterion"] == crit and r["scope"] == scope and r["mode"] == mode]
                    if pts:
                        ax.errorbar([pos[r["sparsity"]] for r in pts], [r["accuracy mean"] for r in pts],
                                    yerr=[r["accuracy std"] for r in pts], fmt=style, color=colors[crit], ms=3,
                                    capsize=2, lw=1, label=f"{'snip (= signed mean)' if crit == 'snip' else crit} ({mode})")
            ax.axhline(dense, color="k", lw=0.8, ls=":", label="dense")
            ax.set_xticks(range(len(sparsities)), [f"{s:.0%}" for s in sparsities])
            ax.set_ylim(0, 1)
            ax.set_title(f"{table.rows[0][0]} — {scope}", fontsize=9)
            ax.set_xlabel("sparsity")
            ax.set_ylabel("test accuracy")
    axes[0][1].legend(fontsize=6, ncol=2, loc="lower left")
    fig.tight_layout()
    return fig


def summary_rows(table: Table, at: float = 0.95) -> list[dict]:
    """A few headline numbers for the README: dense, and the best / magnitude / random at `at` sparsity."""
    dataset = table.rows[0][0]
    dense = [r for r in table if r["mode"] == "dense"][0]
    out = [{"benchmark": "criteria", "measure": f"{dataset}: dense LeNet-300-100",
            "result": f"{dense['accuracy mean']:.2%} ± {dense['accuracy std']:.2%}"}]
    for mode in ("one-shot", "fine-tuned"):
        rows = [r for r in table if r["mode"] == mode and abs(r["sparsity"] - at) < 1e-9]
        if not rows:
            continue
        best = max(rows, key=lambda r: r["accuracy mean"])
        rand = max((r for r in rows if r["criterion"] == "random"), key=lambda r: r["accuracy mean"], default=None)
        text = f"best {best['criterion']}/{best['scope']} {best['accuracy mean']:.2%} ± {best['accuracy std']:.2%}"
        if rand is not None:
            text += f"; best random {rand['accuracy mean']:.2%}"
        out.append({"benchmark": "criteria", "measure": f"{dataset}: {at:.0%} sparsity, {mode}", "result": text})
    return out


def main(argv: list[str] | None = None) -> int:
    p = benchkit.parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (dense baselines) per dataset")
    p.add_argument("--ft-steps", type=int, default=200, help="fine-tuning budget in SGD steps (batch 128)")
    args = p.parse_args(argv)
    out = benchkit.setup(args)
    meta = benchkit.start_meta(args)
    sparsities, ft_sparsities, seeds, ft_steps = SPARSITIES, FT_SPARSITIES, range(args.seeds), args.ft_steps
    if args.quick:
        sparsities, ft_sparsities, seeds, ft_steps = (0.5, 0.9), (0.9,), range(2), 5
    tables = []
    for ds in DATASETS:
        train_loader, test_loader = benchkit.loaders(ds, quick=args.quick)
        models = {s: benchkit.baseline("lenet300", ds, seed=s, wait=args.wait,
                                       quick_loader=train_loader if args.quick else None)[0] for s in seeds}
        records = run_sweep(models, train_loader, test_loader, sparsities=sparsities, ft_sparsities=ft_sparsities,
                            ft_steps=ft_steps)
        table = summarize(records, benchkit.dataset_label(ds))
        print(table, flush=True)
        tables.append(table)
    note = (f"{len(seeds)} seeds: seed 0 is the shipped baseline, seeds 1.. the same recipe retrained with that seed. "
            f"Fine-tuning: {ft_steps} SGD steps (batch 128, momentum 0.9, cosine lr from 0.01), only at "
            f"{', '.join(f'{s:.0%}' for s in ft_sparsities)} sparsity to stay within the time budget. Gradient "
            "criteria use 4 calibration batches of 128 training images. taylor is Molchanov et al. (2019): the mean over "
            "batches of (w·g_b)²; snip = taylor_signed_mean / (sum over all weights), a positive constant, so on a "
            "trained net it ranks weights exactly as taylor_signed_mean does (same masks). obd = ½·h·w² with the "
            "Gauss-Newton diagonal; lamp ranks a layer as magnitude does, so under the local scope it prunes "
            "exactly magnitude's weights. "
            "One-shot magnitude is deterministic given the baseline, so its std is the spread across baselines.")
    sections = [note] + [wide_markdown(t, m, ft_steps) for t in tables for m in ("one-shot", "fine-tuned")]
    combined = Table(COLUMNS, [r for t in tables for r in t.rows], formats=tables[0].formats)
    benchkit.write_result(out, "criteria", "Criteria × scope sweep (LeNet-300-100)", sections + [
        "![accuracy vs sparsity](criteria.png)"], {"criteria": combined},
        meta=benchkit.finish_meta(meta | {"seeds": len(seeds), "ft_steps": ft_steps}), figure=plot(tables),
        summary=[row for t in tables for row in summary_rows(t)])
    print(f"wrote {out / 'criteria.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
