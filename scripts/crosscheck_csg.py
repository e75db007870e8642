#!/usr/bin/env python3
"""Cross-checks convtrain's associative (CSG) models against an independent PyTorch implementation of
spec/associative.md §2-3, written from the specification with the authors' state_dict() names.

    $CONVTRAIN_TORCH_HOME/bin/python scripts/crosscheck_csg.py --self-check
        Builds every model associative.md §3 lists and compares its parameter count (unique
        parameters, as the original main.py prints them) with the spec; then prints the counts of
        configurations the spec does not list (the numbers the Rust unit tests hold). Needs no dump.

    cargo run --release --example csg_dump -- DIR ARCH [options]   (see examples/csg_dump.rs)
    $CONVTRAIN_TORCH_HOME/bin/python scripts/crosscheck_csg.py DIR
        DIR/config.json names the model; DIR/weights.safetensors holds convtrain's weights under the
        authors' keys (`CSG.weight` plus one alias per block, `code`/`code2`/`code1`, BN buffers with
        num_batches_tracked), loaded with strict=True; DIR/io.safetensors holds an input, convtrain's
        eval- and train-mode logits and every generated kernel (`kernel.<baseline conv name>`);
        DIR/materialized.safetensors (optional) is `export --materialize` in the baseline's names,
        loaded strict=True into the baseline ("org") model. Checks, each printed with its numbers:
          - parameter count of the model (and of the baseline) equals the closed count below;
          - each generated kernel equals this implementation's, element by element (<= 1e-6 abs.);
          - logits in eval and train mode within 1e-4 relative (max |a-b| / max |b|);
          - the materialized baseline gives convtrain's eval logits of the CSG model (1e-4 relative).
Exit status 1 if any check fails.

The kernel of a generated conv C_in -> C_out (associative.md §2.4): K = codes @ W^T
([ceil(C_in/S0)*ceil(C_out/S1), prod(SLICE)]), a flat row-major view as
[ceil(C_out/S0)*S0, ceil(C_in/S1)*S1, k, k], cropped to [C_out, C_in, k, k]; conv2d without bias.
"""
import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

TOLERANCE = 1e-4
KERNEL_TOLERANCE = 1e-6


def generated_kernel(csg, codes, c_out, c_in, slice_shape):
    """associative.md §2.4, steps 1-3."""
    s0, s1, kh, kw = slice_shape
    flat = csg(codes)
    padded = flat.reshape(math.ceil(c_out / s0) * s0, math.ceil(c_in / s1) * s1, kh, kw)
    return padded[:c_out, :c_in]


def num_slices(c_in, c_out, slice_shape):
    return math.ceil(c_in / slice_shape[0]) * math.ceil(c_out / slice_shape[1])


class GeneratedConv(nn.Module):
    """Registers the shared generator as `CSG` in its parent; holds nothing itself (the codes live in
    the parent block under the authors' names)."""

    def __init__(self, c_in, c_out, stride, padding, slice_shape):
        super().__init__()
        self.c_in, self.c_out, self.stride, self.padding, self.slice_shape = c_in, c_out, stride, padding, slice_shape

    def kernel(self, csg, codes):
        return generated_kernel(csg, codes, self.c_out, self.c_in, self.slice_shape)

    def run(self, x, csg, codes):
        return F.conv2d(x, self.kernel(csg, codes), stride=self.stride, padding=self.padding)


def new_codes(c_in, c_out, slice_shape, code_size):
    return nn.Parameter(torch.randn(num_slices(c_in, c_out, slice_shape), code_size))


# ---------------------------------------------------------------- CIFAR ResNet (§3.1)
class CifarBlock(nn.Module):
    """conv-BN-ReLU-conv-BN + option-A shortcut, ReLU. CSG: `code` (first conv), `code2` (second)."""

    def __init__(self, cin, planes, stride, csg, slice_shape, code_size):
        super().__init__()
        self.stride, self.shortcut_a = stride, stride != 1 or cin != planes
        if csg is not None:
            self.CSG = csg
            self.gen_a = GeneratedConv(cin, planes, stride, 1, slice_shape)
            self.code = new_codes(cin, planes, slice_shape, code_size)
            self.gen_b = GeneratedConv(planes, planes, 1, 1, slice_shape)
            self.code2 = new_codes(planes, planes, slice_shape, code_size)
        else:
            self.conv_a = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
            self.conv_b = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn_a = nn.BatchNorm2d(planes)
        self.bn_b = nn.BatchNorm2d(planes)

    def generated(self):
        return [("conv_a.weight", self.gen_a, self.code), ("conv_b.weight", self.gen_b, self.code2)]

    def forward(self, x):
        if hasattr(self, "CSG"):
            y = self.gen_a.run(x, self.CSG, self.code)
            y = self.gen_b.run(F.relu(self.bn_a(y)), self.CSG, self.code2)
        else:
            y = self.conv_b(F.relu(self.bn_a(self.conv_a(x))))
        y = self.bn_b(y)
        if self.shortcut_a:
            skip = x[:, :, :: self.stride, :: self.stride]
            x = torch.cat([skip, torch.zeros_like(skip)], 1)
        return F.relu(x + y)


class CifarResNet(nn.Module):
    def __init__(self, depth, classes, slice_shape, code_size, org, in_channels=3):
        super().__init__()
        assert (depth - 2) % 6 == 0
        n = (depth - 2) // 6
        csg = None if org else nn.Linear(code_size, math.prod(slice_shape), bias=False)
        if csg is not None:
            self.CSG = csg
        self.conv_1_3x3 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn_1 = nn.BatchNorm2d(16)
        cin = 16
        for s, planes in enumerate([16, 32, 64], start=1):
            blocks = []
            for j in range(n):
                blocks.append(CifarBlock(cin, planes, 2 if (s > 1 and j == 0) else 1, csg, slice_shape, code_size))
                cin = planes
            setattr(self, f"stage_{s}", nn.Sequential(*blocks))
        self.classifier = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn_1(self.conv_1_3x3(x)))
        x = self.stage_3(self.stage_2(self.stage_1(x)))
        return self.classifier(F.avg_pool2d(x, 8).flatten(1))


# ---------------------------------------------------------------- CIFAR DenseNet-BC (§3.2)
class DenseBottleneck(nn.Module):
    """BN-ReLU-1x1(4k)-BN-ReLU-3x3(k), output cat([new, x]). CSG: `code2`."""

    def __init__(self, cin, growth, csg, slice_shape, code_size):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        if csg is not None:
            self.CSG = csg
            self.gen2 = GeneratedConv(4 * growth, growth, 1, 1, slice_shape)
            self.code2 = new_codes(4 * growth, growth, slice_shape, code_size)
        else:
            self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def generated(self):
        return [("conv2.weight", self.gen2, self.code2)]

    def forward(self, x):
        y = F.relu(self.bn2(self.conv1(F.relu(self.bn1(x)))))
        y = self.gen2.run(y, self.CSG, self.code2) if hasattr(self, "CSG") else self.conv2(y)
        return torch.cat([y, x], 1)


class DenseTransition(nn.Module):
    def __init__(self, cin, cout, last):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.last = last
        if not last:
            self.conv = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        y = F.relu(self.bn(x))
        return F.avg_pool2d(y, 8) if self.last else F.avg_pool2d(self.conv(y), 2)


class DenseNetBC(nn.Module):
    def __init__(self, depth, growth, classes, slice_shape, code_size, org, in_channels=3):
        super().__init__()
        assert (depth - 4) % 6 == 0
        n = (depth - 4) // 6
        csg = None if org else nn.Linear(code_size, math.prod(slice_shape), bias=False)
        if csg is not None:
            self.CSG = csg
        c = 2 * growth
        self.conv1 = nn.Conv2d(in_channels, c, 3, padding=1, bias=False)
        for b in (1, 2, 3):
            layers = [DenseBottleneck(c + i * growth, growth, csg, slice_shape, code_size) for i in range(n)]
            setattr(self, f"dense{b}", nn.Sequential(*layers))
            c += n * growth
            out = c // 2
            setattr(self, f"trans{b}", DenseTransition(c, out, b == 3))
            if b < 3:
                c = out
        self.linear = nn.Linear(c, classes)

    def forward(self, x):
        y = self.conv1(x)
        for b in (1, 2, 3):
            y = getattr(self, f"trans{b}")(getattr(self, f"dense{b}")(y))
        return self.linear(y.flatten(1))


# ---------------------------------------------------------------- ImageNet ResNets (§3.4)
class ImageNetBottleneck(nn.Module):
    """torchvision Bottleneck, 3x3 conv2 (stride here) generated from `code2`."""

    expansion = 4

    def __init__(self, cin, planes, stride, csg, slice_shape, code_size):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        if csg is not None:
            self.CSG = csg
            self.gen2 = GeneratedConv(planes, planes, stride, 1, slice_shape)
            self.code2 = new_codes(planes, planes, slice_shape, code_size)
        else:
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        if stride != 1 or cin != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes * 4))

    def generated(self):
        return [("conv2.weight", self.gen2, self.code2)]

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.gen2.run(y, self.CSG, self.code2) if hasattr(self, "CSG") else self.conv2(y)
        y = self.bn3(self.conv3(F.relu(self.bn2(y))))
        skip = self.downsample(x) if hasattr(self, "downsample") else x
        return F.relu(y + skip)


class ImageNetBasicFirstGenerated(nn.Module):
    """The repo's BasicBlock2: conv1 (3x3, stride) generated from `code1`, conv2 plain."""

    expansion = 1

    def __init__(self, cin, planes, stride, csg, slice_shape, code_size):
        super().__init__()
        if csg is not None:
            self.CSG = csg
            self.gen1 = GeneratedConv(cin, planes, stride, 1, slice_shape)
            self.code1 = new_codes(cin, planes, slice_shape, code_size)
        else:
            self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def generated(self):
        return [("conv1.weight", self.gen1, self.code1)]

    def forward(self, x):
        y = self.gen1.run(x, self.CSG, self.code1) if hasattr(self, "CSG") else self.conv1(x)
        y = self.bn2(self.conv2(F.relu(self.bn1(y))))
        skip = self.downsample(x) if hasattr(self, "downsample") else x
        return F.relu(y + skip)


class ImageNetResNet(nn.Module):
    def __init__(self, block, layers, classes, slice_shape, code_size, org, in_channels=3):
        super().__init__()
        csg = None if org else nn.Linear(code_size, math.prod(slice_shape), bias=False)
        if csg is not None:
            self.CSG = csg
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, (count, planes) in enumerate(zip(layers, [64, 128, 256, 512]), start=1):
            blocks = []
            for j in range(count):
                blocks.append(block(cin, planes, 2 if (i > 1 and j == 0) else 1, csg, slice_shape, code_size))
                cin = planes * block.expansion
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for i in (1, 2, 3, 4):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


IMAGENET_LAYOUTS = {
    "csg-resnet18": (ImageNetBottleneck, [2, 2, 2, 2]),
    "csg-resnet50": (ImageNetBottleneck, [3, 4, 6, 3]),
    "csg-resnet101": (ImageNetBottleneck, [3, 4, 23, 3]),
    "csg-resnet152": (ImageNetBottleneck, [3, 8, 36, 3]),
    "csg-resnet18-basic": (ImageNetBasicFirstGenerated, [2, 2, 2, 2]),
}
DEFAULT_SLICE = {"csg-resnet": ([12, 12, 3, 3], 72), "csg-densenet": ([12, 12, 3, 3], 72)}


def build(arch, depth=None, width=None, classes=10, slice_shape=None, code_size=None, org=False, in_channels=3):
    default_slice, default_code = DEFAULT_SLICE.get(arch, ([16, 16, 3, 3], 128))
    slice_shape = slice_shape or default_slice
    code_size = code_size or default_code
    if arch == "csg-resnet":
        return CifarResNet(depth or 56, classes, slice_shape, code_size, org, in_channels)
    if arch == "csg-densenet":
        return DenseNetBC(depth or 40, width or 48, classes, slice_shape, code_size, org, in_channels)
    block, layers = IMAGENET_LAYOUTS[arch]
    return ImageNetResNet(block, layers, classes, slice_shape, code_size, org, in_channels)


def count(model, trainable_only=False):
    """Unique parameters (model.parameters() de-duplicates the shared CSG), as main.py counts them."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def parts(model):
    """(generator, codes, rest) parameter counts."""
    named = dict(model.named_parameters())
    gen = sum(p.numel() for n, p in named.items() if n == "CSG.weight")
    codes = sum(p.numel() for n, p in named.items() if n.split(".")[-1] in ("code", "code1", "code2"))
    return gen, codes, count(model) - gen - codes


# (description, build kwargs, expected count) from associative.md §3.
SPEC_COUNTS = [
    ("ResNet-20 baseline", dict(arch="csg-resnet", depth=20, org=True), 269_722),
    ("ResNet-20 CSG [16,16,3,3]-72", dict(arch="csg-resnet", depth=20, slice_shape=[16, 16, 3, 3], code_size=72), 176_698),
    ("ResNet-20 CSG [12,12,3,3]-72", dict(arch="csg-resnet", depth=20), 115_426),
    ("ResNet-20 CSG [16,16,3,3]-128", dict(arch="csg-resnet", depth=20, slice_shape=[16, 16, 3, 3], code_size=128), 312_218),
    ("ResNet-56 baseline", dict(arch="csg-resnet", depth=56, org=True), 853_018),
    ("ResNet-56 CSG [12,12,3,3]-72", dict(arch="csg-resnet", depth=56), 160_450),
    ("ResNet-56 CSG [16,16,3,3]-128", dict(arch="csg-resnet", depth=56, slice_shape=[16, 16, 3, 3], code_size=128), 347_162),
    ("ResNet-110 baseline", dict(arch="csg-resnet", depth=110, org=True), 1_727_962),
    ("ResNet-110 CSG [12,12,3,3]-72", dict(arch="csg-resnet", depth=110), 227_986),
    ("DenseNet-BC-40-36 baseline", dict(arch="csg-densenet", depth=40, width=36, org=True), 1_542_682),
    ("DenseNet-BC-40-36 CSG [12,12,3,3]-72", dict(arch="csg-densenet", depth=40, width=36), 842_842),
    ("DenseNet-BC-40-48 baseline", dict(arch="csg-densenet", depth=40, width=48, org=True), 2_733_130),
    ("DenseNet-BC-40-48 CSG [12,12,3,3]-72", dict(arch="csg-densenet", depth=40, width=48), 1_416_394),
    ("ImageNet ResNet-50 baseline", dict(arch="csg-resnet50", classes=1000, org=True), 25_557_032),
    ("ImageNet ResNet-50 CSG [16,16,3,3]-128", dict(arch="csg-resnet50", classes=1000), 15_163_432),
    ("ImageNet 'ResNet-18' = Bottleneck[2,2,2,2] baseline", dict(arch="csg-resnet18", classes=1000, org=True), 15_995_176),
    ("ImageNet 'ResNet-18' = Bottleneck[2,2,2,2] CSG", dict(arch="csg-resnet18", classes=1000), 10_371_368),
    ("ImageNet BasicBlock2 resnet18 baseline", dict(arch="csg-resnet18-basic", classes=1000, org=True), 11_689_512),
    ("ImageNet BasicBlock2 resnet18 CSG", dict(arch="csg-resnet18-basic", classes=1000), 7_527_976),
    ("ImageNet ResNet-101 baseline", dict(arch="csg-resnet101", classes=1000, org=True), 44_549_160),
    ("ImageNet ResNet-101 CSG", dict(arch="csg-resnet101", classes=1000), 24_685_608),
]
# Breakdowns the spec gives: (description, build kwargs, (generator, codes)).
SPEC_PARTS = [
    ("ResNet-20 CSG [16,16,3,3]-72", dict(arch="csg-resnet", depth=20, slice_shape=[16, 16, 3, 3], code_size=72), (165_888, 8_352)),
    ("ResNet-56 CSG [12,12,3,3]-72", dict(arch="csg-resnet", depth=56), (93_312, 61_992)),
    ("ResNet-56 CSG [16,16,3,3]-128", dict(arch="csg-resnet", depth=56, slice_shape=[16, 16, 3, 3], code_size=128), (294_912, 47_104)),
    ("DenseNet-BC-40-36 CSG", dict(arch="csg-densenet", depth=40, width=36), (93_312, 46_656)),
    ("DenseNet-BC-40-48 CSG", dict(arch="csg-densenet", depth=40, width=48), (93_312, 82_944)),
]
# Not in the spec: counted here, held by the Rust unit tests.
EXTRA_COUNTS = [
    ("ResNet-32 baseline", dict(arch="csg-resnet", depth=32, org=True)),
    ("ResNet-32 CSG [12,12,3,3]-72", dict(arch="csg-resnet", depth=32)),
    ("ResNet-44 CSG [12,12,3,3]-72", dict(arch="csg-resnet", depth=44)),
    ("ResNet-56 CSG [16,16,3,3]-72", dict(arch="csg-resnet", depth=56, slice_shape=[16, 16, 3, 3], code_size=72)),
    ("ResNet-110 CSG [16,16,3,3]-128", dict(arch="csg-resnet", depth=110, slice_shape=[16, 16, 3, 3], code_size=128)),
    ("ResNet-20 CSG [12,12,3,3]-72, 1 input channel", dict(arch="csg-resnet", depth=20, in_channels=1)),
    ("ResNet-20 CSG [12,12,3,3]-72, 100 classes", dict(arch="csg-resnet", depth=20, classes=100)),
    ("DenseNet-BC-40-12 CSG [12,12,3,3]-72", dict(arch="csg-densenet", depth=40, width=12)),
    ("DenseNet-BC-100-12 baseline", dict(arch="csg-densenet", depth=100, width=12, org=True)),
    ("DenseNet-BC-100-12 CSG [12,12,3,3]-72", dict(arch="csg-densenet", depth=100, width=12)),
    ("DenseNet-BC-40-48 CSG [16,16,3,3]-128", dict(arch="csg-densenet", depth=40, width=48, slice_shape=[16, 16, 3, 3], code_size=128)),
    ("DenseNet-BC-40-36 CSG [16,16,3,3]-72", dict(arch="csg-densenet", depth=40, width=36, slice_shape=[16, 16, 3, 3], code_size=72)),
    ("ImageNet ResNet-152 baseline", dict(arch="csg-resnet152", classes=1000, org=True)),
    ("ImageNet ResNet-152 CSG", dict(arch="csg-resnet152", classes=1000)),
    ("ImageNet ResNet-50 CSG [12,12,3,3]-72", dict(arch="csg-resnet50", classes=1000, slice_shape=[12, 12, 3, 3], code_size=72)),
]


def self_check():
    ok = True
    for desc, kw, want in SPEC_COUNTS:
        got = count(build(**kw))
        ok &= got == want
        print(f"{desc:55} {got:>12,}  spec {want:>12,}  {'ok' if got == want else 'FAIL'}")
    for desc, kw, (gen, codes) in SPEC_PARTS:
        g, c, rest = parts(build(**kw))
        passed = (g, c) == (gen, codes)
        ok &= passed
        print(f"{desc:55} generator {g:,} codes {c:,} rest {rest:,}  spec {gen:,} / {codes:,}  "
              f"{'ok' if passed else 'FAIL'}")
    # A frozen generator (reused or binary) leaves the rest trainable (§3.1, §3.2).
    for desc, kw, want in [("ResNet-56 [12,12]-72, frozen generator", dict(arch="csg-resnet", depth=56), 67_138),
                           ("DenseNet-BC-40-48, frozen (binary) generator", dict(arch="csg-densenet"), 1_323_082)]:
        m = build(**kw)
        m.CSG.weight.requires_grad_(False)
        got = count(m, trainable_only=True)
        ok &= got == want
        print(f"{desc:55} {got:>12,}  spec {want:>12,}  {'ok' if got == want else 'FAIL'}")
    print("\nnot in the spec (independent counts for the Rust tests):")
    for desc, kw in EXTRA_COUNTS:
        m = build(**kw)
        g, c, rest = parts(m)
        print(f"{desc:55} {count(m):>12,}  (generator {g:,}, codes {c:,}, rest {rest:,})")
    print("PASS" if ok else "FAIL")
    return ok


def relative(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def crosscheck(d):
    cfg = json.loads((d / "config.json").read_text())
    io = load_file(str(d / "io.safetensors"))
    kw = dict(arch=cfg["arch"], depth=cfg.get("depth"), width=cfg.get("width"), classes=cfg["num_classes"],
              slice_shape=cfg["slice"], code_size=cfg["code_size"], in_channels=cfg["in_channels"])
    model = build(**kw)
    model.load_state_dict(load_file(str(d / "weights.safetensors")), strict=True)
    ok = True
    g, c, rest = parts(model)
    print(f"{cfg['arch']} {json.dumps({k: v for k, v in cfg.items() if k != 'arch'})}: "
          f"{count(model):,} parameters (generator {g:,}, codes {c:,}, rest {rest:,}); convtrain says "
          f"{cfg['num_parameters']:,}")
    ok &= count(model) == cfg["num_parameters"]

    with torch.no_grad():
        kernels = []
        for name, module in model.named_modules():
            if hasattr(module, "generated"):
                for conv_name, gen, codes in module.generated():
                    kernels.append((f"{name}.{conv_name}", gen.kernel(model.CSG, codes)))
        worst = 0.0
        for name, k in kernels:
            theirs = io[f"kernel.{name}"]
            if theirs.shape != k.shape:
                print(f"  kernel {name}: shape {list(theirs.shape)} vs {list(k.shape)}  FAIL")
                ok = False
                continue
            worst = max(worst, (theirs - k).abs().max().item())
        n_io = sum(1 for n in io if n.startswith("kernel."))
        passed = worst <= KERNEL_TOLERANCE and n_io == len(kernels)
        ok &= passed
        print(f"  {len(kernels)} generated kernels (convtrain wrote {n_io}): max |diff| {worst:.3e}  "
              f"{'ok' if passed else 'FAIL'} (tolerance {KERNEL_TOLERANCE:g})")

        x = io["input"]
        for mode in ("eval", "train"):
            model.train(mode == "train")
            ours = model(x)
            theirs = io[f"logits_{mode}"]
            rel = relative(theirs, ours)
            passed = rel <= TOLERANCE
            ok &= passed
            print(f"  logits ({mode:5} mode): max |diff| {(theirs - ours).abs().max().item():.3e}, relative "
                  f"{rel:.3e}  {'ok' if passed else 'FAIL'} (tolerance {TOLERANCE:g})")

        plain_path = d / "materialized.safetensors"
        if plain_path.exists():
            plain = build(**kw, org=True)
            plain.load_state_dict(load_file(str(plain_path)), strict=True)
            plain.eval()
            rel = relative(plain(x), io["logits_eval"])
            passed = rel <= TOLERANCE
            ok &= passed
            print(f"  materialized baseline ({count(plain):,} parameters) vs the CSG model's eval logits: relative "
                  f"{rel:.3e}  {'ok' if passed else 'FAIL'}")
    print("PASS" if ok else "FAIL")
    return ok


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    ok = self_check() if sys.argv[1] == "--self-check" else crosscheck(Path(sys.argv[1]))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
