"""Exercise checks: `check_<thing>(your_function)` returns a `CheckResult` (a green or red box with specific feedback).

    from course.checks import check_magnitude_mask
    check_magnitude_mask(magnitude_mask)

Adding the checks of a notebook: write `course/checks/nbNN.py` with `@check("title")`-decorated functions (see
`_core.py` and `exercises_core.py`), list them in its `__all__`, and add ONE import line below. tests/test_checks.py
fails if a public `check_*` of any module here is not re-exported.
"""
from course.checks._core import CheckResult, call, check, fail
from course.checks.exercises_core import (
    check_bitmask_fp16_bytes, check_cubic_schedule, check_global_threshold, check_l1_filter_ranking,
    check_magnitude_mask, check_pick_under_budget, check_remove_filter, check_taylor_score,
)

# --- per-notebook checks: one import line per notebook module, e.g. ---------------------------------------
# from course.checks.nb02 import check_sparse_file_size
from course.checks.nb06 import check_iterative_targets
from course.checks.nb07 import check_pareto_front
from course.checks.nb00 import check_dense_bytes, check_linear_params
from course.checks.nb01 import check_achieved_sparsity, check_largest_sparsity_within
from course.checks.nb02 import check_csr_bytes
from course.checks.nb03 import check_conv_flops
from course.checks.nb08 import check_pick_ratios, check_speedup_bound
from course.checks.nb04 import check_spearman
from course.checks.nb05 import check_chain_connected

__all__ = [name for name in dir() if name.startswith("check_")] + ["CheckResult", "call", "check", "fail"]
