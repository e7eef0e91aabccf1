"""Fine-tuning a quantized model with the course's one training loop: trained centroids, and straight-through QAT.

Both re-express each quantized weight through a `torch.nn.utils.parametrize` parametrization for the duration of
`course.train`, so the loop, its optimizer and its progress bar are the ones every notebook uses:
  - `finetune_centroids` (Deep Compression's trained quantization, Han et al. 2016, Sec. 3.1 and Eq. 3): the
    trainable tensor of a layer is its codebook c (K,), and W = scatter(c[index]) onto the kept positions. Autograd
    then gives ∂L/∂c_k = Σ_{i : index_i = k} ∂L/∂W_i, the gradients of a cluster's weights summed, exactly the
    paper's update. Indices and masks stay fixed, so the model stays weight-shared and pruned throughout.
  - `finetune_linear_quantized`: quantization-aware training with the straight-through estimator (Bengio et al.
    2013; Jacob et al. 2018): an fp32 shadow weight w, the forward pass uses Q(w), and ∂L/∂w = ∂L/∂Q(w) on the
    kept positions. At the end the weights are Q(w), on the linear grid again.
Parameters that are not quantized (biases, BatchNorm) train normally alongside. Both mutate `model`, like
`train`.
Introduced in 09_beyond_pruning
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from course import arguments
from course.pruning.masks import apply_masks, get_masks, remove_masks
from course.pruning.targets import prunable_layers
from course.quantization import kept_positions, linear_quantize, shared_codebook
from course.training import History, train

__all__ = ["SharedWeights", "StraightThrough", "finetune_centroids", "finetune_linear_quantized"]


class SharedWeights(nn.Module):
    """W = zeros with the kept positions filled by codebook[index] (row-major): a weight-shared layer's weight."""

    def __init__(self, index: torch.Tensor, kept: torch.Tensor):
        super().__init__()
        self.register_buffer("index", index)                              # (k,) int64
        self.register_buffer("kept", kept)                                # like the weight, bool

    def forward(self, codebook: torch.Tensor) -> torch.Tensor:           # (K,) -> weight shape
        return torch.zeros(self.kept.shape, dtype=codebook.dtype, device=codebook.device
                           ).masked_scatter(self.kept, codebook[self.index])

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:       # weight -> (K,) codebook
        size = int(self.index.max()) + 1 if self.index.numel() else 0
        return weight.new_zeros(size).index_put_((self.index,), weight[self.kept])

    def __repr__(self) -> str:
        return f"SharedWeights({self.index.numel():,} kept weights)"


class StraightThrough(nn.Module):
    """W = Q(w) in the forward pass, ∂L/∂w = ∂L/∂W on the kept positions: Q(w) + (w - w.detach()), masked."""

    def __init__(self, bits: int, kept: torch.Tensor, per_channel: bool = True):
        super().__init__()
        self.bits, self.per_channel = bits, per_channel
        self.register_buffer("kept", kept)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        q = linear_quantize(w, self.bits, self.kept, self.per_channel)[0].to(w.dtype)   # no gradient through Q
        return (q + (w - w.detach())) * self.kept                         # w - w.detach() == 0: exactly Q(w)

    def __repr__(self) -> str:
        return f"StraightThrough(bits={self.bits}, per_channel={self.per_channel})"


def _train_parametrized(model: nn.Module, parametrizations: dict[str, nn.Module], loader: Iterable,
                        train_kwargs: dict[str, Any]) -> History:
    """`course.train` with `parametrizations[name]` on each layer's weight; masks lifted meanwhile, then restored."""
    masks = get_masks(model)
    remove_masks(model, inplace=True)
    order = {name: list(model.get_submodule(name)._parameters) for name in parametrizations}
    try:
        for name, p in parametrizations.items():
            parametrize.register_parametrization(model.get_submodule(name), "weight", p, unsafe=True)
        return train(model, loader, **train_kwargs)
    finally:
        for name in parametrizations:
            module = model.get_submodule(name)
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            module._parameters = {k: module._parameters[k] for k in order[name]}   # weight before bias again
        apply_masks(model, masks, inplace=True)


def finetune_centroids(model: nn.Module, train_loader: Iterable, *, epochs: int = 1, lr: float = 1e-3,
                       **train_kwargs: Any) -> History:
    """Train the shared centroids of a weight-shared model (see the module docstring); MUTATES `model`.

    The model must come from `quantize(..., method="kmeans")`: every Linear/Conv2d's kept weights take at most 256
    values. The gradient of a centroid is a *sum* over its cluster, so it grows with the cluster size: a dense layer
    (tens of thousands of weights per centroid) needs a far smaller `lr` than a pruned one; choose it on validation.
    `train_kwargs` go to `course.train` (momentum, schedule, seed, progress, val_loader, ...).
    """
    epochs = arguments.integer(epochs, "epochs", low=0)
    parametrizations = {}
    for name, module in prunable_layers(model):
        try:
            codebook, index, kept = shared_codebook(module)
        except ValueError as e:
            raise ValueError(f"layer {name!r}: {e}") from None
        parametrizations[name] = SharedWeights(index.to(module.weight.device), kept.to(module.weight.device))
    return _train_parametrized(model, parametrizations, train_loader, dict(train_kwargs, epochs=epochs, lr=lr))


def finetune_linear_quantized(model: nn.Module, train_loader: Iterable, *, bits: int, per_channel: bool = True,
                              epochs: int = 1, lr: float = 0.01, **train_kwargs: Any) -> History:
    """Quantization-aware training on the symmetric `bits`-bit grid with the straight-through estimator; MUTATES
    `model`, which ends on the grid (as from `quantize(model, bits, per_channel=per_channel)`)."""
    bits = arguments.integer(bits, "bits", low=2, high=8)
    per_channel = arguments.boolean(per_channel, "per_channel")
    parametrizations = {name: StraightThrough(bits, kept_positions(m), per_channel)
                        for name, m in prunable_layers(model)}
    return _train_parametrized(model, parametrizations, train_loader, dict(train_kwargs, epochs=epochs, lr=lr))
