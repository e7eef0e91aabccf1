"""The training loop: one masked step, used by baselines, fine-tuning, iterative and gradual pruning alike.

    history = train(model, train_loader, epochs=3, lr=0.05)           # in place; masks respected
    tune = finetuner(train_loader, epochs=1, lr=0.01)                  # a finetune(model) for the schedules
    pruned, rows = gradual_pruning(model, 0.9, train_loader, epochs=4) # train + the cubic schedule after each step

The masked step: zero_grad, forward, loss, backward, optimizer step. Masked weights need nothing more: their hooks
(`course.pruning.masks`) zero the gradients during backward (momentum and Adam moments never build up on pruned
weights) and the weights after every optimizer step, here as in any loop of yours. The loss of a batch is
`course.inputs.batch_loss(loss_fn)`: cross-entropy on (X, y) by default, or your `loss_fn(model, batch)` for
batches in another form (then the train accuracy is not known and is recorded as None).
`on_step` / `on_epoch` callbacks run after each step / epoch; `gradual_pruning` is `train` with the engine's
`GradualPruning` schedule as its `on_step`.
Introduced in 00_setup_and_baselines (gradual pruning in 06_when_to_prune)
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from course import arguments, config
from course.inputs import BatchLoss, any_batches, batch_loss, model_device
from course.metrics import evaluate
from course.pruning.masks import reapply_masks
from course.pruning.schedules import GradualPruning
from course.pruning.stats import masked_sparsity

__all__ = ["History", "OPTIMIZERS", "LR_SCHEDULES", "make_optimizer", "lr_at", "masked_step", "train", "finetuner",
           "gradual_pruning"]

OPTIMIZERS = ("sgd", "adam", "adamw")
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class History:
    """Per-epoch loss (mean cross-entropy), train accuracy (None for batches that are not (X, y) pairs), val accuracy
    (or None) and lr; total seconds."""

    loss: list[float] = field(default_factory=list)
    train_acc: list[float | None] = field(default_factory=list)
    val_acc: list[float | None] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def __repr__(self) -> str:
        lines = [f"History({len(self.loss)} epochs, {self.seconds:.1f} s)"]
        for i, (l, a, v) in enumerate(zip(self.loss, self.train_acc, self.val_acc), start=1):
            val = "" if v is None else f"  val_acc {v:.4f}"
            acc = "" if a is None else f"  train_acc {a:.4f}"
            lines.append(f"  epoch {i:3d}  loss {l:.4f}{acc}{val}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """Plain lists (for a JSON manifest)."""
        return {"loss": self.loss, "train_acc": self.train_acc, "val_acc": self.val_acc, "lr": self.lr,
                "seconds": self.seconds}


def make_optimizer(model: nn.Module, name: str = "sgd", *, lr: float, momentum: float = 0.9,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """SGD (with `momentum`) or Adam over all of `model`'s parameters: the course's one optimizer factory.

    "adamw" (decoupled weight decay, Loshchilov & Hutter 2019) decays only the weights of Linear/Conv layers, not
    biases, norms, class tokens or position embeddings, as the ViT/DeiT recipes do (introduced in 10_transformers).
    """
    name = arguments.choice(name, OPTIMIZERS, "optimizer")
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    matrices = {id(m.weight) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))}
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW([{"params": [p for p in params if id(p) in matrices], "weight_decay": weight_decay},
                              {"params": [p for p in params if id(p) not in matrices], "weight_decay": 0.0}], lr=lr)


def lr_at(step: int, total: int, lr: float, schedule: str = "cosine", warmup: float = 0.0) -> float:
    """lr·(t+1)/W for t < W = int(warmup·T) (linear warm-up), then lr·(1 + cos(π(t−W)/(T−W)))/2 (cosine) or lr."""
    w = int(warmup * total)
    if step < w:
        return lr * (step + 1) / w
    if schedule == "constant":
        return lr
    return lr * (1 + math.cos(math.pi * (step - w) / max(1, total - w))) / 2


def masked_step(model: nn.Module, opt: torch.optim.Optimizer, loss_fn: Callable | BatchLoss | None, batch: Any,
                y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One optimizer step; returns (loss, the output when the loss computed it on an (x, y) pair, else None), detached.

    The mask hooks keep pruned weights and their gradients at zero (no update, no momentum on them). `batch` is one
    batch as `loss_fn` takes it; the older masked_step(model, opt, loss_fn, x, y) form still works.
    """
    if y is not None:
        batch = (batch, y)
    opt.zero_grad(set_to_none=True)
    loss, out = batch_loss(loss_fn).forward(model, batch)
    loss.backward()
    opt.step()
    return loss.detach(), None if out is None else out.detach()


def train(model: nn.Module, train_loader: Iterable, *, epochs: int, lr: float, optimizer: str = "sgd",
          momentum: float = 0.9, weight_decay: float = 0.0, schedule: str = "constant", warmup: float = 0.0,
          device: str | torch.device | None = None, progress: bool = True, val_loader: Iterable | None = None,
          seed: int | None = None, loss_fn: Callable | None = None, on_step: Callable | None = None,
          on_epoch: Callable | None = None) -> History:
    """Minimise `loss_fn` (default cross-entropy on (X, y); see `course.inputs.batch_loss`) with SGD (momentum) or Adam;
    MUTATES `model` (trained in place).

    schedule "cosine": lr_t = lr * (1 + cos(pi * t / T)) / 2 per step t of T; "constant": lr_t = lr; `warmup` > 0
    ramps lr linearly over the first warmup·T steps before either (`lr_at`).
    Every step is the masked step (see the module docstring). `on_step(model, step=t, epoch=e, loss=float)` runs
    after optimizer step t (counted from 1), `on_epoch(model, epoch=e, history=History)` after each epoch.
    `device=None` picks `course.config.device()`; `seed` seeds torch before training (shuffling follows the
    loader's own generator, if it has one). The model's train/eval mode on entry is restored on return.
    """
    epochs = arguments.integer(epochs, "epochs", low=0)
    lr = arguments.number(lr, "lr", low=0.0, low_open=True)
    schedule = arguments.choice(schedule, LR_SCHEDULES, "schedule")
    warmup = arguments.fraction(warmup, "warmup", meaning="fraction of the steps spent warming up")
    if seed is not None:
        torch.manual_seed(seed)
    dev = torch.device(device) if device is not None else config.device()
    model.to(dev)
    opt = make_optimizer(model, optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay)
    loss_fn = batch_loss(loss_fn)
    total_steps = max(1, epochs * len(train_loader))
    was_training, history, step = model.training, History(), 0
    start = time.perf_counter()
    bar = tqdm(total=epochs * len(train_loader), desc="training", unit="batch", disable=not progress)
    try:
        reapply_masks(model)
        for epoch in range(1, epochs + 1):
            model.train()
            loss_sum, correct, seen = 0.0, 0, 0
            bar.set_description(f"epoch {epoch}/{epochs}")
            for batch in any_batches(train_loader):         # (x, y): x (N, C, H, W), y (N,); or your own form
                if schedule == "cosine" or warmup > 0:
                    for group in opt.param_groups:
                        group["lr"] = lr_at(step, total_steps, lr, schedule, warmup)
                loss, logits = masked_step(model, opt, loss_fn, batch)
                step += 1
                n = len(batch[1]) if logits is not None else 1
                loss_sum += float(loss) * n
                if logits is not None:
                    correct += int((logits.argmax(dim=1) == batch[1].to(logits.device)).sum())
                seen += n
                if on_step is not None:
                    on_step(model, step=step, epoch=epoch, loss=float(loss))
                    model.train()
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}" if loss_fn.on_pairs else "-",
                                refresh=False)
            history.loss.append(loss_sum / max(seen, 1))
            history.train_acc.append(correct / max(seen, 1) if loss_fn.on_pairs else None)
            history.lr.append(opt.param_groups[0]["lr"])
            history.val_acc.append(evaluate(model, val_loader) if val_loader is not None else None)
            if history.val_acc[-1] is not None:
                bar.set_postfix(loss=f"{history.loss[-1]:.4f}", val=f"{history.val_acc[-1]:.4f}")
            if on_epoch is not None:
                on_epoch(model, epoch=epoch, history=history)
    finally:
        bar.close()
        model.train(was_training)
    history.seconds = time.perf_counter() - start
    return history


def finetuner(loader: Iterable, *, epochs: int = 1, lr: float = 0.01, **train_kwargs: Any) -> Callable[[nn.Module], Any]:
    """A `finetune(model)` callable for the schedules: `train(model, loader, epochs=..., lr=..., **train_kwargs)`."""
    def finetune(model: nn.Module) -> History:
        return train(model, loader, epochs=epochs, lr=lr, **train_kwargs)
    return finetune


def gradual_pruning(model: nn.Module, final_sparsity: float, train_loader: Iterable, *, epochs: int,
                    lr: float = 0.01, optimizer: str = "sgd", momentum: float = 0.9, weight_decay: float = 0.0,
                    schedule: str = "constant", initial_sparsity: float = 0.0, begin_step: int = 0,
                    end_step: int | None = None, frequency: int | None = None, loss_fn: Callable | None = None,
                    evaluate: Callable[[nn.Module], float] | None = None, progress: bool = True,
                    **prune_kwargs: Any) -> tuple[nn.Module, list[dict]]:
    """Train `epochs` epochs while pruning every `frequency` optimizer steps to `cubic_sparsity(t)` (Zhu & Gupta 2017).

    `train(...)` with `GradualPruning` as its per-step callback, on a copy of `model`. Defaults: end_step = 75% of
    all steps (the rest fine-tunes at s_f), frequency = 1/10 of the pruning window. `schedule` is train's learning
    rate schedule over all `epochs`: "constant" (Zhu & Gupta's fine-tuning), or "cosine" from the dense recipe's
    own `lr`, i.e. pruning inside a re-run of the training schedule (learning-rate rewinding, Renda et al. 2020).
    `prune_kwargs` go to `prune_unstructured` (gradient criteria score on `train_loader` unless `data=` is given).
    Returns (model, history): one row per pruning event ("event": "prune", "metric" = evaluate(model) right after
    that prune) and per epoch end ("event": "epoch", with "loss" the mean step loss of the epoch and "metric" =
    evaluate(model)); the metrics are None without `evaluate`.
    """
    epochs = arguments.integer(epochs, "epochs", low=1)
    total = epochs * len(train_loader)
    if total < 1:
        raise ValueError("train_loader yields no batches")
    end_step = max(begin_step + 1, round(0.75 * total)) if end_step is None else end_step
    if arguments.integer(end_step, "end_step", low=1) > total:
        raise ValueError(f"end_step ({end_step}) must be <= the number of optimizer steps ({total})")
    frequency = max(1, (end_step - begin_step) // 10) if frequency is None else frequency
    arguments.choice(optimizer, OPTIMIZERS, "optimizer")
    prune_kwargs.setdefault("data", train_loader)
    pruner = GradualPruning(final_sparsity, initial_sparsity=initial_sparsity, begin_step=begin_step,
                            end_step=end_step, frequency=frequency, evaluate=evaluate, **prune_kwargs)
    net = copy.deepcopy(model)
    epoch_losses: list[float] = []

    def on_step(net: nn.Module, *, step: int, epoch: int, loss: float) -> None:
        epoch_losses.append(loss)
        pruner(net, step=step, epoch=epoch, loss=loss)

    def on_epoch(net: nn.Module, *, epoch: int, history: History) -> None:
        pruner.history.append({"event": "epoch", "step": epoch * len(train_loader), "epoch": epoch,
                               "target": pruner.target, "sparsity": masked_sparsity(net),
                               "loss": sum(epoch_losses) / len(epoch_losses),
                               "metric": evaluate(net) if evaluate else None})
        epoch_losses.clear()

    pruner(net, step=0)                                                        # t = 0 is a pruning step too
    train(net, train_loader, epochs=epochs, lr=lr, optimizer=optimizer, momentum=momentum, weight_decay=weight_decay,
          schedule=schedule, device=model_device(net), progress=progress, loss_fn=loss_fn, on_step=on_step,
          on_epoch=on_epoch)
    net.zero_grad(set_to_none=True)
    return net, pruner.history
