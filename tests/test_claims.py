import pytest

from course import config
from course.lessons import claims


def test_a_claim_that_holds_prints_it(capsys):
    assert claims.claim(3 > 2, "three beats two") is True
    assert capsys.readouterr().out == "✓ three beats two\n"


def test_a_contradicted_claim_fails_a_full_run(monkeypatch):
    monkeypatch.setattr(config, "FAST", False)
    with pytest.raises(claims.ClaimError, match="three beats four.*Rewrite the conclusion"):
        claims.claim(3 > 4, "three beats four")


def test_fast_mode_notes_a_contradicted_claim_without_failing(monkeypatch, capsys):
    monkeypatch.setattr(config, "FAST", True)
    assert claims.claim(False, "three beats four") is False
    assert "fast mode" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["", "   ", None, 3])
def test_the_claim_needs_words(text):
    with pytest.raises(TypeError, match="non-empty str"):
        claims.claim(True, text)


def test_numpy_and_torch_bools_are_accepted(capsys):
    import numpy as np
    import torch

    assert claims.claim(np.bool_(True), "numpy") and claims.claim(torch.tensor(True), "torch")
