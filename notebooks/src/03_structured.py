# %% [markdown]
# # 03 · Structured pruning
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/pruning-course/pruning-course/blob/main/notebooks/03_structured.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/pruning-course/pruning-course/HEAD?labpath=notebooks%2F03_structured.ipynb)
#
# Notebook 02 ended with a sobering measurement: zeros scattered through a weight matrix do not make a CPU any
# faster. **Structured pruning** removes whole units instead: a neuron of a Linear layer (a row of its weight) or a
# filter of a convolution (an output channel). What is left is a smaller *dense* network, and every piece of hardware
# runs a smaller dense network faster. The price: a whole filter is a coarser thing to lose than single weights, and
# cutting one means editing every layer that touches it.
#
# **What you will learn**
# - how to score filters and neurons by their L1/L2 norm (Li et al. 2017) and remove them physically: the layer, its BatchNorm and the next layer's inputs, across a Flatten too;
# - how to check that the slim model computes exactly what the masked model computes;
# - how much of a FLOP reduction turns into measured speedup, at batch 256 and at batch 1;
# - which wins at the same parameter budget, unstructured or structured pruning, once accuracy and latency are both measured;
# - why a network with residual connections needs dependency groups (Torch-Pruning), and why the course's chain surgery refuses it.

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
import torch
from course import (build_model, count_flops, count_params, dependency_groups, evaluate, fast, held_out_batch,
                    input_shape, make_loaders, mask_structured, prunable_layers, prune_structured, prune_unstructured,
                    prune_with_torch_pruning, setup, structured_masks, train_or_load, unit_scores)
setup(seed=0, threads=1)

# %% [markdown]
# `threads=1`: this notebook times models, and one thread gives the steadiest timings (on a shared or busy machine,
# multi-threaded runs wait for each other); it also makes the fine-tuning numbers repeatable across machines. On your
# own laptop you may raise it: everything gets faster, and the timings change.
#
# The data: Fashion-MNIST (70,000 real 28×28 clothing images, 10 classes) when it is on this machine, harder than
# MNIST, so pruning damage shows. Otherwise `choose_dataset` falls back to the real MNIST subset that ships with the
# course and says so in its banner. Fine-tuning below uses a stratified subset of the training set; accuracies are
# measured on a stratified subset of the test set.

# %%
from course import choose_dataset
choice = choose_dataset("fashion-mnist", fallbacks=("mnist",), download=False)    # what is on disk, never a download
choice

# %%
DATASET = choice.name
train_loader, test_loader = make_loaders(DATASET, batch_size=128, train_size=fast(8000, 2000), test_size=fast(2000, 1000))
print(test_loader.dataset.info)
print(f"fine-tuning images: {len(train_loader.dataset):,}, test images: {len(test_loader.dataset):,}")

# %% [markdown]
# Two dense baselines, loaded from verified checkpoints: LeNet-5 (two 5×5 convolutions, three Linear layers) and
# VGGSmall (six 3×3 convolutions with BatchNorm, in three blocks, then two Linear layers).

# %%
lenet, lenet_info = train_or_load("lenet5", DATASET)
vgg, vgg_info = train_or_load("vgg", DATASET)
base_acc = {"LeNet-5": evaluate(lenet, test_loader), "VGGSmall": evaluate(vgg, test_loader)}
for name, model, info in (("LeNet-5", lenet, lenet_info), ("VGGSmall", vgg, vgg_info)):
    print(f"{name:<9} {info['source']} checkpoint {info['file']}: {count_params(model).total:,} parameters, "
          f"{count_flops(model).dense:,} FLOPs per image, test accuracy {base_acc[name]:.2%}")

# %% [markdown]
# ## 1 · Removing whole filters and neurons
#
# **Which units to remove.** Li et al. (2017) rank the filters of a convolution by the L1 norm of their weights,
# Σ|W[u, :, :, :]|: a filter with small weights produces small activations and matters little to the next layer.
# A neuron of a Linear layer is scored the same way, by the L1 norm of its row. `unit_scores(model, "l1")` gives
# one score per unit of every prunable layer (the last layer, the classifier, keeps all its outputs). Molchanov et
# al. (2019) score units by their estimated effect on the loss instead (a first-order Taylor expansion,
# `unit_scores(model, "taylor", data)`); the norms need no data. Here are VGGSmall's filters, sorted, with the half
# that `ratio=0.5` removes in orange:

# %%
import matplotlib.pyplot as plt

RATIO = 0.5
scores = unit_scores(vgg, "l1")
keep = structured_masks(vgg, RATIO, criterion="l1")
fig, axes = plt.subplots(1, len(scores), figsize=(12, 2.6))
for ax, (layer, s) in zip(axes, scores.items()):
    order = s.argsort()
    ax.bar(range(len(s)), s[order], width=1.0, color=["#4c72b0" if k else "#dd8452" for k in keep[layer][order]])
    ax.set(title=f"{layer} ({len(s)})", xticks=[])
axes[0].set_ylabel("L1 norm of the unit")
fig.suptitle(f"VGGSmall: units sorted by L1 norm; orange = removed at ratio {RATIO}", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# The L2 norm, sqrt(Σ W²), is the other common choice. Li et al. found that the two rank filters almost alike; on
# this model:

# %%
keep_l2 = structured_masks(vgg, RATIO, criterion="l2")
for layer in keep:
    same = int((keep[layer] == keep_l2[layer]).sum())
    print(f"{layer:<6} L1 and L2 agree on {same}/{len(keep[layer])} units")

# %% [markdown]
# **Cutting a unit out.** Removing filter *u* of a convolution means more than deleting row *u* of its weight:
#
# - its **bias** entry and its **BatchNorm** entries (γ, β, running mean and variance) go too;
# - the **next layer** loses input channel *u* (a slice along dim 1 of its weight);
# - across a **Flatten**, channel *u* feeds a whole block of the next Linear's inputs: with 2×2 positions per
#   channel (VGGSmall pools to 2×2), inputs 4u … 4u+3.
#
# `prune_structured` does exactly that and returns a smaller dense model; `mask_structured` is its **masked twin**:
# same shapes, the same units zeroed and masked. The surgery is short enough to read:

# %%
from course import remove_units, show, unit_inputs

show(remove_units)

# %%
show(unit_inputs)

# %% [markdown]
# The shapes before and after, for both models at ratio 0.5 (every layer loses half its units, the classifier keeps
# its 10 outputs):

# %%
from course import Table

slim = {"LeNet-5": prune_structured(lenet, RATIO), "VGGSmall": prune_structured(vgg, RATIO)}
masked = {"LeNet-5": mask_structured(lenet, RATIO), "VGGSmall": mask_structured(vgg, RATIO)}
for name, dense in (("LeNet-5", lenet), ("VGGSmall", vgg)):
    after = dict(slim[name].named_modules())
    rows = [(layer, type(m).__name__, str(tuple(m.weight.shape)), str(tuple(after[layer].weight.shape)))
            for layer, m in dense.named_modules() if getattr(m, "weight", None) is not None]
    display(Table(["layer", "type", "dense weight", "slim weight"], rows, title=f"{name}, ratio {RATIO}"))

# %% [markdown]
# Look at `fc1`: LeNet-5's `conv2` keeps 8 of its 16 filters, each feeding 5×5 = 25 inputs of `fc1`, so `fc1` goes
# from 400 to 200 inputs; VGGSmall's `conv6` keeps 32 of 64 channels × 4 positions, so `fc1` goes from 256 to 128.
# Getting that block wrong is the classic structured-pruning bug, and it does not crash: the shapes can still fit
# while the wrong inputs are read. So we check the function, not the shapes: the slim model must compute what the
# masked model computes, on real test images, in eval mode (BatchNorm uses its running statistics).

# %%
# NBVAL_CHECK_OUTPUT
X, y = held_out_batch(DATASET, 512)
with torch.no_grad():
    for name in slim:
        same = torch.allclose(slim[name].eval()(X), masked[name].eval()(X), atol=1e-5)
        print(f"{name}: slim model == masked model: {same}")

# %%
from IPython.display import Markdown

acc_half = {name: evaluate(model, test_loader) for name, model in slim.items()}
Markdown("Without any fine-tuning, removing half of every layer's units leaves "
         + " and ".join(f"{name} at {acc_half[name]:.2%} (dense {base_acc[name]:.2%}) with "
                        f"{count_params(slim[name]).total / count_params(d).total:.0%} of its parameters"
                        for name, d in (("LeNet-5", lenet), ("VGGSmall", vgg))) + ".")

# %% [markdown]
# ## 2 · Measured speedup vs FLOP reduction
#
# Removing a fraction *r* of the filters of two consecutive convolutions shrinks the second one's input *and*
# output channels, so its FLOPs fall to about (1 − r)²: ratio 0.5 should make the convolutions about 4× cheaper. But
# FLOPs are arithmetic, and latency is what you wait for. `slim_sweep` (in `course/speedups.py`) prunes with
# `prune_structured` at several ratios, counts FLOPs with `torch.utils.flop_counter` and times each slim model
# against the dense one with `course.latency` (best of interleaved rounds), at batch 256 and batch 1.

# %%
from course import slim_sweep

MIN_RUN_TIME = fast(0.2, 0.05)   # seconds of repeated runs per median
ROUNDS = fast(5, 1)              # interleaved rounds, each on a fresh copy; the best one counts
RATIOS = fast([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], [0.3, 0.6])
sweep = {name: slim_sweep(model, RATIOS, [1, 256], min_run_time=MIN_RUN_TIME, rounds=ROUNDS)
         for name, model in (("LeNet-5", lenet), ("VGGSmall", vgg))}
sweep["VGGSmall"]

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.2))
top = max(max(r["FLOPs ×"], r["speedup ×"]) for t in sweep.values() for r in t)
ax.plot([1, top], [1, top], "k--", lw=1, label="y = x (speedup = FLOP reduction)")
for (name, table), color in zip(sweep.items(), ["#4c72b0", "#c44e52"]):
    for b, marker, ls in ((256, "o", "-"), (1, "s", ":")):
        rows = [r for r in table if r["batch"] == b]
        ax.plot([r["FLOPs ×"] for r in rows], [r["speedup ×"] for r in rows], marker=marker, ls=ls, color=color,
                ms=4, label=f"{name}, batch {b}")
ax.set(xlim=(0, top * 1.05), ylim=(0, top * 1.05), xlabel="FLOP reduction (dense FLOPs / slim FLOPs)",
       ylabel="measured speedup (dense ms / slim ms)", title="Structured pruning: FLOPs vs latency (this machine)")
ax.legend(fontsize=8)
plt.show()

# %%
points = [dict(r, model=name) for name, t in sweep.items() for r in t]
below = [p for p in points if p["speedup ×"] < p["FLOPs ×"]]
slower = [p for p in points if p["speedup ×"] < 1]
share = {(name, b): [p["speedup ×"] / p["FLOPs ×"] for p in points if p["model"] == name and p["batch"] == b]
         for name in sweep for b in (1, 256)}
dense_models = {"LeNet-5": lenet, "VGGSmall": vgg}
widths = {(p["model"], p["ratio"]): [m.out_channels for m in prune_structured(dense_models[p["model"]], p["ratio"]).modules()
                                     if isinstance(m, torch.nn.Conv2d)] for p in slower}
Markdown(f"On this machine {len(below)} of {len(points)} measured points fall **below** the line y = x: the slim model "
         f"is faster, but by less than its FLOP reduction. As a share of the FLOP reduction that turns into speedup "
         "(speedup ÷ FLOP reduction): " + "; ".join(
             f"{name} at batch {b}: {min(v):.0%} to {max(v):.0%}" for (name, b), v in share.items()) + ". "
         + (f"{len(slower)} point(s) were even **slower** than the dense model: "
            + ", ".join(f"{p['model']} at ratio {p['ratio']:.0%}, batch {p['batch']} ({p['speedup ×']:.2f}×)"
                        for p in slower)
            + ". Their convolutions keep " + "; ".join(f"{name} at {r:.0%}: {w} channels" for (name, r), w in widths.items())
            + "." if slower else
            "No slim model was slower than the dense one."))

# %% [markdown]
# Why speedup trails the FLOP count, most of all at batch 1:
#
# - **Not all time is FLOPs.** BatchNorm, ReLU, pooling, the Flatten and memory copies count no FLOPs but take time,
#   and they shrink only linearly with the channel count (the convolutions shrink quadratically).
# - **Small layers are memory- and overhead-bound.** At batch 1, each of LeNet-5's layers does so little arithmetic
#   that the fixed cost of dispatching an operator (microseconds each, in Python and in PyTorch) dominates;
#   halving the arithmetic barely moves it.
# - **Kernels like certain shapes.** Convolution libraries are tuned for channel counts that are multiples of 8, 16
#   or 32; odd widths can run less efficiently per FLOP. (`prune_structured(..., round_to=8)` keeps multiples of 8.)
#
# A point can also land **above** the line: a smaller layer may suddenly fit in cache, or the library may switch to
# a faster algorithm for the new shape. Either way: count FLOPs to compare models on paper, and measure latency on
# the hardware you will deploy on.

# %% [markdown]
# ## 3 · Unstructured vs structured at an equal parameter budget
#
# Which is better for the same number of weights kept: many scattered zeros, or fewer, whole units? We prune
# LeNet-5 structurally at several ratios, count the weights each slim model keeps, and prune the dense model
# *unstructured* (global magnitude, the stronger unstructured variant) to exactly that many nonzero weights. Both
# get the same short fine-tune (`course.train`, SGD, masks kept at zero), then we measure test accuracy and
# latency (batch 256 and batch 1). The dense model is always the starting point: each pruned model is
# re-pruned from it.

# %%
from tqdm.auto import tqdm
from course import best_of_rounds, train

BUDGET_RATIOS = fast([RATIO, 0.7, 0.85], [RATIO, 0.8])
FT_EPOCHS = fast(2, 1)
dense_weights = sum(m.weight.numel() for _, m in prunable_layers(lenet))
budget = {}
for r in tqdm(BUDGET_RATIOS, desc="prune + fine-tune"):
    structured = prune_structured(lenet, r)
    kept = sum(m.weight.numel() for _, m in prunable_layers(structured))
    unstructured = prune_unstructured(lenet, 1 - kept / dense_weights, scope="global")
    for kind, model in (("structured", structured), ("unstructured", unstructured)):
        before = evaluate(model, test_loader)
        train(model, train_loader, epochs=FT_EPOCHS, lr=0.01, seed=0, progress=False)
        budget[kind, r] = {"model": model, "kept": kept, "nonzero": count_params(model).nonzero,
                           "before": before, "after": evaluate(model, test_loader)}
ms = best_of_rounds({"dense": lenet} | {key: v["model"] for key, v in budget.items()}, [1, 256], ROUNDS,
                    min_run_time=MIN_RUN_TIME)

# %%
rows = [("dense", "–", dense_weights, count_params(lenet).nonzero, base_acc["LeNet-5"], base_acc["LeNet-5"],
         ms["dense", 256], ms["dense", 1])]
rows += [(kind, r, v["kept"], v["nonzero"], v["before"], v["after"], ms[(kind, r), 256], ms[(kind, r), 1])
         for (kind, r), v in sorted(budget.items(), key=lambda kv: (kv[0][1], kv[0][0]))]
Table(["model", "ratio", "weights kept", "nonzero params", "acc. before FT", "acc. after FT", "ms (batch 256)",
       "ms (batch 1)"], rows, title=f"LeNet-5 on {DATASET}: the same weight budget, two ways",
      formats={"weights kept": "count", "nonzero params": "count", "acc. before FT": ".2%", "acc. after FT": ".2%",
               "ms (batch 256)": ".3f", "ms (batch 1)": ".3f"},
      note=f"fine-tuning: {FT_EPOCHS} epoch(s) on {len(train_loader.dataset):,} images; latency: best of {ROUNDS} "
           f"round(s), {torch.get_num_threads()} thread(s), this machine")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
for ax, b in zip(axes, (256, 1)):
    ax.scatter([ms["dense", b]], [base_acc["LeNet-5"]], marker="*", s=150, color="black", label="dense", zorder=3)
    for kind, color in (("unstructured", "#4c72b0"), ("structured", "#c44e52")):
        xs = [ms[(kind, r), b] for r in BUDGET_RATIOS]
        ys = [budget[kind, r]["after"] for r in BUDGET_RATIOS]
        ax.plot(xs, ys, marker="o", color=color, label=kind)
        for r, x_, y_ in zip(BUDGET_RATIOS, xs, ys):
            ax.annotate(f"{budget[kind, r]['kept'] / dense_weights:.0%}", (x_, y_), textcoords="offset points",
                        xytext=(4, 4), fontsize=7, color=color)
    ax.set(xlabel=f"latency, ms per batch of {b} (this machine)", title=f"batch {b}")
axes[0].set_ylabel("test accuracy after fine-tuning")
axes[0].legend(fontsize=8)
fig.suptitle("LeNet-5: accuracy vs latency at equal weight budgets (labels: share of weights kept)", fontsize=10)
plt.tight_layout()
plt.show()

# %%
lines = []
for r in BUDGET_RATIOS:
    s, u = budget["structured", r], budget["unstructured", r]
    gap = u["after"] - s["after"]
    speed = ms[("unstructured", r), 256] / ms[("structured", r), 256]
    lines.append(f"- keeping {s['kept'] / dense_weights:.0%} of the weights ({s['kept']:,}): unstructured "
                 f"{u['after']:.2%}, structured {s['after']:.2%} ({100 * abs(gap):.1f} points "
                 f"{'lower' if gap > 0 else 'higher'} for structured), and the structured model runs {speed:.2f}× as "
                 f"fast as the unstructured one at batch 256")
Markdown("After fine-tuning, on this machine:\n" + "\n".join(lines))

# %% [markdown]
# Read the table and the plot together. Unstructured pruning usually keeps more accuracy for the same weight count
# (compare the accuracy columns): it can drop the least useful weights anywhere, while structured pruning must drop
# a whole filter, good weights included.
# But the unstructured models run at dense speed (notebook 02), while every structured model is a genuinely smaller
# network. So the choice depends on what you are short of. If it is **latency on ordinary hardware**, structured
# pruning is the one that delivers, as long as the ratio stays where accuracy holds. If it is **storage** or
# **transfer size**, or you deploy on hardware with sparse support, unstructured pruning (stored sparsely) keeps
# more accuracy per byte. At high ratios structured pruning starves layers of whole channels (LeNet-5's first
# convolution has only 6 filters) and accuracy falls faster.

# %% [markdown]
# ## 4 · Residual connections: dependency groups
#
# LeNet-5 and VGGSmall are chains: each layer feeds only the next, so removing a unit touches one layer and its
# consumer. A **residual** network adds a block's input to its output, `relu(bn2(conv2(...)) + x)`. The addition
# needs both operands to have the same channels, so channel *c* of the block's output, of its input, of the
# previous block's output and of every layer that reads the sum are **the same channel**: they can only be removed
# together. Such a set of coupled layers is a **dependency group**. Torch-Pruning (Fang et al. 2023, *DepGraph*)
# traces the model, builds these groups automatically and prunes whole groups; `course.dependency_groups` lists the
# group of one layer, and `draw_dependency_group` draws it. Below, TinyResNet (a stem, three basic
# blocks, a Linear head). It is freshly initialised: no baseline ships for it, and this section is about which
# layers must shrink together, not about accuracy.

# %%
from course import draw_dependency_group

torch.manual_seed(0)
resnet = build_model("resnet", input_shape(DATASET))
example = X[:8]
groups = {layer: dependency_groups(resnet, example, layer) for layer in ("block1.conv1", "block1.conv2")}
fig, axes = plt.subplots(2, 1, figsize=(11, 5))
for ax, group in zip(axes, groups.values()):
    draw_dependency_group(resnet, group, ax)
plt.tight_layout()
plt.show()
for group in groups.values():
    print(group)

# %% [markdown]
# Top: a filter *inside* a block (`block1.conv1`) is private to it: only its BatchNorm entry and `conv2`'s input go
# with it, exactly as in a chain. Bottom: a channel of `block1.conv2`'s output is a channel of the residual stream;
# it also lives in the stem (whose output is the block's identity shortcut), in `bn2`, and in everything that reads
# the sum: `block2.conv1` and the projection shortcut `block2.shortcut.0`. Remove it in one place only and the
# addition fails with a shape error, or worse, silently adds mismatched channels.
#
# The course's own surgery walks chains. It refuses the residual model instead of guessing, and says where to go:

# %%
# NBVAL_CHECK_OUTPUT
from course import UnsupportedModelError

try:
    prune_structured(resnet, RATIO)
except UnsupportedModelError as err:
    print(f"{type(err).__name__}: {err}")

# %% [markdown]
# `prune_with_torch_pruning` goes through Torch-Pruning's dependency graph. On a chain it agrees with the course's
# surgery: with `group_reduction="first"` (score a group by its root layer's L1 norm alone, as Li et al. do), it
# removes the very same filters of VGGSmall:

# %%
# NBVAL_CHECK_OUTPUT
tp_vgg = prune_with_torch_pruning(vgg, RATIO, example, group_reduction="first")
same_state = all(torch.equal(v, tp_vgg.state_dict()[k]) for k, v in slim["VGGSmall"].state_dict().items())
with torch.no_grad():
    same_out = torch.allclose(tp_vgg.eval()(X), slim["VGGSmall"].eval()(X), atol=1e-5)
print(f"Torch-Pruning and course surgery keep the same weights: {same_state}; same outputs: {same_out}")

# %% [markdown]
# On the residual network it prunes every group consistently (here ratio 0.5 per group; by default a group is
# scored by the mean L1 norm over all its layers):

# %%
slim_resnet = prune_with_torch_pruning(resnet, RATIO, example)
rows = [(n, str(tuple(m.weight.shape)), str(tuple(dict(slim_resnet.named_modules())[n].weight.shape)))
        for n, m in resnet.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
display(Table(["layer", "dense weight", "slim weight"], rows, title=f"TinyResNet, ratio {RATIO} (Torch-Pruning)"))
with torch.no_grad():
    out = slim_resnet.eval()(X)
res_flops = count_flops(resnet).dense / count_flops(slim_resnet).dense
res_ms = best_of_rounds({"dense": resnet, "slim": slim_resnet}, [256], ROUNDS, min_run_time=MIN_RUN_TIME)
print(f"output {tuple(out.shape)}; parameters {count_params(resnet).total:,} -> {count_params(slim_resnet).total:,}; "
      f"FLOPs {res_flops:.2f}× fewer; measured speedup at batch 256: {res_ms['dense', 256] / res_ms['slim', 256]:.2f}×")

# %% [markdown]
# ## Summary

# %%
r_best = max(RATIOS)
vgg256 = {r["ratio"]: r for r in sweep["VGGSmall"] if r["batch"] == 256}
lenet1 = {r["ratio"]: r for r in sweep["LeNet-5"] if r["batch"] == 1}
mid = BUDGET_RATIOS[0]
Markdown(f"""
- Filters ranked by L1 norm (Li et al. 2017) and cut out physically give smaller dense models that compute exactly
  what their masked twins compute. At ratio {RATIO}, without fine-tuning: LeNet-5 {acc_half['LeNet-5']:.2%}, VGGSmall
  {acc_half['VGGSmall']:.2%} (dense {base_acc['LeNet-5']:.2%} and {base_acc['VGGSmall']:.2%}) on {DATASET}; for LeNet-5
  {FT_EPOCHS} epoch(s) of fine-tuning bring it back to {budget['structured', RATIO]['after']:.2%}.
- FLOPs fall faster than latency: at ratio {r_best}, VGGSmall needs {vgg256[r_best]['FLOPs ×']:.1f}× fewer FLOPs and ran
  {vgg256[r_best]['speedup ×']:.1f}× faster at batch 256 on this machine; LeNet-5 at batch 1 reached a speedup of
  {lenet1[r_best]['speedup ×']:.2f}× for {lenet1[r_best]['FLOPs ×']:.1f}× fewer FLOPs. {len(below)} of
  {len(points)} measured points fall below y = x.
- At the same weight budget ({budget['structured', mid]['kept'] / dense_weights:.0%} of LeNet-5's weights), after
  {FT_EPOCHS} epoch(s) of fine-tuning: unstructured {budget['unstructured', mid]['after']:.2%} at
  {ms[('unstructured', mid), 256]:.2f} ms, structured {budget['structured', mid]['after']:.2%} at
  {ms[('structured', mid), 256]:.2f} ms per batch of 256 (dense {ms['dense', 256]:.2f} ms). Unstructured buys accuracy,
  structured buys time.
- Residual connections couple layers into dependency groups (removing one output channel of `block1.conv2` shrinks
  {len(groups['block1.conv2'].members)} layers). The course's chain surgery refuses such graphs;
  Torch-Pruning prunes them group by group, and on chains it picks the same filters as the course's surgery.
""")

# %% [markdown]
# ## Exercises
#
# **Exercise 03.1: rank filters by L1 norm.** Write `l1_filter_ranking(conv_weight)` for a conv weight of shape
# (out, in, kh, kw): return the filter indices sorted from the smallest L1 norm Σ|w| to the largest, the order in
# which Li et al. remove them.
#
# <details><summary>Hint</summary>
#
# One norm per filter: `conv_weight.abs().sum(dim=(1, 2, 3))`. Then `argsort()` gives the indices in ascending order.
# </details>

# %%
# Exercise 03.1: rank filters by L1 norm
def l1_filter_ranking(conv_weight):
    ### BEGIN SOLUTION
    return conv_weight.abs().sum(dim=(1, 2, 3)).argsort()
    ### END SOLUTION

# %%
from course.checks import check_conv_flops, check_l1_filter_ranking, check_remove_filter
check_l1_filter_ranking(l1_filter_ranking)

# %% [markdown]
# **Exercise 03.2: remove one filter.** Write `remove_filter(conv, bn, next_conv, idx)`: build and return new modules
# `(conv, bn, next_conv)` where filter `idx` is gone from `conv` (weight and bias), from every BatchNorm tensor
# (weight, bias, running_mean, running_var) and from `next_conv`'s input channels. Leave the inputs unchanged.
#
# <details><summary>Hint</summary>
#
# `keep = [i for i in range(conv.out_channels) if i != idx]`. Build `nn.Conv2d(conv.in_channels, len(keep), ...)`
# with the same kernel size, stride, padding, dilation, groups and `bias=conv.bias is not None`, then copy
# `conv.weight[keep]` under `torch.no_grad()`. The BatchNorm needs `len(keep)` features and all four tensors
# indexed by `keep`; the next conv needs `next_conv.weight[:, keep]` and its whole bias.
# </details>

# %%
# Exercise 03.2: remove one filter
from torch import nn

def remove_filter(conv, bn, next_conv, idx):
    ### BEGIN SOLUTION
    keep = [i for i in range(conv.out_channels) if i != idx]
    new_conv = nn.Conv2d(conv.in_channels, len(keep), conv.kernel_size, stride=conv.stride, padding=conv.padding,
                         dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None)
    new_bn = nn.BatchNorm2d(len(keep), eps=bn.eps, momentum=bn.momentum)
    new_next = nn.Conv2d(len(keep), next_conv.out_channels, next_conv.kernel_size, stride=next_conv.stride,
                         padding=next_conv.padding, dilation=next_conv.dilation, groups=next_conv.groups,
                         bias=next_conv.bias is not None)
    with torch.no_grad():
        new_conv.weight.copy_(conv.weight[keep])
        if conv.bias is not None:
            new_conv.bias.copy_(conv.bias[keep])
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(new_bn, name).copy_(getattr(bn, name)[keep])
        new_next.weight.copy_(next_conv.weight[:, keep])
        if next_conv.bias is not None:
            new_next.bias.copy_(next_conv.bias)
    return new_conv, new_bn, new_next
    ### END SOLUTION

# %%
check_remove_filter(remove_filter)

# %% [markdown]
# **Exercise 03.3: FLOPs of a convolution.** Write `conv_flops(conv, in_hw)`: the FLOPs of `conv` (an `nn.Conv2d`
# with `groups=1`) on one image of height and width `in_hw = (H, W)`, counted as `torch.utils.flop_counter` counts
# them. Then use it to see why ratio 0.5 makes a middle convolution about 4× cheaper.
#
# <details><summary>Hint</summary>
#
# Each output value is one dot product of length C_in·k_h·k_w: that many multiply-accumulates, 2 FLOPs each (the
# bias add is not counted). There are C_out·H_out·W_out output values, with
# H_out = (H + 2·padding − dilation·(k_h − 1) − 1) // stride + 1, and the same for W.
# </details>

# %%
# Exercise 03.3: FLOPs of a convolution
def conv_flops(conv, in_hw):
    ### BEGIN SOLUTION
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    h_out = (in_hw[0] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    w_out = (in_hw[1] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return 2 * conv.in_channels * kh * kw * conv.out_channels * h_out * w_out
    ### END SOLUTION

# %%
check_conv_flops(conv_flops)

# %% [markdown]
# ## References
#
# - H. Li, A. Kadav, I. Durdanovic, H. Samet, H. P. Graf. *Pruning Filters for Efficient ConvNets.* ICLR 2017.
# - P. Molchanov, A. Mallya, S. Tyree, I. Frosio, J. Kautz. *Importance Estimation for Neural Network Pruning.* CVPR 2019.
# - G. Fang, X. Ma, M. Song, M. Bi Mi, X. Wang. *DepGraph: Towards Any Structural Pruning.* CVPR 2023 (Torch-Pruning).
# - S. Han, J. Pool, J. Tran, W. J. Dally. *Learning both Weights and Connections for Efficient Neural Networks.* NeurIPS 2015.
# - T. Hoefler, D. Alistarh, T. Ben-Nun, N. Dryden, A. Peste. *Sparsity in Deep Learning: Pruning and growth for efficient inference and training in neural networks.* JMLR 2021.
# - K. He, X. Zhang, S. Ren, J. Sun. *Deep Residual Learning for Image Recognition.* CVPR 2016.
# - H. Xiao, K. Rasul, R. Vollgraf. *Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms.* arXiv:1708.07747, 2017.
