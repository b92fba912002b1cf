"""Would successive halving over a tabu step's children pick a better child than the
mutation reward does? (issue 13 item 3: "short training for all, longer for the best")

A tabu step proposes ``--children`` (4, the search's default) mutations of the current
network and trains the one with the highest reward R; without a size or latency target
in play R orders children by their training-free score, here training speed (the
default). Successive halving would instead train every child briefly (a rung of
``--rung-seconds``) and continue only the best of them to the full proxy.

The parent is the task's default genotype: the warm start, the first network a search
from the defaults moves from. ``--n`` distinct single mutations of it (as the search
proposes them) are each scored (training speed) and trained three times from the same
seeded weights: a rung, the proxy (``--proxy-seconds``, what the search trains) and a
longer final training (``--final-seconds``, the recipe's peak rate, as the final model
trains: the ranking target). Every ``--children``-subset of them then stands for one
tabu step, and the script reports, over all subsets, the final A of the child each
policy picks:

- **R (the search now)**: the fastest child; costs one proxy training per step;
- **a random child**: the subset's mean; one proxy training;
- **successive halving**: the best child after the rung, continued to the proxy;
  ``children x rung + (proxy - rung)`` seconds of training per step;
- **proxy for all**: the best child after the full proxy; ``children x proxy``;
- **the best child**: by its final A (no policy can beat it).

Budgets are CPU time on one thread, so load barely moves them.

    python benchmarks/bench_search_child_halving.py --task seg --data CAMVID-DEV \\
        --n 12 --out halving-seg.json
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import statistics
import sys
import time

import torch
from bench_search_inherit_tau import _children, _train  # this folder is on sys.path
from bench_search_proxy_tau import _tau

from edgenas.errors import UserError
from edgenas.parsing import parse_shape
from edgenas.search.config import SearchConfig
from edgenas.search.evaluation import CandidateEvaluator


def policy_picks(rows: list[dict], children: int) -> dict[str, dict[str, float]]:
    """For every ``children``-subset of ``rows`` (each with ``speed``, ``rung``,
    ``proxy`` and ``final``), the final A of the child each policy picks; returns per
    policy the mean of those over the subsets and the share of subsets in which the
    pick is the subset's best child by final A. Ties go to the earlier child."""

    def by(key):
        return lambda subset: max(subset, key=lambda r: r[key])["final"]

    policies = {
        "R (training speed)": by("speed"),
        "random child": lambda subset: statistics.fmean(r["final"] for r in subset),
        "successive halving": by("rung"),
        "proxy for all": by("proxy"),
        "best child": by("final"),
    }
    picks: dict[str, list[float]] = {name: [] for name in policies}
    best_hits: dict[str, int] = dict.fromkeys(policies, 0)
    subsets = list(itertools.combinations(rows, children))
    for subset in subsets:
        best = max(r["final"] for r in subset)
        for name, policy in policies.items():
            value = policy(subset)
            picks[name].append(value)
            best_hits[name] += value == best
    return {
        name: {"mean_final": statistics.fmean(values), "best_share": best_hits[name] / len(subsets)}
        for name, values in picks.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="sr")
    parser.add_argument("--data", default=None)
    parser.add_argument("--val-data", default=None)
    parser.add_argument("--input", default=None, help="proxy input HxW (default: the search's)")
    parser.add_argument("--n", type=int, default=12, help="children (single mutations)")
    parser.add_argument("--children", type=int, default=4, help="children per tabu step")
    parser.add_argument("--rung-seconds", type=float, default=6.0)
    parser.add_argument("--proxy-seconds", type=float, default=18.0)
    parser.add_argument("--final-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    if not 2 <= args.children <= args.n:
        parser.error("--children must be at least 2 and at most --n")
    for name in ("rung_seconds", "proxy_seconds", "final_seconds"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be above 0")
    if args.rung_seconds >= args.proxy_seconds:
        parser.error("--rung-seconds must be below --proxy-seconds")
    torch.set_num_threads(1)
    config = SearchConfig(
        task=args.task, data=args.data, val_data=args.val_data, seed=args.seed, score="speed"
    )
    if args.input:
        config = dataclasses.replace(config, proxy_input=parse_shape(args.input, ndim=2))
    try:
        evaluator = CandidateEvaluator(config)
        try:
            _measure(args, config, evaluator)
        finally:
            evaluator.close()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _measure(args, config: SearchConfig, evaluator: CandidateEvaluator) -> None:
    parent = config.start_genotypes[0]
    rows = []
    for index, child in enumerate(_children(config, parent, args.n, args.seed)):
        start = time.perf_counter()
        row = {"genotype": child, **evaluator.static_resources(child)}
        row["speed"] = float(evaluator.score(child))
        for key, seconds, final in (
            ("rung", args.rung_seconds, False),
            ("proxy", args.proxy_seconds, False),
            ("final", args.final_seconds, True),
        ):
            result = _train(evaluator, evaluator.build(child), seconds, final=final)
            row[key] = float(result.normalised_accuracy)
            row[f"steps_{key}"] = int(result.steps)
        rows.append(row)
        print(
            f"{index:3d} params {row['params']:>8,.0f}  speed {row['speed']:6.1f}/s  "
            f"rung {row['rung']:.4f}  proxy {row['proxy']:.4f}  final {row['final']:.4f}  "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    final = [r["final"] for r in rows]
    print(f"\n{args.task}: {len(rows)} children of the default genotype, one mutation each")
    taus = {}
    for key, label in (("speed", "training speed"), ("rung", "rung"), ("proxy", "proxy")):
        tau, p = _tau([r[key] for r in rows], final)
        taus[key] = {"tau": tau, "p": p}
        print(f"  {label:15s} Kendall tau vs final A {tau:+.3f} (p = {p:.3f})")
    picks = policy_picks(rows, args.children)
    rung, proxy, k = args.rung_seconds, args.proxy_seconds, args.children
    cost = {
        "R (training speed)": proxy,
        "random child": proxy,
        "successive halving": k * rung + proxy - rung,
        "proxy for all": k * proxy,
        "best child": float("nan"),
    }
    print(f"  over all {k}-child steps: final A of the child each policy picks")
    for name, values in picks.items():
        print(
            f"    {name:20s} mean {values['mean_final']:.4f}  the step's best child "
            f"{values['best_share']:5.1%}  training per step {cost[name]:g} s"
        )
    print(
        f"  final A of the children: best {max(final):.4f}, median {statistics.median(final):.4f}"
    )
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(
                {"args": vars(args), "rows": rows, "tau": taus, "picks": picks}, handle, indent=1
            )


if __name__ == "__main__":
    main()
