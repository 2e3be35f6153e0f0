#!/usr/bin/env python3
"""The paper's ImageNet models trained through our engine vs an eager PyTorch reference of the same
networks, in one run: speed and peak memory.

NASNet-A Mobile (4@1056, 224x224, batch 16) and NASNet-A Large (6@4032, 331x331, batch 2), 1000
classes, with the auxiliary head and dropout of the paper's models; forward + backward + SGD step with
gradient clipping on a fixed synthetic batch; same torch wheel, same thread count. Variants: the engine
(channels_last, its default), and bench/reference/nasnet_reference.py contiguous (as Python code is
usually written) and channels_last. Each variant runs in a process of its own (peak memory is the
process's peak resident set), rounds interleaved so that machine noise hits all alike. Reported per
model: median images/s after the first step, the first step's time, peak memory, and the engine's
ratios against the faster reference variant (targets: at least 1.5x the images/s, at most 1.0x the
memory).

Then the data path at the same size: bench/image_loader.cpp's JPEGs (500x375) decoded, resized and
cropped by dataset/image_folder, flipped and normalized by the loader, with 1 and 2 loader threads
(1 is the default): images/s and the headroom over the engine's training (target: at least 5x with the
default).

Last, data-parallel training of Mobile: `nas-host run` of a `train` stage (synthetic 224x224 images,
global batch 16, one epoch of --dp-steps steps, first step included) in 1 process with every thread
and in 2 processes (--nproc 1: Gloo, the cores split between them), rounds interleaved: the global
images/s of each and their ratio.

With --device cuda (bench/gpu.sh): both models at GPU batch sizes (Mobile 128, Large 32), each of
fp32 contiguous, fp32 channels_last and bf16 autocast + channels_last through the engine and through
the reference: images/s, peak GPU memory (what tensors took at most) and the engine's ratios per
setting; no loader or data-parallel measurement. The engine's batches come from its loader (8 threads,
pinned memory) over one batch of images held in memory; the reference's fixed batch lives on the GPU.

--compare-build DIR adds another build of the engine to the CPU variants, interleaved with the rest,
and prints the engine's ratio against it (e.g. a build configured with -DNAS_TCMALLOC=OFF).

usage: bench/imagenet.py [BUILD_DIR] [--models mobile large] [--rounds 2] [--steps 3] [--threads N]
                         [--dp-steps 10] [--device cpu|cuda] [--gpu-batch '{"mobile": 128, "large": 32}']
                         [--compare-build DIR]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from training import run  # a benchmark program's "key value" lines

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = {"mobile": ("nasnet_a_mobile", 224, 16), "large": ("nasnet_a_large", 331, 2)}
# On a GPU: each side in fp32 contiguous (NCHW), fp32 channels_last, and bf16 autocast + channels_last.
GPU_LOADER_THREADS = 8  # the engine's loader stacks and pins each batch on the CPU while the GPU trains
GPU_SETTINGS = {
    "fp32 contiguous": (["--channels_last", "0", "--bf16", "0"], []),
    "fp32 channels_last": (["--channels_last", "1", "--bf16", "0"], ["--channels-last"]),
    "bf16 channels_last": (["--channels_last", "1", "--bf16", "1"], ["--channels-last", "--bf16"]),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir", nargs="?", default="build/release")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--dp-steps", type=int, default=10, help="0: no data-parallel measurement")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--gpu-batch", type=json.loads, default={"mobile": 128, "large": 32},
                        help='batch sizes on a GPU (JSON; default {"mobile": 128, "large": 32})')
    parser.add_argument("--compare-build", help="another build of the engine to measure alongside (CPU only)")
    args = parser.parse_args()

    genotype = os.path.join(ROOT, "configs", "genotypes", "nasnet_a.yaml")
    for model in args.models:
        preset, size, batch = MODELS[model]
        batch = args.gpu_batch[model] if args.device == "cuda" else batch
        common = ["--size", str(size), "--batch", str(batch), "--steps", str(args.steps), "--classes", "1000"]
        reference = [sys.executable, os.path.join(HERE, "reference", "nasnet_reference.py"), genotype, "--preset", preset,
                     "--threads", str(args.threads), "--device", args.device] + common
        engine = [os.path.join(args.build_dir, "bin", "nas_bench_training"), "--preset", preset, "--loader", "0",
                  "--workers", "0" if args.device == "cpu" else str(GPU_LOADER_THREADS), "--threads", str(args.threads),
                  "--device", args.device] + common
        if args.device == "cpu":
            variants = {
                "engine (channels_last)": engine,
                "python reference, contiguous": reference,
                "python reference, channels_last": reference + ["--channels-last"],
            }
            if args.compare_build:
                variants[f"engine, {args.compare_build}"] = [os.path.join(args.compare_build, "bin",
                                                                          "nas_bench_training")] + engine[1:]
        else:  # each setting on both sides
            variants = {}
            for setting, (engine_flags, reference_flags) in GPU_SETTINGS.items():
                variants[f"engine, {setting}"] = engine + engine_flags
                variants[f"python reference, {setting}"] = reference + reference_flags
        results = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, cmd in variants.items():
                results[name].append(run(cmd))
                print(f"  {model} {name}: {results[name][-1]['images_per_s']} images/s", file=sys.stderr, flush=True)
        params = {name: r[0]["params"] for name, r in results.items()}
        if len(set(params.values())) != 1:
            sys.exit(f"the networks differ: parameters {params}")

        memory_key = "peak_gpu_mb" if args.device == "cuda" else "peak_rss_mb"
        rate = {name: statistics.median(float(o["images_per_s"]) for o in r) for name, r in results.items()}
        first = {name: statistics.median(float(o["first_step_s"]) for o in r) for name, r in results.items()}
        memory = {name: max(float(o[memory_key]) for o in r) for name, r in results.items()}
        print(f"{preset}, {size}x{size}, batch {batch}, {args.device}"
              f"{f', {args.threads} threads' if args.device == 'cpu' else ''}, {int(params[name]):,} parameters "
              f"(auxiliary head included); median of {args.rounds} rounds of {args.steps} steps after the first")
        print(f"  {'variant':<40} {'images/s':>9} {'first step':>11} {'peak memory':>12}")
        for name in variants:
            print(f"  {name:<40} {rate[name]:>9.3f} {first[name]:>9.1f} s {memory[name]:>9.0f} MB")
        if args.device == "cuda":
            for setting in GPU_SETTINGS:
                ours, theirs = f"engine, {setting}", f"python reference, {setting}"
                print(f"  engine / reference, {setting}: {rate[ours] / rate[theirs]:.2f}x images/s, "
                      f"{memory[ours] / memory[theirs]:.2f}x peak GPU memory")
            continue
        ours = "engine (channels_last)"
        faster = max(("python reference, contiguous", "python reference, channels_last"), key=rate.get)
        print(f"  engine / faster reference ({faster.split(', ')[1]}): {rate[ours] / rate[faster]:.2f}x images/s "
              f"(target >= 1.5), {memory[ours] / memory[faster]:.2f}x peak memory (target <= 1.0)")
        if args.compare_build:
            other = f"engine, {args.compare_build}"
            print(f"  engine / {other}: {rate[ours] / rate[other]:.2f}x images/s, "
                  f"{memory[ours] / memory[other]:.2f}x peak memory")
        for workers in (1, 2):
            loader = float(run([os.path.join(args.build_dir, "bin", "nas_bench_image_loader"), "--size", str(size),
                                "--batch", str(batch), "--workers", str(workers),
                                "--threads", str(args.threads)])["images_per_s"])
            print(f"  image_folder loader, {workers} thread{'s' if workers > 1 else ''}: {loader:.1f} images/s, "
                  f"{loader / rate[ours]:.0f}x the engine's training (target >= 5x)")

    if args.dp_steps and args.device == "cpu":
        data_parallel(args)


def data_parallel(args):
    genotype = os.path.join(ROOT, "configs", "genotypes", "nasnet_a.yaml")
    config = f"""experiment: {{name: dp_mobile, seed: 0}}
train:
  genotype: {genotype}
  preset: nasnet_a_mobile
  epochs: 1
  batch_size: 16
  validation: 0
  space: {{plugin: nasnet}}
  dataset: {{plugin: synthetic, size: {16 * args.dp_steps}, height: 224, width: 224, classes: 10}}
"""
    rates = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dp_mobile.yaml")
        with open(path, "w") as f:
            f.write(config)
        for r in range(args.rounds):
            for processes in rates:
                run_dir = os.path.join(tmp, f"p{processes}-{r}")
                subprocess.run([os.path.join(args.build_dir, "bin", "nas-host"), "run", path, "--run-dir", run_dir,
                                "--nproc", str(processes - 1)], check=True, capture_output=True, text=True)
                with open(os.path.join(run_dir, "result.json")) as f:
                    rates[processes].append(json.load(f)["train_images_per_s"])
                print(f"  data-parallel mobile, {processes} process(es): {rates[processes][-1]:.2f} images/s",
                      file=sys.stderr, flush=True)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"data-parallel train of nasnet_a_mobile (224x224, global batch 16, {args.dp_steps} steps, median of "
          f"{args.rounds} rounds): 1 process {one:.2f} images/s, 2 processes (Gloo) {two:.2f} images/s, "
          f"ratio {two / one:.2f}")


if __name__ == "__main__":
    main()
