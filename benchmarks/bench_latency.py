"""Latency of pruned MLPs: dense vs dense-with-zeros vs CSR vs structured, across sparsities and batch sizes.

For each sparsity s, the model is pruned with local magnitude (`prune_unstructured`): "zeros" runs it as it is
(dense kernels multiplying zeros), "csr" converts its Linear layers with `to_sparse_csr`, and "structured" is
`prune_structured` at the unit ratio whose parameter count matches the unstructured model's nonzero count.
Latency: `course.timing.latency` (torch.utils.benchmark), the four forms timed in turn (ABBA) over a few rounds;
× = median of the per-round dense / form ratios. The CSR break-even sparsity is interpolated with
`course.break_even`. Models: LeNet-300-100 and a bigger 784-2048-2048-10 MLP (random init, seeded:
latency does not depend on the values, only on the shapes and the sparsity).

    .venv/bin/python benchmarks/bench_latency.py            # ~3 min on a quiet 2-core CPU
    .venv/bin/python benchmarks/bench_latency.py --quick
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchkit  # noqa: E402

from course.metrics import count_params  # noqa: E402
from course.models import build_model  # noqa: E402
from course.pruning import prune_structured, prune_unstructured, to_sparse_csr  # noqa: E402
from course import break_even  # noqa: E402
from course.table import Table  # noqa: E402

SPARSITIES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99)
BATCHES = (1, 16, 256)
FORMS = ("dense", "zeros", "csr", "structured")
COLUMNS = ["model", "sparsity", "batch", "dense ms", "dense IQR", "zeros ms", "csr ms", "csr IQR", "structured ms",
           "zeros ×", "csr ×", "structured ×", "structured params"]


class BigMLP(nn.Sequential):
    """A 784-2048-2048-10 MLP (5.8 M parameters): big enough for sparse kernels to have work to skip."""

    def __init__(self, in_shape: tuple[int, int, int] = (1, 28, 28), hidden: int = 2048, num_classes: int = 10):
        super().__init__(nn.Flatten(), nn.Linear(in_shape[0] * in_shape[1] * in_shape[2], hidden), nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
        self.in_shape = tuple(in_shape)


def structured_match(model: nn.Module, params: int, iterations: int = 20) -> tuple[float, nn.Module]:
    """(ratio, slim model): the `prune_structured` unit ratio whose parameter count is closest to `params`."""
    lo, hi = 0.0, 0.999
    best = (0.0, model, abs(count_params(model).total - params))
    for _ in range(iterations):
        mid = (lo + hi) / 2
        slim = prune_structured(model, mid)
        n = count_params(slim).total
        if abs(n - params) < best[2]:
            best = (mid, slim, abs(n - params))
        lo, hi = (mid, hi) if n > params else (lo, mid)
    return best[0], best[1]


def latency_table(name: str, model: nn.Module, *, sparsities: Sequence[float] = SPARSITIES,
                  batches: Sequence[int] = BATCHES, rounds: int = 7, min_run_time: float = 0.1,
                  progress: bool = True) -> Table:
    """One row per (sparsity, batch): median ms of each form and its speedup × over dense (paired per round)."""
    rows = []
    bar = tqdm(total=len(sparsities) * len(batches), desc=f"latency {name}", disable=not progress, leave=False)
    dense = model.eval()
    for s in sparsities:
        zeros = prune_unstructured(model, s).eval()
        _, slim = structured_match(model, count_params(zeros).nonzero)
        forms = {"dense": dense, "zeros": zeros, "csr": to_sparse_csr(zeros), "structured": slim.eval()}
        for b in batches:
            t = benchkit.interleaved_latency(forms, b, rounds=rounds, min_run_time=min_run_time)
            ratio = {f: benchkit.paired_ratio(t["dense"], t[f]) for f in FORMS[1:]}
            rows.append((name, s, b, t["dense"]["median_ms"], t["dense"]["iqr_ms"], t["zeros"]["median_ms"],
                         t["csr"]["median_ms"], t["csr"]["iqr_ms"], t["structured"]["median_ms"], ratio["zeros"],
                         ratio["csr"], ratio["structured"], count_params(slim).total))
            bar.update(1)
    bar.close()
    rows.sort(key=lambda r: (r[2], r[1]))
    ms = {c: ".3f" for c in COLUMNS if c.endswith("ms") or c.endswith("IQR")}
    return Table(COLUMNS, rows, title=f"Latency of {name}: dense vs zeros vs CSR vs structured",
                 formats={"sparsity": ".0%", **ms, "zeros ×": ".2f", "csr ×": ".2f", "structured ×": ".2f",
                          "structured params": "count"})


def break_even_table(table: Table) -> Table:
    """Per (model, batch): the sparsity from which CSR is at least as fast as dense (None: not up to the max)."""
    rows = []
    for model in dict.fromkeys(table.column("model")):
        for b in dict.fromkeys(table.column("batch")):
            pts = [r for r in table if r["model"] == model and r["batch"] == b]
            s = break_even([r["sparsity"] for r in pts], [r["csr ×"] for r in pts])
            best = max(pts, key=lambda r: r["csr ×"])
            rows.append((model, b, s, best["sparsity"], best["csr ×"]))
    return Table(["model", "batch", "CSR break-even sparsity", "best CSR sparsity", "best CSR ×"], rows,
                 title="CSR break-even sparsity on this machine",
                 formats={"CSR break-even sparsity": ".1%", "best CSR sparsity": ".0%", "best CSR ×": ".2f"},
                 note="break-even: interpolated in log(speedup) between the measured sparsities "
                      "(course.break_even); – = CSR never caught up with dense up to the largest sparsity.")


def wide_markdown(table: Table, model: str) -> str:
    """One grid per model: rows sparsity, columns batch × form, cells 'ms (×)'."""
    rows = [r for r in table if r["model"] == model]
    batches = sorted({r["batch"] for r in rows})
    head = "| sparsity | " + " | ".join(f"b={b} {f}" for b in batches for f in FORMS) + " |"
    lines = [f"**{model}** — ms per batch (× = speedup over dense; structured = same parameter count)", "", head,
             "|---|" + "---|" * (len(batches) * len(FORMS))]
    for s in sorted({r["sparsity"] for r in rows}):
        cells = []
        for b in batches:
            r = next(x for x in rows if x["sparsity"] == s and x["batch"] == b)
            cells.append(f"{r['dense ms']:.3f}")
            cells += [f"{r[f + ' ms']:.3f} ({r[f + ' ×']:.2f}×)" for f in FORMS[1:]]
        lines.append(f"| {s:.0%} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(table: Table):
    """Speedup over dense vs sparsity, one panel per model; color = batch, style = form."""
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(table.column("model")))
    fig, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 3.6), squeeze=False)
    styles = {"zeros": ":", "csr": "-", "structured": "--"}
    for ax, model in zip(axes[0], models):
        for b, color in zip(sorted(set(table.column("batch"))), ("C0", "C1", "C2", "C3")):
            pts = sorted((r for r in table if r["model"] == model and r["batch"] == b), key=lambda r: r["sparsity"])
            x = range(len(pts))
            for form, ls in styles.items():
                ax.plot(x, [r[f"{form} ×"] for r in pts], ls, color=color, marker="o", ms=3, lw=1,
                        label=f"{form}, batch {b}")
            ax.set_xticks(list(x), [f"{r['sparsity']:.0%}" for r in pts])
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("sparsity")
        ax.set_ylabel("speedup over dense (×)")
        ax.set_title(model, fontsize=9)
    axes[0][-1].legend(fontsize=6, bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    return fig


def models(quick: bool) -> dict[str, nn.Module]:
    """The models timed: LeNet-300-100 and the bigger MLP (tiny hidden width in quick mode), seeded init."""
    torch.manual_seed(0)
    hidden = 64 if quick else 2048
    return {"LeNet-300-100": build_model("lenet300"), f"MLP 784-{hidden}-{hidden}-10": BigMLP(hidden=hidden)}


def main(argv: list[str] | None = None) -> int:
    p = benchkit.parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    out = benchkit.setup(args)
    meta = benchkit.start_meta(args)
    kw = dict(sparsities=(0.0, 0.9), batches=(1, 16), rounds=1, min_run_time=0.01) if args.quick else {}
    tables = [latency_table(name, m, **kw) for name, m in models(args.quick).items()]
    table = Table(COLUMNS, [r for t in tables for r in t.rows], title="Latency", formats=tables[0].formats)
    even = break_even_table(table)
    print(table, even, sep="\n\n", flush=True)
    summary = [{"benchmark": "latency", "measure": f"{r['model']}: CSR break-even, batch {r['batch']}",
                "result": ("never up to 99%" if r["CSR break-even sparsity"] is None
                           else f"{r['CSR break-even sparsity']:.1%}") + f" (best {r['best CSR ×']:.2f}× at "
                          f"{r['best CSR sparsity']:.0%})"} for r in even]
    sections = [f"{torch.get_num_threads()} thread(s). Unstructured pruning: local magnitude. ms = median over "
                f"{kw.get('rounds', 7)} interleaved rounds of torch.utils.benchmark medians; × = median of the "
                "per-round dense/form ratios.", benchkit.markdown(even)]
    sections += [wide_markdown(table, name) for name in dict.fromkeys(table.column("model"))]
    benchkit.write_result(out, "latency", "Latency: dense, dense-with-zeros, CSR and structured",
                          sections + ["![speedup vs sparsity](latency.png)"], {"latency": table, "break_even": even},
                          meta=benchkit.finish_meta(meta), figure=plot(table), summary=summary)
    print(f"wrote {out / 'latency.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
