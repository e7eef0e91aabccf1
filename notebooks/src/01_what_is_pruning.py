# %% [markdown]
# # 01 · What is pruning
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/pruning-course/pruning-course/blob/main/notebooks/01_what_is_pruning.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/pruning-course/pruning-course/HEAD?labpath=notebooks%2F01_what_is_pruning.ipynb)
#
# **Pruning** removes parts of a trained network: single weights, or whole neurons and channels. The hope is a
# smaller, cheaper model that is about as accurate. This notebook starts with the simplest form. It sets single
# weights to zero, chosen by their size, in a trained LeNet-300-100, and measures what that costs in accuracy.
#
# **What you will learn**
# - what the weights of a trained network look like, and why many of them look removable;
# - that pruning is a **mask**: a tensor of True/False multiplied into the weights, in ten lines of code;
# - how far pruning by magnitude goes *without any retraining*, next to pruning at random;
# - the habit that saves hours: **keep the original model and re-prune from it**;
# - a first interactive look: a sparsity slider.
#
# Vocabulary: **sparsity** is the fraction of weights that are zero; **density** = 1 − sparsity.

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
import copy
import matplotlib.pyplot as plt, numpy as np, torch
from course import evaluate, fast, has_masks, layer_sparsity, make_loaders, prunable_layers, prune_unstructured, setup, train_or_load
from course import build_model, claim, largest_sparsity_within, prune_and_evaluate, sparsity_curve
env = setup(seed=0)

# %% [markdown]
# We use Fashion-MNIST when it is on this machine: it is harder than MNIST, so the effect of pruning shows sooner.
# Otherwise `choose_dataset` falls back to the real MNIST subset that ships with the course, and its banner says
# so (and how to get Fashion-MNIST). The dense LeNet-300-100 comes from `train_or_load`: a verified checkpoint,
# loaded in about a second (notebook 00 explains how).

# %%
from course import choose_dataset
choice = choose_dataset("fashion-mnist", fallbacks=("mnist",), download=False)    # what is on disk, never a download
choice

# %%
DATASET = choice.name
_, test_loader = make_loaders(DATASET, test_batch_size=10_000, download=False)
print(test_loader.dataset.info)
test_set = list(test_loader)             # the normalised test set as one batch, kept in memory: we evaluate it often
dense, info = train_or_load("lenet300", DATASET)
dense_acc = evaluate(dense, test_set)
print(f"\nLeNet-300-100 ({info['source']} checkpoint): test accuracy {dense_acc:.2%} on {len(test_loader.dataset):,} images")

# %% [markdown]
# ## 1 · Weights
#
# LeNet-300-100 has three fully connected layers: 784 pixels → 300 → 100 → 10 classes. Here is every weight of
# each layer, as a histogram.

# %%
layers = {name: module.weight.detach() for name, module in prunable_layers(dense)}
fig, axes = plt.subplots(1, len(layers), figsize=(10, 2.8))
for ax, (name, w) in zip(axes, layers.items()):
    ax.hist(w.flatten().numpy(), bins=120, color="C0")
    ax.set(title=f"{name}: {tuple(w.shape)}, {w.numel():,} weights", xlabel="weight value", ylabel="count")
fig.tight_layout()
plt.show()

# %% [markdown]
# Each layer's weights pile up around zero. Two numbers per layer say how much: the fraction of weights smaller
# than a tenth of the layer's largest |w|, and the share of the layer's total magnitude Σ|w| that the smaller half
# of its weights holds.

# %%
stats = {}
for name, w in layers.items():
    a = w.abs().flatten().sort().values                        # (n,) ascending
    stats[name] = {"small": float((a < 0.1 * a[-1]).float().mean()),
                   "half_mass": float(a[: a.numel() // 2].sum() / a.sum())}
    print(f"{name}: {stats[name]['small']:6.1%} of weights below 0.1·max|w|; "
          f"the smaller half holds {stats[name]['half_mass']:5.1%} of Σ|w|")

# %% [markdown]
# A weight close to zero barely changes the layer's output: its input is multiplied by almost nothing. That makes
# the **magnitude** |w| the simplest guess at a weight's importance, and the criterion Han et al. (NeurIPS 2015)
# used to prune large networks. LeCun et al. (NIPS 1989) estimated importance from the loss's curvature instead.
# Notebook 04 compares such criteria.
#
# ## 2 · A mask by hand
#
# Pruning a layer to sparsity s with magnitude takes four steps. Count the weights to remove, k = round(s·n).
# Find the k-th smallest |w|. Build a **mask** that is True for the weights to keep. Multiply it into the weights.
# Here it is for `fc1`, on a copy of the model, at 80% sparsity:

# %%
sparsity = 0.8
pruned = copy.deepcopy(dense)                          # never prune the original: work on a copy
w = pruned.fc1.weight.detach()                         # (300, 784)
k = round(sparsity * w.numel())                        # how many weights to remove
threshold = w.abs().flatten().kthvalue(k).values       # the k-th smallest |w|
mask = w.abs() > threshold                             # (300, 784) bool, True = kept
with torch.no_grad():
    pruned.fc1.weight.mul_(mask)                       # w · mask: pruned weights become exactly 0
print(f"threshold |w| = {threshold:.4f}; fc1 keeps {int(mask.sum()):,} of {mask.numel():,} weights "
      f"({1 - mask.float().mean():.1%} pruned)")
print(f"accuracy: dense {dense_acc:.2%}, fc1 pruned to {sparsity:.0%}: {evaluate(pruned, test_set):.2%}")

# %% [markdown]
# Each row of `fc1`'s mask belongs to one of its 300 neurons, and each column to one of the 784 input pixels.
# Summing the mask over the neurons shows, pixel by pixel, how many connections survived. Next to it: how much each
# pixel varies across the test images (its standard deviation), and, for each pixel, the mean |w| of its 300 weights
# after training against the same mean in the model's initialisation (rebuilt from the checkpoint's seed).

# %%
images = torch.cat([x for x, _ in test_set])                    # (N, 1, 28, 28), normalised
pixel_std = images.flatten(1).std(0)                            # (784,) how much each pixel varies
flat = pixel_std < 0.05 * pixel_std.max()                       # (784,) pixels that (almost) never change
with torch.random.fork_rng():                                   # the checkpoint's own initial weights
    torch.manual_seed(info["recipe"]["seed"])
    init = build_model("lenet300", (1, 28, 28))
w_trained, w_init = dense.fc1.weight.detach().abs(), init.fc1.weight.detach().abs()   # (300, 784)
kept = mask.sum(0).float()                                      # (784,) kept connections per pixel

fig, axes = plt.subplots(1, 3, figsize=(11, 3.1), gridspec_kw={"width_ratios": [1, 1, 1.4]})
shown = axes[0].imshow(kept.view(28, 28), cmap="viridis")
axes[0].set_title("fc1: kept connections per pixel", fontsize=9)
fig.colorbar(shown, ax=axes[0], label="of 300 neurons")
shown = axes[1].imshow(pixel_std.view(28, 28), cmap="gray")
axes[1].set_title("how much each pixel varies (std)", fontsize=9)
fig.colorbar(shown, ax=axes[1])
for ax in axes[:2]:
    ax.set_xticks([]), ax.set_yticks([])
axes[2].scatter(pixel_std, w_trained.mean(0), s=4, alpha=0.5, label="trained")
axes[2].scatter(pixel_std, w_init.mean(0), s=4, alpha=0.5, color="gray", label="at initialisation")
axes[2].set(xlabel="pixel std across test images (normalised units)", ylabel="mean |w| of its 300 weights")
axes[2].set_title("weights of a pixel vs how much it varies", fontsize=9)
axes[2].legend(fontsize=7, markerscale=3)
fig.tight_layout()
plt.show()

constant = images.flatten(1)[:, flat].mean()
grew_flat = float(w_trained[:, flat].mean() / w_init[:, flat].mean())
grew_rest = float(w_trained[:, ~flat].mean() / w_init[:, ~flat].mean())
print(f"{int(flat.sum())} of 784 pixels (almost) never change; after normalisation they hold {constant:+.2f}, not 0")
print(f"mean |w| of their weights: {w_trained[:, flat].mean():.4f} trained vs {w_init[:, flat].mean():.4f} at "
      f"initialisation ({grew_flat:.2f}×); of the other pixels' weights: {grew_rest:.2f}×")
print(f"kept connections per pixel at {sparsity:.0%} sparsity: {kept[flat].mean():.0f} of 300 for pixels that never "
      f"change, {kept[~flat].mean():.0f} for the others")
claim(0.85 < grew_flat < 1.15, "the weights of pixels that never change stay at their initial scale")
claim(grew_rest > 1.15, "the weights of pixels that vary grew during training")
claim(kept[flat].mean() < kept[~flat].mean(), "magnitude pruning cuts the most connections from pixels that never change");

# %% [markdown]
# Magnitude pruning cut the most connections from the pixels near the border and in the corners, the ones that
# hardly vary from image to image. No one told it where they were. The reason is not that these inputs are zero: the
# course normalises every pixel, x → (x − mean) / std, so a pixel that is always black holds a nonzero constant
# (printed above). Its weights do get gradients, but a neuron's weights on all such pixels get the same one (the
# constant times the neuron's error signal): together they act like one more bias, and carry nothing that tells
# images apart. So training has no reason to grow them, and they stayed at the scale of their random initialisation,
# while the weights of pixels that vary grew. Against a magnitude threshold, weights left at their initial scale are
# the first to go. (Weight decay is too weak to matter here: the uninformative weights ended where they started.)
#
# The library's `prune_unstructured(model, sparsity)` does the same to every Linear and Conv2d layer ("local"
# scope: each layer loses the same fraction). It returns a **new** model whose layers each carry their mask as a
# bool buffer `prune_mask`, so that training later can keep the pruned weights at zero. Our hand-made masks give
# the very same weights:

# %%
# NBVAL_CHECK_OUTPUT
by_hand = copy.deepcopy(dense)
for name, module in prunable_layers(by_hand):
    w = module.weight.detach()
    k = round(sparsity * w.numel())
    with torch.no_grad():
        module.weight.mul_(w.abs() > w.abs().flatten().kthvalue(k).values)
library = prune_unstructured(dense, sparsity)
print("same weights as prune_unstructured:",
      all(torch.equal(a.weight, b.weight) for (_, a), (_, b) in zip(prunable_layers(by_hand), prunable_layers(library))))
print("mask buffer of fc1:", tuple(library.fc1.prune_mask.shape), library.fc1.prune_mask.dtype)

# %%
layer_sparsity(library)

# %% [markdown]
# ## 3 · Accuracy vs sparsity
#
# How far can we go? We prune the dense model to increasing sparsities, **once** and with **no retraining**
# ("one-shot"), and measure test accuracy each time. The comparison is pruning **at random**: the same number of
# weights per layer, chosen by a seeded coin instead of by size, repeated over several seeds. Random pruning is the
# simplest control a criterion must beat; without it a curve says little about the criterion. (Blalock et al.,
# MLSys 2020, found that pruning papers often lack comparisons with simple baselines and with each other; their
# benchmark, ShrinkBench, includes random pruning.)

# %%
SPARSITIES = fast([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.96, 0.98, 0.99],
                  [0.0, 0.5, 0.9, 0.99])
SEEDS = range(fast(4, 2))
magnitude_acc = sparsity_curve(dense, SPARSITIES, test_set, criterion="magnitude")[0]      # (points,)
random_acc = sparsity_curve(dense, SPARSITIES, test_set, criterion="random", seeds=SEEDS)  # (seeds, points)
free = {tol: largest_sparsity_within(SPARSITIES, magnitude_acc, dense_acc, tol) for tol in (0.005, 0.01)}
free_random = {tol: largest_sparsity_within(SPARSITIES, random_acc.mean(0), dense_acc, tol) for tol in (0.005, 0.01)}

# %%
s = np.array(SPARSITIES)
mean, std = random_acc.mean(0), random_acc.std(0)
fig, (ax, zoom) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [3, 2]})
ax.plot(s, magnitude_acc, "o-", color="C0", label="magnitude")
ax.plot(s, mean, "s-", color="C3", label=f"random (mean ± std of {len(SEEDS)} seeds)")
ax.fill_between(s, mean - std, mean + std, color="C3", alpha=0.2)
ax.axhline(dense_acc, color="k", lw=1, label=f"dense {dense_acc:.2%}")
ax.axhline(dense_acc - 0.01, color="k", lw=1, ls=":", label="dense − 1 pp")
ax.axhline(0.1, color="gray", lw=1, ls="--", label="chance (10 classes)")
ax.axvline(free[0.01], color="C0", lw=1, ls=":")
ax.set(xlabel="sparsity (fraction of weights set to zero)", ylabel="test accuracy", ylim=(0, 1),
       title=f"One-shot pruning, no fine-tuning ({test_loader.dataset.info.title})")
ax.legend(fontsize=7, loc="lower left")
zoom.plot(s, 100 * (dense_acc - magnitude_acc), "o-", color="C0", label="magnitude")
zoom.plot(s, 100 * (dense_acc - mean), "s-", color="C3", label="random (mean)")
for tol, ls in ((0.005, "--"), (0.01, ":")):
    zoom.axhline(100 * tol, color="k", lw=1, ls=ls, label=f"{100 * tol:g} pp")
zoom.set(xlabel="sparsity", ylabel="accuracy drop (percentage points)", ylim=(-0.5, 5), title="zoom: the drop")
zoom.legend(fontsize=7, loc="upper left")
for a in (ax, zoom):
    a.grid(alpha=0.3)
fig.tight_layout()
plt.show()

# %%
at = {sp: i for i, sp in enumerate(SPARSITIES)}
hi = max(sp for sp in SPARSITIES if sp <= 0.9)
print(f"magnitude: within 1 pp of dense up to {free[0.01]:.0%} sparsity, within 0.5 pp up to {free[0.005]:.0%}")
print(f"random:    within 1 pp up to {free_random[0.01]:.0%}, within 0.5 pp up to {free_random[0.005]:.0%} "
      f"(0% = not even at the smallest nonzero sparsity tested, {SPARSITIES[1]:.0%})")
print(f"at {hi:.0%}: magnitude {magnitude_acc[at[hi]]:.1%}, random {mean[at[hi]]:.1%} ± {std[at[hi]]:.1%}; "
      f"at {SPARSITIES[-1]:.0%}: magnitude {magnitude_acc[-1]:.1%}")
claim(free[0.01] >= 0.5 > free_random[0.01], "magnitude pruning is free up to at least half the weights, random is not")
claim(magnitude_acc[at[hi]] > mean[at[hi]] + 3 * std[at[hi]], f"at {hi:.0%} magnitude is far above random")
claim(magnitude_acc[-1] < dense_acc - 0.05, f"at {SPARSITIES[-1]:.0%} magnitude pruning without retraining is no longer free");

# %% [markdown]
# In the committed run, magnitude pruning without any retraining stayed within 1 pp of the dense accuracy up to well
# past half the weights, while random pruning lost more than that early on, and at 90% sparsity magnitude was far
# above random. Near the highest sparsities even magnitude pruning collapses: that is where "free" pruning ends.
# Beyond it, the network must be retrained to recover, which notebook 06 does.

# %% [markdown]
# ## 4 · Keep the original
#
# Every library function in this course returns a **new** model and leaves the one you gave it alone (unless you
# pass `inplace=True`). That is what made the sweep above correct: each point was pruned from the same dense
# model. Check it:

# %%
# NBVAL_CHECK_OUTPUT
before = copy.deepcopy(dense.state_dict())
pruned90 = prune_unstructured(dense, 0.9)
after = dense.state_dict()
print("prune_unstructured returned a new model:", pruned90 is not dense)
print("the original is bit-for-bit unchanged:", before.keys() == after.keys()
      and all(torch.equal(before[name], after[name]) for name in before))
print("the original carries no masks:", not has_masks(dense))

# %% [markdown]
# Why it matters. **First**, pruning calls do not all mean the same thing when you call them again on a model that
# is already pruned. PyTorch's own `torch.nn.utils.prune` takes an `amount` that is a fraction of the weights
# *still left*, so repeated calls compound. The course's `sparsity` is a target for the whole layer: weights that
# are already pruned stay pruned and count toward it, so a second call with the same target changes nothing.

# %%
# NBVAL_CHECK_OUTPUT
from torch.nn.utils import prune as torch_prune

layer, course_model, torch_steps = copy.deepcopy(dense.fc1), dense, []
for step in range(1, 4):
    torch_prune.l1_unstructured(layer, "weight", amount=0.5)    # "prune 50%"... of what is left
    course_model = prune_unstructured(course_model, 0.5)        # "sparsity 50%" of the whole layer
    torch_steps.append(float((layer.weight == 0).float().mean()))
    print(f"call {step}: torch.nn.utils.prune amount=0.5 → fc1 sparsity {torch_steps[-1]:.1%};  "
          f"prune_unstructured(…, 0.5) → {layer_sparsity(course_model)['fc1'].sparsity:.1%}")

# %% [markdown]
# **Second**, a zero has no magnitude left, so a pruned model cannot be "un-pruned". Imagine a slider that prunes
# the *current* model each time you move it: 50%, then 90%, then back to 50%. The chained model is stuck at the
# highest sparsity it ever saw. Re-pruning from the original gives what you asked for.

# %%
from course import Table

rows, chained = [], dense
for target in (0.5, 0.9, 0.5):
    chained = prune_unstructured(chained, target)           # prune the pruned model (the careless slider)
    fresh = prune_unstructured(dense, target)               # re-prune from the original (the habit)
    rows.append((target, layer_sparsity(chained).overall.sparsity, evaluate(chained, test_set),
                 layer_sparsity(fresh).overall.sparsity, evaluate(fresh, test_set)))
print(Table(["requested", "chained: sparsity", "chained: accuracy", "from original: sparsity",
             "from original: accuracy"], rows, title="Moving a slider 50% → 90% → 50%",
            formats={c: ".1%" for c in ("requested", "chained: sparsity", "from original: sparsity")}
            | {c: ".2%" for c in ("chained: accuracy", "from original: accuracy")}))

# %% [markdown]
# Going *up* in sparsity, the two routes agree for magnitude pruning: the 10% largest weights are among the 50%
# largest, so the masks are nested. They stop agreeing as soon as you go back down, or when something changes the
# weights between two prunings. Fine-tuning is such a change (notebook 06 prunes and retrains on purpose, in
# steps). Keeping the original matters for the lottery-ticket experiment too (Frankle & Carbin, ICLR 2019). It rewinds
# the surviving weights to their values *before* training, so those values must still exist.

# %% [markdown]
# ## 5 · A slider
#
# A slider makes the curve of §3 tangible. `ipywidgets.interact` calls a function again each time a control moves.
# Here it calls the library's `prune_and_evaluate(model, sparsity, loader)`, which prunes a copy (from the
# original, every time) and returns the achieved sparsity, the number of weights kept and the accuracy.
# (Widgets need a live kernel. In a static view of this notebook you see one output.)

# %%
import ipywidgets as widgets

widgets.interact(prune_and_evaluate, model=widgets.fixed(dense), loader=widgets.fixed(test_set),
                 sparsity=widgets.FloatSlider(value=0.9, min=0.0, max=0.99, step=0.01, continuous_update=False),
                 criterion=["magnitude", "random"], scope=widgets.fixed("local"), seed=widgets.fixed(0));

# %% [markdown]
# The same function without widgets gives the same numbers. The sparsity and the count of weights kept do not
# depend on the data or on the machine:

# %%
# NBVAL_CHECK_OUTPUT
result = prune_and_evaluate(dense, 0.9, test_set)
print(f"sparsity {result.sparsity:.2%}: {result.nonzero:,} of {result.total:,} weights nonzero")

# %%
result

# %% [markdown]
# The course's **sparsity explorer** shows more at once: accuracy, file size, FLOPs, per-layer sparsity, the
# weight histogram with the pruning threshold, and one layer's mask. It measures on a fixed held-out batch and
# works on a private copy of the model. Try the "random" criterion and the "units" granularity (whole neurons,
# notebook 03).

# %%
from course import held_out_batch
from course import explore_sparsity, sparsity_explorer

X, y = held_out_batch(DATASET, n=fast(2000, 500), download=False)     # (n, 1, 28, 28), (n,)
sparsity_explorer(dense, X, y, input_shape=(1, 28, 28), sparsity=0.9)

# %% [markdown]
# Its plain twin, `explore_sparsity`, runs the same code once, without widgets, and returns the numbers and the
# figure:

# %%
numbers, figure = explore_sparsity(dense, X, y, 0.9, input_shape=(1, 28, 28))
print(numbers.readout())
print(numbers.details())
figure

# %% [markdown]
# ## Summary

# %%
fc1 = stats["fc1"]
print(f"fc1: {fc1['small']:.0%} of its weights below 0.1·max|w|; the smaller half holds {fc1['half_mass']:.0%} of Σ|w|")
print(f"pixels that never change: their weights at {grew_flat:.2f}× their initial mean |w|, the others' at {grew_rest:.2f}×")
print(f"within 1 pp of the dense {dense_acc:.2%}: magnitude up to {free[0.01]:.0%}, random up to {free_random[0.01]:.0%}; "
      f"at {hi:.0%}: magnitude {magnitude_acc[at[hi]]:.1%}, random {mean[at[hi]]:.1%}")
print(f"torch.nn.utils.prune amount=0.5 three times: {', '.join(f'{t:.1%}' for t in torch_steps)}")
print(f"pruned to 90%, then to 50%: chained {rows[2][1]:.0%} sparsity ({rows[2][2]:.1%}), "
      f"from the original {rows[2][3]:.0%} ({rows[2][4]:.1%})")
claim(fc1["small"] > 0.5 and fc1["half_mass"] < 0.3, "most of fc1's weights are small, and the smaller half holds little of Σ|w|")
claim(rows[2][1] > rows[2][3], "a chained model stays at the highest sparsity it saw; re-pruning from the original does not");

# %% [markdown]
# - **Weights pile up near zero.** In the trained LeNet-300-100 most of `fc1`'s weights are below a tenth of its
#   largest |w|, and the smaller half of its weights holds a small share of Σ|w|.
# - **Pruning is a mask.** k = round(s·n), the k-th smallest |w| as a threshold, `mask = |w| > threshold`,
#   `w · mask`. Done by hand for every layer, it gives the same weights as `prune_unstructured`.
# - **What magnitude removes first** are the weights of inputs that carry no information: pixels that never change
#   are nonzero constants after normalisation, and their weights stayed at their initial scale while the others grew.
# - **Part of the pruning is free.** One-shot magnitude pruning with no retraining stayed within 1 pp of the dense
#   accuracy beyond half the weights; random pruning did not even at the smallest sparsity tested. So magnitude is far
#   better than chance, but past the free region accuracy falls quickly.
# - **Keep the original.** `prune_unstructured` returned a new model and left the original bit-for-bit unchanged.
#   `torch.nn.utils.prune`'s `amount` compounds over calls. A model pruned to 90% and then "pruned to 50%" stays at
#   90%; re-pruned from the original, it is at 50%.
# - Next: what a pruned model costs on disk and in time (02), removing whole neurons and channels (03), better
#   criteria (04), and retraining to go past the free region (06).

# %% [markdown]
# ## Exercises
#
# **Exercise 01.1: a magnitude mask.** Write `magnitude_mask(weight, sparsity)` that returns a bool tensor shaped
# like `weight`, True for the weights to keep, pruning exactly round(sparsity·n) weights with the smallest |w|.
# It must work for any shape (a conv weight is 4-D) and for sparsity 0.
#
# <details><summary>Hint</summary>
#
# Follow §2: `k = round(sparsity * weight.numel())`, then `weight.abs().flatten().kthvalue(k).values` is the k-th
# smallest magnitude. `kthvalue` needs k ≥ 1, so handle k = 0 (keep everything: `torch.ones_like(weight,
# dtype=torch.bool)`) first. Keep the weights *strictly above* the threshold.
# </details>

# %%
# Exercise 01.1: a magnitude mask
def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Bool mask shaped like `weight`, True = kept, pruning the round(sparsity·n) smallest |w|."""
    ### BEGIN SOLUTION
    k = round(sparsity * weight.numel())
    if k == 0:
        return torch.ones_like(weight, dtype=torch.bool)
    threshold = weight.abs().flatten().kthvalue(k).values
    return weight.abs() > threshold
    ### END SOLUTION

# %%
from course.checks import check_magnitude_mask
check_magnitude_mask(magnitude_mask)

# %% [markdown]
# **Exercise 01.2: achieved sparsity.** Write `achieved_sparsity(model)` that returns the fraction of zeros over
# all weights of the model's `nn.Linear` and `nn.Conv2d` layers, as one number in [0, 1]. Biases and BatchNorm
# parameters do not count, since pruning never touches them. It must also work on a model whose masks were made
# permanent with `remove_masks` (zeros, no `prune_mask` buffers). Do not change the model.
#
# <details><summary>Hint</summary>
#
# Loop over `model.modules()` and keep those with `isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))`. Add up
# `(m.weight == 0).sum()` and `m.weight.numel()` over all of them, then divide once. Averaging the per-layer
# sparsities would give `fc3` (1,000 weights) as much say as `fc1` (235,200).
# </details>

# %%
# Exercise 01.2: achieved sparsity
def achieved_sparsity(model: torch.nn.Module) -> float:
    """Zeros / weights over every nn.Linear and nn.Conv2d weight of `model`."""
    ### BEGIN SOLUTION
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    zeros = sum(int((m.weight == 0).sum()) for m in layers)
    return zeros / sum(m.weight.numel() for m in layers)
    ### END SOLUTION

# %%
from course.checks import check_achieved_sparsity
check_achieved_sparsity(achieved_sparsity)

# %% [markdown]
# **Exercise 01.3: where free pruning ends.** Write `largest_within(sparsities, accuracies, reference, tol)`.
# It gets the points of a curve like §3's, sorted by sparsity, and returns the largest sparsity s such that every
# point up to s has accuracy ≥ reference − tol. Accuracies and `tol` are fractions (tol = 0.01 is 1 percentage
# point). Return 0.0 if no point qualifies.
#
# <details><summary>Hint</summary>
#
# Walk through the points in order and remember the last sparsity that is still within tolerance. Stop at the
# first point that drops more than `tol` below the reference, even if a later point comes back within it by
# chance. "Within" includes a drop of exactly `tol`.
# </details>

# %%
# Exercise 01.3: where free pruning ends
def largest_within(sparsities: list[float], accuracies: list[float], reference: float, tol: float) -> float:
    """Largest s with accuracy >= reference - tol at every point up to s; 0.0 if none."""
    ### BEGIN SOLUTION
    best = 0.0
    for s, a in zip(sparsities, accuracies):
        if a < reference - tol - 1e-12:
            break
        best = s
    return best
    ### END SOLUTION

# %%
from course.checks import check_largest_sparsity_within
check_largest_sparsity_within(largest_within)

# %% [markdown]
# ## References
#
# - Y. LeCun, J. S. Denker, S. A. Solla. *Optimal Brain Damage.* NIPS 1989.
# - S. Han, J. Pool, J. Tran, W. J. Dally. *Learning both Weights and Connections for Efficient Neural Networks.*
#   NeurIPS 2015.
# - J. Frankle, M. Carbin. *The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks.* ICLR 2019.
# - D. Blalock, J. J. Gonzalez Ortiz, J. Frankle, J. Guttag. *What is the State of Neural Network Pruning?*
#   MLSys 2020.
# - H. Xiao, K. Rasul, R. Vollgraf. *Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning
#   Algorithms.* arXiv:1708.07747, 2017.
