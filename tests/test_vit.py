"""The tiny ViT and what its recipe needs: shapes, parameters, patch order, attention against torch, AdamW, warm-up,
and that adding the ViT recipe left every shipped checkpoint's key as it was."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course import build_model, train
from course.checkpoints import RECIPES, checkpoint_key, find_checkpoint, read_manifest, recipe_hash, resolve_recipe
from course.config import CHECKPOINT_DIR
from course.models import Attention, ViT, patchify
from course.pruning import prune_structured
from course.training import lr_at, make_optimizer


def test_build_model_vit_has_139k_parameters_and_classifies_any_image_shape():
    model = build_model("vit", (1, 28, 28), 10)
    assert isinstance(model, ViT) and model.patch == 7
    assert sum(p.numel() for p in model.parameters()) == 139_018
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    cifar = build_model("vit", (3, 32, 32), 7)                          # 7 does not divide 32: 4×4 patches
    assert cifar.patch == 4 and cifar(torch.randn(2, 3, 32, 32)).shape == (2, 7)


def test_patchify_with_a_linear_is_the_usual_strided_convolution():
    x = torch.randn(2, 3, 28, 28)
    conv = nn.Conv2d(3, 5, 7, stride=7)                                 # the usual ViT patch embedding
    lin = nn.Linear(3 * 49, 5)
    with torch.no_grad():
        lin.weight.copy_(conv.weight.flatten(1))
        lin.bias.copy_(conv.bias)
    expected = conv(x).flatten(2).transpose(1, 2)                      # (N, 16, 5)
    torch.testing.assert_close(lin(patchify(x, 7)), expected, atol=1e-5, rtol=1e-5)


def test_attention_matches_torch_multihead_attention():
    torch.manual_seed(0)
    attn = Attention(16, 4)
    ref = nn.MultiheadAttention(16, 4, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([attn.q.weight, attn.k.weight, attn.v.weight]))
        ref.in_proj_bias.copy_(torch.cat([attn.q.bias, attn.k.bias, attn.v.bias]))
        ref.out_proj.weight.copy_(attn.o.weight)
        ref.out_proj.bias.copy_(attn.o.bias)
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(attn(x), ref(x, x, x, need_weights=False)[0], atol=1e-5, rtol=1e-5)


def test_mean_pooling_and_bad_configurations():
    assert ViT(pool="mean").cls_token is None
    assert ViT(patch=4).pos_embed.shape == (1, 50, 64)
    with pytest.raises(ValueError, match="divide"):
        ViT(patch=5)
    with pytest.raises(ValueError, match="multiple of heads"):
        ViT(dim=30, heads=4)
    with pytest.raises(ValueError, match="pool"):
        ViT(pool="max")


def test_prune_structured_removes_mlp_neurons_of_a_block_like_its_masked_twin():
    torch.manual_seed(0)
    model, x = ViT(dim=16, depth=2, heads=2).eval(), torch.randn(4, 1, 28, 28)
    slim, twin = ViT(dim=16, depth=2, heads=2).eval(), ViT(dim=16, depth=2, heads=2).eval()
    slim.load_state_dict(model.state_dict())
    twin.load_state_dict(model.state_dict())
    for block in slim.blocks:
        prune_structured(block.mlp, 0.5, inplace=True)                  # the MLP is a Sequential chain
    from course.pruning import mask_structured
    for block in twin.blocks:
        mask_structured(block.mlp, 0.5, inplace=True)
    assert [b.mlp.fc1.out_features for b in slim.blocks] == [16, 16]
    torch.testing.assert_close(slim(x), twin(x), atol=1e-5, rtol=0)


def test_warmup_then_cosine_and_no_warmup_is_the_old_cosine():
    lrs = [lr_at(t, 100, 1.0, "cosine", 0.1) for t in range(100)]
    assert lrs[:10] == pytest.approx([(t + 1) / 10 for t in range(10)])
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[55] == pytest.approx((1 + math.cos(math.pi * 45 / 90)) / 2)
    assert all(lr_at(t, 100, 0.5, "cosine") == 0.5 * (1 + math.cos(math.pi * t / 100)) / 2 for t in range(100))
    assert lr_at(50, 100, 0.3, "constant", 0.1) == 0.3


def test_adamw_decays_only_the_weights_of_linear_layers():
    model = ViT(dim=16, depth=1, heads=2)
    groups = make_optimizer(model, "adamw", lr=1e-3, weight_decay=0.05).param_groups
    decayed = {id(p) for p in groups[0]["params"]}
    assert groups[0]["weight_decay"] == 0.05 and groups[1]["weight_decay"] == 0.0
    assert decayed == {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(list(model.parameters()))


def test_train_with_adamw_and_warmup_learns_and_records_the_schedule():
    torch.manual_seed(0)
    x = torch.randn(64, 1, 28, 28)
    y = (x.mean((1, 2, 3)) > 0).long()                                  # a learnable rule
    model = ViT(dim=16, depth=1, heads=2)
    data = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    h = train(model, data, epochs=15, lr=3e-3, optimizer="adamw", weight_decay=0.05, schedule="cosine",
              warmup=0.1, progress=False, device="cpu", seed=0)
    assert h.loss[-1] < h.loss[0] and h.train_acc[-1] > 0.8
    assert h.lr[0] == pytest.approx(lr_at(3, 60, 3e-3, "cosine", 0.1))    # the lr of the epoch's last step
    with pytest.raises(ValueError, match="warmup"):
        train(model, data, epochs=1, lr=1e-3, warmup=1.5, progress=False)


def test_the_vit_recipe_left_every_shipped_checkpoint_key_unchanged():
    entries = read_manifest(CHECKPOINT_DIR)
    assert entries
    for key, entry in entries.items():
        recipe = resolve_recipe(entry["model"], dataset=entry["dataset"])
        assert recipe == entry["recipe"] and recipe_hash(recipe) == entry["recipe_hash"], key
        assert checkpoint_key(entry["model"], entry["dataset"], entry["variant"], recipe) == key
        assert find_checkpoint(key) is not None
    assert "warmup" in RECIPES["vit"] and all("warmup" not in RECIPES[m] for m in ("lenet300", "lenet5", "vgg"))
    assert resolve_recipe("lenet5", {"warmup": 0.1})["warmup"] == 0.1  # optional keys may be given to any recipe
    with pytest.raises(ValueError, match="unknown recipe keys"):
        resolve_recipe("vit", {"label_smoothing": 0.1})
