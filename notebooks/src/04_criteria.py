# %% [markdown]
# # 04 · What to prune: magnitude, gradient and curvature criteria
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/pruning-course/pruning-course/blob/main/notebooks/04_criteria.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/pruning-course/pruning-course/HEAD?labpath=notebooks%2F04_criteria.ipynb)
#
# A **criterion** gives every weight a score; pruning removes the lowest scores first. The smallest |w| is the
# classic choice, but the quantity we actually care about is how much the **loss** rises when a weight disappears.
# Gradient criteria estimate that change to first order, and Optimal Brain Damage to second order. This notebook
# compares them on the same trained LeNet-300-100, measures the true loss change of single weights to see which
# criterion predicts it, and then asks the practical question: which criterion gives the most accurate pruned
# network?
#
# **What you will learn**
# - the criteria of the course (magnitude, gradient, two first-order Taylor estimators, OBD, SNIP, random) and the
#   formula behind each, implemented as their papers and public code define them;
# - why first-order Taylor as Molchanov et al. define it (squared per batch) is a different ranking from the
#   first-order term with the mean gradient, and why both depend on how many batches they see;
# - how to measure the *true* effect of removing one weight (the oracle) and judge a criterion by rank
#   correlation, pooled over layers and within each layer;
# - that on a trained network magnitude, which needs no data, prunes best one-shot here, that the curvature
#   criterion comes closest, and that a criterion is only meaningful against a random baseline, with mean ± std
#   over seeds.

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
import itertools, numpy as np, torch, matplotlib.pyplot as plt
from tqdm.auto import tqdm
from course import build_model, claim, evaluate, fast, held_out_batch, make_loaders, prune_unstructured, score, setup, show, train_or_load
from course import gather, loss_change, sample_weights, spearman, spearman_by_layer
setup(seed=0, threads=1)  # LeNet-sized layers: one thread is as fast, and steadier on a shared CPU

# %% [markdown]
# The data is MNIST; its `.info` says which copy this machine has (the full set after `make data`, otherwise the real
# 10,000-image subset that ships with the course). The dense baseline comes from `train_or_load` (a shipped,
# checksum-verified checkpoint). Nothing in this notebook is chosen by looking at test accuracy: the pruning
# recipe (90% per layer, one epoch of fine-tuning at lr 0.01) is fixed in advance and the test set only reports.

# %%
train_loader, test_loader = make_loaders("mnist", batch_size=128)
print(test_loader.dataset.info)
print(f"train images: {len(train_loader.dataset):,}, test images: {len(test_loader.dataset):,}")
dense, info = train_or_load("lenet300", "mnist")
base_acc = evaluate(dense, test_loader)
print(f"LeNet-300-100 ({info['source']} checkpoint): test accuracy {base_acc:.2%}")

# %% [markdown]
# ## 1 · The criteria
#
# For a weight $w$, with $g_b = \partial L_b / \partial w$ the gradient of the loss of training batch $b$ and
# $\bar g = \frac1B \sum_b g_b$ their mean over the $B$ batches a criterion sees, the course's criteria score it as
# follows. Low score = pruned first.
#
# | criterion | score | order | source |
# |---|---|---|---|
# | `magnitude` | $\lvert w \rvert$ | none (no data) | Han et al. 2015 |
# | `gradient` | $\lvert \bar g \rvert$ | | the loss is sensitive to this weight |
# | `taylor_signed_mean` | $\lvert w \cdot \bar g \rvert$ | first | the first-order term with the mean gradient (SNIP's raw score) |
# | `taylor` | $\frac1B \sum_b (w \cdot g_b)^2$ | first | Molchanov et al. 2019, as in their code |
# | `obd` | $\tfrac12\, h_{ii}\, w^2$ | second | Optimal Brain Damage, LeCun et al. 1989 |
# | `snip` | $\lvert w \cdot \bar g \rvert / \sum \lvert w \cdot \bar g \rvert$ | first | for pruning at initialisation, Lee et al. 2019 |
# | `random` | $u \sim U(0, 1)$ | | the baseline every criterion must beat |
#
# **First order.** Setting $w_i$ to zero moves the weights by $\Delta w = -w_i e_i$, and
# $L(w + \Delta w) \approx L(w) + g^\top \Delta w = L(w) - g_i w_i$. The magnitude of that change, with the gradient
# of the loss on the batches at hand, is the score you write first.
#
# **Exercise 04.1: the first-order score.** Write `taylor_score(weight, grad)` that returns one score per weight:
# the first-order estimate of how much the loss changes when that weight is set to zero, as a magnitude. `grad` is
# the mean gradient $\bar g$ over a few batches.
#
# <details><summary>Hint</summary>
#
# Zeroing $w$ moves it by $-w$; to first order the loss changes by $g \cdot (-w)$. The score is the absolute value of
# that product, elementwise: same shape as the weight, no sum.
# </details>

# %%
# Exercise 04.1: a Taylor score
def taylor_score(weight, grad):
    ### BEGIN SOLUTION
    return (weight * grad).abs()
    ### END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
from course.checks import check_spearman, check_taylor_score
check_taylor_score(taylor_score)

# %% [markdown]
# Compare with the library's twin, `taylor_signed_mean` (any `fn(weight, grad)` plugs in the same way:
# `prune_unstructured(model, 0.9, criterion=taylor_score, data=batches)`):

# %%
from course import magnitude_scores, obd_scores, taylor_scores, taylor_signed_mean_scores
show(taylor_signed_mean_scores)

# %% [markdown]
# **First-order Taylor as Molchanov et al. (2019) define it** squares the term of each batch and then averages,
# as their public code does (NVlabs/Taylor_pruning accumulates `(w * w.grad) ** 2` mini-batch by mini-batch):
#
# $$\frac1B \sum_b (w\, g_b)^2 = (w\, \bar g)^2 + w^2\, \mathrm{Var}_b(g_b).$$
#
# The two scores differ by the second term. At a trained minimum the mean gradient $\bar g$ is close to zero and
# its sign flips from batch to batch, so the signed mean mostly measures how well the noise of $B$ batches cancels;
# the squared form keeps the batch-to-batch variation, which grows with $w^2$.

# %%
show(taylor_scores)

# %% [markdown]
# **Second order: Optimal Brain Damage.** Where training has driven the gradient to zero, the first-order term
# vanishes and the next one remains: $L(w - w_i e_i) - L(w) \approx \tfrac12 h_{ii} w_i^2$, with $h_{ii}$ the
# diagonal of the Hessian (the off-diagonal terms dropped, as in OBD). `obd` takes $h_{ii}$ from the exact
# Gauss-Newton diagonal of cross-entropy, $\frac1N \sum_n \sum_c p_{nc} (\partial \ell(x_n, c)/\partial w_i)^2$
# with $p_n$ the model's softmax; for a ReLU network that **is** the Hessian diagonal (`course/pruning/curvature.py`
# explains why it is the default, and computes it from each sample's own gradient, squared before summing).

# %%
show(obd_scores)

# %% [markdown]
# All criteria prune the same model to the same budget: 90% of the weights of every layer (`scope="local"`, so that
# only the choice of weights *inside* a layer differs; how to split a budget between layers is notebook 05). The
# data criteria see four training batches of 128 images; a **seed** picks which four (and the random draw), and
# each criterion runs with 3 seeds. How accurate is each pruned network, and how much do its choices overlap with
# magnitude's?

# %%
CRITERIA = ["magnitude", "gradient", "taylor_signed_mean", "taylor", "obd", "snip", "random"]
SPARSITY, SEEDS = 0.9, [0, 1, 2]
seed_batches = {seed: list(itertools.islice(make_loaders("mnist", batch_size=128, seed=seed)[0], 32))
                for seed in SEEDS}                            # 32 training batches per seed; the criteria use the first 4
score_batches = seed_batches[0][:4]                           # seed 0's four batches: §2 uses them too
acc90, overlap = {c: [] for c in CRITERIA}, {c: [] for c in CRITERIA}
masks90 = {}
for c, seed in tqdm(list(itertools.product(CRITERIA, SEEDS)), desc="90% per layer"):
    pruned = prune_unstructured(dense, SPARSITY, criterion=c, data=seed_batches[seed][:4], seed=seed)
    masks90[c, seed] = torch.cat([m.prune_mask.flatten() for m in (pruned.fc1, pruned.fc2, pruned.fc3)])
    acc90[c].append(evaluate(pruned, test_loader))
for c, seed in itertools.product(CRITERIA, SEEDS):
    kept, ref = masks90[c, seed], masks90["magnitude", seed]
    overlap[c].append(float((kept & ref).sum() / ref.sum()))
ms = lambda v: f"{100 * np.mean(v):5.1f} ± {100 * np.std(v, ddof=1):4.1f}"   # mean ± sample std, in %
print(f"{'criterion':>18}   test accuracy (%)   kept weights shared with magnitude (%)   [n=3 seeds]")
for c in CRITERIA:
    print(f"{c:>18}   {ms(acc90[c])}         {ms(overlap[c])}")
print(f"{'dense':>18}   {100 * base_acc:5.1f}")

# %% [markdown]
# At 90% per layer, **magnitude keeps the most accuracy**, less than ten points below the dense network, with no
# data at all. OBD comes next, within about ten points of it, and cited Taylor is well behind it, while the
# signed-mean estimator falls further still. `gradient` (|ḡ| alone) is no better than random, which is near
# chance. SNIP keeps exactly what `taylor_signed_mean`
# keeps: it divides that score by one number, the sum over all weights, and a constant factor changes no ranking,
# in any scope. What distinguishes SNIP in the literature is *when* it is used: once, at initialisation, before
# training (notebook 06).

# %%
gap90 = 100 * (np.mean(acc90["magnitude"]) - np.mean(acc90["taylor"]))
claim(np.mean(acc90["magnitude"]) > max(np.mean(acc90[c]) for c in CRITERIA if c != "magnitude"),
      "magnitude keeps the most accuracy at 90% per layer, one-shot")
claim(np.mean(acc90["magnitude"]) > np.mean(acc90["obd"]) > np.mean(acc90["taylor"]) > np.mean(acc90["taylor_signed_mean"]),
      "order at 90%: magnitude, then OBD, then cited Taylor, then the signed-mean estimator")
claim(gap90 > 10, "magnitude beats cited Taylor (4 batches) by more than ten points")
claim(np.mean(acc90["gradient"]) < np.mean(acc90["random"]) + 0.03, "|gradient| alone is no better than random")
claim(all(torch.equal(masks90["snip", s], masks90["taylor_signed_mean", s]) for s in SEEDS),
      "SNIP keeps exactly the weights taylor_signed_mean keeps");

# %% [markdown]
# **How many batches?** Every data criterion is an average over the batches it sees, so its ranking changes with
# their number. The same 90% pruning with 1, 4 and 32 batches (32 × 128 = 4,096 images, half the training set), 3
# seeds each:

# %%
NUM_BATCHES = [1, 4, 32]
BATCH_CRITERIA = ["taylor_signed_mean", "taylor", "obd"]
acc_b = {(c, b): [] for c in BATCH_CRITERIA for b in NUM_BATCHES}
for c, b, seed in tqdm(list(itertools.product(BATCH_CRITERIA, NUM_BATCHES, SEEDS)), desc="batch count"):
    pruned = prune_unstructured(dense, SPARSITY, criterion=c, data=seed_batches[seed][:b], num_batches=b, seed=seed)
    acc_b[c, b].append(evaluate(pruned, test_loader))
print(f"{'criterion':>18} " + "".join(f"{f'{b} batch' + 'es' * (b > 1):>16}" for b in NUM_BATCHES) + "   [n=3 seeds]")
for c in BATCH_CRITERIA:
    print(f"{c:>18} " + "".join(f"{ms(acc_b[c, b]):>16}" for b in NUM_BATCHES))
print(f"{'magnitude':>18} {100 * np.mean(acc90['magnitude']):>13.1f}    (no data)")

fig, ax = plt.subplots(figsize=(5.5, 3.2))
for c in BATCH_CRITERIA:
    mean = [100 * np.mean(acc_b[c, b]) for b in NUM_BATCHES]
    std = [100 * np.std(acc_b[c, b], ddof=1) for b in NUM_BATCHES]
    ax.errorbar(NUM_BATCHES, mean, yerr=std, marker="o", ms=4, capsize=3, label=c)
ax.axhline(100 * np.mean(acc90["magnitude"]), c="k", ls="--", lw=1, label="magnitude (no data)")
ax.axhline(100 * np.mean(acc90["random"]), c="gray", ls=":", lw=1, label="random")
ax.set(xscale="log", xticks=NUM_BATCHES, xticklabels=NUM_BATCHES, xlabel="batches of 128 training images",
       ylabel="test accuracy at 90% (%)", title="one-shot, 90% per layer: mean ± std, n=3")
ax.legend(fontsize=7);

# %% [markdown]
# With **one batch** the two Taylor estimators are the same ranking (one term, squared or not). With more batches
# they part. Cited Taylor improves steadily with every batch it sees. The signed mean does **not** improve from 1 to
# 32 batches: at a trained minimum the per-batch gradients point in all directions, their average is mostly the
# noise that has not cancelled yet, and |w·ḡ| ranks that noise. OBD is ahead of both at every batch count (its
# curvature term is positive in every batch, so nothing cancels), and with 32 batches it comes within a few points
# of magnitude. Neither Taylor estimator does.

# %%
mean_b = {k: np.mean(v) for k, v in acc_b.items()}
claim(acc_b["taylor", 1] == acc_b["taylor_signed_mean", 1], "with one batch the two Taylor estimators prune the same weights")
claim(mean_b["taylor", 1] < mean_b["taylor", 4] < mean_b["taylor", 32], "cited Taylor improves with every batch count")
claim(mean_b["taylor_signed_mean", 32] < mean_b["taylor_signed_mean", 1] + 0.05,
      "the signed mean does not improve from 1 to 32 batches")
claim(min(mean_b["taylor", b] - mean_b["taylor_signed_mean", b] for b in (4, 32)) > 0.1,
      "with 4 and 32 batches cited Taylor is more than ten points ahead of the signed mean")
claim(mean_b["obd", 32] > np.mean(acc90["magnitude"]) - 0.05, "with 32 batches OBD comes within a few points of magnitude")
claim(all(mean_b["obd", b] > mean_b["taylor", b] for b in NUM_BATCHES), "OBD is ahead of cited Taylor at every batch count")
claim(np.mean(acc90["magnitude"]) > max(mean_b.values()), "no data criterion reaches magnitude at 90%, even with 32 batches");

# %% [markdown]
# ## 2 · The oracle: what does removing one weight really cost?
#
# A criterion is a guess. The truth can be measured: for a weight $w_i$, set it to zero, evaluate the loss on a fixed
# batch, restore it. That gives $\Delta L_i = L(w \text{ with } w_i = 0) - L(w)$, one weight at a time.
# `loss_change` does exactly that, in float64: removing one weight changes a mean loss by so little that float32
# rounding would blur many of the differences (the median change is printed below). Pruning only needs the *order*
# of the weights, so we judge each criterion by **Spearman's rank correlation** $\rho$ between its scores and
# $\lvert\Delta L\rvert$: Pearson's correlation of the ranks, +1 for the same order, 0 for none.
#
# **Exercise 04.2: Spearman's rank correlation.** Write `spearman_rho(a, b)` for two 1-D tensors of the same length
# (no ties): replace each value by its rank, then return Pearson's correlation of the two rank vectors, as a number.
#
# <details><summary>Hint</summary>
#
# `x.argsort()` lists the indices that would sort `x`; applying `argsort()` once more gives each element's rank.
# Pearson: subtract each vector's mean, then $\sum r_a r_b / (\lVert r_a \rVert \, \lVert r_b \rVert)$. Use
# `.double()` to avoid integer division.
# </details>

# %%
# Exercise 04.2: Spearman rank correlation
def spearman_rho(a, b):
    ### BEGIN SOLUTION
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))
    ### END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
check_spearman(spearman_rho)

# %% [markdown]
# Compare with the library's `spearman`, which also handles ties (tied values share the mean of their ranks):

# %%
show(spearman)

# %% [markdown]
# We sample the same number of weights from each layer (so the small output layer `fc3` is not drowned by the
# large `fc1`) and measure on two models: the **trained** LeNet-300-100, and the same architecture **at
# initialisation** (untrained). And on two batches: the 512 training images the criteria computed their gradients
# on (**their own data**), and 1,000 held-out test images (**new data**, the loss we actually care about).
#
# ρ is reported **pooled** over the three layers and **within each layer**. The two answer different questions.
# Local pruning (§1 and §3) compares weights only inside a layer, so the per-layer ρ is the one that predicts it;
# the pooled ρ also rewards a criterion for putting whole layers in the right order, which is what a global
# threshold (notebook 05) needs.

# %%
PER_LAYER = fast(200, 40)
ORACLE = ["magnitude", "gradient", "taylor_signed_mean", "taylor", "obd", "random"]
LAYERS = ["fc1", "fc2", "fc3"]
torch.manual_seed(0)
untrained = build_model("lenet300")
X_own, y_own = torch.cat([x for x, _ in score_batches]), torch.cat([y for _, y in score_batches])   # (512, 1, 28, 28)
X_new, y_new = held_out_batch("mnist", 1000)                                                       # (1000, 1, 28, 28)
oracle, rho = {}, {}
for name, model in {"trained": dense, "untrained": untrained}.items():
    picks = sample_weights(model, PER_LAYER, seed=0)
    oracle[name] = {"picks": picks, "own": loss_change(model, X_own, y_own, picks),
                    "new": loss_change(model, X_new, y_new, picks)}
    oracle[name]["scores"] = {c: gather(score(model, c, score_batches), picks) for c in ORACLE}
    rho[name] = {(c, data): spearman_by_layer(oracle[name]["scores"][c], oracle[name][data].abs(), picks)
                 for c in ORACLE for data in ("own", "new")}
print(f"{len(picks)} weights per model ({PER_LAYER} per layer); median |ΔL| on new data: "
      f"trained {oracle['trained']['new'].abs().median():.1e}, untrained {oracle['untrained']['new'].abs().median():.1e}")
for name in rho:
    print(f"\n{name}: Spearman ρ with |ΔL|, pooled and per layer")
    print(f"{'criterion':>18} | {'own data: all':>13} {'fc1':>5} {'fc2':>5} {'fc3':>5} | {'new data: all':>13} "
          f"{'fc1':>5} {'fc2':>5} {'fc3':>5}")
    for c in ORACLE:
        cells = " | ".join(f"{rho[name][c, d]['all']:13.2f} " + " ".join(f"{rho[name][c, d][l]:5.2f}" for l in LAYERS)
                           for d in ("own", "new"))
        print(f"{c:>18} | {cells}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
x = np.arange(len(ORACLE))
for ax, name in zip(axes, ["trained", "untrained"]):
    for k, key in enumerate(["all", *LAYERS]):
        ax.bar(x + (k - 1.5) * 0.2, [rho[name][c, "new"][key] for c in ORACLE], width=0.2,
               label="pooled" if key == "all" else f"within {key}")
    ax.set(xticks=x, title=f"{name} LeNet-300-100, ΔL on new data", ylim=(-0.15, 1.15))
    ax.set_xticklabels(ORACLE, rotation=20, fontsize=8)
    ax.axhline(0, c="k", lw=0.6)
axes[0].set_ylabel("Spearman ρ with |ΔL|")
axes[0].legend(fontsize=7, ncol=2, loc="upper left")
plt.tight_layout()

# %% [markdown]
# What do the candidates look like, weight by weight? Each dot is one weight; the x axis is its score, the y axis
# the true loss change on new data (log scales; weights whose removal changes nothing are left out).

# %%
SCATTER = ["magnitude", "taylor", "obd"]
fig, axes = plt.subplots(2, 3, figsize=(11, 6))
layer_of = {name: np.array([n for n, _ in oracle[name]["picks"]]) for name in oracle}
for row, name in enumerate(["trained", "untrained"]):
    truth = oracle[name]["new"].abs().numpy()
    for col, c in enumerate(SCATTER):
        ax, s = axes[row, col], oracle[name]["scores"][c].numpy()
        for layer in LAYERS:
            sel = (layer_of[name] == layer) & (truth > 0) & (s > 0)
            ax.scatter(s[sel], truth[sel], s=5, alpha=0.6, label=layer)
        ax.set(xscale="log", yscale="log", xlabel=f"{c} score", ylabel="|ΔL| on new data",
               title=f"{name}: pooled ρ = {rho[name][c, 'new']['all']:.2f}")
axes[0, 0].legend(fontsize=8, markerscale=2)
plt.tight_layout()

# %% [markdown]
# **What the oracle says.** On new data, for the **trained** network, OBD predicts the loss change of one weight
# best, pooled and within every layer, cited Taylor is close behind, and magnitude is clearly below both, most of
# all within `fc1` and `fc2`. The signed-mean estimator sits between magnitude and cited Taylor. `gradient` (|ḡ|
# alone) is below magnitude: it ignores the weight, and a weight with a large gradient but w ≈ 0 costs nothing to
# remove. `random` sits at ρ ≈ 0, as it should.
#
# **Untrained**, the gap is larger: at initialisation the weights of a layer share one scale, so |w| says little,
# while the gradient is large and consistent across batches; cited Taylor and OBD are far ahead of magnitude. This
# is the case for pruning at initialisation with a gradient (SNIP, GraSP; notebook 06).
#
# Within a layer ρ is lower than pooled for every criterion: part of the pooled ρ is only the order of the layers
# (a weight of the 10-output `fc3` costs more than one of `fc1`), which the real criteria largely get right. So the
# oracle says the data criteria rank single weights *better* than magnitude, yet §1 found magnitude prunes 90%
# better. Keep that tension in mind for the next section.

# %%
r_t, r_u = rho["trained"], rho["untrained"]
claim(all(r_t["obd", "new"][k] >= r_t[c, "new"][k] for c in ORACLE for k in ["all", *LAYERS]),
      "trained, new data: OBD has the highest ρ, pooled and within every layer")
claim(all(r_t["taylor", "new"][k] > r_t["magnitude", "new"][k] for k in ["all", *LAYERS]),
      "trained, new data: cited Taylor is above magnitude, pooled and within every layer")
claim(r_t["magnitude", "new"]["all"] < r_t["taylor_signed_mean", "new"]["all"] < r_t["taylor", "new"]["all"],
      "trained, pooled: the signed mean sits between magnitude and cited Taylor")
claim(r_t["gradient", "new"]["all"] < r_t["magnitude", "new"]["all"], "trained: |gradient| alone is below magnitude")
claim(min(r_u["taylor", "new"]["all"], r_u["obd", "new"]["all"]) > r_u["magnitude", "new"]["all"] + 0.1,
      "untrained: cited Taylor and OBD are far ahead of magnitude")
claim(all(abs(rho[n]["random", "new"]["all"]) < 0.15 for n in rho), "random has ρ ≈ 0")
claim(all(rho[n][c, "new"][l] < rho[n][c, "new"]["all"] for n in rho for c in ORACLE if c != "random" for l in LAYERS),
      "within a layer ρ is lower than pooled for every real criterion");

# %% [markdown]
# The oracle removes **one** weight at a time. Pruning removes most of them at once, far from where a first- or
# second-order estimate around the trained weights holds. The next section measures what counts in the end:
# accuracy.
#
# ## 3 · Accuracy vs sparsity, one-shot and after a short fine-tune
#
# Each criterion prunes the trained model to several sparsities (local scope). We measure test accuracy right away
# (**one-shot**) and after fine-tuning for one epoch with the masks held fixed (`course.train` keeps pruned
# weights at zero). Every run is repeated over 3 seeds: a seed picks the four training batches the data criteria
# use, the random criterion's draw, and the fine-tuning shuffle. SNIP is left out: it keeps `taylor_signed_mean`'s
# weights (§1).

# %%
from course import train
SWEEP = ["magnitude", "obd", "taylor", "taylor_signed_mean", "gradient", "random"]
SPARSITIES = fast([0.5, 0.8, 0.9, 0.95, 0.98], [0.8, 0.95])
SWEEP_SEEDS = fast(SEEDS, [0, 1])
FT_EPOCHS, FT_LR = 1, 0.01
acc = {c: np.zeros((2, len(SWEEP_SEEDS), len(SPARSITIES))) for c in SWEEP}   # [one-shot / fine-tuned, seed, sparsity]
bar = tqdm(total=len(SWEEP_SEEDS) * len(SWEEP) * len(SPARSITIES), desc="prune + fine-tune")
for i, seed in enumerate(SWEEP_SEEDS):
    loader = make_loaders("mnist", batch_size=128, seed=seed)[0]
    for c, (j, s) in itertools.product(SWEEP, enumerate(SPARSITIES)):
        model = prune_unstructured(dense, s, criterion=c, data=seed_batches[seed][:4], seed=seed)
        acc[c][0, i, j] = evaluate(model, test_loader)
        loader.generator.manual_seed(seed)                             # the same shuffle for every criterion
        train(model, loader, epochs=FT_EPOCHS, lr=FT_LR, progress=False, seed=seed)
        acc[c][1, i, j] = evaluate(model, test_loader)
        bar.update(1)
bar.close()

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
xs = 100 * np.array(SPARSITIES)
for ax, k, title in zip(axes, [0, 1], ["one-shot", f"after {FT_EPOCHS} epoch of fine-tuning"]):
    for c in SWEEP:
        mean, std = 100 * acc[c][k].mean(0), 100 * acc[c][k].std(0, ddof=1)
        ax.errorbar(xs, mean, yerr=std, marker="o", ms=4, capsize=3, label=c)
    ax.axhline(100 * base_acc, c="k", ls=":", lw=1, label="dense")
    ax.set(xlabel="sparsity (% of weights removed, every layer)", title=title)
axes[0].set_ylabel(f"test accuracy (%), mean ± std, n={len(SWEEP_SEEDS)}")
axes[1].legend(fontsize=8)
plt.tight_layout()

# %%
# NBVAL_IGNORE_OUTPUT
print(f"{'criterion':>18} " + "".join(f"{f'{s:.0%} one-shot':>15}{f'{s:.0%} tuned':>15}" for s in SPARSITIES))
for c in SWEEP:
    print(f"{c:>18} " + "".join(f"{ms(acc[c][0, :, j]):>15}{ms(acc[c][1, :, j]):>15}" for j in range(len(SPARSITIES))))
print(f"mean ± sample std over n={len(SWEEP_SEEDS)} seeds, in %; dense {100 * base_acc:.1f}")

# %% [markdown]
# Magnitude's one-shot numbers have no spread: it uses neither data nor randomness, so every seed prunes the same
# weights (its fine-tuned numbers still vary with the shuffle). **One-shot, magnitude is best or tied at every
# sparsity** measured here; OBD is the strongest of the data criteria and cited Taylor comes after it. **After one
# epoch of fine-tuning** the spread shrinks a lot, but up to 95% magnitude still ends ahead of OBD and Taylor. At
# 98% the order turns: OBD ends clearly ahead of magnitude, whose one-shot network there had lost too much to
# recover in one epoch, and every real criterion ends far above random.
#
# Why does the oracle's winner lose to magnitude? The oracle judges the first weight removed; at 90% the
# remaining network is far from the trained one, and what matters is whether the 10% that stay can carry the
# function. A local estimate of each weight's cost, made once around the trained weights, does not see that; the
# magnitudes that training shaped do, to a degree.

# %%
mean1 = {c: acc[c][0].mean(0) for c in SWEEP}
mean2 = {c: acc[c][1].mean(0) for c in SWEEP}
claim(all(mean1["magnitude"][j] >= max(mean1[c][j] for c in SWEEP) - 0.01 for j in range(len(SPARSITIES))),
      "one-shot, magnitude is best (or within a point of the best) at every sparsity")
claim(all(mean1["obd"][j] >= mean1["taylor"][j] - 0.01 for j in range(len(SPARSITIES))),
      "one-shot, OBD is at or above cited Taylor at every sparsity")
claim(all(mean2["magnitude"][j] > max(mean2["obd"][j], mean2["taylor"][j]) for j, s in enumerate(SPARSITIES) if s <= 0.95),
      "after fine-tuning, magnitude is still ahead of OBD and Taylor up to 95%")
claim(SPARSITIES[-1] != 0.98 or mean2["obd"][-1] > mean2["magnitude"][-1] + 0.05,
      "after fine-tuning at 98%, OBD ends clearly ahead of magnitude")
claim(all(mean2[c][-1] > mean2["random"][-1] + 0.1 for c in SWEEP if c != "random"),
      f"after fine-tuning at {SPARSITIES[-1]:.0%}, every real criterion is far above random");

# %% [markdown]
# ## Summary
#
# - **Taylor as its paper defines it.** First-order Taylor (Molchanov et al. 2019) averages the *squared*
#   per-batch term (w·g_b)²; the first-order term with the mean signed gradient, |w·ḡ|, is a different estimator
#   (kept as `taylor_signed_mean`, and SNIP's raw score). With four batches or more the cited estimator prunes
#   far better, and only it improves with more batches.
# - **Magnitude beats Taylor** one-shot at 90% per layer: by 28 points when Taylor sees four batches, and still by
#   14 with 32 (mean of n=3 seeds; the signed-mean estimator is 57 points behind). Magnitude beats every data
#   criterion there even when they see 32 batches. OBD, the second-order criterion, comes
#   closest.
# - **The oracle** ranks single weights differently: OBD, then cited Taylor, predict the true loss change of one
#   weight better than magnitude, pooled and within each layer, and much better at initialisation. Predicting the
#   first removal is not the same as choosing which 10% to keep.
# - **After fine-tuning** the criteria move closer together, and at 98% OBD ends ahead of magnitude; every real
#   criterion beats random, which is the first test the course sets any criterion.

# %%
print(f"90% per layer, one-shot, 4 batches (mean ± std, n=3): magnitude {ms(acc90['magnitude'])}, "
      f"OBD {ms(acc90['obd'])}, taylor {ms(acc90['taylor'])}, taylor_signed_mean {ms(acc90['taylor_signed_mean'])}, "
      f"random {ms(acc90['random'])}")
print(f"magnitude beats cited Taylor by {gap90:.0f} points (4 batches) and by "
      f"{100 * (np.mean(acc90['magnitude']) - mean_b['taylor', 32]):.0f} points with 32 batches; "
      f"the signed mean by {100 * (np.mean(acc90['magnitude']) - np.mean(acc90['taylor_signed_mean'])):.0f}")
for c in ["magnitude", "taylor", "obd"]:
    per_layer = "/".join(f"{r_t[c, 'new'][l]:.2f}" for l in LAYERS)
    print(f"oracle, trained, new data: {c} ρ pooled {r_t[c, 'new']['all']:.2f}, fc1/fc2/fc3 {per_layer}")
gap32 = 100 * (np.mean(acc90["magnitude"]) - mean_b["taylor", 32])
gap_signed = 100 * (np.mean(acc90["magnitude"]) - np.mean(acc90["taylor_signed_mean"]))
claim(round(gap90) == 28 and round(gap32) == 14 and round(gap_signed) == 57,
      "magnitude beats cited Taylor by 28 points (4 batches), by 14 with 32, and the signed mean by 57");

# %% [markdown]
# ## Exercises
#
# This notebook's two exercises sit where their library twins are first used: **Exercise 04.1** (the first-order
# score) in §1, before the criteria are compared, and **Exercise 04.2** (Spearman's ρ) opens §2, before the oracle.
# Going further, without a check: score the trained network with `obd_scores(..., hessian="fisher")` (the empirical
# Fisher) and compare its ranking and its size with the Gauss-Newton default; or give cited Taylor all 63 training
# batches and see how close it comes to magnitude at 90%.

# %% [markdown]
# ## References
#
# - Y. LeCun, J. S. Denker, S. A. Solla. *Optimal Brain Damage.* NIPS 1989.
# - S. Han, J. Pool, J. Tran, W. J. Dally. *Learning both Weights and Connections for Efficient Neural Networks.* NIPS 2015.
# - P. Molchanov, S. Tyree, T. Karras, T. Aila, J. Kautz. *Pruning Convolutional Neural Networks for Resource Efficient Inference.* ICLR 2017.
# - P. Molchanov, A. Mallya, S. Tyree, I. Frosio, J. Kautz. *Importance Estimation for Neural Network Pruning.* CVPR 2019 (code: github.com/NVlabs/Taylor_pruning).
# - N. Lee, T. Ajanthan, P. H. S. Torr. *SNIP: Single-shot Network Pruning based on Connection Sensitivity.* ICLR 2019.
# - C. Wang, G. Zhang, R. Grosse. *Picking Winning Tickets Before Training by Preserving Gradient Flow* (GraSP). ICLR 2020.
# - F. Kunstner, L. Balles, P. Hennig. *Limitations of the Empirical Fisher Approximation for Natural Gradient Descent.* NeurIPS 2019.
# - Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. *Gradient-based learning applied to document recognition.* Proc. IEEE 1998 (LeNet-300-100, MNIST).
