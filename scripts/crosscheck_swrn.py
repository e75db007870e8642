#!/usr/bin/env python3
"""Cross-checks convtrain's SWRN against an independent PyTorch implementation of spec/swrn.md §2-3.

    cargo run --release --example swrn_dump -- DIR [DEPTH WIDTH BANK_SIZE NUM_CLASSES]
    $CONVTRAIN_TORCH_HOME/bin/python scripts/crosscheck_swrn.py DIR

DIR/weights.safetensors holds the weights under the authors' state_dict() keys and is loaded with
strict=True, so the key set (template aliases and num_batches_tracked included) must match exactly.
DIR/io.safetensors holds the input, convtrain's logits in eval and train mode, and orthogonal
matrices drawn after tch::manual_seed(1234). Checks, each printed with its numbers:
  - parameter count = swrn.md §3's closed formula;
  - eval-mode and train-mode logits within 1e-4 relative (max |a-b| / max |b|);
  - convtrain's orthogonal(R, C) equals torch.nn.init.orthogonal_ under torch.manual_seed(1234).
Exit status 1 if any check fails.
"""
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

TOLERANCE = 1e-4


class SharedKernels(nn.Module):
    """k kernels (k, out, in, ks, ks); a layer's kernel is their α-weighted sum (swrn.md §2)."""

    def __init__(self, k, channels_in, channels_out, ks):
        super().__init__()
        self.templates = nn.Parameter(torch.empty(k, channels_out, channels_in, ks, ks))
        for j in range(k):
            nn.init.kaiming_normal_(self.templates.data[j])

    def forward(self, alpha):
        # The original's formulation (swrn.md §2, layers.py:14-15): broadcast, multiply, sum over k.
        # (An einsum computes the same kernel up to rounding; it was measured 10 % slower per
        # SWRN-16-4-2 training step on an AVX2 AMD EPYC, so the bench would time something else.)
        return (self.templates * alpha.reshape(-1, 1, 1, 1, 1)).sum(0)


class MixedConv(nn.Module):
    """3x3 conv, stride 1, padding 1, no bias, kernel from the shared bank (registered as `bank`)."""

    def __init__(self, bank):
        super().__init__()
        self.bank = bank
        k = bank.templates.shape[0]
        self.coefficients = nn.Parameter(torch.zeros(k, 1, 1, 1, 1))

    def forward(self, x):
        return F.conv2d(x, self.bank(self.coefficients), stride=1, padding=1)


class PreActBlock(nn.Module):
    def __init__(self, cin, cout, stride, bank=None):
        super().__init__()
        if bank is not None:
            self.bank = bank
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = MixedConv(bank) if bank is not None else nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = MixedConv(bank) if bank is not None else nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.convShortcut = nn.Conv2d(cin, cout, 1, stride, 0, bias=False) if cin != cout else None

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        y = self.conv2(F.relu(self.bn2(self.conv1(pre))))
        return y + (x if self.convShortcut is None else self.convShortcut(pre))


class SWRN(nn.Module):
    def __init__(self, depth, width, k, classes):
        super().__init__()
        assert (depth - 4) % 6 == 0
        n = (depth - 4) // 6
        ch = [16, 16 * width, 32 * width, 64 * width]
        self.conv_3x3 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        for s in (1, 2, 3):
            bank = SharedKernels(k, ch[s], ch[s], 3)
            setattr(self, f"bank_{s}", bank)
            blocks = [PreActBlock(ch[s - 1], ch[s], 1 if s == 1 else 2)]
            blocks += [PreActBlock(ch[s], ch[s], 1, bank) for _ in range(n - 1)]
            setattr(self, f"stage_{s}", nn.Sequential(*blocks))
        self.lastact = nn.Sequential(nn.BatchNorm2d(ch[3]), nn.ReLU())
        self.classifier = nn.Linear(ch[3], classes)

    def forward(self, x):
        x = self.stage_3(self.stage_2(self.stage_1(self.conv_3x3(x))))
        x = F.avg_pool2d(self.lastact(x), 8).flatten(1)
        return self.classifier(x)


def formula_count(depth, width, k, classes):
    """swrn.md §3: P = 464 + (3008 + 448(N-1) + 64K)w + (25600 + 48384(k+1))w^2 + 6k(N-1) + K."""
    n = (depth - 4) // 6
    p = 464 + (3008 + 448 * (n - 1) + 64 * classes) * width + (25600 + 48384 * (k + 1)) * width**2
    p += 6 * k * (n - 1) + classes
    return p - 256 if width == 1 else p


def relative(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = Path(sys.argv[1])
    io = load_file(str(d / "io.safetensors"))
    depth, width, k, classes = (int(v) for v in io["config"])
    model = SWRN(depth, width, k, classes)
    model.load_state_dict(load_file(str(d / "weights.safetensors")), strict=True)
    ok = True

    count = sum(p.numel() for p in model.parameters())
    want = formula_count(depth, width, k, classes)
    print(f"SWRN-{depth}-{width}-{k}, {classes} classes: {count} parameters (swrn.md §3 formula: {want})")
    ok &= count == want

    x = io["input"]
    with torch.no_grad():
        for mode in ("eval", "train"):
            model.train(mode == "train")
            ours = model(x)
            theirs = io[f"logits_{mode}"]
            rel = relative(theirs, ours)
            max_abs = (theirs - ours).abs().max().item()
            passed = rel <= TOLERANCE
            ok &= passed
            print(f"  logits ({mode:5} mode): max |diff| {max_abs:.3e}, relative {rel:.3e}  "
                  f"{'ok' if passed else 'FAIL'} (tolerance {TOLERANCE:g})")

    for name in sorted(n for n in io if n.startswith("orthogonal_")):
        rows, cols = (int(v) for v in name.removeprefix("orthogonal_").split("x"))
        torch.manual_seed(1234)
        ref = nn.init.orthogonal_(torch.empty(rows, cols))
        diff = (io[name] - ref).abs().max().item()
        passed = diff <= 1e-6
        ok &= passed
        print(f"  orthogonal({rows}, {cols}) vs torch.nn.init.orthogonal_: max |diff| {diff:.3e}  "
              f"{'ok' if passed else 'FAIL'}")

    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
