# %% [markdown]
# # 02 · Unstructured pruning
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/pruning-course/pruning-course/blob/main/notebooks/02_unstructured.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/pruning-course/pruning-course/HEAD?labpath=notebooks%2F02_unstructured.ipynb)
#
# **Unstructured pruning** sets individual weights to zero, wherever they are in a layer. The classic criterion is
# the weight's magnitude: the smallest |w| matter least (Han et al. 2015). It removes a large share of a network's
# weights at little cost in accuracy, and it is the easiest kind of pruning to do. This notebook prunes LeNet-300-100
# that way, then asks two questions that are easy to get wrong: how many **bytes** does the pruned model really
# take, and does it run any **faster**?
#
# **What you will learn**
# - how to prune single weights by magnitude with the course engine and with `torch.nn.utils.prune`, and check that both pick the same weights;
# - the pitfalls of `torch.nn.utils.prune`: a saved file twice the size until `prune.remove`, a parameter count that hides the zeros, and a model that stays dense;
# - what a pruned model costs on disk in six storage forms, and why the number of nonzeros is not the file size;
# - why zeros do not make a model faster on a CPU, where sparse (CSR) kernels break even on your machine, and which hardware does speed sparsity up.

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
import copy, torch
from course import (count_flops, count_params, evaluate, fast, from_torch_prune, get_masks, held_out_batch, latency,
                    layer_sparsity, make_loaders, prunable_layers, prune_unstructured, setup, size_table,
                    to_torch_prune, train_or_load)
setup(seed=0, threads=1)

# %% [markdown]
# `threads=1`: this notebook times models, and one thread gives the steadiest timings (on a shared or busy machine,
# multi-threaded runs wait for each other); it also makes training numbers repeatable across machines. On your own
# laptop you may raise it: everything gets faster, and the timings change.
#
# The data: MNIST. Its `.info` says which copy this machine has (the full set after `make data`, otherwise the real
# 10,000-image subset that ships with the course).

# %%
train_loader, test_loader = make_loaders("mnist", batch_size=256)
print(test_loader.dataset.info)
print(f"train images: {len(train_loader.dataset):,}, test images: {len(test_loader.dataset):,}")

# %% [markdown]
# The dense baseline is LeNet-300-100 (784-300-100-10, 266,610 parameters). `train_or_load` loads the shipped,
# checksum-verified checkpoint (it trains one only if none matches).

# %%
dense, info = train_or_load("lenet300", "mnist")
base_acc = evaluate(dense, test_loader)
print(f"LeNet-300-100 ({info['source']} checkpoint {info['file']}): test accuracy {base_acc:.2%}")
print(count_params(dense))

# %% [markdown]
# ## 1 · Magnitude pruning, two ways
#
# **The course engine.** `prune_unstructured(model, sparsity)` returns a *new* model (the dense one is kept, so we
# can always re-prune from it). Every pruned layer gets a bool buffer `prune_mask` (True = kept) and its weight holds
# zeros where the mask is False. With `scope="local"` every layer loses the same fraction; with `scope="global"` all
# weights are ranked together under one threshold, so layers end with different sparsities.

# %%
SPARSITY = 0.9
ours_local = prune_unstructured(dense, SPARSITY)                     # each layer: its 90% smallest |w| -> 0
ours_global = prune_unstructured(dense, SPARSITY, scope="global")    # one |w| threshold for all layers
acc_local, acc_global = evaluate(ours_local, test_loader), evaluate(ours_global, test_loader)
print(f"90% of the weights removed: local {acc_local:.2%}, global {acc_global:.2%} (dense {base_acc:.2%})")
print(layer_sparsity(ours_global))

# %% [markdown]
# **PyTorch's own tool.** `torch.nn.utils.prune` does the same with `l1_unstructured` (one layer at a time, the
# local scope) and `global_unstructured` (one threshold over a list of layers). Both rank by |w| and remove
# round(amount · n) weights, so they should pick exactly the weights the course engine picks.

# %%
from torch.nn.utils import prune as torch_prune

theirs_local, theirs_global = copy.deepcopy(dense), copy.deepcopy(dense)
with torch.no_grad():     # see the pitfalls below for why
    for name, layer in prunable_layers(theirs_local):
        torch_prune.l1_unstructured(layer, "weight", amount=SPARSITY)
    torch_prune.global_unstructured([(layer, "weight") for _, layer in prunable_layers(theirs_global)],
                                    pruning_method=torch_prune.L1Unstructured, amount=SPARSITY)

# %%
# NBVAL_CHECK_OUTPUT
pairs = {"local": (ours_local, theirs_local), "global": (ours_global, theirs_global)}
for scope, (ours, theirs) in pairs.items():
    masks = get_masks(ours)
    same_masks = all(torch.equal(masks[n], layer.weight_mask.bool()) for n, layer in prunable_layers(theirs))
    same_weights = all(torch.equal(dict(prunable_layers(ours))[n].weight, layer.weight) for n, layer in prunable_layers(theirs))
    print(f"{scope:>6}: same masks {same_masks}, same weights {same_weights}")

# %% [markdown]
# ### The pitfalls of `torch.nn.utils.prune`
#
# `torch.nn.utils.prune` does not zero the weight in place. It renames the parameter to `weight_orig` (the original
# values, untouched), adds a buffer `weight_mask` (a float tensor of 0s and 1s) and a forward pre-hook that computes
# `weight = weight_orig * weight_mask` before **every** forward pass. Look at what the state dict now holds:

# %%
print(list(theirs_local.state_dict()))

# %% [markdown]
# One consequence shows up before any measurement: the hook stores `weight` as the *result* of a multiplication. If
# that multiplication ran with autograd on (pruning outside `torch.no_grad()`, or any training-mode forward pass),
# `weight` is a non-leaf tensor of the autograd graph and `copy.deepcopy(model)` raises a `RuntimeError` ("Only
# Tensors created explicitly by the user (graph leaves) support the deepcopy protocol"). That is why the cell above
# prunes under `torch.no_grad()`: we copy these models below.
#
# Three more consequences, measured. **First, the file doubles.** `torch.save(model.state_dict())` writes both the
# full-size original and the full-size float mask. Only `torch_prune.remove(layer, "weight")` folds the mask into the
# weight and drops both. **Second, the parameter count hides the pruning**: the model's parameters are now
# `weight_orig`, which still holds every original value.

# %%
import os, tempfile

removed = copy.deepcopy(theirs_local)
for _, layer in prunable_layers(removed):
    torch_prune.remove(layer, "weight")                  # weight = weight_orig * weight_mask; hook, orig and mask gone
candidates = {"dense (unpruned)": dense, "torch prune, before remove": theirs_local,
              "torch prune, after remove": removed, "course masks": ours_local}
file_bytes = {}
with tempfile.TemporaryDirectory() as folder:
    for label, model in candidates.items():
        path = os.path.join(folder, "model.pt")
        torch.save(model.state_dict(), path)             # what everybody does to save a model
        file_bytes[label] = os.path.getsize(path)        # the real size of the real file
for label, model in candidates.items():
    print(f"{label:<28} file {file_bytes[label]:>10,} bytes ({file_bytes[label] / file_bytes['dense (unpruned)']:.2f}× dense)"
          f"   count_params says sparsity {count_params(model).sparsity:.1%}")

# %% [markdown]
# The course's masks cost 1 byte per weight (a bool), a quarter of the float mask. None of these files is smaller than
# the dense one: a zero stored as fp32 still takes 4 bytes. Section 2 stores the zeros in smaller ways.
#
# **Third, the model stays dense.** Pruned or not, every layer has the same shape, the same matrix multiply runs,
# and FLOP counters that look at shapes count the same FLOPs. The course's `count_flops` also reports *effective*
# FLOPs (those that touch a nonzero weight), which is what a perfect sparse kernel would do.
#
# Latency is measured with `course.latency` (`torch.utils.benchmark`: the median of many runs). A single median
# still moves with the background load, and even with where a model's weights happen to sit in memory (two copies of
# one model can differ in speed through cache effects alone). So `best_of_rounds` (from `course/timing.py`, the course's one timer) times
# every model once per round, interleaved, each round on a fresh copy, and keeps each model's best round.

# %%
from course import best_of_rounds

MIN_RUN_TIME = 0.05              # seconds of repeated runs per median
ROUNDS = fast(5, 1)              # interleaved rounds, each on a fresh copy; the best one counts
lat = best_of_rounds(candidates, [1, 256], ROUNDS, min_run_time=MIN_RUN_TIME)
for label, model in candidates.items():
    flops = count_flops(model)
    print(f"{label:<28} fc1 {tuple(model.fc1.weight.shape)}  FLOPs {flops.dense:,}  effective {flops.effective:>9,.0f}"
          f"  latency {lat[label, 1]:.3f} ms (batch 1), {lat[label, 256]:.3f} ms (batch 256)")

# %%
from IPython.display import Markdown

ratio = {key: lat[key] / lat["dense (unpruned)", key[1]] for key in lat}
Markdown(f"On this machine, at batch 256, the course-masked model takes {ratio['course masks', 256]:.2f}× the dense "
         f"time and the model after `prune.remove` {ratio['torch prune, after remove', 256]:.2f}×. Both do exactly the "
         f"dense model's arithmetic, so any gap is timing noise (background load, where the weights sit in memory). "
         f"With the hooks still on, the model takes {ratio['torch prune, before remove', 1]:.2f}× the dense time at "
         f"batch 1 and {ratio['torch prune, before remove', 256]:.2f}× at batch 256: before every forward pass the "
         f"hook rebuilds each weight (`weight_orig * weight_mask`), a fixed cost per call that weighs most when the "
         f"batch is small.")

# %% [markdown]
# **Converting between the two.** The course keeps its masks as a bool buffer next to a zeroed weight, so the
# forward pass is the plain dense one. `to_torch_prune` and `from_torch_prune` convert in both directions, so you
# can use `torch.nn.utils.prune` and the course library on the same model:

# %%
from course import show

show(from_torch_prune)

# %%
# NBVAL_CHECK_OUTPUT
back = from_torch_prune(theirs_local)                 # torch form -> course masks
there = to_torch_prune(ours_local)                    # course masks -> torch form
print("from_torch_prune gives the course's masks:",
      all(torch.equal(get_masks(back)[n], m) for n, m in get_masks(ours_local).items()))
print("to_torch_prune gives torch's masks:",
      all(torch.equal(dict(prunable_layers(there))[n].weight_mask, layer.weight_mask)
          for n, layer in prunable_layers(theirs_local)))
print("the original torch-pruned model still has its hooks:", hasattr(theirs_local.fc1, "weight_orig"))

# %% [markdown]
# ### Explore: the sparsity explorer
#
# Move the slider and watch accuracy, file size and effective FLOPs change, with the histogram of |w| and the
# threshold for one layer. Keep **granularity** on "weights" for now (notebook 03 is about the other setting, whole
# neurons). The explorer prunes a private copy; `dense` is never changed. It needs a running kernel; the plain twin
# below it, `explore_sparsity`, gives the same numbers and figure without widgets.

# %%
import matplotlib.pyplot as plt
from course import explore_sparsity, sparsity_explorer

X_held, y_held = held_out_batch("mnist", fast(1000, 500))
sparsity_explorer(dense, X_held, y_held, input_shape=(1, 28, 28), sparsity=SPARSITY)

# %%
numbers, fig = explore_sparsity(dense, X_held, y_held, 0.95, input_shape=(1, 28, 28))
print(numbers.readout())
print(numbers.details())
fig

# %% [markdown]
# ## 2 · What a pruned model really costs
#
# A pruned weight matrix can be stored in several forms (`course.export.FORMATS`); each is a `torch.save` file, and
# `size_table` measures the **real bytes** of each, raw and gzip'd:
#
# | form | what it stores per layer (n weights, k kept) |
# |---|---|
# | `dense` | the state dict with the masks removed: 4 bytes per weight, zeros included |
# | `course_masks` | dense + the bool masks: 4n + n bytes |
# | `torch_prune` | `weight_orig` + float `weight_mask`: 4n + 4n bytes |
# | `csr` | compressed sparse rows: int32 row pointers (rows + 1), int32 column indices (k), fp32 values (k) |
# | `bitmask_fp32` | one bit per position (n / 8 bytes) + the kept values in fp32 (4k bytes) |
# | `bitmask_fp16` | the same with fp16 values (2k bytes); lossy: each value is rounded to fp16 |
#
# Biases are stored dense in every form. We measure the table at several sparsities (each number is the length of
# a real file's bytes; gzip at level 9 takes a few seconds on the zero-heavy files) and show it at 90%:

# %%
from tqdm.auto import tqdm

SIZE_SPARSITIES = fast([0.0, 0.25, 0.5, 0.6, 0.75, 0.9, 0.95, 0.99], [0.0, 0.9])
tables = {s: size_table(prune_unstructured(dense, s)) for s in tqdm(SIZE_SPARSITIES, desc="size tables")}
sizes = {s: {row["format"]: row for row in table} for s, table in tables.items()}
FORMS = list(sizes[0.9])
tables[0.9]

# %% [markdown]
# And as a plot, every form across sparsities:

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
for ax, column in zip(axes, ["bytes", "gzip bytes"]):
    for form in FORMS:
        ax.plot([100 * s for s in SIZE_SPARSITIES], [sizes[s][form][column] for s in SIZE_SPARSITIES], marker="o",
                ms=3, label=form, ls="--" if form == "bitmask_fp16" else "-")
    ax.set(yscale="log", xlabel="sparsity (% of weights zero)", title=f"file size ({column})")
axes[0].set_ylabel("bytes (log scale)")
axes[1].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# **Where does CSR beat dense?** File sizes grow linearly with the number of kept weights, so we can interpolate
# linearly between the two measured sparsities around each crossing.

# %%
crossing = {}
for column in ("bytes", "gzip bytes"):
    diff = [sizes[s]["csr"][column] - sizes[s]["dense"][column] for s in SIZE_SPARSITIES]   # > 0: CSR is bigger
    crossing[column] = next((a + (b - a) * da / (da - db) for a, b, da, db
                             in zip(SIZE_SPARSITIES, SIZE_SPARSITIES[1:], diff, diff[1:]) if da > 0 >= db), None)
    print(f"CSR file smaller than dense ({column}) from a sparsity of about "
          + (f"{crossing[column]:.0%}" if crossing[column] is not None else "(not within the measured range)"))

# %% [markdown]
# The format predicts a raw crossing near 50%: CSR spends 4 bytes of value **and** 4 bytes of column index per kept
# weight, so it must keep fewer than half the weights to undercut 4 bytes per weight.
# torch's own CSR tensors use int64 indices, 8 bytes each; with those CSR needs a density below one third
# (Exercise 02.2 counts them).
#
# **Why the number of nonzeros is not the file size.** Take the CSR file at 90% sparsity apart:

# %%
import gzip, io
from course import to_bytes

pruned_90 = prune_unstructured(dense, 0.9)
csr_file = to_bytes(pruned_90, "csr")
payload = torch.load(io.BytesIO(csr_file), weights_only=True)
layers = payload["sparse"].values()
parts = {"values (fp32)": sum(e["values"].nbytes for e in layers),
         "column indices (int32)": sum(e["col"].nbytes for e in layers),
         "row pointers (int32)": sum(e["crow"].nbytes for e in layers),
         "biases (fp32, dense)": sum(t.nbytes for t in payload["dense"].values())}
parts["zip container + pickle"] = len(csr_file) - sum(parts.values())
kept = sum(e["values"].numel() for e in layers)
for what, n in parts.items():
    print(f"{what:<24} {n:>9,} bytes  {n / len(csr_file):6.1%}")
print(f"{'file':<24} {len(csr_file):>9,} bytes, for {kept:,} kept weights ({4 * kept:,} bytes as bare fp32 values)")

# %%
values = torch.cat([e["values"] for e in layers]).numpy().tobytes()
gz_values, gz_dense = len(gzip.compress(values, 9)), sizes[0.9]["dense"]["gzip bytes"]
Markdown(f"At 90% sparsity the CSR file is {len(csr_file):,} bytes, {len(csr_file) / (4 * kept):.2f}× the "
         f"{4 * kept:,} bytes of its nonzero values: the indices cost as much again, and `torch.save` wraps every "
         f"tensor in a zip archive with a pickled index ({parts['zip container + pickle']:,} bytes here). "
         f"**gzip** removes redundancy, not information: it shrinks the dense file with its runs of zeros to "
         f"{gz_dense:,} bytes ({sizes[0.9]['dense']['bytes'] / gz_dense:.1f}× smaller), but the kept fp32 values "
         f"themselves only from {len(values):,} to {gz_values:,} bytes ({len(values) / gz_values:.2f}×): their "
         f"low-order mantissa bits are close to random. The bitmask forms spend 1 bit per position instead of 32 bits "
         f"of index per kept weight, which wins above about 1/32 density, i.e. almost always.")

# %% [markdown]
# ## 3 · The "no speedup" reality
#
# Zeros in a dense weight matrix are still multiplied: the dense matrix multiply (GEMM) does not look at values. To
# skip them, the weights must be stored sparsely and multiplied by a **sparse kernel**. `to_sparse_csr` turns every
# `nn.Linear` into a CSR layer (`torch.addmm` with a sparse CSR weight). We time three versions with
# `torch.utils.benchmark` (best of interleaved rounds) across sparsities and batch sizes:
#
# - **dense**: the unpruned model;
# - **zeros**: the pruned model as it is, dense with zeros;
# - **CSR**: the pruned model with CSR weights.
#
# `csr_sweep` (in `course/speedups.py`) runs exactly that loop; the model is LeNet-300-100, then one bigger
# 2048 × 2048 Linear layer (random weights: timing does not depend on their values, only on the sparsity).

# %%
from course import break_even, csr_sweep

LAT_SPARSITIES = fast([0.0, 0.5, 0.8, 0.9, 0.95, 0.99], [0.8, 0.99])
BATCHES = fast([1, 64, 256], [1, 64])
lenet_lat = csr_sweep(dense, LAT_SPARSITIES, BATCHES, min_run_time=MIN_RUN_TIME, rounds=ROUNDS)
lenet_lat

# %%
torch.manual_seed(0)
big = torch.nn.Sequential(torch.nn.Linear(2048, 2048))
big_lat = csr_sweep(big, LAT_SPARSITIES, BATCHES, input_shape=(2048,), min_run_time=MIN_RUN_TIME,
                    rounds=ROUNDS)
big_lat

# %%
from matplotlib.ticker import NullFormatter

sweeps = {"LeNet-300-100": lenet_lat, "Linear 2048×2048": big_lat}
fig, axes = plt.subplots(len(sweeps), len(BATCHES), figsize=(10, 5.4), squeeze=False)
for i, (model_name, table) in enumerate(sweeps.items()):
    for j, b in enumerate(BATCHES):
        rows = [r for r in table if r["batch"] == b]
        x = [100 * r["sparsity"] for r in rows]
        ax = axes[i, j]
        ax.plot(x, [r["dense ms"] for r in rows], "k--", label="dense (unpruned)")
        ax.plot(x, [r["zeros ms"] for r in rows], marker="o", ms=3, label="dense with zeros")
        ax.plot(x, [r["csr ms"] for r in rows], marker="s", ms=3, label="CSR")
        ax.set(yscale="log", title=f"{model_name}, batch {b}", xlabel="sparsity (%)" if i == len(sweeps) - 1 else "")
        ax.yaxis.set_minor_formatter(NullFormatter())
    axes[i, 0].set_ylabel("latency, ms (log)")
axes[0, -1].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# **Where CSR breaks even on this machine.** For each batch size, `break_even` finds the sparsity from which on CSR
# stays at least as fast as dense (interpolating log-speedup between the measured points):

# %%
breaks = {}
for model_name, table in sweeps.items():
    for b in BATCHES:
        rows = [r for r in table if r["batch"] == b]
        breaks[model_name, b] = break_even([r["sparsity"] for r in rows], [r["csr ×"] for r in rows])
        at_top = rows[-1]
        where = "never (not within the measured range)" if breaks[model_name, b] is None else f"at {breaks[model_name, b]:.0%}"
        print(f"{model_name:<18} batch {b:>3}: CSR breaks even {where:<12} "
              f"(at {at_top['sparsity']:.0%}: {at_top['csr ×']:.2f}× dense speed)")
import statistics

zeros_speedups = [r["zeros ×"] for t in sweeps.values() for r in t]
zeros_median = statistics.median(zeros_speedups)
print(f"dense with zeros vs dense over all {len(zeros_speedups)} points: median {zeros_median:.2f}×, "
      f"from {min(zeros_speedups):.2f}× to {max(zeros_speedups):.2f}×")

# %% [markdown]
# **Why zeros alone buy nothing, and sparse kernels need so much sparsity.**
#
# - *The dense GEMM is very good at what it does.* It streams contiguous memory, keeps tiles of both matrices in
#   cache and feeds SIMD fused multiply-adds, many per clock. Multiplying by zero costs exactly as much as
#   multiplying by anything else, so "dense with zeros" runs at dense speed (the ratio above stays near 1, up to
#   timing noise).
# - *A sparse kernel does less arithmetic but more bookkeeping.* For every kept weight CSR reads a column index and
#   then gathers `x[col]` from an irregular address: indirect, hard to vectorise and unfriendly to caches. Index
#   bytes (int64 in torch) outweigh the values they point to.
# - *Small layers and batch 1 are dominated by overheads* (dispatch, format checks, allocating the output), which
#   the sparse path pays on top of the dense one. Larger layers and batches amortise them; that is why the bigger
#   Linear and larger batches break even at lower sparsity than LeNet at batch 1. The exact numbers are specific to
#   this CPU, its threads and its torch build: run the notebook on your machine and they will move.
#
# **Where hardware does accelerate sparsity.** Unstructured sparsity pays off when the hardware or the software is
# built for it:
#
# - **2:4 semi-structured sparsity** on NVIDIA Ampere and later GPUs: in every group of 4 consecutive weights, 2 are
#   zero. Sparse Tensor Cores skip them, for up to 2× matrix-multiply throughput at 50% sparsity, usually with
#   little accuracy loss after fine-tuning (Mishra et al. 2021). PyTorch exposes it as
#   `torch.sparse.to_sparse_semi_structured` (CUDA only).
# - **Sparse inference engines on CPUs**, such as Neural Magic's DeepSparse, and XNNPACK's sparse kernels for
#   mobile CPUs (Elsen et al. 2020, *Fast Sparse ConvNets*, who report sparse MobileNets 1.3-2.4× faster than their
#   dense versions on a phone CPU): they choose memory layouts and block shapes that suit sparse weights.
#
# Hoefler et al. (2021) survey when sparsity speeds up what. We do not run any of these here (they need a GPU or a
# separate runtime); the point is that the speedup comes from the **kernel and the hardware**, not from the zeros.

# %% [markdown]
# ## Summary

# %%
fmt = {key: "not within the measured range" if v is None else f"{v:.0%} sparsity" for key, v in (breaks | crossing).items()}
even = "; ".join(f"{name}, batch {b}: {fmt[name, b]}" for name, b in breaks)
Markdown(f"""
- Magnitude pruning removes {SPARSITY:.0%} of LeNet-300-100's weights at a test accuracy of {acc_local:.2%} (local
  scope) or {acc_global:.2%} (global scope), against {base_acc:.2%} dense. The course engine and
  `torch.nn.utils.prune` pick exactly the same weights.
- `torch.nn.utils.prune` saves `weight_orig` and a float `weight_mask`: the file is
  {file_bytes['torch prune, before remove'] / file_bytes['dense (unpruned)']:.2f}× the dense one until `prune.remove`,
  and `count_params` sees {count_params(theirs_local).sparsity:.1%} sparsity. Pruned or not, every model keeps its
  shapes and FLOP count; at batch 256 the pruned model took {ratio['course masks', 256]:.2f}× the dense time.
- A zero stored as fp32 still costs 4 bytes: only sparse formats shrink the file. CSR (int32 indices) is smaller than
  dense from about {fmt['bytes']}; at 90% sparsity the bitmask + fp16 file is
  {sizes[0.9]['dense']['bytes'] / sizes[0.9]['bitmask_fp16']['bytes']:.1f}× smaller than dense.
- Dense with zeros runs at dense speed (median {zeros_median:.2f}× over {len(zeros_speedups)} measurements). CSR breaks
  even, on this machine, at: {even}.
- Real speedups from unstructured sparsity need hardware or kernels built for it: 2:4 sparsity on Ampere+ GPUs,
  sparse CPU engines. Notebook 03 removes whole neurons and channels instead: fewer FLOPs on any hardware, but a
  speedup only where the work was the bottleneck (03 measures far less than the FLOP cut at batch 1).
""")

# %% [markdown]
# ## Exercises
#
# **Exercise 02.1: bitmask + fp16 bytes.** Write `bitmask_fp16_bytes(weight)`: the number of bytes needed to store
# `weight` as one bit per position (packed 8 to a byte) plus each nonzero value in fp16 (2 bytes). Count only the
# payload, no container.
#
# <details><summary>Hint</summary>
#
# n positions need ceil(n / 8) bytes of bits (a partial byte still takes a whole byte); `(weight != 0).sum()` counts
# the nonzeros. `math.ceil` or `-(-n // 8)` rounds up.
# </details>

# %%
# Exercise 02.1: bitmask + fp16 bytes
import math

def bitmask_fp16_bytes(weight):
    ### BEGIN SOLUTION
    nnz = int((weight != 0).sum())
    return math.ceil(weight.numel() / 8) + 2 * nnz
    ### END SOLUTION

# %%
from course.checks import check_bitmask_fp16_bytes, check_csr_bytes
check_bitmask_fp16_bytes(bitmask_fp16_bytes)

# %% [markdown]
# **Exercise 02.2: bytes of a CSR tensor.** Write `csr_bytes(weight)` for a 2-D fp32 weight: the bytes that
# `weight.to_sparse_csr()` allocates for its three arrays (row pointers, column indices, values). Then compare with
# the 4 bytes per weight of the dense tensor: below which density does torch's CSR tensor get smaller?
#
# <details><summary>Hint</summary>
#
# `t = weight.to_sparse_csr()` has `t.crow_indices()`, `t.col_indices()` and `t.values()`; look at their length and
# `dtype`. The row pointers have one entry per row plus one; torch's indices are int64 (8 bytes).
# </details>

# %%
# Exercise 02.2: bytes of a CSR tensor
def csr_bytes(weight):
    ### BEGIN SOLUTION
    rows = weight.shape[0]
    nnz = int((weight != 0).sum())
    return (rows + 1) * 8 + nnz * 8 + nnz * 4
    ### END SOLUTION

# %%
check_csr_bytes(csr_bytes)

# %% [markdown]
# ## References
#
# - S. Han, J. Pool, J. Tran, W. J. Dally. *Learning both Weights and Connections for Efficient Neural Networks.* NeurIPS 2015.
# - E. Elsen, M. Dukhan, T. Gale, K. Simonyan. *Fast Sparse ConvNets.* CVPR 2020.
# - A. Mishra, J. A. Latorre, J. Pool, D. Stosic, D. Stosic, G. Venkatesh, C. Yu, P. Micikevicius. *Accelerating Sparse Deep Neural Networks.* arXiv:2104.08378, 2021.
# - T. Hoefler, D. Alistarh, T. Ben-Nun, N. Dryden, A. Peste. *Sparsity in Deep Learning: Pruning and growth for efficient inference and training in neural networks.* JMLR 2021.
# - Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. *Gradient-based learning applied to document recognition.* Proc. IEEE 1998 (LeNet-300-100, MNIST).
# - PyTorch documentation: `torch.nn.utils.prune`, `torch.sparse` (CSR and semi-structured sparsity), `torch.utils.benchmark`.
# - Neural Magic DeepSparse; XNNPACK (sparse inference kernels).
