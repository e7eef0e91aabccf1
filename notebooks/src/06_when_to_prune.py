# %% [markdown]
# # 06 · When to prune, and fine-tuning
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/pruning-course/pruning-course/blob/main/notebooks/06_when_to_prune.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/pruning-course/pruning-course/HEAD?labpath=notebooks%2F06_when_to_prune.ipynb)
#
# The earlier notebooks decided **what** to prune (a criterion) and **where** (a scope). This one decides **when**:
# after training and then fine-tune, a little at a time, gradually while training, at initialisation before any
# training, or lottery-style (prune, rewind the survivors to their initial values, retrain). Every comparison is run
# here on LeNet-300-100 and real MNIST digits, at the same final sparsity and, where it matters, the same number of
# optimizer steps.
#
# **What you will learn**
# - how much accuracy fine-tuning recovers after pruning, how fast, and when no fine-tuning is needed at all;
# - one-shot vs iterative vs gradual pruning (the cubic schedule of Zhu & Gupta 2017) on the same compute budget;
# - pruning at initialisation (SNIP) against pruning a trained network, and against a random mask;
# - lottery tickets: why the *initial values* of the surviving weights matter (Frankle & Carbin 2019);
# - practical settings for fine-tuning (learning rate, epochs, when to stop), read off the measurements.

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
import copy, functools, torch, matplotlib.pyplot as plt; from IPython.display import Markdown; from tqdm.auto import tqdm
from course import (build_model, cubic_sparsity, fast, finetuner, gradual_pruning, iterative_pruning, lottery_ticket,
                    make_loaders, one_shot, prune_unstructured, setup)
from course import evaluate, train, train_or_load
setup(seed=0, threads=1)    # one thread: small models, and steady run times on a busy machine

# %% [markdown]
# The data: MNIST, LeNet-300-100's classic task. `.info` says which copy this machine has: the full set after
# `make data`, otherwise the real 10,000-image subset that ships with the course. We fine-tune on at most 8,000
# training images, so every run in this notebook takes seconds.

# %%
train_loader, test_loader = make_loaders("mnist", batch_size=128, train_size=fast(8000, 2000))
print(train_loader.dataset.info)
print(f"train images: {len(train_loader.dataset):,} ({len(train_loader)} optimizer steps per epoch), "
      f"test images: {len(test_loader.dataset):,}")

# %%
dense, info = train_or_load("lenet300", "mnist")
dense_acc = evaluate(dense, test_loader)
acc_of = functools.partial(evaluate, loader=test_loader)       # model -> test accuracy, for the schedules below
print(f"dense LeNet-300-100 ({info['source']} checkpoint, {info['epochs']} epochs): test accuracy {dense_acc:.2%}")

# %% [markdown]
# We rank weights by magnitude over the whole network (`scope="global"`), so the first layer, which holds 235,200
# of the 266,200 weights and most of the redundancy (many of its inputs are blank border pixels), can give up more
# than the small output layer. We watch the **test** accuracy during fine-tuning because the baseline was trained
# on every training image; in a real project, keep a validation split aside for these decisions.
#
# ## 1 · Prune after training, then fine-tune
#
# Prune the trained network once, then train the survivors for a few epochs (SGD, momentum 0.9, constant learning
# rate; `course.train` keeps pruned weights at exactly zero), and evaluate after every epoch.

# %%
SPARSITIES = fast([0.5, 0.8, 0.9, 0.95, 0.98], [0.5, 0.9, 0.98])
FT_EPOCHS, FT_LR = fast(6, 2), 0.01
curves = {}                                                     # sparsity -> [acc before fine-tuning, after epoch 1, ...]
for s in tqdm(SPARSITIES, desc="prune + fine-tune"):
    pruned = prune_unstructured(dense, s, scope="global")
    before = evaluate(pruned, test_loader)
    history = train(pruned, train_loader, epochs=FT_EPOCHS, lr=FT_LR, val_loader=test_loader, seed=0, progress=False)
    curves[s] = [before] + history.val_acc
print(f"{'sparsity':>8} {'no fine-tune':>13} {'after 1 epoch':>14} {f'after {FT_EPOCHS}':>9} {'gain (points)':>14}")
for s, c in curves.items():
    print(f"{s:>8.0%} {c[0]:>13.2%} {c[1]:>14.2%} {c[-1]:>9.2%} {100 * (c[-1] - c[0]):>+14.2f}")

# %%
fig, ax = plt.subplots()
for s, c in curves.items():
    ax.plot(range(len(c)), [100 * a for a in c], marker="o", label=f"{s:.0%} sparse")
ax.axhline(100 * dense_acc, color="k", ls="--", lw=1, label="dense")
ax.set(xlabel="fine-tuning epoch (0 = right after pruning)", ylabel="test accuracy (%)",
       title="Fine-tuning after one-shot magnitude pruning", ylim=(max(0, 100 * min(min(curves.values())) - 5), 100))
ax.legend(ncol=2, fontsize=8); plt.show()

# %% [markdown]
# Read the curves from left to right: epoch 0 is the pruned network before any training.

# %%
TOL = 0.005                                                    # "no loss": within half a point of dense
free = [s for s, c in curves.items() if c[0] >= dense_acc - TOL]
hard = max(SPARSITIES)
gain_total, gain_first = curves[hard][-1] - curves[hard][0], curves[hard][1] - curves[hard][0]
first_share = gain_first / gain_total if gain_total > 0 else float("nan")
Markdown(f"- **Light pruning needs no fine-tuning**: up to {max(free, default=0):.0%} sparsity the pruned network is "
         f"within {100 * TOL:.1f} points of the dense {dense_acc:.2%} before any training "
         f"({', '.join(f'{s:.0%}: {curves[s][0]:.2%}' for s in free) or 'none here'}).\n"
         f"- **Heavy pruning needs it**: at {hard:.0%} accuracy falls to {curves[hard][0]:.2%}; {FT_EPOCHS} epochs of "
         f"fine-tuning bring it to {curves[hard][-1]:.2%} ({100 * gain_total:+.2f} points), and the first epoch alone does "
         f"{first_share:.0%} of that gain.")

# %% [markdown]
# ## 2 · One-shot, iterative or gradual, on the same budget
#
# Three ways to reach the same final sparsity from the same trained network, each allowed **the same number of
# optimizer steps**:
# - **one-shot**: prune to the final sparsity at once, then fine-tune for the whole budget;
# - **iterative** (Han et al. 2015): prune → fine-tune, K times, each step removing the same fraction of the weights
#   still left (targets s_k = 1 − (1 − p)^k, Exercise 06.2), each fine-tuning 1/K of the budget;
# - **gradual** (Zhu & Gupta 2017): prune a little every Δt optimizer steps *during* training, following the cubic
#   schedule s_t = s_f + (s_i − s_f)(1 − (t − t₀)/(nΔt))³, fast at first while many weights are redundant, slowly
#   near the end; here the pruning window covers the first 75% of the steps and the rest trains at s_f.

# %%
FINAL = 0.98                                                    # the final sparsity of sections 2 and 3
BUDGET_EPOCHS, K = fast(6, 3), 3                                # BUDGET_EPOCHS is a multiple of K
total_steps = BUDGET_EPOCHS * len(train_loader)
END, FREQ = round(0.75 * total_steps), max(1, round(0.75 * total_steps) // 10)    # cubic window and Δt, in steps
print(f"{total_steps} optimizer steps; the cubic schedule prunes every {FREQ} steps from step 0 to step {END}")

# %% [markdown]
# `cubic_sparsity` is the schedule itself. Over a 100-step window to 98%, half of the final sparsity is reached in
# the first fifth of the window:

# %%
# NBVAL_CHECK_OUTPUT
print({t: round(cubic_sparsity(t, final_sparsity=0.98, end_step=100), 4) for t in (0, 10, 20, 50, 80, 100, 150)})

# %%
oneshot = one_shot(dense, FINAL, scope="global")                                      # prune once ...
oneshot_hist = train(oneshot, train_loader, epochs=BUDGET_EPOCHS, lr=FT_LR, val_loader=test_loader, seed=0,
                     progress=False)                                                  # ... fine-tune the whole budget
cycle = finetuner(train_loader, epochs=BUDGET_EPOCHS // K, lr=FT_LR, seed=0, progress=False)
iterative, iterative_hist = iterative_pruning(dense, FINAL, steps=K, finetune=cycle, evaluate=acc_of, scope="global")
gradual, gradual_hist = gradual_pruning(dense, FINAL, train_loader, epochs=BUDGET_EPOCHS, lr=FT_LR, end_step=END,
                                        frequency=FREQ, evaluate=acc_of, scope="global")
budget = {"one-shot": len(oneshot_hist.loss) * len(train_loader),
          "iterative": K * (BUDGET_EPOCHS // K) * len(train_loader),
          "gradual": gradual_hist[-1]["step"]}
print("optimizer steps:", budget)

# %%
# NBVAL_CHECK_OUTPUT
print("same budget:", len(set(budget.values())) == 1)

# %%
cycle = (BUDGET_EPOCHS // K) * len(train_loader)                      # optimizer steps per iterative cycle
prunes = [r for r in gradual_hist if r["event"] == "prune"]
epochs = [r for r in gradual_hist if r["event"] == "epoch"]
sparsity_paths = {"one-shot": ([0, total_steps], [FINAL, FINAL]),
                  "iterative": ([(k - 1) * cycle for k in range(1, K + 1)] + [total_steps],
                                [r["sparsity"] for r in iterative_hist[1:]] + [FINAL]),
                  "gradual": ([r["step"] for r in prunes] + [total_steps], [r["sparsity"] for r in prunes] + [FINAL])}
runs = {"one-shot": ([e * len(train_loader) for e in range(BUDGET_EPOCHS + 1)], [curves[FINAL][0]] + oneshot_hist.val_acc),
        "iterative": ([r["step"] * cycle for r in iterative_hist], [r["metric"] for r in iterative_hist]),
        "gradual": ([0] + [r["step"] for r in epochs], [dense_acc] + [r["metric"] for r in epochs])}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
t = range(total_steps + 1)
ax1.plot(t, [100 * cubic_sparsity(i, final_sparsity=FINAL, end_step=END) for i in t], color="gray", lw=1,
         ls=":", label="cubic formula (Δt = 1)")
for name in runs:
    x, s = sparsity_paths[name]
    ax1.step(x, [100 * v for v in s], where="post", label=name)
    ax2.plot(runs[name][0], [100 * a for a in runs[name][1]], marker="o", label=name)
ax1.set(xlabel="optimizer step", ylabel="sparsity (%)", title="Sparsity reached (prune events)")
ax2.axhline(100 * dense_acc, color="k", ls="--", lw=1, label="dense")
ax2.set(xlabel="optimizer step", ylabel="test accuracy (%)", title="Accuracy along the way",
        ylim=(max(0, 100 * min(min(v[1]) for v in runs.values()) - 3), 100))
ax1.legend(); ax2.legend(); plt.tight_layout(); plt.show()

# %%
final2 = {name: acc_of(m) for name, m in (("one-shot", oneshot), ("iterative", iterative), ("gradual", gradual))}
best2, worst2 = max(final2, key=final2.get), min(final2, key=final2.get)
low = {name: min(zip(acc, x)) for name, (x, acc) in runs.items()}      # lowest accuracy along the way, and where
n_test = len(test_loader.dataset)
se = (final2[best2] * (1 - final2[best2]) / n_test) ** 0.5               # standard error of one measured accuracy
Markdown(f"At {FINAL:.0%} sparsity and {budget['one-shot']} optimizer steps each: "
         + ", ".join(f"**{k}** {v:.2%}" for k, v in final2.items())
         + f" (dense {dense_acc:.2%}). The best, {best2}, is ahead of the worst, {worst2}, by "
         f"{100 * (final2[best2] - final2[worst2]):.2f} points on this run. How much is that? An accuracy measured on "
         f"{n_test:,} test images has a standard error of √(p(1 − p)/n) ≈ {100 * se:.2f} points, so "
         + ("this gap is within the noise of one run (Blalock et al. 2020 ask for several seeds before claiming a "
            "winner)" if final2[best2] - final2[worst2] < 2 * se else "this gap is larger than the noise of one run")
         + ". The paths differ more than the end points: the lowest "
         "accuracy along the way was " + ", ".join(f"{k} {a:.2%} (step {x})" for k, (a, x) in low.items())
         + ". One-shot takes its loss at once and spends every step repairing it; iterative and gradual pruning "
         "spread the damage, and the gradual run still trains at full sparsity after its pruning window.")

# %% [markdown]
# ## 3 · Prune at initialisation, or after training?
#
# **SNIP** (Lee et al. 2019) prunes *before* training: on a randomly initialised network it scores each weight by
# its connection sensitivity |w · ∂L/∂w| on a few batches, keeps the top ones, and trains only those. If it works,
# the expensive dense training is skipped. We compare three models with the **same training budget** (the same
# number of epochs, so the same optimizer steps), all from one random initialisation:
# - **SNIP at init**: prune by `criterion="snip"` (4 batches of 128 images), then train the whole budget;
# - **random at init**: a random mask of the same sparsity, then train the whole budget (the control);
# - **after training**: train dense for half the budget, prune by magnitude, fine-tune for the other half.

# %%
INIT_EPOCHS = fast(8, 2)
recipe = dict(lr=0.05, schedule="cosine", weight_decay=1e-4, seed=0, progress=False)   # the baselines' recipe
torch.manual_seed(0)
init = build_model("lenet300")                                                        # one shared initialisation
at_init = {}
for crit in ("snip", "random"):
    at_init[crit] = prune_unstructured(init, FINAL, criterion=crit, scope="global", data=train_loader, num_batches=4)
    train(at_init[crit], train_loader, epochs=INIT_EPOCHS, **recipe)
half = copy.deepcopy(init)
train(half, train_loader, epochs=INIT_EPOCHS // 2, **recipe)
after = prune_unstructured(half, FINAL, scope="global")
train(after, train_loader, epochs=INIT_EPOCHS - INIT_EPOCHS // 2, lr=FT_LR, seed=0, progress=False)
results3 = {"SNIP at init": acc_of(at_init["snip"]), "random at init": acc_of(at_init["random"]),
            "magnitude after training": acc_of(after)}
for name, acc in results3.items():
    print(f"{name:>25}: {acc:.2%}")
print(f"(all at {FINAL:.0%} sparsity, {INIT_EPOCHS} epochs = {INIT_EPOCHS * len(train_loader)} optimizer steps each)")

# %% [markdown]
# Where did each method leave its weights? The share kept per layer tells much of the story: at this sparsity a
# random mask keeps the same small share of every layer, including the output layer that every prediction needs.

# %%
models3 = {"SNIP at init": at_init["snip"], "random at init": at_init["random"], "magnitude after training": after}
layers = ["fc1", "fc2", "fc3"]
print(f"{'kept per layer':>25}: " + "".join(f"{n:>8}" for n in layers))
for name, m in models3.items():
    print(f"{name:>25}: " + "".join(f"{getattr(m, n).prune_mask.float().mean().item():>8.1%}" for n in layers))

# %%
gap_rand = results3["SNIP at init"] - results3["random at init"]
gap_after = results3["magnitude after training"] - results3["SNIP at init"]
verdict = ("at initialisation SNIP finds a mask about as good as the one a trained network gives, and a random "
           "mask is no substitute for either" if abs(gap_after) < 2 * se and gap_rand > 2 * se else "")
Markdown(f"With the same {INIT_EPOCHS} epochs, SNIP's mask at initialisation is {'ahead of' if gap_rand > 0 else 'behind'} "
         f"a random mask by {100 * abs(gap_rand):.2f} points"
         + (": a few batches of gradients already tell which connections matter" if gap_rand > 0 else "")
         + f". Pruning a (half-)trained network by magnitude is {'ahead of' if gap_after > 0 else 'behind'} SNIP by "
         f"{100 * abs(gap_after):.2f} points on this run, at {FINAL:.0%} sparsity" + (f": {verdict}." if verdict else "."))

# %% [markdown]
# ## 4 · Lottery tickets
#
# Frankle & Carbin (2019) asked: if a sparse subnetwork can be trained *after* pruning, could it have been trained
# from the start? Their procedure, **iterative magnitude pruning with rewinding**: train, prune p of the surviving
# weights, reset the survivors to their **initial** values θ₀, and repeat. After r rounds the sparsity is
# 1 − (1 − p)^r. The control keeps the same mask but draws **fresh random** initial values
# (`reinit_control=True`): if the ticket wins, the initial values of the survivors mattered, not just the mask.
#
# `lottery_ticket` returns the control for its final mask, so we run it for 1, 2, … rounds (each run repeats the
# earlier rounds; on LeNet-300-100 that is cheap). Each training run uses the baseline's recipe
# for a few epochs. For LeNet-300-100, rewinding to θ₀ is enough; deeper networks need rewinding to an early
# training step (`rewind=k`, Frankle et al. 2020).

# %%
ROUNDS, RATE, LT_EPOCHS = fast(4, 2), 0.6, fast(3, 1)
train_fn = finetuner(train_loader, epochs=LT_EPOCHS, **recipe)
lottery = []                                                              # the last history row of each run
for r in tqdm(range(1, ROUNDS + 1), desc="lottery tickets"):
    lt = lottery_ticket(init, train_fn, rounds=r, prune_rate_per_round=RATE, rewind="init", reinit_control=True,
                        evaluate=acc_of, scope="global")
    lottery.append(lt.history[-1])
dense_short = lt.history[0]["metric"]                                     # the dense network, same training
for row in lottery:
    print(f"round {row['round']}: {1 - row['sparsity']:6.1%} of the weights left   ticket {row['metric']:.2%}   "
          f"random re-init {row['control_metric']:.2%}")

# %%
left = [100 * (1 - row["sparsity"]) for row in lottery]
fig, ax = plt.subplots()
ax.plot(left, [100 * row["metric"] for row in lottery], marker="o", label="ticket (rewound to θ₀)")
ax.plot(left, [100 * row["control_metric"] for row in lottery], marker="s", label="same mask, random re-init")
ax.axhline(100 * dense_short, color="k", ls="--", lw=1, label=f"dense, same {LT_EPOCHS}-epoch training")
ax.set_xscale("log"); ax.invert_xaxis(); ax.minorticks_off(); ax.set_xticks(left, [f"{v:.3g}" for v in left])
ax.set(xlabel="weights remaining (%, log scale)", ylabel="test accuracy (%)", title="Lottery tickets on LeNet-300-100")
ax.legend(); plt.show()

# %%
last = lottery[-1]
Markdown(f"At {1 - last['sparsity']:.1%} of the weights, the ticket reaches {last['metric']:.2%} against "
         f"{last['control_metric']:.2%} for the same mask with fresh random values "
         f"({100 * (last['metric'] - last['control_metric']):+.2f} points); the dense network trained the same way reaches "
         f"{dense_short:.2%}. The mask alone is not the ticket: the surviving weights' initial values are part of it.")

# %% [markdown]
# ## 5 · Practical settings for fine-tuning
#
# Three decisions remain: the learning rate, the number of epochs, and when to stop. First a small sweep of the
# fine-tuning learning rate at the hardest sparsity of this notebook (one-shot, then fine-tune), with the same
# epochs as in section 1.

# %%
LRS = [0.001, 0.01, 0.1]
lr_curves = {}
for lr in tqdm(LRS, desc="learning rates"):
    net = prune_unstructured(dense, FINAL, scope="global")
    before = acc_of(net)
    h = train(net, train_loader, epochs=FT_EPOCHS, lr=lr, val_loader=test_loader, seed=0, progress=False)
    lr_curves[lr] = [before] + h.val_acc
fig, ax = plt.subplots()
for lr, c in lr_curves.items():
    ax.plot(range(len(c)), [100 * a for a in c], marker="o", label=f"lr = {lr}")
ax.axhline(100 * dense_acc, color="k", ls="--", lw=1, label="dense")
ax.set(xlabel="fine-tuning epoch", ylabel="test accuracy (%)", title=f"Fine-tuning learning rate at {FINAL:.0%} sparsity")
ax.legend(); plt.show()

# %% [markdown]
# **When to stop.** A simple rule: stop at the first epoch that gains less than a tenth of a point (on a validation
# split, in a real project). The cell below applies it to every fine-tuning curve of section 1.

# %%
MIN_GAIN = 0.001
stop_at = {s: next((e for e in range(1, len(c)) if c[e] - c[e - 1] < MIN_GAIN), len(c) - 1) for s, c in curves.items()}
for s, e in stop_at.items():
    print(f"{s:>4.0%} sparse: stop after epoch {e} at {curves[s][e]:.2%} (best of {FT_EPOCHS} epochs: {max(curves[s]):.2%})")

# %%
best_lr = max(LRS, key=lambda lr: lr_curves[lr][-1])
good_lrs = [lr for lr in LRS if lr_curves[best_lr][-1] - lr_curves[lr][-1] < 2 * se]     # within 2 standard errors
slow_lr = min(LRS)
Markdown(f"- **Learning rate** (after {FT_EPOCHS} epochs at {FINAL:.0%} sparsity): "
         + ", ".join(f"lr {lr}: {c[-1]:.2%}" for lr, c in lr_curves.items()) + ". "
         + (f"lr = {best_lr} is best on this run" if len(good_lrs) == 1 else
            f"lr = {' and '.join(str(lr) for lr in good_lrs)} tie within two standard errors")
         + (f"; the smallest, lr = {slow_lr}, is {100 * (lr_curves[best_lr][-1] - lr_curves[slow_lr][-1]):.2f} points "
            "behind" if slow_lr not in good_lrs else "") + ". "
         "Try a few values spanning a factor of 100, as here: too small barely moves the survivors, and Renda et "
         "al. (2020) found that re-using the original training's larger learning rates ('learning-rate "
         "rewinding') often beats the usual small constant one.\n"
         f"- **Epochs and stopping**: the stopping rule (an epoch gaining < {100 * MIN_GAIN:.1f} points) stops after "
         + ", ".join(f"{e} epoch{'s' if e > 1 else ''} at {s:.0%}" for s, e in stop_at.items())
         + (". The sparser the network, the longer fine-tuning pays off" if stop_at[hard] > stop_at[min(SPARSITIES)]
            else "") + ".\n"
         f"- **No fine-tuning at all** up to {max(free, default=0):.0%} sparsity here (section 1).")

# %% [markdown]
# ## Summary

# %%
Markdown(f"Measured on MNIST ({len(train_loader.dataset):,} training images) with LeNet-300-100 "
         f"(dense {dense_acc:.2%}):\n\n"
         f"1. **Prune, then fine-tune.** Up to {max(free, default=0):.0%} sparsity no fine-tuning is needed "
         f"(within {100 * TOL:.1f} points); at {hard:.0%} accuracy drops to {curves[hard][0]:.2%} and {FT_EPOCHS} epochs bring "
         f"it to {curves[hard][-1]:.2%} ({first_share:.0%} of that gain in the first epoch).\n"
         f"2. **Schedules on one budget** ({budget['one-shot']} optimizer steps, {FINAL:.0%} sparse): "
         + ", ".join(f"{k} {v:.2%}" for k, v in final2.items()) + ".\n"
         f"3. **When**: SNIP at initialisation {results3['SNIP at init']:.2%}, random at initialisation "
         f"{results3['random at init']:.2%}, magnitude after training {results3['magnitude after training']:.2%} "
         f"(same {INIT_EPOCHS} epochs; one standard error ≈ {100 * se:.2f} points).\n"
         f"4. **Lottery tickets**: at {1 - last['sparsity']:.1%} of the weights the rewound ticket reaches "
         f"{last['metric']:.2%}, the same mask re-initialised {last['control_metric']:.2%}.\n"
         f"5. **Fine-tuning settings**: of lr {LRS}, {' and '.join(str(lr) for lr in good_lrs)} "
         f"{'is' if len(good_lrs) == 1 else 'are'} best (within two standard errors); stop when an epoch gains "
         f"< {100 * MIN_GAIN:.1f} points.")

# %% [markdown]
# ## Exercises
#
# **Exercise 06.1: the cubic sparsity schedule.** Write `cubic_schedule(step, final_sparsity, begin, end)`, the
# Zhu & Gupta schedule with initial sparsity 0 and no Δt rounding: 0 before `begin`, s_f·(1 − (1 − p)³) with
# p = (step − begin)/(end − begin) in between, and `final_sparsity` from `end` on.
#
# <details><summary>Hint</summary>
#
# Compute the progress p and clamp it to [0, 1] (`min(max(p, 0.0), 1.0)`); then the one formula covers all three
# cases. At p = 0 it gives 0 and at p = 1 it gives s_f.
# </details>

# %%
# Exercise 06.1: the cubic sparsity schedule
def cubic_schedule(step, final_sparsity, begin, end):
    """Zhu & Gupta (2017) with s_i = 0: s_f·(1 − (1 − p)³), p = clamp((step − begin) / (end − begin), 0, 1)."""
    ### BEGIN SOLUTION
    p = min(max((step - begin) / (end - begin), 0.0), 1.0)
    return final_sparsity * (1 - (1 - p) ** 3)
    ### END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
from course.checks import check_cubic_schedule
check_cubic_schedule(cubic_schedule)

# %% [markdown]
# **Exercise 06.2: targets of an iterative schedule.** An iterative schedule reaches `final_sparsity` in `steps`
# (K) prune → fine-tune cycles, each removing the same fraction p of the weights *still left*. Write
# `iterative_targets(final_sparsity, steps)` that returns the K cumulative sparsities s_1, …, s_K after each
# step (without s_0 = 0), the last one equal to `final_sparsity`.
#
# <details><summary>Hint</summary>
#
# After k steps a fraction (1 − p)^k of the weights is left, so s_k = 1 − (1 − p)^k. Choose p so that
# s_K = final_sparsity: (1 − p)^K = 1 − final_sparsity. Check: final_sparsity 0.875 in 3 steps gives p = 0.5 and
# targets 0.5, 0.75, 0.875.
# </details>

# %%
# Exercise 06.2: targets of an iterative schedule
def iterative_targets(final_sparsity, steps):
    """[s_1, ..., s_K]: the sparsity after each of K steps that each prune the same fraction p of the survivors."""
    ### BEGIN SOLUTION
    p = 1 - (1 - final_sparsity) ** (1 / steps)
    return [1 - (1 - p) ** k for k in range(1, steps + 1)]
    ### END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
from course.checks import check_iterative_targets
check_iterative_targets(iterative_targets)

# %% [markdown]
# ## References
#
# - S. Han, J. Pool, J. Tran, W. Dally. *Learning both weights and connections for efficient neural networks.* NeurIPS 2015.
# - S. Han, H. Mao, W. Dally. *Deep Compression: compressing deep neural networks with pruning, trained quantization and Huffman coding.* ICLR 2016.
# - M. Zhu, S. Gupta. *To prune, or not to prune: exploring the efficacy of pruning for model compression.* arXiv:1710.01878, 2017.
# - N. Lee, T. Ajanthan, P. Torr. *SNIP: single-shot network pruning based on connection sensitivity.* ICLR 2019.
# - J. Frankle, M. Carbin. *The lottery ticket hypothesis: finding sparse, trainable neural networks.* ICLR 2019.
# - J. Frankle, G. K. Dziugaite, D. Roy, M. Carbin. *Linear mode connectivity and the lottery ticket hypothesis.* ICML 2020.
# - A. Renda, J. Frankle, M. Carbin. *Comparing rewinding and fine-tuning in neural network pruning.* ICLR 2020.
# - D. Blalock, J. J. Gonzalez Ortiz, J. Frankle, J. Guttag. *What is the state of neural network pruning?* MLSys 2020.
