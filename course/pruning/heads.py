"""Attention-head pruning (Michel et al. 2019, "Are Sixteen Heads Really Better than One?").

Head h of an attention layer owns rows [h·d, (h+1)·d) of q, k and v and the same columns of o (d = head_dim).
Removing it cuts those rows and columns (`course.pruning.surgery`'s `prune_out_units` / `prune_in_units`): a smaller
dense layer, no mask. Criteria score heads:
  * "l1":   Σ|W| over the head's rows of q, k, v and its columns of o (no data);
  * "gate": Michel et al.'s importance I_h = E_x |∂L(x)/∂ξ_h| for a gate ξ_h = 1 on the head's output. The output
            a_h enters o only as ξ_h·a_h, so ∂L/∂ξ_h = Σ_(tokens, dims) a_h ⊙ ∂L/∂a_h, read at the input of o with one
            backward pass per batch (needs labelled data).
Scopes: "local" removes round(ratio·heads) in every layer; "global" ranks all heads after dividing each layer's scores
by their ℓ2 norm (the paper's per-layer normalisation), so some layers lose more heads than others. Every layer keeps
at least one head. Works on any module with nn.Linear `q`, `k`, `v`, `o` and an int `heads` (the course's ViT).
Introduced in 10_transformers
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course import arguments
from course.inputs import batches, eval_mode
from course.pruning.criteria import DEFAULT_NUM_BATCHES
from course.pruning.masks import MASK, apply_masks
from course.pruning.surgery import prune_in_units, prune_out_units, unit_inputs

__all__ = ["HEAD_CRITERIA", "attention_layers", "head_scores", "head_masks", "remove_heads", "zero_heads",
           "prune_heads", "mask_heads"]

HEAD_CRITERIA = ("l1", "gate")
SCOPES = ("local", "global")


def attention_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs with nn.Linear q, k, v, o and an int `heads`; TypeError if there are none."""
    found = [(n, m) for n, m in model.named_modules() if isinstance(getattr(m, "heads", None), int)
             and all(isinstance(getattr(m, p, None), nn.Linear) for p in "qkvo")]
    if not found:
        raise TypeError(f"{type(model).__name__} has no attention module with nn.Linear q, k, v, o and an int `heads` "
                        "(like the course's ViT Attention). nn.MultiheadAttention packs q, k, v into one tensor: "
                        "use Torch-Pruning with num_heads= for it; Hugging Face models have model.prune_heads(...).")
    return found


def _head_dim(attn: nn.Module) -> int:
    return attn.q.out_features // attn.heads


def _l1(attn: nn.Module) -> torch.Tensor:
    """Σ|W| of each head: its d rows of q, k, v and its d columns of o -> (heads,)."""
    h, d = attn.heads, _head_dim(attn)
    rows = sum(getattr(attn, p).weight.detach().abs().view(h, d, -1).sum((1, 2)) for p in "qkv")
    cols = attn.o.weight.detach().abs().view(-1, h, d).sum((0, 2))
    return (rows + cols).float().cpu()


def _gate(model: nn.Module, layers: list[tuple[str, nn.Module]], data: Any, loss_fn: Callable,
          num_batches: int) -> dict[str, torch.Tensor]:
    """I_h = mean over samples x of |Σ a_h(x) ⊙ ∂L(x)/∂a_h(x)|, a_h the head's slice of o's input.

    `loss_fn(logits, y)` returns the batch mean (as F.cross_entropy does); times N it is Σ_x L(x), whose gradient at
    a_h(x) is sample x's own (no layer mixes samples in eval mode).
    """
    net = copy.deepcopy(model)                                         # gradients never touch the caller's model
    modules = dict(net.named_modules())
    seen: dict[str, torch.Tensor] = {}

    def keep_input(name: str) -> Callable:
        def hook(module: nn.Module, args: tuple) -> None:
            args[0].retain_grad()
            seen[name] = args[0]                                       # (N, T, heads·d)
        return hook

    hooks = [modules[n].o.register_forward_pre_hook(keep_input(n)) for n, _ in layers]
    totals = {n: torch.zeros(m.heads, dtype=torch.float64) for n, m in layers}
    count, device = 0, next(net.parameters()).device
    try:
        with eval_mode(net), torch.enable_grad():
            for x, y in batches(data, limit=num_batches):
                loss = loss_fn(net(x.to(device)), y.to(device)) * len(x)   # Σ_x L(x): a_h(x) gets ∂L(x)/∂a_h(x)
                loss.backward()
                for n, m in layers:
                    a = seen[n]
                    dl_dxi = (a * a.grad).reshape(len(a), -1, m.heads, _head_dim(m)).sum((1, 3))   # (N, heads)
                    totals[n] += dl_dxi.detach().abs().double().sum(0).cpu()
                net.zero_grad(set_to_none=True)
                count += len(x)
    finally:
        for h in hooks:
            h.remove()
    if count == 0:
        raise ValueError("data yielded no batches")
    return {n: (t / count).float() for n, t in totals.items()}


def head_scores(model: nn.Module, criterion: str = "l1", data: Any = None, *, loss_fn: Callable | None = None,
                num_batches: int = DEFAULT_NUM_BATCHES) -> dict[str, torch.Tensor]:
    """Score every head of every attention layer -> {layer: (heads,)}; higher = more important (not normalised)."""
    criterion = arguments.choice(criterion, HEAD_CRITERIA, "head criterion")
    layers = attention_layers(model)
    if criterion == "l1":
        return {n: _l1(m) for n, m in layers}
    if data is None:
        raise ValueError("head criterion 'gate' needs data: pass data=(X, y) or a DataLoader of (X, y) batches")
    num_batches = arguments.integer(num_batches, "num_batches", low=1)
    return _gate(model, layers, data, loss_fn or F.cross_entropy, num_batches)


def head_masks(scores: dict[str, torch.Tensor], ratio: float, scope: str = "global") -> dict[str, torch.Tensor]:
    """Which heads stay -> {layer: bool (heads,)}: the round(ratio·total) lowest go (ℓ2-normalised per layer under
    "global"); every layer keeps at least its best head."""
    ratio = arguments.ratio(ratio)
    scope = arguments.choice(scope, SCOPES, "scope")
    if scope == "local":
        drop = {n: min(round(ratio * len(s)), len(s) - 1) for n, s in scores.items()}
    else:
        normed = {n: s / s.norm() if s.norm() > 0 else s.clone() for n, s in scores.items()}   # Michel: ℓ2 per layer
        for s in normed.values():
            s[s.argmax()] = float("inf")                               # each layer's best head is protected
        flat = torch.cat(list(normed.values()))                        # (all heads,)
        k = min(round(ratio * len(flat)), len(flat) - len(normed))
        gone = torch.zeros(len(flat), dtype=torch.bool)
        gone[torch.argsort(flat, stable=True)[:k]] = True
        drop = dict(zip(normed, (int(g.sum()) for g in gone.split([len(s) for s in normed.values()]))))
    keep = {}
    for name, s in scores.items():
        keep[name] = torch.ones(len(s), dtype=torch.bool)
        keep[name][torch.argsort(s, stable=True)[:drop[name]]] = False
    return keep


def _check_keep(model: nn.Module, keep: dict[str, torch.Tensor]) -> dict[str, nn.Module]:
    layers = dict(attention_layers(model))
    for name, k in keep.items():
        if name not in layers:
            raise ValueError(f"{name!r} is not an attention layer; attention layers: {list(layers)}")
        if k.dtype != torch.bool or k.shape != (layers[name].heads,) or not k.any():
            raise ValueError(f"head mask for {name!r} must be a bool tensor of shape ({layers[name].heads},) "
                             "that keeps at least one head")
    return layers


@torch.no_grad()
def remove_heads(model: nn.Module, keep: dict[str, torch.Tensor], *, inplace: bool = False) -> nn.Module:
    """Cut the q/k/v rows and o columns of the heads `keep` marks False; `heads` shrinks. Returns the smaller model."""
    _check_keep(model, keep)
    net = model if inplace else copy.deepcopy(model)
    layers = dict(attention_layers(net))
    for name, k in keep.items():
        attn = layers[name]
        rows = unit_inputs(torch.nonzero(k.cpu()).flatten(), _head_dim(attn)).to(attn.q.weight.device)  # (kept·d,)
        for p in "qkv":
            prune_out_units(getattr(attn, p), rows)
        prune_in_units(attn.o, rows)
        attn.heads = int(k.sum())
    return net


@torch.no_grad()
def zero_heads(model: nn.Module, keep: dict[str, torch.Tensor], *, inplace: bool = False) -> nn.Module:
    """The masked twin of `remove_heads`: same shapes; the removed heads' q/k/v rows and biases and o columns are
    zeroed, and the weights masked (so fine-tuning keeps them at zero)."""
    _check_keep(model, keep)
    net = model if inplace else copy.deepcopy(model)
    layers, masks = dict(attention_layers(net)), {}
    prefix = {id(m): n for n, m in net.named_modules()}
    for name, k in keep.items():
        attn = layers[name]
        rows = k.cpu().repeat_interleave(_head_dim(attn)).to(attn.q.weight.device)   # (heads·d,)
        for p in "qkvo":
            lin = getattr(attn, p)
            old = getattr(lin, MASK, None)
            mask = rows[:, None].expand_as(lin.weight) if p != "o" else rows[None, :].expand_as(lin.weight)
            masks[prefix[id(lin)]] = mask.clone() if old is None else mask & old
            if p != "o" and lin.bias is not None:
                lin.bias.mul_(rows.to(lin.bias.dtype))
    return apply_masks(net, masks, inplace=True)


def prune_heads(model: nn.Module, ratio: float, *, criterion: str = "l1", scope: str = "global", data: Any = None,
                loss_fn: Callable | None = None, num_batches: int = DEFAULT_NUM_BATCHES,
                inplace: bool = False) -> nn.Module:
    """Remove the `ratio` fraction of attention heads with the lowest `criterion` scores; returns a smaller model."""
    scores = head_scores(model, criterion, data, loss_fn=loss_fn, num_batches=num_batches)
    return remove_heads(model, head_masks(scores, ratio, scope), inplace=inplace)


def mask_heads(model: nn.Module, ratio: float, *, criterion: str = "l1", scope: str = "global", data: Any = None,
               loss_fn: Callable | None = None, num_batches: int = DEFAULT_NUM_BATCHES,
               inplace: bool = False) -> nn.Module:
    """The masked twin of `prune_heads`: the same heads, zeroed and masked instead of cut out."""
    scores = head_scores(model, criterion, data, loss_fn=loss_fn, num_batches=num_batches)
    return zero_heads(model, head_masks(scores, ratio, scope), inplace=inplace)
