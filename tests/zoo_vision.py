"""The zoo's vision models, written the way real projects write them: kuangliu's CIFAR ResNet-18, torchvision's
MobileNetV2 (narrow), an M5-style Conv1d signal classifier and a ConvTranspose2d autoencoder, with hand FLOP counts.

Hand counts follow torch.utils.flop_counter's convention: 1 multiply-accumulate = 2 FLOPs; matmuls and convolutions
only (biases, norms, activations and pooling count 0).
  Linear (in -> out) on M rows:            2·M·in·out
  Conv (groups g), output of P positions:  2·N·P·C_out·(C_in/g)·prod(kernel)
  ConvTranspose, input of P positions:     2·N·P·C_in·(C_out/g)·prod(kernel)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ResNet18", "MobileNetV2", "SignalCNN", "ConvAutoencoder", "resnet_flops", "mobilenet_flops",
           "signal_flops", "autoencoder_flops"]


# ---------------------------------------------------------------- ResNet-18 (kuangliu/pytorch-cifar style)

class BasicBlock(nn.Module):
    """Two 3x3 convs with BatchNorm; a 1x1 strided projection on the shortcut when the shape changes."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class ResNet18(nn.Module):
    """ResNet-18 topology (3x3 stem, 4 stages x 2 BasicBlocks, stride 2 from stage 2), widths w, 2w, 4w, 8w."""

    def __init__(self, width: int = 8, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.in_planes = width
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = self._make_layer(width, 2, stride=1)
        self.layer2 = self._make_layer(2 * width, 2, stride=2)
        self.layer3 = self._make_layer(4 * width, 2, stride=2)
        self.layer4 = self._make_layer(8 * width, 2, stride=2)
        self.linear = nn.Linear(8 * width, num_classes)

    def _make_layer(self, planes: int, num_blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:         # (N, C, H, W)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)           # (N, 8w)
        return self.linear(out)


def resnet_flops(n: int, h: int, w: int, width: int = 8, in_channels: int = 3, num_classes: int = 10) -> int:
    """Stem 2·N·HW·w·C·9; per stage s (c = 2^s·w, side /2 from stage 2): 4 convs 3x3, and at a stride a 1x1 shortcut."""
    total = 2 * n * h * w * width * in_channels * 9
    c_in = width
    for s in range(4):
        c = width * 2 ** s
        if s:
            h, w = (h + 1) // 2, (w + 1) // 2                      # 3x3, stride 2, padding 1
        hw = h * w
        total += 2 * n * hw * c * c_in * 9                         # block 1, conv1 (maybe strided)
        total += 2 * n * hw * c * c * 9 * 3                        # block 1 conv2, block 2 conv1 and conv2
        if c != c_in or s:
            total += 2 * n * hw * c * c_in                         # 1x1 projection shortcut
        c_in = c
    return total + 2 * n * 8 * width * num_classes


# ---------------------------------------------------------------- MobileNetV2 (torchvision style, narrow)

class InvertedResidual(nn.Module):
    """1x1 expand (t·C), 3x3 depthwise (groups = channels), 1x1 linear projection; residual when shapes match."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers += [nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(inplace=True), nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """Stem conv (stride 2), inverted-residual stages `setting` = [(t, c, n, s)], 1x1 conv to `last`, classifier."""

    SETTING = ((1, 8, 1, 1), (6, 12, 2, 2), (6, 16, 2, 2), (6, 24, 1, 1))

    def __init__(self, num_classes: int = 10, stem: int = 8, last: int = 64, setting=SETTING):
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem),
                                                 nn.ReLU6(inplace=True))]
        c_in = stem
        for t, c, reps, s in setting:
            for i in range(reps):
                layers.append(InvertedResidual(c_in, c, s if i == 0 else 1, t))
                c_in = c
        layers.append(nn.Sequential(nn.Conv2d(c_in, last, 1, bias=False), nn.BatchNorm2d(last),
                                    nn.ReLU6(inplace=True)))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:          # (N, 3, H, W)
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)   # (N, last)
        return self.classifier(x)


def mobilenet_flops(n: int, h: int, w: int, num_classes: int = 10, stem: int = 8, last: int = 64,
                    setting=MobileNetV2.SETTING) -> int:
    """Per block: expand 2·N·HW_in·C·tC, depthwise 2·N·HW_out·tC·9, project 2·N·HW_out·tC·C_out."""
    h, w = (h + 1) // 2, (w + 1) // 2
    total = 2 * n * h * w * stem * 3 * 9
    c_in = stem
    for t, c, reps, s in setting:
        for i in range(reps):
            hidden = c_in * t
            if t != 1:
                total += 2 * n * h * w * c_in * hidden
            if (s if i == 0 else 1) == 2:
                h, w = (h + 1) // 2, (w + 1) // 2
            total += 2 * n * h * w * hidden * 9 + 2 * n * h * w * hidden * c
            c_in = c
    return total + 2 * n * h * w * c_in * last + 2 * n * last * num_classes


# ---------------------------------------------------------------- Conv1d over a signal, ConvTranspose2d autoencoder

class SignalCNN(nn.Module):
    """An M5-style 1-D CNN: strided wide conv, conv, grouped dilated conv, global average pool, Linear."""

    def __init__(self, num_classes: int = 4):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 8, 9, stride=2, padding=4)
        self.bn1 = nn.BatchNorm1d(8)
        self.conv2 = nn.Conv1d(8, 16, 5, padding=2)
        self.bn2 = nn.BatchNorm1d(16)
        self.conv3 = nn.Conv1d(16, 16, 3, padding=2, dilation=2, groups=2)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:          # (N, 1, L)
        x = F.max_pool1d(F.relu(self.bn1(self.conv1(x))), 2)     # (N, 8, L/4)
        x = F.max_pool1d(F.relu(self.bn2(self.conv2(x))), 2)     # (N, 16, L/8)
        x = F.relu(self.conv3(x)).mean(-1)                        # (N, 16)
        return self.fc(x)


def signal_flops(n: int, length: int, num_classes: int = 4) -> int:
    """conv1 2·N·(L/2)·8·1·9, conv2 2·N·(L/4)·16·8·5, conv3 2·N·(L/8)·16·(16/2)·3, fc 2·N·16·classes."""
    l1 = length // 2
    return (2 * n * l1 * 8 * 9 + 2 * n * (l1 // 2) * 16 * 8 * 5 + 2 * n * (l1 // 4) * 16 * 8 * 3
            + 2 * n * 16 * num_classes)


class ConvAutoencoder(nn.Module):
    """Two strided Conv2d down (28 -> 14 -> 7), two ConvTranspose2d up (7 -> 14 -> 28), sigmoid output."""

    def __init__(self):
        super().__init__()
        self.enc1 = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.enc2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.dec1 = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
        self.dec2 = nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:          # (N, 1, 28, 28)
        z = F.relu(self.enc2(F.relu(self.enc1(x))))              # (N, 16, 7, 7)
        return torch.sigmoid(self.dec2(F.relu(self.dec1(z))))    # (N, 1, 28, 28)


def autoencoder_flops(n: int, side: int = 28) -> int:
    """enc: 2·N·(s/2)²·8·1·9 + 2·N·(s/4)²·16·8·9; dec (input positions): 2·N·(s/4)²·16·8·9 + 2·N·(s/2)²·8·1·9."""
    return 2 * (2 * n * (side // 2) ** 2 * 8 * 9 + 2 * n * (side // 4) ** 2 * 16 * 8 * 9)
