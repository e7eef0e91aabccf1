"""Every ```python block of docs/cheatsheet.md runs as written and asserts something, so the recipes cannot rot, and
each recipe's functions run on the zoo of user-style models, so what a recipe says it covers is what it does."""
from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from course.inputs import call
from zoo import ZOO

LAYERS = [nn.Linear, nn.modules.conv._ConvNd, nn.MultiheadAttention, nn.RNNBase]
CHEATSHEET = Path(__file__).resolve().parent.parent / "docs" / "cheatsheet.md"


def blocks() -> list[tuple[str, str]]:
    """(heading of the section, code) for every ```python block, in order."""
    text = CHEATSHEET.read_text(encoding="utf-8")
    found, heading = [], "top"
    for m in re.finditer(r"^## (?P<h>[^\n]+)$|^```python\n(?P<code>.*?)^```$", text, flags=re.M | re.S):
        if m.group("h"):
            heading = m.group("h").strip()
        else:
            found.append((heading, m.group("code")))
    return found


BLOCKS = blocks()


def test_the_cheatsheet_has_the_four_recipes():
    headings = " ".join(h for h, _ in BLOCKS).lower()
    assert len(BLOCKS) >= 4
    for topic in ("unstructured", "torch-pruning", "gradual", "flops"):
        assert topic in headings, f"no recipe about {topic}"


@pytest.mark.parametrize("heading, code", BLOCKS, ids=[h.split()[0] for h, _ in BLOCKS])
def test_recipe_is_self_contained_and_asserts(heading, code):
    assert re.search(r"^\s*assert\b", code, flags=re.M), f"recipe {heading!r} asserts nothing"
    assert not re.search(r"^\s*(from|import)\s+course\b", code, flags=re.M), "recipes must not need the course library"


@pytest.mark.parametrize("heading, code", BLOCKS, ids=[h.split()[0] for h, _ in BLOCKS])
def test_recipe_runs(heading, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                             # anything a recipe writes lands in tmp
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    module = types.ModuleType("cheatsheet_recipe")         # a real module, so classes it defines can be pickled
    monkeypatch.setitem(sys.modules, module.__name__, module)
    try:
        exec(compile(code, f"cheatsheet: {heading}", "exec"), module.__dict__)
    finally:
        torch.set_num_threads(threads)
        torch.set_rng_state(rng)


# ---------------------------------------------------------------- each recipe on the zoo, as far as it says it covers

def recipe(number: str) -> dict:
    """The namespace of recipe `number` after running its block (its functions, its demo's variables)."""
    code = next(c for h, c in BLOCKS if h.startswith(number))
    module = types.ModuleType(f"cheatsheet_recipe_{number}")
    sys.modules[module.__name__] = module
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    try:
        exec(compile(code, f"cheatsheet recipe {number}", "exec"), module.__dict__)
    finally:
        torch.set_num_threads(threads)
        torch.set_rng_state(rng)
    return module.__dict__


@pytest.fixture(scope="module")
def recipes() -> dict:
    return {n: recipe(n) for n in "1234"}


def test_the_weights_only_promise_holds():
    text = CHEATSHEET.read_text(encoding="utf-8")
    loads = re.findall(r"torch\.load\(([^)]*)\)", "\n".join(c for _, c in BLOCKS))
    assert loads and all("weights_only=True" in args for args in loads), loads
    assert "weights_only=False" not in text


def matrices(model, params) -> float:
    values = [getattr(m, n).detach() for m, n in params]
    return sum(int((v == 0).sum()) for v in values) / sum(v.numel() for v in values)


@pytest.mark.parametrize("name", ZOO)
def test_recipe_1_prunes_every_weight_matrix_and_round_trips(recipes, name, tmp_path):
    from torch.nn.utils import prune

    r1, spec = recipes["1"], ZOO[name]
    model = spec.model().eval()
    params = r1["weight_params"](model)
    kinds = {type(m) for m, _ in params}
    assert kinds & {nn.LSTM, nn.MultiheadAttention, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear}
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.9)
    for m, n in params:
        prune.remove(m, n)
    assert matrices(model, params) == pytest.approx(0.9, abs=1e-3)
    assert all(isinstance(m, tuple(LAYERS)) for m, _ in params)
    path = tmp_path / "m.pt"
    torch.save(r1["to_sparse_dict"](model.state_dict()), path)
    twin = spec.model(seed=1).eval()
    twin.load_state_dict(r1["from_sparse_dict"](torch.load(path, weights_only=True)))
    x = spec.inputs(spec.batch(2))
    with torch.no_grad():
        assert torch.equal(call(twin, x), call(model, x))


def test_recipe_1_says_why_attention_fine_tunes_only_after_prune_remove(recipes):
    from torch.nn.utils import prune

    spec = ZOO["text_transformer"]
    model = spec.model()
    params = recipes["1"]["weight_params"](model)
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.5)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        for step in range(2):                                    # the second step fails, as the recipe says
            opt.zero_grad()
            spec.loss_fn(model, spec.batch(2, seed=step)).backward()
            opt.step()


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2", "text_transformer", "signal_cnn", "autoencoder"])
def test_recipe_2_shrinks_the_models_it_covers(recipes, name):
    spec = ZOO[name]
    model = spec.model().eval()
    before = sum(p.numel() for p in model.parameters())
    x = spec.inputs(spec.batch(2))
    with torch.no_grad():
        shape = call(model, x).shape
    last = [m for m in model.modules() if isinstance(m, tuple(LAYERS[:2]))][-1]
    recipes["2"]["prune_channels"](model, x, 0.3, ignored=[last])
    assert sum(p.numel() for p in model.parameters()) < 0.9 * before
    with torch.no_grad():
        assert call(model, x).shape == shape


def test_recipe_2_does_not_cover_a_multi_layer_lstm_as_it_says(recipes):
    class Tagger(nn.Module):                                     # a 2-layer LSTM over float features
        def __init__(self):
            super().__init__()
            self.lstm, self.fc = nn.LSTM(8, 16, num_layers=2, batch_first=True), nn.Linear(16, 3)

        def forward(self, x):
            return self.fc(self.lstm(x)[0][:, -1])

    model = Tagger().eval()
    with pytest.raises(AssertionError):                          # Torch-Pruning 1.6: num_layers == 1 only
        recipes["2"]["prune_channels"](model, torch.randn(2, 5, 8), 0.3, ignored=[model.fc])
    spec = ZOO["lstm_padded"]                                    # behind an embedding it prunes nothing, silently
    model = spec.model().eval()
    before = {k: v.shape for k, v in model.state_dict().items()}
    recipes["2"]["prune_channels"](model, spec.inputs(spec.batch(2)), 0.3, ignored=[model.fc])
    assert {k: v.shape for k, v in model.state_dict().items()} == before


@pytest.mark.parametrize("name", ZOO)
def test_recipe_3_reaches_the_target_on_every_model(recipes, name):
    r3, spec = recipes["3"], ZOO[name]
    model = spec.model().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    masks = r3["prune_gradually"](model, opt, (spec.batch(4, seed=s) for s in range(12)), spec.loss_fn,
                                  final=0.8, begin=0, end=8, every=4)
    params = r3["weight_params"](model)
    assert [k for k in masks] == params
    assert matrices(model, params) == pytest.approx(0.8, abs=1e-3)         # ResNet-18 ended at 0.00 before


@pytest.mark.parametrize("name", ZOO)
def test_recipe_4_counts_the_hand_flops_where_it_says_it_does(recipes, name):
    spec = ZOO[name]
    batch = spec.batch(2)
    counted = recipes["4"]["flops"](spec.model(), spec.inputs(batch))
    if name == "lstm_padded":                                    # the blind spot the recipe names: padded LSTM
        lstm = 2 * batch[0].numel() * 4 * 32 * ((16 + 32) + (32 + 32))
        assert counted == spec.flops(batch) - lstm
    else:
        assert counted == spec.flops(batch)
