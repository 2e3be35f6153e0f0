#!/usr/bin/env python3
"""The search's work queue on one machine.

1. Queue overhead per evaluation: NAS-Bench-201 lookups (microseconds each) in one process vs through
   the c10d queue to one worker (nas-host --nproc 1); the difference per evaluation is the queue's cost.
2. Scaling: evaluations per hour of quickstart-size children (configs/quickstart.yaml) with W = 1 and
   W = 2 workers, the machine's cores split among them; efficiency = rate(W=2) / (2 x rate(W=1)).

    bench/distributed.py build/release [--lookups 2000] [--children 8]
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
    parser.add_argument("--children", type=int, default=8)
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
        # Children as in the quickstart; batch = budget so that no round boundary idles a worker.
        children = [f"search.evaluations={args.children}", f"search.batch={args.children}", "search.wall_time=0"]
        rates = {}
        for workers in (1, 2):
            seconds = search_seconds(host, quickstart, os.path.join(tmp, f"w{workers}"), children + ["--nproc", str(workers)])
            rates[workers] = 3600 * args.children / seconds
            print(f"W = {workers}: {args.children} children in {seconds:.1f} s = {rates[workers]:.0f} evaluations/hour")
        print(f"scaling efficiency W=2 vs W=1: {rates[2] / (2 * rates[1]):.2f} (target >= 0.9)")


if __name__ == "__main__":
    main()
