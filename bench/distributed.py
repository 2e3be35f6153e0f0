#!/usr/bin/env python3
"""The search's work queue on one machine.

1. Queue overhead per evaluation: NAS-Bench-201 lookups (microseconds each) in one process vs through
   the c10d queue to one worker (nas-host --nproc 1); the difference per evaluation is the queue's cost.
2. Scaling: evaluations per hour of quickstart-size children (configs/quickstart.yaml) with W = 1 and
   W = 2 workers, the machine's cores split among them. The same children in every run: one
   synchronous round of all of them (PPO proposes them at once), which the workers pull from the queue
   as they come free. Scaling efficiency = rate(W=2) / (2 x rate(W=1)) with the same share of the
   machine per worker in both runs (one core each on 2 cores): what the distribution keeps of the
   ideal (queue, scheduling, the idle tail, two processes sharing caches and memory). A third run, one
   worker on all cores, gives the gain of two workers over one that has the whole machine; that ratio
   is bounded by a child's own speed-up from 1 thread to all, which no distribution changes.

    bench/distributed.py build/release [--lookups 2000] [--children 12]
"""
import argparse
import json
import os
import re
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def search_seconds(host, config, run_dir, args):
    out = subprocess.run([host, "run", config, "--run-dir", run_dir, *args], check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
    return float(re.search(r"stage 'search' done in ([0-9.]+) s", out).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build")
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--children", type=int, default=12)
    args = parser.parse_args()
    host = os.path.join(args.build, "bin", "nas-host")
    nb201 = os.path.join(ROOT, "configs", "search_nb201_ppo.yaml")
    quickstart = os.path.join(ROOT, "configs", "quickstart.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        budget = [f"search.evaluations={args.lookups}"]
        local = search_seconds(host, nb201, os.path.join(tmp, "local"), budget)
        queued = search_seconds(host, nb201, os.path.join(tmp, "queued"), budget + ["--nproc", "1"])
        print(f"queue overhead: {args.lookups} lookups in {local:.2f} s locally, {queued:.2f} s through the queue: "
              f"{1e3 * (queued - local) / args.lookups:.2f} ms per evaluation (target < 5 ms)")
        children = [f"search.evaluations={args.children}", "search.schedule=sync", f"search.batch={args.children}",
                    "search.wall_time=0"]
        rates = {}
        for label, workers, extra in (("W = 1, 1 thread", 1, ["experiment.threads=1"]), ("W = 1, all cores", 1, []),
                                      ("W = 2, cores split", 2, [])):
            seconds = search_seconds(host, quickstart, os.path.join(tmp, f"w{len(rates)}"),
                                     children + extra + ["--nproc", str(workers)])
            rates[label] = 3600 * args.children / seconds
            print(f"{label}: {args.children} children in {seconds:.1f} s = {rates[label]:.0f} evaluations/hour")
        two, one, whole = rates["W = 2, cores split"], rates["W = 1, 1 thread"], rates["W = 1, all cores"]
        print(f"scaling efficiency W=2 vs W=1, one core per worker: {two / (2 * one):.2f} (target >= 0.9)")
        print(f"W=2 vs one worker on all cores: {two / whole:.2f}x the evaluations/hour; rate(W=2) / (2 x rate) = "
              f"{two / (2 * whole):.2f}, at most 1 / {whole / one:.2f} (a child's speed-up from 1 thread to all)")

if __name__ == "__main__":
    main()
