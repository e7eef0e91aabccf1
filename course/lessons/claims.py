"""A notebook's written conclusion, checked against the numbers of the run that shows it.

The interpretation in a notebook is static Markdown (a learner's copy has no outputs, and a self-paced reader must
see the conclusion before running). The cell that prints the numbers then states the claim again as code:

    claim(taylor_acc < magnitude_acc, "magnitude keeps more accuracy than Taylor at 90% sparsity")

On a full run a claim the numbers contradict raises `ClaimError` (so `scripts/nb.py run`, and with it the committed
outputs, fail until the Markdown is rewritten). In fast mode (`COURSE_FAST=1`: a few batches, an epoch) the numbers
are too rough to test a conclusion about trained models, so a failed claim prints a note instead of raising.
Introduced in 01_what_is_pruning
"""
from __future__ import annotations

from course import arguments, config

__all__ = ["ClaimError", "claim"]


class ClaimError(AssertionError):
    """A notebook's written conclusion does not hold for the numbers of this run."""


def claim(holds: bool, text: str) -> bool:
    """Print "✓ text" when `holds`; otherwise raise ClaimError (full run) or print a fast-mode note. Returns `holds`."""
    holds = arguments.boolean(bool(holds), "holds")
    if not isinstance(text, str) or not text.strip():
        raise TypeError("claim(holds, text): text is the conclusion in words, a non-empty str")
    if holds:
        print(f"✓ {text}")
    elif config.FAST:
        print(f"(fast mode: too little training to test this; a full run checks it) {text}")
    else:
        raise ClaimError(f"the notebook says: {text!r}, but this run's numbers do not show it. Rewrite the "
                         f"conclusion in the Markdown above to follow the numbers, then this claim.")
    return holds
