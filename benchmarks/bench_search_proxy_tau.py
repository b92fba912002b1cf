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
``--within-target-params N`` keeps only sampled networks of at most N parameters: the
population a search with that target explores (its parents and moves stay within it).

Besides NASWOT itself, the table ranks by NASWOT corrected for size (its residual after
a least-squares line over log MACs, fitted on the same networks): NASWOT grows with
MACs, and under a timed budget heavier networks train less.

    python benchmarks/bench_search_proxy_tau.py --task sr --data ../shared/data/sr/T91 \\
        --n 20 --proxy-seconds 6 --rung-seconds 18 --final-seconds 60 --out tau-sr.json

A is measured on the validation split the search uses (for a folder without a val
split, every 10th image), never on a separate test set.

``--clocks wall,cpu`` trains every proxy under both budget clocks (see
``TrainConfig.clock``), each twice and interleaved, and prints for each clock how well
the proxy repeats itself (Kendall tau between its two runs: the ceiling of any ranking
it gives) next to its tau against the final A; the final training is also run twice
(``--final-repeats``) so the table shows how well the final A itself repeats.
``--load N`` starts N processes that burn a core for random 2-8 s stretches with pauses
between them: the shared machine a search meets, made reproducible.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import random
import statistics
import sys
import time

import torch
from scipy.stats import kendalltau

from edgenas.errors import UserError
from edgenas.models.complexity import count_params
from edgenas.parsing import parse_shape
from edgenas.search.config import LEGACY_SPACE, SearchConfig
from edgenas.search.evaluation import CandidateEvaluator
from edgenas.training import Budget, train


def _accuracy(
    evaluator: CandidateEvaluator,
    genotype: str,
    seconds: float,
    clock: str = "cpu",
    lr: float | None = None,
    final: bool = False,
) -> tuple[float, int]:
    """A after ``seconds`` of training on ``clock``, and the steps it took: trained as
    the search trains a candidate (its proxy's peak rate), or with ``final`` as it
    trains the final model (the recipe's); ``lr`` overrides either."""
    model = evaluator.build(genotype)
    base = evaluator.config.final_train_config() if final else evaluator.train_config
    config = dataclasses.replace(base, clock=clock)
    if lr is not None:
        config = dataclasses.replace(config, lr=lr)
    result = train(
        model,
        evaluator.task,
        evaluator.train_source,
        evaluator.val_data,
        Budget(seconds=seconds),
        config,
    )
    return float(result.normalised_accuracy), int(result.steps)


def _burn(seed: int) -> None:
    """Busy a core for random stretches (2-8 s on, 1-6 s off), until killed."""
    rng = random.Random(seed)
    while True:
        end = time.perf_counter() + rng.uniform(2, 8)
        while time.perf_counter() < end:
            pass
        time.sleep(rng.uniform(1, 6))


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


def naswot_residuals(scores: list[float], macs: list[float]) -> list[float]:
    """Each score minus the least-squares line of score over log MACs, fitted on these
    networks: what the score says beyond the network's size."""
    xs = [math.log(m) for m in macs]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(scores)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0.0:  # all of one size: nothing to correct
        return [y - mean_y for y in scores]
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, scores, strict=True)) / spread
    return [y - (mean_y + slope * (x - mean_x)) for x, y in zip(xs, scores, strict=True)]


def _within(space, evaluator, n: int, seed: int, limit: float) -> list[str]:
    """``n`` distinct sampled genotypes of at most ``limit`` parameters (rejection)."""
    picked = []
    for genotype in space.sample_unique(200 * n, seed=seed):
        encoded = genotype.encode()
        if count_params(evaluator.build(encoded)) <= limit:
            picked.append(encoded)
            if len(picked) == n:
                return picked
    raise SystemExit(f"only {len(picked)} of {200 * n} sampled networks have <= {limit:g} params")


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
    parser.add_argument(
        "--within-target-params",
        type=float,
        default=None,
        help="sample only networks of at most this many parameters",
    )
    parser.add_argument("--proxy-seconds", type=float, default=6.0)
    parser.add_argument("--rung-seconds", type=float, default=18.0)
    parser.add_argument("--final-seconds", type=float, default=60.0)
    parser.add_argument(
        "--rung-lr",
        type=float,
        default=None,
        help="peak learning rate of the rung's trainings (default: the search's proxy "
        "rate, edgenas.tasks.recipes.proxy_lr; the final training always uses the recipe's)",
    )
    parser.add_argument(
        "--clocks", default="cpu", help="budget clocks to compare, e.g. wall,cpu (default: cpu)"
    )
    parser.add_argument("--final-clock", default="cpu", choices=("wall", "cpu"))
    parser.add_argument("--final-repeats", type=int, default=1)
    parser.add_argument("--load", type=int, default=0, help="competing on/off processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    if args.within_target_params is not None and args.within_target_params <= 0:
        parser.error("--within-target-params must be above 0")
    if args.within_target_params is not None and args.around:
        parser.error("--within-target-params samples the space; --around takes mutations")
    if args.final_repeats < 1:
        parser.error("--final-repeats must be at least 1")
    torch.set_num_threads(1)
    clocks = [c.strip() for c in args.clocks.split(",") if c.strip()]
    burners = [
        multiprocessing.Process(target=_burn, args=(args.seed * 100 + i,), daemon=True)
        for i in range(args.load)
    ]
    for burner in burners:
        burner.start()
    try:
        _run(args, clocks)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        for burner in burners:
            burner.terminate()


def _run(args, clocks: list[str]) -> None:
    config = SearchConfig(
        task=args.task, data=args.data, val_data=args.val_data, seed=args.seed, score="naswot"
    )
    if args.input:
        config = dataclasses.replace(config, proxy_input=parse_shape(args.input, ndim=2))
    if args.space == "full":
        config = dataclasses.replace(config, **LEGACY_SPACE)
    evaluator = CandidateEvaluator(config)
    space = config.space()
    if args.around:
        genotypes = _neighbourhood(space, config, args.around, args.n, args.seed)
    elif args.within_target_params is not None:
        genotypes = _within(space, evaluator, args.n, args.seed, args.within_target_params)
    else:
        genotypes = [g.encode() for g in space.sample_unique(args.n, seed=args.seed)]
    rows = []
    for index, genotype in enumerate(genotypes):
        start = time.perf_counter()
        row = {
            "genotype": genotype,
            "naswot": float(evaluator.score(genotype)),
            **evaluator.static_resources(genotype),
        }
        if args.proxy_seconds > 0:
            row["proxy"], _ = _accuracy(evaluator, genotype, args.proxy_seconds)
        # Both clocks, both repeats, interleaved: the load they meet is the same mix.
        for repeat in (1, 2):
            for clock in clocks:
                accuracy, steps = _accuracy(
                    evaluator, genotype, args.rung_seconds, clock, args.rung_lr
                )
                row[f"rung_{clock}_{repeat}"], row[f"steps_{clock}_{repeat}"] = accuracy, steps
        for repeat in range(1, args.final_repeats + 1):
            row[f"final_{repeat}"], _ = _accuracy(
                evaluator, genotype, args.final_seconds, args.final_clock, final=True
            )
        row["final"] = statistics.fmean(row[f"final_{r}"] for r in range(1, args.final_repeats + 1))
        rows.append(row)
        rungs = "  ".join(
            f"{c} {row[f'rung_{c}_1']:.4f}/{row[f'rung_{c}_2']:.4f} "
            f"({row[f'steps_{c}_1']}/{row[f'steps_{c}_2']} steps)"
            for c in clocks
        )
        print(
            f"{index:3d} naswot {row['naswot']:8.1f}  params {row['params']:>8,.0f}  "
            f"rung {rungs}  final {row['final']:.4f}  ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    final = [r["final"] for r in rows]
    print(f"\n{args.task}, {args.space} space, {len(rows)} genotypes, load {args.load}:")
    results = {}
    if args.final_repeats > 1:
        tau, p = _tau([r["final_1"] for r in rows], [r["final_2"] for r in rows])
        results["final_repeat"] = {"tau": tau, "p": p}
        print(f"  final A run 1 vs run 2 ({args.final_clock} clock)  tau {tau:+.3f}  (p = {p:.3f})")
    print("  Kendall tau vs the final A (mean of its runs):")
    residuals = naswot_residuals([r["naswot"] for r in rows], [r["flops"] for r in rows])
    for row, residual in zip(rows, residuals, strict=True):
        row["naswot_residual"] = residual
        row["fewer_macs"] = -row["flops"]
    named = [
        ("NASWOT score", "naswot"),
        ("NASWOT over log MACs (residual)", "naswot_residual"),
        ("fewer MACs", "fewer_macs"),
        ("parameters (more = better)", "params"),
    ]
    if args.proxy_seconds > 0:
        named.insert(0, (f"proxy A ({args.proxy_seconds:g} s, cpu)", "proxy"))
    rung = [statistics.fmean(r[f"rung_{c}_{k}"] for c in clocks for k in (1, 2)) for r in rows]
    for name, key in named:
        tau, p = _tau([r[key] for r in rows], final)
        rung_tau, rung_p = _tau([r[key] for r in rows], rung)
        results[key] = {"tau": tau, "p": p, "tau_rung": rung_tau, "p_rung": rung_p}
        print(
            f"    {name:34s} tau {tau:+.3f}  (p = {p:.3f});  vs the rung's A "
            f"{rung_tau:+.3f} (p = {rung_p:.3f})"
        )
    for clock in clocks:
        first = [r[f"rung_{clock}_1"] for r in rows]
        second = [r[f"rung_{clock}_2"] for r in rows]
        steps = [r[f"steps_{clock}_{k}"] for r in rows for k in (1, 2)]
        spread = [
            abs(r[f"steps_{clock}_1"] - r[f"steps_{clock}_2"])
            / max(r[f"steps_{clock}_1"], r[f"steps_{clock}_2"])
            for r in rows
        ]
        repeat_tau, _ = _tau(first, second)
        # Each run of the proxy is what one search would have seen: tau of each run,
        # and of their mean, against the final A.
        run_taus = [_tau(first, final)[0], _tau(second, final)[0]]
        mean_tau, mean_p = _tau([(a + b) / 2 for a, b in zip(first, second, strict=True)], final)
        results[f"rung_{clock}"] = {
            "tau_runs": run_taus,
            "tau_mean": mean_tau,
            "p_mean": mean_p,
            "repeat_tau": repeat_tau,
            "median_steps": statistics.median(steps),
            "median_step_spread": statistics.median(spread),
        }
        print(
            f"    rung A ({args.rung_seconds:g} s, {clock} clock): tau run 1 {run_taus[0]:+.3f}, "
            f"run 2 {run_taus[1]:+.3f}, their mean {mean_tau:+.3f} (p = {mean_p:.3f}); "
            f"repeats itself tau {repeat_tau:+.3f}; steps median "
            f"{statistics.median(steps):.0f}, run-to-run spread {statistics.median(spread):.1%}"
        )
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"args": vars(args), "rows": rows, "tau": results}, handle, indent=1)
    evaluator.close()


if __name__ == "__main__":
    main()
