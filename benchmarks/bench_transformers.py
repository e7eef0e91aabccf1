"""Target (f): post-training and head pruning of the shipped ViT on MNIST-10k (notebook 10), with PASS/MISS.

(f1) At 50% unstructured sparsity, no fine-tuning, SparseGPT is within 1 pp of dense; at 70% it stays >= 25 pp above
     magnitude. Magnitude (local, global, per row) and Wanda are reported next to it, at 50-90%, for the blocks'
     Linears (as the papers prune) and for all layers (patch embedding and classifier too).
(f2) At 2:4, SparseGPT beats magnitude.
(f3) Half of the heads removed and <= 1 min of fine-tuning: within 1.5 pp of dense; the measured speedup at batch 256
     against the FLOP ratio (heads, MLP neurons, both).

Calibration: 256 training images (seeds 0, 1, 2: the first batch of a loader shuffled with that seed); accuracy on
the test split. Fine-tuning: AdamW lr 2e-3, weight decay 0.05, 10% warm-up + cosine, 8 epochs over the training
images (chosen on 1,000 held-out training images), 3 data-order seeds.

    .venv/bin/python benchmarks/bench_transformers.py                 # ~8 min on a quiet 2-core CPU
    .venv/bin/python benchmarks/bench_transformers.py --only f1,f2    # a subset
    .venv/bin/python benchmarks/bench_transformers.py --quick         # smoke run
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchkit  # noqa: E402

from course.checkpoints import train_or_load  # noqa: E402
from course.lessons.transformers import compare_post_training  # noqa: E402
from course.metrics import count_flops, evaluate  # noqa: E402
from course.pruning import head_masks, head_scores, prune_structured, remove_heads  # noqa: E402
from course.table import Table  # noqa: E402
from course.training import train  # noqa: E402

PARTS = ("f1", "f2", "f3")
SEEDS = (0, 1, 2)
TARGETS = (0.5, 0.6, 0.7, 0.8, 0.9, "2:4")
DATA_FREE = ("magnitude", "magnitude (global)", "magnitude (row)")
METHODS = DATA_FREE + ("wanda", "sparsegpt")
LAYERS = {"blocks": ("patch_embed", "head"), "all": ()}
WITHIN_PP, GAP_PP, HEADS_PP, FT_BUDGET_S = 1.0, 25.0, 1.5, 60.0
FINETUNE = {"epochs": 8, "lr": 2e-3, "optimizer": "adamw", "weight_decay": 0.05, "schedule": "cosine", "warmup": 0.1}


def calibration(seed: int, quick: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """256 training images (64 in quick mode): the first batch of the training loader shuffled with `seed`."""
    train_loader, _ = benchkit.loaders("mnist", quick=quick, batch_size=64 if quick else 256, seed=seed)
    return next(iter(train_loader))


def post_training(vit, test_loader, args) -> Table:
    """Every (layers, target, method) over the calibration seeds: mean and std of the accuracy, mean seconds."""
    seeds = SEEDS[:1] if args.quick else SEEDS
    targets = (0.5, 0.7, "2:4") if args.quick else TARGETS
    runs: dict[tuple, list] = {}
    for layers, exclude in LAYERS.items():
        for seed in seeds:
            methods = METHODS if seed == seeds[0] else METHODS[len(DATA_FREE):]    # data-free: one run is all
            table = compare_post_training(vit, test_loader, calibration(seed, args.quick), targets, methods=methods,
                                          exclude=exclude, progress=False)
            for r in table:
                runs.setdefault((layers, r["target"], r["method"]), []).append((r["accuracy"], r["seconds"]))
    rows = []
    for (layers, target, method), values in runs.items():
        mean, std = benchkit.mean_std([a for a, _ in values])
        rows.append((layers, target, method, mean, std, len(values), sum(s for _, s in values) / len(values)))
    return Table(["layers", "target", "method", "accuracy", "std", "seeds", "seconds"], rows,
                 title="Post-training pruning of the ViT, no fine-tuning",
                 formats={"accuracy": ".2%", "std": ".2%", "seconds": ".2f"},
                 note="layers: blocks = the Linears inside the transformer blocks; all = also the patch embedding "
                      "and the classifier (the 49-input patch embedding stays dense at 2:4); std over calibration seeds")


def _acc(table: Table, layers: str, target: str, method: str) -> dict:
    return next(r for r in table if (r["layers"], r["target"], r["method"]) == (layers, target, method))


def part_f1(table: Table, dense: float) -> tuple[str, list[dict]]:
    """(f1): SparseGPT at 50% vs dense, and SparseGPT - magnitude at 70% (with the gaps at 80% and 90%)."""
    sg50 = _acc(table, "blocks", "50%", "sparsegpt")
    ok50 = 100 * (dense - sg50["accuracy"]) <= WITHIN_PP
    gap = lambda layers, t: 100 * (_acc(table, layers, t, "sparsegpt")["accuracy"]
                                   - _acc(table, layers, t, "magnitude")["accuracy"])
    targets = list(dict.fromkeys(r["target"] for r in table if r["target"] != "2:4"))
    gaps = {t: gap("blocks", t) for t in targets}
    ok70 = gaps.get("70%", -1.0) >= GAP_PP
    rows = [(layers, t, *(f"{100 * _acc(table, layers, t, m)['accuracy']:.2f}" for m in METHODS), f"{gap(layers, t):+.1f}")
            for layers in LAYERS for t in targets]
    gap_table = Table(["layers", "target", *METHODS, "SparseGPT − magnitude (pp)"], rows, title="(f1) at a glance")
    text = (f"## (f1) SparseGPT within {WITHIN_PP:g} pp of dense at 50%, ≥ {GAP_PP:g} pp above magnitude at 70%\n\n"
            f"Dense: {dense:.2%}. At 50%: SparseGPT {sg50['accuracy']:.2%} ± {sg50['std']:.2%} "
            f"({100 * (sg50['accuracy'] - dense):+.2f} pp): **{'PASS' if ok50 else 'MISS'}**. At 70%: SparseGPT − "
            f"magnitude = {gaps.get('70%', float('nan')):+.1f} pp: **{'PASS' if ok70 else 'MISS'}** (the gap grows "
            f"with sparsity: " + ", ".join(f"{t} {g:+.1f} pp" for t, g in gaps.items()) + "). Magnitude is the "
            f"papers' baseline, layer-wise; the global and per-row variants are next to it. Pruning all layers (patch "
            f"embedding and classifier too) widens the gap at 70% to {gap('all', '70%') if '70%' in targets else 0:+.1f} "
            f"pp." + (f" No method can be further above magnitude than dense is: at 70% magnitude keeps "
                      f"{_acc(table, 'blocks', '70%', 'magnitude')['accuracy']:.2%}, so the gap on this model is at "
                      f"most {100 * (dense - _acc(table, 'blocks', '70%', 'magnitude')['accuracy']):.1f} pp."
                      if '70%' in targets else "") + "\n\n" + benchkit.markdown(gap_table))
    summary = [{"benchmark": "transformers", "measure": "(f1) ViT, SparseGPT at 50%, no fine-tuning",
                "result": f"{'PASS' if ok50 else 'MISS'}: {sg50['accuracy']:.2%} vs dense {dense:.2%}"},
               {"benchmark": "transformers", "measure": "(f1) ViT at 70%: SparseGPT − magnitude ≥ 25 pp",
                "result": f"{'PASS' if ok70 else 'MISS'}: " + ", ".join(f"{t} {g:+.1f} pp" for t, g in gaps.items())}]
    return text, summary


#: (f1) control: ViTs trained with the issue's set-up (12 epochs instead of the 40 chosen on validation; with and
#: without weight decay), cached in data/checkpoints/local/ by train_or_load. Does the 25 pp gap appear on them?
ISSUE_SETUPS = {"12 epochs": {"epochs": 12}, "12 epochs, no weight decay": {"epochs": 12, "weight_decay": 0.0}}


def issue_setup(test_loader, args) -> tuple[str, Table]:
    """(f1) on ViTs trained as the issue's set-up describes: dense accuracy, magnitude/Wanda/SparseGPT at 50%, 70%."""
    rows = []
    for name, recipe in ISSUE_SETUPS.items():
        model, info = train_or_load("vit", "mnist", recipe=recipe, progress=False)
        dense = evaluate(model, test_loader)
        t = compare_post_training(model, test_loader, calibration(0, args.quick), (0.5, 0.7),
                                  methods=("magnitude", "wanda", "sparsegpt"), exclude=LAYERS["blocks"],
                                  progress=False)
        acc = {(r["target"], r["method"]): r["accuracy"] for r in t}
        rows += [(name, info.get("train_seconds"), dense, target, acc[target, "magnitude"], acc[target, "wanda"],
                  acc[target, "sparsegpt"], 100 * (acc[target, "sparsegpt"] - acc[target, "magnitude"]))
                 for target in ("50%", "70%")]
    columns = ["ViT", "train s", "dense", "target", "magnitude", "wanda", "sparsegpt", "SparseGPT − magnitude (pp)"]
    table = Table(columns, rows, title="(f1) control: ViTs trained with the issue's set-up (blocks, calibration seed 0)",
                  formats={"train s": ".0f", "dense": ".2%", "magnitude": ".2%", "wanda": ".2%", "sparsegpt": ".2%",
                           "SparseGPT − magnitude (pp)": "+.1f"})
    text = ("## (f1) control: is the 25 pp gap a property of the set-up?\n\nThe issue calibrated (f1) on a "
            "throw-away ViT that fell to 51.8% under magnitude pruning at 70%. The same architecture trained here "
            "with the issue's 12-epoch budget (AdamW, warm-up + cosine), with and without weight decay:\n\n"
            + benchkit.markdown(table))
    return text, table


def part_f2(table: Table) -> tuple[str, list[dict]]:
    """(f2): SparseGPT vs magnitude at 2:4 (blocks), mean over calibration seeds."""
    sg, mag, wanda = (_acc(table, "blocks", "2:4", m) for m in ("sparsegpt", "magnitude", "wanda"))
    ok = sg["accuracy"] > mag["accuracy"]
    text = (f"## (f2) At 2:4, SparseGPT beats magnitude\n\nSparseGPT {sg['accuracy']:.2%} ± {sg['std']:.2%}, "
            f"magnitude {mag['accuracy']:.2%}, Wanda {wanda['accuracy']:.2%} ± {wanda['std']:.2%}: "
            f"**{'PASS' if ok else 'MISS'}**.")
    return text, [{"benchmark": "transformers", "measure": "(f2) ViT at 2:4: SparseGPT vs magnitude",
                   "result": f"{'PASS' if ok else 'MISS'}: {sg['accuracy']:.2%} vs {mag['accuracy']:.2%}"}]


def part_f3(vit, train_loader, test_loader, dense: float, args) -> tuple[str, dict[str, Table], list[dict]]:
    """(f3): half the heads removed (gate global, L1 local), fine-tuned; a dense control; speedup vs FLOP ratio."""
    seeds = SEEDS[:1] if args.quick else SEEDS
    ft = FINETUNE | ({"epochs": 1} if args.quick else {})
    scores = {"gate": head_scores(vit, "gate", calibration(0, args.quick)), "l1": head_scores(vit, "l1")}
    variants = {"gate, global": remove_heads(vit, head_masks(scores["gate"], 0.5, "global")),
                "l1, local": remove_heads(vit, head_masks(scores["l1"], 0.5, "local")), "dense (control)": vit}
    rows, tuned = [], {}
    for name, model in variants.items():
        for seed in seeds if name != "dense (control)" else seeds[:1]:
            net = copy.deepcopy(model)
            train_loader.generator.manual_seed(seed)
            history = train(net, train_loader, progress=False, seed=seed, **ft)
            acc = evaluate(net.eval(), test_loader)
            tuned.setdefault(name, net)
            rows.append((name, seed, evaluate(model, test_loader), acc, 100 * (acc - dense), history.seconds))
    runs = Table(["heads removed", "seed", "one-shot", "fine-tuned", "Δ pp", "fine-tune s"], rows,
                 title=f"(f3) half of the 16 heads removed, then {ft['epochs']} epochs of fine-tuning",
                 formats={"one-shot": ".2%", "fine-tuned": ".2%", "Δ pp": "+.2f", "fine-tune s": ".0f"})
    primary = [r for r in runs if r["heads removed"] == "gate, global"]
    mean, std = benchkit.mean_std([r["fine-tuned"] for r in primary])
    seconds = max(r["fine-tune s"] for r in primary)
    ok = 100 * (dense - mean) <= HEADS_PP and seconds <= FT_BUDGET_S
    mlp = copy.deepcopy(vit)
    for block in mlp.blocks:
        prune_structured(block.mlp, 0.5, inplace=True)
    both = copy.deepcopy(tuned["gate, global"])
    for block in both.blocks:
        prune_structured(block.mlp, 0.5, inplace=True)
    models = {"dense": vit, "heads 50%": tuned["gate, global"], "MLP 50%": mlp, "heads + MLP 50%": both}
    timing = {"rounds": 1, "min_run_time": 0.01} if args.quick else {"rounds": 9, "min_run_time": 0.3}
    t = benchkit.interleaved_latency(models, 256, **timing)
    flops = {n: count_flops(m).dense for n, m in models.items()}
    speed = Table(["model", "params", "FLOPs / image", "FLOP ratio", "median ms", "IQR ms", "speedup ×",
                   "speedup / FLOP ratio"],
                  [(n, sum(p.numel() for p in m.parameters()), flops[n], flops["dense"] / flops[n], t[n]["median_ms"],
                    t[n]["iqr_ms"], benchkit.paired_ratio(t["dense"], t[n]),
                    benchkit.paired_ratio(t["dense"], t[n]) / (flops["dense"] / flops[n])) for n, m in models.items()],
                  title="(f3) batch 256: measured speedup against the FLOP ratio",
                  formats={"params": "count", "FLOPs / image": "count", "FLOP ratio": ".2f", "median ms": ".2f",
                           "IQR ms": ".2f", "speedup ×": ".2f", "speedup / FLOP ratio": ".2f"},
                  note=f"course timer, {timing['rounds']} interleaved rounds (ABBA), {torch.get_num_threads()} "
                       f"thread(s); speedup = median of per-round dense / model ratios")
    heads = next(r for r in speed if r["model"] == "heads 50%")
    text = (f"## (f3) Half the heads removed, ≤ {FT_BUDGET_S:.0f} s of fine-tuning: within {HEADS_PP:g} pp of dense\n\n"
            f"Judged on the gate importance of Michel et al. with the global scope: {mean:.2%} ± {std:.2%} over "
            f"{len(primary)} fine-tuning seeds against dense {dense:.2%} ({100 * (mean - dense):+.2f} pp), longest "
            f"fine-tune {seconds:.0f} s: **{'PASS' if ok else 'MISS'}**. The dense model fine-tuned the same way is the "
            f"control (does the fine-tune alone move accuracy?). At batch 256, removing half the heads measured "
            f"{heads['speedup ×']:.2f}× for a FLOP ratio of {heads['FLOP ratio']:.2f}.\n\n"
            + benchkit.markdown(runs) + "\n\n" + benchkit.markdown(speed))
    summary = [{"benchmark": "transformers", "measure": "(f3) ViT, half the heads removed + ≤ 1 min fine-tune",
                "result": f"{'PASS' if ok else 'MISS'}: {mean:.2%} ± {std:.2%} vs dense {dense:.2%}, "
                          f"{seconds:.0f} s"},
               {"benchmark": "transformers", "measure": "(f3) ViT at batch 256: speedup vs FLOP ratio",
                "result": ", ".join(f"{r['model']} {r['speedup ×']:.2f}× for {r['FLOP ratio']:.2f}×"
                                    for r in speed if r["model"] != "dense")}]
    return text, {"f3_runs": runs, "f3_speed": speed}, summary


def plot(tables: dict[str, Table], dense: float):
    """Accuracy vs target per method (blocks), and speedup vs FLOP ratio."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    if "post" in tables:
        t = tables["post"]
        targets = list(dict.fromkeys(r["target"] for r in t))
        for m in METHODS:
            ys = [100 * _acc(t, "blocks", x, m)["accuracy"] for x in targets]
            axes[0].plot(range(len(targets)), ys, marker="o", ms=3, label=m)
        axes[0].axhline(100 * dense, c="k", ls=":", lw=1)
        axes[0].set(xticks=range(len(targets)), xticklabels=targets, ylabel="test accuracy (%)",
                    title="(f1, f2) blocks pruned, no fine-tuning")
        axes[0].legend(fontsize=7)
    if "f3_speed" in tables:
        for r in tables["f3_speed"]:
            axes[1].scatter(r["FLOP ratio"], r["speedup ×"])
            axes[1].annotate(r["model"], (r["FLOP ratio"], r["speedup ×"]), fontsize=7)
        axes[1].plot([1, 2], [1, 2], c="gray", ls=":")
        axes[1].set(xlabel="FLOP ratio", ylabel="measured speedup ×", title="(f3) batch 256")
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    p = benchkit.parser(__doc__.splitlines()[0])
    p.add_argument("--only", default="f1,f2,f3", help="comma-separated subset of f1,f2,f3")
    args = p.parse_args(argv)
    parts = benchkit.only(p, args.only, PARTS)
    out = benchkit.setup(args)
    meta = benchkit.start_meta(args)
    train_loader, test_loader = benchkit.loaders("mnist", quick=args.quick)
    vit, info = benchkit.baseline("vit", "mnist", wait=args.wait, quick_loader=train_loader if args.quick else None)
    dense = evaluate(vit, test_loader)
    sections, tables, summary = [], {}, []
    if {"f1", "f2"} & set(parts):
        tables["post"] = post_training(vit, test_loader, args)
        print(tables["post"], flush=True)
        for part, fn in (("f1", lambda: part_f1(tables["post"], dense)), ("f2", lambda: part_f2(tables["post"]))):
            if part in parts:
                text, rows = fn()
                sections.append(text)
                summary += rows
        if "f1" in parts and not args.quick:
            text, tables["f1_issue_setup"] = issue_setup(test_loader, args)
            print(tables["f1_issue_setup"], flush=True)
            sections.append(text)
        sections.append("### All runs\n\n" + benchkit.markdown(tables["post"]))
    if "f3" in parts:
        text, t, rows = part_f3(vit, train_loader, test_loader, dense, args)
        print(*t.values(), sep="\n", flush=True)
        sections.append(text)
        tables |= t
        summary += rows
    head = (f"The shipped ViT ({info.get('source')}; trained in {info.get('train_seconds')} s, test accuracy "
            f"{dense:.2%}), {benchkit.dataset_label('mnist')}.")
    overview = Table(["measure", "result"], [(r["measure"], r["result"]) for r in summary], title="Target (f)")
    benchkit.write_result(out, "transformers", "Target (f): pruning a transformer",
                          [head, benchkit.markdown(overview), *sections, "![transformers](transformers.png)"], tables,
                          meta=benchkit.finish_meta(meta | {"parts": parts}), summary=summary,
                          figure=plot(tables, dense))
    print(overview, f"wrote {out / 'transformers.md'}", sep="\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
