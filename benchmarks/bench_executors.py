"""Executors side by side: trained candidates per hour and pool networks scored per
second, inline vs process (2 workers) vs Ray (2 workers, a local instance), on the
built-in depth data of this machine.

Each round runs the same small search once per executor, in that order, in a fresh
process (``edgenas search``), and reads the phase times from the run's summary:

- pool: networks NASWOT-scored per second over the parent phase (sampling, scoring,
  parent selection);
- search: candidates trained per hour over the tabu search phase. The proxy budget
  is in steps, not seconds: two trainings sharing two busy cores take longer, which a
  budget in seconds would hide.

Rounds interleave the executors, so machine noise hits all of them alike; the table
gives medians over rounds and the ratios to inline.

    python benchmarks/bench_executors.py [--rounds 3] [--train-steps 120] [--pool 48]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

EXECUTORS = {
    "inline": [],
    "process x2": ["--executor", "process", "--workers", "2"],
    "ray x2": ["--executor", "ray", "--workers", "2"],
}


def search_args(train_steps: int, pool: int) -> list[str]:
    """A small search whose tabu phase is a few minutes of fixed-budget trainings."""
    return [
        "search", "--input", "48x64", "--deploy-input", "48x64", "--target-params", "60k",
        "--pool", str(pool), "--parents", "2", "--children", "4", "--iterations", "4",
        "--train-steps", str(train_steps), "--final-steps", "2", "--baselines",
        "none", "--batch-size", "8", "--seed", "1",
    ]  # fmt: skip


def run_once(
    name: str, extra: list[str], args: list[str], folder: Path, index: int, pool: int
) -> dict:
    """One search; its throughput figures from the stored summary."""
    run = f"{name.replace(' ', '')}-{index}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "edgenas", *args, *extra, "--name", run]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-2000:]}")
    from edgenas.store import RunStore

    with RunStore.open_readonly(folder / "runs" / run) as store:
        summary = store.run_info().summary
    phases = summary["phase_seconds"]
    return {
        "pool_per_s": pool / phases["parents"],
        "trained": summary["trained"],
        "per_hour": 3600.0 * summary["trained"] / phases["tabu_search"],
        "search_s": phases["tabu_search"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=120)
    parser.add_argument("--pool", type=int, default=48)
    parser.add_argument("--json", help="also write the raw figures here")
    options = parser.parse_args()
    args = search_args(options.train_steps, options.pool)
    results: dict[str, list[dict]] = {name: [] for name in EXECUTORS}
    with tempfile.TemporaryDirectory(prefix="bench-executors-") as tmp:
        for index in range(options.rounds):
            for name, extra in EXECUTORS.items():
                row = run_once(name, extra, args, Path(tmp), index, options.pool)
                results[name].append(row)
                print(
                    f"round {index + 1} {name:>10}: {row['trained']} trained in "
                    f"{row['search_s']:.0f} s = {row['per_hour']:.0f}/h; "
                    f"pool {row['pool_per_s']:.2f} networks/s",
                    flush=True,
                )
    base_hour = statistics.median(r["per_hour"] for r in results["inline"])
    base_pool = statistics.median(r["pool_per_s"] for r in results["inline"])
    print(f"\nmedians over {options.rounds} rounds ({os.cpu_count()} cores, "
          f"{options.train_steps}-step proxy trainings)")  # fmt: skip
    print(f"{'executor':>10} | trained/h | vs inline | pool networks/s | vs inline")
    for name, rows in results.items():
        hour = statistics.median(r["per_hour"] for r in rows)
        pool = statistics.median(r["pool_per_s"] for r in rows)
        print(
            f"{name:>10} | {hour:9.0f} | {hour / base_hour:8.2f}x | {pool:15.2f} | "
            f"{pool / base_pool:8.2f}x"
        )
    if options.json:
        Path(options.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
