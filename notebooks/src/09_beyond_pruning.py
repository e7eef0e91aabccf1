# %% [markdown]
# # 09 · Beyond pruning: N:M sparsity, and pruning plus quantization (Deep Compression)
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/pruning-course/pruning-course/blob/main/notebooks/09_beyond_pruning.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/pruning-course/pruning-course/HEAD?labpath=notebooks%2F09_beyond_pruning.ipynb)
#
# Pruning decides *which* weights exist. Two questions remain that the notebooks so far left open. First, zeros
# scattered anywhere buy bytes but no speed on common hardware; one fine-grained pattern, **2:4**, is the exception,
# and we measure what it costs in accuracy. Second, a kept weight still costs 32 bits: **quantization** spends fewer
# bits on each one, and **Deep Compression** (Han et al. 2016) stacks pruning, quantization and entropy coding. We
# run that pipeline stage by stage on LeNet-300-100 and real MNIST digits, put it next to the paper's row, extend the
# Pareto front of notebook 07 with quantized points, and time int8 inference on this CPU.
#
# **What you will learn**
# - N:M sparsity (2:4): the pattern, its accuracy against 50% unstructured pruning, its metadata, and why sparse
#   tensor cores run it up to 2× faster;
# - quantization on its own, linear (int-b per channel) against k-means weight sharing, from 8 down to 2 bits, with
#   and without a short fine-tune;
# - the Deep Compression pipeline, prune → fine-tune → k-means → trained centroids → entropy coding, with the bytes
#   and the accuracy after every stage;
# - which wins at each size budget: pruning, quantization, or both;
# - what dynamic int8 buys in latency on a CPU, at batch 1 and 256.

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
import torch, matplotlib.pyplot as plt; from IPython.display import Markdown
from course import (evaluate, fast, get_masks, gradual_pruning, make_loaders, prune_unstructured, quantize, setup, show,
                    size_bytes, stored_size, train, train_or_load)
setup(seed=0, threads=1)    # one thread: small models, and steady latencies on a busy machine

# %% [markdown]
# The data: MNIST (`.info` says which copy this machine has: the full set after `make data`, otherwise the real
# 10,000-image subset that ships with the course). `val_size=800` carves a **validation split** out of the
# training images: fine-tuning uses the rest, choices in §3 are made on validation, and test accuracy is reported.
# One caveat: the shipped dense baseline was trained on all training images, validation ones included, so
# validation accuracies here read high; we use them only to compare variants of one pruned model.
# (`make bench` target (e) chose this notebook's recipes with dense models trained without the validation images.)

# %%
train_loader, val_loader, test_loader = make_loaders("mnist", batch_size=128, val_size=800,
                                                     train_size=fast(None, 2000))
print(train_loader.dataset.info)
print(f"train {len(train_loader.dataset):,}, validation {len(val_loader.dataset):,} (from the training images), "
      f"test {len(test_loader.dataset):,} images")
dense, info = train_or_load("lenet300", "mnist")
dense_acc = evaluate(dense, test_loader)
se = (dense_acc * (1 - dense_acc) / len(test_loader.dataset)) ** 0.5       # one standard error of a test accuracy
print(f"dense LeNet-300-100 ({info['source']} checkpoint): test accuracy {dense_acc:.2%} (± {se:.2%}, one standard "
      f"error on {len(test_loader.dataset):,} images)")

# %% [markdown]
# ## 1 · N:M sparsity
#
# **N:M sparsity** keeps N weights in every group of M consecutive weights along the input dimension. 2:4 keeps
# 2 of every 4: exactly 50% sparsity, spread evenly. NVIDIA's sparse tensor cores (Ampere, 2020, and later) multiply
# such a matrix in compressed form: the kept values (half the matrix) plus a 2-bit position for each of them. The
# metadata steers the matching activations into the multipliers, so the tensor core does half the
# multiply-accumulates of the dense product in the same time: up to 2× the dense math throughput (Mishra et al.
# 2021). Unstructured 50% has no such hardware: its zeros can fall anywhere.
#
# The pattern, drawn on a block of `fc1` (16 inputs from the middle of the image, 8 neurons). On the left, 2:4 must
# keep 2 weights of every group of 4, even where all four are large or all four are small; on the right,
# unstructured pruning keeps the largest half of the layer wherever they are.

# %%
from course import draw_nm_pattern, nm_mask
fig = draw_nm_pattern(dense.fc1.weight[:, 400:], "2:4", rows=8, cols=16)
plt.show()

# %% [markdown]
# The mask is a few tensor operations (Exercise 09.1 asks you to write it): view each row as groups of 4, rank
# |w| inside each group, keep the top 2. The library's `nm_mask` does the same, and groups a convolution's weights
# along its input channels at each kernel position (the layout of NVIDIA's ASP tool):

# %%
show(nm_mask)

# %% [markdown]
# ### 2:4 against 50% unstructured, on the same model
#
# `prune_unstructured(model, 0.5, pattern="2:4")` prunes every layer whose input dimension is a multiple of 4 (all
# three of LeNet-300-100's). The controls are 50% unstructured magnitude pruning with a per-layer (local) and a
# global threshold, on the same layers. Each is measured one-shot and after the same short fine-tune (SGD, cosine
# schedule, the same batches); `train` keeps every pruned weight at zero, so the 2:4 pattern survives fine-tuning.

# %%
from course import is_nm_sparse, nm_metadata_bytes
NM_FT = dict(epochs=fast(5, 1), lr=0.03, schedule="cosine", seed=0, progress=False)   # the recipe (e2) chose on validation
methods = {"2:4": dict(pattern="2:4"), "unstructured 50%, local": dict(scope="local"),
           "unstructured 50%, global": dict(scope="global")}
nm_results, nm_models = {}, {}
for name, kwargs in methods.items():
    pruned = prune_unstructured(dense, 0.5, **kwargs)
    one_shot = evaluate(pruned, test_loader)
    train_loader.generator.manual_seed(0)                              # the same batches for every method
    history = train(pruned, train_loader, **NM_FT)
    nm_results[name] = (one_shot, evaluate(pruned, test_loader), history.seconds)
    nm_models[name] = pruned.eval()
print(f"{'':>26} {'one-shot':>9} {'fine-tuned':>11} {'Δ vs dense':>11} {'fine-tune':>10}")
for name, (one, tuned, sec) in nm_results.items():
    print(f"{name:>26} {one:>9.2%} {tuned:>11.2%} {100 * (tuned - dense_acc):>+9.2f} pp {sec:>8.1f} s")

# %%
# NBVAL_CHECK_OUTPUT
print("still 2:4 after fine-tuning:", all(is_nm_sparse(m.weight, 2, 4) for m in (nm_models["2:4"].fc1,
                                                                                 nm_models["2:4"].fc2,
                                                                                 nm_models["2:4"].fc3)))

# %%
(nm1, nm2, _), (loc1, loc2, _), (glo1, glo2, _) = nm_results.values()
Markdown(f"One-shot, 2:4 reaches {nm1:.2%} against {loc1:.2%} (local) and {glo1:.2%} (global): "
         f"{100 * (nm1 - max(loc1, glo1)):+.2f} points against the better control. After {NM_FT['epochs']} epochs of "
         f"fine-tuning, {nm2:.2%} against {loc2:.2%} and {glo2:.2%}: {100 * (nm2 - max(loc2, glo2)):+.2f} points. "
         f"The standard error of a difference between two such accuracies is about {100 * 2 ** 0.5 * se:.2f} points.")

# %% [markdown]
# What the committed run shows: one-shot, 2:4 costs more than unstructured pruning at the same sparsity, because it
# must drop 2 weights of every group, including groups where all four matter; fine-tuning lifts every method. Whether
# a gap remains after fine-tuning cannot be read off one run when it is about one standard error, as here: `make
# bench` target (e2) repeats the comparison with 3 seeds and a learning rate chosen on validation, on LeNet-300-100
# (MNIST and Fashion-MNIST) and LeNet-5, where 2:4 skips the two convolutions (1 and 6 input channels) and the
# comparison runs on the same Linear layers.
#
# ### The metadata: what a 2:4 matrix stores
#
# A compressed 2:4 matrix stores the kept values plus, for each, its position inside its group of 4: 2 bits. In
# fp16, as sparse tensor cores run it:

# %%
nm_model = nm_models["2:4"]
kept = sum(int(m.sum()) for m in get_masks(nm_model).values())
weights = sum(m.numel() for m in get_masks(nm_model).values())
meta = nm_metadata_bytes(nm_model)
dense_fp16, nm_fp16 = 2 * weights, 2 * kept + meta
print(f"weights {weights:,}, kept {kept:,}: values {2 * kept:,} B in fp16 + metadata {meta:,} B "
      f"({kept:,} × 2 bits) = {nm_fp16:,} B, against {dense_fp16:,} B dense fp16: {dense_fp16 / nm_fp16:.2f}× smaller")
print(f"a bitmask (1 bit per position, notebook 02) of the same layers: {weights // 8:,} B")

# %% [markdown]
# So 2:4 halves the multiply-accumulates but not the bytes: the metadata takes the saving from 2× to the ratio
# above. At 50% density a 2-bit index per kept value costs exactly as much as a 1-bit-per-position bitmask; at
# higher sparsity a bitmask costs the same and an index costs less, which is why the sparse formats of notebook 02
# differ from the hardware's.
#
# ### On a GPU: `torch.sparse.to_sparse_semi_structured`
#
# torch compresses a 2:4 weight for the sparse tensor cores with `to_sparse_semi_structured`. The kernels need a
# CUDA GPU of the Ampere generation or later, fp16/bf16/int8 values and matrix sizes that are multiples of their
# tiles (LeNet's 300 × 784 is not; the demo uses a 4096 × 4096 Linear). The function below times it against the
# dense layer where CUDA is present, and does nothing otherwise:

# %%
from course import semi_structured_speedup
show(semi_structured_speedup)
result = semi_structured_speedup()          # None without CUDA
print("No CUDA GPU on this machine: the 2:4 speedup was NOT measured here." if result is None else
      f"{result['device']}: dense {result['dense_ms']:.3f} ms, 2:4 {result['sparse_ms']:.3f} ms per 4096 × 4096 "
      f"matmul of a batch of 4096: {result['speedup']:.2f}× (max |difference| {result['max_abs_diff']:.3g})")

# %% [markdown]
# ## 2 · Quantization on its own
#
# Quantization keeps every weight but stores it in fewer bits. Two ways:
#
# - **linear** (symmetric, per output channel): s = max|w| / (2^(b−1) − 1) for each row, ŵ = s · round(w / s).
#   b = 8 is int8; the grid is evenly spaced whatever the weights look like.
# - **k-means weight sharing** (Han et al. 2016): for each layer, 2^b shared values (a codebook) fitted to the
#   weights by 1-D k-means, centroids initialised evenly between the smallest and largest weight (the paper's best
#   initialisation); each weight stores only a b-bit index. The values follow the weights' own distribution.
#
# `quantize(model, bits, method=...)` returns a copy whose weights *take* the quantized values: it is still a float
# model, so evaluation, training and every measurement work unchanged. The file is where the bits are saved: the
# forms `"bitmask_int8"` (int8 values and a scale per channel) and `"bitmask_codebook"` (packed b-bit indices and the
# codebook) store such a model exactly, so `stored_size` now picks them.

# %%
q4 = quantize(dense, 4, method="kmeans")
print("distinct values per layer, 4-bit k-means:",
      {name: torch.unique(getattr(q4, name).weight).numel() for name in ("fc1", "fc2", "fc3")})
print("dense:", stored_size(dense), " 4-bit k-means:", stored_size(q4), " int8:", stored_size(quantize(dense, 8)))

# %% [markdown]
# The linear quantizer is PyTorch's own fake quantizer, bit for bit (zero point 0, range ±(2^(b−1) − 1)):

# %%
# NBVAL_CHECK_OUTPUT
w = dense.fc2.weight.detach()
q8 = quantize(dense, 8).fc2.weight.detach()
scale = w.abs().amax(dim=1) / 127
print("quantize(..., 8) == torch.fake_quantize_per_channel_affine:",
      torch.equal(q8, torch.fake_quantize_per_channel_affine(w, scale, torch.zeros(100, dtype=torch.int32), 0,
                                                             -127, 127)))

# %% [markdown]
# Now 8, 6, 4, 3 and 2 bits, both methods, measured right away and after one epoch of fine-tuning: k-means trains
# its centroids (`finetune_centroids`, the next section explains it), linear trains fp32 shadow weights through the
# rounding with the straight-through estimator (`finetune_linear_quantized`). "bytes" is the model's stored size,
# "xz bytes" the same file after xz (the entropy-coding stage of §3).

# %%
from course import quantization_sweep
BITS = fast([8, 6, 4, 3, 2], [8, 4, 2])
qtable = quantization_sweep(dense, BITS, train_loader, test_loader, epochs=1)
qtable

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for method, color in (("linear", "tab:blue"), ("kmeans", "tab:orange")):
    rows = [r for r in qtable if r["method"] == method]
    axes[0].plot([r["bits"] for r in rows], [100 * r["accuracy"] for r in rows], "o--", color=color,
                 label=f"{method}, no fine-tune")
    axes[0].plot([r["bits"] for r in rows], [100 * r["fine-tuned"] for r in rows], "o-", color=color,
                 label=f"{method}, 1 epoch")
    axes[1].plot([r["bits"] for r in rows], [r["bytes"] / 1000 for r in rows], "o-", color=color, label=f"{method}")
    axes[1].plot([r["bits"] for r in rows], [r["xz bytes"] / 1000 for r in rows], "o:", color=color,
                 label=f"{method} + xz")
axes[0].axhline(100 * dense_acc, color="k", lw=0.8, label="dense fp32")
axes[0].set(xlabel="bits per weight", ylabel="test accuracy (%)", title="Accuracy against bits")
axes[0].set_ylim(max(0, 100 * min(min(r["accuracy"], r["fine-tuned"]) for r in qtable) - 2), 100)
axes[1].set(xlabel="bits per weight", ylabel="KB (log)", yscale="log", title="Stored size against bits")
for ax in axes:
    ax.invert_xaxis(); ax.legend(fontsize=7)
plt.tight_layout(); plt.show()

# %%
at = {(r["method"], r["bits"]): r for r in qtable}
low = min(BITS)
worst8 = max(abs(at[m, 8]["accuracy"] - dense_acc) for m in ("linear", "kmeans"))
Markdown(f"At 8 bits both methods are within {100 * worst8:.2f} points of dense. At {low} bits, linear gives "
         f"{at['linear', low]['accuracy']:.2%} ({at['linear', low]['fine-tuned']:.2%} after one epoch) and k-means "
         f"{at['kmeans', low]['accuracy']:.2%} ({at['kmeans', low]['fine-tuned']:.2%}). The int8 file takes "
         f"{at['linear', 8]['bytes']:,} bytes at 8 bits and {at['linear', low]['bytes']:,} at {low}; the codebook "
         f"file {at['kmeans', 8]['bytes']:,} and {at['kmeans', low]['bytes']:,}.")

# %% [markdown]
# What the committed run shows: 8 and 6 bits cost nothing measurable with either method, and 4 bits little if
# anything. At 2 bits the evenly spaced linear grid (three values per row: −s, 0, s) loses several points without
# fine-tuning, while k-means, which puts its four values where the weights are, loses much less; a short fine-tune
# recovers a large part of linear's loss. The int8 file stores one byte per *nonzero* weight whatever the bits, so it shrinks
# at low bits only because more weights round to zero (a zero costs one bitmask bit); the codebook file shrinks
# with the index width, and xz shrinks both further. Fine-tuning a *dense* codebook needs a tiny learning rate
# (10⁻⁴ here, and it barely helps): a centroid's gradient is the sum over tens of thousands of weights.
#
# ## 3 · The Deep Compression pipeline
#
# Han et al. (2016) compress LeNet-300-100 40× without losing accuracy, in three stages: **pruning** (with
# retraining), **trained quantization** (k-means weight sharing, then fine-tuning the shared centroids) and
# **Huffman coding**. We run each stage here and measure the file after it. The recipe (97% global magnitude pruning
# with the cubic schedule over 20 epochs at lr 0.06, then k-means with 3 or 4 bits) comes from `make bench` target
# (e1), which chose it on a validation split; below we choose the number of bits on ours with the same rule.
#
# **Stage 1, prune and fine-tune**: gradual pruning (notebook 06) to 97% of the weights, one global threshold.

# %%
from course import layer_sparsity
SPARSITY = 0.97
torch.manual_seed(0); train_loader.generator.manual_seed(0)
pruned, _ = gradual_pruning(dense, SPARSITY, train_loader, epochs=fast(20, 2), lr=0.06, scope="global",
                            progress=False)
pruned.eval()
print(layer_sparsity(pruned))
print(f"test accuracy {evaluate(pruned, test_loader):.2%}; stored as {stored_size(pruned)}")

# %% [markdown]
# **Stage 2, trained quantization.** `quantize(pruned, bits, method="kmeans")` fits one codebook per layer to the
# *kept* weights only (the zeros stay zeros, and the mask stays). Then `finetune_centroids` trains the codebook: every
# kept weight is a copy of its centroid, w_i = c[index_i], so the gradient of a centroid is the sum of the gradients
# of its weights, ∂L/∂c_k = Σ_{i: index_i = k} ∂L/∂w_i (the paper's Eq. 3), and the indices never change. The
# course does it with the ordinary training loop: a `torch.nn.utils.parametrize` parametrization makes the codebook
# the layer's trainable tensor, and autograd sums the gradients.

# %%
from course import SharedWeights, finetune_centroids
show(SharedWeights)

# %% [markdown]
# How many bits, 3 or 4? A rule declared before looking, applied on validation: the smaller file if its validation
# accuracy stays within 0.25 points of the pruned model's; but when the two candidates' validation accuracies are
# within one standard error of each other, validation cannot tell them apart, and the tie goes to more bits.

# %%
CENTROID_FT = dict(epochs=fast(2, 1), lr=1e-3, seed=0, progress=False)    # lr: pruned layers, small clusters
pruned_val = evaluate(pruned, val_loader)
se_val = (pruned_val * (1 - pruned_val) / len(val_loader.dataset)) ** 0.5
print(f"pruned model: validation {pruned_val:.2%}, one standard error on {len(val_loader.dataset)} images {se_val:.2%}")
candidates = {}
for bits in (3, 4):
    q = quantize(pruned, bits, method="kmeans")
    train_loader.generator.manual_seed(0)
    finetune_centroids(q, train_loader, **CENTROID_FT)
    candidates[bits] = (q.eval(), evaluate(q, val_loader), size_bytes(q, stored_size(q)[0], compressed=True))
    print(f"{bits}-bit k-means + trained centroids: validation {candidates[bits][1]:.2%} "
          f"(pruned {pruned_val:.2%}), {candidates[bits][2]:,} bytes after xz")
fits = [b for b, (_, val, _) in candidates.items() if val >= pruned_val - 0.0025]
smallest = min(fits or candidates, key=lambda b: candidates[b][2])
ties = [b for b in fits if b > smallest and abs(candidates[b][1] - candidates[smallest][1]) <= se_val]
BITS_CHOSEN = max([smallest] + ties)
print(f"smallest qualifying file: {smallest} bits; ties within one standard error: {ties}; chosen: {BITS_CHOSEN} bits")

# %% [markdown]
# **The stages, measured.** Every "bytes" is the length of a real file: the smallest exact storage form of the model
# after that stage (`stored_size`), and for the last stage the same file after xz (`save_pruned(..., compress=True)`).

# %%
import tempfile
from pathlib import Path
from course import Table, load_pruned, save_pruned
kmeans = quantize(pruned, BITS_CHOSEN, method="kmeans")
trained = candidates[BITS_CHOSEN][0]
folder = Path(tempfile.mkdtemp())
path = save_pruned(trained, folder / "lenet300_deep_compression.pt.xz", stored_size(trained)[0], compress=True)
stages = [("dense", dense), (f"pruned {SPARSITY:.0%} + fine-tuned", pruned), (f"{BITS_CHOSEN}-bit k-means", kmeans),
          ("trained centroids", trained)]
dense_bytes = stored_size(dense)[1]
rows = [(name, *stored_size(m), dense_bytes / stored_size(m)[1], evaluate(m, test_loader)) for name, m in stages]
rows.append(("entropy-coded (xz)", f"{stored_size(trained)[0]} + xz", path.stat().st_size,
             dense_bytes / path.stat().st_size, evaluate(load_pruned(path, dense), test_loader)))
stage_table = Table(["stage", "form", "bytes", "ratio", "test accuracy"], rows, title="Deep Compression, stage by stage",
                    formats={"bytes": "bytes", "ratio": ".1f", "accuracy": ".2%", "test accuracy": ".2%"},
                    note="ratio = dense state_dict bytes / bytes; the last row's model is loaded back from the file")
stage_table

# %%
# NBVAL_CHECK_OUTPUT
back = load_pruned(path, dense).eval()
x, _ = next(iter(test_loader))
with torch.no_grad():
    print("the xz file loads back to identical outputs:", torch.equal(back(x), trained(x)))

# %% [markdown]
# Next to the paper. Han et al. (2016, Table 1) report for LeNet-300-100 on **full MNIST** (60,000 training images):

# %%
HAN_2016 = {"reference": {"error": 0.0164, "bytes": 1070e3}, "compressed": {"error": 0.0158, "bytes": 27e3}}  # Table 1
HAN_2016_DENSITY = {"fc1": 0.08, "fc2": 0.09, "fc3": 0.26}                                                 # Table 2
final_acc, final_bytes = rows[-1][4], rows[-1][2]
print(f"{'':>28} {'top-1 error':>12} {'size':>9} {'ratio':>7}")
for name, r in HAN_2016.items():
    print(f"{'Han et al. 2016, ' + name:>28} {r['error']:>12.2%} {r['bytes'] / 1e3:>6.0f} KB "
          f"{HAN_2016['reference']['bytes'] / r['bytes']:>6.0f}×")
print(f"{'this notebook, dense':>28} {1 - dense_acc:>12.2%} {dense_bytes / 1e3:>6.0f} KB {1:>6.0f}×")
print(f"{'this notebook, compressed':>28} {1 - final_acc:>12.2%} {final_bytes / 1e3:>6.1f} KB "
      f"{dense_bytes / final_bytes:>6.0f}×")

# %%
dens = {r.name: 1 - r.sparsity for r in layer_sparsity(pruned)}
Markdown(f"Ours: {dense_bytes / final_bytes:.0f}× smaller at {100 * (final_acc - dense_acc):+.2f} points of test "
         f"accuracy, on the data present here ({len(train_loader.dataset):,} training images of "
         f"{train_loader.dataset.info.variant} MNIST; the paper's errors are on the full test set, ours on "
         f"{len(test_loader.dataset):,} images, so the error levels are not comparable, only the ratios and the drops). "
         f"The global threshold kept {dens['fc1']:.1%} of fc1, {dens['fc2']:.1%} of fc2 and {dens['fc3']:.1%} of "
         f"fc3, where Han et al. (Table 2) keep " + ", ".join(f"{d:.0%}" for d in HAN_2016_DENSITY.values()) + ".")

# %%
r_prune, r_code, r_xz = (rows[i][2] / rows[i + 1][2] for i in (0, 1, 3))
sizes = {name: getattr(dense, name).weight.numel() for name in HAN_2016_DENSITY}
han_overall = sum(HAN_2016_DENSITY[n] * sizes[n] for n in sizes) / sum(sizes.values())
Markdown(f"Where the ratio comes from: pruning gives {r_prune:.1f}× (a fp32 value and a bitmask bit per position), "
         f"the codebook another {r_code:.2f}× ({BITS_CHOSEN}-bit indices instead of 32-bit values; the bitmask "
         f"stays), and the entropy coder {r_xz:.1f}× on top. We keep {1 - SPARSITY:.0%} of the weights, Han et al. "
         f"{han_overall:.1%}.")

# %% [markdown]
# Most of the final file is the *positions* of the kept weights (the breakdown below shows it), so the last stage
# matters as much as the first. Our ratio beats the paper's mostly because we prune harder; whether that costs more
# accuracy on full MNIST than on the subset here, this machine cannot tell.
#
# ### Stage 3: entropy coding, and why the course writes no Huffman coder
#
# Deep Compression Huffman-codes two streams: the cluster indices and the positions, stored as gaps between kept
# weights (Han's *relative index*). Here is where the bytes of the file go, then what each coder makes of the two
# streams: the order-0 entropy bound of the symbols (what any coder that treats them independently can reach at
# best), a Huffman code of them (measured, without its code tables), LZMA2 (the coder inside xz) on the same
# symbols, and LZMA2 on the bytes the course's file actually stores (a bitmask, packed indices).

# %%
from course import coding_costs, file_breakdown
file_breakdown(trained, stored_size(trained)[0])

# %%
costs = coding_costs(trained)
costs

# %%
total = costs[len(costs) - 1]
pos = [r for r in costs if r["stream"] == "positions"]
coder_gain = total["LZMA2, same symbols"] - total["Huffman"]               # same symbols, another coder
form_gain = total["LZMA2, stored"] - total["LZMA2, same symbols"]           # same coder, gaps instead of a bitmask
Markdown(f"Over all layers: stored {total['stored']:,.0f} bytes; entropy bound {total['entropy bound']:,.0f}, "
         f"Huffman {total['Huffman']:,.0f}, LZMA2 on the same symbols {total['LZMA2, same symbols']:,.0f}, LZMA2 on "
         f"the stored bytes {total['LZMA2, stored']:,.0f}. Against the {final_bytes:,}-byte xz file, a hand-written "
         f"Huffman coder would save {coder_gain:,.0f} bytes ({coder_gain / final_bytes:.1%}) before paying for its "
         f"code tables, and storing positions as gaps rather than a bitmask another {form_gain:,.0f} bytes "
         f"({form_gain / final_bytes:.1%}) with the same coder.")

# %% [markdown]
# What the committed run shows: on the large streams LZMA2 (an LZ77 match finder with an adaptive range coder) lands
# close to Huffman and to the order-0 bound; on the tiny ones (fc3) its fixed overhead shows. A Huffman coder would
# shave a few percent off the final file and then add its code tables, its own file format and its own tests. The
# course uses `xz` from Python's standard library as the entropy-coding stage (`compress=True`) and writes no Huffman
# coder. About as much again is in *what* is coded: positions as gaps compress better than the same positions as a
# bitmask. The course keeps the bitmask, the form every sparse file here shares since notebook 02, and shows the
# difference rather than hiding it.
#
# ## 4 · Pruning, quantization, or both? The Pareto front of 07, extended
#
# Notebook 07 drew accuracy against size for pruned models only. Now three families share the axes: **pruning**
# (global magnitude, briefly fine-tuned), **quantization** of the dense model (int8, k-means), and **both** (pruned,
# fine-tuned, then quantized). `Config` takes an optional `quant`; `sweep` builds each point from the kept original
# and measures it; size is the smallest exact file (`stored_size`), so quantized points are sized as int8 or
# codebook files. (Latency is measured too, but a quantized model runs as a float model here; §5 measures int8
# kernels.)

# %%
from course import Config, pareto_front, pick, points_table, sweep
configs = ([Config("dense")]
           + [Config("unstructured", s, "global") for s in fast([0.5, 0.8, 0.9, 0.95, 0.98], [0.5, 0.95])]
           + [Config("dense", quant="linear", bits=8)]
           + [Config("dense", quant="kmeans", bits=b) for b in fast([4, 2], [4])]
           + [Config("unstructured", s, "global", quant="kmeans", bits=4) for s in fast([0.8, 0.9, 0.95, 0.98], [0.9])]
           + [Config("unstructured", s, "global", quant="linear", bits=8) for s in fast([0.9, 0.95], [0.9])])
points = sweep(dense, configs, train_loader, test_loader, epochs=1, lr=0.01, batch_size=64, repeats=1,
               min_run_time=fast(0.05, 0.01))
family = {p["name"]: ("dense" if p["kind"] == "dense" and not p["quant"] else "quantization" if p["kind"] == "dense"
                      else "pruning" if not p["quant"] else "both") for p in points}
front = pareto_front(points)
points_table(points, front=front, title="Operating points (★ = on the accuracy-size front)")

# %%
style = {"dense": dict(marker="*", s=160, color="k"), "pruning": dict(marker="o", s=45, color="tab:blue"),
         "quantization": dict(marker="s", s=45, color="tab:orange"), "both": dict(marker="D", s=45, color="tab:green")}
fig, ax = plt.subplots(figsize=(8, 4))
for fam, st in style.items():
    pts = [p for p in points if family[p["name"]] == fam]
    ax.scatter([p["size_bytes"] / 1e3 for p in pts], [100 * p["accuracy"] for p in pts], label=fam, zorder=3, **st)
ax.step([p["size_bytes"] / 1e3 for p in front], [100 * p["accuracy"] for p in front], where="post", color="0.5",
        lw=2, alpha=0.5, label="Pareto front", zorder=2)
ax.set(xscale="log", xlabel="smallest exact file (KB, log)", ylabel="test accuracy (%)",
       title="LeNet-300-100 on MNIST: accuracy against size")
ax.set_ylim(max(0, 100 * min(p["accuracy"] for p in points) - 1), 100 * max(p["accuracy"] for p in points) + 0.5)
ax.legend(fontsize=8, loc="lower right"); plt.tight_layout(); plt.show()

# %% [markdown]
# Which family wins at each size budget? `pick` returns the most accurate point within the budget (here read off the
# test accuracies of the sweep: a description of this front, not a model selection):

# %%
budgets = [400_000, 200_000, 100_000, 60_000, 45_000]
winners = {b: pick(points, max_size=b) for b in budgets}
for b, p in winners.items():
    print(f"file ≤ {b / 1e3:>5.0f} KB: " + ("nothing fits" if p is None else
          f"{family[p['name']]:<12} {p['name']:<36} {p['accuracy']:.2%} {p['size_bytes']:>9,} B"))

# %%
floor = sum(m.weight.numel() for m in (dense.fc1, dense.fc2, dense.fc3)) // 8
Markdown(f"No file in these forms goes below the bitmask of its positions, {floor:,} bytes for LeNet-300-100 "
         f"(one bit per weight); only the entropy-coding stage of §3 gets under it.")

# %% [markdown]
# What the committed run shows: with a generous budget, int8 of the dense model fits and loses nothing measurable.
# Below that, **both** wins every budget: at the same file size, a moderately pruned model with 4-bit codebooks keeps
# more accuracy than a model pruned hard enough to fit in fp32, and more than any quantization of the dense model,
# which cannot go below about 2 bits per weight plus its codebook. Pruning alone sits on the front only where its
# accuracy edges past a smaller combined point by less than the noise. Pruning and quantization compress different
# things (how many weights, how many bits each), so they multiply.
#
# ## 5 · Latency: dynamic int8 against fp32 on the CPU
#
# The quantized models above are float models: they save bytes on disk, not time. Int8 *kernels* save time:
# `torch.ao.quantization.quantize_dynamic` replaces each Linear by one that stores int8 weights, quantizes the
# activations per batch at run time, and multiplies in int8 (fbgemm/oneDNN). torch 2.13 marks this module as
# deprecated in favour of the separate torchao package; its eager int8 path was slower than fp32 on this course's CPU
# and needs `torch.compile`, so `dynamic_int8` uses the torch API and silences the deprecation warning. We time the
# dense and the 97%-pruned model, fp32 and int8, at batch 1 and 256, with the course's timer (each model's fastest
# of several interleaved rounds).

# %%
from course import dynamic_int8, fastest_rounds
models5 = {"fp32 dense": dense, f"fp32 pruned {SPARSITY:.0%}": pruned, "int8 dense": dynamic_int8(dense),
           f"int8 pruned {SPARSITY:.0%}": dynamic_int8(pruned)}
acc5 = {name: evaluate(m, test_loader) for name, m in models5.items()}
lat5 = fastest_rounds(models5, [1, 256], fast(5, 1), min_run_time=fast(0.3, 0.02))
print(f"{'':>18} {'accuracy':>9} {'batch 1 (ms)':>13} {'batch 256 (ms)':>15} {'× fp32 dense, 1 / 256':>22}")
for name in models5:
    l1, l256 = lat5[name, 1].median_ms, lat5[name, 256].median_ms
    print(f"{name:>18} {acc5[name]:>9.2%} {l1:>13.3f} {l256:>15.3f} "
          f"{lat5['fp32 dense', 1].median_ms / l1:>12.2f} / {lat5['fp32 dense', 256].median_ms / l256:.2f}")

# %%
r1 = lat5["fp32 dense", 1].median_ms / lat5["int8 dense", 1].median_ms
r256 = lat5["fp32 dense", 256].median_ms / lat5["int8 dense", 256].median_ms
Markdown(f"On this machine, one thread: int8 runs the dense model {r256:.2f}× as fast as fp32 at batch 256 and "
         f"{r1:.2f}× at batch 1, with test accuracy {acc5['int8 dense']:.2%} against {acc5['fp32 dense']:.2%}.")

# %% [markdown]
# What the committed run shows: at batch 256 the int8 matrix products beat fp32 clearly; at batch 1 quantizing the
# activations and the call overheads cost more than the smaller matrix products save, so int8 is no faster or
# slower. The pruned models use the same dense kernels as their dense twins (the zeros are multiplied too; notebook
# 02 measured where CSR kernels start to pay), so a difference between a pruned row and its dense row is this
# machine's noise. `make bench` target (e3) measures the ratio in one run; re-run it on a quiet machine.
#
# ## Summary

# %%
Markdown(f"Measured on MNIST ({len(train_loader.dataset):,} training images) with LeNet-300-100 (dense "
         f"{dense_acc:.2%}, {dense_bytes:,} bytes):\n\n"
         f"1. **2:4 sparsity**: one-shot {nm1:.2%} against {loc1:.2%} for 50% unstructured (local); after "
         f"{NM_FT['epochs']} epoch(s) of fine-tuning {nm2:.2%} against {loc2:.2%}. The 2-bit metadata makes an fp16 "
         f"2:4 matrix {dense_fp16 / nm_fp16:.2f}× smaller than dense, not 2×; the 2× is in the arithmetic, on sparse "
         f"tensor cores (not measured here).\n"
         f"2. **Quantization alone**: at 8 bits both methods are free; at {low} bits k-means keeps "
         f"{at['kmeans', low]['accuracy']:.2%} and linear {at['linear', low]['accuracy']:.2%} before fine-tuning.\n"
         f"3. **Deep Compression**: prune {SPARSITY:.0%} → {BITS_CHOSEN}-bit k-means → trained centroids → xz: "
         f"{final_bytes:,} bytes, {dense_bytes / final_bytes:.0f}× smaller than dense, test accuracy "
         f"{final_acc:.2%} ({100 * (final_acc - dense_acc):+.2f} points); Han et al. report 40× on full MNIST.\n"
         f"4. **Pareto front**: {sum(family[p['name']] == 'both' for p in front)} of its {len(front)} points combine pruning "
         f"and quantization.\n"
         f"5. **Dynamic int8** on this CPU: {r256:.2f}× the fp32 speed at batch 256, {r1:.2f}× at batch 1.")

# %% [markdown]
# ## Exercises
#
# **Exercise 09.1: a 2:4 mask.** Write `nm_mask_2_4(weight)`: `weight` is a 2-D tensor (rows, cols) with cols a
# multiple of 4. Return a bool tensor of the same shape that is True on the 2 largest |w| of every 4 consecutive
# entries of each row, and False elsewhere. Do not change `weight`.
#
# <details><summary>Hint</summary>
#
# `weight.abs().reshape(rows, cols // 4, 4)` puts each group of 4 in the last dimension. `.topk(2, dim=-1).indices`
# gives the positions of the 2 largest; scatter `True` there into a zero bool tensor of the same shape
# (`torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, indices, True)`), then reshape back to (rows, cols).
# </details>

# %%
# Exercise 09.1: a 2:4 mask
def nm_mask_2_4(weight):
    """Bool mask shaped like `weight`: the 2 largest |w| of every 4 consecutive entries of each row."""
    ### BEGIN SOLUTION
    rows, cols = weight.shape
    groups = weight.abs().reshape(rows, cols // 4, 4)                     # (rows, groups, 4)
    top2 = groups.topk(2, dim=-1).indices                                 # (rows, groups, 2)
    return torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, top2, True).reshape(rows, cols)
    ### END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
from course.checks import check_nm_mask
check_nm_mask(nm_mask_2_4)

# %% [markdown]
# **Exercise 09.2: the bytes of a weight-shared layer.** A layer keeps `kept` weights, which share `clusters` values
# (a k-means codebook). Write `codebook_bytes(kept, clusters)`: the bytes of its values in the `"bitmask_codebook"`
# form, that is every kept weight's index in b = ceil(log2(clusters)) bits (at least 1), packed and rounded up to
# whole bytes, plus the codebook in fp32. (The positions are the bitmask, counted separately.)
#
# <details><summary>Hint</summary>
#
# `b = max(1, math.ceil(math.log2(clusters)))`; the indices take `math.ceil(kept * b / 8)` bytes and the codebook
# `4 * clusters`. Compare with Han et al.'s Eq. 1, where n weights sharing k values cost n·log2(k) + 32·k bits.
# </details>

# %%
# Exercise 09.2: the bytes of a weight-shared layer
import math
def codebook_bytes(kept, clusters):
    """Bytes of `kept` packed b-bit indices (b = max(1, ceil(log2 clusters))) plus a fp32 codebook of `clusters`."""
    ### BEGIN SOLUTION
    bits = max(1, math.ceil(math.log2(clusters)))
    return math.ceil(kept * bits / 8) + 4 * clusters
    ### END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
from course.checks import check_codebook_bytes
check_codebook_bytes(codebook_bytes)

# %% [markdown]
# ## References
#
# - S. Han, H. Mao, W. J. Dally. *Deep Compression: compressing deep neural networks with pruning, trained
#   quantization and Huffman coding.* ICLR 2016 (arXiv:1510.00149).
# - A. Mishra, J. A. Latorre, J. Pool, D. Stosic, D. Stosic, G. Venkatesh, C. Yu, P. Micikevicius. *Accelerating
#   sparse deep neural networks.* arXiv:2104.08378, 2021.
# - B. Jacob, S. Kligys, B. Chen, M. Zhu, M. Tang, A. Howard, H. Adam, D. Kalenichenko. *Quantization and training of
#   neural networks for efficient integer-arithmetic-only inference.* CVPR 2018.
# - Y. Bengio, N. Léonard, A. Courville. *Estimating or propagating gradients through stochastic neurons for
#   conditional computation.* arXiv:1308.3432, 2013.
# - M. Zhu, S. Gupta. *To prune, or not to prune: exploring the efficacy of pruning for model compression.*
#   arXiv:1710.01878, 2017.
# - Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. *Gradient-based learning applied to document recognition.* Proc.
#   IEEE, 1998.
# - D. A. Huffman. *A method for the construction of minimum-redundancy codes.* Proc. IRE, 1952.
