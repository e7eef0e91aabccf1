"""The course's three models, sized for a laptop CPU.

All three are plain `nn.Sequential` chains (Conv/Linear, BatchNorm, ReLU, pooling, Flatten), which is
what lets `course.pruning` remove units by surgery without a graph tracer. TinyResNet (residual adds) is the
model that needs Torch-Pruning's dependency graph instead. ViT is a tiny Vision Transformer whose every weight is an
nn.Linear (explicit q/k/v/o, so heads are visible).
Introduced in 00_setup_and_baselines (TinyResNet in 03_structured, ViT in 10_transformers)
"""
from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from course import arguments

__all__ = ["LeNet300100", "LeNet5", "VGGSmall", "build_model", "MODELS"]


class LeNet300100(nn.Sequential):
    """LeNet-300-100 (LeCun et al. 1998): a 784-300-100-10 MLP, 266,610 parameters."""

    def __init__(self, in_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10):
        c, h, w = in_shape
        super().__init__()
        self.flatten = nn.Flatten()              # (N, C, H, W) -> (N, C*H*W)
        self.fc1 = nn.Linear(c * h * w, 300)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(300, 100)
        self.relu2 = nn.ReLU()
        self.fc3 = nn.Linear(100, num_classes)
        self.in_shape = tuple(in_shape)


class LeNet5(nn.Sequential):
    """LeNet-5 (LeCun et al. 1998): two 5x5 convolutions and three fully connected layers."""

    def __init__(self, in_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10):
        c, h, w = in_shape
        super().__init__()
        self.conv1 = nn.Conv2d(c, 6, 5, padding=2)   # (N, 6, H, W)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)                 # (N, 6, H/2, W/2)
        self.conv2 = nn.Conv2d(6, 16, 5)             # (N, 16, H/2-4, W/2-4)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)                 # (N, 16, H', W')
        self.flatten = nn.Flatten()
        hh, ww = (h // 2 - 4) // 2, (w // 2 - 4) // 2
        self.fc1 = nn.Linear(16 * hh * ww, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, num_classes)
        self.in_shape = tuple(in_shape)


class VGGSmall(nn.Sequential):
    """A small VGG-style CNN with BatchNorm: three blocks of two 3x3 convs, for CIFAR-10 (3x32x32) or 1x28x28.

    `widths` are the channels of the three blocks. The head pools to 2x2, so the Flatten -> Linear
    boundary carries 4 inputs per channel (the case structured surgery must get right).
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int] = (3, 32, 32),
        num_classes: int = 10,
        widths: tuple[int, int, int] = (16, 32, 64),
        hidden: int = 128,
    ):
        super().__init__()
        c_in = in_shape[0]
        i = 0
        for block, width in enumerate(widths, start=1):
            for _ in range(2):
                i += 1
                self.add_module(f"conv{i}", nn.Conv2d(c_in, width, 3, padding=1, bias=False))
                self.add_module(f"bn{i}", nn.BatchNorm2d(width))
                self.add_module(f"relu{i}", nn.ReLU())
                c_in = width
            self.add_module(f"pool{block}", nn.MaxPool2d(2))   # H -> H // 2
        self.add_module("avgpool", nn.AdaptiveAvgPool2d(2))    # (N, C, 2, 2) for 28x28 and 32x32 alike
        self.add_module("flatten", nn.Flatten())               # (N, C*4)
        self.add_module("fc1", nn.Linear(c_in * 4, hidden))
        self.add_module("relu_fc", nn.ReLU())
        self.add_module("fc2", nn.Linear(hidden, num_classes))
        self.in_shape = tuple(in_shape)


MODELS = {"lenet300": LeNet300100, "lenet5": LeNet5, "vgg": VGGSmall}


def build_model(name: str, in_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10) -> nn.Module:
    """Build a fresh model by name (`"lenet300"`, `"lenet5"`, `"vgg"`, `"resnet"` or `"vit"`) for inputs of `in_shape`."""
    return MODELS[arguments.choice(name, MODELS, "model")](in_shape=tuple(in_shape), num_classes=num_classes)


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016): relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)  # (N, c_out, H/s, W/s)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.ReLU()
        # The residual add couples the output channels of conv2 and the shortcut: they must be pruned together.
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        return self.relu2(self.bn2(self.conv2(out)) + self.shortcut(x))


class TinyResNet(nn.Module):
    """A CPU-sized ResNet: a 3x3 stem and three BasicBlocks (the last two halve H and W), then pool and a Linear.

    Not a `nn.Sequential` chain: the residual adds couple channels across layers, so structured pruning of it
    goes through `course.pruning.prune_with_torch_pruning` (a dependency graph), not through chain surgery.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int] = (3, 32, 32),
        num_classes: int = 10,
        widths: tuple[int, int, int] = (16, 32, 64),
    ):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_shape[0], widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        self.block1 = BasicBlock(widths[0], widths[0])               # (N, w0, H, W)
        self.block2 = BasicBlock(widths[0], widths[1], stride=2)     # (N, w1, H/2, W/2)
        self.block3 = BasicBlock(widths[1], widths[2], stride=2)     # (N, w2, H/4, W/4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()                                   # (N, w2)
        self.fc = nn.Linear(widths[2], num_classes)
        self.in_shape = tuple(in_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.stem(x))))
        return self.fc(self.flatten(self.pool(x)))


MODELS["resnet"] = TinyResNet
__all__ += ["BasicBlock", "TinyResNet"]


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, T, C*P*P) with T = (H/P)(W/P) patches in row-major order."""
    n, c, h, w = x.shape
    x = x.unfold(2, patch, patch).unfold(3, patch, patch)              # (N, C, H/P, W/P, P, P)
    return x.permute(0, 2, 3, 1, 4, 5).reshape(n, (h // patch) * (w // patch), c * patch * patch)


class Attention(nn.Module):
    """Multi-head self-attention with explicit q, k, v, o Linears: head h owns rows [h·d, (h+1)·d) of q, k, v and the
    same columns of o. out = o(concat_h softmax(q_h k_hᵀ / √d) v_h). `heads` shrinks when heads are removed; the
    head size d (and so the scale 1/√d) does not."""

    def __init__(self, dim: int, heads: int, head_dim: int | None = None):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim or dim // heads
        inner = self.heads * self.head_dim
        self.q, self.k, self.v = nn.Linear(dim, inner), nn.Linear(dim, inner), nn.Linear(dim, inner)
        self.o = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape                                              # (N, T, dim)
        h, d = self.heads, self.head_dim
        q, k, v = (f(x).view(n, t, h, d).transpose(1, 2) for f in (self.q, self.k, self.v))   # (N, h, T, d)
        att = (q @ k.transpose(-2, -1) / math.sqrt(d)).softmax(dim=-1)                       # (N, h, T, T)
        return self.o((att @ v).transpose(1, 2).reshape(n, t, h * d))  # heads side by side: (N, T, h·d)

    def extra_repr(self) -> str:
        return f"heads={self.heads}, head_dim={self.head_dim}"


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + mlp(LN(x)); the MLP is a Sequential(fc1, GELU, fc2) chain,
    so `prune_structured(block.mlp, ratio)` removes its hidden neurons."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(OrderedDict(fc1=nn.Linear(dim, hidden), act=nn.GELU(), fc2=nn.Linear(hidden, dim)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """A tiny Vision Transformer (Dosovitskiy et al. 2021): patches -> Linear embedding, + class token, + learned
    positions -> pre-norm blocks -> LayerNorm -> class token (pool="cls") or mean of tokens (pool="mean") -> head.

    Every weight is an nn.Linear (the patch embedding is a Linear on flattened P×P patches, eq. 1 of the paper).
    Defaults (7×7 patches, or 4×4 where 7 does not divide the image; width 64, 4 heads, 4 blocks, MLP 128):
    139,018 parameters for 1×28×28 inputs.
    """

    def __init__(self, in_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10, *, patch: int | None = None,
                 dim: int = 64, depth: int = 4, heads: int = 4, mlp_ratio: int = 2, pool: str = "cls"):
        super().__init__()
        c, h, w = in_shape
        patch = patch or (7 if h % 7 == w % 7 == 0 else 4)             # 7×7 for 28×28 (16 tokens), 4×4 for 32×32 (64)
        if h % patch or w % patch:
            raise ValueError(f"patch={patch} must divide the image size {h}x{w}")
        if dim % heads:
            raise ValueError(f"dim={dim} must be a multiple of heads={heads}")
        self.patch, self.pool, self.in_shape = patch, arguments.choice(pool, ("cls", "mean"), "pool"), tuple(in_shape)
        self.patch_embed = nn.Linear(c * patch * patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        self.pos_embed = nn.Parameter(torch.zeros(1, (h // patch) * (w // patch) + (pool == "cls"), dim))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio * dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Truncated-normal(0.02) weights, tokens and positions, zero biases, as in the ViT/DeiT reference code."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        for p in (self.pos_embed, self.cls_token):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(patchify(x, self.patch))                  # (N, 16, dim) for 7×7 patches of 28×28
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1)   # (N, 17, dim)
        x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return self.head(x[:, 0] if self.pool == "cls" else x.mean(dim=1))    # (N, classes)


MODELS["vit"] = ViT
__all__ += ["patchify", "Attention", "Block", "ViT"]
