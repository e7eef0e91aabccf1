# %% [markdown]
# # 10 · Pruning transformers: attention heads, Wanda and SparseGPT on a tiny ViT
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/pruning-course/pruning-course/blob/main/notebooks/10_transformers.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/pruning-course/pruning-course/HEAD?labpath=notebooks%2F10_transformers.ipynb)
#
# Notebooks 01–08 pruned LeNets and a small VGG, and fine-tuned after pruning. Large language models are pruned
# differently: nobody retrains a 70-billion-parameter model to repair it, but anyone can run it on a few hundred
# calibration sequences. Two methods made that practical: **Wanda** (Sun et al. 2024), which scores a weight by its
# magnitude times the norm of the input feature it reads, and **SparseGPT** (Frantar & Alistarh 2023), which prunes
# layer by layer and *updates the weights it keeps* so that the layer's output changes as little as possible. Both
# fit on a laptop when the transformer is small. Here it is a Vision Transformer of 139,018 parameters trained on
# MNIST; the same functions apply, unchanged, to the Linear layers of an LLM.
#
# **What you will learn**
# - where the weights of a transformer are (attention q, k, v, o against the MLP), and how global magnitude pruning spreads over them;
# - post-training pruning with no fine-tuning: magnitude vs Wanda vs SparseGPT at 50–80% and 2:4, in accuracy and seconds, and why the weight update matters;
# - what outlier activation features are, and how far this model has them;
# - the Wanda score and one Optimal Brain Surgeon step, written by hand;
# - attention-head pruning (Michel et al. 2019): head importance, accuracy as heads go, and what removing heads or MLP neurons does to latency.

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
import copy, time, numpy as np, torch, matplotlib.pyplot as plt
from course import (activation_norms, compare_post_training, evaluate, fast, finetuner, head_scores, heads_curve,
                    layer_sparsity, make_loaders, outlier_table, prune_heads, prune_structured, prune_unstructured,
                    report, setup, show, sparsegpt, train_or_load, weight_census)
setup(seed=0, threads=1)  # layers this small run as fast on one thread, and time more steadily on a shared CPU

# %% [markdown]
# The data is MNIST (its `.info` says which copy this machine has). The model is the shipped ViT checkpoint, trained
# by the project's own command (`python -m course.checkpoints --model vit --dataset mnist`) with the recipe recorded
# in the manifest: AdamW (weight decay 0.05 on the weight matrices only), lr 4·10⁻³ with a 10% linear warm-up and a
# cosine decay, 40 epochs, batch 128, chosen on 1,000 held-out training images. The two CNN baselines of notebook 00
# are loaded for comparison.

# %%
train_loader, test_loader = make_loaders("mnist", batch_size=128)
print(test_loader.dataset.info)
vit, info = train_or_load("vit", "mnist")
dense_acc = evaluate(vit, test_loader)
cnn_acc = {name: evaluate(train_or_load(name, "mnist")[0], test_loader) for name in ("lenet5", "vgg")}
print(f"ViT ({info['source']} checkpoint): test accuracy {dense_acc:.2%}; trained in {info['train_seconds']:.0f} s "
      f"on {info['threads']} CPU thread(s), {info['recipe']['epochs']} epochs")
print("CNNs on the same test images:", {k: f"{v:.2%}" for k, v in cnn_acc.items()})
print(vit.blocks[0])

# %% [markdown]
# A transformer this small is **below a CNN on these images**: the numbers above put it
# under LeNet-5 and VGGSmall. A ViT has no built-in notion that neighbouring pixels belong together (a convolution
# does), so it must learn it from data, and 8,000 images are few (Dosovitskiy et al. 2021 needed ImageNet-21k and more
# before ViTs beat CNNs). We use it because it is a real transformer, with every weight in an `nn.Linear`: the
# patch embedding (a Linear on flattened 7×7 patches, 16 tokens plus a class token), and in each of its 4 blocks the
# attention projections `q`, `k`, `v`, `o` (4 heads of 16 dimensions each) and the MLP `fc1` → GELU → `fc2`.
#
# ## 1 · Where the weights of a transformer are

# %%
# NBVAL_CHECK_OUTPUT
print(weight_census(vit))

# %% [markdown]
# Attention and MLP hold the same number of weights here: q, k, v, o are four d×d matrices and the MLP two d×2d, so
# both are 4d² per block (d = 64). In LLMs the MLP is usually 4d wide (8d² against 4d²), so about two thirds of the
# weights sit in the MLPs. The patch embedding and the classifier are tiny.
#
# Which of them does **global** magnitude pruning take? One threshold on |w| for all layers at 70% overall:

# %%
S = 0.7
global_mag = prune_unstructured(vit, S, scope="global", exclude=["cls_token", "pos_embed"])   # parameters, not layers
table = layer_sparsity(global_mag)
kinds = {"q": "attention", "k": "attention", "v": "attention", "o": "attention", "fc1": "MLP", "fc2": "MLP"}
colors = {"attention": "#4c72b0", "MLP": "#dd8452", "embedding / head": "#55a868"}
kind_of = {r.name: kinds.get(r.name.rsplit(".", 1)[-1], "embedding / head") for r in table}
short = lambda name: name.replace("blocks.", "b").replace("attn.", "").replace("mlp.", "")   # "b0.q", "b3.fc2"
fig, ax = plt.subplots(figsize=(10, 3.2))
ax.bar(range(len(table.names)), [100 * r.sparsity for r in table], color=[colors[kind_of[r.name]] for r in table])
ax.set_xticks(range(len(table.names)), [short(n) for n in table.names], rotation=90, fontsize=8)
ax.axhline(100 * S, c="k", ls=":", lw=1)
for kind, c in colors.items():
    ax.bar([0], [0], color=c, label=kind)
ax.set(ylabel="sparsity of the layer (%)", title=f"global magnitude pruning at {S:.0%} overall, "
       f"accuracy {evaluate(global_mag, test_loader):.1%} without fine-tuning")
ax.legend(fontsize=8, loc="upper left");
by_kind = {k: np.mean([r.sparsity for r in table if kind_of[r.name] == k]) for k in colors}

# %%
from IPython.display import Markdown
Markdown(f"""
One threshold takes {by_kind['MLP']:.0%} of the MLP weights on average but only {by_kind['attention']:.0%} of the
attention weights, and {table['head'].sparsity:.0%} of the classifier. The MLP layers have the smallest weights, so
a global threshold lands there: magnitude alone says the MLPs are the redundant part. Whether that is right is what
a criterion that looks at the data can tell.
""")

# %% [markdown]
# ## 2 · Post-training pruning: magnitude, Wanda, SparseGPT
#
# **Why LLMs are pruned this way.** Notebooks 04–06 pruned and then fine-tuned, or pruned gradually during training.
# For a model with tens of billions of weights a fine-tune costs GPU-weeks and the training data is often not
# available; a forward pass over a *calibration set* (128 text sequences by default in the Wanda and SparseGPT code)
# costs minutes. So the methods that work at that scale prune **once, after training, layer by layer, from
# calibration inputs alone**, and never fine-tune. Each layer with inputs X (one row per token) is treated on its own:
# keep the output WX as close as possible with a sparse Ŵ.
#
# - **Magnitude**: drop the smallest |W_ij| of each layer. Blind to the inputs.
# - **Wanda**: score S_ij = |W_ij| · ‖X_j‖₂ and drop the lowest scores *of each output row*. Zeroing W_ij changes
#   output i by W_ij·x_j on every token, so |W_ij|·‖X_j‖₂ is exactly the error it causes on the calibration set.
#   One forward pass, no weight update. In the course: `prune_unstructured(model, s, criterion="wanda", data=X)`.
# - **SparseGPT**: Optimal Brain Surgeon (Hassibi & Stork 1993) on the layer-wise loss ‖WX − ŴX‖², whose Hessian is
#   H = 2XᵀX/n. Removing weight j costs w_j²/[H⁻¹]_jj, and the other weights of its row move by
#   −(w_j/[H⁻¹]_jj)·H⁻¹[j, :] to make up for it. SparseGPT makes this affordable for every row at once (section 3).
#   In the course: `sparsegpt(model, s, data)`.
#
# As in the authors' code for ViTs and LLMs, only the Linears inside the transformer blocks are pruned (q, k, v, o, fc1,
# fc2); the patch embedding and the classifier stay dense. The calibration set is 256 training images (never test
# images), 256 × 17 = 4,352 tokens.

# %%
calibration = next(iter(make_loaders("mnist", batch_size=256, seed=0)[0]))        # (X, y): 256 training images
TARGETS = fast([0.5, 0.6, 0.7, 0.8, "2:4"], [0.5, 0.7, "2:4"])
METHODS = ["magnitude", "magnitude (row)", "wanda", "sparsegpt"]
post = compare_post_training(vit, test_loader, calibration, TARGETS, methods=METHODS)
print(post)

# %%
acc = {(r["target"], r["method"]): r["accuracy"] for r in post}
labels = list(dict.fromkeys(r["target"] for r in post))
fig, ax = plt.subplots(figsize=(8, 3.4))
width = 0.8 / len(METHODS)
for k, method in enumerate(METHODS):
    ax.bar(np.arange(len(labels)) + (k - (len(METHODS) - 1) / 2) * width, [100 * acc[t, method] for t in labels],
           width=width, label=method)
ax.axhline(100 * dense_acc, c="k", ls=":", lw=1, label=f"dense {dense_acc:.1%}")
ax.set(xticks=range(len(labels)), xticklabels=labels, ylabel="test accuracy (%)", ylim=(0, 100),
       xlabel="sparsity of the blocks' Linear layers (no fine-tuning)", title="post-training pruning of the ViT")
ax.legend(fontsize=8, loc="lower left");
seconds = {m: np.mean([r["seconds"] for r in post if r["method"] == m]) for m in METHODS}

# %%
top = labels[-2] if labels[-1] == "2:4" else labels[-1]          # the highest unstructured sparsity measured
gap = lambda t: acc[t, "sparsegpt"] - acc[t, "magnitude"]
Markdown(f"""
At 50% every method stays close to dense ({dense_acc:.2%}): magnitude {acc['50%', 'magnitude']:.2%}, Wanda
{acc['50%', 'wanda']:.2%}, SparseGPT {acc['50%', 'sparsegpt']:.2%}. The methods part as sparsity grows: at {top}
SparseGPT keeps {acc[top, 'sparsegpt']:.1%}, magnitude {acc[top, 'magnitude']:.1%} and Wanda {acc[top, 'wanda']:.1%}
(a gap of {100 * gap(top):.1f} points between SparseGPT and magnitude). At 2:4 (every group of 4 inputs keeps 2,
the pattern sparse tensor cores run): magnitude {acc['2:4', 'magnitude']:.2%}, Wanda {acc['2:4', 'wanda']:.2%},
SparseGPT {acc['2:4', 'sparsegpt']:.2%}.

Wanda changes two things at once against plain magnitude: the score (|W| times the input norm) and the comparison
group (each output row loses the same fraction). `magnitude (row)` is the control that separates them.
- What the activation norms add, Wanda − magnitude (row), in points:
  {', '.join(f"{t} {100 * (acc[t, 'wanda'] - acc[t, 'magnitude (row)']):+.1f}" for t in labels)}.
- What the per-row comparison does, magnitude (row) − magnitude:
  {', '.join(f"{t} {100 * (acc[t, 'magnitude (row)'] - acc[t, 'magnitude']):+.1f}" for t in labels)}.

The activation term helps where pruning starts to hurt; the per-row group helps at one sparsity and hurts at another
on this model, so Wanda ends a few points above plain magnitude at most. Time per pruning run on
this machine: magnitude {seconds['magnitude']:.2f} s, Wanda {seconds['wanda']:.2f} s (one forward pass),
SparseGPT {seconds['sparsegpt']:.2f} s (24 layers, each a Cholesky factorisation and a sweep over its columns).
""")

# %% [markdown]
# **What the update buys.** SparseGPT does two things: it chooses a mask with the OBS saliency w²/[H⁻¹]_jj, and it
# updates the weights it keeps. To tell them apart, put SparseGPT's mask on the *original* weights:

# %%
ablation = compare_post_training(vit, test_loader, calibration, fast([0.7, 0.8], [0.7]), progress=False,
                                 methods=["magnitude", "sparsegpt mask, no update", "sparsegpt"])
ablated = {(r["target"], r["method"]): r["accuracy"] for r in ablation}
print(ablation)

# %%
Markdown(" ".join(f"At {t}: magnitude {ablated[t, 'magnitude']:.1%}, SparseGPT's mask on the original weights "
                  f"{ablated[t, 'sparsegpt mask, no update']:.1%}, SparseGPT {ablated[t, 'sparsegpt']:.1%}."
                  for t in dict.fromkeys(r["target"] for r in ablation)) + """
The mask alone is no better than magnitude's mask: it was chosen *assuming* the update follows. The compensation is
where SparseGPT's accuracy comes from.""")
#
# **Outlier features.** In LLMs a few hidden dimensions carry values far larger than the rest. Dettmers et al. (2022)
# found these "highly systematic emergent features" dominate attention and the predictions of large transformers;
# LLM.int8() keeps them in 16 bits while "more than 99.9% of values are multiplied in 8-bit". A weight that reads
# such a feature matters even when it is small, and magnitude pruning cannot know it. Wanda's ‖X_j‖₂ is exactly the
# statistic that sees them. Here are the norms of this model's input features on the calibration set, per layer,
# divided by each layer's median:

# %%
ends = (".q", ".o", ".fc1", ".fc2")                                      # k and v read the same input as q
norms = activation_norms(vit, calibration, layers=[(n, m) for n, m in vit.named_modules()
                                                    if n.startswith("blocks.") and n.endswith(ends)])
outliers = outlier_table(norms)
palette = {"q": "#4c72b0", "o": "#8172b2", "fc1": "#dd8452", "fc2": "#c44e52"}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.3))
for name, v in norms.items():
    axes[0].plot(np.sort((v / v.median()).numpy())[::-1], lw=1, color=palette[name.rsplit(".", 1)[-1]], alpha=0.8)
axes[0].set(yscale="log", xlabel="input feature j, sorted", ylabel="‖X_j‖₂ / median",
            title="feature norms per layer (blue: q/k/v input, purple: o, orange: fc1, red: fc2)")
axes[1].bar(range(len(norms)), [r["max / median"] for r in outliers], color="#c44e52")
axes[1].set_xticks(range(len(norms)), [short(n) for n in norms], rotation=90, fontsize=8)
axes[1].set(ylabel="max / median", title="how far the largest feature stands out")
plt.tight_layout()
print(outliers)

# %%
worst = max(outliers, key=lambda r: r["max / median"])
qkv = max(r["max / median"] for r in outliers if r["layer"].endswith(".q"))
Markdown(f"""
The largest feature of any layer is {worst['max / median']:.1f}× its layer's median (`{worst['layer']}`, the input of
an MLP's second layer, after GELU); the inputs of q, k, v stand out at most {qkv:.1f}×. Those inputs (the output of
each block's first LayerNorm) share the same few large features from block to block (the "largest features"
column), which is how outlier features look in LLMs too, where they reach far larger factors. This is the statistic
Wanda multiplies into |W|: it moves weights that read these features up the ranking, which is what its gain over
row-wise magnitude above comes from.
""")

# %% [markdown]
# ## 3 · Exercises: the two scores by hand
#
# **Exercise 10.1: the Wanda score of one layer.** Write `wanda_score(W, X)`: `W` is a layer's weight (out, in), `X`
# its calibration inputs (tokens, in), one row per token. Return the score S (out, in) with S_ij = |W_ij| · ‖X_j‖₂,
# where ‖X_j‖₂ is the L2 norm of input feature j over all tokens.
#
# <details><summary>Hint</summary>
#
# `X.norm(dim=0)` is one norm per column (feature); broadcasting multiplies it into every row of `W.abs()`.
# </details>

# %%
# Exercise 10.1: the Wanda score
def wanda_score(W, X):
    ### BEGIN SOLUTION
    return W.abs() * X.norm(dim=0)
    ### END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
from course.checks import check_obs_step, check_wanda_score
check_wanda_score(wanda_score)

# %% [markdown]
# Your score against the library's, on the first MLP layer of the ViT. A forward hook catches the layer's inputs; a
# transformer's Linear sees (batch, tokens, features), so the tokens of all images become the rows of X:

# %%
layer = vit.blocks[0].mlp.fc1
captured = []
hook = layer.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0].reshape(-1, 64)))
with torch.no_grad():
    vit(calibration[0])
hook.remove()
X = captured[0]                                                           # (256·17, 64)
from course import score
library = score(vit, "wanda", calibration)["blocks.0.mlp.fc1"]
same = torch.allclose(wanda_score(layer.weight.detach(), X), library, rtol=1e-4)
print(f"X: {tuple(X.shape)}; your score equals the library's: {same}")

# %% [markdown]
# **Exercise 10.2: one OBS step.** Write `obs_prune(w, H_inv, j)` for one weight row `w` (in,), the inverse Hessian
# `H_inv` (in, in) of its layer, and the index `j` of the weight to remove. Return `(w_new, saliency)`: the row after
# the Optimal Brain Surgeon step, δ = −(w_j / [H⁻¹]_jj) · H⁻¹[j, :], with w_new[j] exactly 0, and the saliency
# w_j² / [H⁻¹]_jj (a number). Do not change `w` in place.
#
# <details><summary>Hint</summary>
#
# `w - w[j] / H_inv[j, j] * H_inv[j]` is the whole update; set entry j to 0 afterwards (it is 0 up to rounding).
# </details>

# %%
# Exercise 10.2: one OBS step
def obs_prune(w, H_inv, j):
    ### BEGIN SOLUTION
    w_new = w - w[j] / H_inv[j, j] * H_inv[j]
    w_new[j] = 0.0
    return w_new, float(w[j] ** 2 / H_inv[j, j])
    ### END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
check_obs_step(obs_prune)

# %% [markdown]
# On the real layer: remove the weight with the smallest saliency from row 0 of `fc1`, once by zeroing it
# (magnitude-style) and once with your OBS step, and measure the change of that output on the calibration tokens.

# %%
Xd = X.double()
H = 2 * Xd.T @ Xd / len(Xd)                                             # (64, 64): the layer-wise Hessian
H_inv = torch.linalg.inv(H + 0.01 * H.diagonal().mean() * torch.eye(64, dtype=H.dtype))   # SparseGPT's dampening
w = layer.weight.detach()[0].double()
saliencies = w ** 2 / H_inv.diagonal()
j = int(saliencies.argmin())
w_obs, eps = obs_prune(w, H_inv, j)
w_zero = w.clone()
w_zero[j] = 0
err = lambda v: float(((v - w) @ Xd.T).pow(2).mean())                      # mean squared change of output 0
print(f"weight {j}: w_j = {float(w[j]):+.4f}, saliency {eps:.2e}; output error zeroed {err(w_zero):.2e}, "
      f"with the OBS update {err(w_obs):.2e}")

# %% [markdown]
# SparseGPT is this step for every pruned weight of every row, organised so that the inverse Hessian is factorised once
# per layer: with H⁻¹ = UᵀU (U upper triangular, Cholesky), once the columns before j are settled the inverse Hessian
# of the remaining ones is read off row j of U, so the update for column j is `err = (w_j − q_j) / U_jj`,
# `W[:, j:] -= err ⊗ U[j, j:]`. Here is the course's implementation, which follows the authors' code:

# %%
from course import sparsegpt_layer
show(sparsegpt_layer)

# %% [markdown]
# ## 4 · Structured: attention heads and MLP neurons
#
# Unstructured sparsity does not make a CPU faster (notebook 02). Removing whole **heads** does: head h owns rows
# [16h, 16h + 16) of q, k and v and the same columns of o, so cutting them leaves a smaller dense attention layer.
# Which heads matter? Michel et al. (2019) put a gate ξ_h = 1 on each head's output and score the head by
# I_h = E_x |∂L(x)/∂ξ_h|, one backward pass per batch (`criterion="gate"`); the data-free alternative is the L1 norm
# of the head's weights (`criterion="l1"`).

# %%
gate = head_scores(vit, "gate", calibration)
l1 = head_scores(vit, "l1")
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
for ax, (name, scores) in zip(axes, [("gate importance (Michel et al.)", gate), ("L1 norm of the head's weights", l1)]):
    grid = torch.stack([s / s.norm() for s in scores.values()]).numpy()            # (layers, heads), ℓ2 per layer
    im = ax.imshow(grid, cmap="viridis")
    ax.set(title=name, xlabel="head", ylabel="block", xticks=range(4), yticks=range(len(grid)))
    for (i, k), v in np.ndenumerate(grid):
        ax.text(k, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w" if v < grid.mean() else "k")
plt.tight_layout()

# %% [markdown]
# Scores are divided by their layer's ℓ2 norm, as Michel et al. do before ranking heads of different layers against
# each other (the **global** scope: some layers lose more heads than others; every layer keeps at least one). Now the
# one-shot accuracy as heads are removed, lowest scores first:

# %%
curves = {"gate, global": heads_curve(vit, gate, test_loader, scope="global"),
          "L1, global": heads_curve(vit, l1, test_loader, scope="global"),
          "L1, local": heads_curve(vit, l1, test_loader, scope="local")}
print(curves["gate, global"])

# %% [markdown]
# The gate score is an average over the calibration images, so it is only as steady as they are. The same half of the
# heads removed with the gate scores of three different batches of 256 training images:

# %%
by_batch = {}
for seed in (0, 1, 2):
    batch = next(iter(make_loaders("mnist", batch_size=256, seed=seed)[0]))
    small = prune_heads(vit, 0.5, criterion="gate", data=batch)
    by_batch[seed] = evaluate(small, test_loader)
    print(f"calibration batch {seed}: heads kept per block {[b.attn.heads for b in small.blocks]}, "
          f"one-shot accuracy {by_batch[seed]:.2%}")

# %% [markdown]
# And after a short fine-tune: AdamW, lr 2·10⁻³ with warm-up and cosine decay, 8 epochs over the training images (the
# settings were chosen on 1,000 held-out training images with half the heads removed), at 8 and 12 of the 16 heads
# removed by the gate score:

# %%
FT_EPOCHS = fast(8, 1)
finetune = finetuner(train_loader, epochs=FT_EPOCHS, lr=2e-3, optimizer="adamw", weight_decay=0.05,
                     schedule="cosine", warmup=0.1, progress=False, seed=0)
tuned = {}
for k in (8, 12):
    small = prune_heads(vit, k / 16, criterion="gate", data=calibration)
    train_loader.generator.manual_seed(0)                                  # the same data order at every point
    history = finetune(small)
    tuned[k] = {"accuracy": evaluate(small, test_loader), "seconds": history.seconds, "model": small}
fig, ax = plt.subplots(figsize=(6, 3.3))
for name, curve in curves.items():
    ax.plot([r["heads removed"] for r in curve], [100 * r["accuracy"] for r in curve], marker="o", ms=3, label=f"{name}, one-shot")
ax.plot(list(tuned), [100 * v["accuracy"] for v in tuned.values()], marker="s", c="k",
        label=f"gate, global, + {FT_EPOCHS}-epoch fine-tune")
ax.axhline(100 * dense_acc, c="k", ls=":", lw=1)
ax.set(xlabel="heads removed (of 16)", ylabel="test accuracy (%)", title="removing attention heads")
ax.legend(fontsize=8);

# %%
one_shot = {r["heads removed"]: r["accuracy"] for r in curves["gate, global"]}
Markdown(f"""
One-shot, the model tolerates a few missing heads: with 4 of 16 removed by the gate score it keeps
{one_shot[4]:.1%}, with half removed {one_shot[8]:.1%} (between {min(by_batch.values()):.1%} and
{max(by_batch.values()):.1%} with the three calibration batches), with 12 removed {one_shot[12]:.1%} (dense
{dense_acc:.2%}). Fine-tuning for {FT_EPOCHS} epochs ({tuned[8]['seconds']:.0f} s here) brings half the heads back to
{tuned[8]['accuracy']:.2%}, {100 * (dense_acc - tuned[8]['accuracy']):.2f} points below dense, and even 12 removed
heads to {tuned[12]['accuracy']:.2%}. Michel et al. found the same in BERT and in machine translation: many heads
can go at test time, and importance concentrates in a few.
""")

# %% [markdown]
# **Latency against FLOPs.** Four models at batch 256: dense; half the heads removed (gate, global, fine-tuned above);
# half of every MLP's hidden neurons removed by the L1 norm of their `fc1` rows (the MLP is an `nn.Sequential`, so
# `prune_structured` cuts it like any chain: rows of `fc1`, columns of `fc2`); and both. The report card times them
# with the course's timer (interleaved best of 3 rounds, fresh copies).

# %%
mlp_half = copy.deepcopy(vit)
for block in mlp_half.blocks:
    prune_structured(block.mlp, 0.5, inplace=True)
both = copy.deepcopy(tuned[8]["model"])
for block in both.blocks:
    prune_structured(block.mlp, 0.5, inplace=True)
card = report({"dense": vit, "heads 50%": tuned[8]["model"], "MLP 50%": mlp_half, "heads + MLP 50%": both},
              loader=test_loader, batch_size=256, rounds=3, min_run_time=0.3)
print(card)

# %%
rows = card.rows_by_name
fig, ax = plt.subplots(figsize=(4.2, 3.6))
for name, r in rows.items():
    ax.scatter(r["FLOPs ×"], r["speedup ×"], s=40, zorder=3)
    ax.annotate(name, (r["FLOPs ×"], r["speedup ×"]), textcoords="offset points", xytext=(5, -10), fontsize=8)
hi = max(max(r["FLOPs ×"], r["speedup ×"]) for r in rows.values()) * 1.1
ax.plot([1, hi], [1, hi], c="gray", ls=":", lw=1, label="speedup = FLOP ratio")
ax.set(xlabel="FLOPs × (dense / pruned)", ylabel="measured speedup ×", title="batch 256, this CPU")
ax.legend(fontsize=8);

# %%
Markdown(f"""
Removing half the heads cuts the FLOPs by {rows['heads 50%']['FLOPs ×']:.2f}× and ran {rows['heads 50%']['speedup ×']:.2f}×
faster in this run; half the MLP neurons: {rows['MLP 50%']['FLOPs ×']:.2f}× fewer FLOPs, {rows['MLP 50%']['speedup ×']:.2f}×
measured; both: {rows['heads + MLP 50%']['FLOPs ×']:.2f}× and {rows['heads + MLP 50%']['speedup ×']:.2f}×. The FLOP count
includes the attention products q·kᵀ and att·v (17 × 17 per head), which shrink with the heads. What stays is
everything FLOPs do not count: LayerNorms, softmax, GELU, the reshapes between heads, each a full pass over memory.
Latencies depend on the machine and its load; the lead re-measures them on a quiet machine.
""")

# %% [markdown]
# Torch-Pruning (notebook 03) can do the same cut on this model when told which Linears hold heads: with
# `num_heads={q: 4, k: 4, v: 4}` and `prune_num_heads=True` it removes whole heads and, scoring them by the same L1
# norm, it removes the same heads with the same parameter count as `prune_heads(vit, 0.5, criterion="l1",
# scope="local")` (tests/test_heads.py checks this).
#
# ## 5 · From this to LLMs
#
# **What changes at scale.**
# - *Layer-wise reconstruction on a GPU.* The model does not fit in memory at once, so the reference code loads one
#   transformer block at a time, runs the calibration activations through it, prunes its Linears (Wanda: scores;
#   SparseGPT: a d×d Hessian per layer, d up to 28,672 in the largest MLPs), and passes the pruned block's outputs on
#   to the next block. The SparseGPT paper prunes OPT-175B and BLOOM-176B "in under 4.5 hours".
# - *Perplexity instead of accuracy.* A language model is judged by the perplexity of held-out text (WikiText-2, C4)
#   and by zero-shot tasks; a 0.1 change of perplexity is visible, and pruning damage shows there before it shows in
#   a task score.
# - *2:4 for inference.* Unstructured sparsity does not speed up dense matrix hardware (notebook 02); the 2:4 pattern
#   does, on GPUs with sparse tensor cores (notebook 09), which is why both papers report it.
#
# **Published headline results** (quoted from the papers' abstracts):
# - SparseGPT (Frantar & Alistarh, ICML 2023, arXiv:2301.00774): GPT-family models "can be pruned to at least 50%
#   sparsity in one-shot, without any retraining, at minimal loss of accuracy"; on OPT-175B and BLOOM-176B it "can
#   reach 60% unstructured sparsity with negligible increase in perplexity: remarkably, more than 100 billion weights
#   from these models can be ignored at inference time."
# - Wanda (Sun, Liu, Bair & Kolter, ICLR 2024, arXiv:2306.11695): evaluated on LLaMA and LLaMA-2, it "significantly
#   outperforms the established baseline of magnitude pruning and performs competitively against recent method
#   involving intensive weight update", with no weight update at all.
#
# **A sketch for a Hugging Face causal LM (not run here: it needs `transformers`, a model download and, for anything
# but a small model, a GPU).** The course's functions see Linear layers and calibration inputs, so they apply as they
# are; what an LLM needs on top is the block-by-block loop of the reference code, to keep memory bounded.
#
# ```python
# # NOT RUN in this notebook
# from transformers import AutoModelForCausalLM, AutoTokenizer
# from course import sparsegpt, prune_unstructured, layer_sparsity
# name = "facebook/opt-125m"
# lm = AutoModelForCausalLM.from_pretrained(name, torch_dtype=torch.float32).eval()
# tok = AutoTokenizer.from_pretrained(name)
# ids = tok(calibration_texts, return_tensors="pt", truncation=True, max_length=512,
#           padding=True).input_ids                                   # e.g. 32 sequences of C4 text
# skip = ["lm_head"]                                                   # as in the papers: the head stays dense
# wanda = prune_unstructured(lm, 0.5, criterion="wanda", data=ids, exclude=skip)   # hooks see every Linear's input
# sgpt = sparsegpt(lm, 0.5, ids, exclude=skip)                          # one layer at a time, on the CPU in float64
# print(layer_sparsity(sgpt))                                          # then: perplexity on WikiText-2
# ```
#
# Two things would need work: the calibration forward runs the whole model once per layer (the reference code runs
# one block at a time), and the Hessian algebra in float64 on a CPU is slow for d in the thousands.

# %% [markdown]
# ## Summary

# %%
Markdown(f"""
- **The model:** a 139,018-parameter ViT reaches {dense_acc:.2%} on these MNIST test images after
  {info['train_seconds']:.0f} s of training on a CPU, below LeNet-5 ({cnn_acc['lenet5']:.2%}) and VGGSmall
  ({cnn_acc['vgg']:.2%}). Attention and MLP hold equal shares of its weights; global magnitude pruning takes most
  from the MLPs ({by_kind['MLP']:.0%} of them at 70% overall, {by_kind['attention']:.0%} of attention).
- **Post-training, no fine-tuning:** at 50% of the blocks' weights all three methods stay near dense (SparseGPT
  {acc['50%', 'sparsegpt']:.2%}); at {top} SparseGPT keeps {acc[top, 'sparsegpt']:.1%} where magnitude falls to
  {acc[top, 'magnitude']:.1%} and Wanda to {acc[top, 'wanda']:.1%}; at 2:4 SparseGPT {acc['2:4', 'sparsegpt']:.2%}
  against magnitude {acc['2:4', 'magnitude']:.2%}. The OBS update, not SparseGPT's mask, makes the difference.
- **Outliers and Wanda:** this ViT's largest input feature is {worst['max / median']:.1f}× its layer's median (an
  MLP's second layer). Against its own control, row-wise magnitude, Wanda gains
  {100 * (acc[top, 'wanda'] - acc[top, 'magnitude (row)']):.1f} points at {top}; against layer-wise magnitude
  {100 * (acc[top, 'wanda'] - acc[top, 'magnitude']):+.1f}.
- **Heads:** half of the 16 heads removed by the gate score and {FT_EPOCHS} epochs of fine-tuning give
  {tuned[8]['accuracy']:.2%} ({100 * (dense_acc - tuned[8]['accuracy']):.2f} points below dense); measured speedup at
  batch 256: {rows['heads 50%']['speedup ×']:.2f}× for {rows['heads 50%']['FLOPs ×']:.2f}× fewer FLOPs.
""")

# %% [markdown]
# ## Exercises
#
# Exercises 10.1 (the Wanda score) and 10.2 (one OBS step) are in section 3, with their checks. To go further:
# - **10.3** Run section 2 on Fashion-MNIST: `train_or_load("vit", "fashion-mnist")` is shipped too. Does the gap
#   between SparseGPT and magnitude grow on the harder task?
# - **10.4** Prune *all* layers, patch embedding and classifier included (`exclude=()` in `compare_post_training`).
#   Which method suffers most, and which layer is to blame? (`layer_sparsity` and a one-layer-at-a-time scan,
#   notebook 05, will tell.)
# - **10.5** Calibrate SparseGPT on 16 images instead of 256. How much does the accuracy at 70% change?
#
# ## References
#
# - E. Frantar, D. Alistarh. *SparseGPT: Massive Language Models Can Be Accurately Pruned in One-Shot.* ICML 2023 (arXiv:2301.00774); code: github.com/IST-DASLab/sparsegpt.
# - M. Sun, Z. Liu, A. Bair, J. Z. Kolter. *A Simple and Effective Pruning Approach for Large Language Models* (Wanda). ICLR 2024 (arXiv:2306.11695); code: github.com/locuslab/wanda.
# - P. Michel, O. Levy, G. Neubig. *Are Sixteen Heads Really Better than One?* NeurIPS 2019.
# - B. Hassibi, D. G. Stork. *Second order derivatives for network pruning: Optimal Brain Surgeon.* NeurIPS 1992 (NIPS 5, 1993).
# - T. Dettmers, M. Lewis, Y. Belkada, L. Zettlemoyer. *LLM.int8(): 8-bit Matrix Multiplication for Transformers at Scale.* NeurIPS 2022.
# - A. Dosovitskiy et al. *An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale* (ViT). ICLR 2021.
# - A. Vaswani et al. *Attention Is All You Need.* NeurIPS 2017.
# - A. Mishra et al. *Accelerating Sparse Deep Neural Networks* (2:4 sparsity on NVIDIA Ampere). arXiv:2104.08378, 2021.
# - G. Fang et al. *DepGraph: Towards Any Structural Pruning* (Torch-Pruning). CVPR 2023.
