"""Offline plan speed: ``python -m ops plan sg|eu --json`` side by side, medians.

Each run is a fresh process, as ``make plan`` and the tests start it. Three cases:

- ``eu``: the fallback stack alone;
- ``sg``: the primary with the edge, eu's outputs (its StackReference) kept from the
  last plan of the same sources (``build/plan-outputs``);
- ``sg, eu re-planned``: the same with that cache emptied first, as before it existed;

and, with ``--bytecode``, ``eu`` and ``sg`` again with the installed packages'
bytecode ignored (``PYTHONPYCACHEPREFIX`` at an empty directory, and
``PYTHONDONTWRITEBYTECODE=1`` as on these machines): what every process paid before the
environment was compiled at install.

    python benchmarks/plan_speed.py [--runs 5] [--bytecode]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "plan-outputs"


def timed(stack: str, env: dict[str, str], replan: bool = False) -> float:
    if replan:
        shutil.rmtree(CACHE, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(  # noqa: S603 (fixed argv)
        [sys.executable, "-m", "ops", "plan", stack, "--json"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bytecode", action="store_true", help="also without bytecode")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    cases: dict[str, list[float]] = {"eu": [], "sg": [], "sg, eu re-planned": []}
    if args.bytecode:
        cases |= {"eu, no bytecode": [], "sg, no bytecode": []}
    timed("eu", env)  # warm the file cache and the outputs cache
    with tempfile.TemporaryDirectory() as empty:
        cold = {**env, "PYTHONPYCACHEPREFIX": empty}
        for _ in range(args.runs):  # interleaved: a slow moment hits every case alike
            cases["eu"].append(timed("eu", env))
            cases["sg"].append(timed("sg", env))
            cases["sg, eu re-planned"].append(timed("sg", env, replan=True))
            if args.bytecode:
                cases["eu, no bytecode"].append(timed("eu", cold))
                cases["sg, no bytecode"].append(timed("sg", cold))
    medians = {name: statistics.median(times) for name, times in cases.items()}
    reference, sizes = _reference_cost_and_sizes()
    print(f"{'case':<22} {'median s':>9} {'min s':>7} {'max s':>7}  (runs: {args.runs})")
    for name, times in cases.items():
        print(f"{name:<22} {medians[name]:>9.2f} {min(times):>7.2f} {max(times):>7.2f}")
    print(f"sg / eu: {medians['sg'] / medians['eu']:.2f}x")
    print(f"sg, eu re-planned / eu: {medians['sg, eu re-planned'] / medians['eu']:.2f}x")
    if args.bytecode:
        print(f"no bytecode / bytecode, sg: {medians['sg, no bytecode'] / medians['sg']:.2f}x")
    print(f"sg's StackReference answered from the kept outputs: {reference * 1000:.0f} ms")
    print("resources registered: " + ", ".join(f"{s} {n}" for s, n in sizes.items()))
    return 0


def _reference_cost_and_sizes() -> tuple[float, dict[str, int]]:
    """What sg pays for eu beyond its own resources (reading the kept outputs, hashing
    the sources for their key: median of 5), and how many resources each stack plans:
    the rest of the sg/eu ratio is sg's own, larger, program."""
    sys.path.insert(0, str(ROOT))
    from ops.plan import plan_stack, planned_outputs

    times = []
    for _ in range(5):
        start = time.perf_counter()
        planned_outputs("eu", ROOT)
        times.append(time.perf_counter() - start)
    sizes = {stack: len(plan_stack(stack, ROOT).resources) for stack in ("eu", "sg")}
    return statistics.median(times), sizes


if __name__ == "__main__":
    sys.exit(main())
