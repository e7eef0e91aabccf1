"""Sparse storage for inference: Linear layers whose weight is a torch sparse CSR tensor.

A masked model still multiplies every zero (dense-with-zeros). `to_sparse_csr` stores only the nonzeros
(CSR: values, column indices, row pointers) and multiplies with `torch.addmm(bias, W_csr, xᵀ)`, so the
speed-up, if any, can be measured on your machine. Convolutions are left dense (PyTorch has no CSR conv).
Introduced in 02_unstructured
"""
from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from course.pruning.masks import MASK

__all__ = ["SparseLinear", "to_sparse_csr"]


def _csr(dense: torch.Tensor) -> torch.Tensor:
    """Dense (out, in) -> sparse CSR, without the "CSR support is in beta" warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
        return dense.detach().to_sparse_csr()


class SparseLinear(nn.Module):
    """y = x Wᵀ + b with W stored as sparse CSR (out_features, in_features). Inference only (no gradients to W)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        if weight.dim() != 2:
            raise ValueError(f"weight must be 2-D (out_features, in_features), got shape {tuple(weight.shape)}")
        self.out_features, self.in_features = weight.shape
        self.register_buffer("weight", _csr(weight if weight.layout == torch.strided else weight.to_dense()))
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> SparseLinear:
        """CSR copy of `linear`; weights outside its `prune_mask` (if any) are dropped."""
        w = linear.weight.detach()
        mask = getattr(linear, MASK, None)
        if mask is not None:
            w = w * mask
        return cls(w, linear.bias)

    @property
    def nnz(self) -> int:
        """Number of stored (nonzero) weights."""
        return int(self.weight.values().numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)                                # (N, in)
        if self.bias is None:
            y = torch.sparse.mm(self.weight, x2.t())                        # (out, N)
        else:
            y = torch.addmm(self.bias.unsqueeze(1), self.weight, x2.t())    # (out, N)
        return y.t().reshape(*lead, self.out_features)                      # (..., out)

    def extra_repr(self) -> str:
        n = self.out_features * self.in_features
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, nnz={self.nnz} ({self.nnz / n:.1%} dense)")


def to_sparse_csr(model: nn.Module) -> nn.Module:
    """A copy of `model` (in eval mode) with every nn.Linear replaced by a CSR `SparseLinear`; convs stay dense.
    """
    out = copy.deepcopy(model).eval()
    for parent in list(out.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, SparseLinear.from_linear(child))
    return out
