"""The exercise checks: right answers pass, stubs get the friendly message, typical wrong answers get specific feedback.

The reference solutions live here (not in the library), next to the wrong answers learners usually write.
"""
from __future__ import annotations

import copy
import importlib
import inspect
import math
import pkgutil

import pytest
import torch
from torch import nn

import course.checks as checks
from course.checks import CheckResult, call, check, fail
from notebook_solutions import checked_solutions, solutions


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 02.1: a magnitude mask")


def _public_checks():
    found = {}
    for info in pkgutil.iter_modules(checks.__path__):
        module = importlib.import_module(f"course.checks.{info.name}")
        for name, obj in vars(module).items():
            if name.startswith("check_") and callable(obj) and getattr(obj, "__module__", "").startswith("course.checks"):
                found[name] = obj
    return found


def assert_fails(result: CheckResult, *fragments: str) -> None:
    assert isinstance(result, CheckResult)
    assert not result.passed, f"expected a failure, got: {result.message}"
    for fragment in fragments:
        assert fragment in result.message, f"{fragment!r} not in {result.message!r}"


def assert_passes(result: CheckResult) -> None:
    assert isinstance(result, CheckResult)
    assert result.passed, result.message


# --- the framework ---------------------------------------------------------------------------------------------

def test_every_check_module_is_reexported_from_course_checks():
    found = _public_checks()
    assert len(found) >= 8
    missing = [f"from {obj.__module__} import {name}" for name, obj in found.items()
               if getattr(checks, name, None) is not obj or name not in checks.__all__]
    assert not missing, "add to course/checks/__init__.py:\n" + "\n".join(missing)


@pytest.mark.parametrize("name", sorted(_public_checks()))
def test_every_check_turns_a_stub_into_not_done_yet(name):
    fn = _public_checks()[name]
    if sum(p.default is p.empty for p in inspect.signature(fn).parameters.values()) != 1:
        pytest.skip(f"{name} takes more than the learner's function")
    result = fn(stub)
    assert_fails(result, "Not done yet", "replace the NotImplementedError in Exercise 02.1 (a magnitude mask)")
    assert "Traceback" not in result.message


@pytest.mark.parametrize("name", sorted(_public_checks()))
def test_every_check_explains_passing_a_result_instead_of_the_function(name):
    assert_fails(_public_checks()[name](torch.zeros(3)), "Pass your function itself, not its result")


def test_check_result_displays_green_or_red_and_escapes_html():
    ok, bad = CheckResult(True, "fine", "t"), CheckResult(False, "x < y & <b>", "t")
    assert ok and not bad
    assert "#1e6b34" in ok._repr_html_() and "Passed" in ok._repr_html_()
    assert "#9b1c1c" in bad._repr_html_() and "x &lt; y &amp; &lt;b&gt;" in bad._repr_html_()
    assert str(bad).startswith("✘ NOT YET · t: x < y")


def test_a_check_leaves_the_global_random_state_alone():
    state = torch.get_rng_state()
    checks.check_remove_filter(lambda conv, bn, nxt, idx: (nn.Conv2d(3, 4, 3), bn, nxt))   # draws random numbers
    assert torch.equal(torch.get_rng_state(), state)


def test_a_bare_stub_names_the_function():
    def my_mask(weight, sparsity):
        raise NotImplementedError

    assert_fails(checks.check_magnitude_mask(my_mask), "Not done yet", "`my_mask`")


def test_an_exception_in_the_learners_code_is_a_failed_result_naming_it():
    def my_mask(weight, sparsity):
        k = round(sparsity * weight.numel())
        t = weight.abs().flatten().kthvalue(k).values        # crashes for k = 0
        return weight.abs() > t

    result = checks.check_magnitude_mask(my_mask)
    assert_fails(result, "Your code raised RuntimeError", "kthvalue", "sparsity=0.0", "of my_mask)")


def test_a_library_not_implemented_error_is_reported_as_an_exception_not_as_a_stub():
    def my_score(weight, grad):
        raise NotImplementedError("Could not run 'aten::foo' with arguments from the 'CPU' backend")

    assert_fails(checks.check_taylor_score(my_score), "Your code raised NotImplementedError", "aten::foo")


def test_a_bug_in_a_check_itself_propagates():
    @check("broken")
    def check_broken(fn):
        call(fn, 1)
        return 1 / 0

    with pytest.raises(ZeroDivisionError):
        check_broken(lambda x: x)
    assert check_broken.title == "broken"


def test_fail_and_call_build_custom_checks():
    @check("double")
    def check_double(fn):
        if call(fn, 2, names=("x",)) != 4:
            fail("double means times two")
        return "ok"

    assert_passes(check_double(lambda x: 2 * x))
    assert_fails(check_double(lambda x: x + 1), "double means times two")


# --- magnitude mask ------------------------------------------------------------------------------------------

def magnitude_mask(weight, sparsity):
    k = round(sparsity * weight.numel())
    mask = torch.ones(weight.numel(), dtype=torch.bool)
    mask[weight.abs().flatten().argsort()[:k]] = False
    return mask.view_as(weight)


def magnitude_mask_kthvalue(weight, sparsity):
    k = round(sparsity * weight.numel())
    if k == 0:
        return torch.ones_like(weight, dtype=torch.bool)
    return weight.abs() > weight.abs().flatten().kthvalue(k).values


def magnitude_mask_quantile(weight, sparsity):
    if sparsity == 0:
        return torch.ones_like(weight, dtype=torch.bool)
    return weight.abs() > torch.quantile(weight.abs().flatten(), sparsity)


def test_magnitude_mask_passes_two_correct_solutions():
    assert_passes(checks.check_magnitude_mask(magnitude_mask))
    assert_passes(checks.check_magnitude_mask(magnitude_mask_kthvalue))


def test_a_quantile_threshold_is_not_round_s_n_and_says_why():
    # quantile interpolates at s·(n − 1): 10% of 12 weights prunes 2 where round(1.2) = 1
    assert_fails(checks.check_magnitude_mask(magnitude_mask_quantile), "prunes the 2 smallest of 12 weights",
                 "torch.quantile interpolates", "kthvalue(k)")


@pytest.mark.parametrize("wrong, fragments", [
    (lambda w, s: magnitude_mask(w, 1 - s), ["your mask keeps 30% of the weights", "prune 30%, i.e. keep 70%"]),
    (lambda w, s: ~magnitude_mask(w, s), ["True on the weights to prune", "True = kept"]),
    (lambda w, s: w > w.flatten().kthvalue(round(s * w.numel())).values, ["ranks the signed values"]),
    (lambda w, s: w.abs() >= w.abs().flatten().kthvalue(round(s * w.numel())).values,
     ["prunes the 5 smallest of 20 weights", "round(0.3·20) = 6", "One too few", "not >="]),
    (lambda w, s: magnitude_mask(w, int(s * w.numel()) / w.numel()),
     ["prunes the 6 smallest of 20 weights", "= 7", "truncated s·n = 6.6 with int()"]),
    (lambda w, s: w.abs() >= torch.quantile(w.abs().flatten(), s), ["torch.quantile interpolates"]),
    (lambda w, s: magnitude_mask(w, s).float(), ["dtype torch.float32", "bool mask"]),
    (lambda w, s: magnitude_mask(w, s).flatten(), ["shape (20,)", "(4, 5)"]),
    (lambda w, s: magnitude_mask(w.abs_(), s), ["changed its input `weight` in place"]),
])
def test_magnitude_mask_catches_typical_mistakes(wrong, fragments):
    result = checks.check_magnitude_mask(wrong)
    assert not result.passed
    for fragment in fragments:
        assert fragment.lower() in result.message.lower(), result.message


# --- global threshold ----------------------------------------------------------------------------------------

def global_threshold(weights, sparsity):
    scores = torch.cat([w.abs().flatten() for w in weights.values()])
    return scores.kthvalue(round(sparsity * scores.numel())).values.item()


def test_global_threshold_passes_kthvalue_and_quantile():
    assert_passes(checks.check_global_threshold(global_threshold))
    result = checks.check_global_threshold(
        lambda ws, s: torch.quantile(torch.cat([w.abs().flatten() for w in ws.values()]), s))
    assert_passes(result)
    assert "fc1" in result.message and "notebook 05" in result.message


def _per_layer(ws, s):
    return [w.abs().flatten().kthvalue(round(s * w.numel())).values.item() for w in ws.values()]


@pytest.mark.parametrize("wrong, fragment", [
    (lambda ws, s: sum(_per_layer(ws, s)) / len(ws), "average of the per-layer thresholds"),
    (lambda ws, s: _per_layer(ws, s)[1], "layer 'fc1''s own threshold"),
    (lambda ws, s: torch.cat([w.flatten() for w in ws.values()]).kthvalue(round(s * 1000)).values,
     "ranks the signed weights"),
    (lambda ws, s: global_threshold(ws, 1 - s), "prunes 40% of all weights; the exercise asks to prune 60%"),
    (lambda ws, s: global_threshold(ws, s / 2), "removes 30% of all weights; the exercise asks 60%"),
    (lambda ws, s: ws.pop("conv1") is None, "changed its input `weights` in place"),
    (lambda ws, s: torch.ones(3), "should be a single number"),
])
def test_global_threshold_catches_typical_mistakes(wrong, fragment):
    assert_fails(checks.check_global_threshold(wrong), fragment)


# --- bitmask + fp16 bytes ------------------------------------------------------------------------------------

def bitmask_fp16_bytes(weight):
    return math.ceil(weight.numel() / 8) + 2 * int((weight != 0).sum())


def test_bitmask_bytes_passes_ints_and_integer_tensors():
    assert_passes(checks.check_bitmask_fp16_bytes(bitmask_fp16_bytes))
    assert_passes(checks.check_bitmask_fp16_bytes(lambda w: (w.numel() + 7) // 8 + 2 * torch.count_nonzero(w)))


@pytest.mark.parametrize("wrong, fragment", [
    (lambda w: w.numel() / 8 + 2 * int((w != 0).sum()), "round the bitmask up, ceil(n / 8)"),
    (lambda w: w.numel() // 8 + 2 * int((w != 0).sum()), "not n // 8"),
    (lambda w: w.numel() + 2 * int((w != 0).sum()), "one byte per mask bit"),
    (lambda w: math.ceil(w.numel() / 8) + 4 * int((w != 0).sum()), "4 bytes per nonzero value (fp32)"),
    (lambda w: math.ceil(w.numel() / 8) + 2 * w.numel(), "store only the nonzero ones"),
    (lambda w: math.ceil(int((w != 0).sum()) / 8) + 2 * int((w != 0).sum()), "not ceil(nnz / 8)"),
    (lambda w: 2 * int((w != 0).sum()), "forgot the bitmask"),
    (lambda w: bitmask_fp16_bytes(w) + 16, "expected 17 = ceil(21/8) + 2·7"),
])
def test_bitmask_bytes_catches_typical_mistakes(wrong, fragment):
    assert_fails(checks.check_bitmask_fp16_bytes(wrong), fragment)


# --- L1 filter ranking ---------------------------------------------------------------------------------------

def l1_filter_ranking(conv_weight):
    return conv_weight.abs().sum(dim=(1, 2, 3)).argsort()


def test_l1_ranking_passes_tensors_and_lists():
    assert_passes(checks.check_l1_filter_ranking(l1_filter_ranking))
    assert_passes(checks.check_l1_filter_ranking(lambda w: l1_filter_ranking(w).tolist()))


@pytest.mark.parametrize("wrong, fragment", [
    (lambda w: l1_filter_ranking(w).flip(0), "descending order"),
    (lambda w: w.pow(2).sum(dim=(1, 2, 3)).argsort(), "ranking by L2 norm"),
    (lambda w: w.sum(dim=(1, 2, 3)).argsort(), "summed the signed weights"),
    (lambda w: w.abs().sum(dim=(1, 2, 3)).sort().values, "probably the sorted norms"),
    (lambda w: w.abs().sum(dim=(0, 2, 3)).argsort(), "returned 3 indices, the conv has 6 filters"),
    (lambda w: w.abs().amax(dim=(1, 2, 3)).argsort(), "largest |w| of each filter"),
])
def test_l1_ranking_catches_typical_mistakes(wrong, fragment):
    assert_fails(checks.check_l1_filter_ranking(wrong), fragment)


# --- removing a filter ---------------------------------------------------------------------------------------

def remove_filter(conv, bn, next_conv, idx, *, mistake=None):
    keep = [i for i in range(conv.out_channels) if i != idx]
    bias = conv.bias is not None if mistake != "new_bias" else True
    c = nn.Conv2d(conv.in_channels, len(keep), conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                  conv.groups, bias=bias)
    b = nn.BatchNorm2d(len(keep), eps=bn.eps, momentum=bn.momentum)
    n = nn.Conv2d(len(keep), next_conv.out_channels, next_conv.kernel_size, next_conv.stride, next_conv.padding,
                  next_conv.dilation, next_conv.groups, bias=next_conv.bias is not None)
    with torch.no_grad():
        c.weight.copy_(conv.weight[keep])
        if conv.bias is not None:
            c.bias = nn.Parameter(conv.bias.clone()) if mistake == "bias" else nn.Parameter(conv.bias[keep].clone())
        for name in ("weight", "bias", "running_mean", "running_var"):
            if mistake != "stats" or name in ("weight", "bias"):
                getattr(b, name).copy_(getattr(bn, name)[keep])
        n.weight.copy_(next_conv.weight[:, keep])
        n.bias.copy_(next_conv.bias)
    if mistake == "bn":
        b = bn
    if mistake == "next":
        n = next_conv
    return c, b, n


def remove_filter_in_place(conv, bn, next_conv, idx):
    keep = [i for i in range(conv.out_channels) if i != idx]
    conv.weight = nn.Parameter(conv.weight[keep].detach())
    return conv, bn, next_conv


def test_remove_filter_passes_a_correct_surgery():
    assert_passes(checks.check_remove_filter(remove_filter))


@pytest.mark.parametrize("wrong, fragments", [
    (lambda *a: remove_filter(*a, mistake="bias"), ["still has 5 entries in `bias`", "drop entry 2"]),
    (lambda *a: remove_filter(*a, mistake="bn"), ["BatchNorm still has 5 channels", "running_mean and running_var"]),
    (lambda *a: remove_filter(*a, mistake="stats"), ["fresh running statistics"]),
    (lambda *a: remove_filter(*a, mistake="next"), ["next conv still expects 5 input channels", "[:, keep]"]),
    (lambda *a: remove_filter(*a, mistake="new_bias"), ["original conv has no bias", "bias=conv.bias is not None"]),
    (lambda c, b, n, i: remove_filter(c, b, n, i + 1 if i < 4 else 0), ["You removed filter 3, not filter 2"]),
    (remove_filter_in_place, ["changed its input `conv` in place"]),
    (lambda c, b, n, i: [c, b], ["Return the three new modules as a tuple"]),
])
def test_remove_filter_catches_typical_mistakes(wrong, fragments):
    assert_fails(checks.check_remove_filter(wrong), *fragments)


def test_remove_filter_catches_pruning_the_next_convs_filters_instead_of_its_inputs():
    def wrong(conv, bn, next_conv, idx):
        c, b, _ = remove_filter(conv, bn, next_conv, idx)
        n = nn.Conv2d(5, 3, 3, padding=1)
        with torch.no_grad():
            n.weight.copy_(next_conv.weight[[k for k in range(4) if k != min(idx, 3)]])
        return c, b, n

    assert_fails(checks.check_remove_filter(wrong), "removed output filter 2 of the next conv", "*input* channel")


# --- Taylor score ---------------------------------------------------------------------------------------------

def test_taylor_passes_the_reference():
    assert_passes(checks.check_taylor_score(lambda w, g: (w * g).abs()))


@pytest.mark.parametrize("wrong, fragment", [
    (lambda w, g: w * g, "can be negative"),
    (lambda w, g: (w * g) ** 2, "You squared the product"),
    (lambda w, g: w.abs() * g, "not of the weight alone"),
    (lambda w, g: w.abs(), "ignores the gradient"),
    (lambda w, g: (w * g).abs().sum(), "Don't sum or average"),
    (lambda w, g: w.mul_(g).abs_(), "changed its input `weight` in place"),
    (lambda w, g: (w * g).abs() + 1e-3, "expected |w·g| ="),
])
def test_taylor_catches_typical_mistakes(wrong, fragment):
    assert_fails(checks.check_taylor_score(wrong), fragment)


# --- cubic schedule --------------------------------------------------------------------------------------------

def cubic(step, final_sparsity, begin, end):
    p = min(max((step - begin) / (end - begin), 0.0), 1.0)
    return final_sparsity * (1 - (1 - p) ** 3)


def test_cubic_schedule_passes_the_reference():
    assert_passes(checks.check_cubic_schedule(cubic))
    assert_passes(checks.check_cubic_schedule(lambda *a: torch.tensor(cubic(*a), dtype=torch.float64)))


@pytest.mark.parametrize("wrong, fragment", [
    (lambda t, s, b, e: 1 - cubic(t, s, b, e), "returns the density"),
    (lambda t, s, b, e: s * min(max((t - b) / (e - b), 0), 1), "linear in the step"),
    (lambda t, s, b, e: s * min(max((t - b) / (e - b), 0), 1) ** 3, "starts slow and ends fast"),
    (lambda t, s, b, e: s * (1 - (1 - min((t - b) / (e - b), 1)) ** 3), "Before `begin` nothing is pruned"),
    (lambda t, s, b, e: s * (1 - (1 - max((t - b) / (e - b), 0)) ** 3), "After `end`, hold final_sparsity"),
    (lambda t, s, b, e: cubic(t, s, b, e + 1), "Divide by (end − begin)"),
    (lambda t, s, b, e: s * (1 - (1 - min(max((t - b) / (e - b), 0), 1)) ** 2), "At step 350 (begin=100, end=1100, final_sparsity=0.8) expected 0.4625"),
])
def test_cubic_schedule_catches_typical_mistakes(wrong, fragment):
    assert_fails(checks.check_cubic_schedule(wrong), fragment)


# --- picking under a budget ------------------------------------------------------------------------------------

_NB07 = solutions('07_metrics_tradeoffs')                 # the notebook's own solutions (notebooks/src/)
pick_under_budget = _NB07.pick_under_budget


def _strict(configs, max_size=None, max_latency=None, min_accuracy=None):
    fits = [c for c in configs
            if (max_size is None or c["size_bytes"] < max_size)
            and (max_latency is None or c["latency_ms"] < max_latency)
            and (min_accuracy is None or c["accuracy"] > min_accuracy)]
    return max(fits, key=lambda c: c["accuracy"])["name"] if fits else None


def _first_fit(configs, **limits):
    best = pick_under_budget(configs, **limits)
    return next((c["name"] for c in configs if pick_under_budget([c], **limits)), None) if best else None


def _sorts_in_place(configs, **limits):
    configs.sort(key=lambda c: -c["accuracy"])
    return pick_under_budget(configs, **limits)


def test_pick_under_budget_passes_the_reference():
    assert_passes(checks.check_pick_under_budget(pick_under_budget))


@pytest.mark.parametrize("wrong, fragment", [
    (_strict, "exactly at the limit (latency_ms = 1.1 equals max_latency)"),
    (lambda cs, max_size=None, max_latency=None, min_accuracy=None: pick_under_budget(cs, max_size),
     "'dense' breaks the budget: its latency_ms is 2.1, the limit is max_latency ≤ 1.1"),
    (lambda cs, max_size=None, max_latency=None, min_accuracy=None: pick_under_budget(cs, max_size or 0),
     "meets every limit, so the answer is not None"),
    (_first_fit, "fits too and is more accurate"),
    (lambda cs, **kw: next(c for c in cs if c["name"] == pick_under_budget(cs, **kw)), "not the whole dict"),
    (lambda cs, **kw: max((c for c in cs if pick_under_budget([c], **kw)), key=lambda c: c["accuracy"])["name"],
     "Your code raised ValueError"),
    (lambda cs, **kw: pick_under_budget(cs, **kw) or "", "No config meets this budget, so return None"),
    (_sorts_in_place, "changed its input `configs` in place"),
    (lambda cs, max_size=None, max_latency=None, min_accuracy=None: pick_under_budget(cs, max_size, max_latency),
     "its accuracy is 0.871, the limit is min_accuracy ≥ 0.9"),
])
def test_pick_under_budget_catches_typical_mistakes(wrong, fragment):
    assert_fails(checks.check_pick_under_budget(wrong), fragment)


def test_checks_leave_their_own_data_untouched_between_runs():
    before = copy.deepcopy(checks.nb07._CONFIGS)
    checks.check_pick_under_budget(_sorts_in_place)
    assert checks.nb07._CONFIGS == before


# --- every notebook's own solution passes its own check ------------------------------------------------------



@pytest.mark.parametrize("stem, fn, check_name", checked_solutions(), ids=lambda v: str(v))
def test_every_notebook_solution_passes_the_check_below_it(stem, fn, check_name):
    result = getattr(checks, check_name)(getattr(solutions(stem), fn))
    assert result.passed, result.message


def test_every_notebook_has_checked_exercises():
    from notebook_solutions import ROOT

    notebooks = {p.stem[:2] for p in (ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py")}
    assert len(checked_solutions()) >= 2 * len(notebooks)
    assert {stem[:2] for stem, _, _ in checked_solutions()} == notebooks
