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
# - how to pick the best configuration under a budget (size, latency, accuracy) on a validation split, and why the
#   answer is usually the *lightest* pruning that fits;
# - to tell a real speedup from timing noise: time the model against a copy of itself, and state the spread;
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
import copy, tempfile, torch, matplotlib.pyplot as plt; from pathlib import Path; from IPython.display import Markdown, display
from course import (build_model, claim, count_flops, count_params, evaluate, fast, load_pruned, make_loaders,
                    save_pruned, setup, show, size_bytes, size_table, train_or_load)
from course import Config, build, pareto_front, pick, points_table, prune_config, speedups, stored_size, sweep
setup(seed=0, threads=1)    # one thread: steady latencies on a busy machine, and the same numbers in a workshop

# %% [markdown]
# The data: MNIST. `.info` says which copy this machine has (the full set after `make data`, otherwise the real
# 10,000-image subset that ships with the course). `val_size=1000` carves a **validation split** out of the training
# images: pruned models are fine-tuned on the rest, every choice below (the budget picks of §3) is made on
# validation accuracy, and the test set is read only for the dense reference and for the final, chosen model.
# One caveat: the shipped dense baseline was trained on all training images, validation ones included, so
# validation accuracies read high (the dense model's most of all); we use them only to compare pruned models.

# %%
train_loader, val_loader, test_loader = make_loaders("mnist", batch_size=128, val_size=1000,
                                                     train_size=fast(None, 2000))
print(train_loader.dataset.info)
print(f"train {len(train_loader.dataset):,}, validation {len(val_loader.dataset):,} (from the training images), "
      f"test {len(test_loader.dataset):,} images")

# %%
dense, info = train_or_load("lenet5", "mnist")
dense_test = evaluate(dense, test_loader)
print(f"dense LeNet-5 ({info['source']} checkpoint): test accuracy {dense_test:.2%}, "
      f"validation {evaluate(dense, val_loader):.2%} (it has seen these images)")

# %% [markdown]
# ## 1 · The four numbers
#
# Three models, each pruned from the **same kept original** and fine-tuned briefly (`build`):
# the dense LeNet-5, an **unstructured** model with 90% of the weights of every layer zeroed (magnitude), and a
# **structured** model with 50% of the units removed (L1 norm per filter or neuron, so the layers really shrink).
#
# Latency is the median time of one forward pass of a batch, with `torch.utils.benchmark`, on one thread of this
# machine. A single ratio of two timings means little on a machine that runs other programs, so `speedups` times
# the models in turn, in many short rounds (in ABBA order, each round on fresh copies), and computes the speedup
# over dense **within each round**. We report its median and its interquartile range (IQR: the middle half of the
# rounds). One more model is the **control**: a second copy of the dense model. Its "speedup" should be 1; how far
# its IQR strays from 1 is the noise of this measurement, and a speedup inside that band is no speedup.

# %%
FT = dict(epochs=fast(2, 1), lr=0.01)                            # brief fine-tuning, the same for every pruned model
BATCH, TIMING = 256, dict(repeats=fast(15, 2), min_run_time=fast(0.05, 0.02))     # many short turns
CONTROL = "dense, 2nd copy"
configs1 = {"dense": Config("dense"), "unstructured 90%": Config("unstructured", 0.9),
            "structured 50%": Config("structured", 0.5)}
models1 = {name: build(dense, c, train_loader, **FT) for name, c in configs1.items()}
spread = speedups(models1 | {CONTROL: copy.deepcopy(dense)}, "dense", BATCH, **TIMING, progress=True)
four = {}
for name, m in models1.items():
    params, flops = count_params(m), count_flops(m)
    four[name] = dict(accuracy=evaluate(m, val_loader), params=params.total, nonzero=params.nonzero,
                      dense_file=size_bytes(m, "dense"), smallest=stored_size(m)[1],
                      flops=flops.dense, eff_flops=flops.effective, latency=spread[name]["ms"])
print(f"{'':>17} {'val acc':>8} {'params':>7} {'nonzero':>7} {'dense file':>10} {'smallest':>8} {'FLOPs':>8} "
      f"{'eff. FLOPs':>10} {f'ms/{BATCH}':>7}  speedup over dense, median [IQR] of {spread['dense']['rounds']} rounds")
for name in [*models1, CONTROL]:
    r, sp = four.get(name), spread[name]
    cols = (f"{r['accuracy']:>8.2%} {r['params']:>7,} {r['nonzero']:>7,} {r['dense_file']:>10,} {r['smallest']:>8,} "
            f"{r['flops']:>8,} {r['eff_flops']:>10,.0f}" if r else f"{'(the control: the dense model again)':>64}")
    print(f"{name:>17} {cols} {sp['ms']:>7.2f}  {sp['median']:.2f}× [{sp['q25']:.2f}–{sp['q75']:.2f}]")

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
# `prune.remove`: the original weights (`weight_orig`, which is why the form needs `original=`) *and* a float mask.

# %%
size_table(u90, original=dense)

# %% [markdown]
# What the committed run measured (the cell below prints the numbers and checks each statement against them):
#
# - **Nonzeros are not bytes.** The unstructured model keeps a tenth of the nonzero parameters, yet its dense file
#   is exactly as big as the original's, and its smallest lossless form is smaller by less than the nonzero count
#   suggests: a sparse form also stores *where* each kept weight is.
# - **FLOPs are not latency, unstructured.** Its effective FLOPs fall tenfold, but its speedup over dense lies within
#   the noise band of the control: dense kernels multiply the zeros too. A single pair of timings can make it look
#   a tenth faster or slower; the spread over rounds shows that such a gap is not a speedup.
# - **FLOPs are not latency, structured.** Removing half of the units cuts the FLOPs about threefold and gives a
#   real speedup, far outside the noise, yet smaller than the FLOP ratio: pooling, activations, memory traffic and
#   per-layer overheads do not shrink in proportion.
# - **Accuracy alone** says nothing about what each model costs.

# %%
u, s, d, c = four["unstructured 90%"], four["structured 50%"], four["dense"], spread[CONTROL]
su, ss = spread["unstructured 90%"], spread["structured 50%"]
noise = max(abs(c["q25"] - 1), abs(c["q75"] - 1))          # how far the control's IQR strays from 1
Markdown(f"- **Nonzeros vs bytes**: the unstructured model keeps {u['nonzero'] / d['nonzero']:.1%} of the nonzero "
         f"parameters; its dense file is {u['dense_file']:,} bytes (the original's: {d['dense_file']:,}); its "
         f"smallest lossless form is {u['smallest']:,} bytes ({d['dense_file'] / u['smallest']:.1f}× smaller, against "
         f"{d['nonzero'] / u['nonzero']:.1f}× fewer nonzeros).\n"
         f"- **Unstructured**: effective FLOPs {d['eff_flops'] / u['eff_flops']:.1f}× fewer; speedup over dense "
         f"{su['median']:.2f}× (IQR {su['q25']:.2f}–{su['q75']:.2f}× over {su['rounds']} rounds); the control, dense "
         f"against itself: {c['median']:.2f}× (IQR {c['q25']:.2f}–{c['q75']:.2f}×).\n"
         f"- **Structured**: FLOPs {d['flops'] / s['flops']:.1f}× fewer; speedup {ss['median']:.2f}× (IQR "
         f"{ss['q25']:.2f}–{ss['q75']:.2f}×).\n"
         f"- **Validation accuracy**: " + ", ".join(f"{name} {r['accuracy']:.2%}" for name, r in four.items()) + ".")

# %%
claim(u["dense_file"] == d["dense_file"] and d["dense_file"] / u["smallest"] < d["nonzero"] / u["nonzero"],
      "the 90%-sparse model's dense file is as big as the original's, and its smallest form shrinks less than "
      "its nonzero count")
claim(abs(su["median"] - 1) <= max(0.1, 2 * noise) and su["median"] < 0.5 * d["eff_flops"] / u["eff_flops"],
      "the unstructured model's speedup is within the noise (within 10% of 1×, or twice the control's spread), "
      "nowhere near its FLOP ratio")
claim(ss["q25"] > max(c["q75"], 1 + noise) and ss["median"] < d["flops"] / s["flops"],
      "the structured model's speedup is real (its IQR lies above the control's) but below its FLOP ratio")

# %% [markdown]
# ## 2 · Pareto fronts
#
# One operating point per configuration: unstructured pruning at several sparsities (global magnitude; stored in
# its smallest lossless form) and structured pruning at several ratios (L1; a smaller dense model), each re-pruned
# from the original, fine-tuned as above, then measured (`sweep`). The accuracy of a point is its **validation**
# accuracy: §3 chooses among these points, so the test set stays out of it. A point is **dominated** when
# another is at least as good on both axes and better on one; the **Pareto front** is the set of points nothing
# dominates: the only ones worth choosing from. Write it yourself before the library does it for you.
#
# **Exercise 07.1: the Pareto front.** Write `pareto_names(points)`: `points` is a list of dicts with "name",
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
# Exercise 07.1: the Pareto front
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
# Once it passes, compare with the library's version, which takes any two axes (`x` minimised, `y` maximised):
# `show(pareto_front)`.

# %%
show(pareto_front)

# %% [markdown]
# The sweep:

# %%
SPARSITIES = fast([0.5, 0.7, 0.8, 0.9, 0.95, 0.98], [0.5, 0.9, 0.98])
RATIOS = fast([0.25, 0.375, 0.5, 0.625, 0.75, 0.875], [0.25, 0.5, 0.75])
configs = ([Config("dense")] + [Config("unstructured", sp, "global") for sp in SPARSITIES]
           + [Config("structured", r) for r in RATIOS])
points = sweep(dense, configs, train_loader, val_loader, **FT, batch_size=BATCH, **TIMING)   # accuracy: validation
front_size, front_latency = pareto_front(points), pareto_front(points, x="latency_ms")
points_table(points, front=front_size, title="Operating points (★ = on the accuracy-size front; validation accuracy)")

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
    ax.set(xlabel=xlabel, ylabel="validation accuracy (%)", xscale="log" if key == "size_bytes" else "linear")
    ax.set_ylim(max(0, 100 * min(p["accuracy"] for p in points) - 5), 100)
axes[0].set_title("Accuracy against size"); axes[1].set_title("Accuracy against latency")
axes[0].legend(loc="lower right"); plt.tight_layout(); plt.show()

# %% [markdown]
# What the committed run measured:
#
# - **Size**: unstructured points hold most of the accuracy-size front: unstructured pruning keeps its accuracy to
#   higher compression.
# - **Latency**: structured points hold most of the accuracy-latency front: only structured pruning makes the dense
#   computation smaller, and the dense kernels used here do not skip zeros.
# - **Nonzeros vs FLOPs**: the sparsest unstructured point keeps a far larger share of the FLOPs than of the
#   nonzero weights, because the global threshold keeps more of the convolution weights, and those are reused at
#   every pixel.
# - **Noise**: the unstructured models run the same dense kernels as the dense model, so their latencies differ
#   from dense only by the wander of timings on a busy machine (§1's control); differences of that size between two
#   points mean nothing.

# %%
fs = {k: sum(p["kind"] == k for p in front_size) for k in ("unstructured", "structured")}
fl = {k: sum(p["kind"] == k for p in front_latency) for k in ("unstructured", "structured")}
unstructured = [p for p in points if p["kind"] == "unstructured"]
sparsest = max(unstructured, key=lambda p: p["amount"])
dense_point = next(p for p in points if p["kind"] == "dense")
dense_nz, dense_fl, dense_ms = dense_point["nonzero"], dense_point["flops"], dense_point["latency_ms"]
wander = max(abs(p["latency_ms"] / dense_ms - 1) for p in unstructured)
print(f"accuracy-size front: {fs['unstructured']} unstructured, {fs['structured']} structured "
      f"({', '.join(p['name'] for p in front_size)})")
print(f"accuracy-latency front: {fl['unstructured']} unstructured, {fl['structured']} structured "
      f"({', '.join(p['name'] for p in front_latency)})")
print(f"{sparsest['name']}: {sparsest['nonzero'] / dense_nz:.1%} of the nonzero weights, "
      f"{sparsest['flops'] / dense_fl:.1%} of the FLOPs")
print(f"unstructured latencies {min(p['latency_ms'] for p in unstructured):.2f} to "
      f"{max(p['latency_ms'] for p in unstructured):.2f} ms, dense {dense_ms:.2f} ms (at most {wander:.1%} apart)")
claim(fs["unstructured"] > fs["structured"], "unstructured points hold most of the accuracy-size front")
claim(fl["structured"] > fl["unstructured"], "structured points hold most of the accuracy-latency front")
claim(sparsest["flops"] / dense_fl > 3 * sparsest["nonzero"] / dense_nz,
      "the sparsest unstructured point keeps a far larger share of the FLOPs than of the nonzero weights")
claim(wander < 0.15, "the unstructured models' latencies stay within the wander of timings around dense")

# %% [markdown]
# ## 3 · Lighter or heavier pruning? Pick under a budget
#
# A deployment sets a **budget**: a largest file, a slowest latency, a lowest acceptable accuracy. The best
# configuration is the most accurate point that meets every limit (a limit is met at or within it), with the
# accuracy read on the validation split. Pruning *more* than the budget needs usually only costs accuracy, so the
# answer tends to be the lightest pruning that fits, of whichever kind. Budgets on latency are stated relative to
# the dense model, because latency depends on the machine. First write the rule yourself.
#
# **Exercise 07.2: pick under a budget.** Write `pick_under_budget(configs, max_size=None, max_latency=None,
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
# Exercise 07.2: pick under a budget
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
# Once it passes, compare with the library's `pick`, which also breaks ties (the smaller, then the faster point)
# and returns the whole point: `show(pick)`.

# %%
show(pick)

# %% [markdown]
# Four budgets, each answered from the sweep's validation accuracies:

# %%
budgets = {"file ≤ 40 KB": dict(max_size=40_000),
           "≤ 70% of dense latency, ≥ 95% accuracy": dict(max_latency=0.7 * dense_point["latency_ms"], min_accuracy=0.95),
           "≤ 50% of dense latency": dict(max_latency=0.5 * dense_point["latency_ms"]),
           "file ≤ 5 KB, ≥ 97% accuracy": dict(max_size=5_000, min_accuracy=0.97)}
chosen = {label: pick(points, **limits) for label, limits in budgets.items()}
for label, p in chosen.items():
    print(f"{label:>42}: " + ("nothing fits" if p is None else
          f"{p['name']:<24} val {p['accuracy']:.2%}  {p['size_bytes']:>8,} B  {p['latency_ms']:.2f} ms"))

# %% [markdown]
# What the committed run chose: the file budget is met by unstructured pruning, the lightest sparsity that fits
# (heavier sparsities fit too, and only cost accuracy); the latency budgets are met by structured pruning, again the
# lightest ratio that fits; and nothing reaches a 5 KB file at 97% accuracy: relax a limit or change the model, not
# the measurements.

# %%
lines, lightest = [], []
for label, p in chosen.items():
    if p is None:
        lines.append(f"- **{label}**: nothing fits.")
        continue
    fitting = [q for q in points if q["kind"] == p["kind"] and pick([q], **budgets[label]) is not None]
    heavier = [q for q in fitting if q["amount"] > p["amount"]]
    lightest.append(p["amount"] == min(q["amount"] for q in fitting))
    lines.append(f"- **{label}**: {p['name']} (val {p['accuracy']:.2%}); heavier pruning of its kind that also fits: "
                 + (", ".join(f"{q['name']} {q['accuracy']:.2%}" for q in heavier) or "none"))
display(Markdown("\n".join(lines)))
picked_kinds = {label: (p or {}).get("kind") for label, p in chosen.items()}
claim(picked_kinds["file ≤ 40 KB"] == "unstructured", "the file budget is met by unstructured pruning")
claim(picked_kinds["≤ 70% of dense latency, ≥ 95% accuracy"] == picked_kinds["≤ 50% of dense latency"] == "structured",
      "the latency budgets are met by structured pruning")
claim(chosen["file ≤ 5 KB, ≥ 97% accuracy"] is None, "nothing reaches a 5 KB file at 97% accuracy")
claim(all(lightest), "each pick is the lightest pruning of its kind that fits the budget")

# %% [markdown]
# The sweep's models are gone; we keep only their measurements. The chosen model is **re-pruned from the kept
# original** with the same configuration and the same (seeded) fine-tuning, and measured again: the same
# configuration gives the same model. Only now, with the choice made, do we read its **test** accuracy.

# %%
first = next(label for label, p in chosen.items() if p is not None)
best = chosen[first]
final = build(dense, Config.of(best), train_loader, **FT)
print(f"budget '{first}': {best['name']}, validation accuracy in the sweep {best['accuracy']:.2%}, "
      f"re-pruned {evaluate(final, val_loader):.2%}")
print("same validation accuracy as in the sweep:", evaluate(final, val_loader) == best["accuracy"])
final_acc = evaluate(final, test_loader)
print(f"test accuracy of the chosen model: {final_acc:.2%} (dense: {dense_test:.2%})")

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
Markdown(f"Measured on MNIST with LeNet-5 (dense: test {dense_test:.2%}, {dense_point['size_bytes']:,} bytes, "
         f"{dense_point['latency_ms']:.2f} ms per batch of {BATCH} on one thread of this machine):\n\n"
         f"1. **Nonzeros are not bytes**: 90% unstructured sparsity leaves the dense file at {u['dense_file']:,} bytes; "
         f"only a sparse form shrinks it ({u['smallest']:,} bytes).\n"
         f"2. **FLOPs are not latency**: at 90% unstructured sparsity the effective FLOPs fall "
         f"{d['eff_flops'] / u['eff_flops']:.1f}× and the speedup is {su['median']:.2f}× (IQR {su['q25']:.2f}–"
         f"{su['q75']:.2f}×; dense against itself {c['q25']:.2f}–{c['q75']:.2f}×): no speedup beyond the noise. "
         f"Removing 50% of the units cuts the FLOPs {d['flops'] / s['flops']:.1f}× and the latency "
         f"{ss['median']:.2f}× (IQR {ss['q25']:.2f}–{ss['q75']:.2f}×).\n"
         f"3. **Fronts**: {fs['unstructured']} unstructured and {fs['structured']} structured points on the "
         f"accuracy-size front, {fl['unstructured']} and {fl['structured']} on the accuracy-latency front, out of "
         f"{len(points)} operating points.\n"
         f"4. **Budget '{first}'**, chosen on validation: {best['name']}, test accuracy {final_acc:.2%}, re-pruned from "
         f"the original, saved in {path.stat().st_size:,} bytes and reloaded with the same accuracy.")

# %% [markdown]
# ## Exercises
#
# This notebook's two exercises sit where their library twins are first used: **Exercise 07.1** (the Pareto front)
# opens §2, and **Exercise 07.2** (pick under a budget) comes just before §3's picks. Going further, without a check:
# time `models1` with `speedups` at batch 1 instead of 256, and see whether the control's band and the unstructured
# model's speedup still overlap.

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
