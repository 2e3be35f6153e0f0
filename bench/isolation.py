#!/usr/bin/env python3
"""What evaluating children in a supervised process (search.isolation=process) costs, against
isolation=none, in one run with the variants interleaved.

1. Per evaluation and at start: searches with the synthetic evaluator (no work per child) of SMALL and
   LARGE evaluations in both modes; the slope of the search stage's time over the evaluation count is
   the cost of one evaluation (the round trip to the child), the intercept the start-up (a fresh
   nas-host process loading the plugins and the config).
2. Against a real child: the quickstart (configs/quickstart.yaml) cut to CHILDREN evaluations in both
   modes: the time of one quickstart child, and the isolation cost as a share of it.

usage: bench/isolation.py [BUILD_DIR] [--repeat N] [--children K]    (BUILD_DIR default: build/release)
"""
import argparse
import os
import re
import statistics
import subprocess
import tempfile

SMALL, LARGE = 20, 2020


def stage_seconds(host, config, overrides, run_dir):
    out = subprocess.run([host, "run", config, "--run-dir", run_dir] + overrides, check=True,
                         capture_output=True, text=True).stderr
    return float(re.search(r"stage 'search' done in ([0-9.]+) s", out).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir", nargs="?", default="build/release")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--children", type=int, default=3)
    args = parser.parse_args()
    host = os.path.abspath(os.path.join(args.build_dir, "bin", "nas-host"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    synthetic = os.path.join(root, "tests", "configs", "search_synthetic.yaml")
    quickstart = os.path.join(root, "configs", "quickstart.yaml")
    modes = ["process", "none"]

    with tempfile.TemporaryDirectory() as scratch:
        n = 0

        def run(config, overrides):
            nonlocal n
            n += 1
            return stage_seconds(host, config, overrides, os.path.join(scratch, str(n)))

        times = {(m, size): [] for m in modes for size in (SMALL, LARGE)}
        for _ in range(args.repeat):
            for size in (SMALL, LARGE):
                for m in modes:
                    times[(m, size)].append(run(synthetic, [f"search.isolation={m}", f"search.evaluations={size}",
                                                            "search.evaluator.fail_rate=0"]))
        fit = {}
        for m in modes:
            small, large = statistics.median(times[(m, SMALL)]), statistics.median(times[(m, LARGE)])
            per_eval = (large - small) / (LARGE - SMALL)
            fit[m] = (per_eval, small - SMALL * per_eval)
            print(f"synthetic, isolation={m}: {1e3 * per_eval:.3f} ms per evaluation, {fit[m][1]:.3f} s at start "
                  f"(median search stage of {args.repeat}: {small:.2f} s for {SMALL}, {large:.2f} s for {LARGE})")
        per_eval = fit["process"][0] - fit["none"][0]
        startup = fit["process"][1] - fit["none"][1]
        print(f"isolation costs {1e3 * per_eval:.3f} ms per evaluation and {startup:.3f} s at start")

        child = {m: [] for m in modes}
        for _ in range(max(1, args.repeat - 1)):
            for m in modes:
                child[m].append(run(quickstart, [f"search.isolation={m}", f"search.evaluations={args.children}"])
                                / args.children)
        for m in modes:
            print(f"quickstart, isolation={m}: {statistics.median(child[m]):.2f} s per child (search stage / {args.children})")
        reference = statistics.median(child["none"])
        print(f"per evaluation: {100 * per_eval / reference:.3f}% of a quickstart child; start-up: "
              f"{100 * startup / reference:.1f}% of one child, {100 * startup / (30 * reference):.2f}% of the "
              f"quickstart's 30-child search")


if __name__ == "__main__":
    main()
