#!/usr/bin/python3
"""PyTorch baseline for `engine bench`, built from the engine's own layer list.

    torch_bench.py LAYERS.json THREADS ITERATIONS

LAYERS.json is written by `engine bench` (engine/bench/bench.cpp: program_json): every step with
its op, attributes, inputs and parameter shapes. The same network is built here from torch.nn
modules, then timed (median of ITERATIONS after 2 warm-up runs, channels_last, as the
reference figures were measured): inference at batch 1 and 16, and one training step at batch 16
(forward, W_c * weighted BCE + Dice, backward, Adam). Prints one JSON line:
    {"infer_b1_ms": ..., "infer_b16_img_s": ..., "train_b16_img_s": ...}
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def same_tf(size, kernel, stride):
    """TF SAME padding along one axis, (before, after): conv2d's pad_mode = "same_tf"."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def build_module(step, in_shape):
    op, a = step["op"], step["attrs"]
    in_channels = in_shape[1]
    pad = a.get("pad", -1)
    if op in ("conv2d", "conv_transpose2d") and pad < 0:
        pad = (a["kernel"] - 1) // 2
    if op == "conv2d":
        groups = in_channels if a["depthwise"] else a["groups"]
        out = in_channels if a["depthwise"] else a["out"]
        if a.get("pad_mode", "explicit") == "same_tf":
            # Asymmetric (0 before, 1 after for a 3x3 stride-2 conv on an even input), which
            # nn.Conv2d's padding cannot say: F.pad first, then an unpadded convolution.
            top, bottom = same_tf(in_shape[2], a["kernel"], a["stride"])
            left, right = same_tf(in_shape[3], a["kernel"], a["stride"])
            return nn.Sequential(
                nn.ZeroPad2d((left, right, top, bottom)),
                nn.Conv2d(in_channels, out, a["kernel"], a["stride"], 0, groups=groups,
                          bias=a["bias"]))
        return nn.Conv2d(in_channels, out, a["kernel"], a["stride"], pad, groups=groups,
                         bias=a["bias"])
    if op == "conv_transpose2d":
        return nn.ConvTranspose2d(in_channels, a["out"], a["kernel"], a["stride"], pad,
                                  output_padding=a["output_pad"], bias=a["bias"])
    if op == "batch_norm":
        return nn.BatchNorm2d(in_channels, eps=a["eps"], momentum=a["momentum"])
    if op == "dense":
        return nn.Linear(in_channels, a["out"], bias=a["bias"])
    if op == "dropout":
        return nn.Dropout(a["rate"])
    return None


class GraphNet(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.steps = layers["steps"]
        self.outputs = layers["outputs"]
        shapes = {name: shape for name, shape in layers["inputs"].items()}
        self.mods = nn.ModuleDict()
        for s in self.steps:
            m = build_module(s, shapes[s["inputs"][0]])
            if m is not None:
                self.mods[s["name"].replace(".", "_")] = m
            shapes[s["name"]] = s["shape"]

    def forward(self, image):
        values = {"image": image}
        for s in self.steps:
            x = [values[i] for i in s["inputs"]]
            op, key = s["op"], s["name"].replace(".", "_")
            if key in self.mods:
                y = self.mods[key](x[0])
            elif op == "relu":
                y = F.relu(x[0])
            elif op == "relu6":
                y = F.relu6(x[0])
            elif op == "sigmoid":
                y = torch.sigmoid(x[0])
            elif op == "add":
                y = x[0] + x[1]
            elif op == "global_avg_pool":
                y = x[0].mean(dim=(2, 3))
            else:
                raise ValueError("no PyTorch mapping for op " + op)
            values[s["name"]] = y
        return values


def objective(layers, values, targets):
    total = 0
    for t in layers["objective"]:
        z, y = values[t["input"]].reshape(-1), targets[t["target"]].reshape(-1)
        if t["loss"] == "weighted_bce":
            term = F.binary_cross_entropy_with_logits(
                z, y, pos_weight=torch.tensor(t["pos_weight"]))
        else:
            p = values[t["input"]].flatten(1)
            g = targets[t["target"]].flatten(1)
            term = (1 - (2 * (p * g).sum(1) + t["eps"]) / (p.sum(1) + g.sum(1) + t["eps"])).mean()
        total = total + t["weight"] * term
    return total


def median_seconds(iterations, fn):
    for _ in range(2):
        fn()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def main(layers_path, threads, iterations):
    torch.set_num_threads(threads)
    layers = json.load(open(layers_path))
    shape = layers["inputs"]["image"][1:]
    net = GraphNet(layers).to(memory_format=torch.channels_last)
    figures = {}
    net.eval()
    with torch.no_grad():
        for batch, key in ((1, "infer_b1_ms"), (16, "infer_b16_img_s")):
            x = torch.randn(batch, *shape).to(memory_format=torch.channels_last)
            t = median_seconds(iterations, lambda: net(x))
            figures[key] = t * 1e3 if batch == 1 else batch / t
    net.train()
    x = torch.randn(16, *shape).to(memory_format=torch.channels_last)
    targets = {name: (torch.rand(16, *dims[1:]) < 0.4).float()
               for name, dims in layers["inputs"].items() if name != "image"}
    adam = torch.optim.Adam(net.parameters(), lr=1e-4)

    def train_step():
        adam.zero_grad()
        objective(layers, net(x), targets).backward()
        adam.step()

    figures["train_b16_img_s"] = 16 / median_seconds(iterations, train_step)
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
