"""check_masked_step (06_when_to_prune, Exercise 06.1): the notebook's solution passes, a stub is 'not done yet', and
each usual mistake of a hand-written masked step (MIT 6.5940 Lab 1's pruner) gets its own feedback."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from course.checks import CheckResult, check_masked_step
from notebook_solutions import solutions

F = nn.functional


def _params(model):
    return dict(model.named_parameters())


def _mask_grads(model, masks):
    with torch.no_grad():
        for n, m in masks.items():
            _params(model)[n].grad.mul_(m)


def _mask_weights(model, masks):
    with torch.no_grad():
        for n, m in masks.items():
            _params(model)[n].mul_(m)


def right(model, opt, masks, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    _mask_grads(model, masks)
    opt.step()
    _mask_weights(model, masks)
    return loss.item()


def right_with_hooks(model, opt, masks, x, y):
    """Another correct answer: the same three moves, gradients masked with a tensor hook during backward."""
    params = _params(model)
    handles = [params[n].register_hook(lambda g, m=m: g * m) for n, m in masks.items()]
    opt.zero_grad(set_to_none=False)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    for h in handles:
        h.remove()
    opt.step()
    with torch.no_grad():
        for n, m in masks.items():
            params[n].data = params[n].data * m
    return torch.tensor(loss.item())


def no_reapply(model, opt, masks, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    _mask_grads(model, masks)
    opt.step()
    return loss.item()


def no_grad_mask(model, opt, masks, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    _mask_weights(model, masks)
    return loss.item()


def neither(model, opt, masks, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def mask_before_backward(model, opt, masks, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    _mask_grads(model, masks)                          # grad is None here
    loss.backward()
    opt.step()
    _mask_weights(model, masks)
    return loss.item()


def mask_before_backward_guarded(model, opt, masks, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    with torch.no_grad():                              # nothing to mask yet: backward then writes the full gradient
        for n, m in masks.items():
            if _params(model)[n].grad is not None:
                _params(model)[n].grad.mul_(m)
    loss.backward()
    opt.step()
    _mask_weights(model, masks)
    return loss.item()


def reapply_before_step(model, opt, masks, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    _mask_grads(model, masks)
    _mask_weights(model, masks)                        # too early: the step comes after
    opt.step()
    return loss.item()


def no_zero_grad(model, opt, masks, x, y):
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    _mask_grads(model, masks)
    opt.step()
    _mask_weights(model, masks)
    return loss.item()


def manual_sgd(model, opt, masks, x, y):
    model.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    _mask_grads(model, masks)
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    _mask_weights(model, masks)
    return loss.item()


def returns_nothing(model, opt, masks, x, y):
    right(model, opt, masks, x, y)


def loss_after_step(model, opt, masks, x, y):
    right(model, opt, masks, x, y)
    return F.cross_entropy(model(x), y).item()


def changes_masks(model, opt, masks, x, y):
    for n in list(masks):
        masks[n] = masks[n].float()
    return right(model, opt, masks, x, y)


def stub(model, optimizer, masks, x, y):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 06.1: the masked training step")


@pytest.mark.parametrize("answer", ["the notebook's", right, right_with_hooks])
def test_right_answers_pass(answer):
    if answer == "the notebook's":
        answer = solutions("06_when_to_prune").masked_train_step
    result = check_masked_step(answer)
    assert isinstance(result, CheckResult) and result.passed, result.message


def test_a_stub_is_not_done_yet():
    result = check_masked_step(stub)
    assert not result.passed and "Not done yet" in result.message and "Exercise 06.1" in result.message


@pytest.mark.parametrize("wrong, fragment", [
    (no_reapply, "Momentum regrowth"),
    (reapply_before_step, "Momentum regrowth"),
    (no_grad_mask, "momentum buffer holds velocity"),
    (mask_before_backward_guarded, "momentum buffer holds velocity"),
    (neither, "A pruned weight moved"),
    (mask_before_backward, "gradient that is None"),
    (no_zero_grad, "Call optimizer.zero_grad()"),
    (manual_sgd, "Use the optimizer you are given"),
    (returns_nothing, "Return the loss"),
    (loss_after_step, "computed before `optimizer.step()`"),
    (changes_masks, "changed `masks`"),
])
def test_each_usual_mistake_gets_its_own_feedback(wrong, fragment):
    result = check_masked_step(wrong)
    assert not result.passed, f"{wrong.__name__} passed"
    assert fragment in result.message, result.message


def test_the_library_step_is_a_right_answer_when_the_masks_are_held_by_hooks():
    """course.training.masked_step on a model whose masks are course masks: the hooks do the masking."""
    from course.pruning.masks import apply_masks, remove_masks
    from course.training import masked_step

    def library(model, opt, masks, x, y):
        hooked = apply_masks(model, {n.removesuffix(".weight"): m for n, m in masks.items()}, inplace=True)
        loss, _ = masked_step(hooked, opt, None, (x, y))
        remove_masks(hooked, inplace=True)
        return loss

    result = check_masked_step(library)
    assert result.passed, result.message
