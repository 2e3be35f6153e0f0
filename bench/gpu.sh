#!/usr/bin/env bash
# GPU benchmarks, for a machine with NVIDIA GPUs (on one H200: 5 min 53 s with part 4 at 5 steps;
# part 4 now takes 20 steps per variant, which adds an estimated minute):
#   1. child training through the engine (Trainer + Loader, SGD), NASNet-A 2@768 on CIFAR-shaped
#      32x32 data: eager fp32 vs bf16 autocast + channels_last, images/s and their ratio;
#   2. a search-sized child (NASNet-A 2@96, batch 64, bf16 + channels_last) trained by one process vs
#      four processes sharing GPU 0 at once (what experiment.processes_per_gpu: 4 does), images/s;
#   3. all-reduce bandwidth of the process groups that data-parallel training uses: NCCL with one rank
#      per GPU, and Gloo between four processes that share a GPU;
#   4. the paper's ImageNet models, NASNet-A Mobile (224, batch 128) and Large (331, batch 32), through
#      the engine and through bench/reference in fp32, fp32 channels_last and bf16 + channels_last
#      (bench/imagenet.py --device cuda): images/s and peak GPU memory, engine / reference per setting.
# Usage: bench/gpu.sh [BUILD_DIR]   (default build/release; configured and built first if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
if [ ! -x "$build/bin/nas_bench_training" ]; then
  cmake --preset release && cmake --build --preset release --target nas_bench_training nas_bench_allreduce
fi
bin=$build/bin
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
gpus=$(nvidia-smi -L | wc -l)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

rate() { "$bin/nas_bench_training" --device cuda --loader 0 "$@" | awk '/^images_per_s/ {print $2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "## 1. NASNet-A 2@768 child training, images/s"
for batch in 32 128; do
  eager=$(rate --N 2 --F 768 --batch "$batch" --steps 40 --workers 4 --channels_last 0 --bf16 0)
  fast=$(rate --N 2 --F 768 --batch "$batch" --steps 40 --workers 4 --channels_last 1 --bf16 1)
  echo "batch $batch: eager fp32 $eager, bf16+channels_last $fast, ratio $(ratio "$fast" "$eager")"
done

echo "## 2. NASNet-A 2@96 search child, batch 64: 1 process vs 4 sharing GPU 0, images/s"
child=(--N 2 --F 96 --batch 64 --steps 150 --workers 2 --channels_last 1 --bf16 1)
one=$(rate "${child[@]}")
for i in 1 2 3 4; do rate "${child[@]}" >"$tmp/$i" & done
wait
four=$(cat "$tmp"/[1-4] | awk '{ s += $1 } END { printf "%.2f", s }')
echo "1 process: $one; 4 processes: $four in all ($(cat "$tmp"/[1-4] | tr '\n' ' ')); ratio $(ratio "$four" "$one")"

echo "## 3. all-reduce bandwidth (float32)"
"$bin/nas_bench_allreduce" --ranks "$gpus" --device cuda --sizes_mb 16,64,256 --iters 20
"$bin/nas_bench_allreduce" --ranks 4 --device cuda --share 1 --sizes_mb 16,64 --iters 10
if [ "$gpus" -lt 2 ]; then
  echo "(one GPU: NCCL has one rank and no link to measure; its line shows the call's cost, its bus bandwidth is 0)"
fi

echo "## 4. NASNet-A Mobile and Large (ImageNet sizes), engine vs Python reference"
python3 bench/imagenet.py "$build" --device cuda --rounds 1 --steps 20
