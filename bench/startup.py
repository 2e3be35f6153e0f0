#!/usr/bin/env python3
"""Start-up cost of loading plugins: `nas-host plugins list` with every shipped plugin vs with none.

Runs both commands interleaved (so machine noise hits both alike), REPEAT times each, and reports the
median wall time of each and their ratio. Target: ratio < 1.20 (loading adds under 20%).

usage: bench/startup.py [BUILD_DIR] [--repeat N]      (BUILD_DIR default: build/release)
"""
import argparse
import os
import statistics
import subprocess
import sys
import time


def timed(cmd, env):
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir", nargs="?", default="build/release")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    host = os.path.join(args.build_dir, "bin", "nas-host")
    plugin_dir = os.path.join(args.build_dir, "lib", "nas", "plugins")
    plugins = sorted(f for f in os.listdir(plugin_dir) if f.startswith("libnas_") and f.endswith(".so"))
    env = {k: v for k, v in os.environ.items() if k != "NAS_PLUGIN_PATH"}
    with_plugins = [host, "plugins", "list"]
    without = [host, "plugins", "list", "--no-default-plugins"]

    for cmd in (with_plugins, without):  # warm the page cache
        timed(cmd, env)
    loaded, bare = [], []
    for _ in range(args.repeat):
        loaded.append(timed(with_plugins, env))
        bare.append(timed(without, env))
    m_loaded, m_bare = statistics.median(loaded), statistics.median(bare)
    ratio = m_loaded / m_bare
    print(f"nas-host start-up, median of {args.repeat} runs each")
    print(f"  without plugins:          {m_bare * 1000:8.1f} ms")
    print(f"  with {len(plugins)} plugins loaded:   {m_loaded * 1000:8.1f} ms")
    print(f"  ratio: {ratio:.3f}  (target < 1.20: {'met' if ratio < 1.20 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
