#!/usr/bin/env python3
"""Interchange with the checkered-CNN authors' saved files, checked both ways in PyTorch.

The models here are written from shared/spec/checkered.md (§3 conversion, §5.1 toy CCNN, §5.2 ResNet,
§5.4 DenseNet), with the authors' module structure: every convolution of a converted network is a
`CheckeredConv2d` whose parameters live in a nested `Conv3d` named `conv` (weight (O, I, D, k, k)),
BatchNorm2d becomes BatchNorm3d with the same names, and the repository's DenseNet names its
dense-layer modules `norm.1`, `conv.1`, `norm.2`, `conv.2` (modern PyTorch refuses dots in module names,
so the Python modules are `norm1`... and the keys are renamed on the way in and out, as a file written
by the original code would have them). The checkered layers compute the original four-shift definition
(scripts/crosscheck_checkered.py) with the naive sampler.

    crosscheck_checkered_models.py DIR

DIR holds, per model M, `M.export.safetensors` (convtrain's `export --format pytorch`), `M.io.safetensors`
(input and convtrain's eval-mode logits) and `M.json` (the model's description). The script
1. loads each export with `load_state_dict(strict=True)` and compares the logits;
2. writes `M.theirs.safetensors` (its own freshly initialised model's state_dict, in the authors' key
   format) and `M.theirs_io.safetensors` (its logits on the same input), for convtrain to import.
Exits 1 when any logits differ by more than --tol.
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crosscheck_checkered import four_shift_definition  # noqa: E402


class CheckeredConv2d(nn.Module):
    """The authors' layer: a Conv3d child `conv` applied by the four-shift definition."""

    def __init__(self, cin, cout, k, stride=1, padding=0, depth=1, bias=True):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, (depth, k, k), bias=bias)
        self.k, self.stride, self.padding, self.depth = k, stride, padding, depth

    def forward(self, x):
        s_out = x.shape[2] - self.depth + 1
        case = dict(op="conv", kernel=self.k, depth=self.depth, stride=self.stride, padding=self.padding,
                    dilation=1, groups=1, samplers=[0] * s_out)
        return four_shift_definition(case, x, self.conv.weight, self.conv.bias)


def checkered_avg_pool(x, k, stride):
    case = dict(op="avg", kernel=k, depth=1, stride=stride, padding=0, dilation=1, groups=1,
                samplers=[0] * x.shape[2])
    return four_shift_definition(case, x, None, None)


class ToyCCNN(nn.Module):
    """demo_mnist.py's CheckeredCNN (§5.1); `conv4_depth` 1 is Table 8's Tiny CCNN."""

    def __init__(self, conv4_depth=2, classes=10):
        super().__init__()
        self.init_conv = CheckeredConv2d(1, 32, 3, padding=1)
        self.conv1 = CheckeredConv2d(32, 32, 3, padding=1)
        self.conv2 = CheckeredConv2d(32, 45, 3, stride=2, padding=1)
        self.conv3 = CheckeredConv2d(45, 45, 3, padding=1)
        self.conv4 = CheckeredConv2d(45, 64, 3, padding=1, depth=conv4_depth)
        for i, c in enumerate([32, 32, 45, 45, 64]):
            setattr(self, f"bn{i + 1}", nn.BatchNorm3d(c))
        self.drop = nn.Dropout3d(0.2)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = x.unsqueeze(2)
        for i, conv in enumerate([self.init_conv, self.conv1, self.conv2, self.conv3, self.conv4]):
            x = F.relu(getattr(self, f"bn{i + 1}")(conv(x)))
        x = F.adaptive_avg_pool3d(self.drop(x), 1).flatten(1)
        return self.fc(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = CheckeredConv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = CheckeredConv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(CheckeredConv2d(cin, planes, 1, stride, 0, bias=False), nn.BatchNorm3d(planes))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class ResNet18(nn.Module):
    """models/resnet.py's ResNet-18 after convert_to_checkered (§5.2), layer0 = Sequential(conv, bn)."""

    def __init__(self, classes=10):
        super().__init__()
        self.layer0 = nn.Sequential(CheckeredConv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm3d(64))
        cin, layers = 64, []
        for i, planes in enumerate([64, 128, 256, 512]):
            blocks = []
            for j in range(2):
                blocks.append(BasicBlock(cin, planes, 2 if i > 0 and j == 0 else 1))
                cin = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.linear = nn.Linear(512, classes)

    def forward(self, x):
        y = F.relu(self.layer0(x.unsqueeze(2)))
        y = self.layer4(self.layer3(self.layer2(self.layer1(y))))
        return self.linear(F.avg_pool2d(y.mean(2), 4).flatten(1))


class DenseLayer(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.norm1, self.conv1 = nn.BatchNorm3d(cin), CheckeredConv2d(cin, 4 * growth, 1, bias=False)
        self.norm2, self.conv2 = nn.BatchNorm3d(4 * growth), CheckeredConv2d(4 * growth, growth, 3, 1, 1, bias=False)

    def forward(self, x):
        y = self.conv2(F.relu(self.norm2(self.conv1(F.relu(self.norm1(x))))))
        return torch.cat([x, y], 1)


class Transition(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm, self.conv = nn.BatchNorm3d(cin), CheckeredConv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return checkered_avg_pool(self.conv(F.relu(self.norm(x))), 2, 2)


class DenseNetBC(nn.Module):
    """models/densenet.py's DenseNet-BC (small inputs) after convert_to_checkered (§5.4)."""

    def __init__(self, depth=40, growth=12, classes=10):
        super().__init__()
        n = (depth - 4) // 6
        c = 2 * growth
        self.features = nn.Sequential()
        self.features.add_module("conv0", CheckeredConv2d(3, c, 3, 1, 1, bias=False))
        for b in range(1, 4):
            block = nn.Sequential()
            for i in range(n):
                block.add_module(f"denselayer{i + 1}", DenseLayer(c + i * growth, growth))
            self.features.add_module(f"denseblock{b}", block)
            c += n * growth
            if b < 3:
                self.features.add_module(f"transition{b}", Transition(c, c // 2))
                c //= 2
        self.features.add_module("norm_final", nn.BatchNorm3d(c))
        self.classifier = nn.Linear(c, classes)

    def forward(self, x):
        y = F.relu(self.features(x.unsqueeze(2)))
        return self.classifier(F.avg_pool2d(y.mean(2), 8).flatten(1))


DOTTED = [(".norm1.", ".norm.1."), (".conv1.", ".conv.1."), (".norm2.", ".norm.2."), (".conv2.", ".conv.2.")]


def to_authors(key, dotted):
    if dotted and ".denselayer" in key:
        for plain, dot in DOTTED:
            key = key.replace(plain, dot)
    return key


def from_authors(key, dotted):
    if dotted and ".denselayer" in key:
        for plain, dot in DOTTED:
            key = key.replace(dot, plain)
    return key


def build(desc):
    if desc["model"] == "ccnn-toy":
        return ToyCCNN(desc.get("conv4_depth", 2), desc["classes"])
    if desc["model"] == "resnet18":
        return ResNet18(desc["classes"])
    return DenseNetBC(desc["depth"], desc["growth"], desc["classes"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    failures = 0
    names = sorted(f[: -len(".json")] for f in os.listdir(args.dir) if f.endswith(".json"))
    for name in names:
        path = lambda suffix: os.path.join(args.dir, f"{name}.{suffix}")
        with open(path("json")) as f:
            desc = json.load(f)
        dotted = desc.get("dotted", False)
        torch.manual_seed(0)
        model = build(desc).eval()
        theirs = {from_authors(k, dotted): v for k, v in load_file(path("export.safetensors")).items()}
        model.load_state_dict(theirs, strict=True)
        io = load_file(path("io.safetensors"))
        with torch.no_grad():
            logits = model(io["input"])
        diff = ((logits - io["logits"]).abs().max() / io["logits"].abs().max()).item()
        ok = diff <= args.tol
        failures += not ok
        print(f"{name:28} export → authors' model (strict): {len(theirs)} tensors, max rel |Δlogits| {diff:.2e}"
              + ("" if ok else "  FAIL"))
        # The other way: a model of theirs, BN statistics moved off their initial values.
        torch.manual_seed(1)
        fresh = build(desc)
        with torch.no_grad():
            for m in fresh.modules():
                if isinstance(m, nn.BatchNorm3d):
                    m.running_mean.normal_(0, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0, 0.1)
            fresh.eval()
            their_logits = fresh(io["input"])
        state = {to_authors(k, dotted): v.contiguous() for k, v in fresh.state_dict().items()}
        save_file(state, path("theirs.safetensors"))
        save_file({"input": io["input"], "logits": their_logits.contiguous()}, path("theirs_io.safetensors"))
    print(f"{len(names) - failures}/{len(names)} models agree within {args.tol:g}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
