#!/usr/bin/env python3
"""Where a training step's time goes, op by op, in two or more profiles side by side.

Reads Chrome traces of CPU ops (nas_bench_training --profile, nasnet_reference.py --profile), takes
each op's self time (its duration less that of the ops it called, per thread) and prints, per step,
the time of each kind of work and of the ops that take the most, with the weight shape for
convolutions (e.g. [168, 1, 5, 5]: a depthwise 5x5 over 168 channels).

usage: bench/op_profile.py --steps 3 NAME=TRACE.json NAME=TRACE.json [--top 20]
"""
import argparse
import collections
import json

KINDS = [  # (kind, op names), first match wins; the rest is "other"
    ("convolution forward", ("aten::mkldnn_convolution", "aten::_convolution", "aten::convolution", "aten::conv2d",
                             "aten::_nnpack_spatial_convolution", "aten::thnn_conv2d", "aten::_slow_conv2d_forward")),
    ("convolution backward", ("aten::convolution_backward", "aten::_slow_conv2d_backward")),
    ("batch norm", ("aten::native_batch_norm", "aten::native_batch_norm_backward", "aten::_batch_norm_impl_index",
                    "aten::batch_norm")),
    ("ReLU", ("aten::relu", "aten::clamp_min", "aten::threshold_backward")),
    ("pooling", ("aten::avg_pool2d", "aten::avg_pool2d_backward", "aten::max_pool2d_with_indices",
                 "aten::max_pool2d_with_indices_backward")),
    ("copies and concatenation", ("aten::copy_", "aten::cat", "aten::contiguous", "aten::clone")),
    ("element-wise (add, mul, fill)", ("aten::add", "aten::add_", "aten::mul", "aten::mul_", "aten::fill_",
                                       "aten::zero_", "aten::div", "aten::div_")),
]


def self_times(path):
    """(name, weight shape or '') -> self microseconds, from the trace's CPU ops."""
    with open(path) as f:
        events = [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X" and e.get("cat") == "cpu_op"]
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[(e["pid"], e["tid"])].append(e)
    totals = collections.Counter()
    for evs in by_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []  # [end, event, children's time]
        def close(item):
            end, e, children = item
            dims = e.get("args", {}).get("Input Dims", [])
            shape = ""
            if "convolution" in e["name"] and len(dims) > 2:
                shape = str(dims[2] if e["name"] == "aten::convolution_backward" else dims[1])
            totals[(e["name"], shape)] += e["dur"] - children
        for e in evs:
            while stack and stack[-1][0] <= e["ts"]:
                close(stack.pop())
            if stack:
                stack[-1][2] += e["dur"]
            stack.append([e["ts"] + e["dur"], e, 0.0])
        while stack:
            close(stack.pop())
    return totals


def kind(name):
    return next((k for k, names in KINDS if name in names), "other")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("traces", nargs="+", help="NAME=TRACE.json")
    parser.add_argument("--steps", type=int, required=True, help="training steps in each trace")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    names, profiles = [], []
    for item in args.traces:
        name, path = item.split("=", 1)
        names.append(name)
        profiles.append({k: v / args.steps / 1e3 for k, v in self_times(path).items()})  # ms per step

    width = max(12, *(len(n) for n in names))
    header = "".join(f"{n:>{width}}" for n in names)
    print(f"ms per step (self time)\n{'':<44}{header}")
    kinds = [k for k, _ in KINDS] + ["other"]
    for k in kinds + ["total"]:
        row = [sum(v for (op, _), v in p.items() if k == "total" or kind(op) == k) for p in profiles]
        print(f"{k:<44}" + "".join(f"{x:>{width}.1f}" for x in row))
    print(f"\nthe {args.top} costliest ops of {names[0]} (weight shape for convolutions)\n{'':<60}{header}")
    for key, _ in sorted(profiles[0].items(), key=lambda kv: -kv[1])[:args.top]:
        label = f"{key[0]} {key[1]}".strip()
        print(f"{label[:59]:<60}" + "".join(f"{p.get(key, 0.0):>{width}.1f}" for p in profiles))


if __name__ == "__main__":
    main()
