#!/usr/bin/env python3
"""The work queue at scale on one machine: W workers (nas-host --nproc W, loopback) evaluating with
the synthetic evaluator, each evaluation sleeping 1 s, so the ideal is W evaluations per second.

Measured in a steady window (from the 2W-th to the 12W-th finished evaluation, so that the workers'
start-up is left out): evaluations per second against the ideal, the coordinator's CPU (share of one
core, from /proc/PID/stat), the resident memory of an idle worker (VmRSS, and PSS from smaps_rollup:
RSS counts the shared LibTorch pages of every process in full; evaluations run in the worker,
search.isolation=none: with the default, process, each worker has an evaluator process of about its
own size), and the store requests per second
the queue made (the coordinator's summary line in the run's log.txt; a build without that line shows
'-').

Give several nas-host executables to compare them (e.g. before and after a change; a wrapper script
that sets LD_PRELOAD to another libnas-host-runtime.so will do): each worker count runs on every one
in turn, so they share the machine's state of the moment.

    bench/queue_scale.py build/release/bin/nas-host [OTHER_NAS_HOST ...] [--workers 16 64]
"""
import argparse
import os
import re
import sqlite3
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
SUMMARY = re.compile(r"work queue 'search' closed: .* store requests per second: ([0-9.]+) by the coordinator, "
                     r"([0-9.]+) by the workers")


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


def wait_for(store, count, coordinator):
    while finished(store) < count:
        if coordinator.poll() is not None:
            raise SystemExit(f"the search stopped (exit {coordinator.returncode}) before {count} evaluations")
        time.sleep(0.05)


def measure(host, workers, run):
    config = os.path.join(ROOT, "tests", "configs", "search_synthetic.yaml")
    total = 14 * workers
    coordinator = subprocess.Popen(
        [host, "run", config, "--run-dir", run, "--nproc", str(workers), "--log-level", "warn",
         f"search.evaluations={total}", "search.schedule=async", "search.evaluator.seconds=1",
         "search.evaluator.fail_rate=0", "search.repeats=evaluate", "search.isolation=none", "experiment.threads=1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = os.path.join(run, "search.sqlite")
    wait_for(store, 2 * workers, coordinator)
    t1, c1 = time.monotonic(), cpu_seconds(coordinator.pid)
    n1 = finished(store)
    children = [int(p) for p in open(f"/proc/{coordinator.pid}/task/{coordinator.pid}/children").read().split()]
    rss, pss = memory_kb(children[0])  # a worker between evaluations sleeps: as idle as a busy one
    wait_for(store, 12 * workers, coordinator)
    t2, c2 = time.monotonic(), cpu_seconds(coordinator.pid)
    n2 = finished(store)
    coordinator.wait()
    summary = SUMMARY.search(open(os.path.join(run, "log.txt")).read())
    return {"rate": (n2 - n1) / (t2 - t1), "ideal": workers / 1.0, "coordinator_cpu": (c2 - c1) / (t2 - t1),
            "rss_mb": rss / 1024, "pss_mb": pss / 1024, "exit": coordinator.returncode,
            "requests": f"{float(summary[1]):.0f} + {float(summary[2]):.0f}" if summary else "-"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("hosts", nargs="+", help="nas-host executables")
    parser.add_argument("--workers", type=int, nargs="+", default=[16, 64])
    args = parser.parse_args()
    print("host  workers  evaluations/s  ideal  of ideal  coordinator CPU  store requests/s (coordinator + workers)"
          "  idle worker RSS / PSS  exit")
    with tempfile.TemporaryDirectory() as folder:
        for w in args.workers:
            for h, host in enumerate(args.hosts):
                m = measure(host, w, os.path.join(folder, f"h{h}-w{w}"))
                print(f"{h:4d}  {w:7d}  {m['rate']:13.2f}  {m['ideal']:5.0f}  {m['rate'] / m['ideal']:8.3f}  "
                      f"{100 * m['coordinator_cpu']:14.1f}%  {m['requests']:>40}  {m['rss_mb']:9.0f} / "
                      f"{m['pss_mb']:.0f} MB  {m['exit']:4d}", flush=True)


if __name__ == "__main__":
    main()
