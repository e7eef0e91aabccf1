"""Exercise checks: `check_<thing>(your_function)` returns a `CheckResult` (a green or red box with specific feedback).

    from course.checks import check_magnitude_mask
    check_magnitude_mask(magnitude_mask)

One module per notebook, `nb00.py` ... `nb10.py`, imported below in order; `_core.py` is the framework (`@check`,
`call`, `fail`). The reference solutions are the notebooks' own (notebooks/src/NN_*.py, between `### BEGIN SOLUTION`
and `### END SOLUTION`); tests/notebook_solutions.py runs each against its check. Adding a check: write it in the
notebook's module with `@check("title")`, list it in that module's `__all__`, and import it below.
tests/test_checks.py fails if a public `check_*` of any module here is not re-exported.
"""
from course.checks._core import CheckResult, call, check, fail
from course.checks.nb00 import check_linear_params, check_dense_bytes
from course.checks.nb01 import check_magnitude_mask, check_achieved_sparsity, check_largest_sparsity_within
from course.checks.nb02 import check_bitmask_fp16_bytes, check_csr_bytes
from course.checks.nb03 import check_l1_filter_ranking, check_remove_filter, check_conv_flops
from course.checks.nb04 import check_taylor_score, check_spearman
from course.checks.nb05 import check_global_threshold, check_chain_connected
from course.checks.nb06 import check_cubic_schedule, check_iterative_targets, check_masked_step
from course.checks.nb07 import check_pick_under_budget, check_pareto_front
from course.checks.nb08 import check_pick_ratios, check_speedup_bound
from course.checks.nb09 import check_nm_mask, check_codebook_bytes
from course.checks.nb10 import check_wanda_score, check_obs_step

__all__ = [name for name in dir() if name.startswith("check_")] + ["CheckResult", "call", "check", "fail"]
