"""Unit criteria that see what a filter's own norm cannot: its BatchNorm, its readers, its effect on the loss.

    name              score of unit u (one output neuron or filter of a layer)                       needs data=
    bn_gamma          |γ_u| of the first BatchNorm after the layer (Liu et al. 2017, Network Slimming)  no
    next_layer        ‖W_next[:, inputs fed by u]‖₂, the weights that read u (MIT 6.5940 Lab 1)         no
    taylor            (1/B) Σ_b (Σ_{p∈u} w_p·g_{b,p})², p over u's weight row, bias, BN γ and β          yes
                      (Molchanov et al. 2019, eq. 8, squared per batch as in their public code)
    taylor_abs_mean   (1/B) Σ_b |Σ_{p∈u} w_p·g_{b,p}|: the course's earlier estimator (not the paper's)  yes

Why: a Conv2d that feeds BatchNorm has no say over its output's scale. BN divides by the batch's standard deviation,
so BN(α·W ∗ x) = BN(W ∗ x) for every α > 0: the L1 norm of a filter (Li et al. 2017) says nothing about what the
unit contributes there. γ_u sets the scale after normalisation, and the next layer's weights set how much of it is
read. The Taylor sum Σ w·g over the filter's own weights is 0 in train mode for the same reason (scaling the filter
changes nothing), so on a Conv→BN unit the cited score reduces to the score of a gate after BN, (γ_u·g_γ + β_u·g_β)²,
the form the authors' code uses for BN networks.

A criterion that cannot score a layer refuses it by name: `bn_gamma` a layer without an affine BatchNorm after it,
`next_layer` a link whose consumer is not in the model. Every criterion reads a copy or detached tensors; the model
given is never changed. All are in the registry: `prune_structured(model, 0.5, criterion="bn_gamma")`.
Introduced in 03_structured
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from course import arguments
from course.inputs import any_batches, batch_loss
from course.pruning.criteria import DEFAULT_NUM_BATCHES, register
from course.pruning.surgery import Link

__all__ = ["bn_gamma_scores", "next_layer_scores", "unit_taylor_terms", "unit_taylor_scores",
           "unit_taylor_abs_mean_scores"]

Scores = dict[str, torch.Tensor]


@register("bn_gamma", "units")
def bn_gamma_scores(model: nn.Module, links: list[Link], **_: Any) -> Scores:
    """Network Slimming (Liu et al. 2017): score(u) = |γ_u| of the first BatchNorm after the layer.

    BN's output for unit u is γ_u·x̂_u + β_u with x̂_u normalised to unit variance, so |γ_u| (not the filter's norm)
    sets how far the unit's output varies. Liu et al. also train with an L1 penalty on γ; this is their criterion
    applied to a network trained without it.
    """
    modules = dict(model.named_modules())
    missing = [link.layer for link in links if not link.norms or modules[link.norms[0]].weight is None]
    if missing:
        raise ValueError(f"criterion 'bn_gamma' needs an affine BatchNorm right after every layer it scores; "
                         f"{missing} have none. Leave them out (exclude={missing}) or use another criterion "
                         f"('l1', 'next_layer', 'taylor').")
    return {link.layer: modules[link.norms[0]].weight.detach().abs().float().cpu() for link in links}


@register("next_layer", "units")
def next_layer_scores(model: nn.Module, links: list[Link], **_: Any) -> Scores:
    """MIT 6.5940 Lab 1's channel importance: score(u) = ‖W_next[:, inputs fed by u]‖₂ over every output of the
    next Linear/Conv2d. Across a Flatten, unit u feeds the input block [u·k, (u+1)·k), k = H'·W' (`Link.block`)."""
    modules = dict(model.named_modules())
    missing = [link.layer for link in links if link.consumer not in modules]
    if missing:
        raise ValueError(f"criterion 'next_layer' needs the layer that reads each unit; {missing} have none in this "
                         f"model. Leave them out (exclude={missing}) or use another criterion ('l1', 'taylor').")
    out = {}
    for link in links:
        w = modules[link.consumer].weight.detach().float()              # (out, in, kh, kw) or (out, in)
        cols = w.reshape(w.shape[0], link.units, link.block, -1)        # (out, units, block, kh·kw)
        out[link.layer] = cols.transpose(0, 1).reshape(link.units, -1).norm(dim=1).cpu()   # (units,)
    return out


def unit_taylor_terms(model: nn.Module, links: list[Link], data: Any, *, loss_fn: Callable | None = None,
                      num_batches: int = DEFAULT_NUM_BATCHES, seed: int = 0) -> Scores:
    """{layer: (B, units)}: row b is s_b(u) = Σ_{p∈u} w_p·∂L_b/∂w_p, p over the unit's weight row, its bias and the
    γ, β of its BatchNorms, on batch b.

    s_b(u) is the first-order change of L_b when a gate on the unit's output moves from 1 to 0 (after BN when there
    is one). Computed on a deep copy in train mode (BN normalises with the batch's statistics, as during the
    fine-tuning the authors prune in), with its own seeded random state, so dropout repeats for the same `seed` and
    neither the model nor the caller's generator is touched. Frozen parameters are scored too.
    """
    num_batches = arguments.integer(num_batches, "num_batches", low=1)
    loss = batch_loss(loss_fn)
    net = copy.deepcopy(model).train()
    for p in net.parameters():
        p.requires_grad_(True)
    modules = dict(net.named_modules())
    groups = {link.layer: [p for p in (modules[link.layer].weight, modules[link.layer].bias,
                                       *(q for bn in link.norms for q in (modules[bn].weight, modules[bn].bias)))
                           if p is not None] for link in links}
    rows: dict[str, list[torch.Tensor]] = {link.layer: [] for link in links}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for batch in any_batches(data, limit=num_batches):
            net.zero_grad(set_to_none=True)
            loss(net, batch).backward()
            with torch.no_grad():
                for link in links:
                    s = sum((p * p.grad).reshape(link.units, -1).sum(1)
                            for p in groups[link.layer] if p.grad is not None)                   # (units,)
                    rows[link.layer].append(torch.as_tensor(s, dtype=torch.float32).expand(link.units).cpu())
    if not any(rows.values()):
        raise ValueError("data= yielded no batches; pass a DataLoader, an iterable of batches or one (x, y) pair")
    return {name: torch.stack(r) for name, r in rows.items()}


@register("taylor", "units", needs_data=True)
def unit_taylor_scores(model: nn.Module, links: list[Link], *, data: Any = None, loss_fn: Callable | None = None,
                       num_batches: int = DEFAULT_NUM_BATCHES, seed: int = 0, **_: Any) -> Scores:
    """Group Taylor FO (Molchanov et al. 2019, eq. 8): score(u) = (1/B) Σ_b s_b(u)², s_b = `unit_taylor_terms`.

    Squared per batch, then averaged, as in the authors' code (Taylor_pruning, method 22 for BN networks): the
    square of each batch's estimate of the loss change, so batches whose signs disagree do not cancel.
    """
    terms = unit_taylor_terms(model, links, data, loss_fn=loss_fn, num_batches=num_batches, seed=seed)
    return {name: t.square().mean(0) for name, t in terms.items()}


@register("taylor_abs_mean", "units", needs_data=True)
def unit_taylor_abs_mean_scores(model: nn.Module, links: list[Link], *, data: Any = None,
                                loss_fn: Callable | None = None, num_batches: int = DEFAULT_NUM_BATCHES,
                                seed: int = 0, **_: Any) -> Scores:
    """The course's earlier unit Taylor: score(u) = (1/B) Σ_b |s_b(u)| (absolute value, not the paper's square)."""
    terms = unit_taylor_terms(model, links, data, loss_fn=loss_fn, num_batches=num_batches, seed=seed)
    return {name: t.abs().mean(0) for name, t in terms.items()}
