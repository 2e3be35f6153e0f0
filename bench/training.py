#!/usr/bin/env python3
"""Training throughput of our engine vs an eager PyTorch reference of the same network, loader
headroom and peak memory, all measured in one run (rounds interleaved so machine noise hits all alike).

Same NASNet-A child (CIFAR layout, N=2, F=768, 32x32, batch 32), same torch wheel, same thread count;
forward + backward + SGD step with gradient clipping. Reported: median images/s per variant over the
rounds, and ratios against the Python reference (target: at least 1.5x).

usage: bench/training.py [BUILD_DIR] [--rounds 3] [--steps 5] [--cifar DIR]   (BUILD_DIR: build/release)
"""
import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return {k: v for k, v in (line.split(" ", 1) for line in out.splitlines() if " " in line)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir", nargs="?", default="build/release")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    default_cifar = os.path.join(ROOT, "..", "shared", "data", "cifar10", "cifar-10-batches-bin")
    parser.add_argument("--cifar", default=default_cifar if os.path.isdir(default_cifar) else "")
    args = parser.parse_args()

    engine = [os.path.join(args.build_dir, "bin", "nas_bench_training"), "--steps", str(args.steps)]
    if args.cifar:
        engine += ["--cifar", args.cifar]
    reference = [sys.executable, os.path.join(HERE, "reference", "nasnet_reference.py"),
                 os.path.join(ROOT, "configs", "genotypes", "nasnet_a.yaml"), "--steps", str(args.steps),
                 "--threads", str(os.cpu_count())]
    variants = {
        "engine, 1 child, all threads": engine,
        "engine, 2 children, 1 thread each": engine + ["--children", "2"],
        "python reference (contiguous)": reference,
        "python reference (channels_last)": reference + ["--channels-last"],
    }
    rates = {name: [] for name in variants}
    details = {}
    for _ in range(args.rounds):
        for name, cmd in variants.items():
            out = run(cmd)
            rates[name].append(float(out["images_per_s"]))
            details.setdefault(name, out)
    params = {name: details[name]["params"] for name in variants}
    if len(set(params.values())) != 1:
        sys.exit(f"the networks differ: parameters {params}")

    median = {name: statistics.median(r) for name, r in rates.items()}
    print(f"NASNet-A 2@768, 32x32, batch 32, {os.cpu_count()} threads, {params[next(iter(params))]} parameters; "
          f"median of {args.rounds} rounds of {args.steps} steps")
    for name, value in median.items():
        print(f"  {name:<36} {value:7.1f} images/s")
    for ours in ("engine, 1 child, all threads", "engine, 2 children, 1 thread each"):
        for ref in ("python reference (contiguous)", "python reference (channels_last)"):
            print(f"  {ours} / {ref}: {median[ours] / median[ref]:.2f}")
    first = details["engine, 1 child, all threads"]
    loader = float(first["loader_images_per_s"])
    print(f"  loader ({first['loader_data']}, crop+flip+normalize, 1 worker): {loader:.0f} images/s, "
          f"headroom over the engine: {loader / median['engine, 1 child, all threads']:.0f}x (target >= 5x)")
    print(f"  peak memory of one training process (RSS, CIFAR-10 in memory): {first['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
