# %% [markdown]
# # 00 · Setup and baselines
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/pruning-course/pruning-course/blob/main/notebooks/00_setup_and_baselines.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/pruning-course/pruning-course/HEAD?labpath=notebooks%2F00_setup_and_baselines.ipynb)
#
# Every later notebook prunes a **trained dense model** and compares the result with it. This notebook sets the
# stage: it checks that your environment works, shows the datasets that are really on this machine (and says
# which are missing), and loads the dense baselines with their **report cards**. The report card holds the numbers
# pruning tries to change: accuracy, parameters, bytes, FLOPs and latency.
#
# **What you will learn**
# - how to check what the course runs on: versions, device, thread count and fast mode;
# - which datasets are on this machine, where each copy came from, and how to get the missing ones;
# - how `train_or_load` loads a verified dense baseline in seconds instead of training it;
# - how to read a report card, and why parameters, FLOPs and latency can rank the same models differently.

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
from course import (available, claim, count_params, fast, input_shape, load_dataset, make_loaders, report, setup,
                    train_or_load)
env = setup(seed=0)

# %% [markdown]
# ## 1 · The environment
#
# `setup(seed=0)` seeds Python, NumPy and torch, fixes the number of threads torch uses (so that timings are
# repeatable on one machine) and sets a modest figure size. It returns what it set. **Fast mode** (`COURSE_FAST=1`)
# is for automated tests: it shrinks data sizes, epochs and sweeps, never which code runs.

# %%
import os
import platform

import numpy as np
import torch
from course import Table

rows = [("python", platform.python_version()), ("torch", torch.__version__), ("numpy", np.__version__),
        ("device", env["device"]), ("CPU cores (os.cpu_count)", os.cpu_count()), ("torch threads", env["threads"]),
        ("fast mode (COURSE_FAST)", env["fast_mode"]), ("seed", env["seed"]), ("data folder", env["data_dir"])]
print(Table(["setting", "value"], rows, title="Environment"))

# %% [markdown]
# The course runs on a CPU. If torch finds a GPU (CUDA, or Apple's MPS), the device above says so and training
# uses it; nothing in the course requires one.
#
# ## 2 · The datasets
#
# The course uses three real datasets. `load_dataset` looks for each one in a fixed order: the course's download
# cache (`make data`), an OS package (Debian's `dataset-fashion-mnist`), then a checksum-verified download. For
# MNIST there is also a copy that ships with the course: **MNIST-10k (real subset)**, the first 10,000 real MNIST
# training images, split into a training and a test part. Here we pass `download=False`, so this cell only reports
# what is already on disk. Every copy is checked against its published checksum before it is read, and its `.info`
# says exactly which copy was used.

# %%
from course import DataUnavailableError
from course import DATASET_NAMES, SPECS

present, absent = {}, {}
for name in DATASET_NAMES:
    try:
        present[name] = {split: load_dataset(name, split, download=False) for split in ("train", "test")}
    except DataUnavailableError as err:
        absent[name] = err
for name, splits in present.items():
    print(splits["train"].info, f"\n  test split: {len(splits['test']):,} images\n")
for name, err in absent.items():
    print(f"ABSENT · {err}\n")

# %% [markdown]
# One test image of each class, for every dataset that is present:

# %%
import matplotlib.pyplot as plt

fig, axes = plt.subplots(len(present), 10, figsize=(10, 1.35 * len(present)), squeeze=False)
for row, (name, splits) in zip(axes, present.items()):
    test = splits["test"]
    for label, ax in enumerate(row):
        image = test.images[int((test.labels == label).nonzero()[0, 0])]   # (C, H, W) uint8
        ax.imshow(image.permute(1, 2, 0).squeeze(-1), cmap="gray" if image.shape[0] == 1 else None)
        ax.set_title(test.classes[label], fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
    row[0].set_ylabel(test.info.title, fontsize=8, rotation=0, ha="right", va="center")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3 · The dense baselines
#
# Three models, all plain `nn.Sequential` chains so that later notebooks can cut them apart:
# **LeNet-300-100** (a fully connected 784-300-100-10 network), **LeNet-5** (two small convolutions, then three
# fully connected layers) and a **small VGG** (three blocks of two 3×3 convolutions with BatchNorm).
#
# `train_or_load(model, dataset)` looks for a checkpoint that matches the model, the dataset *variant* (`full` or
# `10k-subset`) and the training recipe. The key below is built from exactly those, with a hash of the recipe.
# It checks the file's sha256 and loads it; only when no checkpoint matches does it train (with a progress bar)
# and cache the result in `data/checkpoints/local/`. This cell loads the pairs that have a checkpoint and lists
# the others, so that it never starts a long training run unasked.

# %%
from course import RECIPES, checkpoint_key, find_checkpoint, locate

MODELS = ("lenet300", "lenet5", "vgg")
baselines, infos, missing = {}, {}, []
for dataset in present:
    for model_name in MODELS:
        key = checkpoint_key(model_name, dataset, locate(dataset).variant, RECIPES[model_name])
        if find_checkpoint(key) is None:
            missing.append((model_name, dataset, key))
            continue
        baselines[model_name, dataset], infos[model_name, dataset] = train_or_load(model_name, dataset)
rows = [(m, d, i["variant"], i["source"], i["recipe"]["epochs"], i["test_accuracy"], i["train_seconds"], i["key"])
        for (m, d), i in infos.items()]
print(Table(["model", "dataset", "variant", "checkpoint", "epochs", "test accuracy", "train s", "key"], rows,
            title="Dense baselines", formats={"test accuracy": ".2%", "train s": ".0f"},
            note="test accuracy and training time as recorded when the checkpoint was trained (its machine)"))
for model_name, dataset, key in missing:
    print(f"no checkpoint yet for {model_name} on {dataset} ({key}): train it with "
          f"`train_or_load({model_name!r}, {dataset!r})` or "
          f"`python -m course.checkpoints --model {model_name} --dataset {dataset}` (`make baselines` trains them all)")

# %% [markdown]
# **Why LeNet-300-100 stays below the literature's 98.4% on MNIST-10k.** Han et al. (NeurIPS 2015) report 1.64% test error for
# LeNet-300-100: 98.4% accuracy after training on all 60,000 MNIST training images and testing on the official 10,000
# test images. The MNIST-10k copy that ships with the course holds the first 10,000 training images, split into 8,000
# for training and 2,000 for testing: 7.5× less training data, and with less data a network generalises less well.
# `make data` fetches full MNIST, and the same recipe then trains on all 60,000 images. A 2,000-image test split also
# measures less precisely than a 10,000-image one; the standard error of an accuracy p over n images is
# √(p(1 − p)/n):

# %%
import math

for (m, d), i in infos.items():
    n_test = len(present[d]["test"])
    print(f"{m:<9} {d:<14} {i['test_accuracy']:.2%} ± {math.sqrt(i['test_accuracy'] * (1 - i['test_accuracy']) / n_test):.2%}"
          f" (one standard error, {n_test:,} test images, {len(present[d]['train']):,} training images)")

# %% [markdown]
# Where do the parameters of LeNet-300-100 sit? `count_params` counts them per layer (weights and biases together):

# %%
lenet300 = next(model for (m, _), model in baselines.items() if m == "lenet300")
print(lenet300)
count_params(lenet300)

# %% [markdown]
# ## 4 · Report cards
#
# `report` measures each model with torch's own tools, on the test split of its dataset:
# - **accuracy**: the fraction of test images classified correctly (in fast mode, on a 1,000-image subset);
# - **params** and **nonzero**: the parameter count, and how many of them are not zero (all of them, for a dense model);
# - **dense size**: the bytes of the saved file; **stored**: the smallest lossless file (dense, CSR or bitmask + fp32
#   values), the one size of a model everywhere in the course (`stored_size`);
# - **FLOPs**: the floating-point operations of one forward pass for one image (`torch.utils.flop_counter`). Most
#   of them are **multiply-accumulates** (a **MAC**: s ← s + w·x, one multiply and one add), and one MAC counts as
#   **2 FLOPs**; papers that report "MACs" or "mult-adds" give half these numbers. **eff. FLOPs** counts only those
#   that touch a nonzero weight;
# - **latency**: the median time of one forward pass for one image on this machine (`torch.utils.benchmark`),
#   from the fastest of three rounds that time fresh copies of the models in turn (`rounds=3`: other programs on
#   the machine only ever add time); **IQR** is the interquartile range of the timed runs, the 75th minus the 25th
#   percentile: the middle half of the runs fell within that spread, so a small IQR means a steady measurement;
# - the **×** columns: each ratio against the reference model, LeNet-300-100 (above 1 means smaller or faster).

# %%
from IPython.display import display

cards = {}
for dataset in present:
    models = {m: baselines[m, dataset] for m in MODELS if (m, dataset) in baselines}
    if not models:
        continue
    _, test_loader = make_loaders(dataset, download=False)
    cards[dataset] = report(models, loader=test_loader, input_shape=input_shape(dataset),
                            reference=next(iter(models)), min_run_time=fast(0.3, 0.05), rounds=fast(3, 1))
    print(f"{test_loader.dataset.info.title}, {len(test_loader.dataset):,} test images")
    display(cards[dataset])

# %% [markdown]
# The same cards as a picture. Each model is one marker per dataset; the three panels (parameters, FLOPs, latency)
# rank the models differently.

# %%
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter

fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
colors = dict(zip(MODELS, ("C0", "C1", "C2")))
markers = dict(zip(cards, "osD"))
for dataset, card in cards.items():
    for row in card:
        for ax, column in zip(axes, ("params", "FLOPs", "latency ms")):
            ax.scatter(row[column], row["accuracy"], color=colors[row["model"]], marker=markers[dataset], s=40)
for ax, xlabel in zip(axes, ("parameters", "FLOPs per image", "latency per image (ms, this machine)")):
    ax.set(xscale="log", xlabel=xlabel, ylabel="test accuracy")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if ax is axes[0] else (1.0, 3.0)))  # few, apart
    ax.xaxis.set_major_formatter(EngFormatter(sep="") if ax is not axes[2] else "{x:g}")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter("{x:.0%}")
    ax.grid(alpha=0.3)
handles = [Line2D([], [], color=c, marker="o", ls="", label=m) for m, c in colors.items()]
handles += [Line2D([], [], color="gray", marker=mk, ls="", label=present[d]["test"].info.title) for d, mk in markers.items()]
axes[0].legend(handles=handles, fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Summary

# %%
print(f"torch {torch.__version__} on {env['device']} with {env['threads']} thread(s)"
      f"{' in fast mode' if env['fast_mode'] else ''}")
for name, splits in present.items():
    print(f"on this machine: {splits['train'].info.title}, variant {splits['train'].info.variant}, "
          f"from {splits['train'].info.source}")
for name in absent:
    print(f"absent: {SPECS[name].title} (`make data` fetches it)")
for dataset, c in cards.items():
    rows = c.rows_by_name
    print(f"{present[dataset]['test'].info.title}: " + ", ".join(f"{m} {r['accuracy']:.2%}" for m, r in rows.items()))
    claim(max(rows, key=lambda m: rows[m]["accuracy"]) != "lenet300",
          f"on {present[dataset]['test'].info.title} a convolutional model is the most accurate")
card = next(iter(cards.values())).rows_by_name
r300 = card["lenet300"]
print(f"LeNet-300-100: {r300['params']:,} parameters = {4 * r300['params']:,} bytes as float32; "
      f"its saved file: {r300['dense size']:,} bytes")
claim(4 * r300["params"] < r300["dense size"] < 1.01 * 4 * r300["params"],
      "a saved file holds a little more than its float32 parameters")
if "lenet5" in card:
    r5 = card["lenet5"]
    print(f"LeNet-5: {r300['params'] / r5['params']:.1f}× fewer parameters than LeNet-300-100, "
          f"{r5['FLOPs'] / r300['FLOPs']:.1f}× its FLOPs")
    claim(r5["params"] < r300["params"] and r5["FLOPs"] > r300["FLOPs"],
          "LeNet-5 has fewer parameters than LeNet-300-100 but needs more FLOPs")
if "vgg" in card:
    rv = card["vgg"]
    print(f"small VGG: {r300['params'] / rv['params']:.1f}× fewer parameters than LeNet-300-100, "
          f"{rv['FLOPs'] / r300['FLOPs']:.0f}× its FLOPs, {rv['latency ms'] / r300['latency ms']:.1f}× its latency "
          f"({rv['latency ms']:.2f} ms vs {r300['latency ms']:.3f} ms)")
    claim(rv["params"] < r300["params"] and rv["latency ms"] > r300["latency ms"],
          "the small VGG has fewer parameters than LeNet-300-100 yet is slower per image")

# %% [markdown]
# - **The environment and the data** are printed above: which torch, which device, which datasets this machine has
#   and where each copy came from (`make data` fetches what is absent).
# - **The baselines.** On each dataset the convolutional models were the most accurate. On MNIST-10k the accuracies
#   sit below the literature's because the shipped subset trains on 8,000 images, not 60,000.
# - **A file holds a little more than its floats:** LeNet-300-100's saved file is its parameters as float32 plus a
#   small container (names, shapes, the zip archive).
# - **Parameters and FLOPs disagree:** LeNet-5 has fewer parameters than LeNet-300-100 but needs more FLOPs per
#   image, because a convolution reuses each weight at every position.
# - **Fewer parameters is not less work:** the small VGG has fewer parameters than LeNet-300-100, yet needs many
#   times its FLOPs and is slower per image on this machine.
# - Pruning changes these numbers: the next notebooks measure how much, and which ones.

# %% [markdown]
# ## Exercises
#
# **Exercise 00.1: parameters of a Linear layer.** `nn.Linear(in_features, out_features)` computes
# `y = x Wᵀ + b`. Write `linear_params(in_features, out_features)` that returns its number of parameters. The check
# also adds up LeNet-300-100's three layers and compares with `count_params`.
#
# <details><summary>Hint</summary>
#
# `W` has shape `(out_features, in_features)`: one weight for every pair of an output and an input.
# `b` has one entry per output. Compare with the `count_params` table in §3.
# </details>

# %%
# Exercise 00.1: parameters of a Linear layer
def linear_params(in_features: int, out_features: int) -> int:
    """Number of parameters of nn.Linear(in_features, out_features), weights and biases."""
    ### BEGIN SOLUTION
    return out_features * in_features + out_features
    ### END SOLUTION

# %%
from course.checks import check_linear_params
check_linear_params(linear_params)

# %% [markdown]
# **Exercise 00.2: the dense bytes of a layer.** A dense model stores every parameter as a 32-bit float. Write
# `dense_bytes(module)` that returns how many bytes the parameters of `module` (a layer, or a whole model) take as
# float32. For an `nn.Linear(in, out)` that is `4 · (out · in + out)`. Do not change the module.
#
# <details><summary>Hint</summary>
#
# `module.parameters()` yields every parameter tensor, weights and biases, of the module and its children;
# `t.numel()` counts a tensor's entries, and `t.element_size()` gives the bytes per entry (4 for float32).
# BatchNorm's running mean and variance are *buffers*, not parameters.
# </details>

# %%
# Exercise 00.2: the dense bytes of a layer
def dense_bytes(module: torch.nn.Module) -> int:
    """Bytes of all parameters of `module` stored as float32: 4 · (number of parameters)."""
    ### BEGIN SOLUTION
    return sum(p.numel() * p.element_size() for p in module.parameters())
    ### END SOLUTION

# %%
from course.checks import check_dense_bytes
check_dense_bytes(dense_bytes)

# %% [markdown]
# ## References
#
# - Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. *Gradient-Based Learning Applied to Document Recognition.*
#   Proc. IEEE 1998. (MNIST, LeNet-5, and the 300-100 fully connected network.)
# - S. Han, J. Pool, J. Tran, W. J. Dally. *Learning both Weights and Connections for Efficient Neural Networks.*
#   NeurIPS 2015. (LeNet-300-100 on full MNIST: 1.64% test error.)
# - H. Xiao, K. Rasul, R. Vollgraf. *Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning
#   Algorithms.* arXiv:1708.07747, 2017.
# - A. Krizhevsky. *Learning Multiple Layers of Features from Tiny Images.* Technical report, University of
#   Toronto, 2009. (CIFAR-10.)
# - K. Simonyan, A. Zisserman. *Very Deep Convolutional Networks for Large-Scale Image Recognition.* ICLR 2015.
#   (The VGG design that the small VGG follows.)
