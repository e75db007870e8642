#!/usr/bin/env python3
"""Cross-checks convtrain's vgg-features network against an independent PyTorch implementation of
spec/vgg_features.md §2.9.

    target/release/examples/vgg_features_dump DIR WIDTHS NUM_CLASSES
    $CONVTRAIN_TORCH_HOME/bin/python scripts/crosscheck_vgg_features.py DIR

DIR/weights.safetensors holds the weights under the authors' VGG.state_dict() keys (BN
num_batches_tracked included) and is loaded with strict=True, so names and shapes must match exactly.
DIR/io.safetensors holds `widths`, `num_classes`, the input, convtrain's logits in eval mode and in train
mode (batch statistics; dropout drawn right after torch.manual_seed(DROPOUT_SEED), as this script
draws it), and the BN running statistics after that training-mode pass. Checks, each printed:
  - the parameter count = §2.5's "Parameters" formula + BN γ/β + the output bias;
  - eval-mode and train-mode logits within 1e-4 relative (max |a-b| / max |b|);
  - the running statistics after one training-mode pass (momentum 0.1, unbiased variance) within 1e-5.
Exit status 1 if any check fails.
"""
import sys
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

TOLERANCE = 1e-4
BN_EPS = 1e-4
DROPOUT_SEED = 77


def conv_unit(index, cin, cout):
    """conv{index} 3x3/p1 without bias -> bn{index} (eps 1e-4) -> act{index}, as one named Sequential."""
    return nn.Sequential(OrderedDict([
        (f"conv{index}", nn.Conv2d(cin, cout, 3, padding=1, bias=False)),
        (f"bn{index}", nn.BatchNorm2d(cout, eps=BN_EPS)),
        (f"act{index}", nn.ReLU()),
    ]))


def linear_unit(index, fan_in, fan_out):
    return nn.Sequential(OrderedDict([
        (f"fc{index}", nn.Linear(fan_in, fan_out, bias=False)),
        (f"bn{index}", nn.BatchNorm1d(fan_out, eps=BN_EPS)),
        (f"act{index}", nn.ReLU()),
    ]))


class Wrapped(nn.Module):
    """Holds `inner` under the attribute name `name` (the original's one-member wrapper modules)."""

    def __init__(self, name, inner):
        super().__init__()
        setattr(self, name, inner)
        self.inner_name = name

    def forward(self, x):
        return getattr(self, self.inner_name)(x)


class SweepVGG(nn.Module):
    """features.block{1..5}.block.conv_layer{l}.convlayer.*, classifier.0.fc_block.* (vgg_features.md §2.9)."""

    def __init__(self, widths, classes, channels=3, side=32):
        super().__init__()
        per_block = (len(widths) + 1 - 7) // 3
        convs, hidden = widths[:-2], widths[-2:]
        blocks, start, cin = OrderedDict(), 0, channels
        for b, count in enumerate([2, 2, per_block, per_block, per_block]):
            layers = OrderedDict()
            for l in range(count):
                layers[f"conv_layer{l + 1}"] = Wrapped("convlayer", conv_unit(l + 1, cin, convs[start + l]))
                cin = convs[start + l]
            layers["mp"] = nn.MaxPool2d(2, 2)
            blocks[f"block{b + 1}"] = Wrapped("block", nn.Sequential(layers))
            start += count
        self.features = nn.Sequential(blocks)
        flat = cin * (side // 32) ** 2
        fc = OrderedDict([
            ("fc_layer0", Wrapped("fclayer", linear_unit(1, flat, hidden[0]))),
            ("fc_layer1", Wrapped("fclayer", linear_unit(2, hidden[0], hidden[1]))),
            ("dropout", nn.Dropout(0.5)),
            ("final_layer", nn.Linear(hidden[1], classes)),
        ])
        self.classifier = nn.Sequential(Wrapped("fc_block", nn.Sequential(fc)))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def section_2_5_parameters(widths, classes):
    """The original CSV's "Parameters": weights only, 3 input channels, 1x1 before the classifier."""
    fans = [3] + widths
    convs = len(widths) - 2
    total = sum(9 * fans[i] * fans[i + 1] for i in range(convs))
    return total + widths[-3] * widths[-2] + widths[-2] * widths[-1] + widths[-1] * classes


def relative(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = Path(sys.argv[1])
    io = load_file(str(d / "io.safetensors"))
    widths = [int(w) for w in io["widths"]]
    classes = int(io["num_classes"])
    model = SweepVGG(widths, classes)
    model.load_state_dict(load_file(str(d / "weights.safetensors")), strict=True)
    ok = True

    count = sum(p.numel() for p in model.parameters())
    want = section_2_5_parameters(widths, classes) + 2 * sum(widths) + classes
    print(f"vgg-features {widths}, {classes} classes: {count} parameters (§2.5 + BN + bias: {want})")
    ok &= count == want

    x = io["input"]
    with torch.no_grad():
        for mode in ("eval", "train"):
            model.train(mode == "train")
            torch.manual_seed(DROPOUT_SEED)
            ours = model(x)
            theirs = io[f"logits_{mode}"]
            rel = relative(theirs, ours)
            passed = rel <= TOLERANCE
            ok &= passed
            print(f"  logits ({mode:5} mode): max |diff| {(theirs - ours).abs().max().item():.3e}, "
                  f"relative {rel:.3e}  {'ok' if passed else 'FAIL'} (tolerance {TOLERANCE:g})")
    state = model.state_dict()
    worst = max((io[k] - state[k.removeprefix("after_train.")]).abs().max().item()
                for k in io if k.startswith("after_train."))
    passed = worst <= 1e-5
    ok &= passed
    print(f"  BN running statistics after one training pass: max |diff| {worst:.3e}  {'ok' if passed else 'FAIL'}")
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
