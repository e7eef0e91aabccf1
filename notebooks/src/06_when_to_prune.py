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
# - the masked training step that keeps pruned weights at zero (you write it), and how the library's mask hooks do it
#   in any training loop;
# - how much accuracy fine-tuning recovers after pruning, how fast, and how to choose its learning rate and length
#   on a validation split;
# - one-shot vs iterative vs gradual pruning (the cubic schedule of Zhu & Gupta 2017) on the same compute budget,
#   measured right after every prune and at the end, over 3 seeds;
# - pruning at initialisation (SNIP) against its proper control, the same mask shuffled within each layer (Frankle
#   et al. 2021), against random and magnitude masks, and against pruning a trained network;
# - lottery tickets: why the *initial values* of the surviving weights matter (Frankle & Carbin 2019).

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
import copy, statistics, torch, matplotlib.pyplot as plt; from tqdm.auto import tqdm
from course import (apply_masks, build_model, claim, cubic_sparsity, detect_layer_collapse, evaluate, fast, finetuner, get_masks,
                    gradual_pruning, iterative_pruning, layer_sparsity, lottery_ticket, make_loaders, prune_unstructured,
                    remove_masks, setup, show, shuffle_within_layers, train)
setup(seed=0, threads=1)    # one thread: small models, and steady run times on a busy machine

# %% [markdown]
# The data: MNIST, LeNet-300-100's classic task. `.info` says which copy this machine has: the full set after
# `make data`, otherwise the real 10,000-image subset that ships with the course. `val_size=1000` carves a
# **validation split** out of the training images: every choice below (the fine-tuning learning rate, when to stop)
# is made on it, and the test images only report results.

# %%
train_loader, val_loader, test_loader = make_loaders("mnist", batch_size=128, val_size=1000,
                                                     train_size=fast(None, 2000))
print(train_loader.dataset.info)
print(f"train {len(train_loader.dataset):,} images ({len(train_loader)} optimizer steps per epoch), validation "
      f"{len(val_loader.dataset):,} (from the training images), test {len(test_loader.dataset):,}")

# %% [markdown]
# The shipped dense baseline was trained on every training image, the validation ones included, so it would score
# them almost perfectly and every decision read from them would be biased. So this notebook trains its own dense
# LeNet-300-100 on the training split only, with the baselines' recipe (SGD with momentum, cosine learning rate,
# 20 epochs: a few seconds).

# %%
recipe = dict(lr=0.05, schedule="cosine", weight_decay=1e-4, progress=False)   # the baselines' recipe (RECIPES)
torch.manual_seed(0)
dense = build_model("lenet300")
train_loader.generator.manual_seed(0)
train(dense, train_loader, epochs=fast(20, 2), lr=0.05, schedule="cosine", weight_decay=1e-4, seed=0)
dense_acc = evaluate(dense, test_loader)
acc_of = lambda model: evaluate(model, test_loader)                       # model -> test accuracy, for the schedules
se = (dense_acc * (1 - dense_acc) / len(test_loader.dataset)) ** 0.5      # one standard error of a test accuracy


def ms(values):
    """'mean ± standard deviation' of accuracies in percent (n = len(values); the std is the sample one)."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.2f} ± {100 * std:.2f}"


print(f"dense LeNet-300-100: validation accuracy {evaluate(dense, val_loader):.2%}, test accuracy {dense_acc:.2%} "
      f"(one standard error on {len(test_loader.dataset):,} test images: {se:.2%})")

# %% [markdown]
# We rank weights by magnitude over the whole network (`scope="global"`), so the first layer, which holds 235,200
# of the 266,200 weights and most of the redundancy (many of its inputs are border pixels that are the same in
# almost every image), can give up more than the small output layer.
#
# ## 1 · Prune after training, then fine-tune
#
# Fine-tuning a pruned network is ordinary training with one rule: a pruned weight stays exactly zero. A training
# step that keeps the rule makes three moves around the usual ones (this is what the pruner of MIT 6.5940's Lab 1
# does around each optimizer step):
# 1. after `loss.backward()`, **mask the gradients**, g ← g·m: no update, and no momentum, for weights that do not
#    exist;
# 2. take the optimizer's step as usual;
# 3. **re-apply the mask** to the weights, w ← w·m. Masked gradients are not enough: momentum (or Adam's moments)
#    built up while the network was dense still moves a pruned weight, and it grows back ("momentum regrowth").
#
# **Exercise 06.1: the masked training step.** Write `masked_train_step(model, optimizer, masks, x, y)` that does
# one training step on the batch `(x, y)` with the cross-entropy loss and returns the loss (a float, computed before
# the step). `masks` maps a parameter's name, as `model.named_parameters()` names it (`"fc1.weight"`), to a bool
# tensor shaped like it (True = kept); parameters not in `masks` (the biases) are trained as usual.
#
# <details><summary>Hint</summary>
#
# `optimizer.zero_grad()`, forward, `loss.backward()`; then, under `torch.no_grad()`, `param.grad.mul_(mask)` for
# each masked parameter (`params = dict(model.named_parameters())`); `optimizer.step()`; then `param.mul_(mask)`
# under `torch.no_grad()`. `param.grad` is None before `backward()`, so the gradient can only be masked after it.
# </details>

# %%
# Exercise 06.1: the masked training step
def masked_train_step(model, optimizer, masks, x, y):
    """One step that keeps pruned weights at zero: backward, g <- g·m, optimizer.step(), w <- w·m. Returns the loss."""
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].grad.mul_(mask)              # 1. no gradient, so no momentum, for pruned weights
    optimizer.step()                                  # 2. the optimizer's usual step
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask)                   # 3. undo what momentum from before pruning did to them
    return loss.item()
    ### END SOLUTION

# %%
# NBVAL_CHECK_OUTPUT
from course.checks import check_masked_step
check_masked_step(masked_train_step)

# %% [markdown]
# Your step at work: one epoch of fine-tuning on LeNet-300-100 pruned to 90%, written as a plain loop. The model is
# a plain copy (`remove_masks`: the same zeros, no masks attached), so only your step keeps the zeros.

# %%
pruned90 = prune_unstructured(dense, 0.9, scope="global")                        # course masks, held by hooks
plain = remove_masks(pruned90)                                                    # the same zeros, nothing attached
masks = {f"{key}.weight": mask for key, mask in get_masks(pruned90).items()}      # keyed like named_parameters()
optimizer = torch.optim.SGD(plain.parameters(), lr=0.01, momentum=0.9)
train_loader.generator.manual_seed(0)
for x, y in train_loader:                                                         # one epoch with your step
    masked_train_step(plain, optimizer, masks, x, y)
train_loader.generator.manual_seed(0)                                             # the same batches again ...
train(pruned90, train_loader, epochs=1, lr=0.01, momentum=0.9, progress=False)    # ... for the library's loop
gap = max((p - q).abs().max().item() for p, q in zip(plain.parameters(), pruned90.parameters()))
print(f"your epoch: {layer_sparsity(plain).overall.sparsity:.2%} of the weights still zero, test accuracy "
      f"{acc_of(plain):.2%} (right after pruning: {acc_of(prune_unstructured(dense, 0.9, scope='global')):.2%})")
print(f"largest difference from the library's epoch on the same batches: {gap:.1e}")

# %% [markdown]
# The library makes the same three moves without your loop having to. `apply_masks` (which every `prune_*` calls)
# gives each masked weight a **gradient hook** that runs as soon as `backward()` has written its gradient (move 1:
# the same product as `mask_gradients`), and every optimizer a **step hook** that re-applies the masks after each
# `step()` (move 3); a forward pre-hook also re-masks a weight you overwrote by hand. So the library's training step,
# `masked_step`, contains no mask at all, and any training loop of yours, `torch.optim` optimizer included, keeps
# course masks. Compare with `show(masked_step)` and `show(mask_gradients)`:

# %%
from course import masked_step, mask_gradients
show(masked_step)

# %%
show(mask_gradients)

# %% [markdown]
# Now the questions a fine-tuning run has to answer: **which learning rate**, and **for how long**. We prune the
# trained network once (global magnitude) and train the survivors for a few epochs (SGD, momentum 0.9, constant
# learning rate), reading the validation accuracy after every epoch. First the learning rate, at the hardest
# sparsity of this notebook (98%), over a factor of 100; the one with the best validation accuracy after the last
# epoch is used for the rest of the notebook.

# %%
HARD, LRS, FT_EPOCHS = 0.98, [0.001, 0.01, 0.1], fast(6, 2)


def fine_tune(sparsity, lr):
    """Prune the dense network once (global magnitude), fine-tune it; validation and test accuracy at every epoch."""
    net = prune_unstructured(dense, sparsity, scope="global")
    run = {"val": [evaluate(net, val_loader)], "test": [acc_of(net)]}           # epoch 0 = right after pruning
    train_loader.generator.manual_seed(0)                                         # the same batches for every run
    history = train(net, train_loader, epochs=FT_EPOCHS, lr=lr, val_loader=val_loader, seed=0, progress=False,
                    on_epoch=lambda m, **_: run["test"].append(acc_of(m)))
    run["val"] += history.val_acc
    return run


lr_runs = {lr: fine_tune(HARD, lr) for lr in tqdm(LRS, desc="learning rates")}
FT_LR = max(LRS, key=lambda lr: lr_runs[lr]["val"][-1])                          # chosen on validation
print(f"{'lr':>6} " + "".join(f"{f'epoch {e}':>9}" for e in range(FT_EPOCHS + 1)) + "   (validation accuracy)")
for lr, run in lr_runs.items():
    print(f"{lr:>6} " + "".join(f"{a:>9.2%}" for a in run["val"]))
print(f"chosen on validation: lr = {FT_LR}")

# %% [markdown]
# The largest rate, 0.1, recovers fastest and ends highest, though its curve moves by about a point from epoch to
# epoch (a validation accuracy on 1,000 images has a standard error of about 0.6 points); 0.01 climbs steadily and
# ends lower; the smallest, 0.001, is far behind: too small to move the survivors in this budget. The rule reads the
# last epoch because the later sections fine-tune for a fixed budget. Renda et al. (2020) found that re-using the
# original training's larger learning rates ("learning-rate rewinding") often beats the usual small constant one,
# and so it does here: the best rate, 0.1, is even above the dense training's own peak rate of 0.05.

# %%
val_se = (max(r["val"][-1] for r in lr_runs.values()) * (1 - max(r["val"][-1] for r in lr_runs.values()))
          / len(val_loader.dataset)) ** 0.5
val_last = {lr: run["val"][-1] for lr, run in lr_runs.items()}
claim(FT_LR == max(LRS) and val_last[0.1] > val_last[0.01] > val_last[0.001],
      "the larger the learning rate, the higher the validation accuracy after the last epoch: 0.1 is chosen")
claim(val_last[min(LRS)] < val_last[FT_LR] - 2 * val_se,
      f"the smallest learning rate ({min(LRS)}) ends more than two standard errors below the chosen one");

# %% [markdown]
# With that rate, the same prune-then-fine-tune run at five sparsities (the 98% run is the one above):

# %%
SPARSITIES = fast([0.5, 0.8, 0.9, 0.95, 0.98], [0.5, 0.9, 0.98])
curves = {s: lr_runs[FT_LR] if s == HARD else fine_tune(s, FT_LR) for s in tqdm(SPARSITIES, desc="prune + fine-tune")}
print(f"{'sparsity':>8} {'no fine-tune':>13} {'after 1 epoch':>14} {f'after {FT_EPOCHS}':>9} {'gain (points)':>14}"
      "   (validation)")
for s, c in curves.items():
    v = c["val"]
    print(f"{s:>8.0%} {v[0]:>13.2%} {v[1]:>14.2%} {v[-1]:>9.2%} {100 * (v[-1] - v[0]):>+14.2f}")

# %%
fig, ax = plt.subplots()
for s, c in curves.items():
    ax.plot(range(len(c["val"])), [100 * a for a in c["val"]], marker="o", label=f"{s:.0%} sparse")
ax.axhline(100 * evaluate(dense, val_loader), color="k", ls="--", lw=1, label="dense")
ax.set(xlabel="fine-tuning epoch (0 = right after pruning)", ylabel="validation accuracy (%)",
       title="Fine-tuning after one-shot magnitude pruning",
       ylim=(max(0, 100 * min(min(c["val"]) for c in curves.values()) - 5), 100))
ax.legend(ncol=2, fontsize=8); plt.show()

# %% [markdown]
# Read the curves from left to right: epoch 0 is the pruned network before any training. **Light pruning needs no
# fine-tuning**: at 50% and 80% the pruned network is as accurate as the dense one before any training. **Heavy pruning
# needs it**: at 98% one-shot pruning costs about thirty points, and fine-tuning wins nearly all of them back, most
# of the gain in the first epoch.
#
# **How long?** A simple rule, decided on validation: stop at the first epoch that gains less than a tenth of a
# point. The table applies it to every curve and reports the test accuracy there.

# %%
TOL, MIN_GAIN = 0.005, 0.001                                     # "no loss": within half a point of dense
free = [s for s, c in curves.items() if c["test"][0] >= dense_acc - TOL]
stop_at = {s: next((e for e in range(1, len(c["val"])) if c["val"][e] - c["val"][e - 1] < MIN_GAIN), FT_EPOCHS)
           for s, c in curves.items()}
print(f"{'sparsity':>8} {'stop after':>11} {'test there':>11} {'test, right after pruning':>26}")
for s, e in stop_at.items():
    print(f"{s:>8.0%} {e:>5} epoch{'s' if e > 1 else ' '} {curves[s]['test'][e]:>11.2%} {curves[s]['test'][0]:>26.2%}")
hard = curves[HARD]["test"]
first_share = (hard[1] - hard[0]) / (hard[-1] - hard[0])
print(f"no fine-tuning needed (within {100 * TOL:.1f} points of dense on test) up to {max(free, default=0):.0%}; at "
      f"{HARD:.0%}: {hard[0]:.2%} right after pruning, {hard[-1]:.2%} after {FT_EPOCHS} epochs, "
      f"{first_share:.0%} of that gain in the first epoch")
claim(0.5 in free and 0.8 in free, "at 50% and 80% the pruned network is within half a point of dense before any training")
claim(hard[0] < dense_acc - 0.25 and hard[-1] > dense_acc - 0.03 and first_share > 0.5,
      "at 98% one-shot pruning costs about thirty points, fine-tuning wins back all but a few, the first epoch most")
claim(stop_at[HARD] >= stop_at[min(SPARSITIES)], "the sparser network is worth fine-tuning at least as long");

# %% [markdown]
# The stopping rule stops the lightly pruned networks after one epoch and the heavily pruned ones later: the sparser
# the network, the longer fine-tuning pays off. At 98% it stops at the first dip of a noisy curve although a later
# epoch is higher: with a rate as large as 0.1 the validation accuracy moves by about a point from epoch to epoch,
# and on 1,000 validation images one image is a tenth of a point. In a real project use a larger split, or patience
# (stop after a few epochs without a new best).
#
# ## 2 · One-shot, iterative or gradual, on the same budget
#
# Three ways to reach the same final sparsity from the same trained network, each allowed **the same number of
# optimizer steps**:
# - **one-shot**: prune to the final sparsity at once, then fine-tune for the whole budget;
# - **iterative** (Han et al. 2015): prune → fine-tune, K times, each step removing the same fraction of the weights
#   still left, each fine-tuning 1/K of the budget;
# - **gradual** (Zhu & Gupta 2017): prune a little every Δt optimizer steps *during* training, following the cubic
#   schedule s_t = s_f + (s_i − s_f)(1 − (t − t₀)/(nΔt))³, fast at first while many weights are redundant, slowly
#   near the end; here the pruning window covers the first 75% of the steps and the rest trains at s_f.
#
# First the two schedules by hand.
#
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
# Compare with `show(step_sparsities)`, the targets `iterative_pruning` uses (its "geometric" schedule is yours).
#
# **Exercise 06.3: the cubic sparsity schedule.** Write `cubic_schedule(step, final_sparsity, begin, end)`, the
# Zhu & Gupta schedule with initial sparsity 0 and no Δt rounding: 0 before `begin`, s_f·(1 − (1 − p)³) with
# p = (step − begin)/(end − begin) in between, and `final_sparsity` from `end` on.
#
# <details><summary>Hint</summary>
#
# Compute the progress p and clamp it to [0, 1] (`min(max(p, 0.0), 1.0)`); then the one formula covers all three
# cases. At p = 0 it gives 0 and at p = 1 it gives s_f.
# </details>

# %%
# Exercise 06.3: the cubic sparsity schedule
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
# Compare with `show(cubic_sparsity)`: the library's version adds s_i, the begin step t₀ and the rounding of t down
# to the last pruning step t₀ + kΔt. Over a 100-step window to 98%, half of the final sparsity is reached in the
# first fifth of the window:

# %%
# NBVAL_CHECK_OUTPUT
print({t: round(cubic_sparsity(t, final_sparsity=0.98, end_step=100), 4) for t in (0, 10, 20, 50, 80, 100, 150)})

# %% [markdown]
# The core of gradual pruning is a callback the training loop calls after every optimizer step
# (`gradual_pruning(...)` is `train(...)` with it as `on_step`): on a pruning step it asks the cubic schedule for the
# target and prunes the model in place to it. The masks then hold the zeros until the next pruning step.

# %%
from course import GradualPruning
show(GradualPruning.__call__)

# %% [markdown]
# Now the comparison. A single run cannot separate schedules whose end points lie within a standard error or two, so
# each schedule runs with **3 seeds** (a seed sets the order of the training batches and torch's random state; the
# dense network and hence each schedule's *first* prune are the same for every seed). We measure the test accuracy
# **right after every prune** as well as after the fine-tuning that follows it, for all three schedules alike:
# `iterative_pruning` records `pruned_metric` before each fine-tuning, and `gradual_pruning` evaluates the model at
# each pruning event.

# %%
FINAL = 0.98                                                    # the final sparsity of sections 2 and 3
BUDGET_EPOCHS, K = fast(6, 3), 3                                # BUDGET_EPOCHS is a multiple of K
SEEDS = fast([0, 1, 2], [0])
steps_per_epoch = len(train_loader)
total_steps, cycle = BUDGET_EPOCHS * steps_per_epoch, BUDGET_EPOCHS // K * steps_per_epoch
END, FREQ = round(0.75 * total_steps), max(1, round(0.75 * total_steps) // 10)    # cubic window and Δt, in steps
print(f"{total_steps} optimizer steps per schedule, lr {FT_LR}; iterative: {K} cycles of {cycle} steps; gradual: "
      f"prunes every {FREQ} steps from step 0 to step {END}")


def run_schedules(seed):
    """One-shot, iterative and gradual from `dense` on one seed: {name: (path, steps)}, path = [(step, test accuracy,
    event, sparsity)] with event "start", "prune" (measured right after a prune) or "tuned" (after fine-tuning)."""
    out = {}
    train_loader.generator.manual_seed(seed)
    oneshot = prune_unstructured(dense, FINAL, scope="global")
    path = [(0, dense_acc, "start", 0.0), (0, acc_of(oneshot), "prune", FINAL)]
    train(oneshot, train_loader, epochs=BUDGET_EPOCHS, lr=FT_LR, seed=seed, progress=False,
          on_epoch=lambda m, epoch, **_: path.append((epoch * steps_per_epoch, acc_of(m), "tuned", FINAL)))
    out["one-shot"] = (path, BUDGET_EPOCHS * steps_per_epoch)

    train_loader.generator.manual_seed(seed)
    tune = finetuner(train_loader, epochs=BUDGET_EPOCHS // K, lr=FT_LR, seed=seed, progress=False)
    _, rows = iterative_pruning(dense, FINAL, steps=K, finetune=tune, evaluate=acc_of, scope="global")
    path = [(0, dense_acc, "start", 0.0)]
    for r in rows[1:]:
        path += [((r["step"] - 1) * cycle, r["pruned_metric"], "prune", r["target"]),
                 (r["step"] * cycle, r["metric"], "tuned", r["target"])]
    out["iterative"] = (path, K * cycle)

    train_loader.generator.manual_seed(seed)
    torch.manual_seed(seed)
    _, rows = gradual_pruning(dense, FINAL, train_loader, epochs=BUDGET_EPOCHS, lr=FT_LR, end_step=END,
                              frequency=FREQ, evaluate=acc_of, scope="global", progress=False)
    path = [(0, dense_acc, "start", 0.0)] + [(r["step"], r["metric"], "prune" if r["event"] == "prune" else "tuned",
                                              r["target"]) for r in rows if r["event"] == "epoch" or r["target"] > 0]
    out["gradual"] = (path, rows[-1]["step"])
    return out, rows


schedule_runs, gradual_rows = {}, None
for seed in tqdm(SEEDS, desc="seeds"):
    schedule_runs[seed], rows = run_schedules(seed)
    gradual_rows = gradual_rows or rows
budget = {name: steps for name, (_, steps) in schedule_runs[SEEDS[0]].items()}
print("optimizer steps:", budget)

# %%
# NBVAL_CHECK_OUTPUT
print("same budget:", len(set(budget.values())) == 1)

# %%
NAMES = ["one-shot", "iterative", "gradual"]
summary = {}
for name in NAMES:
    paths = [runs[name][0] for runs in schedule_runs.values()]
    lowest = [min(path, key=lambda p: p[1]) for path in paths]                  # (step, accuracy, event, sparsity)
    summary[name] = {"final": [path[-1][1] for path in paths],
                     "after last prune": [[p[1] for p in path if p[2] == "prune"][-1] for path in paths],
                     "lowest": [p[1] for p in lowest], "lowest at": [p[3] for p in lowest],
                     "lowest before the end": [p[0] < END if name == "gradual" else None for p in lowest]}
print(f"test accuracy at {FINAL:.0%} sparsity, {budget['one-shot']} optimizer steps each, mean ± std over "
      f"n = {len(SEEDS)} seeds (dense {dense_acc:.2%}):")
print(f"{'':>10} {'at the end':>14} {'right after the last prune':>27} {'lowest along the way':>21}   (reached at sparsity)")
for name, r in summary.items():
    print(f"{name:>10} {ms(r['final']):>14} {ms(r['after last prune']):>27} {ms(r['lowest']):>21}   "
          + ", ".join(f"{s:.1%}" for s in r["lowest at"]))
targets = [r["target"] for r in gradual_rows if r["event"] == "prune" and r["target"] > 0]     # the same every seed
print("gradual's prunes: the sparsity reached (and the share of the weights still left that the prune removed): "
      + ", ".join(f"{b:.1%} ({(b - a) / (1 - a):.0%})" for a, b in zip([0.0] + targets, targets)))

# %%
from course import step_sparsities
prunes = [r for r in gradual_rows if r["event"] == "prune"]
sparsity_paths = {"one-shot": ([0, total_steps], [FINAL, FINAL]),
                  "iterative": ([(k - 1) * cycle for k in range(1, K + 1)] + [total_steps],
                                step_sparsities(FINAL, K) + [FINAL]),
                  "gradual": ([r["step"] for r in prunes] + [total_steps], [r["target"] for r in prunes] + [FINAL])}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
t = range(total_steps + 1)
ax1.plot(t, [100 * cubic_sparsity(i, final_sparsity=FINAL, end_step=END) for i in t], color="gray", lw=1,
         ls=":", label="cubic formula (Δt = 1)")
for i, name in enumerate(NAMES):
    x, s = sparsity_paths[name]
    ax1.step(x, [100 * v for v in s], where="post", color=f"C{i}", label=name)
    for seed, runs in schedule_runs.items():
        path = runs[name][0]
        ax2.plot([p[0] for p in path], [100 * p[1] for p in path], color=f"C{i}", lw=1 if seed == SEEDS[0] else 0.5,
                 alpha=1 if seed == SEEDS[0] else 0.4, marker="o" if seed == SEEDS[0] else None, ms=3,
                 label=name if seed == SEEDS[0] else None)
ax1.set(xlabel="optimizer step", ylabel="sparsity (%)", title="Sparsity reached (prune events)")
ax2.axhline(100 * dense_acc, color="k", ls="--", lw=1, label="dense")
ax2.set(xlabel="optimizer step", ylabel="test accuracy (%)",
        title=f"Accuracy right after each prune and after fine-tuning ({len(SEEDS)} seeds)",
        ylim=(max(0, 100 * min(min(r["lowest"]) for r in summary.values()) - 3), 100))
ax1.legend(); ax2.legend(fontsize=8); plt.tight_layout(); plt.show()

# %% [markdown]
# Read the right panel as a saw: each drop is a prune, each rise the fine-tuning after it. **The paths differ far
# more than the end points.** One-shot takes its whole loss at once and spends every step repairing it. Iterative
# takes three drops, and its last one, from about 93% to 98% sparsity, is its deepest: it removes nearly three
# quarters of the weights still left, and the last weights removed are the ones that matter. Gradual never falls
# nearly as far. Its deepest drop comes before its last prune, where one prune still removes about 40% of the weights
# still left (the cubic schedule slows down in absolute sparsity, not in the share of the survivors it removes: see
# the line under the table), and it recovers while it trains on.
#
# **The end points are close.** With 3 seeds, gradual ends highest and one-shot lowest, about a point apart, with
# iterative in between; each schedule's seed-to-seed spread is half a point or less. The gap between gradual and
# one-shot is about three standard errors of the difference of two 3-seed means: suggestive, not settled. Blalock
# et al. (2020) ask for exactly this caution: several seeds and their spread before claiming a winner. What the seeds
# do settle is the path: gradual pruning keeps the model usable all the way, one-shot and iterative do not.

# %%
mean = {name: statistics.mean(r["final"]) for name, r in summary.items()}
low = {name: statistics.mean(r["lowest"]) for name, r in summary.items()}
sd = {name: statistics.stdev(r["final"]) if len(SEEDS) > 1 else se for name, r in summary.items()}
z = (mean["gradual"] - mean["one-shot"]) / ((sd["gradual"] ** 2 + sd["one-shot"] ** 2) / len(SEEDS)) ** 0.5
print(f"gradual − one-shot at the end: {100 * (mean['gradual'] - mean['one-shot']):+.2f} points = {z:.1f} standard "
      f"errors of the difference (n = {len(SEEDS)} seeds each)")
claim(all(s == FINAL for s in summary["iterative"]["lowest at"]),
      "iterative's deepest drop is its last prune, in every seed")
claim(all(summary["gradual"]["lowest before the end"]),
      "gradual's deepest drop comes before its last prune, in every seed")
claim(low["gradual"] > max(low["one-shot"], low["iterative"]) + 0.1,
      "gradual's deepest drop is more than ten points shallower than one-shot's and iterative's")
claim(mean["gradual"] > mean["iterative"] > mean["one-shot"] and mean["gradual"] - mean["one-shot"] < 0.02,
      "gradual ends highest and one-shot lowest, iterative in between, all within two points")
claim(2 < z < 5, "the gap between gradual and one-shot is a few standard errors of the difference: suggestive, "
                 "not settled with 3 seeds");

# %% [markdown]
# ## 3 · Prune at initialisation, or after training?
#
# **SNIP** (Lee et al. 2019) prunes *before* training: on a randomly initialised network it scores each weight by
# its connection sensitivity |w · ∂L/∂w| on a few batches, keeps the top ones, and trains only those. If it works,
# the expensive dense training is skipped. Beating a random mask is not enough evidence, though: a method also
# decides **how many** weights each layer keeps, and at high sparsity that alone can make or break a network.
# Frankle et al. (2021) therefore compare every pruning-at-init method with **its own mask shuffled within each
# layer**: the same number kept per layer, at random places (`shuffle_within_layers`). If the shuffle does as well,
# the method found a good per-layer budget, not good weights. We compare, at 98% sparsity and with the **same
# training budget** (the same optimizer steps), over 3 seeds (a seed = the initialisation, SNIP's batches, the
# random draws and the training order):
# - **SNIP at init**: prune by `criterion="snip"` (4 batches of 128 images), then train;
# - **SNIP shuffled**: SNIP's mask shuffled within each layer, then train (Frankle et al.'s control);
# - **random at init**: a random mask of the same global sparsity (every layer keeps about 2%), then train;
# - **magnitude at init**: global magnitude on the untrained weights, then train;
# - **after training**: train dense for half the budget, prune by magnitude, fine-tune for the other half.

# %%
INIT_EPOCHS = fast(8, 2)
METHODS = ["SNIP", "SNIP shuffled", "random", "magnitude at init", "after training"]
LAYERS = ["fc1", "fc2", "fc3"]
X_train = train_loader.dataset.tensors()[0].flatten(1)                            # (N, 784)
varying = X_train.std(0) > 0.05 * X_train.std(0).max()                             # pixels that are not (nearly) constant
init_acc, density, collapsed, on_varying, units_used = ({m: [] for m in METHODS} for _ in range(5))
for seed in tqdm(SEEDS, desc="seeds"):
    torch.manual_seed(seed)
    init = build_model("lenet300")
    train_loader.generator.manual_seed(seed)
    snip = prune_unstructured(init, FINAL, criterion="snip", scope="global", data=train_loader, num_batches=4)
    models = {"SNIP": snip,
              "SNIP shuffled": apply_masks(init, shuffle_within_layers(get_masks(snip), seed=seed)),
              "random": prune_unstructured(init, FINAL, criterion="random", scope="global", seed=seed),
              "magnitude at init": prune_unstructured(init, FINAL, scope="global")}
    for name, model in models.items():
        masks = get_masks(model)
        density[name].append({n: masks[n].float().mean().item() for n in LAYERS})
        collapsed[name].append(bool(detect_layer_collapse(model, warn=False)))
        on_varying[name].append((masks["fc1"][:, varying].sum() / max(masks["fc1"].sum(), 1)).item())
        units_used[name].append(int((masks["fc1"].sum(1) > 0).sum()))
        train_loader.generator.manual_seed(seed)
        train(model, train_loader, epochs=INIT_EPOCHS, seed=seed, **recipe)
        init_acc[name].append(acc_of(model))
    half = copy.deepcopy(init)
    train_loader.generator.manual_seed(seed)
    train(half, train_loader, epochs=INIT_EPOCHS // 2, seed=seed, **recipe)
    after = prune_unstructured(half, FINAL, scope="global")
    masks = get_masks(after)
    density["after training"].append({n: masks[n].float().mean().item() for n in LAYERS})
    collapsed["after training"].append(bool(detect_layer_collapse(after, warn=False)))
    train(after, train_loader, epochs=INIT_EPOCHS - INIT_EPOCHS // 2, lr=FT_LR, seed=seed, progress=False)
    init_acc["after training"].append(acc_of(after))
majority = torch.bincount(test_loader.dataset.tensors()[1]).max().item() / len(test_loader.dataset)
print(f"test accuracy at {FINAL:.0%} sparsity, {INIT_EPOCHS} epochs = {INIT_EPOCHS * steps_per_epoch} optimizer "
      f"steps each, mean ± std over n = {len(SEEDS)} seeds (always answering the most frequent class: {majority:.2%})")
print(f"{'':>18} {'test accuracy':>15}   kept per layer: " + "".join(f"{n:>7}" for n in LAYERS))
for name in METHODS:
    kept = "".join(f"{statistics.mean(d[n] for d in density[name]):>7.1%}" for n in LAYERS)
    dead = f"   fc1 emptied in {sum(collapsed[name])} of {len(SEEDS)}" if any(collapsed[name]) else ""
    print(f"{name:>18} {ms(init_acc[name]):>15}   {'':>15}{kept}{dead}")

# %% [markdown]
# Three gaps, each with its control:
# - **SNIP against random**: the largest gap. But a random mask at 98% keeps about 2% of *every* layer, the output
#   layer's 1,000 weights included, while SNIP keeps far more of `fc2` and `fc3` and less of `fc1`.
# - **Shuffled SNIP against random**: the same masks as random except for the per-layer budget. Most of SNIP's lead
#   over random is here: **how density is split between layers**, which is what Frankle et al. found for SNIP,
#   GraSP and SynFlow on image classifiers.
# - **SNIP against shuffled SNIP**: what SNIP's choice of *which* weights adds on top of its budget. Here it adds
#   more than ten points, far above the seed-to-seed spread: unlike Frankle et al.'s settings, at 98% on MNIST the
#   positions matter too. The next cell shows why.
#
# **Magnitude at init** empties `fc1` in every seed and ends at the accuracy of a constant answer: **layer
# collapse**, the failure notebook 05 found for global magnitude pruning of the *trained* network only beyond 99.8%
# sparsity, here at a practical 98%. At initialisation a weight's magnitude says nothing about the data: PyTorch
# draws a layer's weights from U(−1/√fan_in, 1/√fan_in), so `fc1` (784 inputs) holds the smallest weights and one
# global threshold takes it first (Tanaka et al. 2020). **After training**, magnitude pruning beats SNIP by about
# three points on the same number of optimizer steps, half of them spent on dense training: pruning at
# initialisation saves that training, at a price.

# %%
init_weights = build_model("lenet300")
print("largest |w| at initialisation:", {n: round(getattr(init_weights, n).weight.abs().max().item(), 4) for n in LAYERS},
      "   1/√fan_in:", {n: round(getattr(init_weights, n).in_features ** -0.5, 4) for n in LAYERS})
print(f"{int(varying.sum())} of 784 pixels vary across the training images; share of fc1's kept weights on them, "
      f"and fc1 units that keep at least one weight (of 300):")
for name in ["SNIP", "SNIP shuffled", "random"]:
    print(f"{name:>14}: {ms(on_varying[name])} %   units {statistics.mean(units_used[name]):.0f}")
gap = {k: statistics.mean(init_acc[a]) - statistics.mean(init_acc[b]) for k, (a, b) in
       {"snip-random": ("SNIP", "random"), "shuffled-random": ("SNIP shuffled", "random"),
        "snip-shuffled": ("SNIP", "SNIP shuffled")}.items()}
noise = max(statistics.stdev(init_acc[m]) if len(SEEDS) > 1 else se for m in ("SNIP", "SNIP shuffled", "random"))
print(f"SNIP − random {100 * gap['snip-random']:+.1f} points = budget (shuffled − random) "
      f"{100 * gap['shuffled-random']:+.1f} + positions (SNIP − shuffled) {100 * gap['snip-shuffled']:+.1f}")
claim(gap["shuffled-random"] > gap["snip-shuffled"] > max(2 * noise, 0.1),
      "most of SNIP's lead over random is the per-layer budget, and SNIP's positions still add more than ten points, "
      "over twice the seed-to-seed spread")
claim(all(collapsed["magnitude at init"]) and max(init_acc["magnitude at init"]) < majority + 0.02,
      "magnitude at init empties fc1 in every seed and ends at the accuracy of a constant answer")
claim(statistics.mean(on_varying["SNIP"]) > statistics.mean(on_varying["SNIP shuffled"]) + 0.1,
      "SNIP puts its fc1 weights on the pixels that vary far more often than its shuffle does")
after_gap = statistics.mean(init_acc["after training"]) - statistics.mean(init_acc["SNIP"])
after_noise = max(statistics.stdev(init_acc[m]) if len(SEEDS) > 1 else se for m in ("SNIP", "after training"))
claim(max(2 * after_noise, 0.01) < after_gap < 0.05,
      "magnitude after half the budget of training beats SNIP by a few points, more than twice the seed spread");

# %% [markdown]
# Why SNIP's positions matter here: all of its `fc1` weights read pixels that vary across the images, while the
# shuffled mask spends about a quarter of them on pixels that are (nearly) the same in every image, where a weight
# can only act as a bias. SNIP sees this in its score |w·ḡ|: a weight on a pixel with the same value c in every
# image gets the gradient c × (its unit's bias gradient), the same signal for every image, and scores below the
# weights on pixels whose ink varies with the digit. SNIP also concentrates `fc1`'s few weights on fewer hidden
# units, so each surviving unit reads several pixels.
#
# ## 4 · Lottery tickets
#
# Frankle & Carbin (2019) asked: if a sparse subnetwork can be trained *after* pruning, could it have been trained
# from the start? Their procedure, **iterative magnitude pruning with rewinding**: train, prune p of the surviving
# weights, reset the survivors to their **initial** values θ₀, and repeat. After r rounds the sparsity is
# 1 − (1 − p)^r. The control keeps the same mask but draws **fresh random** initial values
# (`reinit_control=True`): if the ticket wins, the initial values of the survivors mattered, not just the mask.
# Here is the loop; the rewinding is `apply_masks(theta_rw, masks)`, the final mask put on the *initial* weights:

# %%
show(lottery_ticket)

# %% [markdown]
# `lottery_ticket` returns the control for its final mask, so we run it for 1, 2, … rounds (each run repeats the
# earlier rounds; on LeNet-300-100 that is cheap), with one seed. Each training run uses the baseline's recipe for a
# few epochs. For LeNet-300-100, rewinding to θ₀ is enough; deeper networks need rewinding to an early training
# step (`rewind=k`, Frankle et al. 2020).

# %%
ROUNDS, RATE, LT_EPOCHS = fast(4, 2), 0.6, fast(3, 1)
torch.manual_seed(0)
init = build_model("lenet300")
train_fn = finetuner(train_loader, epochs=LT_EPOCHS, seed=0, **recipe)
lottery = []                                                              # the last history row of each run
for r in tqdm(range(1, ROUNDS + 1), desc="lottery tickets"):
    lt = lottery_ticket(init, train_fn, rounds=r, prune_rate_per_round=RATE, rewind="init", reinit_control=True,
                        evaluate=acc_of, scope="global")
    lottery.append(lt.history[-1])
dense_short = lt.history[0]["metric"]                                     # the dense network, same training
for row in lottery:
    print(f"round {row['round']}: {1 - row['sparsity']:6.1%} of the weights left   ticket {row['metric']:.2%}   "
          f"random re-init {row['control_metric']:.2%}")
print(f"dense, the same {LT_EPOCHS}-epoch training: {dense_short:.2%}")

# %%
left = [100 * (1 - row["sparsity"]) for row in lottery]
fig, ax = plt.subplots()
ax.plot(left, [100 * row["metric"] for row in lottery], marker="o", label="ticket (rewound to θ₀)")
ax.plot(left, [100 * row["control_metric"] for row in lottery], marker="s", label="same mask, random re-init")
ax.axhline(100 * dense_short, color="k", ls="--", lw=1, label=f"dense, same {LT_EPOCHS}-epoch training")
ax.set_xscale("log"); ax.invert_xaxis(); ax.minorticks_off(); ax.set_xticks(left, [f"{v:.3g}" for v in left])
ax.set(xlabel="weights remaining (%, log scale)", ylabel="test accuracy (%)", title="Lottery tickets on LeNet-300-100")
ax.legend(); plt.show()

# %% [markdown]
# The ticket stays within a couple of points of the dense network down to a few percent of the weights, while the
# same mask with fresh random values falls further behind with every round. The mask alone is not the ticket: the
# surviving weights' initial values are part of it. (One seed, so read the gaps against the standard error of one
# accuracy, about half a point: the last round's gap is many times that.)

# %%
last = lottery[-1]
claim(last["metric"] - last["control_metric"] > 3 * se,
      "at the last round the rewound ticket beats the same mask with fresh random values by more than three "
      "standard errors")
claim(lottery[-1]["metric"] - lottery[-1]["control_metric"] > lottery[0]["metric"] - lottery[0]["control_metric"],
      "the ticket's lead over the re-initialised mask grows from the first round to the last")
claim(dense_short - last["metric"] < 0.03, "at the last round the ticket is within a couple of points of the dense "
                                           "network trained the same way");

# %% [markdown]
# ## Summary
#
# On MNIST with LeNet-300-100 (the numbers are in the cell below):
#
# 1. **Prune, then fine-tune.** Light pruning (50%, 80%) costs nothing; at 98% one-shot pruning costs about thirty
#    points and fine-tuning wins back all but a few, most of it in the first epoch. The learning rate (the largest
#    tried, 0.1) and the stopping point were chosen on a validation split; too small a rate barely moves the
#    survivors.
# 2. **Keeping zeros at zero** takes three moves around the optimizer step: mask the gradients, step, re-apply the
#    mask (Exercise 06.1); course masks do it through hooks in any loop.
# 3. **Schedules on one budget** (3 seeds), measured right after every prune: one-shot and iterative pass through a
#    deep drop (one-shot at once, iterative at its last prune); gradual's worst prune costs far less. The end points
#    lie within about a point: gradual highest, one-shot lowest, a gap 3 seeds cannot settle.
# 4. **When**: SNIP at initialisation beats random by a wide margin, mostly through its per-layer budget (its shuffle
#    keeps most of the lead), but at 98% its choice of weights adds more than ten points. Magnitude at
#    initialisation collapses `fc1`. Magnitude after (half a budget of) training beats SNIP by a few points.
# 5. **Lottery tickets**: the rewound ticket beats the same mask with fresh initial values, by more as the mask
#    gets sparser.

# %%
print(f"dense {dense_acc:.2%} (test; one standard error {se:.2%})")
print(f"1. at {HARD:.0%}: {hard[0]:.2%} right after pruning -> {hard[-1]:.2%} after {FT_EPOCHS} epochs at lr {FT_LR} "
      f"(chosen on validation)")
print(f"3. schedules at {FINAL:.0%}, n = {len(SEEDS)}: " + "; ".join(
    f"{n} {ms(r['final'])} at the end, {ms(r['after last prune'])} right after the last prune" for n, r in summary.items()))
print(f"4. at init, n = {len(SEEDS)}: " + "; ".join(f"{m} {ms(init_acc[m])}" for m in METHODS))
print(f"5. lottery at {1 - last['sparsity']:.1%} left: ticket {last['metric']:.2%}, re-init {last['control_metric']:.2%}")

# %% [markdown]
# ## Exercises
#
# Exercises 06.1 (the masked training step), 06.2 (iterative targets) and 06.3 (the cubic schedule) are in sections
# 1 and 2, with their checks. To go further:
# - **06.4** Give the iterative schedule K = 6 cycles of one epoch each. Does its last prune cost less, and does its
#   end point move closer to one-shot and gradual?
# - **06.5** Run section 3 at 90% and at 99%. At which sparsity does the gap between SNIP and its shuffle open up?
#   (Frankle et al. 2021 worked at moderate sparsities.)
# - **06.6** Replace SNIP by magnitude *after training* on the same initialisation, shuffled within each layer. Does
#   the shuffle cost a trained mask more than it costs SNIP's?
#
# ## References
#
# - S. Han, J. Pool, J. Tran, W. Dally. *Learning both weights and connections for efficient neural networks.* NeurIPS 2015.
# - M. Zhu, S. Gupta. *To prune, or not to prune: exploring the efficacy of pruning for model compression.* arXiv:1710.01878, 2017.
# - N. Lee, T. Ajanthan, P. Torr. *SNIP: single-shot network pruning based on connection sensitivity.* ICLR 2019.
# - J. Frankle, M. Carbin. *The lottery ticket hypothesis: finding sparse, trainable neural networks.* ICLR 2019.
# - J. Frankle, G. K. Dziugaite, D. Roy, M. Carbin. *Linear mode connectivity and the lottery ticket hypothesis.* ICML 2020.
# - J. Frankle, G. K. Dziugaite, D. Roy, M. Carbin. *Pruning neural networks at initialization: why are we missing the mark?* ICLR 2021.
# - H. Tanaka, D. Kunin, D. Yamins, S. Ganguli. *Pruning neural networks without any data by iteratively conserving synaptic flow.* NeurIPS 2020.
# - A. Renda, J. Frankle, M. Carbin. *Comparing rewinding and fine-tuning in neural network pruning.* ICLR 2020.
# - D. Blalock, J. J. Gonzalez Ortiz, J. Frankle, J. Guttag. *What is the state of neural network pruning?* MLSys 2020.
# - S. Han, MIT 6.5940 *TinyML and Efficient Deep Learning Computing*, Lab 1 (pruning), 2023.
