"""Curvature per weight, and Optimal Brain Damage (LeCun et al. 1989), the criterion built on it.

OBD: at a minimum the gradient term of the loss change vanishes, so removing w_i (Δw = −w_i·e_i) costs
    ΔL ≈ ½·h_ii·w_i²          (off-diagonal terms of the Hessian dropped; registered as the weight criterion "obd")
The diagonal h_ii comes from the same cross-entropy batches as the gradient criteria, one of two ways:

    ggn     G_ii = (1/N) Σ_n Σ_c p_nc·(∂ℓ(x_n, c)/∂w_i)²,  p_n = softmax(f(x_n))    the default
    fisher  F_ii = (1/N) Σ_n (∂ℓ(x_n, y_n)/∂w_i)²,         y_n the data's labels    the empirical Fisher

Why the Gauss-Newton diagonal is the default: it is what OBD itself back-propagates (LeCun et al. use the
Levenberg-Marquardt approximation, which drops the second derivative of the activations), here exact rather than
approximated; for a network that is piecewise linear in each weight (ReLU, max-pool, BatchNorm in eval mode) it IS
the Hessian diagonal, and it is never negative. Its price is one backward pass per class. The empirical Fisher
needs one, ranks the weights almost as the GGN does on a trained LeNet-300-100, but is far smaller there: it is led
by the few badly fitted samples (Kunstner et al. 2019). A Hutchinson estimate (z ⊙ Hz, z random signs) works for any
loss but its per-weight noise swamps the ranking at affordable probe counts (Spearman ρ 0.04-0.18 with the exact
diagonal, 8 probes per batch, on that network), so it is not offered.

Each needs every sample's own gradient, squared before summing. A sample's gradient of a Linear weight is δ_nᵀa_n
(δ = ∂ℓ/∂output, a = the layer's input; summed over tokens for inputs (N, T, in)), and of a Conv2d weight δ_n with
the unfolded patches of a_n, so forward hooks recording a and one backward pass to the outputs per target give it
without per-sample copies of the weights. Hence the limits, each refused by name: the weight of an nn.Linear or a
Conv2d (groups=1, zero padding) that runs once per forward, (x, y) batches, cross-entropy on (N, classes) logits.
The registered "obd" uses the Gauss-Newton diagonal; for the empirical Fisher, pass a Criterion:
`criterion=Criterion("obd_fisher", "weights", functools.partial(obd_scores, hessian="fisher"), needs_data=True)`.
Introduced in 04_criteria
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from course import arguments
from course.inputs import batches, model_device
from course.pruning.criteria import DEFAULT_NUM_BATCHES, register
from course.pruning.gradients import targets_of

__all__ = ["HESSIANS", "ggn_diagonal", "fisher_diagonal", "hessian_diagonal", "obd_scores"]

Scores = dict[str, torch.Tensor]
HESSIANS = ("ggn", "fisher")
_CHUNK = 2 ** 22                                   # per-sample gradient entries held at once (16 MB in float32)


def _check_target(name: str, module: nn.Module, attr: str) -> None:
    """Refuse, by name, a weight whose per-sample gradients the hooks cannot form."""
    if attr != "weight" or not isinstance(module, (nn.Linear, nn.Conv2d)):
        raise TypeError(f"weight {name!r} ({attr} of a {type(module).__name__}): the curvature diagonal is formed "
                        "from a layer's own input and output, which only nn.Linear and nn.Conv2d weights have. "
                        f"Leave it out with exclude=[{name!r}], or use criterion='taylor'.")
    if isinstance(module, nn.Conv2d) and (module.groups != 1 or module.padding_mode != "zeros"
                                          or isinstance(module.padding, str)):
        raise TypeError(f"Conv2d {name!r}: the curvature diagonal supports groups=1 and zero padding given as numbers "
                        f"(got groups={module.groups}, padding={module.padding!r}, padding_mode="
                        f"{module.padding_mode!r}). Leave it out with exclude=[{name!r}].")


def _check_loss(loss_fn: Callable | None) -> None:
    plain = loss_fn is None or loss_fn is nn.functional.cross_entropy or (
        isinstance(loss_fn, nn.CrossEntropyLoss) and loss_fn.weight is None and loss_fn.label_smoothing == 0)
    if not plain:
        raise ValueError(f"the curvature diagonal is the Gauss-Newton matrix of cross-entropy on (x, y) batches; got "
                         f"loss_fn={loss_fn!r}. For another loss or batches of another form use criterion='taylor', "
                         "which takes any loss_fn(model, batch)")


def _squared_sums(layer: nn.Module, a: torch.Tensor, d: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Σ_n weights_n·(∂ℓ_n/∂W)², from the layer's input a and output gradient d (per-sample ℓ_n); shaped like W."""
    if isinstance(layer, nn.Linear) and a.dim() == 2:                       # a: (N, in), d: (N, out)
        return (weights[:, None] * d.square()).T @ a.square()
    if isinstance(layer, nn.Linear):                                        # tokens: a (N, *, in), d (N, *, out)
        a, d = a.flatten(1, -2), d.flatten(1, -2)                           # (N, T, in), (N, T, out)
    else:                                                                   # Conv2d: patches (N, C·kh·kw, P)
        a = nn.functional.unfold(a, layer.kernel_size, dilation=layer.dilation, padding=layer.padding,
                                 stride=layer.stride).transpose(1, 2)       # (N, P, C·kh·kw)
        d = d.flatten(2).transpose(1, 2)                                    # (N, P, out)
    total = torch.zeros(d.shape[-1], a.shape[-1], dtype=a.dtype, device=a.device)
    step = max(1, _CHUNK // total.numel())
    for i in range(0, len(a), step):
        g = d[i:i + step].transpose(1, 2) @ a[i:i + step]                   # (n, out, fan_in): each sample's gradient
        total += (weights[i:i + step, None, None] * g.square()).sum(0)
    return total.view_as(layer.weight)


def _diagonal(model: nn.Module, layers: list, data: Any, num_batches: int, labels: str,
              loss_fn: Callable | None) -> Scores:
    """(1/N) Σ_n Σ_(c, p) p·(∂ℓ(x_n, c)/∂W)²: labels "model" (c over the classes, p = softmax) or "data" (y_n, 1)."""
    _check_loss(loss_fn)
    num_batches = arguments.integer(num_batches, "num_batches", low=1)
    targets = targets_of(model, layers)
    for t in targets:
        _check_target(t.name, t.module, t.attr)
    work = copy.deepcopy(model).eval()                       # eval: BatchNorm affine, no dropout
    for p in work.parameters():
        p.requires_grad_(True)
    mods = {t.name: work.get_submodule(t.module_name) for t in targets}
    dev = model_device(work)
    totals = {name: torch.zeros_like(m.weight, dtype=torch.float32) for name, m in mods.items()}
    count = 0
    for X, y in batches(data, limit=num_batches):
        seen: dict[str, list] = {name: [] for name in mods}
        hooks = [m.register_forward_hook(lambda _m, i, o, name=name: seen[name].append((i[0].detach(), o)))
                 for name, m in mods.items()]
        try:
            with torch.enable_grad():
                logits = work(X.to(dev))                                    # (N, classes)
        finally:
            for h in hooks:
                h.remove()
        once = [name for name, v in seen.items() if len(v) != 1]
        if once:
            raise ValueError(f"layers {once} did not run exactly once in the forward pass (shared weights, or called "
                             f"through another module such as nn.MultiheadAttention's out_proj); leave them out with "
                             f"exclude={once}")
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
            raise ValueError("the curvature diagonal needs the model to return (N, classes) logits, got "
                             f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}")
        n = len(logits)
        if labels == "data":
            pairs = [(y.to(dev), torch.ones(n, device=dev))]
        else:
            probs = torch.softmax(logits.detach(), dim=1)                   # (N, classes)
            pairs = [(torch.full((n,), c, device=dev), probs[:, c]) for c in range(probs.shape[1])]
        outputs = [seen[name][0][1] for name in mods]
        for target, weight in pairs:
            loss = nn.functional.cross_entropy(logits, target, reduction="sum")      # Σ_n ℓ_n: per-sample δ_n
            deltas = torch.autograd.grad(loss, outputs, retain_graph=True, allow_unused=True)
            unused = [name for name, d in zip(mods, deltas) if d is None]
            if unused:
                raise ValueError(f"the logits do not depend on {unused}: leave them out with exclude={unused}")
            for (name, m), d in zip(mods.items(), deltas):
                totals[name] += _squared_sums(m, seen[name][0][0], d.detach(), weight.to(d.dtype)).float()
        count += n
    if count == 0:
        raise ValueError("data= yielded no batches")
    return {name: t / count for name, t in totals.items()}


def ggn_diagonal(model: nn.Module, layers: list, data: Any, *, num_batches: int = DEFAULT_NUM_BATCHES,
                 loss_fn: Callable | None = None) -> Scores:
    """Gauss-Newton diagonal of cross-entropy: G_ii = (1/N) Σ_n Σ_c p_nc·(∂ℓ(x_n, c)/∂w_i)², p_n = softmax(f(x_n))."""
    return _diagonal(model, layers, data, num_batches, "model", loss_fn)


def fisher_diagonal(model: nn.Module, layers: list, data: Any, *, num_batches: int = DEFAULT_NUM_BATCHES,
                    loss_fn: Callable | None = None) -> Scores:
    """Empirical Fisher diagonal: F_ii = (1/N) Σ_n (∂ℓ(x_n, y_n)/∂w_i)², with the data's labels y_n."""
    return _diagonal(model, layers, data, num_batches, "data", loss_fn)


def hessian_diagonal(model: nn.Module, layers: list, data: Any, *, hessian: str = "ggn", **kw: Any) -> Scores:
    """h_ii of every weight of `layers`: hessian="ggn" (Gauss-Newton, the default) or "fisher" (empirical)."""
    arguments.choice(hessian, HESSIANS, "hessian")
    return (ggn_diagonal if hessian == "ggn" else fisher_diagonal)(model, layers, data, **kw)


@register("obd", "weights", needs_data=True)
def obd_scores(model: nn.Module, layers: list, *, data: Any = None, hessian: str = "ggn",
               num_batches: int = DEFAULT_NUM_BATCHES, loss_fn: Callable | None = None, **_: Any) -> Scores:
    """Optimal Brain Damage (LeCun et al. 1989): score = ½·h_ii·w², the loss rise of removing w_i where g ≈ 0."""
    h = hessian_diagonal(model, layers, data, hessian=hessian, num_batches=num_batches, loss_fn=loss_fn)
    return {t.name: 0.5 * h[t.name] * t.weight.detach().float().square() for t in targets_of(model, layers)}
