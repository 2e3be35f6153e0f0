#!/usr/bin/env python3
"""Multi-fidelity against full evaluation with real training: the quickstart's children (Fashion-MNIST,
a 1@32 NASNet network of 3-block cells) trained for up to EPOCHS epochs, the same controller and seeds
(and number of children unless --asha-children), with `scheduler: none` (every child EPOCHS epochs)
and `scheduler: asha` (rungs of EPOCHS/9, EPOCHS/3 and EPOCHS epochs, reduction 3), the two
interleaved seed by seed.

The default controller, `random`, proposes the same children in both arms for a seed (its proposals do
not depend on rewards) and a child trains the same way in both (its training seed is derived from the
run's seed and its index), so the comparison is of the scheduler alone: does ASHA find the best of the
same children sooner? `--controller evolution` (population 6, sample 3) learns from the rewards each
arm sees, so its children differ between arms. `--asha-children` gives the asha arm more children than
none (ASHA's use: more candidates for the same budget); with `random` its first --children are none's.

For each run: the best validation accuracy of a child trained in full (EPOCHS epochs: the only
accuracies that compare) against the search's wall time. Reported per seed: each arm's final best, its
wall time, when none found its best (with `random`, a matter of the children's order), and the time
ASHA took to first reach none's final best (or within --tolerance of it), as a share of none's time.
The issue's target: the same best accuracy in at most half the wall time.
Also per seed, from the none arm's learning curves: the rank correlation (Spearman) of the children's
accuracies after each of ASHA's lower rungs with their final accuracies, which is what ASHA relies on.

usage: bench/multi_fidelity.py [BUILD_DIR] [--seeds 0 1] [--children 12] [--asha-children N] [--epochs 9]
                               [--threads 2] [--controller random|evolution] [--tolerance 0] [--keep DIR]
                               [--set KEY=VALUE ...]
"""
import argparse
import json
import os
import sqlite3
import subprocess
import tempfile


# Whole controller sections: the quickstart's PPO keys are not theirs.
CONTROLLERS = {"random": "{plugin: random}", "evolution": "{plugin: evolution, population: 6, sample: 3}"}


def run(host, config, run_dir, overrides, threads):
    subprocess.run([host, "run", config, "--run-dir", run_dir, "--threads", str(threads)] + overrides, check=True,
                   capture_output=True, text=True)
    db = sqlite3.connect(os.path.join(run_dir, "search.sqlite"))
    start = db.execute("SELECT min(dispatched_at) FROM jobs").fetchone()[0]
    end = db.execute("SELECT max(finished_at) FROM jobs").fetchone()[0]
    curve, best, best_child = [], None, None
    for finished, reward, fidelity, index in db.execute(
            "SELECT finished_at, reward, fidelity, idx FROM jobs WHERE status = 'ok' ORDER BY finished_at"):
        if fidelity in (0, EPOCHS) and (best is None or reward > best):
            best, best_child = reward, index
            curve.append((finished - start, best))
    return {"seconds": end - start, "best": best, "best_child": best_child, "curve": curve,
            "jobs": db.execute("SELECT count(*) FROM jobs").fetchone()[0]}


def learning_curves(run_dir):
    """The validation accuracy after every epoch (from metrics.jsonl) of each child trained in full."""
    curves = {}
    for child in os.listdir(os.path.join(run_dir, "search")):
        with open(os.path.join(run_dir, "search", child, "metrics.jsonl")) as lines:
            curve = [json.loads(line)["val_top1"] for line in lines if "val_top1" in line]
        if len(curve) == EPOCHS:  # not a child that failed or diverged
            curves[int(child)] = curve
    return curves


def spearman(a, b):
    """Rank correlation, ties given their average rank."""
    def ranks(x):
        order = sorted(range(len(x)), key=lambda i: x[i])
        r = [0.0] * len(x)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    spread = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / spread if spread > 0 else float("nan")  # all equal: no ranking to compare


def rungs(low, high, reduction):
    """The scheduler's rungs: counted down from `high` by `reduction`, rounded, none below `low`."""
    out, f = [high], float(high)
    while round(f / reduction) >= low:
        f /= reduction
        out.insert(0, round(f))
    return sorted(set(out))


def main():
    global EPOCHS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir", nargs="?", default="build/release")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--children", type=int, default=12)
    parser.add_argument("--asha-children", type=int, help="children of the asha arm (default: --children)")
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=0.0)
    parser.add_argument("--controller", choices=CONTROLLERS, default="random")
    parser.add_argument("--keep", help="keep the runs in this folder")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for both arms, e.g. search.evaluator.precise_bn_batches=0")
    args = parser.parse_args()
    EPOCHS = args.epochs
    host = os.path.abspath(os.path.join(args.build_dir, "bin", "nas-host"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    config = os.path.join(root, "configs", "quickstart.yaml")
    common = [f"search.evaluator.epochs={EPOCHS}", "search.wall_time=0",
              f"search.controller={CONTROLLERS[args.controller]}", "search.schedule=async"] + args.set
    asha_children = args.children if args.asha_children is None else args.asha_children
    arms = {
        "none": [f"search.evaluations={args.children}"],
        "asha": [f"search.evaluations={asha_children}", "search.scheduler.plugin=asha",
                 f"search.scheduler.min_fidelity={max(1, EPOCHS // 9)}", f"search.scheduler.max_fidelity={EPOCHS}",
                 "search.scheduler.reduction=3"],
    }
    lower_rungs = rungs(max(1, EPOCHS // 9), EPOCHS, 3)[:-1]
    scratch = args.keep or tempfile.mkdtemp()
    results = {}
    for seed in args.seeds:
        for arm, overrides in arms.items():  # interleaved: both arms of a seed back to back
            run_dir = os.path.join(scratch, f"{arm}-{seed}")
            results[(arm, seed)] = run(host, config, run_dir, common + overrides + [f"experiment.seed={seed}"],
                                       args.threads)
            r = results[(arm, seed)]
            print(f"seed {seed} {arm}: best {r['best']:.4f} (child #{r['best_child']}) in {r['seconds']:.0f} s "
                  f"({r['jobs']} jobs)", flush=True)
            if arm == "none":  # every child trained in full: how well do ASHA's lower rungs rank them?
                curves = list(learning_curves(run_dir).values())
                final = [c[-1] for c in curves]
                print("  rank correlation with the final accuracy: " + ", ".join(
                    f"after epoch {e} {spearman([c[e - 1] for c in curves], final):+.2f}" for e in lower_rungs), flush=True)
    print(f"\n{'seed':>4}  {'none best':>9}  {'none s':>7}  {'reached at':>10}  {'asha best':>9}  {'asha s':>7}  "
          f"{'asha to none best':>18}")
    shares = []
    for seed in args.seeds:
        none, asha = results[("none", seed)], results[("asha", seed)]
        reached = next((t for t, b in asha["curve"] if b >= none["best"] - args.tolerance), None)
        share = reached / none["seconds"] if reached is not None else None
        if share is not None:
            shares.append(share)
        print(f"{seed:>4}  {none['best']:>9.4f}  {none['seconds']:>7.0f}  {none['curve'][-1][0]:>8.0f} s  "
              f"{asha['best']:>9.4f}  {asha['seconds']:>7.0f}  "
              + (f"{reached:>7.0f} s = {share:.2f}x" if share is not None else "not reached".rjust(18)))
    print(json.dumps({"reached": len(shares), "seeds": len(args.seeds),
                      "mean_share_of_none_time": sum(shares) / len(shares) if shares else None}))


if __name__ == "__main__":
    main()
