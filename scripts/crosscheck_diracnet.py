#!/usr/bin/env python3
"""Cross-checks convtrain's DiracNet against an independent PyTorch implementation of spec/diracnet.md §2-4.

    $CONVTRAIN_TORCH_HOME/bin/python scripts/crosscheck_diracnet.py --self-check
    cargo run --release --example diracnet_dump -- DIR [cifar|imagenet DEPTH WIDTH NUM_CLASSES IN_CHANNELS SIZE]
    $CONVTRAIN_TORCH_HOME/bin/python scripts/crosscheck_diracnet.py DIR

The model here is functional, like the authors' `define_diracnet`: one flat dict of tensors named as in
their code (`conv`, `bn.weight`, `group0.block0.conv`, `group0.block0.alpha`, `group0.block0.bn.running_var`,
`fc.weight`, ...) plus one constant Dirac delta per weight shape (`eye64_64_3_3`). The folded network is an
`nn.Module` with the authors' folded `state_dict` names (`features.conv.weight`,
`features.group0.block0.conv.bias`, `fc.weight`, ...).

--self-check (no convtrain needed): parameter counts against the table of diracnet.md §3.5, the Dirac
identity (α = 1, β = 0 gives conv(x) = x in 1-D, 2-D and 3-D), and this script's own folding (§4) against
its unfolded model on random weights with non-trivial BatchNorm statistics.

DIR (written by examples/diracnet_dump.rs):
  - weights.safetensors: convtrain's model in the authors' names (`export --format pytorch`); the key set
    must equal this implementation's exactly (the `eye*` deltas may be absent; if present they must be
    the dirac_ tensors);
  - folded.safetensors: convtrain's `export --materialize` result; loaded into the folded module with
    load_state_dict(strict=True);
  - io.safetensors: `config` = [imagenet 0|1, depth, width, num_classes, in_channels] (int64), `input`,
    and convtrain's `logits_eval`, `logits_train` (batch statistics) and `logits_folded`.
Checks, each printed with its numbers: parameter count; eval- and train-mode logits; this script's fold of
convtrain's weights against convtrain's folded logits; convtrain's folded weights in the folded module.
All within 1e-4 relative (max |a-b| / max |b|). Exit status 1 if any check fails.
"""
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

TOLERANCE = 1e-4
BN_EPS = 1e-5

# diracnet.md §3.3: Dirac blocks per group are twice these.
IMAGENET_GROUPS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def eye_name(shape):
    """The key of the shared delta for a weight shape (diracnet.md §2.1)."""
    return "eye" + "_".join(str(int(s)) for s in shape)


def dirac_delta(shape):
    return nn.init.dirac_(torch.empty(*shape))


def new_bn(params, prefix, channels):
    """HEAD's bnparams: γ ~ U[0,1), β = 0, running mean 0, running var 1 (diracnet.md §3.4)."""
    params[f"{prefix}.weight"] = torch.rand(channels)
    params[f"{prefix}.bias"] = torch.zeros(channels)
    params[f"{prefix}.running_mean"] = torch.zeros(channels)
    params[f"{prefix}.running_var"] = torch.ones(channels)


def geometry(imagenet, depth, width):
    """(group widths, Dirac blocks per group), or ValueError for a depth the original cannot build."""
    if imagenet:
        if depth not in IMAGENET_GROUPS:
            raise ValueError(f"ImageNet DiracNet depth must be 18 or 34, got {depth}")
        return [64 * width, 128 * width, 256 * width, 512 * width], [2 * b for b in IMAGENET_GROUPS[depth]]
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"CIFAR DiracNet depth must be 6n+4, got {depth}")
    n = (depth - 4) // 6
    return [16 * width, 32 * width, 64 * width], [2 * n] * 3


def define_diracnet(imagenet, depth, width, num_classes, in_channels=3):
    """Returns (forward(x, params, train), params) for diracnet.md §3.2 (CIFAR) or §3.3 (ImageNet)."""
    widths, blocks = geometry(imagenet, depth, width)
    params = {}
    stem_k = 7 if imagenet else 3
    params["conv"] = nn.init.kaiming_normal_(torch.empty(widths[0], in_channels, stem_k, stem_k))
    new_bn(params, "bn", widths[0])
    cin = widths[0]
    for g, (cout, count) in enumerate(zip(widths, blocks)):
        for b in range(count):
            base = f"group{g}.block{b}"
            params[f"{base}.conv"] = nn.init.kaiming_normal_(torch.empty(cout, cin, 3, 3))
            params[f"{base}.alpha"] = torch.full((cout,), 1.0)
            params[f"{base}.beta"] = torch.full((cout,), 0.1)
            new_bn(params, f"{base}.bn", cout)
            cin = cout
    params["fc.weight"] = nn.init.kaiming_normal_(torch.empty(num_classes, widths[-1]))
    params["fc.bias"] = torch.zeros(num_classes)
    for key in [k for k in params if ".conv" in k]:
        params[eye_name(params[key].shape)] = dirac_delta(params[key].shape)

    def bn(x, p, prefix, train):
        return F.batch_norm(x, p[f"{prefix}.running_mean"], p[f"{prefix}.running_var"], p[f"{prefix}.weight"],
                            p[f"{prefix}.bias"], training=train, momentum=0.1, eps=BN_EPS)

    def forward(x, p, train):
        if imagenet:
            o = bn(F.conv2d(x, p["conv"], stride=2, padding=3), p, "bn", train)
            o = F.max_pool2d(o, 3, 2, 1)
        else:
            o = F.relu(bn(F.conv2d(x, p["conv"], padding=1), p, "bn", train))
        for g, count in enumerate(blocks):
            if g > 0:
                o = F.max_pool2d(o, 2)
            for b in range(count):
                base = f"group{g}.block{b}"
                o = F.conv2d(F.relu(o), dirac_weight(p, base), padding=1)
                o = bn(o, p, f"{base}.bn", train)
        # HEAD: avg_pool2d(relu(o), 8) for CIFAR, o.size(-1) for ImageNet; both are the global average
        # pool at the standard input sizes.
        o = F.avg_pool2d(F.relu(o), o.shape[-1]).flatten(1)
        return F.linear(o, p["fc.weight"], p["fc.bias"])

    return forward, params


def dirac_weight(p, base):
    """Ŵ = diag(β)·normalize(W) + diag(α)·δ, normalize over each output filter (diracnet.md §2.2-2.4)."""
    w = p[f"{base}.conv"]
    w_norm = F.normalize(w.reshape(w.shape[0], -1), p=2, dim=1, eps=1e-12).reshape(w.shape)
    delta = p.get(eye_name(w.shape))
    if delta is None:
        delta = dirac_delta(w.shape)
    return p[f"{base}.beta"].reshape(-1, 1, 1, 1) * w_norm + p[f"{base}.alpha"].reshape(-1, 1, 1, 1) * delta


def trainable(params):
    """What the authors' optimiser sees: every tensor but the running statistics and the deltas."""
    return {k: v for k, v in params.items() if not k.startswith("eye") and "running_" not in k}


def fold(params):
    """diracnet.md §4: BN and the Dirac parameterisation folded into conv weight + bias, in the folded
    module's names (`features.` prefix, `fc` unchanged)."""
    out = {}

    def scale_shift(prefix):
        s = params[f"{prefix}.weight"] / torch.sqrt(params[f"{prefix}.running_var"] + BN_EPS)
        return s, params[f"{prefix}.bias"] - params[f"{prefix}.running_mean"] * s

    s, b = scale_shift("bn")
    out["features.conv.weight"] = params["conv"] * s.reshape(-1, 1, 1, 1)
    out["features.conv.bias"] = b
    for key in params:
        if key.startswith("group") and key.endswith(".conv"):
            base = key[: -len(".conv")]
            s, b = scale_shift(f"{base}.bn")
            out[f"features.{key}.weight"] = dirac_weight(params, base) * s.reshape(-1, 1, 1, 1)
            out[f"features.{key}.bias"] = b
    out["fc.weight"] = params["fc.weight"]
    out["fc.bias"] = params["fc.bias"]
    return out


class FoldedDiracNet(nn.Module):
    """The plain conv+bias / ReLU / max-pool chain (diracnet.md §3.6), for CIFAR as well as ImageNet.

    The authors' module adds `group0.block0.conv` to one nn.Sequential; today's PyTorch refuses dots in
    module names, so the same state_dict keys come from nesting `features.group0.block0.conv` here."""

    def __init__(self, imagenet, depth, width, num_classes, in_channels=3):
        super().__init__()
        widths, blocks = geometry(imagenet, depth, width)
        self.features = nn.Module()
        stem = (7, 2, 3) if imagenet else (3, 1, 1)
        self.features.conv = nn.Conv2d(in_channels, widths[0], stem[0], stride=stem[1], padding=stem[2])
        self.chain = [self.features.conv] + ([nn.MaxPool2d(3, 2, 1)] if imagenet else [])
        cin = widths[0]
        for g, (cout, count) in enumerate(zip(widths, blocks)):
            if g > 0:
                self.chain.append(nn.MaxPool2d(2))
            group = nn.Module()
            setattr(self.features, f"group{g}", group)
            for b in range(count):
                block = nn.Module()
                block.conv = nn.Conv2d(cin, cout, 3, padding=1)
                setattr(group, f"block{b}", block)
                self.chain += [nn.ReLU(), block.conv]
                cin = cout
        self.chain.append(nn.ReLU())
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x):
        for layer in self.chain:
            x = layer(x)
        return self.fc(F.avg_pool2d(x, x.shape[-1]).flatten(1))


def relative(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def report(label, ours, theirs):
    rel = relative(theirs, ours)
    passed = rel <= TOLERANCE
    print(f"  {label}: max |diff| {(theirs - ours).abs().max().item():.3e}, relative {rel:.3e}  "
          f"{'ok' if passed else 'FAIL'} (tolerance {TOLERANCE:g})")
    return passed


def count(params):
    return sum(v.numel() for v in trainable(params).values())


def roughen(forward, params, input_shape):
    """Non-trivial BN statistics (training passes) and 1-D parameters away from their constant init."""
    with torch.no_grad():
        for _ in range(3):
            forward(torch.randn(*input_shape) * 2.0 + 0.5, params, True)
        for k, v in params.items():
            if v.dim() == 1 and "running_" not in k:
                v += torch.randn_like(v) * 0.2


# diracnet.md §3.5 (CIFAR: depth, width, CIFAR-10, CIFAR-100) and the verified ImageNet counts.
CIFAR_TABLE = [
    (16, 1, 173_402, 179_252),
    (34, 1, 466_394, 472_244),
    (34, 2, 1_854_378, 1_865_988),
    (28, 5, 9_124_250, 9_153_140),
    (28, 10, 36_450_090, 36_507_780),
]
IMAGENET_TABLE = [(18, 11_523_368, 11_511_784), (34, 21_638_952, 21_616_232)]


def self_check():
    ok = True
    torch.manual_seed(0)
    print("parameter counts (diracnet.md §3.5):")
    for depth, width, c10, c100 in CIFAR_TABLE:
        for classes, want in ((10, c10), (100, c100)):
            got = count(define_diracnet(False, depth, width, classes)[1])
            ok &= got == want
            print(f"  DiracNet-{depth}-{width} CIFAR-{classes}: {got} (spec {want}) {'ok' if got == want else 'FAIL'}")
    for depth, want, want_folded in IMAGENET_TABLE:
        got = count(define_diracnet(True, depth, 1, 1000)[1])
        folded = sum(p.numel() for p in FoldedDiracNet(True, depth, 1, 1000).parameters())
        passed = got == want and folded == want_folded
        ok &= passed
        print(f"  DiracNet-{depth} ImageNet: {got} (spec {want}), folded {folded} (spec {want_folded}) "
              f"{'ok' if passed else 'FAIL'}")

    print("Dirac identity (alpha = 1, beta = 0, k = 3, padding 1):")
    for conv, shape in ((F.conv1d, (2, 4, 7)), (F.conv2d, (2, 4, 7, 6)), (F.conv3d, (2, 4, 5, 6, 3))):
        x = torch.randn(*shape)
        w = dirac_delta((4, 4) + (3,) * (len(shape) - 2))
        diff = (conv(x, w, padding=1) - x).abs().max().item()
        ok &= diff == 0.0
        print(f"  {len(shape) - 2}-D: max |conv(x) - x| = {diff:.1e} {'ok' if diff == 0.0 else 'FAIL'}")

    print("folding (diracnet.md §4) against the unfolded model, eval mode:")
    for imagenet, depth, width, classes, size in ((False, 10, 1, 10, 32), (False, 16, 2, 100, 28), (True, 18, 1, 7, 64)):
        forward, params = define_diracnet(imagenet, depth, width, classes)
        roughen(forward, params, (8, 3, size, size))
        x = torch.randn(4, 3, size, size)
        folded = FoldedDiracNet(imagenet, depth, width, classes)
        folded.load_state_dict(fold(params), strict=True)
        with torch.no_grad():
            ok &= report(f"{'ImageNet' if imagenet else 'CIFAR'} DiracNet-{depth}-{width} at {size}x{size}",
                         folded.eval()(x), forward(x, params, False))
    print("PASS" if ok else "FAIL")
    return ok


def crosscheck(d):
    io = load_file(str(d / "io.safetensors"))
    imagenet, depth, width, classes, in_channels = (int(v) for v in io["config"])
    forward, params = define_diracnet(bool(imagenet), depth, width, classes, in_channels)
    given = load_file(str(d / "weights.safetensors"))
    ok = True
    want_keys = set(params)
    given_keys = set(given)
    missing = sorted(want_keys - given_keys - {k for k in want_keys if k.startswith("eye")})
    unexpected = sorted(given_keys - want_keys)
    keys_ok = not missing and not unexpected
    ok &= keys_ok
    print(f"{'ImageNet' if imagenet else 'CIFAR'} DiracNet-{depth}-{width}, {classes} classes, {in_channels} "
          f"input channels: {len(given)} tensors; missing {missing[:5]}, unexpected {unexpected[:5]} "
          f"{'ok' if keys_ok else 'FAIL'}")
    for k, v in given.items():
        if k in params:
            if params[k].shape != v.shape:
                print(f"  {k}: shape {tuple(v.shape)}, expected {tuple(params[k].shape)} FAIL")
                ok = False
            elif k.startswith("eye") and not torch.equal(v, params[k]):
                print(f"  {k}: not the dirac_ delta FAIL")
                ok = False
            params[k] = v.clone()
    n = count(params)
    print(f"  trainable parameters: {n}")

    x = io["input"]
    with torch.no_grad():
        ok &= report("logits (eval mode) ", forward(x, params, False), io["logits_eval"])
        folded_here = fold(params)
        folded_model = FoldedDiracNet(bool(imagenet), depth, width, classes, in_channels).eval()
        folded_model.load_state_dict(folded_here, strict=True)
        ok &= report("logits of this script's fold vs convtrain's folded model", folded_model(x), io["logits_folded"])
        folded_model.load_state_dict(load_file(str(d / "folded.safetensors")), strict=True)
        ok &= report("convtrain's folded weights in the folded module", folded_model(x), io["logits_folded"])
        ok &= report("logits (train mode)", forward(x, params, True), io["logits_train"])
    print("PASS" if ok else "FAIL")
    return ok


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    ok = self_check() if sys.argv[1] == "--self-check" else crosscheck(Path(sys.argv[1]))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
