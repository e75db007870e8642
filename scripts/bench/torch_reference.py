#!/usr/bin/env python3
"""The PyTorch eager side of `convtrain bench --against-pytorch` (see src/bench/reference.rs).

Run by convtrain with the Python of the set-up environment (torch 2.13.0, the libtorch convtrain links),
it reads one JSON request per line on stdin and writes one JSON reply per line on stdout; anything else
it prints goes to stderr. The models are the independent PyTorch implementations of the cross-check
scripts (scripts/crosscheck_*.py), written from the specs with the original code's module structure;
the checkered ones compute the original four-convolution formulation (four shifted convolutions, two
submaps kept). Each model loads convtrain's exported weights with `load_state_dict(strict=True)` and
is compared on convtrain's input before anything is timed.

Requests (every reply may instead be {"error": "..."}):
  hello     {threads, device}                 -> {torch, threads}
  model     {row: {config, widths, batch, lr, momentum, dampening, nesterov, weight_decay, precision,
                   channels_last, weights, io}}
                                              -> {parameters, relative_difference}
  warm_up   {}                                -> {}
  train     {steps}                           -> {seconds}: median of `steps` training steps
  eval      {steps}                           -> {seconds}: median of `steps` no-grad eval passes
  pipeline  {dataset, images, batch, workers} -> {seconds}: one pass of a per-image DataLoader
  epoch     {dataset, images, batch, workers} -> {seconds}: training the loaded model on such a loader
  peak_rss  {}                                -> {bytes}: VmHWM since the last `model`

A training step is what the original scripts do: forward, cross-entropy, loss.item() and the number of
correct predictions, zero_grad, backward, SGD step; with `precision` bf16 or fp16 the forward pass and
the loss run under torch.autocast (fp16 with torch.amp.GradScaler), with `channels_last` the model and
its inputs are in torch.channels_last. The logits check before timing is always in fp32. The data pipeline is a map-style Dataset whose
__getitem__ transforms one image (to float, the augmentation, Normalize) and a DataLoader over it, as the
originals use with torchvision (which this environment does not have: the per-image transforms are the
same operations written with torch ops).
"""
import json
import math
import os
import statistics
import sys
import time
import traceback

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import crosscheck_checkered_models as checkered  # noqa: E402
import crosscheck_csg as csg  # noqa: E402
import crosscheck_diracnet as dirac  # noqa: E402
import crosscheck_swrn as swrn  # noqa: E402
import crosscheck_vgg_features as vggf  # noqa: E402

# (mean, std) per channel, (channels, side), train ops: as convtrain's data module.
DATASETS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), 3, 32),
    "mnist": ((0.1307,), (0.3081,), 1, 28),
}


class WRN(swrn.SWRN):
    """The SWRN skeleton with every convolution plain (no banks): convtrain's `wrn`."""

    def __init__(self, depth, width, classes):
        nn.Module.__init__(self)
        n = (depth - 4) // 6
        ch = [16, 16 * width, 32 * width, 64 * width]
        self.conv_3x3 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        for s in (1, 2, 3):
            blocks = [swrn.PreActBlock(ch[s - 1], ch[s], 1 if s == 1 else 2)]
            blocks += [swrn.PreActBlock(ch[s], ch[s], 1) for _ in range(n - 1)]
            setattr(self, f"stage_{s}", nn.Sequential(*blocks))
        self.lastact = nn.Sequential(nn.BatchNorm2d(ch[3]), nn.ReLU())
        self.classifier = nn.Linear(ch[3], classes)


class TinyCNN(nn.Module):
    """Table 8's 2-D Tiny CNN (checkered.md §5.1): the toy CCNN's layout with ordinary convolutions."""

    def __init__(self, classes):
        super().__init__()
        self.init_conv = nn.Conv2d(1, 32, 3, padding=1)
        self.conv1 = nn.Conv2d(32, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 45, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(45, 45, 3, padding=1)
        self.conv4 = nn.Conv2d(45, 64, 3, padding=1)
        for i, c in enumerate([32, 32, 45, 45, 64]):
            setattr(self, f"bn{i + 1}", nn.BatchNorm2d(c))
        self.drop = nn.Dropout2d(0.2)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        for i, conv in enumerate([self.init_conv, self.conv1, self.conv2, self.conv3, self.conv4]):
            x = F.relu(getattr(self, f"bn{i + 1}")(conv(x)))
        return self.fc(F.adaptive_avg_pool2d(self.drop(x), 1).flatten(1))


class FunctionalDiracNet(nn.Module):
    """The authors' functional DiracNet (`define_diracnet`) holding its flat parameter dict."""

    def __init__(self, depth, width, classes, in_channels):
        super().__init__()
        self.f, self.tensors = dirac.define_diracnet(False, depth, width, classes, in_channels)

    def load(self, given):
        unexpected = sorted(set(given) - set(self.tensors))
        missing = sorted(k for k in set(self.tensors) - set(given) if not k.startswith("eye"))
        if unexpected or missing:
            raise ValueError(f"DiracNet keys: missing {missing[:5]}, unexpected {unexpected[:5]}")
        for k, v in given.items():
            if v.shape != self.tensors[k].shape:
                raise ValueError(f"{k}: shape {tuple(v.shape)}, expected {tuple(self.tensors[k].shape)}")
            self.tensors[k] = v.clone()
        for k in dirac.trainable(self.tensors):
            self.tensors[k].requires_grad_(True)

    def to_device(self, device):
        self.tensors = {k: v.detach().to(device).requires_grad_(v.requires_grad) for k, v in self.tensors.items()}
        return self

    def trainable(self):
        return list(dirac.trainable(self.tensors).values())

    def forward(self, x):
        return self.f(x, self.tensors, self.training)


def build(row):
    """The row's network in PyTorch, with convtrain's exported weights loaded (strict)."""
    c = row["config"]
    arch, classes, cin, side = c["arch"], c["num_classes"], c["in_channels"], c["image_size"]
    weights = load_file(row["weights"])
    if arch == "diracnet":
        model = FunctionalDiracNet(c["depth"], c["width"], classes, cin)
        model.load(weights)
        return model
    if arch == "wrn":
        model = WRN(c["depth"], c["width"], classes)
    elif arch == "swrn":
        model = swrn.SWRN(c["depth"], c["width"], c.get("bank_size", 1), classes)
    elif arch == "ccnn-toy":
        model = checkered.ToyCCNN(2, classes)
    elif arch == "tiny-cnn" and not c.get("checkered"):
        model = TinyCNN(classes)
    elif arch == "resnet18" and c.get("checkered"):
        model = checkered.ResNet18(classes)
    elif arch in ("csg-resnet", "csg-resnet-org", "csg-densenet", "csg-densenet-org"):
        model = csg.build(arch.removesuffix("-org"), c.get("depth"), c.get("width"), classes, c.get("slice"),
                          c.get("code_size"), arch.endswith("-org"), cin)
    elif arch == "vgg-features":
        model = vggf.SweepVGG(row["widths"], classes, cin, side)
    else:
        raise ValueError(f"no PyTorch reference for architecture {arch!r} (checkered {c.get('checkered', False)})")
    model.load_state_dict(weights, strict=True)
    return model


def trainable_parameters(model):
    if isinstance(model, FunctionalDiracNet):
        return model.trainable()
    return [p for p in model.parameters() if p.requires_grad]


def relative(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


class SyntheticImages(torch.utils.data.Dataset):
    """Random uint8 images of a dataset's shape; __getitem__ applies the recipe's train transform to one image:
    CIFAR RandomCrop(32, padding=4) + RandomHorizontalFlip, MNIST RandomRotation(15) + RandomCrop(28, padding=2),
    then ToTensor and Normalize."""

    def __init__(self, dataset, n):
        self.mean, self.std, self.channels, self.side = DATASETS[dataset]
        self.cifar = dataset == "cifar10"
        rng = np.random.default_rng(0)
        shape = (n, self.side, self.side, self.channels) if self.cifar else (n, self.side, self.side)
        self.images = rng.integers(0, 256, shape, dtype=np.uint8)
        self.labels = rng.integers(0, 10, n)
        self.mean_t = torch.tensor(self.mean).view(-1, 1, 1)
        self.std_t = torch.tensor(self.std).view(-1, 1, 1)

    def __len__(self):
        return len(self.images)

    def crop(self, x, pad):
        x = F.pad(x, (pad, pad, pad, pad))
        i, j = np.random.randint(0, 2 * pad + 1, 2)
        return x[:, i:i + self.side, j:j + self.side]

    def rotate(self, x, degrees):
        a = math.radians(np.random.uniform(-degrees, degrees))
        theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]]).unsqueeze(0)
        grid = F.affine_grid(theta, [1, *x.shape], align_corners=False)
        return F.grid_sample(x.unsqueeze(0), grid, mode="nearest", align_corners=False).squeeze(0)

    def __getitem__(self, i):
        img = torch.from_numpy(self.images[i])
        x = (img.permute(2, 0, 1) if self.cifar else img.unsqueeze(0)).float().div(255)
        if self.cifar:
            x = self.crop(x, 4)
            if np.random.rand() < 0.5:
                x = x.flip(-1)
        else:
            x = self.crop(self.rotate(x, 15), 2)
        return (x - self.mean_t) / self.std_t, int(self.labels[i])


class Reference:
    def __init__(self):
        self.device = torch.device("cpu")
        self.model = None

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def hello(self, req):
        torch.set_num_threads(req["threads"])
        self.device = torch.device(req["device"])
        return {"torch": torch.__version__, "threads": torch.get_num_threads()}

    def model_(self, req):
        row = req["row"]
        self.model = None
        reset_peak_rss()
        torch.manual_seed(0)
        model = build(row)
        params = trainable_parameters(model)
        count = sum(p.numel() for p in params)
        io = load_file(row["io"])
        model.eval()
        with torch.no_grad():
            diff = relative(model(io["input"]), io["logits"])
        model = model.to_device(self.device) if isinstance(model, FunctionalDiracNet) else model.to(self.device)
        model.train()
        self.channels_last = row.get("channels_last", False)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        precision = row.get("precision", "fp32")
        self.autocast_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.scaler = torch.amp.GradScaler(self.device.type) if precision == "fp16" else None
        self.opt = torch.optim.SGD(trainable_parameters(model), lr=row["lr"], momentum=row["momentum"],
                                   dampening=row["dampening"], nesterov=row["nesterov"],
                                   weight_decay=row["weight_decay"])
        shape = io["input"].shape[1:]
        self.x = self.layout(torch.randn(row["batch"], *shape, device=self.device))
        self.y = torch.randint(row["config"]["num_classes"], (row["batch"],), device=self.device)
        return {"parameters": count, "relative_difference": diff}

    def layout(self, x):
        return x.to(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def autocast(self):
        dtype = self.autocast_dtype
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def step(self, x, y):
        with self.autocast():
            logits = self.model(x)
            loss = F.cross_entropy(logits, y)
        loss.item()
        (logits.argmax(-1) == y).sum().item()
        self.opt.zero_grad()
        if self.scaler is None:
            loss.backward()
            self.opt.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()

    def evaluate(self):
        self.model.eval()
        with torch.no_grad(), self.autocast():
            self.model(self.x)
        self.model.train()

    def timed(self, steps, f):
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            f()
            self.sync()
            times.append(time.perf_counter() - t)
        return {"seconds": statistics.median(times)}

    def warm_up(self, req):
        self.step(self.x, self.y)
        self.evaluate()
        self.sync()
        return {}

    def train(self, req):
        return self.timed(req["steps"], lambda: self.step(self.x, self.y))

    def eval(self, req):
        self.evaluate()  # untimed, as convtrain's side (which computes its cached kernels there)
        return self.timed(req["steps"], self.evaluate)

    def loader(self, req):
        ds = SyntheticImages(req["dataset"], req["images"])
        return torch.utils.data.DataLoader(ds, batch_size=req["batch"], shuffle=True, num_workers=req["workers"])

    def pipeline(self, req):
        loader = self.loader(req)
        t = time.perf_counter()
        for x, _ in loader:
            x.to(self.device)
        self.sync()
        return {"seconds": time.perf_counter() - t}

    def epoch(self, req):
        loader = self.loader(req)
        t = time.perf_counter()
        for x, y in loader:
            self.step(self.layout(x.to(self.device)), y.to(self.device))
        self.sync()
        return {"seconds": time.perf_counter() - t}

    def peak_rss(self, req):
        return {"bytes": peak_rss()}


def main():
    out = sys.stdout
    sys.stdout = sys.stderr
    ref = Reference()
    handlers = {"hello": ref.hello, "model": ref.model_, "warm_up": ref.warm_up, "train": ref.train,
                "eval": ref.eval, "pipeline": ref.pipeline, "epoch": ref.epoch, "peak_rss": ref.peak_rss}
    for line in sys.stdin:
        try:
            req = json.loads(line)
            reply = handlers[req["cmd"]](req)
        except Exception as e:  # reported to convtrain, which names the row
            traceback.print_exc()
            reply = {"error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
