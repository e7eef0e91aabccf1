"""The torch_prune storage form against the real thing: a model pruned by `torch.nn.utils.prune` from the dense
original, saved with `torch.save(state_dict)`. Its weight_orig keeps the original values, so the course measures that
form only when it knows them (`original=`), and refuses by name otherwise."""
from __future__ import annotations

import copy
import io

import pytest
import torch
from torch.nn.utils import prune as torch_prune

from course import metrics
from course.export import load_pruned, save_pruned, to_bytes
from course.files import seal, xz_bytes
from course.models import build_model
from course.pruning.masks import apply_masks, get_masks, remove_masks
from course.pruning.reparam import from_torch_prune, to_torch_prune
from course.pruning.targets import prunable_layers
from course.pruning.unstructured import prune_unstructured


def dense_model(name: str = "lenet300", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(name, (1, 28, 28)).eval()


def pruned_by_torch(dense: torch.nn.Module, sparsity: float, scope: str) -> torch.nn.Module:
    """What a user gets from torch.nn.utils.prune itself (L1, per layer or one global threshold)."""
    model = copy.deepcopy(dense)
    pairs = [(m, "weight") for _, m in prunable_layers(model)]
    with torch.no_grad():
        if scope == "local":
            for m, name in pairs:
                torch_prune.l1_unstructured(m, name, amount=sparsity)
        else:
            torch_prune.global_unstructured(pairs, pruning_method=torch_prune.L1Unstructured, amount=sparsity)
    return model


def torch_file(model: torch.nn.Module) -> bytes:
    """The bytes of `torch.save(model.state_dict())`, with the course's checksum trailer."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return seal(buf.getvalue())


@pytest.mark.parametrize("scope", ["local", "global"])
@pytest.mark.parametrize("name", ["lenet300", "lenet5"])
def test_the_form_is_the_file_of_a_model_torch_pruned_from_the_original(name, scope):
    dense = dense_model(name)
    real = torch_file(pruned_by_torch(dense, 0.9, scope))
    ours = prune_unstructured(dense, 0.9, scope=scope)
    assert to_bytes(ours, "torch_prune", original=dense) == real                     # byte for byte
    assert metrics.size_bytes(ours, "torch_prune", original=dense) == len(real)
    if name != "lenet5":                                         # xz at preset 9e takes seconds a megabyte
        return
    assert metrics.size_bytes(ours, "torch_prune", original=dense, compressed=True) == len(xz_bytes(real))
    # the original values do not compress away: the real file is larger than the dense one even after xz
    assert len(xz_bytes(real)) > metrics.size_bytes(dense, "dense", compressed=True)
    # what the course used to report (zeros in weight_orig) is several times smaller: the bug this form fixes
    assert len(xz_bytes(torch_file(to_torch_prune(ours)))) < len(xz_bytes(real)) / 3


def test_a_model_pruned_by_torch_itself_is_its_own_state_dict():
    dense = dense_model()
    real = pruned_by_torch(dense, 0.7, "local")
    assert to_bytes(real, "torch_prune") == torch_file(real)
    with pytest.raises(ValueError, match=r"pruned by torch\.nn\.utils\.prune.*drop original="):
        to_bytes(real, "torch_prune", original=dense)


def test_after_fine_tuning_weight_orig_holds_the_kept_weights_trained_and_the_pruned_ones_original():
    dense = dense_model()
    real, ours = pruned_by_torch(dense, 0.8, "local"), prune_unstructured(dense, 0.8)
    x, y = torch.randn(32, 1, 28, 28, generator=torch.Generator().manual_seed(1)), torch.arange(32) % 10
    for model in (real, ours):                                   # plain SGD, no weight decay: both hold the masks
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model.train()(x), y).backward()
            opt.step()
    theirs, mine = real.state_dict(), to_torch_prune(ours, dense).state_dict()
    assert list(theirs) == list(mine)
    for key in theirs:
        torch.testing.assert_close(mine[key], theirs[key], rtol=1e-5, atol=1e-7)
    assert not torch.equal(theirs["fc1.weight_orig"], dense.fc1.weight)                # training moved the kept ones


def test_without_the_original_the_form_is_refused_by_name_with_the_fix(tmp_path):
    dense = dense_model("lenet5")
    ours = prune_unstructured(dense, 0.5)
    for measure in (lambda: to_bytes(ours, "torch_prune"), lambda: metrics.size_bytes(ours, "torch_prune"),
                    lambda: metrics.size_bytes(ours, "torch_prune", compressed=True),
                    lambda: save_pruned(ours, tmp_path / "m.pt", "torch_prune")):
        with pytest.raises(ValueError, match=r"original value.*\(conv1, conv2, fc1, fc2, \.\.\.\).*original=dense"):
            measure()
    assert not (tmp_path / "m.pt").exists()                                            # nothing half-written
    without = metrics.size_table(ours)
    table = {row["format"]: row for row in without}
    assert table["torch_prune"]["bytes"] is None and table["torch_prune"]["xz bytes"] is None
    assert "original=" in repr(without)                                                # the note says why and how
    assert table["csr"]["bytes"] == metrics.size_bytes(ours, "csr")                     # every other form is measured
    with_original = {row["format"]: row for row in metrics.size_table(ours, original=dense)}
    assert with_original["torch_prune"]["bytes"] == len(torch_file(pruned_by_torch(dense, 0.5, "local")))
    assert "original=" not in metrics.size_table(ours, original=dense).note


def test_a_wrong_original_is_refused_by_name():
    dense = dense_model()
    ours = prune_unstructured(dense, 0.5)
    with pytest.raises(ValueError, match=r"original is itself pruned \(fc1, fc2, fc3\)"):
        to_bytes(ours, "torch_prune", original=ours)                                    # the pruned model itself
    with pytest.raises(ValueError, match=r"original is itself pruned \(fc1\).*dense model"):
        to_bytes(ours, "torch_prune", original=_torch_pruned_fc1(dense))
    with pytest.raises(ValueError, match=r"zero wherever the masks prune.*made permanent"):
        to_bytes(ours, "torch_prune", original=remove_masks(ours))
    with pytest.raises(ValueError, match=r"original has no parameter 'conv1'"):
        to_bytes(prune_unstructured(dense_model("lenet5"), 0.5), "torch_prune", original=dense)
    with pytest.raises(TypeError, match=r"original must be the nn\.Module"):
        to_bytes(ours, "torch_prune", original=dense.state_dict())


def _torch_pruned_fc1(dense: torch.nn.Module) -> torch.nn.Module:
    model = copy.deepcopy(dense)
    with torch.no_grad():
        torch_prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    return model


def test_models_with_nothing_pruned_need_no_original():
    dense = dense_model()
    assert to_bytes(dense, "torch_prune") == to_bytes(dense, "course_masks") == torch_file(dense)
    everything_kept = prune_unstructured(dense, 0.0)                                     # masks, all True
    assert to_bytes(everything_kept, "torch_prune") == to_bytes(everything_kept, "torch_prune", original=dense)


def test_the_file_loads_back_to_the_pruned_model_and_nothing_given_is_changed(tmp_path):
    dense = dense_model("lenet5")
    ours = prune_unstructured(dense, 0.8, scope="global")
    before = {k: v.clone() for k, v in dense.state_dict().items()}
    ours_before = {k: v.clone() for k, v in ours.state_dict().items()}
    path = save_pruned(ours, tmp_path / "m.pt", "torch_prune", original=dense)
    loaded = load_pruned(path, dense_model("lenet5", seed=3))
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(loaded(x), ours(x))
    assert all(torch.equal(get_masks(loaded)[k], m) for k, m in get_masks(ours).items())
    assert all(torch.equal(before[k], v) for k, v in dense.state_dict().items())
    assert all(torch.equal(ours_before[k], v) for k, v in ours.state_dict().items())
    # and the conversion both ways: from_torch_prune(to_torch_prune(m, original)) is m again
    back = from_torch_prune(to_torch_prune(ours, dense))
    mine, again = ours.state_dict(), back.state_dict()
    assert sorted(mine) == sorted(again) and all(torch.equal(again[k], v) for k, v in mine.items())


def test_tied_parameters_keep_one_original():
    first, second = torch.nn.Linear(6, 6, bias=False), torch.nn.Linear(6, 6, bias=False)
    second.weight = first.weight                                                        # one Parameter, two owners
    dense = torch.nn.Sequential(first, torch.nn.ReLU(), second)
    mask = torch.rand(6, 6, generator=torch.Generator().manual_seed(0)) < 0.5
    ours = apply_masks(dense, {"0": mask})
    torch_form = to_torch_prune(ours, dense)
    assert torch.equal(torch_form[0].weight_orig, dense[0].weight)
    assert torch.equal(torch_form[2].weight_orig, dense[0].weight)
    assert torch.equal(torch_form[0].weight, dense[0].weight * mask)
    x = torch.randn(3, 6)
    assert torch.equal(torch_form(x), ours(x))


def test_prunable_layers_refuses_a_model_torch_prune_reparametrised_by_name():
    """Its weights are no parameters any more: listing nothing would make every sparsity read 0, silently."""
    model = pruned_by_torch(dense_model(), 0.5, "local")
    with pytest.raises(ValueError, match=r"fc1\.weight.*from_torch_prune"):
        prunable_layers(model)
    with pytest.raises(ValueError, match="torch.nn.utils.prune.remove"):
        prune_unstructured(model, 0.9)
    assert [n for n, _ in prunable_layers(from_torch_prune(model))] == ["fc1", "fc2", "fc3"]
