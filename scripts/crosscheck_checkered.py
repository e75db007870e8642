#!/usr/bin/env python3
"""Cross-checks convtrain's checkered layers against an independent PyTorch implementation.

The PyTorch side is written from the specification of the original CheckeredConv2d /
CheckeredMaxpool2d / CheckeredAvgPool2d (shared/spec/checkered.md §2.3): zero-pad H and W by p, then
for stride 2 run the 3-D op (kernel (D, k, k), stride (1, 2, 2), no padding) on four shifted copies
y_ul, y_dr, y_ur, y_dl (shifts up/left by one with an extra zero row/column at the bottom/right);
submap i keeps (y_ul, y_dr) under sampler 0 and (y_ur, y_dl) under sampler 1, and the outputs are
stacked tops first, then bottoms. A second formulation (one stride-1 op on the input padded p
top/left and p+1 bottom/right, then strided slicing) is checked against the first.

Usage (from the repository root; builds and runs examples/checkered_dump.rs):
    source scripts/env.sh && $CONVTRAIN_TORCH_HOME/bin/python scripts/crosscheck_checkered.py
or, on an existing dump:  ... crosscheck_checkered.py --dump DIR
Exits 1 when any output or gradient differs by more than --tol (default 1e-5).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F
from safetensors.torch import load_file


def op3d(case, w, b):
    k, d, s = case["kernel"], case["depth"], case["stride"]

    def apply(x, stride=s):
        if case["op"] == "conv":
            w5 = w if w.dim() == 5 else w.unsqueeze(2)
            dil = case["dilation"]
            return F.conv3d(x, w5, b, stride=(1, stride, stride), dilation=(dil, dil, dil), groups=case["groups"])
        if case["op"] == "max":
            return F.max_pool3d(x, (d, k, k), stride=(1, stride, stride))
        return F.avg_pool3d(x, (d, k, k), stride=(1, stride, stride), count_include_pad=True)

    return apply


def four_shift_definition(case, x, w, b):
    apply = op3d(case, w, b)
    p = case["padding"]
    if p:
        x = F.pad(x, (p, p, p, p, 0, 0), value=0.0)
    if case["stride"] == 1:
        return apply(x)
    y_ul = apply(x)
    y_dr = apply(F.pad(x[:, :, :, 1:, 1:], (0, 1, 0, 1, 0, 0), value=0.0))
    y_ur = apply(F.pad(x[:, :, :, :, 1:], (0, 1, 0, 0, 0, 0), value=0.0))
    y_dl = apply(F.pad(x[:, :, :, 1:, :], (0, 0, 0, 1, 0, 0), value=0.0))
    tops, bottoms = [], []
    for i, sampler in enumerate(case["samplers"]):
        top, bottom = (y_ul, y_dr) if sampler == 0 else (y_ur, y_dl)
        tops.append(top[:, :, i])
        bottoms.append(bottom[:, :, i])
    return torch.stack(tops + bottoms, 2)


def stride_one_then_slice(case, x, w, b):
    """Z = stride-1 op on the input padded p (top/left) and p+1 (bottom/right); keep Z's kept offsets."""
    p = case["padding"]
    if case["stride"] == 1:
        return op3d(case, w, b)(F.pad(x, (p, p, p, p, 0, 0)), 1)
    z = op3d(case, w, b)(F.pad(x, (p, p + 1, p, p + 1, 0, 0)), 1)
    h = (x.shape[3] + 2 * p - case["dilation"] * (case["kernel"] - 1) - 1) // 2 + 1
    wd = (x.shape[4] + 2 * p - case["dilation"] * (case["kernel"] - 1) - 1) // 2 + 1
    offsets = {0: ((0, 0), (1, 1)), 1: ((0, 1), (1, 0))}
    tops, bottoms = [], []
    for i, sampler in enumerate(case["samplers"]):
        (ty, tx), (by, bx) = offsets[sampler]
        tops.append(z[:, :, i, ty : ty + 2 * h : 2, tx : tx + 2 * wd : 2])
        bottoms.append(z[:, :, i, by : by + 2 * h : 2, bx : bx + 2 * wd : 2])
    return torch.stack(tops + bottoms, 2)


def run_dump(out_dir):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = ["cargo", "run", "--release", "--quiet", "--example", "checkered_dump", "--", out_dir]
    subprocess.run(cmd, cwd=root, check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", help="directory with checkered.safetensors and cases.json (default: run the Rust dumper)")
    ap.add_argument("--tol", type=float, default=1e-5)
    args = ap.parse_args()
    tmp = None
    if args.dump is None:
        tmp = tempfile.TemporaryDirectory()
        run_dump(tmp.name)
        args.dump = tmp.name
    tensors = load_file(os.path.join(args.dump, "checkered.safetensors"))
    with open(os.path.join(args.dump, "cases.json")) as f:
        cases = json.load(f)

    failures = 0
    print(f"{'case':34} {'shape out':22} {'|Δy|':>9} {'|Δgx|':>9} {'|Δgw|':>9} {'|Δgb|':>9} {'|Δ 2nd def|':>11}")
    for case in cases:
        t = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.split(".", 1)[0] == case["name"]}
        x = t["x"].clone().requires_grad_(True)
        w = t["w"].clone().requires_grad_(True) if "w" in t else None
        b = t["b"].clone().requires_grad_(True) if "b" in t else None
        y = four_shift_definition(case, x, w, b)
        y2 = stride_one_then_slice(case, x, w, b)
        params = [v for v in (x, w, b) if v is not None]
        grads = torch.autograd.grad((y * t["r"]).sum(), params)
        diffs = {"y": (y - t["y"]).abs().max().item() if y.shape == t["y"].shape else float("inf")}
        diffs["gx"] = (grads[0] - t["gx"]).abs().max().item()
        diffs["gw"] = (grads[1] - t["gw"]).abs().max().item() if w is not None else None
        diffs["gb"] = (grads[2] - t["gb"]).abs().max().item() if b is not None else None
        diffs["def2"] = (y - y2).abs().max().item()
        bad = [k for k, v in diffs.items() if v is not None and not v <= args.tol]
        if case["name"] == "avgpool2_s2_ones_4x4":
            want = torch.tensor([[[1.0, 1.0], [1.0, 1.0]], [[1.0, 0.5], [0.5, 0.25]]])
            if not torch.equal(t["y"][0, 0], want):
                bad.append("spec example")
        failures += bool(bad)
        cell = lambda v: f"{v:9.2e}" if v is not None else f"{'-':>9}"
        print(
            f"{case['name']:34} {str(tuple(t['y'].shape)):22} {cell(diffs['y'])} {cell(diffs['gx'])} "
            f"{cell(diffs['gw'])} {cell(diffs['gb'])} {diffs['def2']:11.2e}" + (f"  FAIL {bad}" if bad else "")
        )
    print(f"{len(cases) - failures}/{len(cases)} cases agree within {args.tol:g}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
