#!/usr/bin/env python3
"""Controllers compared on NAS-Bench-201 (CIFAR-10): for each, SEEDS searches of BUDGET evaluations
(proposals, repeats included) with configs/search_nb201_ppo.yaml's tabular evaluator. Reports the
mean and std over seeds of the best-found cell's 200-epoch test accuracy ("best-found": the highest
12-epoch validation reward so far), at several points along the budget.

    bench/search_nb201.py build/release [--seeds 10] [--budget 500]

A benchmark report, not a test: differences between good controllers are small on this benchmark.
"""
import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = [
    ("random", ["search.controller.plugin=random"]),
    ("evolution", ["search.controller.plugin=evolution"]),
    ("reinforce", ["search.controller.plugin=reinforce"]),
    ("ppo (paper)", ["search.controller.plugin=ppo"]),
    ("ppo lr=0.01", ["search.controller.plugin=ppo", "search.controller.lr=0.01"]),
]


def curve(store, points):
    """Final score of the best-reward cell among the first n evaluations, for each n in points."""
    rows = sqlite3.connect(store).execute(
        "SELECT reward, final_score FROM evaluations WHERE status != 'cancelled' ORDER BY idx").fetchall()
    out, best = [], None
    for n, (reward, final) in enumerate(rows, 1):
        if reward is not None and (best is None or reward > best[0]):
            best = (reward, final)
        if n in points:
            out.append(best[1])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build", help="build folder, e.g. build/release")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=500)
    args = parser.parse_args()
    host = os.path.join(args.build, "bin", "nas-host")
    config = os.path.join(ROOT, "configs", "search_nb201_ppo.yaml")
    points = [p for p in (20, 50, 100, 200, 300, 500, 1000) if p <= args.budget]
    if args.budget not in points:
        points.append(args.budget)
    print(f"NAS-Bench-201 CIFAR-10, {args.seeds} seeds x {args.budget} evaluations; "
          f"200-epoch test accuracy (%) of the best-found cell, mean ± std (benchmark's best: 94.37)")
    print(f"{'controller':<13}" + "".join(f"{'@' + str(p):>15}" for p in points))
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in VARIANTS:
            curves = []
            for seed in range(args.seeds):
                run_dir = os.path.join(tmp, f"{name.replace(' ', '_')}_{seed}")
                subprocess.run([host, "run", config, "--run-dir", run_dir, f"experiment.seed={seed}",
                                f"search.evaluations={args.budget}", *overrides],
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                curves.append(curve(os.path.join(run_dir, "search.sqlite"), points))
            cells = []
            for i in range(len(points)):
                values = [100 * c[i] for c in curves]
                cells.append(f"{statistics.mean(values):.2f} ± {statistics.stdev(values) if len(values) > 1 else 0:.2f}")
            print(f"{name:<13}" + "".join(f"{c:>15}" for c in cells))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
