# %% [markdown]
# # 04 · What to prune: magnitude vs gradient criteria
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/pruning-course/pruning-course/blob/main/notebooks/04_criteria.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/pruning-course/pruning-course/HEAD?labpath=notebooks%2F04_criteria.ipynb)
#
# A **criterion** gives every weight a score; pruning removes the lowest scores first. The smallest |w| is the
# classic choice, but the quantity we actually care about is how much the **loss** rises when a weight disappears.
# Gradient-based criteria try to estimate that change directly. This notebook compares five criteria on the same
# trained LeNet-300-100, measures the true loss change of single weights to see which criterion predicts it, and then
# asks the practical question: which criterion gives the most accurate pruned network?
#
# **What you will learn**
# - the five criteria of the course (magnitude, gradient, Taylor, SNIP, random) and the formula behind each;
# - how to measure the *true* effect of removing one weight (the oracle) and judge a criterion by rank correlation;
# - when gradient-based criteria predict the loss change better than magnitude (untrained weights), and when
#   magnitude is enough (trained weights, high sparsity);
# - why a criterion is only meaningful against a random baseline, with mean ± std over seeds.

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
from course import build_model, evaluate, fast, held_out_batch, make_loaders, prune_unstructured, score, setup, train_or_load
from course import gather, loss_change, sample_weights, spearman
setup(seed=0, threads=1)  # LeNet-sized layers: one thread is as fast, and steadier on a shared CPU

# %% [markdown]
# The data is MNIST; its `.info` says which copy this machine has (the full set after `make data`, otherwise the real
# 10,000-image subset that ships with the course). The dense baseline comes from `train_or_load` (a shipped,
# checksum-verified checkpoint).

# %%
train_loader, test_loader = make_loaders("mnist", batch_size=128)
print(test_loader.dataset.info)
print(f"train images: {len(train_loader.dataset):,}, test images: {len(test_loader.dataset):,}")
dense, info = train_or_load("lenet300", "mnist")
base_acc = evaluate(dense, test_loader)
print(f"LeNet-300-100 ({info['source']} checkpoint): test accuracy {base_acc:.2%}")

# %% [markdown]
# ## 1 · Five criteria
#
# For a weight $w$ with gradient $g = \partial L / \partial w$ (the mean over a few training batches), the course's
# criteria score it as follows. Low score = pruned first.
#
# | criterion | score | idea |
# |---|---|---|
# | `magnitude` | $\lvert w \rvert$ | small weights change the output least (Han et al. 2015) |
# | `gradient` | $\lvert g \rvert$ | the loss is sensitive to this weight |
# | `taylor` | $\lvert w \cdot g \rvert$ | first-order Taylor: $L(w{=}0) - L(w) \approx -g\,w$ (LeCun et al. 1990; Molchanov et al. 2017, 2019) |
# | `snip` | $\lvert w \cdot g \rvert / \sum \lvert w \cdot g \rvert$ | connection sensitivity, meant for pruning at initialisation (Lee et al. 2019) |
# | `random` | $u \sim U(0, 1)$ | the baseline every criterion must beat |
#
# Where does Taylor come from? Setting $w_i$ to zero moves the weights by $\Delta w = -w_i e_i$, and
# $L(w + \Delta w) \approx L(w) + g^\top \Delta w = L(w) - g_i w_i$. The magnitude criterion ignores the data;
# the gradient criteria need a few batches (`data=`). Here is the code of two of them:

# %%
from course import magnitude_scores, show, taylor_scores
show(magnitude_scores)

# %%
show(taylor_scores)

# %% [markdown]
# All five prune the same model to the same budget: 90% of the weights of every layer (`scope="local"`, so that only
# the choice of weights *inside* a layer differs; how to split a budget between layers is notebook 05). The gradient
# criteria all see the same four training batches. How much do their choices overlap with magnitude's?

# %%
CRITERIA = ["magnitude", "gradient", "taylor", "snip", "random"]
SPARSITY = 0.9
score_batches = list(itertools.islice(train_loader, 4))       # 4 × 128 training images, the same for every criterion
pruned = {c: prune_unstructured(dense, SPARSITY, criterion=c, data=score_batches) for c in CRITERIA}
kept = {c: torch.cat([m.prune_mask.flatten() for m in (p.fc1, p.fc2, p.fc3)]) for c, p in pruned.items()}
acc90 = {c: evaluate(p, test_loader) for c, p in pruned.items()}
overlap = {c: float((kept[c] & kept["magnitude"]).sum() / kept["magnitude"].sum()) for c in CRITERIA}
for c in CRITERIA:
    print(f"{c:>9}: accuracy {acc90[c]:6.2%}   kept weights shared with magnitude {overlap[c]:6.1%}")

# %% [markdown]
# SNIP divides Taylor's score by one number, the sum over all weights. Ranking is unchanged by that, so on the same
# data SNIP and Taylor keep exactly the same weights, in any scope. What distinguishes SNIP in the literature is
# *when* it is used: once, at initialisation, before training (notebook 06).

# %%
# NBVAL_CHECK_OUTPUT
print("SNIP keeps exactly the weights Taylor keeps:", torch.equal(kept["snip"], kept["taylor"]))

# %% [markdown]
# ## 2 · The oracle: what does removing one weight really cost?
#
# A criterion is a guess. The truth can be measured: for a weight $w_i$, set it to zero, evaluate the loss on a fixed
# batch, restore it. That gives $\Delta L_i = L(w \text{ with } w_i = 0) - L(w)$, one weight at a time.
# `loss_change` does exactly that, in float64: removing one weight changes a mean loss by so little
# that float32 rounding would blur many of the differences (the median change is printed below). Pruning only needs the *order* of the weights, so we judge each
# criterion by **Spearman's rank correlation** $\rho$ between its scores and $\lvert\Delta L\rvert$: Pearson's
# correlation of the ranks, +1 for the same order, 0 for none (Exercise 04.2 writes it).
#
# We sample the same number of weights from each layer (so the small output layer `fc3` is not drowned by the
# large `fc1`) and measure on two models:
# - the **trained** LeNet-300-100;
# - the same architecture **at initialisation** (untrained).
#
# And on two batches: the 512 training images the criteria computed their gradients on (**their own data**), and 1,000
# held-out test images (**new data**, the loss we actually care about).

# %%
PER_LAYER = fast(200, 40)
torch.manual_seed(0)
untrained = build_model("lenet300")
X_own, y_own = torch.cat([x for x, _ in score_batches]), torch.cat([y for _, y in score_batches])   # (512, 1, 28, 28)
X_new, y_new = held_out_batch("mnist", 1000)                                                       # (1000, 1, 28, 28)
oracle, rho = {}, {}
for name, model in {"trained": dense, "untrained": untrained}.items():
    picks = sample_weights(model, PER_LAYER, seed=0)
    oracle[name] = {"picks": picks, "own": loss_change(model, X_own, y_own, picks),
                    "new": loss_change(model, X_new, y_new, picks)}
    oracle[name]["scores"] = {c: gather(score(model, c, score_batches), picks) for c in CRITERIA}
    rho[name] = {(c, data): spearman(oracle[name]["scores"][c], oracle[name][data].abs())
                 for c in CRITERIA for data in ("own", "new")}
print(f"{len(picks)} weights per model ({PER_LAYER} per layer); median |ΔL| on new data: "
      f"trained {oracle['trained']['new'].abs().median():.1e}, untrained {oracle['untrained']['new'].abs().median():.1e}")
print(f"{'criterion':>10} | {'trained, own':>12} {'trained, new':>12} | {'init, own':>10} {'init, new':>10}")
for c in CRITERIA:
    print(f"{c:>10} | {rho['trained'][c, 'own']:12.3f} {rho['trained'][c, 'new']:12.3f} | "
          f"{rho['untrained'][c, 'own']:10.3f} {rho['untrained'][c, 'new']:10.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
x = np.arange(len(CRITERIA))
for ax, name in zip(axes, ["trained", "untrained"]):
    for k, (data, label) in enumerate([("own", "their own 512 training images"), ("new", "1,000 new test images")]):
        ax.bar(x + (k - 0.5) * 0.38, [rho[name][c, data] for c in CRITERIA], width=0.38, label=label)
    ax.set(xticks=x, xticklabels=CRITERIA, title=f"{name} LeNet-300-100", ylim=(-0.1, 1.3))
    ax.axhline(0, c="k", lw=0.6)
axes[0].set_ylabel("Spearman ρ with |ΔL|")
axes[0].legend(title="ΔL measured on", fontsize=8, title_fontsize=8, ncol=2, loc="upper left")
plt.tight_layout()

# %% [markdown]
# What do the two best candidates look like, weight by weight? Each dot is one weight; the x axis is its score, the
# y axis the true loss change on new data (log scales; weights whose removal changes nothing are left out).

# %%
fig, axes = plt.subplots(2, 2, figsize=(8, 6))
layer_of = {name: np.array([n for n, _ in oracle[name]["picks"]]) for name in oracle}
for row, name in enumerate(["trained", "untrained"]):
    truth = oracle[name]["new"].abs().numpy()
    for col, c in enumerate(["magnitude", "taylor"]):
        ax, s = axes[row, col], oracle[name]["scores"][c].numpy()
        for layer in ["fc1", "fc2", "fc3"]:
            sel = (layer_of[name] == layer) & (truth > 0) & (s > 0)
            ax.scatter(s[sel], truth[sel], s=5, alpha=0.6, label=layer)
        ax.set(xscale="log", yscale="log", xlabel=f"{c} score", ylabel="|ΔL| on new data",
               title=f"{name}: ρ = {rho[name][c, 'new']:.2f}")
axes[0, 0].legend(fontsize=8, markerscale=2)
plt.tight_layout()

# %%
from IPython.display import Markdown
r_t, r_u = rho["trained"], rho["untrained"]
gap = {name: rho[name]["taylor", "new"] - rho[name]["magnitude", "new"] for name in rho}
verdict = {name: "Taylor clearly ahead" if d > 0.1 else "Taylor slightly ahead" if d > 0.02 else
           "magnitude ahead" if d < -0.02 else "a tie" for name, d in gap.items()}
g_vs_m = {name: "below" if rho[name]["gradient", "new"] < rho[name]["magnitude", "new"] else "above" for name in rho}
g_vs_t = "below Taylor in both" if all(rho[n]["gradient", "new"] < rho[n]["taylor", "new"] for n in rho) else \
         "not always below Taylor"
enough = "about as good" if gap["trained"] < 0.1 else "still behind here"
Markdown(f"""
**What the oracle says.** On the data the gradients came from, Taylor tracks the true loss change closely:
ρ = {r_t['taylor', 'own']:.2f} (trained) and {r_u['taylor', 'own']:.2f} (untrained), against
{r_t['magnitude', 'own']:.2f} and {r_u['magnitude', 'own']:.2f} for magnitude. On **new data**, the loss we care
about, the picture depends on training:

- **Untrained weights:** Taylor {r_u['taylor', 'new']:.2f}, magnitude {r_u['magnitude', 'new']:.2f}
  ({verdict['untrained']}). At initialisation the weights of a layer share one scale, so |w| says little; the
  gradient is large and consistent across batches and carries what |w| misses. This is the case for pruning at
  initialisation with a gradient (SNIP, GraSP).
- **Trained weights:** Taylor {r_t['taylor', 'new']:.2f}, magnitude {r_t['magnitude', 'new']:.2f}
  ({verdict['trained']}; the Taylor lead was {gap['untrained']:+.2f} untrained, {gap['trained']:+.2f} trained).
  Training pushes the training-loss gradient towards zero, so what is left of it is largely batch noise, while
  training has made |w| itself informative. Magnitude, which needs no data at all, is {enough}.
- `gradient` (|g| alone) is {g_vs_m['trained']} magnitude on trained weights ({r_t['gradient', 'new']:.2f}) and
  {g_vs_m['untrained']} it untrained ({r_u['gradient', 'new']:.2f}), and {g_vs_t}: it ignores the weight,
  and a weight with a large gradient but w ≈ 0 costs nothing to remove. Its own-data ρ
  ({r_t['gradient', 'own']:.2f} trained) falls most on new data ({r_t['gradient', 'new']:.2f}): a gradient is a
  property of the batch it was measured on. `random` sits at ρ ≈ {r_t['random', 'new']:+.2f} /
  {r_u['random', 'new']:+.2f}, as it should.
""")

# %% [markdown]
# The oracle removes **one** weight at a time. Pruning removes most of them at once, far from where a first-order
# estimate holds. The next section measures what counts in the end: accuracy.
#
# ## 3 · Accuracy vs sparsity, one-shot and after a short fine-tune
#
# Each criterion prunes the trained model to several sparsities (local scope). We measure test accuracy right away
# (**one-shot**) and after fine-tuning for one epoch with the masks held fixed (`course.train` keeps pruned
# weights at zero). Every run is repeated over seeds: a seed picks the four training batches the gradients are
# computed on, the random criterion's draw, and the fine-tuning shuffle.

# %%
from course import train
SPARSITIES = fast([0.5, 0.8, 0.9, 0.95, 0.98], [0.8, 0.95])
SEEDS = fast([0, 1, 2], [0, 1])
FT_EPOCHS, FT_LR = 1, 0.01
acc = {c: np.zeros((2, len(SEEDS), len(SPARSITIES))) for c in CRITERIA}   # [one-shot / fine-tuned, seed, sparsity]
bar = tqdm(total=len(SEEDS) * len(CRITERIA) * len(SPARSITIES), desc="prune + fine-tune")
for i, seed in enumerate(SEEDS):
    loader = make_loaders("mnist", batch_size=128, seed=seed)[0]
    batches = list(itertools.islice(loader, 4))                        # this seed's gradient batches
    for c, (j, s) in itertools.product(CRITERIA, enumerate(SPARSITIES)):
        model = prune_unstructured(dense, s, criterion=c, data=batches, seed=seed)
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
    for c in CRITERIA:
        mean, std = 100 * acc[c][k].mean(0), 100 * acc[c][k].std(0)
        ax.errorbar(xs, mean, yerr=std, marker="x" if c == "snip" else "o", ms=4, capsize=3, label=c,
                    ls="--" if c == "snip" else "-")
    ax.axhline(100 * base_acc, c="k", ls=":", lw=1, label="dense")
    ax.set(xlabel="sparsity (% of weights removed, every layer)", title=title)
axes[0].set_ylabel(f"test accuracy (%), mean ± std over {len(SEEDS)} seeds")
axes[1].legend(fontsize=8)
plt.tight_layout()

# %%
j_show = SPARSITIES.index(0.95) if 0.95 in SPARSITIES else len(SPARSITIES) - 1
s_show = SPARSITIES[j_show]
print(f"{'criterion':>10}  one-shot at {s_show:.0%}     fine-tuned at {s_show:.0%}")
for c in CRITERIA:
    print(f"{c:>10}  {acc[c][0, :, j_show].mean():.2%} ± {acc[c][0, :, j_show].std():.2%}   "
          f"{acc[c][1, :, j_show].mean():.2%} ± {acc[c][1, :, j_show].std():.2%}")

# %% [markdown]
# Magnitude's one-shot numbers have no spread: it uses neither data nor randomness, so every seed prunes the same
# weights (its fine-tuned numbers still vary with the shuffle). Taylor and SNIP lie on top of each other, as §1
# predicted.
#
# ## Summary

# %%
m1, m2 = acc["magnitude"][0].mean(0), acc["magnitude"][1].mean(0)
t1, t2 = acc["taylor"][0].mean(0), acc["taylor"][1].mean(0)
wins = [f"{s:.0%}" for s, a, b in zip(SPARSITIES, m1, t1) if a > b]
hi = SPARSITIES[-1]
final = {c: acc[c][1].mean(0)[-1] for c in CRITERIA}
beat_random = [c for c in CRITERIA if c != "random" and final[c] > final["random"]]
Markdown(f"""
- Five criteria, one budget: at {SPARSITY:.0%} sparsity per layer the one-shot accuracy ranges from
  {min(acc90.values()):.1%} ({min(acc90, key=acc90.get)}) to {max(acc90.values()):.1%} ({max(acc90, key=acc90.get)}),
  dense {base_acc:.1%}. SNIP keeps exactly Taylor's weights (a constant factor does not change a ranking).
- The oracle ({len(oracle['trained']['picks'])} weights per model, true single-weight loss changes on new data):
  untrained, Taylor ρ {r_u['taylor', 'new']:.2f} vs magnitude {r_u['magnitude', 'new']:.2f}; trained,
  {r_t['taylor', 'new']:.2f} vs {r_t['magnitude', 'new']:.2f}. Gradients help most when the weights are not trained.
- Whole networks, one-shot: magnitude beats Taylor at {', '.join(wins) if wins else 'none'} of the
  {len(SPARSITIES)} sparsities measured. At {hi:.0%}: magnitude {m1[-1]:.1%}, Taylor {t1[-1]:.1%}, random
  {acc['random'][0].mean(0)[-1]:.1%} (mean over {len(SEEDS)} seeds). The oracle scores one weight at a time; removing
  {hi:.0%} of them together is far outside the range where a first-order estimate holds.
- After {FT_EPOCHS} epoch of fine-tuning, at {hi:.0%}: magnitude {m2[-1]:.1%}, Taylor {t2[-1]:.1%},
  gradient {final['gradient']:.1%}, random {final['random']:.1%}. {len(beat_random)} of the
  {len(CRITERIA) - 1} real criteria beat random there; beating random is the first test for any criterion
  (Blalock et al. 2020).
""")

# %% [markdown]
# ## Exercises
#
# **Exercise 04.1: a Taylor score.** Write `taylor_score(weight, grad)` that returns one score per weight: the
# first-order estimate of how much the loss changes when that weight is set to zero, as a magnitude.
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
# **Exercise 04.2: Spearman's rank correlation.** Write `spearman_rho(a, b)` for two 1-D tensors of the same length
# (no ties): replace each value by its rank, then return Pearson's correlation of the two rank vectors, as a number.
# Section 2 judged every criterion with this.
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
# ## References
#
# - Y. LeCun, J. S. Denker, S. A. Solla. *Optimal Brain Damage.* NeurIPS 1990.
# - S. Han, J. Pool, J. Tran, W. J. Dally. *Learning both Weights and Connections for Efficient Neural Networks.* NeurIPS 2015.
# - P. Molchanov, S. Tyree, T. Karras, T. Aila, J. Kautz. *Pruning Convolutional Neural Networks for Resource Efficient Inference.* ICLR 2017.
# - P. Molchanov, A. Mallya, S. Tyree, I. Frosio, J. Kautz. *Importance Estimation for Neural Network Pruning.* CVPR 2019.
# - N. Lee, T. Ajanthan, P. H. S. Torr. *SNIP: Single-shot Network Pruning based on Connection Sensitivity.* ICLR 2019.
# - C. Wang, G. Zhang, R. Grosse. *Picking Winning Tickets Before Training by Preserving Gradient Flow* (GraSP). ICLR 2020.
# - H. Tanaka, D. Kunin, D. L. K. Yamins, S. Ganguli. *Pruning neural networks without any data by iteratively conserving synaptic flow* (SynFlow). NeurIPS 2020.
# - D. Blalock, J. J. Gonzalez Ortiz, J. Frankle, J. Guttag. *What is the State of Neural Network Pruning?* MLSys 2020.
# - Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. *Gradient-based learning applied to document recognition.* Proc. IEEE 1998 (LeNet-300-100, MNIST).
