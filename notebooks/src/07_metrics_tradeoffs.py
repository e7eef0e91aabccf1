# %% [markdown]
# # 07 · Success metrics and the trade-off
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/pruning-course/pruning-course/blob/main/notebooks/07_metrics_tradeoffs.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/pruning-course/pruning-course/HEAD?labpath=notebooks%2F07_metrics_tradeoffs.ipynb)
#
# "We pruned 90% of the weights" is not a result. A pruned model is judged by four numbers: its **accuracy**, its
# **size in bytes** (the file you ship), its **FLOPs** (the arithmetic it needs) and its **latency** (the time it
# takes, measured). Each alone misleads. This notebook measures all four for many pruned versions of LeNet-5, draws
# the trade-off as Pareto fronts, picks the best model for a given budget automatically, and exports it.
#
# **What you will learn**
# - the four numbers of a pruned model, and why nonzeros are not bytes and FLOPs are not latency;
# - how to read a Pareto front of accuracy against size or latency, for unstructured and structured pruning;
# - how to pick the best configuration under a budget (size, latency, accuracy), and why the answer is usually the
#   *lightest* pruning that fits;
# - how to export the chosen model in its smallest honest form and check that it still works after reloading.

# %%
# On Colab: fetch and install the course (this cell does nothing anywhere else)
# NBVAL_IGNORE_OUTPUT
import importlib.util, subprocess, sys
if "google.colab" in sys.modules and importlib.util.find_spec("course") is None:
    repo = "/content/pruning-course"
    subprocess.run(["git", "clone", "-q", "--depth=1", "https://github.com/pruning-course/pruning-course", repo], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", repo], check=True)
    sys.path.insert(0, repo)  # the running kernel does not see a fresh editable install

# %%
import tempfile, torch, matplotlib.pyplot as plt; from pathlib import Path; from IPython.display import Markdown
from course import (build_model, count_flops, count_params, evaluate, fast, load_pruned, make_loaders, save_pruned,
                    setup, size_bytes, size_table, train_or_load)
from course import Config, build, latencies, pareto_front, pick, points_table, prune_config, stored_size, sweep
setup(seed=0, threads=1)    # one thread: steady latencies on a busy machine, and the same numbers in a workshop

# %% [markdown]
# The data: MNIST. `.info` says which copy this machine has (the full set after `make data`, otherwise the real
# 10,000-image subset that ships with the course). Pruned models are fine-tuned on at most 8,000 training images.

# %%
train_loader, test_loader = make_loaders("mnist", batch_size=128, train_size=fast(8000, 2000))
print(train_loader.dataset.info)
print(f"train images: {len(train_loader.dataset):,}, test images: {len(test_loader.dataset):,}")

# %%
dense, info = train_or_load("lenet5", "mnist")
print(f"dense LeNet-5 ({info['source']} checkpoint): test accuracy {evaluate(dense, test_loader):.2%}")

# %% [markdown]
# ## 1 · The four numbers
#
# Three models, each pruned from the **same kept original** and fine-tuned briefly (`build`):
# the dense LeNet-5, an **unstructured** model with 90% of the weights of every layer zeroed (magnitude), and a
# **structured** model with 50% of the units removed (L1 norm per filter or neuron, so the layers really shrink).
# Latency is the median time of one forward pass of a batch, with `torch.utils.benchmark`, taken as the best of a
# few rounds in which the models take turns (`latencies`), on one thread of this machine.

# %%
FT = dict(epochs=fast(2, 1), lr=0.01)                            # brief fine-tuning, the same for every pruned model
BATCH, TIMING = 256, dict(repeats=fast(10, 2), min_run_time=fast(0.05, 0.02))     # many short turns
configs1 = {"dense": Config("dense"), "unstructured 90%": Config("unstructured", 0.9),
            "structured 50%": Config("structured", 0.5)}
models1 = {name: build(dense, c, train_loader, **FT) for name, c in configs1.items()}
lat1 = latencies(models1, BATCH, **TIMING)
four = {}
for name, m in models1.items():
    params, flops = count_params(m), count_flops(m)
    four[name] = dict(accuracy=evaluate(m, test_loader), params=params.total, nonzero=params.nonzero,
                      dense_file=size_bytes(m, "dense"), smallest=stored_size(m)[1],
                      flops=flops.dense, eff_flops=flops.effective, latency=lat1[name])
print(f"{'':>17} {'accuracy':>9} {'params':>8} {'nonzero':>8} {'dense file':>11} {'smallest':>9} {'FLOPs':>9} "
      f"{'eff. FLOPs':>10} {f'ms/{BATCH}':>8}")
for name, r in four.items():
    print(f"{name:>17} {r['accuracy']:>9.2%} {r['params']:>8,} {r['nonzero']:>8,} {r['dense_file']:>11,} "
          f"{r['smallest']:>9,} {r['flops']:>9,} {r['eff_flops']:>10,.0f} {r['latency']:>8.2f}")

# %% [markdown]
# **Nonzeros are not bytes.** The unstructured model has a tenth of the nonzero weights, but saved the usual way
# (`torch.save(model.state_dict())`, the "dense" form) it stores every zero:

# %%
# NBVAL_CHECK_OUTPUT
u90 = models1["unstructured 90%"]
print("dense file of the 90%-sparse model is exactly as big as the original's:",
      size_bytes(u90, "dense") == size_bytes(dense, "dense"))

# %% [markdown]
# Only a sparse storage form turns the zeros into savings. `size_table` measures every form (the bytes are those of
# the real file `save_pruned` writes). `torch_prune` is what `torch.nn.utils.prune` leaves behind before
# `prune.remove`: the weights *and* a float mask.

# %%
size_table(u90)

# %%
u, s, d = four["unstructured 90%"], four["structured 50%"], four["dense"]
accuracies = ", ".join(f"{name} {r['accuracy']:.2%}" for name, r in four.items())
Markdown(f"- **Nonzeros vs bytes**: the unstructured model keeps {u['nonzero'] / d['nonzero']:.1%} of the nonzero "
         f"parameters, yet its dense file is {u['dense_file']:,} bytes, the same as the original's "
         f"{d['dense_file']:,}; its smallest lossless form is {u['smallest']:,} bytes "
         f"({d['dense_file'] / u['smallest']:.1f}× "
         f"smaller), not {d['nonzero'] / u['nonzero']:.0f}× (a sparse form also stores where each kept weight is).\n"
         f"- **FLOPs vs latency, unstructured**: effective FLOPs fall {d['eff_flops'] / u['eff_flops']:.1f}×, but the "
         f"latency goes from {d['latency']:.2f} to {u['latency']:.2f} ms per batch of {BATCH} "
         f"({d['latency'] / u['latency']:.2f}×): dense kernels multiply the zeros too, so the time does not follow "
         "the FLOPs.\n"
         f"- **FLOPs vs latency, structured**: removing half of the units cuts the FLOPs {d['flops'] / s['flops']:.1f}× "
         f"and the latency {d['latency'] / s['latency']:.2f}× on this machine: real, smaller dense layers run faster, "
         "though less than the FLOPs promise (pooling, activations, memory traffic and per-layer overheads do not "
         "shrink in proportion).\n"
         f"- **Accuracy alone** ({accuracies}) says nothing "
         "about what each model costs.")

# %% [markdown]
# ## 2 · Pareto fronts
#
# One operating point per configuration: unstructured pruning at several sparsities (global magnitude; stored in
# its smallest lossless form) and structured pruning at several ratios (L1; a smaller dense model), each re-pruned
# from the original, fine-tuned as above, then measured (`sweep`). A point is **dominated** when
# another is at least as good on both axes and better on one; the **Pareto front** is the set of points nothing
# dominates: the only ones worth choosing from.

# %%
SPARSITIES = fast([0.5, 0.7, 0.8, 0.9, 0.95, 0.98], [0.5, 0.9, 0.98])
RATIOS = fast([0.25, 0.375, 0.5, 0.625, 0.75, 0.875], [0.25, 0.5, 0.75])
configs = ([Config("dense")] + [Config("unstructured", sp, "global") for sp in SPARSITIES]
           + [Config("structured", r) for r in RATIOS])
points = sweep(dense, configs, train_loader, test_loader, **FT, batch_size=BATCH, **TIMING)
front_size, front_latency = pareto_front(points), pareto_front(points, x="latency_ms")
points_table(points, front=front_size, title="Operating points (★ = on the accuracy-size front)")

# %%
style = {"dense": dict(marker="*", s=160, color="k"), "unstructured": dict(marker="o", s=40, color="tab:blue"),
         "structured": dict(marker="s", s=40, color="tab:orange")}
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, key, front, xlabel in ((axes[0], "size_bytes", front_size, "size of the smallest lossless file (KB, log)"),
                               (axes[1], "latency_ms", front_latency, f"latency (ms per batch of {BATCH}, this machine)")):
    scale = 1e-3 if key == "size_bytes" else 1.0
    for kind, st in style.items():
        pts = [p for p in points if p["kind"] == kind]
        ax.scatter([scale * p[key] for p in pts], [100 * p["accuracy"] for p in pts], label=kind, zorder=3, **st)
    ax.step([scale * p[key] for p in front], [100 * p["accuracy"] for p in front], where="post", color="tab:green",
            lw=2, alpha=0.6, label="Pareto front", zorder=2)
    ax.set(xlabel=xlabel, ylabel="test accuracy (%)", xscale="log" if key == "size_bytes" else "linear")
    ax.set_ylim(max(0, 100 * min(p["accuracy"] for p in points) - 5), 100)
axes[0].set_title("Accuracy against size"); axes[1].set_title("Accuracy against latency")
axes[0].legend(loc="lower right"); plt.tight_layout(); plt.show()

# %%
fs = {k: sum(p["kind"] == k for p in front_size) for k in ("unstructured", "structured")}
fl = {k: sum(p["kind"] == k for p in front_latency) for k in ("unstructured", "structured")}
unstructured = [p for p in points if p["kind"] == "unstructured"]
sparsest = max(unstructured, key=lambda p: p["amount"])
dense_nz, dense_fl = points[0]["nonzero"], points[0]["flops"]                    # points[0] is the dense model
Markdown(f"- **Size**: the accuracy-size front holds {fs['unstructured']} unstructured and {fs['structured']} "
         f"structured points ({', '.join(p['name'] for p in front_size)}).\n"
         f"- **Latency**: the accuracy-latency front holds {fl['unstructured']} unstructured and {fl['structured']} "
         f"structured points ({', '.join(p['name'] for p in front_latency)}).\n"
         + ("- Unstructured pruning holds more of the size front: it keeps accuracy to higher compression.\n"
            if fs["unstructured"] > fs["structured"] else "")
         + ("- Structured pruning holds more of the latency front: only it makes the dense computation smaller, "
            "and the dense kernels used here do not skip zeros.\n" if fl["structured"] > fl["unstructured"] else "")
         + f"- Compare the nonzero and eff. FLOPs columns: {sparsest['name']} keeps {sparsest['nonzero'] / dense_nz:.1%} "
           f"of the nonzero parameters but {sparsest['flops'] / dense_fl:.1%} of the FLOPs, because the global "
           "threshold keeps more of the convolution weights, and those are reused at every pixel.\n"
         + f"- The unstructured models run the same dense kernels as the dense model; their latencies "
           f"({min(p['latency_ms'] for p in unstructured):.2f} to {max(p['latency_ms'] for p in unstructured):.2f} ms, "
           f"dense {points[0]['latency_ms']:.2f} ms) show how much timings wander on this machine while other "
           "programs run. Differences of that size between two points mean nothing.")

# %% [markdown]
# ## 3 · Lighter or heavier pruning? Pick under a budget
#
# A deployment sets a **budget**: a largest file, a slowest latency, a lowest acceptable accuracy. The best
# configuration is the most accurate point that meets every limit (`pick`; a limit is met at or
# within it). Pruning *more* than the budget needs usually only costs accuracy, so the answer tends to be the
# lightest pruning that fits, of whichever kind. Budgets on latency are stated relative to the dense model, because
# latency depends on the machine.

# %%
dense_point = next(p for p in points if p["kind"] == "dense")
budgets = {"file ≤ 40 KB": dict(max_size=40_000),
           "≤ 70% of dense latency, ≥ 95% accuracy": dict(max_latency=0.7 * dense_point["latency_ms"], min_accuracy=0.95),
           "≤ 50% of dense latency": dict(max_latency=0.5 * dense_point["latency_ms"]),
           "file ≤ 5 KB, ≥ 97% accuracy": dict(max_size=5_000, min_accuracy=0.97)}
chosen = {label: pick(points, **limits) for label, limits in budgets.items()}
for label, p in chosen.items():
    print(f"{label:>42}: " + ("nothing fits" if p is None else
          f"{p['name']:<24} {p['accuracy']:.2%}  {p['size_bytes']:>8,} B  {p['latency_ms']:.2f} ms"))

# %%
lines = []
for label, p in chosen.items():
    if p is None:
        lines.append(f"- **{label}**: nothing fits; relax a limit or change the model, not the measurements.")
        continue
    heavier = [q for q in points if q["kind"] == p["kind"] and q["amount"] > p["amount"]
               and pick([q], **budgets[label]) is not None]                # heavier pruning that also fits
    lines.append(f"- **{label}**: {p['name']} ({p['accuracy']:.2%}); " + (
        "heavier pruning of the same kind also fits, and only costs accuracy: "
        + ", ".join(f"{q['name']} {q['accuracy']:.2%}" for q in heavier) if heavier else "nothing heavier of its kind fits"))
Markdown("\n".join(lines))

# %% [markdown]
# The sweep's models are gone; we keep only their measurements. The chosen model is **re-pruned from the kept
# original** with the same configuration and the same (seeded) fine-tuning, and measured again: the same
# configuration gives the same model.

# %%
first = next(label for label, p in chosen.items() if p is not None)
best = chosen[first]
final = build(dense, Config.of(best), train_loader, **FT)
final_acc = evaluate(final, test_loader)
print(f"budget '{first}': {best['name']}, accuracy in the sweep {best['accuracy']:.2%}, re-pruned {final_acc:.2%}")
print("same accuracy as in the sweep:", final_acc == best["accuracy"])

# %% [markdown]
# ## 4 · Export the chosen model
#
# Save it in its smallest lossless form (`save_pruned` writes the same bytes `size_bytes` counted), load it back
# into a fresh model of the same architecture (`load_pruned`; the template's random weights are all replaced),
# and check that nothing changed.

# %%
folder = Path(tempfile.mkdtemp())
path = save_pruned(final, folder / "lenet5_pruned.pt", best["format"])
dense_path = folder / "lenet5_dense.pt"
torch.save(dense.state_dict(), dense_path)
template = prune_config(build_model("lenet5", dense.in_shape), Config.of(best))     # same shapes, random weights
reloaded = load_pruned(path, template)
reloaded_acc = evaluate(reloaded, test_loader)
print(f"saved as {best['format']}: {path.stat().st_size:,} bytes; dense state_dict: "
      f"{dense_path.stat().st_size:,} bytes ({dense_path.stat().st_size / path.stat().st_size:.1f}× larger)")
print(f"accuracy before saving {final_acc:.2%}, after reloading {reloaded_acc:.2%}")

# %%
# NBVAL_CHECK_OUTPUT
print("accuracy unchanged after save and reload:", reloaded_acc == final_acc)
print("file size equals the measured size:", path.stat().st_size == best["size_bytes"])

# %% [markdown]
# ## Summary

# %%
Markdown(f"Measured on MNIST with LeNet-5 (dense {dense_point['accuracy']:.2%}, {dense_point['size_bytes']:,} bytes, "
         f"{dense_point['latency_ms']:.2f} ms per batch of {BATCH} on one thread of this machine):\n\n"
         f"1. **Nonzeros are not bytes**: 90% unstructured sparsity leaves the dense file at {u['dense_file']:,} bytes; "
         f"only a sparse form shrinks it ({u['smallest']:,} bytes).\n"
         f"2. **FLOPs are not latency**: at 90% unstructured sparsity the effective FLOPs fall "
         f"{d['eff_flops'] / u['eff_flops']:.1f}× and the latency changes {d['latency'] / u['latency']:.2f}×; removing "
         f"50% of the units cuts the FLOPs {d['flops'] / s['flops']:.1f}× and the latency {d['latency'] / s['latency']:.2f}×.\n"
         f"3. **Fronts**: {fs['unstructured']} unstructured and {fs['structured']} structured points on the "
         f"accuracy-size front, {fl['unstructured']} and {fl['structured']} on the accuracy-latency front, out of "
         f"{len(points)} operating points.\n"
         f"4. **Budget '{first}'**: {best['name']} ({best['accuracy']:.2%}), re-pruned from the original, saved in "
         f"{path.stat().st_size:,} bytes and reloaded with the same accuracy.")

# %% [markdown]
# ## Exercises
#
# **Exercise 07.1: pick under a budget.** Write `pick_under_budget(configs, max_size=None, max_latency=None,
# min_accuracy=None)`. `configs` is a list of dicts with "name", "accuracy", "size_bytes" and "latency_ms". Return
# the **name** of the most accurate config that meets every limit that is not None (size ≤ max_size, latency ≤
# max_latency, accuracy ≥ min_accuracy), or None when no config fits. Do not change `configs`.
#
# <details><summary>Hint</summary>
#
# First keep the configs that fit: `max_size is None or c["size_bytes"] <= max_size`, and the same for the other
# two limits (note ≥ for accuracy). Then `max(fitting, key=lambda c: c["accuracy"])["name"]`, if anything fits.
# </details>

# %%
# Exercise 07.1: pick under a budget
def pick_under_budget(configs, max_size=None, max_latency=None, min_accuracy=None):
    """Name of the most accurate config within every given limit (inclusive), or None if none fits."""
    ### BEGIN SOLUTION
    fitting = [c for c in configs
               if (max_size is None or c["size_bytes"] <= max_size)
               and (max_latency is None or c["latency_ms"] <= max_latency)
               and (min_accuracy is None or c["accuracy"] >= min_accuracy)]
    return max(fitting, key=lambda c: c["accuracy"])["name"] if fitting else None
    ### END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
from course.checks import check_pick_under_budget
check_pick_under_budget(pick_under_budget)

# %% [markdown]
# **Exercise 07.2: the Pareto front.** Write `pareto_names(points)`: `points` is a list of dicts with "name",
# "accuracy" and "size_bytes". Return the names of the points that no other point dominates, smallest size first.
# A point q dominates p when q is no larger (`q["size_bytes"] <= p["size_bytes"]`), at least as accurate, and
# strictly better in at least one of the two.
#
# <details><summary>Hint</summary>
#
# For each p, look for a q with `q["size_bytes"] <= p["size_bytes"] and q["accuracy"] >= p["accuracy"] and
# (q["size_bytes"] < p["size_bytes"] or q["accuracy"] > p["accuracy"])`. Keep p if there is none; then sort the
# survivors by size. Two identical points do not dominate each other.
# </details>

# %%
# Exercise 07.2: the Pareto front
def pareto_names(points):
    """Names of the non-dominated points (smaller size and higher accuracy are better), sorted by size."""
    ### BEGIN SOLUTION
    front = [p for p in points
             if not any(q["size_bytes"] <= p["size_bytes"] and q["accuracy"] >= p["accuracy"]
                        and (q["size_bytes"] < p["size_bytes"] or q["accuracy"] > p["accuracy"]) for q in points)]
    return [p["name"] for p in sorted(front, key=lambda p: p["size_bytes"])]
    ### END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
from course.checks import check_pareto_front
check_pareto_front(pareto_names)

# %% [markdown]
# ## References
#
# - Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. *Gradient-based learning applied to document recognition.* Proc. IEEE, 1998.
# - S. Han, H. Mao, W. J. Dally. *Deep Compression: compressing deep neural networks with pruning, trained quantization and Huffman coding.* ICLR 2016.
# - H. Li, A. Kadav, I. Durdanovic, H. Samet, H. P. Graf. *Pruning filters for efficient ConvNets.* ICLR 2017.
# - V. Sze, Y.-H. Chen, T.-J. Yang, J. Emer. *Efficient processing of deep neural networks: a tutorial and survey.* Proc. IEEE, 2017.
# - M. Zhu, S. Gupta. *To prune, or not to prune: exploring the efficacy of pruning for model compression.* arXiv:1710.01878, 2017.
# - D. Blalock, J. J. Gonzalez Ortiz, J. Frankle, J. Guttag. *What is the state of neural network pruning?* MLSys 2020.
# - T. Hoefler, D. Alistarh, T. Ben-Nun, N. Dryden, A. Peste. *Sparsity in deep learning: pruning and growth for efficient inference and training in neural networks.* JMLR, 2021.
