"""FLOPs of one forward pass on any model: `torch.utils.flop_counter` plus what it cannot see.

Three blind spots of `FlopCounterMode` (torch 2.13), all closed here:
  - nn.TransformerEncoder(Layer) / nn.MultiheadAttention in eval run a fused "fast path" whose kernels the counter
    does not know (it counts ~0 for attention). We count with `torch.backends.mha.set_fastpath_enabled(False)` (the
    same arithmetic, unfused), in eval mode (dropout off, BatchNorm statistics untouched), then restore the flag.
  - nn.LSTM on CPU with a padded tensor runs oneDNN's fused RNN: the counter sees 0 (with a PackedSequence, and for
    GRU/RNN, it sees the per-step matmuls). So every nn.LSTM/GRU/RNN is counted ANALYTICALLY (`rnn_flops`), and what
    the counter saw inside it is replaced: per layer and direction, over S token steps (N·T, or sum(lengths) when
    packed), W_ih costs 2·S·G·H·I and W_hh 2·S·G·H·P (G gates: 4 LSTM, 3 GRU, 1 RNN; I = input size; P = proj_size
    or H; W_hr adds 2·S·H·P). Biases and gate nonlinearities count 0, as the counter counts a Linear's bias 0.
    `FlopCount.analytic` names the layers counted this way.
  - F.scaled_dot_product_attention on CPU without dropout dispatches to
    `aten._scaled_dot_product_flash_attention_for_cpu`, which has no formula in the counter's registry: we map it to
    the counter's own SDPA formula (QKᵀ and AV: 4·N·heads·T_q·T_k·d_h), as it does for the CUDA kernels.
Convention: 1 multiply-accumulate = 2 FLOPs. Effective FLOPs = Σ over weight ops of dense FLOPs x the density of the
weight they multiply (MultiheadAttention's q/k/v projections block by block); ops that multiply no weight (attention's
QKᵀ and AV, and whatever the counter cannot attribute to a layer) keep density 1.
Introduced in 00_setup_and_baselines (FLOPs of transformers and recurrent layers: issue 11)
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

from course.inputs import call, example_inputs as make_inputs, leading_size
from course.table import Table

__all__ = ["FlopCount", "count_flops", "rnn_flops", "mha_flops"]

_WEIGHTED = (nn.Linear, nn.modules.conv._ConvNd)
_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """The counter's SDPA count (QKᵀ + AV) for the CPU kernel, which its registry lacks in torch 2.13."""
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


_CPU_SDPA = {}
if hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
    _CPU_SDPA[torch.ops.aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_sdpa_flop


class FlopCount(Table):
    """FLOPs per layer; `.dense`, `.effective` (FLOPs), `.macs`, `.effective_macs` (= FLOPs / 2), `.layers[name]`,
    `.analytic` (recurrent layers counted by formula)."""

    def __init__(self, rows: list[tuple[str, int, float, float]], batch_size: int, analytic: list[str] | None = None):
        self.dense = sum(r[1] for r in rows)
        self.effective = sum(r[3] for r in rows)
        self.batch_size = batch_size
        self.analytic = list(analytic or [])
        self.layers = {r[0]: {"dense": r[1], "density": r[2], "effective": r[3]} for r in rows}
        note = "1 FLOP = one multiply or one add; 1 MAC = 2 FLOPs"
        if self.analytic:
            note += f"; counted by formula (the counter cannot see them): {', '.join(self.analytic)}"
        super().__init__(["layer", "dense FLOPs", "density", "effective FLOPs"],
                         rows + [("total", self.dense, self.effective / self.dense if self.dense else 1.0,
                                  self.effective)],
                         title=f"FLOPs per forward pass (batch {batch_size})",
                         formats={"dense FLOPs": "count", "density": ".1%", "effective FLOPs": "count"}, note=note)

    @property
    def macs(self) -> int:
        """Dense multiply-accumulates = dense FLOPs / 2."""
        return self.dense // 2

    @property
    def effective_macs(self) -> float:
        """MACs that touch a nonzero weight = effective FLOPs / 2."""
        return self.effective / 2


def rnn_flops(module: nn.RNNBase, inputs: torch.Tensor | PackedSequence) -> dict[str, int]:
    """{weight name: FLOPs} of one forward of an nn.LSTM/GRU/RNN on `inputs` (formula in the module docstring)."""
    if isinstance(inputs, PackedSequence):
        steps = int(inputs.batch_sizes.sum())
    else:
        steps = inputs.shape[0] * inputs.shape[1] if inputs.dim() == 3 else inputs.shape[0]
    g, h = _GATES[module.mode], module.hidden_size
    p = module.proj_size or h
    dirs = 2 if module.bidirectional else 1
    out = {}
    for layer in range(module.num_layers):
        size_in = module.input_size if layer == 0 else p * dirs
        for d in range(dirs):
            sfx = f"_l{layer}{'_reverse' if d else ''}"
            out[f"weight_ih{sfx}"] = 2 * steps * g * h * size_in
            out[f"weight_hh{sfx}"] = 2 * steps * g * h * p
            if module.proj_size:
                out[f"weight_hr{sfx}"] = 2 * steps * h * p
    return out


def _density(t: torch.Tensor) -> float:
    return float((t != 0).sum()) / t.numel()


def mha_flops(m: nn.MultiheadAttention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> dict:
    """{"in_proj", "out_proj": [dense, effective]}: W_q·q, W_k·k, W_v·v (2·tokens·nnz per block), W_o·out."""
    e = m.embed_dim
    tq, tk, tv = query.numel() // e, key.numel() // m.kdim, value.numel() // m.vdim
    if m.in_proj_weight is not None:
        blocks = m.in_proj_weight.detach().split(e)
    else:
        blocks = (m.q_proj_weight.detach(), m.k_proj_weight.detach(), m.v_proj_weight.detach())
    out = {"in_proj": [0, 0]}
    for tokens, w in zip((tq, tk, tv), blocks):
        out["in_proj"][0] += 2 * tokens * w.numel()
        out["in_proj"][1] += 2 * tokens * int((w != 0).sum())
    w_o = m.out_proj.weight.detach()
    out["out_proj"] = [2 * tq * w_o.numel(), 2 * tq * int((w_o != 0).sum())]
    return out


class _Probe:
    """Forward hooks on recurrent and attention layers: their analytic counts and what the counter saw inside."""

    def __init__(self, model: nn.Module, counter: FlopCounterMode):
        self.counter, self.names, self.start = counter, {m: n for n, m in model.named_modules()}, {}
        self.inside: dict[str, int] = {}
        self.analytic: dict[str, dict] = {}               # name -> {weight or part: [dense, effective]}
        layers = [m for m in model.modules() if isinstance(m, (nn.RNNBase, nn.MultiheadAttention))]
        self.handles = [h for m in layers for h in (m.register_forward_pre_hook(self.before, with_kwargs=True),
                                                    m.register_forward_hook(self.after, with_kwargs=True))]

    def before(self, module, args, kwargs):
        self.start[module] = self.counter.get_total_flops()

    def after(self, module, args, kwargs, output):
        name = self.names[module]
        self.inside[name] = self.inside.get(name, 0) + self.counter.get_total_flops() - self.start.pop(module)
        if isinstance(module, nn.RNNBase):
            x = args[0] if args else kwargs["input"]
            parts = {k: [v, v * _density(getattr(module, k))] for k, v in rnn_flops(module, x).items()}
        else:
            q, k, v = (*args, *(kwargs[a] for a in ("query", "key", "value") if a in kwargs))[:3]
            parts = mha_flops(module, q, k, v)
        acc = self.analytic.setdefault(name, {})
        for part, (dense, eff) in parts.items():
            acc[part] = [acc.get(part, [0, 0])[0] + dense, acc.get(part, [0, 0])[1] + eff]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def count_flops(model: nn.Module, input_shape=None, *, example_inputs: Any = None, batch_size: int = 1) -> FlopCount:
    """FLOPs of one eval-mode forward: FlopCounterMode on the unfused path, recurrent layers by formula (see the
    module docstring). Inputs: `example_inputs` as the model takes them (a tensor, a tuple, a dict of tensors, token
    ids included), or a seeded random float batch (batch_size, *input_shape) (`input_shape` defaults to
    `model.in_shape`)."""
    inputs = make_inputs(model, input_shape, example_inputs, batch_size)
    counter = FlopCounterMode(display=False, custom_mapping=_CPU_SDPA)
    probe = _Probe(model, counter)
    was_training, fast = model.training, torch.backends.mha.get_fastpath_enabled()
    try:
        torch.backends.mha.set_fastpath_enabled(False)
        with torch.no_grad(), counter:
            call(model.eval(), inputs)
    except RuntimeError as e:
        if example_inputs is None and "Long, Int" in str(e):
            raise TypeError(f"{type(model).__name__} takes integer token ids, not random floats: pass "
                            "example_inputs= (e.g. a LongTensor of ids, or a dict of input_ids/attention_mask)") from e
        raise
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
        model.train(was_training)
        probe.remove()
    return _rows(model, counter, probe, leading_size(inputs))


def _rows(model: nn.Module, counter: FlopCounterMode, probe: _Probe, batch_size: int) -> FlopCount:
    """Per weight-owning layer: dense and effective FLOPs; the counter's remainder is one "other ops" row."""
    counts = counter.get_flop_counts()
    root = type(model).__name__
    rows, analytic = [], []
    from_counter = 0                                 # counter FLOPs that some row accounts for (or replaces)
    skip = set()
    for name, m in model.named_modules():
        if name in skip:
            continue
        if isinstance(m, nn.RNNBase) and name in probe.analytic:
            parts = probe.analytic[name].values()
            dense, eff = sum(d for d, _ in parts), sum(e for _, e in parts)
            rows.append((name, dense, eff / dense if dense else 1.0, eff))
            analytic.append(name or root)
            from_counter += probe.inside[name]       # what the counter saw inside (0 on oneDNN's LSTM): replaced
        elif isinstance(m, nn.MultiheadAttention) and name in probe.analytic:
            (in_d, in_e), (out_d, out_e) = probe.analytic[name]["in_proj"], probe.analytic[name]["out_proj"]
            products = probe.inside[name] - in_d - out_d                                    # QKᵀ and AV
            dense = in_d + products
            rows.append((name, dense, (in_e + products) / dense if dense else 1.0, in_e + products))
            out_name = f"{name}.out_proj" if name else "out_proj"
            rows.append((out_name, out_d, out_e / out_d if out_d else 1.0, out_e))          # read by MHA directly
            skip.add(out_name)
            from_counter += probe.inside[name]
        elif isinstance(m, _WEIGHTED):
            dense = int(sum(counts.get(f"{root}.{name}" if name else root, {}).values()))
            density = _density(m.weight)
            rows.append((name, dense, density, dense * density))
            from_counter += dense
    other = counter.get_total_flops() - from_counter
    if other:
        rows.append(("other ops", other, 1.0, float(other)))
    return FlopCount(rows, batch_size, analytic)
