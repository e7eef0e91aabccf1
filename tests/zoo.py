"""A zoo of user-style models (not the course's own), each with an example batch, a loss and a hand FLOP count.

Every model is written the way real projects write it (kuangliu's CIFAR ResNet, torchvision's MobileNetV2,
nanoGPT, a packed-sequence LSTM classifier), only narrower, so that a CPU test runs it in milliseconds; the models
live in `zoo_vision.py` and `zoo_text.py`. `ZOO[name]` is a `Spec`: `model(seed)` a model, `batch(batch_size, seed)`
an example batch in the model's own form (a tensor, an (x, y) tuple, an (x, lengths, y) tuple, a dict),
`inputs(batch)` the forward's arguments, `loss_fn(model, batch)` a scalar loss, and `flops(batch)` the hand count
of one forward pass (1 multiply-accumulate = 2 FLOPs, as torch.utils.flop_counter counts).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo_text import LSTMClassifier, TextTransformer, TinyGPT, gpt_flops, lstm_flops, text_transformer_flops
from zoo_vision import (ConvAutoencoder, MobileNetV2, ResNet18, SignalCNN, autoencoder_flops, mobilenet_flops,
                        resnet_flops, signal_flops)

__all__ = ["ZOO", "Spec", "CLASSIFIERS"]


# ---------------------------------------------------------------- batches, losses, specs

def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _tokens(n: int, t: int, vocab: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (N, T) in [1, vocab) padded with 0 after a random length in [T/2, T], and the lengths (N,)."""
    g = _gen(seed)
    ids = torch.randint(1, vocab, (n, t), generator=g)
    lengths = torch.randint(t // 2, t + 1, (n,), generator=g)
    lengths[0] = t                                                # one full row, as a real padded batch has
    ids[torch.arange(t)[None] >= lengths[:, None]] = 0
    return ids, lengths


def _ce(model: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


def _text_loss(model: nn.Module, batch: dict) -> torch.Tensor:
    return F.cross_entropy(model(batch["input_ids"], attention_mask=batch["attention_mask"]), batch["labels"])


def _gpt_loss(model: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())


def _lstm_loss(model: nn.Module, batch) -> torch.Tensor:
    *inputs, y = batch                                            # (x, lengths, y) or (x, y)
    return F.cross_entropy(model(*inputs), y)


def _ae_loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(model(x), x)


def _text_batch(n: int = 2, seed: int = 0, t: int = 16) -> dict:
    ids, lengths = _tokens(n, t, 100, seed)
    mask = (torch.arange(t)[None] < lengths[:, None]).long()
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 2, (n,), generator=_gen(seed + 1))}


def _gpt_batch(n: int = 2, seed: int = 0, t: int = 16):
    ids = torch.randint(0, 64, (n, t + 1), generator=_gen(seed))
    return ids[:, :-1], ids[:, 1:]


def _lstm_batch(n: int = 2, seed: int = 0, t: int = 12):
    ids, lengths = _tokens(n, t, 50, seed)
    return ids, lengths, torch.randint(0, 3, (n,), generator=_gen(seed + 1))


def _padded_batch(n: int = 2, seed: int = 0, t: int = 12):
    ids = torch.randint(1, 50, (n, t), generator=_gen(seed))
    return ids, torch.randint(0, 3, (n,), generator=_gen(seed + 1))


@dataclass(frozen=True)
class Spec:
    """One zoo model: how to build it, an example batch, the forward's inputs, a loss, and the hand FLOP count."""

    name: str
    build: Callable[[], nn.Module]
    batch: Callable[..., Any]                      # batch(n=2, seed=0)
    inputs: Callable[[Any], Any]                   # batch -> tensor | tuple | dict (what model(...) takes)
    loss_fn: Callable[[nn.Module, Any], torch.Tensor]
    flops: Callable[[Any], int]                    # batch -> hand count of one forward pass

    def model(self, seed: int = 0) -> nn.Module:
        """A freshly initialised model, the same for the same seed (the global RNG is left as it was)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.build()

    def __repr__(self) -> str:
        return f"Spec({self.name!r})"


ZOO: dict[str, Spec] = {s.name: s for s in [
    Spec("resnet18", ResNet18, lambda n=2, seed=0: (torch.randn(n, 3, 16, 16, generator=_gen(seed)),
                                                      torch.randint(0, 10, (n,), generator=_gen(seed + 1))),
         lambda b: b[0], _ce, lambda b: resnet_flops(len(b[0]), 16, 16)),
    Spec("mobilenetv2", MobileNetV2, lambda n=2, seed=0: (torch.randn(n, 3, 32, 32, generator=_gen(seed)),
                                                          torch.randint(0, 10, (n,), generator=_gen(seed + 1))),
         lambda b: b[0], _ce, lambda b: mobilenet_flops(len(b[0]), 32, 32)),
    Spec("text_transformer", TextTransformer, _text_batch,
         lambda b: {"input_ids": b["input_ids"], "attention_mask": b["attention_mask"]}, _text_loss,
         lambda b: text_transformer_flops(*b["input_ids"].shape)),
    Spec("tiny_gpt", TinyGPT, _gpt_batch, lambda b: b[0], _gpt_loss, lambda b: gpt_flops(*b[0].shape)),
    Spec("tiny_gpt_sdpa", lambda: TinyGPT(flash=True), _gpt_batch, lambda b: b[0], _gpt_loss,
         lambda b: gpt_flops(*b[0].shape)),
    Spec("lstm", LSTMClassifier, _lstm_batch, lambda b: (b[0], b[1]), _lstm_loss,
         lambda b: lstm_flops(int(b[1].sum()), len(b[0]))),
    Spec("lstm_padded", LSTMClassifier, _padded_batch, lambda b: b[0], _lstm_loss,
         lambda b: lstm_flops(b[0].numel(), len(b[0]))),
    Spec("signal_cnn", SignalCNN, lambda n=2, seed=0: (torch.randn(n, 1, 256, generator=_gen(seed)),
                                                       torch.randint(0, 4, (n,), generator=_gen(seed + 1))),
         lambda b: b[0], _ce, lambda b: signal_flops(len(b[0]), 256)),
    Spec("autoencoder", ConvAutoencoder, lambda n=2, seed=0: torch.rand(n, 1, 28, 28, generator=_gen(seed)),
         lambda b: b, _ae_loss, lambda b: autoencoder_flops(len(b))),
]}

#: The zoo models whose batches are (x, y) pairs of float images and class labels: what `evaluate` and loaders take.
CLASSIFIERS = ("resnet18", "mobilenetv2", "signal_cnn")
