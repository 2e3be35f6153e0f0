#!/usr/bin/env python3
"""Eager PyTorch reference of the NASNet-A networks that bench/training.py and bench/imagenet.py
compare our engine against.

The same networks as plugins/spaces/nasnet (TF conventions: ReLU-conv-BN ops, separable convs twice,
factorized reductions, the same stems and stages, the ImageNet layout's two stem cells, the auxiliary
head and dropout of the paper's ImageNet models), written the way Python NAS code usually is. It
prints its parameter count, so the two networks can be checked to be the same size, the training
throughput (forward + backward + SGD step with gradient clipping, the auxiliary head's loss weighted
0.4 as in our trainer) on a fixed random batch, the first step's time apart, and the peak resident
memory (on a GPU also the peak memory its tensors took there).

usage: nasnet_reference.py GENOTYPE [--N 2] [--F 768] [--batch 32] [--steps 5] [--threads T] [--channels-last]
                           [--preset nasnet_a_mobile|nasnet_a_large] [--size 32] [--classes 10]
                           [--device cpu|cuda] [--bf16]   (bf16 autocast over the forward pass, as our trainer)
                           [--profile TRACE.json]   (the measured steps' ATen ops, for bench/op_profile.py)
"""
import argparse
import re
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-3


def conv_bn(cin, cout, k, stride=1, relu=True, dilation=1, groups=1):
    layers = [nn.ReLU()] if relu else []
    pad = dilation * (k // 2)
    layers += [nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, groups=groups, bias=False), nn.BatchNorm2d(cout, eps=EPS)]
    return nn.Sequential(*layers)


class SepConv(nn.Sequential):
    def __init__(self, cin, cout, k, stride):
        layers = []
        for i in range(2):
            layers += [nn.ReLU(), nn.Conv2d(cin, cin, k, stride if i == 0 else 1, k // 2, groups=cin, bias=False),
                       nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout, eps=EPS)]
            cin = cout
        super().__init__(*layers)


class Pool(nn.Sequential):
    def __init__(self, kind, k, cin, cout, stride):
        pool = (nn.AvgPool2d(k, stride, k // 2, count_include_pad=False) if kind == "avg"
                else nn.MaxPool2d(k, stride, k // 2))
        layers = [pool]
        if cin != cout:
            layers += [nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout, eps=EPS)]
        super().__init__(*layers)


def make_op(name, cin, cout, stride):
    if name == "identity":
        return nn.Identity() if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride)
    m = re.fullmatch(r"sep_conv_(\d)x\d", name)
    if m:
        return SepConv(cin, cout, int(m.group(1)), stride)
    m = re.fullmatch(r"(avg|max)_pool_(\d)x\d", name)
    if m:
        return Pool(m.group(1), int(m.group(2)), cin, cout, stride)
    raise ValueError(f"the reference implements only NASNet-A's ops, not {name}")


class FactorizedReduce(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.path1 = nn.Conv2d(cin, cout // 2, 1, bias=False)
        self.path2 = nn.Conv2d(cin, cout - cout // 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=EPS)

    def forward(self, x):
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.path1(x[:, :, ::2, ::2]), self.path2(shifted[:, :, ::2, ::2])], 1))


class Cell(nn.Module):
    def __init__(self, blocks, concat, reduction, filters, cin, prev):  # prev: None, ("same", c) or ("larger", c)
        super().__init__()
        self.blocks, self.concat, self.reduction = blocks, concat, reduction
        self.prep0 = conv_bn(cin, filters, 1)
        width = [filters, filters]
        if prev is None:
            self.prep1, width[1] = None, cin
        elif prev[0] == "larger":
            self.prep1 = nn.Sequential(nn.ReLU(), FactorizedReduce(prev[1], filters))
        elif prev[1] != filters:
            self.prep1 = conv_bn(prev[1], filters, 1)
        else:
            self.prep1, width[1] = None, prev[1]
        self.ops = nn.ModuleList()
        for a, op_a, b, op_b in blocks:
            for i, op in ((a, op_a), (b, op_b)):
                self.ops.append(make_op(op, width[i], filters, 2 if reduction and i < 2 else 1))
            width.append(filters)
        self.adapt = nn.ModuleList(FactorizedReduce(width[s], filters) if reduction and s < 2
                                   else (nn.Sequential(nn.Conv2d(width[s], filters, 1, bias=False), nn.BatchNorm2d(filters, eps=EPS))
                                         if width[s] != filters else nn.Identity()) for s in concat)
        self.out_channels = filters * len(concat)

    def forward(self, h, prev):
        states = [self.prep0(h), (self.prep1(prev) if self.prep1 else prev) if prev is not None else h]
        for k, (a, _, b, _) in enumerate(self.blocks):
            states.append(self.ops[2 * k](states[a]) + self.ops[2 * k + 1](states[b]))
        return torch.cat([adapt(states[s]) for adapt, s in zip(self.adapt, self.concat)], 1)


class AuxHead(nn.Sequential):
    def __init__(self, cin, classes):
        super().__init__(nn.AvgPool2d(5, 3), nn.Conv2d(cin, 128, 1, bias=False), nn.BatchNorm2d(128, eps=EPS), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768, eps=EPS),
                         nn.ReLU(), nn.Flatten(), nn.Linear(768, classes))


# The paper's ImageNet models (our space's presets of the same names).
PRESETS = {
    "nasnet_a_mobile": dict(layout="imagenet", N=4, F=1056, stem_multiplier=1.0, aux_head=True, dropout=0.5,
                            skip_reduction_input=False),
    "nasnet_a_large": dict(layout="imagenet", N=6, F=4032, stem_multiplier=3.0, aux_head=True, dropout=0.5,
                           skip_reduction_input=True),
}


class Network(nn.Module):
    def __init__(self, genotype, n, f, classes=10, layout="cifar", stem_multiplier=3.0, aux_head=False, dropout=0.0,
                 skip_reduction_input=False):
        super().__init__()
        normal, reduction = genotype
        base = f // (4 * len(normal[1]))
        imagenet = layout == "imagenet"
        stem = int((32 if imagenet else base) * stem_multiplier)
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 3, 2 if imagenet else 1, 0 if imagenet else 1, bias=False),
                                  nn.BatchNorm2d(stem, eps=EPS))
        self.cells, self.inputs = nn.ModuleList(), []
        self.aux, self.aux_after = None, None
        state = {"last": (0, stem, 0), "before": None}  # (output index, channels, spatial level)

        def add(cell_genotype, reduce, filters, prev):
            last = state["last"]
            rel = None if prev is None else ("larger" if prev[2] < last[2] else "same", prev[1])
            cell = Cell(*cell_genotype, reduce, filters, last[1], rel)
            self.cells.append(cell)
            self.inputs.append((last[0], None if prev is None else prev[0]))
            state["before"], state["last"] = last, (len(self.cells), cell.out_channels, last[2] + (1 if reduce else 0))

        if imagenet:  # two stem cells: reduction cells of base/4 and base/2 filters
            add(reduction, True, base // 4, state["before"])
            add(reduction, True, base // 2, state["before"])
        filters = base
        for stage in range(3):
            for i in range(n):
                prev = state["before"]
                if i == 0 and stage > 0:
                    filters *= 2
                    add(reduction, True, filters, state["before"])
                    if not skip_reduction_input:
                        prev = state["before"]
                add(normal, False, filters, prev)
            if stage == 1 and aux_head:
                self.aux_after, self.aux = state["last"][0], AuxHead(state["last"][1], classes)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(state["last"][1], classes)

    def forward(self, x):
        outputs, aux = [self.stem(x)], None
        for cell, (h, prev) in zip(self.cells, self.inputs):
            outputs.append(cell(outputs[h], outputs[prev] if prev is not None else None))
            if self.aux is not None and self.training and len(outputs) - 1 == self.aux_after:
                aux = self.aux(F.relu(outputs[-1]))
        logits = self.classifier(self.dropout(F.adaptive_avg_pool2d(F.relu(outputs[-1]), 1).flatten(1)))
        return logits, aux


def read_genotype(path):
    cells, current = {}, None
    for line in open(path):
        line = line.split("#")[0].rstrip()
        if re.match(r"^(normal|reduction):", line):
            current = line.split(":")[0]
            cells[current] = ([], None)
        m = re.match(r"\s+- \[(\d+), (\w+), (\d+), (\w+), add\]", line)
        if m:
            cells[current][0].append((int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)))
        m = re.match(r"\s+concat: \[([\d, ]+)\]", line)
        if m:
            cells[current] = (cells[current][0], [int(s) for s in m.group(1).split(",")])
    return cells["normal"], cells["reduction"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("genotype")
    parser.add_argument("--preset", choices=PRESETS, help="a paper's ImageNet model (--N, --F then ignored)")
    parser.add_argument("--N", type=int, default=2)
    parser.add_argument("--F", type=int, default=768)
    parser.add_argument("--size", type=int, default=32, help="image height and width")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast over the forward pass")
    parser.add_argument("--profile", help="write the measured steps' ATen ops to this Chrome trace")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = PRESETS[args.preset] if args.preset else dict(N=args.N, F=args.F)
    n, f = model.pop("N"), model.pop("F")
    net = Network(read_genotype(args.genotype), n, f, args.classes, **model)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    net = net.to(device=args.device, memory_format=fmt).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    x = torch.randn(args.batch, 3, args.size, args.size, device=args.device).contiguous(memory_format=fmt)
    y = torch.randint(0, args.classes, (args.batch,), device=args.device)

    def step():
        opt.zero_grad()
        with torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.bf16):
            logits, aux = net(x)
        loss = F.cross_entropy(logits.float(), y)
        if aux is not None:
            loss = loss + 0.4 * F.cross_entropy(aux.float(), y)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        loss.item()  # as our trainer, which reads every step's loss (on a GPU: waits for the step)

    start = time.perf_counter()
    step()  # the first step: oneDNN picks its kernels
    first = time.perf_counter() - start
    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True)
    if args.profile:
        profiler.start()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    rate = args.batch * args.steps / (time.perf_counter() - start)
    if args.profile:
        profiler.stop()
        profiler.export_chrome_trace(args.profile)
    print(f"params {sum(p.numel() for p in net.parameters())}")
    print(f"first_step_s {first:.3f}")
    print(f"images_per_s {rate:.3f}")
    print(f"peak_rss_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")
    if args.device == "cuda":
        print(f"peak_gpu_mb {torch.cuda.max_memory_allocated() / 2**20:.1f}")


if __name__ == "__main__":
    main()
