# %% [markdown]
# # 03 · Structured pruning
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/pruning-course/pruning-course/blob/main/notebooks/03_structured.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/pruning-course/pruning-course/HEAD?labpath=notebooks%2F03_structured.ipynb)
#
# Notebook 02 ended with a sobering measurement: zeros scattered through a weight matrix do not make a CPU any
# faster. **Structured pruning** removes whole units instead: a neuron of a Linear layer (a row of its weight) or a
# filter of a convolution (an output channel). What is left is a smaller *dense* network: it needs fewer FLOPs on
# any hardware, with no sparse kernels. Whether it also *runs* faster depends on the hardware, the batch size and the
# shapes, and §2 measures how much of the FLOP cut turns into speed on this CPU (at batch 1, far less than the cut).
# The price: a whole filter is a coarser thing to lose than single weights, and cutting one means editing every
# layer that touches it.
#
# **What you will learn**
# - how to score filters and neurons by their L1/L2 norm (Li et al. 2017) and remove them physically: the layer, its BatchNorm and the next layer's inputs, across a Flatten too;
# - why a filter's norm says nothing about its importance when BatchNorm follows it, and the criteria that see BatchNorm: BN-γ (Liu et al. 2017), the next layer's weights (MIT 6.5940), group Taylor (Molchanov et al. 2019);
# - how the criteria compare one-shot, after re-estimating BatchNorm's statistics, and after a short fine-tune (3 seeds);
# - how much of a FLOP reduction turns into measured speedup, at batch 256 and at batch 1;
# - which wins, unstructured or structured pruning, at an equal weight budget, at equal FLOPs and at equal latency;
# - why a network with residual connections needs dependency groups (Torch-Pruning), and what a pruned ResNet recovers with one minute of fine-tuning.

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
import copy, itertools, torch
from course import (build_model, claim, count_flops, count_params, dependency_groups, evaluate, fast, held_out_batch,
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
# course and says so in its banner. Three stratified splits: a fine-tuning set, a **validation** set carved from
# other training images (every choice below, such as when to stop fine-tuning, is made on it) and a test subset,
# used only to report final numbers. The dense baselines were trained on all training images, validation ones
# included, so validation accuracy is optimistic; it still ranks choices without touching the test set.

# %%
from course import choose_dataset
choice = choose_dataset("fashion-mnist", fallbacks=("mnist",), download=False)    # what is on disk, never a download
choice

# %%
DATASET = choice.name
train_loader, val_loader, test_loader = make_loaders(DATASET, batch_size=128, train_size=fast(8000, 2000),
                                                     val_size=fast(2000, 500), test_size=fast(2000, 1000))
print(test_loader.dataset.info)
print(f"fine-tuning images: {len(train_loader.dataset):,}, validation: {len(val_loader.dataset):,}, "
      f"test: {len(test_loader.dataset):,}")
X, y = held_out_batch(DATASET, 512)          # real test images, for comparing two models' outputs

# %% [markdown]
# Two dense baselines, loaded from verified checkpoints: LeNet-5 (two 5×5 convolutions, three Linear layers) and
# VGGSmall (six 3×3 convolutions with BatchNorm, in three blocks, then two Linear layers).

# %%
lenet, lenet_info = train_or_load("lenet5", DATASET)
vgg, vgg_info = train_or_load("vgg", DATASET)
base_acc = {"LeNet-5": evaluate(lenet, test_loader), "VGGSmall": evaluate(vgg, test_loader)}
for name, model, info in (("LeNet-5", lenet, lenet_info), ("VGGSmall", vgg, vgg_info)):
    print(f"{name:<9} {info['source']} checkpoint {info['file']}: {count_params(model).total:,} parameters, "
          f"test accuracy {base_acc[name]:.2%}")

# %% [markdown]
# ## 1 · Removing whole filters and neurons
#
# **Which units to remove.** Li et al. (2017) rank the filters of a convolution by the L1 norm of their weights,
# Σ|W[u, :, :, :]|: a filter with small weights produces small activations and matters little to the next layer.
# A neuron of a Linear layer is scored the same way, by the L1 norm of its row. The argument holds when the
# convolution's output goes straight into a ReLU, as in LeNet-5; §1.2 shows where it breaks. Write the ranking
# yourself first.
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
from course.checks import check_l1_filter_ranking
check_l1_filter_ranking(l1_filter_ranking)

# %% [markdown]
# Compare with the library's unit criterion, registered as `"l1"` (alias of `"magnitude"` for units):
# `unit_scores(model, "l1")` gives one score per unit of every prunable layer (the last layer, the classifier,
# keeps all its outputs).

# %%
from course import show, unit_l1_scores
show(unit_l1_scores)

# %% [markdown]
# Here are VGGSmall's filters, sorted, with the half that `ratio=0.5` removes in orange:

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
# ### 1.1 · Cutting a unit out
#
# Removing filter *u* of a convolution means more than deleting row *u* of its weight:
#
# - its **bias** entry and its **BatchNorm** entries (γ, β, running mean and variance) go too;
# - the **next layer** loses input channel *u* (a slice along dim 1 of its weight);
# - across a **Flatten**, channel *u* feeds a whole block of the next Linear's inputs: with 2×2 positions per
#   channel (VGGSmall pools to 2×2), inputs 4u … 4u+3.
#
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
from course.checks import check_remove_filter
check_remove_filter(remove_filter)

# %% [markdown]
# Compare with the library: `prune_structured` does the same along a whole chain (the Flatten block included) and
# returns a smaller dense model; `mask_structured` is its **masked twin**: same shapes, the same units zeroed and
# masked. The surgery is short enough to read:

# %%
from course import remove_units, unit_inputs

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
with torch.no_grad():
    for name in slim:
        same = torch.allclose(slim[name].eval()(X), masked[name].eval()(X), atol=1e-5)
        print(f"{name}: slim model == masked model: {same}")

# %% [markdown]
# Without any fine-tuning, removing half of every layer's units costs both models most of their accuracy: whole
# filters are a coarse thing to lose at once.

# %%
acc_half = {name: evaluate(model, test_loader) for name, model in slim.items()}
for name, d in (("LeNet-5", lenet), ("VGGSmall", vgg)):
    print(f"{name}: {acc_half[name]:.2%} (dense {base_acc[name]:.2%}) with "
          f"{count_params(slim[name]).total / count_params(d).total:.0%} of its parameters, no fine-tuning")
claim(all(acc_half[n] < base_acc[n] - 0.05 for n in acc_half),
      "removing half of every layer's units, without fine-tuning, costs both models more than 5 points")

# %% [markdown]
# ### 1.2 · BatchNorm makes a filter's norm meaningless
#
# Li et al.'s argument assumes that a filter's scale reaches the next layer. In VGGSmall every convolution feeds a
# **BatchNorm** (Ioffe & Szegedy 2015), which normalises each channel *u* of the convolution's output y:
#
# BN(y)_u = γ_u · (y_u − μ_u) / sqrt(σ_u² + ε) + β_u,
#
# with μ_u and σ_u the channel's mean and standard deviation (of the batch in training; the running estimates in
# eval mode). Scale filter *u* by α > 0: y_u becomes α·y_u, its mean α·μ_u, its standard deviation α·σ_u, and the
# output is the same (up to the tiny ε). So the filter's norm can be anything: the unit's contribution is set by
# γ_u and β_u after the normalisation, and by how strongly the next layer reads it. Training with weight decay
# shrinks such norms without changing the function, so their L1 ranking tells more about the training history than
# about importance. (The same invariance makes the loss's gradient orthogonal to the filter in training:
# Σ w·∂L/∂w = d L(αw)/dα at α = 1 = 0.)
#
# The experiment: take conv3's filter with the **largest** L1 norm, scale it by 0.1, and scale the running
# statistics of its BatchNorm channel the way training would have measured them (mean ×0.1, variance ×0.01).
# L1 now ranks it last. Then compare with removing it (`zero_units`: the masked twin of cutting it out, its output
# exactly 0).

# %%
from course import zero_units

ALPHA = 0.1
l1_conv3 = scores["conv3"]
k = int(l1_conv3.argmax())                                   # conv3's strongest filter by L1
scaled = copy.deepcopy(vgg)
with torch.no_grad():
    scaled.conv3.weight[k] *= ALPHA                          # the filter ×0.1 ...
    scaled.bn3.running_mean[k] *= ALPHA                      # ... and the statistics BN measures for it
    scaled.bn3.running_var[k] *= ALPHA ** 2
one_out = torch.ones(vgg.conv3.out_channels, dtype=torch.bool)
one_out[k] = False
removed = zero_units(vgg, {"conv3": one_out})
l1_scaled = unit_scores(scaled, "l1")["conv3"]
with torch.no_grad():
    logits = vgg.eval()(X)
    d_scaled = (scaled.eval()(X) - logits).abs().max().item()
    d_removed = (removed.eval()(X) - logits).abs().max().item()
acc_scaled, acc_removed = evaluate(scaled, test_loader), evaluate(removed, test_loader)
rank_before, rank_after = int((l1_conv3 < l1_conv3[k]).sum()), int((l1_scaled < l1_scaled[k]).sum())
Table(["conv3 filter", "L1 norm", "L1 rank (0 = removed first)", "max |Δ logit|", "test accuracy"],
      [(f"{k}, as trained", float(l1_conv3[k]), rank_before, 0.0, base_acc["VGGSmall"]),
       (f"{k}, scaled ×{ALPHA}", float(l1_scaled[k]), rank_after, d_scaled, acc_scaled),
       (f"{k}, removed", 0.0, 0, d_removed, acc_removed)],
      title=f"VGGSmall: one filter of conv3 ({len(l1_conv3)} filters), on {len(X)} held-out images",
      formats={"L1 norm": ".3f", "max |Δ logit|": ".4f", "test accuracy": ".2%"})

# %%
claim(rank_before == len(l1_conv3) - 1 and rank_after == 0,
      "scaling the strongest filter by 0.1 moves it from the top of conv3's L1 ranking to the bottom")
claim(d_scaled < 0.01 * d_removed and acc_removed < acc_scaled,
      "the scaled filter changes the logits by less than 1% of what removing it changes, and removing it costs "
      "accuracy: L1 would now remove a filter that matters")

# %% [markdown]
# The logits barely move when the filter shrinks tenfold, while removing it changes them by whole units and costs
# accuracy. A criterion for a Conv→BN unit must look past the filter's norm. Three do:
#
# | criterion | score of unit *u* | source |
# |---|---|---|
# | `"l1"` | Σ\|W[u]\|, the filter's own weights | Li et al. 2017 |
# | `"bn_gamma"` | \|γ_u\| of the BatchNorm after the layer | Liu et al. 2017 (Network Slimming) |
# | `"next_layer"` | ‖W_next[:, u]‖₂, the next layer's weights that read *u* | MIT 6.5940 Lab 1 (channel sorting) |
# | `"taylor"` | (1/B) Σ_b (Σ_{p∈u} w_p·g_{b,p})², p over the unit's weights, bias, BN γ and β | Molchanov et al. 2019 |
# | `"random"` | U(0, 1), seeded | the control |
#
# - **BN-γ.** After normalisation, γ_u is the unit's scale. Liu et al. also *train* with an L1 penalty on every γ so
#   that unimportant ones approach zero before pruning; here we apply their criterion to a model trained without that
#   penalty (a simplification: the ranking is the paper's, the training is not).
# - **Next layer.** What the next layer does with channel *u* is W_next[:, u] ∗ (channel u); a channel that is read
#   with small weights matters little. MIT 6.5940's Lab 1 sorts channels by this norm.
# - **Group Taylor.** Molchanov et al. score a unit by the first-order loss change of switching it off, squared per
#   batch and averaged over batches, as their public code does. On a Conv→BN unit the filter's share Σ w·g is zero
#   (the invariance above), so the score is the gate-after-BatchNorm form their code uses for BN networks,
#   (γ_u·g_γ + β_u·g_β)². The course's earlier variant, the mean of |Σ w·g| (not the paper's square), stays available
#   as `"taylor_abs_mean"`.

# %%
from course import bn_gamma_scores, next_layer_scores, unit_taylor_terms, unit_taylor_scores

show(bn_gamma_scores)

# %%
show(next_layer_scores)

# %%
show(unit_taylor_terms)
show(unit_taylor_scores)

# %% [markdown]
# A criterion that cannot score a layer refuses it by name. VGGSmall's `fc1` has no BatchNorm after it:

# %%
# NBVAL_CHECK_OUTPUT
try:
    unit_scores(vgg, "bn_gamma")
except ValueError as err:
    print(f"ValueError: {err}")

# %% [markdown]
# How differently do the criteria rank VGGSmall's filters? Spearman's ρ per convolution (+1: the same order, 0:
# unrelated):

# %%
from course import spearman

CONVS = [f"conv{i}" for i in range(1, 7)]
by = {c: unit_scores(vgg, c, exclude=["fc1"]) for c in ("l1", "bn_gamma", "next_layer")}
rho = {(a, b): [spearman(by[a][layer], by[b][layer]) for layer in CONVS]
       for a, b in (("l1", "bn_gamma"), ("l1", "next_layer"), ("bn_gamma", "next_layer"))}
Table(["pair", *CONVS], [(f"ρ({a}, {b})", *v) for (a, b), v in rho.items()],
      title="VGGSmall: rank correlation of unit criteria, per convolution",
      formats={c: ".2f" for c in CONVS})

# %%
mean_rho = {pair: sum(v) / len(v) for pair, v in rho.items()}
claim(mean_rho["l1", "bn_gamma"] < mean_rho["l1", "next_layer"],
      "L1 agrees less with |γ| than with the next layer's norm: BatchNorm decouples a filter's norm from its scale")

# %% [markdown]
# ### 1.3 · Which criterion? One-shot, after BatchNorm recalibration, after fine-tuning
#
# One-shot accuracy is a poor judge of a structured criterion. Removing filters of conv *k* changes the inputs of
# conv *k+1*, so the BatchNorm after conv *k+1* normalises with running statistics of a model that no longer exists:
# one-shot accuracy measures those stale statistics as much as the criterion. And nobody deploys a model pruned by
# half without fine-tuning it. So we measure three stages:
#
# 1. **one-shot**: right after the cut;
# 2. **+ BN recalibration**: `recalibrate_bn` resets every BatchNorm's running statistics and re-estimates them from
#    20 training batches (forward passes in train mode, no gradient, no weight change; `momentum=None` gives the
#    plain average over the batches);
# 3. **after fine-tuning**: 1 epoch over the fine-tuning set, SGD with momentum, lr 0.01. The recipe is fixed in
#    advance and the same for every criterion (not tuned on any split).
#
# VGGSmall, ratio 0.5 of every convolution's filters (the local scope); `fc1` is left whole for every criterion, so
# all five prune the same layers. Three seeds: a seed sets the order of the fine-tuning batches, the four batches
# Taylor scores on, and random's draw. We report mean ± standard deviation over n = 3.

# %%
from course import recalibrate_bn

show(recalibrate_bn)

# %%
from tqdm.auto import tqdm
from course import train

UNIT_CRITERIA = ["l1", "bn_gamma", "next_layer", "taylor", "random"]
SEEDS = fast([0, 1, 2], [0, 1])
CALIB = list(itertools.islice(train_loader, 20))             # the same 20 batches recalibrate every model
stages = {}                                                  # (criterion, seed) -> (one-shot, recalibrated, tuned)
for crit, seed in tqdm(list(itertools.product(UNIT_CRITERIA, SEEDS)), desc="criteria × seeds"):
    train_loader.generator.manual_seed(seed)
    pruned = prune_structured(vgg, RATIO, criterion=crit, data=list(itertools.islice(train_loader, 4)), seed=seed,
                              exclude=["fc1"])
    one_shot = evaluate(pruned, test_loader)
    recalibrated = evaluate(recalibrate_bn(pruned, CALIB), test_loader)
    train_loader.generator.manual_seed(seed)
    train(pruned, train_loader, epochs=1, lr=0.01, seed=seed, progress=False)
    stages[crit, seed] = (one_shot, recalibrated, evaluate(pruned, test_loader))

# %%
import statistics


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    values = list(values)
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


crit_stats = {crit: [mean_std(stages[crit, s][i] for s in SEEDS) for i in range(3)] for crit in UNIT_CRITERIA}
Table(["criterion", "one-shot", "+ BN recalibration", "after 1 epoch of fine-tuning"],
      [(crit, *(f"{100 * m:.2f} ± {100 * sd:.2f}" for m, sd in crit_stats[crit])) for crit in UNIT_CRITERIA],
      title=f"VGGSmall on {DATASET}, ratio {RATIO} of every conv's filters: test accuracy (%), mean ± std, "
            f"n = {len(SEEDS)} seeds",
      note=f"dense {base_acc['VGGSmall']:.2%}; fine-tuning: 1 epoch over {len(train_loader.dataset):,} images, lr 0.01")

# %%
fig, ax = plt.subplots(figsize=(9, 3.6))
width = 0.27
for i, (label, color) in enumerate(zip(["one-shot", "+ BN recalibration", "after 1 epoch of fine-tuning"],
                                       ["#bbbbbb", "#8fb3d9", "#4c72b0"])):
    xs = [j + (i - 1) * width for j in range(len(UNIT_CRITERIA))]
    ax.bar(xs, [crit_stats[c][i][0] for c in UNIT_CRITERIA], width, yerr=[crit_stats[c][i][1] for c in UNIT_CRITERIA],
           color=color, label=label, capsize=3)
ax.axhline(base_acc["VGGSmall"], color="black", ls="--", lw=1, label="dense")
ax.set(xticks=range(len(UNIT_CRITERIA)), xticklabels=UNIT_CRITERIA, ylabel="test accuracy", ylim=(0, 1),
       title=f"VGGSmall, ratio {RATIO}: mean ± std over {len(SEEDS)} seeds")
ax.legend(fontsize=8, loc="lower right")
plt.show()

# %% [markdown]
# What this run measured (table and plot above):
#
# - **One-shot**, every criterion leaves VGGSmall far below the dense model, several at chance: half of every
#   convolution's filters is a big cut, and every BatchNorm downstream of a cut normalises with stale statistics.
# - **Recalibrating BatchNorm** costs a few forward passes and changes the picture: the next layer's norm gains the
#   most (tens of points), BN-γ and random gain too, L1 gains nothing. One-shot numbers without recalibration mostly
#   measure stale statistics, not the criterion.
# - **After one epoch of fine-tuning** the criteria end within a few points of each other: fine-tuning repairs
#   most of what any of them removed. The next layer's norm ends ahead of every other criterion, by more than the
#   seeds' spread. **BN-γ does not beat L1** here: its mean is a little lower, within the spread of three seeds.
#   Network Slimming ranks by γ *after training with an L1 penalty on γ*, which drives unneeded units' γ toward
#   zero; on a network trained without that penalty, a small γ is a weaker sign of an unneeded unit. Group Taylor
#   (four batches) ends within the seeds' spread of random: a first-order estimate from 512 images is noisy, and the
#   paper accumulates it over many more batches during fine-tuning.
# - The order of the criteria one-shot, after recalibration and after fine-tuning is not the same: judge a
#   structured criterion after the fine-tune you will actually run, with the control (random) and several seeds.

# %%
after = {c: crit_stats[c][2][0] for c in UNIT_CRITERIA}
recal = {c: crit_stats[c][1][0] for c in UNIT_CRITERIA}
one = {c: crit_stats[c][0][0] for c in UNIT_CRITERIA}
print("after fine-tuning, best to worst:", " > ".join(sorted(after, key=after.get, reverse=True)))
spread = {stage: max(v.values()) - min(v.values()) for stage, v in (("recal", recal), ("after", after))}
sd = {c: crit_stats[c][2][1] for c in UNIT_CRITERIA}
claim(all(one[c] < base_acc["VGGSmall"] - 0.5 for c in UNIT_CRITERIA),
      "one-shot, every criterion leaves VGGSmall more than 50 points below the dense model")
claim(recal["next_layer"] - one["next_layer"] > 0.2 and recal["l1"] - one["l1"] < 0.02,
      "recalibrating BatchNorm gains the next layer's norm tens of points and L1 nothing")
claim(spread["after"] < 0.25 * spread["recal"], "after fine-tuning the criteria are within a few points of each other")
claim(all(after["next_layer"] - after[c] > sd["next_layer"] + sd[c] for c in UNIT_CRITERIA if c != "next_layer"),
      "the next layer's norm ends ahead of every other criterion by more than the seeds' spread")
claim(after["bn_gamma"] - after["l1"] < sd["bn_gamma"] + sd["l1"],
      "BN-γ does not beat L1 after fine-tuning (n = 3)")
claim(abs(after["taylor"] - after["random"]) < sd["taylor"] + sd["random"],
      "group Taylor ends within the seeds' spread of random")

# %% [markdown]
# ## 2 · Measured speedup vs FLOP reduction
#
# Removing a fraction *r* of the filters of two consecutive convolutions shrinks the second one's input *and*
# output channels, so its FLOPs fall to about (1 − r)²: ratio 0.5 should make the convolutions about 4× cheaper.
# Count it yourself first.
#
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
from course.checks import check_conv_flops
check_conv_flops(conv_flops)

# %% [markdown]
# Compare with the library's count, `count_flops(model).layers` (`torch.utils.flop_counter` on one forward pass),
# for VGGSmall's conv4 (14×14 inputs) dense and at ratio 0.5:

# %%
hw = (input_shape(DATASET)[1] // 2, input_shape(DATASET)[2] // 2)      # conv3 and conv4 run after one 2×2 pool
for name, model in (("dense", vgg), (f"ratio {RATIO}", slim["VGGSmall"])):
    print(f"conv4, {name}: yours {conv_flops(model.conv4, hw):,} FLOPs, count_flops "
          f"{count_flops(model).layers['conv4']['dense']:,}")
print(f"reduction: {conv_flops(vgg.conv4, hw) / conv_flops(slim['VGGSmall'].conv4, hw):.1f}×")

# %% [markdown]
# But FLOPs are arithmetic, and latency is what you wait for. `slim_sweep` (in `course/lessons/speedups.py`) prunes
# with `prune_structured` at several ratios, counts FLOPs and times each slim model against the dense one with
# `course.latency` (best of interleaved rounds), at batch 256 and batch 1.

# %%
from course import slim_sweep

MIN_RUN_TIME = fast(0.2, 0.05)   # seconds of repeated runs per median
ROUNDS = fast(2, 1)              # interleaved rounds, each on a fresh copy; the best one counts
RATIOS = fast([0.25, 0.5, 0.7], [0.3, 0.6])
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

# %% [markdown]
# Most measured points fall **below** the line y = x: the slim models are faster, but by less than their FLOP
# reduction. The gap is widest at batch 1, where LeNet-5 turns only a small part of its FLOP cut into speed, and a
# slim model can even be slower than the dense one. "Fewer FLOPs" is a property of the model; "faster" is a property
# of the model *on a machine at a batch size*.

# %%
points = [dict(r, model=name) for name, t in sweep.items() for r in t]
below = [p for p in points if p["speedup ×"] < p["FLOPs ×"]]
for name in sweep:
    for b in (1, 256):
        share = [p["speedup ×"] / p["FLOPs ×"] for p in points if p["model"] == name and p["batch"] == b]
        print(f"{name}, batch {b}: speedup ÷ FLOP reduction from {min(share):.0%} to {max(share):.0%}")
print(f"{len(below)} of {len(points)} points below y = x; slower than dense: "
      + (", ".join(f"{p['model']} ratio {p['ratio']:.0%} batch {p['batch']} ({p['speedup ×']:.2f}×)"
                   for p in points if p["speedup ×"] < 1) or "none"))
r_best = max(RATIOS)
vgg256 = {r["ratio"]: r for r in sweep["VGGSmall"] if r["batch"] == 256}
lenet1 = {r["ratio"]: r for r in sweep["LeNet-5"] if r["batch"] == 1}
claim(len(below) >= 0.75 * len(points), "most measured points fall below y = x")
claim(lenet1[r_best]["speedup ×"] < 0.5 * lenet1[r_best]["FLOPs ×"],
      "at batch 1, LeNet-5 turns less than half of its FLOP reduction into speed")

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
# ## 3 · Unstructured vs structured: equal weights, equal FLOPs, equal latency
#
# Which is better: many scattered zeros, or fewer, whole units? "For the same budget" needs a budget, and the
# answer depends on which one. We prune LeNet-5 structurally at several ratios and build, for each, the
# competitors at each budget (Blalock et al. 2020 found pruning papers comparing methods at different, often
# unstated, budgets, and recommend reporting both the parameters and the FLOPs):
#
# - **structured**: `prune_structured(lenet, r)`, every layer loses a ratio r of its units;
# - **structured, conv1 kept**: the same with `exclude=["conv1"]`. LeNet-5's first convolution has only 6 filters
#   and reads the image at full resolution, so cutting it costs a lot of accuracy for its share of the FLOPs;
# - **unstructured, equal weights**: global magnitude pruning to exactly as many nonzero weights as the structured
#   model keeps (the global threshold is the stronger unstructured variant at a weight budget, notebook 05);
# - **unstructured, equal FLOPs**: every layer pruned to the same sparsity s = 1 − (structured FLOPs / dense FLOPs),
#   so that the FLOPs that touch a nonzero weight match the structured model's. (A global threshold would take its
#   FLOP cut from the cheap Linear layers and must zero almost every weight to reach it.)
#
# **Equal latency** needs no extra model: every unstructured model runs the dense kernels (notebook 02), so it takes
# the dense model's time, and the latency plot shows which accuracy each latency buys. Every model gets the same
# short fine-tune (1 epoch, SGD, lr 0.01, fixed in advance; masks keep pruned weights at zero), starting from the
# dense model each time. One seed: read gaps of a point or less as noise.

# %%
from course import best_of_rounds

BUDGET_RATIOS = fast([RATIO, 0.7, 0.85], [RATIO, 0.85])
KINDS = ["structured", "structured, conv1 kept", "unstructured, equal weights", "unstructured, equal FLOPs"]
dense_weights = sum(m.weight.numel() for _, m in prunable_layers(lenet))
dense_flops = count_flops(lenet).dense


def nonzero_weights(model) -> int:
    return sum(int((m.weight != 0).sum()) for _, m in prunable_layers(model))


budget = {}
for r in tqdm(BUDGET_RATIOS, desc="prune + fine-tune"):
    structured = prune_structured(lenet, r)
    share = count_flops(structured).dense / dense_flops
    models = {"structured": structured,
              "structured, conv1 kept": prune_structured(lenet, r, exclude=["conv1"]),
              "unstructured, equal weights": prune_unstructured(
                  lenet, 1 - nonzero_weights(structured) / dense_weights, scope="global"),
              "unstructured, equal FLOPs": prune_unstructured(lenet, 1 - share, scope="local")}
    for kind, model in models.items():
        before = evaluate(model, test_loader)
        train_loader.generator.manual_seed(0)
        train(model, train_loader, epochs=1, lr=0.01, seed=0, progress=False)
        budget[kind, r] = {"model": model, "weights": nonzero_weights(model) / dense_weights,
                           "flops": count_flops(model).effective / dense_flops, "before": before,
                           "after": evaluate(model, test_loader)}
ms = best_of_rounds({"dense": lenet} | {key: v["model"] for key, v in budget.items()}, [1, 256], ROUNDS,
                    min_run_time=MIN_RUN_TIME)

# %%
rows = [("dense", "–", 1.0, 1.0, base_acc["LeNet-5"], base_acc["LeNet-5"], ms["dense", 256], ms["dense", 1])]
rows += [(kind, r, v["weights"], v["flops"], v["before"], v["after"], ms[(kind, r), 256], ms[(kind, r), 1])
         for r in BUDGET_RATIOS for kind in KINDS for v in [budget[kind, r]]]
Table(["model", "ratio", "weights kept", "FLOPs kept", "acc. before FT", "acc. after FT", "ms (batch 256)",
       "ms (batch 1)"], rows, title=f"LeNet-5 on {DATASET}: structured and unstructured at equal budgets",
      formats={"weights kept": ".1%", "FLOPs kept": ".1%", "acc. before FT": ".2%", "acc. after FT": ".2%",
               "ms (batch 256)": ".3f", "ms (batch 1)": ".3f"},
      note=f"FLOPs kept: FLOPs that touch a nonzero weight; fine-tuning: 1 epoch on {len(train_loader.dataset):,} "
           f"images, seed 0; latency: best of {ROUNDS} round(s), {torch.get_num_threads()} thread(s), this machine")

# %%
COLORS = {"structured": "#c44e52", "structured, conv1 kept": "#dd8452", "unstructured, equal weights": "#4c72b0",
          "unstructured, equal FLOPs": "#55a868"}
fig, axes = plt.subplots(1, 4, figsize=(15, 3.8), sharey=True)
panels = [("weights", "share of weights kept"), ("flops", "share of FLOPs kept"),
          (256, "ms per batch of 256 (this machine)"), (1, "ms per image, batch 1 (this machine)")]
for ax, (what, label) in zip(axes, panels):
    x_of = (lambda v, key: v[what]) if isinstance(what, str) else (lambda v, key: ms[key, what])
    dense_x = 1.0 if isinstance(what, str) else ms["dense", what]
    ax.scatter([dense_x], [base_acc["LeNet-5"]], marker="*", s=150, color="black", label="dense", zorder=3)
    for kind in KINDS:
        pts = [(x_of(budget[kind, r], (kind, r)), budget[kind, r]["after"]) for r in BUDGET_RATIOS]
        ax.plot(*zip(*pts), marker="o", color=COLORS[kind], label=kind)
    ax.set(xlabel=label)
axes[0].set_ylabel("test accuracy after fine-tuning")
axes[0].legend(fontsize=7)
fig.suptitle("LeNet-5: accuracy against each budget (points: ratios " + ", ".join(map(str, BUDGET_RATIOS)) + ")",
             fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# What this run measured (the table and the plots above):
#
# - **Equal weights:** unstructured pruning keeps more accuracy than structured at every ratio, and the gap grows
#   with the ratio: it can drop the least useful weights anywhere, while structured pruning must drop whole filters,
#   good weights included.
# - **Equal FLOPs:** unstructured pruning (the same sparsity in every layer) still keeps more accuracy than the
#   structured model with the same FLOPs. But its FLOP cut is on paper: the dense kernels still execute every
#   multiplication by zero, so it runs at the dense model's speed.
# - **Keeping conv1:** the structured model that leaves LeNet-5's first convolution whole keeps far more accuracy
#   than the one that prunes it at the same ratio, and pays in FLOPs: conv1 reads the image at full resolution, so
#   its 6 filters carry a large share of the FLOPs, and with few filters each one lost is costly.
# - **Equal latency:** at batch 256, the structured models are the only ones faster than the dense model (those
#   that keep conv1 only a little: conv1 keeps its FLOPs); every unstructured model takes about the dense model's
#   time. So at any latency below the
#   dense one, structured pruning is the one of the two that gets there, and its accuracy is the price. At batch 1,
#   LeNet-5 is bound by per-operator overhead and the slim models gain little or nothing (§2).
#
# So the choice depends on what you are short of. For **latency on ordinary hardware**, structured pruning is the
# one that delivers, as long as the ratio stays where accuracy holds (here, not at 0.85). For **storage** or
# **transfer size**, or on hardware with sparse support, unstructured pruning keeps more accuracy per weight.

# %%
acc_of = {key: v["after"] for key, v in budget.items()}
for r in BUDGET_RATIOS:
    print(f"ratio {r}: " + ", ".join(f"{kind} {acc_of[kind, r]:.2%} ({budget[kind, r]['flops']:.0%} FLOPs)"
                                     for kind in KINDS))
S, SC, UW, UF = KINDS
claim(all(acc_of[UW, r] > acc_of[S, r] for r in BUDGET_RATIOS),
      "at equal weights, unstructured pruning keeps more accuracy than structured at every ratio")
claim(all(acc_of[UF, r] > acc_of[S, r] for r in BUDGET_RATIOS),
      "at equal FLOPs, unstructured pruning keeps more accuracy than structured at every ratio")
claim(all(acc_of[SC, r] > acc_of[S, r] and budget[SC, r]["flops"] > budget[S, r]["flops"] for r in BUDGET_RATIOS),
      "keeping conv1 buys accuracy at every ratio and costs FLOPs")
claim(max(ms[(S, r), 256] for r in BUDGET_RATIOS) < min(ms[(u, r), 256] for u in (UW, UF) for r in BUDGET_RATIOS),
      "at batch 256 every structured model runs faster than every unstructured one")

# %% [markdown]
# ## 4 · Residual connections: dependency groups
#
# LeNet-5 and VGGSmall are chains: each layer feeds only the next, so removing a unit touches one layer and its
# consumer. A **residual** network adds a block's input to its output, `relu(bn2(conv2(...)) + x)`. The addition
# needs both operands to have the same channels, so channel *c* of the block's output, of its input, of the
# previous block's output and of every layer that reads the sum are **the same channel**: they can only be removed
# together. Such a set of coupled layers is a **dependency group**. Torch-Pruning (Fang et al. 2023, *DepGraph*)
# traces the model, builds these groups automatically and prunes whole groups; `course.dependency_groups` lists the
# group of one layer, and `draw_dependency_group` draws it. Below, TinyResNet (a stem, three basic blocks, a Linear
# head), trained with the course's baseline recipe and loaded from its checkpoint.

# %%
from course import draw_dependency_group

resnet, resnet_info = train_or_load("resnet", DATASET)
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
res_flops = count_flops(resnet).dense / count_flops(slim_resnet).dense
res_ms = best_of_rounds({"dense": resnet, "slim": slim_resnet}, [256], ROUNDS, min_run_time=MIN_RUN_TIME)
print(f"parameters {count_params(resnet).total:,} -> {count_params(slim_resnet).total:,}; "
      f"FLOPs {res_flops:.2f}× fewer; measured speedup at batch 256: {res_ms['dense', 256] / res_ms['slim', 256]:.2f}×")

# %% [markdown]
# Cutting half of every group's channels at once leaves the ResNet near chance; recalibrating BatchNorm brings back
# a little; a short fine-tune brings back most of the rest. The fine-tune: up to `RES_EPOCHS` epochs over the
# fine-tuning set with a cosine learning rate from 0.01, about a minute on one CPU thread. After every epoch we
# measure **validation** accuracy and keep the best epoch's weights: the stopping point is chosen on validation,
# and the test set is read once, at the end.

# %%
RES_EPOCHS = fast(6, 1)
res_one_shot = evaluate(slim_resnet, test_loader)
tuned_resnet = recalibrate_bn(slim_resnet, CALIB)
res_recal = evaluate(tuned_resnet, test_loader)
best = {"val": -1.0}


def keep_best(model, *, epoch, history):
    """After each epoch: validation accuracy; keep a copy of the best weights."""
    acc = evaluate(model, val_loader)
    best.setdefault("curve", []).append(acc)
    if acc > best["val"]:
        best.update(val=acc, epoch=epoch, state=copy.deepcopy(model.state_dict()))


train_loader.generator.manual_seed(0)
res_history = train(tuned_resnet, train_loader, epochs=RES_EPOCHS, lr=0.01, schedule="cosine", seed=0,
                    on_epoch=keep_best)
tuned_resnet.load_state_dict(best["state"])
res_tuned = evaluate(tuned_resnet, test_loader)
res_dense = evaluate(resnet, test_loader)
print("validation accuracy per epoch: " + ", ".join(f"{a:.2%}" for a in best["curve"])
      + f"; kept epoch {best['epoch']}")
Table(["TinyResNet", "test accuracy"],
      [("dense", res_dense), (f"ratio {RATIO}, one-shot", res_one_shot), ("+ BN recalibration", res_recal),
       (f"+ fine-tuning ({best['epoch']} of {RES_EPOCHS} epochs, {res_history.seconds:.0f} s)", res_tuned)],
      title=f"TinyResNet on {DATASET}: {res_flops:.1f}× fewer FLOPs", formats={"test accuracy": ".2%"},
      note="one seed; the epoch kept is the best on validation")

# %%
claim(res_one_shot < res_tuned and res_recal < res_tuned and res_tuned > res_dense - 0.05,
      "after a minute of fine-tuning, the ResNet with half its channels is within 5 points of the dense one")

# %% [markdown]
# ## Summary
#
# - Filters and neurons are cut out physically (the layer, its BatchNorm, the next layer's inputs, a whole block
#   across a Flatten), and the slim model computes exactly what its masked twin computes. Half of every layer's
#   units, without fine-tuning, costs both models most of their accuracy.
# - Behind BatchNorm, a filter's norm says nothing: scaling VGGSmall's strongest conv3 filter tenfold down sends it
#   to the bottom of the L1 ranking and leaves the logits practically unchanged, while removing it costs accuracy.
#   BN-γ, the next layer's norm and group Taylor see past it. One-shot comparisons mostly measure stale BatchNorm
#   statistics; after recalibration and one epoch of fine-tuning (3 seeds) the next layer's norm comes out ahead,
#   BN-γ does not beat L1 (without Network Slimming's γ penalty), and all criteria end within a few points.
# - Fewer FLOPs is not the same as faster: the slim models' speedups fall short of their FLOP cuts, most of all at
#   batch 1.
# - At equal weights and at equal FLOPs, unstructured pruning keeps more accuracy than structured; structured
#   pruning is the one that turns its cut into speed with dense kernels (at batch 256), and keeping LeNet-5's first
#   convolution whole buys back much of the accuracy for some of the FLOPs.
# - Residual connections couple layers into dependency groups. The course's chain surgery refuses such graphs;
#   Torch-Pruning prunes them group by group (on chains it picks the same filters as the course's surgery), and a
#   minute of fine-tuning, stopped on validation, brings the pruned ResNet back close to the dense one.

# %%
Table(["measurement", "value"], [
    ("VGGSmall, ratio 0.5, after 1 epoch (mean ± std, n = %d): l1" % len(SEEDS),
     f"{100 * crit_stats['l1'][2][0]:.2f} ± {100 * crit_stats['l1'][2][1]:.2f}"),
    ("… bn_gamma", f"{100 * crit_stats['bn_gamma'][2][0]:.2f} ± {100 * crit_stats['bn_gamma'][2][1]:.2f}"),
    ("… next_layer", f"{100 * crit_stats['next_layer'][2][0]:.2f} ± {100 * crit_stats['next_layer'][2][1]:.2f}"),
    ("… taylor", f"{100 * crit_stats['taylor'][2][0]:.2f} ± {100 * crit_stats['taylor'][2][1]:.2f}"),
    ("… random", f"{100 * crit_stats['random'][2][0]:.2f} ± {100 * crit_stats['random'][2][1]:.2f}"),
    (f"VGGSmall ratio {r_best}, batch 256: FLOPs × / speedup ×",
     f"{vgg256[r_best]['FLOPs ×']:.1f} / {vgg256[r_best]['speedup ×']:.2f}"),
    (f"LeNet-5 ratio {r_best}, batch 1: FLOPs × / speedup ×",
     f"{lenet1[r_best]['FLOPs ×']:.1f} / {lenet1[r_best]['speedup ×']:.2f}"),
    (f"LeNet-5 ratio {RATIO} after FT: structured / conv1 kept / unstr. equal weights / unstr. equal FLOPs",
     " / ".join(f"{acc_of[kind, RATIO]:.2%}" for kind in KINDS)),
    (f"TinyResNet ratio {RATIO}: dense / one-shot / + recal / fine-tuned",
     f"{res_dense:.2%} / {res_one_shot:.2%} / {res_recal:.2%} / {res_tuned:.2%}"),
], title="This run's key numbers")

# %% [markdown]
# ## Exercises
#
# This notebook's exercises sit where their topic is taught, each before the library function it mirrors:
#
# - **Exercise 03.1**, rank filters by L1 norm: §1, before `unit_scores(model, "l1")`;
# - **Exercise 03.2**, remove one filter (conv, BatchNorm, next conv): §1.1, before `remove_units`;
# - **Exercise 03.3**, the FLOPs of a convolution: §2, before `count_flops` per layer.
#
# To go further: score VGGSmall's filters with your own function of the weights, e.g.
# `unit_scores(vgg, lambda w: w.flatten(1).norm(dim=1))`, and compare its ranking with `"bn_gamma"` using `spearman`;
# or repeat §1.3 at ratios 0.3 and 0.7: does the order of the criteria hold?

# %% [markdown]
# ## References
#
# - H. Li, A. Kadav, I. Durdanovic, H. Samet, H. P. Graf. *Pruning Filters for Efficient ConvNets.* ICLR 2017.
# - Z. Liu, J. Li, Z. Shen, G. Huang, S. Yan, C. Zhang. *Learning Efficient Convolutional Networks through Network Slimming.* ICCV 2017.
# - P. Molchanov, A. Mallya, S. Tyree, I. Frosio, J. Kautz. *Importance Estimation for Neural Network Pruning.* CVPR 2019 (code: NVlabs/Taylor_pruning).
# - S. Ioffe, C. Szegedy. *Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift.* ICML 2015.
# - S. Han et al. *MIT 6.5940 TinyML and Efficient Deep Learning Computing*, Lab 1 (fine-grained and channel pruning), Fall 2023.
# - D. Blalock, J. J. Gonzalez Ortiz, J. Frankle, J. Guttag. *What is the State of Neural Network Pruning?* MLSys 2020.
# - G. Fang, X. Ma, M. Song, M. Bi Mi, X. Wang. *DepGraph: Towards Any Structural Pruning.* CVPR 2023 (Torch-Pruning).
# - S. Han, J. Pool, J. Tran, W. J. Dally. *Learning both Weights and Connections for Efficient Neural Networks.* NeurIPS 2015.
# - T. Hoefler, D. Alistarh, T. Ben-Nun, N. Dryden, A. Peste. *Sparsity in Deep Learning: Pruning and growth for efficient inference and training in neural networks.* JMLR 2021.
# - K. He, X. Zhang, S. Ren, J. Sun. *Deep Residual Learning for Image Recognition.* CVPR 2016.
# - H. Xiao, K. Rasul, R. Vollgraf. *Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms.* arXiv:1708.07747, 2017.
