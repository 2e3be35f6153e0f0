#!/usr/bin/env python3
"""The work queue at scale on one machine: W workers (nas-host --nproc W, loopback) evaluating with
the synthetic evaluator, each evaluation sleeping 1 s, so the ideal is W evaluations per second.

Measured in a steady window (from the 2W-th to the 18W-th finished evaluation, so that the workers'
start-up is left out): evaluations per second against the ideal, the coordinator's CPU (share of one
core, from /proc/PID/stat), and the resident memory of an idle worker (VmRSS, and PSS from
smaps_rollup: RSS counts the shared LibTorch pages of every process in full).

    bench/queue_scale.py build/release [--workers 16 64]
"""
import argparse
import os
import sqlite3
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def memory_kb(pid):
    rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
    pss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/smaps_rollup") if l.startswith("Pss:"))
    return rss, pss


def finished(store):
    try:
        return sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5).execute(
            "SELECT count(*) FROM evaluations WHERE status IN ('ok', 'failed')").fetchone()[0]
    except sqlite3.Error:
        return 0


def measure(host, workers, folder):
    run = os.path.join(folder, f"w{workers}")
    config = os.path.join(ROOT, "tests", "configs", "search_synthetic.yaml")
    total = 20 * workers
    coordinator = subprocess.Popen(
        [host, "run", config, "--run-dir", run, "--nproc", str(workers), "--log-level", "warn",
         f"search.evaluations={total}", "search.schedule=async", "search.evaluator.seconds=1",
         "search.evaluator.fail_rate=0", "search.repeats=evaluate", "experiment.threads=1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = os.path.join(run, "search.sqlite")
    while finished(store) < 2 * workers:
        time.sleep(0.05)
    t1, c1 = time.monotonic(), cpu_seconds(coordinator.pid)
    n1 = finished(store)
    children = [int(p) for p in open(f"/proc/{coordinator.pid}/task/{coordinator.pid}/children").read().split()]
    rss, pss = memory_kb(children[0])  # a worker between evaluations sleeps: as idle as a busy one
    while finished(store) < 18 * workers:
        time.sleep(0.05)
    t2, c2 = time.monotonic(), cpu_seconds(coordinator.pid)
    n2 = finished(store)
    coordinator.wait()
    rate = (n2 - n1) / (t2 - t1)
    return {"rate": rate, "ideal": workers / 1.0, "coordinator_cpu": (c2 - c1) / (t2 - t1), "rss_mb": rss / 1024,
            "pss_mb": pss / 1024, "exit": coordinator.returncode}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build")
    parser.add_argument("--workers", type=int, nargs="+", default=[16, 64])
    args = parser.parse_args()
    host = os.path.join(args.build, "bin", "nas-host")
    print("workers  evaluations/s  ideal  of ideal  coordinator CPU (of a core)  idle worker RSS / PSS  exit")
    with tempfile.TemporaryDirectory() as folder:
        for w in args.workers:
            m = measure(host, w, folder)
            print(f"{w:7d}  {m['rate']:13.2f}  {m['ideal']:5.0f}  {m['rate'] / m['ideal']:8.3f}  "
                  f"{100 * m['coordinator_cpu']:26.1f}%  {m['rss_mb']:8.0f} / {m['pss_mb']:.0f} MB  {m['exit']:4d}")


if __name__ == "__main__":
    main()
