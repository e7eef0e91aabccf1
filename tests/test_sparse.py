"""CSR inference: SparseLinear and to_sparse_csr give the dense model's outputs from only the nonzeros."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from course.models import build_model
from course.pruning.sparse import SparseLinear, to_sparse_csr
from course.pruning.unstructured import prune_unstructured


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lead", [(5,), (2, 3)])
def test_sparse_linear_equals_dense_linear(bias, lead):
    torch.manual_seed(0)
    dense = prune_unstructured(nn.Sequential(nn.Linear(20, 7, bias=bias)), 0.8)[0]
    sparse = SparseLinear.from_linear(dense)
    x = torch.randn(*lead, 20)
    torch.testing.assert_close(sparse(x), dense(x), atol=1e-5, rtol=0)
    assert sparse(x).shape == (*lead, 7)
    assert sparse.weight.layout == torch.sparse_csr
    assert sparse.nnz == int((dense.weight != 0).sum()) == 28
    assert "nnz=28" in repr(sparse)


def test_from_linear_drops_weights_outside_the_mask():
    layer = nn.Linear(4, 3)
    layer.register_buffer("prune_mask", torch.eye(3, 4, dtype=torch.bool))   # weights not yet zeroed
    sparse = SparseLinear.from_linear(layer)
    assert sparse.nnz == 3
    torch.testing.assert_close(sparse.weight.to_dense(), layer.weight.detach() * torch.eye(3, 4))


@pytest.mark.parametrize("name, in_shape", [("lenet300", (1, 28, 28)), ("lenet5", (1, 28, 28))])
def test_to_sparse_csr_matches_the_dense_model(name, in_shape):
    torch.manual_seed(0)
    model = prune_unstructured(build_model(name, in_shape), 0.9, scope="global").eval()
    csr = to_sparse_csr(model)
    x = torch.randn(4, *in_shape)
    with torch.no_grad():
        torch.testing.assert_close(csr(x), model(x), atol=1e-5, rtol=0)
    assert not any(type(m) is nn.Linear for m in csr.modules())
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert convs == [n for n, m in csr.named_modules() if isinstance(m, nn.Conv2d)]              # convs stay dense
    assert any(type(m) is nn.Linear for m in model.modules())                # the input is left alone
    stored = sum(m.nnz for m in csr.modules() if isinstance(m, SparseLinear))
    assert stored == sum(int((m.weight != 0).sum()) for m in model.modules() if isinstance(m, nn.Linear))


def test_sparse_linear_rejects_non_matrix_weights():
    with pytest.raises(ValueError, match="2-D"):
        SparseLinear(torch.zeros(2, 3, 4))
