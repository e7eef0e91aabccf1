"""Answers to every exercise, written from the exercise text the way learners write them: many correct variants (other
algorithms, other input orders, other return types) and near misses (off by one, rounding, empty limits, orders).

tests/test_checks_properties.py feeds them to the checks. A correct variant is a factory `make(rng) -> function`:
`rng` (a random.Random drawn by hypothesis) decides the order in which the function walks its inputs, so the same
answer is tried on many input orders. A near miss is `(function, fragment of the feedback it must get)`.
"""
from __future__ import annotations

import copy
import itertools
import math
import random
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

Make = Callable[[random.Random], Callable]


def fixed(fn: Callable) -> Make:
    """A variant that does not depend on the order of its inputs."""
    return lambda rng: fn


def _shuffled(items: list, rng: random.Random) -> list:
    out = list(items)
    rng.shuffle(out)
    return out


# --- 00 · parameters and bytes ---------------------------------------------------------------------------------

LINEAR_PARAMS = {
    "correct": [fixed(lambda i, o: o * i + o), fixed(lambda i, o: (i + 1) * o),
                fixed(lambda i, o: sum(p.numel() for p in nn.Linear(i, o).parameters()))],
    "wrong": [(lambda i, o: o * i, "you counted the weights only"),
              (lambda i, o: o * i + i, "one bias per OUTPUT neuron"),
              (lambda i, o: (i + 1) * (o + 1), "no bias on the input side"),
              (lambda i, o: o * i + o + 1, "expected")],
}

DENSE_BYTES = {
    "correct": [fixed(lambda m: sum(p.numel() * p.element_size() for p in m.parameters())),
                fixed(lambda m: 4 * sum(p.numel() for p in m.parameters())),
                fixed(lambda m: sum(p.nbytes for p in m.parameters())),
                fixed(lambda m: 4 * nn.utils.parameters_to_vector(m.parameters()).numel())],
    "wrong": [(lambda m: 4 * sum(p.numel() for p in m.parameters() if p.requires_grad), "only the trainable"),
              (lambda m: 4 * sum(t.numel() for t in m.state_dict().values()), "buffers too, at 4 bytes each"),
              (lambda m: sum(t.numel() * t.element_size() for t in m.state_dict().values()), "buffers too"),
              (lambda m: sum(p.numel() for p in m.parameters()), "each float32 parameter takes 4 bytes"),
              (lambda m: 4 * sum(p.numel() for n, p in m.named_parameters() if n.endswith("weight")),
               "left out the biases")],
}


# --- 01 · masks, sparsity, where free pruning ends ----------------------------------------------------------------

def _mask_argsort(w, s):
    k = round(s * w.numel())
    mask = torch.ones(w.numel(), dtype=torch.bool)
    mask[w.abs().flatten().argsort()[:k]] = False
    return mask.view(w.shape)


def _mask_kthvalue(w, s):
    k = round(s * w.numel())
    if k == 0:
        return torch.ones_like(w, dtype=torch.bool)
    return w.abs() > w.abs().flatten().kthvalue(k).values


def _mask_sorted(w, s):
    k = round(s * w.numel())
    if k == 0:
        return torch.ones(w.shape, dtype=torch.bool)
    return w.abs() > torch.sort(w.abs().flatten()).values[k - 1]


def _mask_topk(w, s):
    keep = w.numel() - round(s * w.numel())
    mask = torch.zeros(w.numel(), dtype=torch.bool)
    mask[torch.topk(w.abs().flatten(), keep).indices] = True
    return mask.reshape(w.shape)


MAGNITUDE_MASK = {
    "correct": [fixed(_mask_argsort), fixed(_mask_kthvalue), fixed(_mask_sorted), fixed(_mask_topk)],
    "wrong": [(lambda w, s: w.abs() >= w.abs().flatten().kthvalue(max(round(s * w.numel()), 1)).values, "One too few"),
              (lambda w, s: _mask_argsort(w, int(s * w.numel()) / w.numel()), "truncated"),
              (lambda w, s: _mask_argsort(w, math.ceil(s * w.numel()) / w.numel()), "rounded s·n = 1.2 up"),
              (lambda w, s: w.abs() > torch.quantile(w.abs().flatten(), s) if s else torch.ones_like(w, dtype=torch.bool),
               "torch.quantile interpolates"),
              (lambda w, s: w.abs() >= torch.quantile(w.abs().flatten(), s), "torch.quantile interpolates"),
              (lambda w, s: ~_mask_argsort(w, s), "True = kept"),
              (lambda w, s: _mask_argsort(w, 1 - s), "Sparsity is the fraction removed")],
}


def _sparsity(model):
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    return sum(int((m.weight == 0).sum()) for m in layers) / sum(m.weight.numel() for m in layers)


ACHIEVED_SPARSITY = {
    "correct": [fixed(_sparsity),
                fixed(lambda model: 1 - sum(int(torch.count_nonzero(m.weight)) for m in model.modules()
                                            if isinstance(m, (nn.Linear, nn.Conv2d)))
                      / sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))),
                fixed(lambda model: torch.cat([m.weight.detach().flatten() for m in model.modules()
                                               if isinstance(m, (nn.Conv2d, nn.Linear))]).eq(0).float().mean())],
    "wrong": [(lambda model: 1 - _sparsity(model), "density"),
              (lambda model: 100 * _sparsity(model), "not a percentage"),
              (lambda model: sum(int((p == 0).sum()) for p in model.parameters())
               / sum(p.numel() for p in model.parameters()), "biases included"),
              (lambda model: float(np.mean([float((m.weight == 0).float().mean()) for m in model.modules()
                                            if isinstance(m, (nn.Linear, nn.Conv2d))])), "averaged the per-layer")],
}


def _within_loop(s, a, ref, tol):
    best = 0.0
    for si, ai in zip(s, a):
        if ai < ref - tol:
            break
        best = si
    return best


def _within_drop(s, a, ref, tol):
    best = 0.0
    for si, ai in zip(s, a):
        if ref - ai > tol:
            break
        best = si
    return best


def _within_takewhile(s, a, ref, tol):
    ok = list(itertools.takewhile(lambda p: p[1] >= ref - tol, zip(s, a)))
    return ok[-1][0] if ok else 0.0


def _within_numpy(s, a, ref, tol):
    bad = np.asarray(a) < ref - tol
    stop = int(np.argmax(bad)) if bad.any() else len(s)
    return np.asarray(s, dtype=np.float64)[stop - 1] if stop else np.float64(0.0)


LARGEST_WITHIN = {
    "correct": [fixed(_within_loop), fixed(_within_drop), fixed(_within_takewhile), fixed(_within_numpy)],
    "wrong": [(lambda s, a, ref, tol: _within_loop(s, a, ref + 1e-9, tol), "still within tolerance"),
              (lambda s, a, ref, tol: max([si for si, ai in zip(s, a) if ai >= ref - tol], default=0.0), "anywhere"),
              (lambda s, a, ref, tol: _within_loop(s, a, ref, ref * tol), "relative tolerance"),
              (lambda s, a, ref, tol: _within_loop(s, a, ref, tol) if a[0] >= ref - tol else s[0], "return 0.0"),
              (lambda s, a, ref, tol: s.index(_within_loop(s, a, ref, tol)) if _within_loop(s, a, ref, tol) else 0,
               "not its position")],
}


# --- 02 · bytes of storage forms --------------------------------------------------------------------------------

def _nnz(w) -> int:
    return int((w != 0).sum())


BITMASK_FP16 = {
    "correct": [fixed(lambda w: math.ceil(w.numel() / 8) + 2 * _nnz(w)),
                fixed(lambda w: (w.numel() + 7) // 8 + 2 * int(torch.count_nonzero(w))),
                fixed(lambda w: np.packbits(w.flatten().numpy() != 0).nbytes + 2 * np.count_nonzero(w.numpy())),
                fixed(lambda w: -(-w.numel() // 8) + w[w != 0].half().numel() * w.new_zeros(1).half().element_size())],
    "wrong": [(lambda w: w.numel() / 8 + 2 * _nnz(w), "round the bitmask up"),
              (lambda w: w.numel() // 8 + 2 * _nnz(w), "not n // 8"),
              (lambda w: math.ceil(w.numel() / 8) + 4 * _nnz(w), "fp16 takes 2 bytes"),
              (lambda w: math.ceil(w.numel() / 8) + 2 * w.nonzero().numel(), "nnz × ndim"),
              (lambda w: 2 * _nnz(w), "forgot the bitmask")],
}


def _csr_torch(w):
    t = w.to_sparse_csr()                    # torch warns that sparse CSR is in beta: a learner's code may warn
    return sum(x.numel() * x.element_size() for x in (t.crow_indices(), t.col_indices(), t.values()))


CSR_BYTES = {
    "correct": [fixed(lambda w: (w.shape[0] + 1) * 8 + _nnz(w) * 8 + _nnz(w) * 4),
                fixed(lambda w: 8 * (w.size(0) + 1) + 12 * int(torch.count_nonzero(w))),
                fixed(_csr_torch)],
    "wrong": [(lambda w: (w.shape[0] + 1) * 4 + 8 * _nnz(w), "int32"),
              (lambda w: w.shape[0] * 8 + 12 * _nnz(w), "rows + 1 entries"),
              (lambda w: (w.shape[1] + 1) * 8 + 12 * _nnz(w), "number of columns"),
              (lambda w: (w.shape[0] + 1) * 8 + 12 * w.nonzero().numel(), "counted each nonzero twice"),
              (lambda w: 20 * _nnz(w), "that is COO")],
}


# --- 03 · filters, surgery, FLOPs -------------------------------------------------------------------------------

def _remove_filter(conv, bn, nxt, idx):
    keep = [i for i in range(conv.out_channels) if i != idx]
    c = nn.Conv2d(conv.in_channels, len(keep), conv.kernel_size, stride=conv.stride, padding=conv.padding,
                  dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None)
    b = nn.BatchNorm2d(len(keep), eps=bn.eps, momentum=bn.momentum)
    n = nn.Conv2d(len(keep), nxt.out_channels, nxt.kernel_size, stride=nxt.stride, padding=nxt.padding,
                  dilation=nxt.dilation, groups=nxt.groups, bias=nxt.bias is not None)
    with torch.no_grad():
        c.weight.copy_(conv.weight[keep])
        if conv.bias is not None:
            c.bias.copy_(conv.bias[keep])
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(b, name).copy_(getattr(bn, name)[keep])
        n.weight.copy_(nxt.weight[:, keep])
        if nxt.bias is not None:
            n.bias.copy_(nxt.bias)
    return c, b, n


def _remove_filter_deepcopy(conv, bn, nxt, idx):
    keep = torch.tensor([i for i in range(conv.out_channels) if i != idx])
    c, b, n = copy.deepcopy(conv), copy.deepcopy(bn), copy.deepcopy(nxt)
    c.weight = nn.Parameter(conv.weight.detach().index_select(0, keep).clone())
    if conv.bias is not None:
        c.bias = nn.Parameter(conv.bias.detach()[keep].clone())
    c.out_channels = len(keep)
    b.weight, b.bias = nn.Parameter(bn.weight.detach()[keep].clone()), nn.Parameter(bn.bias.detach()[keep].clone())
    b.running_mean, b.running_var = bn.running_mean[keep].clone(), bn.running_var[keep].clone()
    b.num_features = len(keep)
    n.weight = nn.Parameter(nxt.weight.detach()[:, keep].clone())
    n.in_channels = len(keep)
    return [c, b, n]


def _remove_filter_fresh_stats(conv, bn, nxt, idx):
    c, b, n = _remove_filter(conv, bn, nxt, idx)
    b.running_mean.zero_()
    b.running_var.fill_(1.0)
    return c, b, n


REMOVE_FILTER = {
    "correct": [fixed(_remove_filter), fixed(_remove_filter_deepcopy)],
    "wrong": [(lambda c, b, n, i: _remove_filter(c, b, n, (i + 1) % 5), "off by one"),
              (_remove_filter_fresh_stats, "fresh running statistics"),
              (lambda c, b, n, i: (_remove_filter(c, b, n, i)[0], b, _remove_filter(c, b, n, i)[2]),
               "BatchNorm still has 5 channels")],
}


def _flops(conv, hw, *, dilation=True, div=lambda a, b: a // b):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    dh, dw = (dh, dw) if dilation else (1, 1)
    ho = div(hw[0] + 2 * ph - dh * (kh - 1) - 1, sh) + 1
    wo = div(hw[1] + 2 * pw - dw * (kw - 1) - 1, sw) + 1
    return 2 * conv.in_channels * kh * kw * conv.out_channels * ho * wo


def _flops_counted(conv, hw):
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        conv(torch.zeros(1, conv.in_channels, *hw))
    return counter.get_total_flops()


def _flops_shape(conv, hw):
    with torch.no_grad():
        out = conv(torch.zeros(1, conv.in_channels, *hw))               # (1, C_out, H_out, W_out)
    return 2 * conv.weight[0].numel() * out.numel()


CONV_FLOPS = {
    "correct": [fixed(_flops), fixed(lambda c, hw: _flops(c, hw, div=lambda a, b: math.floor(a / b))),
                fixed(_flops_counted), fixed(_flops_shape)],
    "wrong": [(lambda c, hw: _flops(c, hw, dilation=False), "left out the dilation"),
              (lambda c, hw: _flops(c, hw, div=lambda a, b: a / b), "divided with `/`"),
              (lambda c, hw: _flops(c, hw, div=lambda a, b: math.ceil(a / b)), "rounded up"),
              (lambda c, hw: _flops(c, hw) // 2, "multiply-accumulates"),
              (lambda c, hw: _flops(c, hw) + c.out_channels, "expected")],
}


def _l1_ranking(w):
    return w.abs().sum(dim=(1, 2, 3)).argsort()


L1_RANKING = {
    "correct": [fixed(_l1_ranking), fixed(lambda w: torch.sort(w.abs().flatten(1).sum(1)).indices),
                fixed(lambda w: sorted(range(w.shape[0]), key=lambda i: float(w[i].abs().sum()))),
                fixed(lambda w: np.argsort(np.abs(w.numpy()).reshape(w.shape[0], -1).sum(1)))],
    "wrong": [(lambda w: _l1_ranking(w).flip(0), "descending order"),
              (lambda w: w.pow(2).sum(dim=(1, 2, 3)).argsort(), "L2 norm"),
              (lambda w: w.sum(dim=(1, 2, 3)).argsort(), "signed weights"),
              (lambda w: w.abs().sum(dim=(1, 2, 3)).sort().values, "float values")],
}


# --- 04 · scores and rank correlation ---------------------------------------------------------------------------

TAYLOR = {
    "correct": [fixed(lambda w, g: (w * g).abs()), fixed(lambda w, g: w.abs() * g.abs()),
                fixed(lambda w, g: torch.abs(torch.mul(w.double(), g.double())))],
    "wrong": [(lambda w, g: w * g, "can be negative"), (lambda w, g: (w * g) ** 2, "squared"),
              (lambda w, g: w.abs() * g, "not of the weight alone"), (lambda w, g: w.abs(), "ignores the gradient")],
}


def _ranks(x):
    return x.argsort().argsort().double()


def _spearman(a, b):
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


SPEARMAN = {
    "correct": [fixed(_spearman),
                fixed(lambda a, b: torch.corrcoef(torch.stack([_ranks(a), _ranks(b)]))[0, 1]),
                fixed(lambda a, b: torch.corrcoef(torch.stack([_ranks(a), _ranks(b)]).float())[0, 1]),
                fixed(lambda a, b: 1 - 6 * (_ranks(a) - _ranks(b)).square().sum() / (a.numel() * (a.numel() ** 2 - 1))),
                fixed(lambda a, b: np.corrcoef(np.argsort(np.argsort(a.numpy())), np.argsort(np.argsort(b.numpy())))[0, 1])],
    "wrong": [(lambda a, b: float(torch.corrcoef(torch.stack([a, b]).double())[0, 1]), "Pearson's correlation of the raw"),
              (lambda a, b: float(torch.corrcoef(torch.stack([a.argsort(), b.argsort()]).double())[0, 1]),
               "not the ranks"),
              (lambda a, b: abs(_spearman(a, b)), "keeps its sign"),
              (lambda a, b: 1 - _spearman(a, b), "1 − ρ")],
}


# --- 05 · one global threshold, connectivity --------------------------------------------------------------------

def _global_scores(weights, rng):
    return torch.cat([w.abs().flatten() for w in _shuffled(list(weights.values()), rng)])


def _threshold_k(weights, s, offset=0):
    scores = torch.cat([w.abs().flatten() for w in weights.values()])
    return scores.sort().values[round(s * scores.numel()) - 1 + offset].item()


GLOBAL_THRESHOLD = {
    "correct": [lambda rng: lambda w, s: _global_scores(w, rng).kthvalue(round(s * _global_scores(w, rng).numel())).values,
                lambda rng: lambda w, s: _threshold_k({k: w[k] for k in _shuffled(list(w), rng)}, s),
                lambda rng: lambda w, s: torch.quantile(_global_scores(w, rng), s).item(),
                lambda rng: lambda w, s: np.partition(_global_scores(w, rng).numpy(),
                                                      round(s * _global_scores(w, rng).numel()) - 1)[round(s * _global_scores(w, rng).numel()) - 1]],
    "wrong": [(lambda w, s: _threshold_k(w, s, +1), "one more than"),
              (lambda w, s: _threshold_k(w, s, -1), "one fewer than"),
              (lambda w, s: torch.cat([v.flatten() for v in w.values()]).kthvalue(round(s * 1000)).values, "signed"),
              (lambda w, s: _threshold_k(w, 1 - s), "prunes 40% of all weights"),
              (lambda w, s: float(np.mean([_threshold_k({k: v}, s) for k, v in w.items()])), "average of the per-layer")],
}


def _connected(masks):
    reach = torch.ones(masks[0].shape[1], dtype=torch.bool)
    for m in masks:
        reach = (m & reach[None, :]).any(1)
    return bool(reach.any())


def _connected_numpy(masks):
    reach = np.ones(masks[0].shape[1], dtype=bool)
    for m in masks:
        reach = (m.numpy() & reach[None, :]).any(axis=1)
    return reach.any()                                                   # a numpy bool


def _connected_matmul(masks):
    v = torch.ones(masks[0].shape[1])
    for m in masks:
        v = (m.float() @ v > 0).float()
    return v.bool().any()                                                # a one-element bool tensor


def _connected_sets(masks):
    reach = set(range(masks[0].shape[1]))
    for m in masks:
        reach = {i for i in range(m.shape[0]) if any(bool(m[i, j]) for j in reach)}
    return len(reach) > 0


CHAIN_CONNECTED = {
    "correct": [fixed(_connected), fixed(_connected_numpy), fixed(_connected_matmul), fixed(_connected_sets)],
    "wrong": [(lambda masks: all(bool(m.any()) for m in masks), "Checking that every layer keeps a weight"),
              (lambda masks: _connected([m.t() for m in masks]) if all(m.shape[0] == m.shape[1] for m in masks)
               else _connected(masks), "reading them as (in, out)"),
              (lambda masks: bool(_reach(masks).all()), "One path is enough"),
              (lambda masks: int(_connected(masks)), "Return True or False")],
}


def _reach(masks):
    reach = torch.ones(masks[0].shape[1], dtype=torch.bool)
    for m in masks:
        reach = (m & reach[None, :]).any(1)
    return reach


# --- 06 · schedules ---------------------------------------------------------------------------------------------

def _cubic(step, s_f, begin, end):
    p = min(max((step - begin) / (end - begin), 0.0), 1.0)
    return s_f * (1 - (1 - p) ** 3)


def _cubic_branches(step, s_f, begin, end):
    if step <= begin:
        return 0.0
    if step >= end:
        return s_f
    return s_f * (1 - (1 - (step - begin) / (end - begin)) ** 3)


CUBIC = {
    "correct": [fixed(_cubic), fixed(_cubic_branches),
                fixed(lambda t, s_f, b, e: s_f * (1 - (1 - torch.clamp(torch.tensor((t - b) / (e - b)), 0, 1)) ** 3)),
                fixed(lambda t, s_f, b, e: s_f * (1 - (1 - np.clip((t - b) / (e - b), 0.0, 1.0)) ** 3))],
    "wrong": [(lambda t, s_f, b, e: s_f * min(max((t - b) / (e - b), 0.0), 1.0), "linear in the step"),
              (lambda t, s_f, b, e: s_f * min(max((t - b) / (e - b), 0.0), 1.0) ** 3, "starts slow"),
              (lambda t, s_f, b, e: _cubic(t, s_f, b, e + 1), "(end − begin + 1)"),
              (lambda t, s_f, b, e: s_f * (1 - (1 - (t - b) / (e - b)) ** 3), "Clamp the progress"),
              (lambda t, s_f, b, e: 1 - _cubic(t, s_f, b, e), "density")],
}


def _targets(s_f, k):
    p = 1 - (1 - s_f) ** (1 / k)
    return [1 - (1 - p) ** i for i in range(1, k + 1)]


def _targets_density(s_f, k):
    out, density, keep = [], 1.0, (1 - s_f) ** (1 / k)
    for _ in range(k):
        density *= keep
        out.append(1 - density)
    return out


ITERATIVE = {
    "correct": [fixed(_targets), fixed(_targets_density),
                fixed(lambda s_f, k: [1 - (1 - s_f) ** (i / k) for i in range(1, k + 1)]),
                fixed(lambda s_f, k: 1 - (1 - s_f) ** (np.arange(1, k + 1) / k)),
                fixed(lambda s_f, k: 1 - (1 - s_f) ** (torch.arange(1, k + 1, dtype=torch.float64) / k))],
    "wrong": [(lambda s_f, k: [1 - (1 - s_f) ** (i / k) for i in range(k)], "starts at s_0 = 0"),
              (lambda s_f, k: [1 - (1 - s_f) ** (i / k) for i in range(k + 1)], "without the starting point"),
              (lambda s_f, k: [s_f * i / k for i in range(1, k + 1)], "grow linearly"),
              (lambda s_f, k: [1 - (1 - s_f / k) ** i for i in range(1, k + 1)], "With p = s_f/K"),
              (lambda s_f, k: [(1 - s_f) ** (i / k) for i in range(1, k + 1)], "densities")],
}


# --- 07 · budgets and Pareto fronts -----------------------------------------------------------------------------

def _fits(c, max_size, max_latency, min_accuracy):
    return ((max_size is None or c["size_bytes"] <= max_size) and (max_latency is None or c["latency_ms"] <= max_latency)
            and (min_accuracy is None or c["accuracy"] >= min_accuracy))


def _pick_filter(rng):
    def pick(configs, max_size=None, max_latency=None, min_accuracy=None):
        fitting = [c for c in _shuffled(configs, rng) if _fits(c, max_size, max_latency, min_accuracy)]
        return max(fitting, key=lambda c: c["accuracy"])["name"] if fitting else None
    return pick


def _pick_sorted(rng):
    def pick(configs, max_size=None, max_latency=None, min_accuracy=None):
        for c in sorted(_shuffled(configs, rng), key=lambda c: -c["accuracy"]):
            if _fits(c, max_size, max_latency, min_accuracy):
                return np.str_(c["name"])                                  # a numpy string is still a name
        return None
    return pick


def _pick_falsy(configs, max_size=None, max_latency=None, min_accuracy=None):
    fitting = [c for c in configs if (not max_size or c["size_bytes"] <= max_size)
               and (not max_latency or c["latency_ms"] <= max_latency)
               and (not min_accuracy or c["accuracy"] >= min_accuracy)]
    return max(fitting, key=lambda c: c["accuracy"])["name"] if fitting else None


def _pick_strict(configs, max_size=None, max_latency=None, min_accuracy=None):
    fitting = [c for c in configs if (max_size is None or c["size_bytes"] < max_size)
               and (max_latency is None or c["latency_ms"] < max_latency)
               and (min_accuracy is None or c["accuracy"] > min_accuracy)]
    return max(fitting, key=lambda c: c["accuracy"])["name"] if fitting else None


PICK_UNDER_BUDGET = {
    "correct": [_pick_filter, _pick_sorted],
    "wrong": [(_pick_falsy, "is a limit, not 'no limit'"), (_pick_strict, "exactly at the limit"),
              (lambda configs, **limits: _pick_filter(random.Random(0))(configs, **limits) or "", "so return None"),
              (lambda configs, max_size=None, max_latency=None, min_accuracy=None:
               max(configs, key=lambda c: c["accuracy"])["name"], "breaks the budget")],
}


def _dominates(q, p):
    return (q["size_bytes"] <= p["size_bytes"] and q["accuracy"] >= p["accuracy"]
            and (q["size_bytes"] < p["size_bytes"] or q["accuracy"] > p["accuracy"]))


def _front_list(rng):
    def front(points):
        pts = _shuffled(points, rng)
        kept = [p for p in pts if not any(_dominates(q, p) for q in pts)]
        return [p["name"] for p in sorted(kept, key=lambda p: p["size_bytes"])]
    return front


def _front_set(rng):
    def front(points):                                         # a set: its order depends on the hash seed
        names = {p["name"] for p in points if not any(_dominates(q, p) for q in points)}
        size = {p["name"]: p["size_bytes"] for p in points}
        return sorted(names, key=size.get)
    return front


def _front_reversed(rng):
    def front(points):
        kept = [p for p in _shuffled(points, rng) if not any(_dominates(q, p) for q in points)]
        return tuple(reversed([p["name"] for p in sorted(kept, key=lambda p: p["size_bytes"], reverse=True)]))
    return front


PARETO = {
    "correct": [_front_list, _front_set, _front_reversed],
    "wrong": [(lambda pts: _front_list(random.Random(0))(pts)[::-1], "largest first"),
              (lambda pts: set(_front_list(random.Random(0))(pts)), "Return a list of names"),
              (lambda pts: [p["name"] for p in sorted(pts, key=lambda p: p["size_bytes"])
                            if not any(q["size_bytes"] < p["size_bytes"] and q["accuracy"] > p["accuracy"] for q in pts)],
               "dominates it"),
              (lambda pts: [p["name"] for p in sorted(pts, key=lambda p: p["size_bytes"])
                            if not any(q is not p and q["size_bytes"] <= p["size_bytes"] and q["accuracy"] >= p["accuracy"]
                                       for q in pts)], "'twin' and 's90' are identical")],
}


# --- 08 · ratios from a scan, Amdahl ------------------------------------------------------------------------------

def _ratios(rng, *, order=sorted, stop=True, values=float):
    def pick(scan, baseline, tolerance):
        out = {}
        for layer in _shuffled(list(scan), rng):
            best = 0.0
            for r in order(scan[layer]):
                if baseline - scan[layer][r] > tolerance:
                    if stop:
                        break
                    continue
                best = max(best, r) if not stop else r
            out[layer] = values(best)
        return out
    return pick


PICK_RATIOS = {
    "correct": [lambda rng: _ratios(rng), lambda rng: _ratios(rng, values=np.float64),
                lambda rng: _ratios(rng, order=lambda accs: [r for r, _ in sorted(accs.items())]),
                lambda rng: lambda scan, b, t: {layer: max([0.0, *itertools.takewhile(
                    lambda r: b - accs[r] <= t, sorted(accs))]) for layer, accs in scan.items()}],
    "wrong": [(_ratios(random.Random(0), order=list), "may come in any order"),
              (_ratios(random.Random(0), stop=False), "stop at the first one that breaks the tolerance"),
              (lambda scan, b, t: {k: v for k, v in _ratios(random.Random(0))(scan, b, t).items() if v},
               "no entry for"),
              (lambda scan, b, t: _ratios(random.Random(0))(scan, b, t - 1e-9) if t else
               {k: 0.0 for k in scan}, "not <")],
}

SPEEDUP = {
    "correct": [fixed(lambda k, p: 1.0 / ((1.0 - p) + p / k)), fixed(lambda k, p: k / (k * (1 - p) + p)),
                fixed(lambda k, p: np.reciprocal(np.float64(1 - p) + p / k)),
                fixed(lambda k, p: 1 / (torch.tensor(1 - p, dtype=torch.float64) + p / k))],
    "wrong": [(lambda k, p: k, "FLOP ratio itself"), (lambda k, p: (1 - p) + p / k, "its inverse"),
              (lambda k, p: (1 - p) + p * k, "averaged the speedups"), (lambda k, p: 1 / ((1 - p) + p * k), "SHORTER")],
}
