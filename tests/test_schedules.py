"""Schedules: the cubic formula, iterative and gradual pruning reach their targets, lottery tickets rewind."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from course.pruning.masks import MASK, get_masks
from course.pruning.schedules import (
    GradualPruning, cubic_sparsity, iterative_pruning, lottery_ticket, one_shot, step_sparsities,
)
from course.training import finetuner, gradual_pruning
from course.pruning.stats import layer_sparsity, masked_sparsity
from course.pruning.unstructured import prune_unstructured


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))


def loader(n_batches: int = 6, seed: int = 0):
    """A separable 3-class problem: the label is the argmax of the first three features."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        X = torch.randn(16, 8, generator=g)
        out.append((X, X[:, :3].argmax(1)))
    return out


def sgd_finetune(steps: int = 5, lr: float = 0.05):
    """A finetune(model) that trains in place with SGD + momentum (no mask handling: the schedule must cope)."""
    def finetune(model: nn.Module, *_):
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        for X, y in loader(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(X), y).backward()
            opt.step()
    return finetune


def accuracy(model: nn.Module) -> float:
    X, y = loader(1, seed=99)[0]
    with torch.no_grad():
        return (model(X).argmax(1) == y).float().mean().item()


def same_state(a: nn.Module, b: dict) -> bool:
    sa = a.state_dict()
    return sa.keys() == b.keys() and all(torch.equal(sa[k], b[k]) for k in b)


def pruned_are_zero(model: nn.Module) -> bool:
    return all((m.weight[~m.prune_mask] == 0).all() for m in model.modules() if hasattr(m, MASK))


# ---------------------------------------------------------------- cubic schedule

def test_cubic_endpoints_and_formula():
    kw = dict(final_sparsity=0.9, initial_sparsity=0.1, begin_step=10, end_step=110)
    assert cubic_sparsity(0, **kw) == 0.1 and cubic_sparsity(10, **kw) == pytest.approx(0.1)
    assert cubic_sparsity(110, **kw) == 0.9 and cubic_sparsity(500, **kw) == 0.9
    assert cubic_sparsity(60, **kw) == pytest.approx(0.9 + (0.1 - 0.9) * 0.5 ** 3)


def test_cubic_is_monotone_and_front_loaded():
    values = [cubic_sparsity(t, final_sparsity=0.8, end_step=100) for t in range(0, 120)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert values[50] > 0.8 / 2                   # most pruning happens early, when weights are redundant


def test_cubic_frequency_holds_the_value_between_pruning_steps():
    kw = dict(final_sparsity=0.8, end_step=100, frequency=10)
    assert len({cubic_sparsity(t, **kw) for t in range(20, 30)}) == 1
    assert cubic_sparsity(29, **kw) < cubic_sparsity(30, **kw)
    assert cubic_sparsity(25, **kw) == cubic_sparsity(20, final_sparsity=0.8, end_step=100)


@pytest.mark.parametrize("kw, match", [
    (dict(final_sparsity=1.0, end_step=10), r"\[0, 1\)"),
    (dict(final_sparsity=0.5, initial_sparsity=0.6, end_step=10), "<= final_sparsity"),
    (dict(final_sparsity=0.5, begin_step=10, end_step=10), "must be > begin_step"),
    (dict(final_sparsity=0.5, end_step=10, frequency=0), "frequency must be an int >= 1"),
])
def test_cubic_validation(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cubic_sparsity(3, **kw)


def test_step_sparsities():
    geo = step_sparsities(0.9, 4)
    assert geo[-1] == 0.9
    survivors = [1.0] + [1 - s for s in geo]
    ratios = [b / a for a, b in zip(survivors, survivors[1:])]
    assert max(ratios) == pytest.approx(min(ratios))                          # same fraction of survivors each step
    assert step_sparsities(0.8, 4, "linear") == pytest.approx([0.2, 0.4, 0.6, 0.8])
    with pytest.raises(ValueError, match="geometric"):
        step_sparsities(0.5, 3, "cosine")


# ---------------------------------------------------------------- one-shot and iterative

def test_one_shot_prunes_then_finetunes_a_copy():
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain = one_shot(model, 0.75, scope="global")
    reference = prune_unstructured(model, 0.75, scope="global").state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in plain.state_dict().items())
    tuned = one_shot(model, 0.75, finetune=sgd_finetune(), scope="global")
    assert same_state(model, before)
    assert pruned_are_zero(tuned)
    assert layer_sparsity(tuned).overall.zeros == round(0.75 * layer_sparsity(tuned).overall.weights)
    assert not torch.equal(tuned[0].weight, plain[0].weight)


def test_iterative_pruning_reaches_target_with_nested_masks():
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    masks_seen = []

    def finetune(m):
        masks_seen.append(get_masks(m))
        sgd_finetune()(m)

    out, history = iterative_pruning(model, 0.9, steps=3, finetune=finetune, evaluate=accuracy)
    assert same_state(model, before)
    assert [h["step"] for h in history] == [0, 1, 2, 3]
    assert history[-1]["target"] == 0.9 and all(h["metric"] is not None for h in history)
    assert [h["sparsity"] for h in history] == sorted(h["sparsity"] for h in history)
    for row in layer_sparsity(out):
        assert row.zeros == round(0.9 * row.weights)
    assert pruned_are_zero(out)
    for earlier, later in zip(masks_seen, masks_seen[1:]):
        assert all(not (later[n] & ~earlier[n]).any() for n in earlier)


def test_iterative_uses_a_returned_model():
    replacement = {}

    def finetune(m):
        new = prune_unstructured(m, 0.0)          # a fresh copy, as a non-mutating train() would return
        replacement["last"] = new
        return new, {"loss": 0.0}

    out, _ = iterative_pruning(mlp(), 0.5, steps=2, finetune=finetune)
    assert out is replacement["last"]


def test_iterative_rejects_a_non_callable_finetune():
    with pytest.raises(TypeError, match="callable"):
        iterative_pruning(mlp(), 0.5, steps=2, finetune="sgd")


# ---------------------------------------------------------------- gradual (Zhu & Gupta)

@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_gradual_pruning_reaches_final_sparsity_exactly(optimizer):
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out, history = gradual_pruning(model, 0.8, loader(6), epochs=2, lr=0.01, optimizer=optimizer,
                                   end_step=9, frequency=2, progress=False, evaluate=accuracy)
    assert same_state(model, before)
    for row in layer_sparsity(out):
        assert row.zeros == round(0.8 * row.weights)
    assert pruned_are_zero(out)
    prunes = [h for h in history if h["event"] == "prune"]
    assert [h["step"] for h in prunes] == [0, 2, 4, 6, 8, 9]
    for h in prunes:
        assert h["target"] == cubic_sparsity(h["step"], final_sparsity=0.8, end_step=9, frequency=2)
    assert [h["target"] for h in prunes] == sorted(h["target"] for h in prunes)
    epochs = [h for h in history if h["event"] == "epoch"]
    assert len(epochs) == 2 and epochs[-1]["sparsity"] == pytest.approx(0.8, abs=0.01)
    assert epochs[-1]["metric"] is not None


def test_gradual_pruning_trains():
    data = loader(8)
    out, history = gradual_pruning(mlp(), 0.5, data, epochs=4, lr=0.05, progress=False)
    losses = [h["loss"] for h in history if h["event"] == "epoch"]
    assert losses[-1] < losses[0]


def test_gradual_pruning_cosine_is_pruning_inside_one_cosine_run():
    """schedule="cosine" (learning-rate rewinding): the same as train(schedule="cosine") with the callback."""
    import copy
    from course.training import train
    data = loader(6)
    out, _ = gradual_pruning(mlp(), 0.7, data, epochs=3, lr=0.05, schedule="cosine", end_step=6, frequency=2,
                             progress=False)
    by_hand = copy.deepcopy(mlp())
    pruner = GradualPruning(0.7, end_step=6, frequency=2, data=data)
    pruner(by_hand, step=0)
    train(by_hand, data, epochs=3, lr=0.05, schedule="cosine", progress=False,
          on_step=lambda net, step, epoch, loss: pruner(net, step=step, epoch=epoch, loss=loss))
    for a, b in zip(out.parameters(), by_hand.parameters()):
        assert torch.equal(a, b)
    constant, _ = gradual_pruning(mlp(), 0.7, data, epochs=3, lr=0.05, end_step=6, frequency=2, progress=False)
    assert not all(torch.equal(a, b) for a, b in zip(out.parameters(), constant.parameters()))
    assert masked_sparsity(out) == pytest.approx(0.7, abs=0.01)


def test_gradual_pruning_validation():
    with pytest.raises(ValueError, match="end_step"):
        gradual_pruning(mlp(), 0.5, loader(2), epochs=1, end_step=5, progress=False)
    with pytest.raises(ValueError, match="'sgd', 'adam'"):
        gradual_pruning(mlp(), 0.5, loader(2), epochs=1, optimizer="rmsprop", progress=False)
    with pytest.raises(ValueError, match="'constant', 'cosine'"):
        gradual_pruning(mlp(), 0.5, loader(2), epochs=1, schedule="step", progress=False)


# ---------------------------------------------------------------- lottery ticket

def test_lottery_ticket_rewinds_survivors_to_init():
    init = mlp(7)
    before = {k: v.clone() for k, v in init.state_dict().items()}
    result = lottery_ticket(init, sgd_finetune(), rounds=2, prune_rate_per_round=0.5, evaluate=accuracy)
    assert same_state(init, before)
    for name, mask in result.masks.items():
        layer = dict(result.ticket.named_modules())[name]
        assert torch.equal(layer.weight, before[f"{name}.weight"] * mask)
        assert torch.equal(layer.bias, before[f"{name}.bias"])
    assert [h["round"] for h in result.history] == [0, 1, 2]
    assert result.history[-1]["sparsity"] == pytest.approx(0.75, abs=0.01)    # 1 - (1 - 0.5)^2
    assert pruned_are_zero(result.trained)
    assert not torch.equal(result.trained[0].weight, result.ticket[0].weight)  # the ticket stays untrained


def test_lottery_ticket_late_rewinding_and_reinit_control():
    checkpoints = {}
    base = sgd_finetune(steps=4)

    def train_fn(model, rewind_steps=None):
        if rewind_steps is not None:              # the early checkpoint θ_k
            sgd_finetune(steps=rewind_steps)(model)
            checkpoints["k"] = {k: v.clone() for k, v in model.state_dict().items()}
            return
        base(model)

    init = mlp(8)
    result = lottery_ticket(init, train_fn, rounds=1, prune_rate_per_round=0.6, rewind=2, reinit_control=True,
                            evaluate=accuracy)
    mask = result.masks["0"]
    assert torch.equal(result.ticket[0].weight, checkpoints["k"]["0.weight"] * mask)
    assert not torch.equal(result.ticket[0].weight, init[0].weight * mask)
    assert result.control is not None and torch.equal(result.control[0].prune_mask, mask)
    assert pruned_are_zero(result.control)
    assert "control_metric" in result.history[-1]


@pytest.mark.parametrize("kw, match", [
    (dict(rounds=0, prune_rate_per_round=0.2), "rounds"),
    (dict(rounds=1, prune_rate_per_round=1.0), r"\(0, 1\)"),
    (dict(rounds=1, prune_rate_per_round=0.2, rewind="late"), "rewind must be an int >= 0 \\(or 'init'"),
])
def test_lottery_validation(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        lottery_ticket(mlp(), sgd_finetune(), **kw)


def test_finetuner_drives_course_train():
    model = mlp()
    tune = finetuner(loader(4), epochs=1, lr=0.05, device="cpu", progress=False)
    out, history = iterative_pruning(model, 0.8, steps=2, finetune=tune)
    for row in layer_sparsity(out):
        assert row.zeros == round(0.8 * row.weights)
    assert pruned_are_zero(out)
    assert not torch.equal(out[4].bias, model[4].bias)                        # course.training.train ran


def test_gradual_pruning_with_a_gradient_criterion_scores_on_the_training_data():
    out, history = gradual_pruning(mlp(), 0.6, loader(4), epochs=1, end_step=3, frequency=1, progress=False,
                                   criterion="taylor", scope="global", num_batches=1)
    total = layer_sparsity(out).overall
    assert total.zeros == round(0.6 * total.weights)


def test_gradual_pruning_is_the_engines_schedule_called_by_the_training_loop():
    """The callback alone, driven by hand, prunes at the steps and to the targets of cubic_sparsity."""
    model = mlp()
    schedule = GradualPruning(0.8, end_step=9, frequency=2)
    pruned_at = [t for t in range(12) if schedule(model, step=t, loss=1.0)]
    assert pruned_at == [0, 2, 4, 6, 8, 9]
    assert [row["target"] for row in schedule.history] == [
        cubic_sparsity(t, final_sparsity=0.8, end_step=9, frequency=2) for t in pruned_at]
    assert schedule.target == 0.8 and layer_sparsity(model).overall.sparsity == pytest.approx(0.8, abs=0.01)
    with pytest.raises(ValueError, match="end_step"):
        GradualPruning(0.5, end_step=0)


def test_the_masked_step_keeps_momentum_off_pruned_weights():
    # gradual pruning, fine-tuning and baselines all take this step: the gradient is masked before the update, so
    # the optimizer's state (SGD momentum here) never builds up on a pruned weight, and the mask is re-applied after
    from course.training import make_optimizer, masked_step

    net = prune_unstructured(mlp(), 0.5)
    opt = make_optimizer(net, "sgd", lr=0.1, momentum=0.9)
    for x, y in loader(3):
        masked_step(net, opt, nn.functional.cross_entropy, x, y)
    for m in (net[0], net[2], net[4]):
        pruned = ~getattr(m, MASK)
        assert pruned.any() and opt.state[m.weight]["momentum_buffer"][pruned].abs().max() == 0
        assert m.weight[pruned].abs().max() == 0


# ---------------------------------------------------------------- measured right after each prune (06 §2)

def test_iterative_pruning_measures_each_prune_before_its_finetuning():
    """pruned_metric is the model right after step k's prune: what evaluate sees before finetune runs."""
    seen = []

    def finetune(m):
        seen.append(accuracy(m))                    # fine-tuning starts from exactly the model pruned_metric read
        sgd_finetune()(m)

    _, history = iterative_pruning(mlp(), 0.9, steps=3, finetune=finetune, evaluate=accuracy)
    assert history[0]["pruned_metric"] is None
    assert [h["pruned_metric"] for h in history[1:]] == seen
    _, plain = iterative_pruning(mlp(), 0.9, steps=2, finetune=sgd_finetune())
    assert all(h["pruned_metric"] is None and h["metric"] is None for h in plain)


def test_gradual_pruning_measures_right_after_each_prune():
    """A prune row's metric is evaluate(model) at the moment of that prune, at that prune's sparsity."""
    sparsity_seen = []

    def measure(m):
        sparsity_seen.append(masked_sparsity(m))
        return accuracy(m)

    schedule = GradualPruning(0.8, end_step=9, frequency=2, evaluate=measure)
    model = mlp()
    for t in range(12):
        schedule(model, step=t, loss=1.0)
        if t == 0:                                   # nothing trains here, so the first prune's model is checkable
            assert schedule.history[0]["metric"] == accuracy(prune_unstructured(mlp(), schedule.history[0]["target"]))
    assert sparsity_seen == [row["sparsity"] for row in schedule.history] and len(sparsity_seen) == 6
    _, history = gradual_pruning(mlp(), 0.6, loader(4), epochs=1, end_step=3, frequency=1, progress=False,
                                 evaluate=accuracy)
    assert all(h["metric"] is not None for h in history)
    with pytest.raises(TypeError, match="evaluate"):
        GradualPruning(0.5, end_step=4, evaluate="accuracy")


def test_iterative_pruning_hides_its_bar_with_progress_false(capsys):
    iterative_pruning(mlp(), 0.5, steps=2, finetune=None, progress=False)
    assert "iterative pruning" not in capsys.readouterr().err
    iterative_pruning(mlp(), 0.5, steps=2, finetune=None)
    assert "iterative pruning" in capsys.readouterr().err
    with pytest.raises(TypeError, match="progress"):
        iterative_pruning(mlp(), 0.5, steps=2, finetune=None, progress="False")
