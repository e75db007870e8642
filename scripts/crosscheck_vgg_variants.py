"""Independent generator of the VGG feature-amount sweep's variants (vgg_features.md §2), written from the
spec in numpy the way the original computes it (np.arange sample grids, trapezoid rule with the grid's own
spacings, numpy's pairwise sums), for comparison with convtrain's plain-float64 generator.

Usage: crosscheck_vgg_variants.py --vgg-depth D [--classes K] [--patch-size P]
Prints the variants as JSON: [{"id", "xi", "omega", "alpha", "widths", "parameters", "trainable"}, ...],
"parameters" the original CSV's figure (§2.5), "trainable" the count of the §2.9 model with BN (3 input
channels, K classes, P×P input).
"""
import argparse
import json
import math

import numpy as np


def trapezoid(y, x):
    """The trapezoid rule as numpy's trapz computes it: spacings from x, one pairwise sum."""
    d = np.diff(x)
    return float((d * (y[1:] + y[:-1]) / 2.0).sum())


def generate(vgg_depth, classes, patch):
    if (vgg_depth - 7) % 3 != 0 or vgg_depth < 10:
        raise SystemExit(f"invalid depth {vgg_depth}")
    per_block = (vgg_depth - 7) // 3
    hidden = 4096 if patch > 100 else 512
    reference = [64, 64, 128, 128] + [256] * per_block + [512] * (2 * per_block) + [hidden, hidden]
    bins = len(reference)
    budget = sum(reference)
    erf = np.vectorize(math.erf)
    x = np.arange(0, bins, 0.01)
    found = []
    for xi in np.arange(0, bins + 1, 1.0):
        for omega in np.arange(0, 5.5 + 0.5, 0.5):
            for alpha in np.arange(-40, 40 + 4, 4):
                if omega == 0:
                    continue
                scaled = (x - xi) / omega
                density = 2.0 / omega * np.exp(-scaled**2 / 2) / math.sqrt(2 * math.pi) * 0.5 * (1 + erf(alpha * scaled / math.sqrt(2)))
                areas = [trapezoid(density[int(k * 100):int((k + 1) * 100)], np.arange(k, k + 1, 0.01)) for k in range(bins)]
                if sum(areas) <= 0.95:
                    continue
                widths = [int(math.ceil(a * budget)) for a in areas]
                if min(widths) < 2:
                    continue
                found.append({
                    "id": len(found) + 1,
                    "xi": float(xi),
                    "omega": float(omega),
                    "alpha": float(alpha),
                    "widths": widths,
                    "parameters": csv_parameters(widths, classes),
                    "trainable": model_parameters(widths, per_block, classes, patch),
                })
    return found


def layer_shapes(widths, per_block):
    """(in, out) of each conv of the 2-2-L-L-L layout, then of the three linear layers."""
    blocks = [2, 2, per_block, per_block, per_block]
    convs, start, cin = [], 0, 3
    for n in blocks:
        for w in widths[start:start + n]:
            convs.append((cin, w))
            cin = w
        start += n
    return convs, cin


def csv_parameters(widths, classes):
    convs, last = layer_shapes(widths, (len(widths) - 6) // 3)
    fc1, fc2 = widths[-2], widths[-1]
    return sum(9 * a * b for a, b in convs) + last * fc1 + fc1 * fc2 + fc2 * classes


def model_parameters(widths, per_block, classes, patch):
    convs, last = layer_shapes(widths, per_block)
    side = patch
    for _ in range(5):
        side //= 2
    fc1, fc2 = widths[-2], widths[-1]
    total = sum(9 * a * b + 2 * b for a, b in convs)
    total += last * side * side * fc1 + 2 * fc1 + fc1 * fc2 + 2 * fc2
    return total + fc2 * classes + classes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vgg-depth", type=int, required=True)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--patch-size", type=int, default=32)
    a = parser.parse_args()
    print(json.dumps(generate(a.vgg_depth, a.classes, a.patch_size)))


if __name__ == "__main__":
    main()
