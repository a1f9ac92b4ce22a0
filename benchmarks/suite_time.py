"""The test suite's wall and CPU time by pytest-xdist worker count, medians.

Each case runs the whole suite as ``make pytest`` does (``-n N --dist loadfile``) and
records its wall time and the CPU time of the run and everything it started (workers,
sshd sandboxes, restic, moto's threads). On a machine with C cores the suite cannot
finish faster than CPU / C; the gap between that bound and the wall time is waiting
(health-check retries, SSH round trips, subprocess start-up) that more workers than
cores can overlap with other tests' work.

    python benchmarks/suite_time.py [--workers 2 4] [--runs 1] [-- PYTEST_ARGS...]

Everything runs on 127.0.0.1, as the tests themselves do.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def timed(workers: int, extra: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of one run of the suite with ``workers`` workers."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(  # noqa: S603 (fixed argv)
        [*PYTEST, "-n", str(workers), "--dist", "loadfile", *extra],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    results: dict[int, list[tuple[float, float]]] = {n: [] for n in args.workers}
    for _ in range(args.runs):  # interleaved: a slow moment hits every case alike
        for workers in args.workers:
            results[workers].append(timed(workers, args.pytest_args))
    print(f"{'workers':>7} {'wall s':>8} {'CPU s':>8} {'CPU/cores s':>12}  (cores: {cores})")
    for workers, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"{workers:>7} {wall:>8.0f} {cpu:>8.0f} {cpu / cores:>12.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
