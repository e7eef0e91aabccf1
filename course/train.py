"""Training and evaluation loops that respect pruning masks; `python -m course.train` trains the baselines.

`train_or_load` (from `course.checkpoints`) loads a verified checkpoint or trains one; it is re-exported here.
Introduced in 00_setup_and_baselines
"""
from __future__ import annotations

import argparse
import copy
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from course import config
from course.pruning.masks import MASK, has_masks, reapply_masks

__all__ = ["History", "OPTIMIZERS", "SCHEDULES", "train", "evaluate", "eval_mode", "train_or_load", "main"]

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine")


@dataclass
class History:
    """Per-epoch loss (mean cross-entropy), train accuracy, val accuracy (or None) and lr; total seconds."""

    loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float | None] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def __repr__(self) -> str:
        lines = [f"History({len(self.loss)} epochs, {self.seconds:.1f} s)"]
        for i, (l, a, v) in enumerate(zip(self.loss, self.train_acc, self.val_acc), start=1):
            val = "" if v is None else f"  val_acc {v:.4f}"
            lines.append(f"  epoch {i:3d}  loss {l:.4f}  train_acc {a:.4f}{val}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """Plain lists (for a JSON manifest)."""
        return {"loss": self.loss, "train_acc": self.train_acc, "val_acc": self.val_acc, "lr": self.lr,
                "seconds": self.seconds}


class eval_mode:
    """Context manager: every submodule in eval mode inside; each module's own train/eval flag restored after."""

    def __init__(self, model):
        self.modules = list(model.modules()) if isinstance(model, nn.Module) else []

    def __enter__(self):
        self.flags = [m.training for m in self.modules]
        for m in self.modules:
            m.training = False
        return self

    def __exit__(self, *exc):
        for m, flag in zip(self.modules, self.flags):
            m.training = flag


def _model_device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: str | torch.device | None = None) -> float:
    """Top-1 accuracy = correct / N over `loader`, in eval mode; the model's modes and device are left as they were.

    `device=None` evaluates on the device the model is on; another device evaluates a copy moved there.
    """
    if device is not None and torch.device(device) != _model_device(model):
        model = copy.deepcopy(model).to(device)
    dev = _model_device(model)
    correct = total = 0
    with eval_mode(model):
        for x, y in loader:                                   # x: (N, C, H, W), y: (N,)
            x, y = x.to(dev), y.to(dev)
            correct += int((model(x).argmax(dim=1) == y).sum())
            total += y.numel()
    if total == 0:
        raise ValueError("the loader yielded no samples; cannot compute an accuracy")
    return correct / total


def _optimizer(model: nn.Module, name: str, lr: float, momentum: float, weight_decay: float):
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}")


def _mask_grads(model: nn.Module) -> None:
    """grad <- grad * mask for masked layers, so momentum / Adam moments never build up on pruned weights."""
    for m in model.modules():
        mask = getattr(m, MASK, None)
        if mask is not None and m.weight.grad is not None:
            m.weight.grad.mul_(mask)


def train(model: nn.Module, train_loader: Iterable, *, epochs: int, lr: float, optimizer: str = "sgd",
          momentum: float = 0.9, weight_decay: float = 0.0, schedule: str = "constant",
          device: str | torch.device | None = None, progress: bool = True, val_loader: Iterable | None = None,
          seed: int | None = None) -> History:
    """Minimise cross-entropy with SGD (momentum) or Adam; MUTATES `model` (trained in place, moved to `device`).

    schedule "cosine": lr_t = lr * (1 + cos(pi * t / T)) / 2 per step t of T; "constant": lr_t = lr.
    If the model carries course masks, gradients are masked before and `reapply_masks` runs after every
    optimizer step, so pruned weights stay exactly zero. `device=None` picks `course.config.device()`;
    `seed` seeds torch before training (shuffling follows the loader's own generator, if it has one).
    The model's train/eval mode on entry is restored on return.
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be an integer >= 0, got {epochs!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {list(SCHEDULES)}")
    if seed is not None:
        torch.manual_seed(seed)
    dev = torch.device(device) if device is not None else config.device()
    model.to(dev)
    opt = _optimizer(model, optimizer, lr, momentum, weight_decay)
    masked = has_masks(model)
    steps_per_epoch = len(train_loader)
    total_steps = max(1, epochs * steps_per_epoch)
    was_training = model.training
    history = History()
    start = time.perf_counter()
    bar = tqdm(total=epochs * steps_per_epoch, desc="training", unit="batch", disable=not progress)
    step = 0
    try:
        if masked:
            reapply_masks(model)
        for epoch in range(1, epochs + 1):
            model.train()
            loss_sum, correct, seen = 0.0, 0, 0
            bar.set_description(f"epoch {epoch}/{epochs}")
            for x, y in train_loader:                      # x: (N, C, H, W), y: (N,)
                x, y = x.to(dev), y.to(dev)
                if schedule == "cosine":
                    for group in opt.param_groups:
                        group["lr"] = lr * (1 + math.cos(math.pi * step / total_steps)) / 2
                opt.zero_grad(set_to_none=True)
                logits = model(x)                          # (N, classes)
                loss = F.cross_entropy(logits, y)
                loss.backward()
                if masked:
                    _mask_grads(model)
                opt.step()
                if masked:
                    reapply_masks(model)
                step += 1
                loss_sum += float(loss.detach()) * y.numel()
                correct += int((logits.argmax(dim=1) == y).sum())
                seen += y.numel()
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}", refresh=False)
            history.loss.append(loss_sum / max(seen, 1))
            history.train_acc.append(correct / max(seen, 1))
            history.lr.append(opt.param_groups[0]["lr"])
            history.val_acc.append(evaluate(model, val_loader) if val_loader is not None else None)
            if history.val_acc[-1] is not None:
                bar.set_postfix(loss=f"{history.loss[-1]:.4f}", acc=f"{history.train_acc[-1]:.4f}",
                                val=f"{history.val_acc[-1]:.4f}")
    finally:
        bar.close()
        model.train(was_training)
    history.seconds = time.perf_counter() - start
    return history


def main(argv: list[str] | None = None) -> int:
    """CLI: train (or verify) baselines and record them in data/checkpoints/manifest.json."""
    from course import checkpoints

    parser = argparse.ArgumentParser(prog="python -m course.train", description=main.__doc__)
    parser.add_argument("--model", choices=sorted(checkpoints.RECIPES))
    parser.add_argument("--dataset", choices=list(checkpoints.DATASETS))
    parser.add_argument("--all", action="store_true", help="every model x every dataset available offline")
    parser.add_argument("--local", action="store_true", help="write to data/checkpoints/local/ (not shipped)")
    parser.add_argument("--force", action="store_true", help="retrain even when a matching checkpoint exists")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.all == bool(args.model or args.dataset) or (not args.all and not (args.model and args.dataset)):
        parser.error("give either --all, or both --model and --dataset")
    pairs = checkpoints.available_pairs() if args.all else [(args.model, args.dataset)]
    for model_name, dataset_name in pairs:
        print(f"== {model_name} on {dataset_name}", flush=True)
        _, info = checkpoints.train_and_save(model_name, dataset_name, shipped=not args.local,
                                             force=args.force, progress=not args.no_progress)
        print(f"   {info['source']}: {info['file']}  test accuracy {info['test_accuracy']:.4f}  "
              f"({info['train_seconds']:.0f} s training)", flush=True)
    return 0


from course.checkpoints import train_or_load  # noqa: E402  (re-export; checkpoints imports train lazily)

if __name__ == "__main__":
    raise SystemExit(main())
