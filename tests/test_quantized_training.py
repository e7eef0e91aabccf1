"""finetune_centroids: one step moves each centroid by -lr × the sum of its cluster's gradients (autograd on the
weights is the oracle); sharing, masks and the parameter layout hold. finetune_linear_quantized ends on its grid."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course.models import build_model
from course.pruning.masks import get_masks
from course.pruning.unstructured import prune_unstructured
from course.quantization import int_grid, quantize, shared_codebook
from course.quantized_training import finetune_centroids, finetune_linear_quantized


def _batch(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def _shared(sparsity=0.8, bits=3):
    torch.manual_seed(0)
    return quantize(prune_unstructured(build_model("lenet300"), sparsity, scope="global"), bits, method="kmeans")


def test_one_step_moves_each_centroid_by_minus_lr_times_its_summed_gradient():
    model = _shared()
    layers = (model.fc1, model.fc2, model.fc3)
    x, y = _batch()
    reference = [shared_codebook(m) for m in layers]
    F.cross_entropy(model(x), y).backward()                              # the oracle: autograd on the weights
    expected = [codebook - 0.1 * torch.zeros_like(codebook).index_add_(0, index, layer.weight.grad[kept])
                for (codebook, index, kept), layer in zip(reference, layers)]
    model.zero_grad(set_to_none=True)
    finetune_centroids(model, [(x, y)], epochs=1, lr=0.1, momentum=0.0, progress=False)
    for (_, index, kept), layer, want in zip(reference, layers, expected):
        torch.testing.assert_close(layer.weight[kept], want[index], rtol=0, atol=1e-6)
        assert (layer.weight[~kept] == 0).all()


def test_training_keeps_sharing_masks_and_layout_and_lowers_the_loss():
    model = _shared(0.9, 4)
    masks, keys = get_masks(model), list(model.state_dict())
    data = [_batch(64, s) for s in range(4)]
    loss = lambda: sum(float(F.cross_entropy(model(x), y)) for x, y in data)   # noqa: E731
    with torch.no_grad():
        before = loss()
    history = finetune_centroids(model, data, epochs=5, lr=0.05, progress=False)
    with torch.no_grad():
        assert loss() < before
    assert len(history.loss) == 5
    assert list(model.state_dict()) == keys                              # same tensors in the same order
    assert type(model.fc1.weight) is torch.nn.Parameter and not hasattr(model.fc1, "parametrizations")
    for name, mask in get_masks(model).items():
        assert torch.equal(mask, masks[name])
        assert torch.unique(model.get_submodule(name).weight[mask]).numel() <= 16


def test_a_model_that_is_not_weight_shared_is_refused_by_layer():
    with pytest.raises(ValueError, match="layer 'fc1'.*distinct values"):
        finetune_centroids(build_model("lenet300"), [_batch()], progress=False)


def test_an_interrupted_run_leaves_a_plain_masked_model():
    model = _shared()
    masks = get_masks(model)

    def bad_batches():
        yield _batch()
        raise RuntimeError("loader died")

    class Loader:
        def __iter__(self):
            return bad_batches()

        def __len__(self):
            return 2

    with pytest.raises(RuntimeError, match="loader died"):
        finetune_centroids(model, Loader(), epochs=1, lr=0.01, progress=False)
    assert not hasattr(model.fc1, "parametrizations") and torch.equal(model.fc1.prune_mask, masks["fc1"])


@pytest.mark.parametrize("per_channel", [True, False])
def test_linear_qat_ends_on_the_grid_keeps_masks_and_lowers_the_loss(per_channel):
    torch.manual_seed(0)
    model = quantize(prune_unstructured(build_model("lenet300"), 0.5), 3, per_channel=per_channel)
    masks = get_masks(model)
    data = [_batch(64, s) for s in range(4)]
    loss = lambda: sum(float(F.cross_entropy(model(x), y)) for x, y in data)   # noqa: E731
    with torch.no_grad():
        before = loss()
    finetune_linear_quantized(model, data, bits=3, per_channel=per_channel, epochs=5, lr=0.05, progress=False)
    with torch.no_grad():
        assert loss() < before
    for name, mask in get_masks(model).items():
        layer = model.get_submodule(name)
        assert torch.equal(mask, masks[name]) and (layer.weight[~mask] == 0).all()
        q, scale = int_grid(layer.weight, mask)
        assert q.abs().max() <= 3                                        # still on a 3-bit grid
        assert per_channel or torch.unique(scale[scale > 0]).numel() == 1
