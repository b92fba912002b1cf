"""Does the search's proxy rank networks the way the final training does?

For N random genotypes of a search space, one run measures side by side:

- the NASWOT score (the parents' ranking and the mutation reward),
- A after the proxy budget (what the search grades candidates on),
- A after a longer "second rung" budget (what successive halving would grade on),
- A after the final budget (what the user takes away),

each training starting from the same seeded weights, and prints the Kendall tau of
every proxy (and of minus the parameter count, the naive "bigger is better" ranking)
against the final A. ``--space full`` samples the paper's operator lists, ``--space
search`` the search's default lists (see docs/search.md). ``--around default`` takes
the task's default genotype and N-1 networks 1 to 3 mutations away from it instead:
the neighbourhood a warm-started search explores, where ranking matters most.

    python benchmarks/bench_search_proxy_tau.py --task sr --data ../shared/data/sr/T91 \\
        --n 20 --proxy-seconds 6 --rung-seconds 18 --final-seconds 60 --out tau-sr.json

A is measured on the validation split the search uses (for a folder without a val
split, every 10th image), never on a separate test set.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch
from scipy.stats import kendalltau

from edgenas.search.config import LEGACY_SPACE, SearchConfig
from edgenas.search.evaluation import CandidateEvaluator
from edgenas.training import Budget, train


def _accuracy(evaluator: CandidateEvaluator, genotype: str, seconds: float) -> float:
    model = evaluator.build(genotype)
    result = train(
        model,
        evaluator.task,
        evaluator.train_source,
        evaluator.val_data,
        Budget(seconds=seconds),
        evaluator.train_config,
    )
    return float(result.normalised_accuracy)


def _neighbourhood(space, config: SearchConfig, around: str, n: int, seed: int) -> list[str]:
    """``around`` (or the task's default genotype) and ``n - 1`` distinct networks 1 to 3
    mutations away from it."""
    import random

    from edgenas.space import decode

    start = config.start_genotypes[0] if around == "default" else around
    rng = random.Random(seed)
    found = {start: None}
    while len(found) < n:
        genotype = decode(start)
        for _ in range(rng.randint(1, 3)):
            genotype = space.mutate(genotype, rng)
        found.setdefault(genotype.encode(), None)
    return list(found)


def _tau(xs: list[float], ys: list[float]) -> tuple[float, float]:
    tau, p = kendalltau(xs, ys)
    return float(tau), float(p)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="sr")
    parser.add_argument("--data", default=None)
    parser.add_argument("--val-data", default=None)
    parser.add_argument("--input", default=None, help="proxy input HxW (default: the search's)")
    parser.add_argument("--space", choices=("search", "full"), default="search")
    parser.add_argument("--around", default=None, help="default, or a genotype: its mutations")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--proxy-seconds", type=float, default=6.0)
    parser.add_argument("--rung-seconds", type=float, default=18.0)
    parser.add_argument("--final-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    config = SearchConfig(task=args.task, data=args.data, val_data=args.val_data, seed=args.seed)
    if args.input:
        height, width = (int(v) for v in args.input.split("x"))
        config = dataclasses.replace(config, proxy_input=(height, width))
    if args.space == "full":
        config = dataclasses.replace(config, **LEGACY_SPACE)
    evaluator = CandidateEvaluator(config)
    space = config.space()
    if args.around:
        genotypes = _neighbourhood(space, config, args.around, args.n, args.seed)
    else:
        genotypes = [g.encode() for g in space.sample_unique(args.n, seed=args.seed)]
    rows = []
    for index, genotype in enumerate(genotypes):
        start = time.perf_counter()
        row = {
            "genotype": genotype,
            "naswot": float(evaluator.score(genotype)),
            **evaluator.static_resources(genotype),
            "proxy": _accuracy(evaluator, genotype, args.proxy_seconds),
            "rung": _accuracy(evaluator, genotype, args.rung_seconds),
            "final": _accuracy(evaluator, genotype, args.final_seconds),
        }
        rows.append(row)
        print(
            f"{index:3d} naswot {row['naswot']:8.1f}  params {row['params']:>8,.0f}  "
            f"A proxy {row['proxy']:.4f}  rung {row['rung']:.4f}  final {row['final']:.4f}  "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    final = [r["final"] for r in rows]
    print(f"\n{args.task}, {args.space} space, {len(rows)} genotypes, Kendall tau vs final A:")
    results = {}
    for name, key in (
        (f"proxy A ({args.proxy_seconds:g} s)", "proxy"),
        (f"rung A ({args.rung_seconds:g} s)", "rung"),
        ("NASWOT score", "naswot"),
        ("parameters (more = better)", "params"),
    ):
        tau, p = _tau([r[key] for r in rows], final)
        results[key] = {"tau": tau, "p": p}
        print(f"  {name:28s} tau {tau:+.3f}  (p = {p:.3f})")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"args": vars(args), "rows": rows, "tau": results}, handle, indent=1)
    evaluator.close()


if __name__ == "__main__":
    main()
