"""Assisted Tabu Search vs random search: same number of trained candidates, same proxy
budget, several seeds (LDP's comparison; T91 x2 by default, graded on T91's held-out
tenth, or a task's built-in data with --task depth).

For each seed: run the LDP search (score-ranked parents + ATS) and count its trained
candidates N; then train N genotypes sampled uniformly from the same space with the
same proxy budget (random search). Report, per seed and as medians, the best G, the
PSNR (proxy training) and the parameters of each method's best candidate, and the
ratio ATS / random of the best G, with a one-sided sign test over the seeds. Per group
of ``--group`` consecutive seeds (3), it checks issue 13's criterion: ATS wins by more
than the spread of best G between the group's seeds, both methods' spreads, in all
seeds but one (:func:`criterion_groups`).

``--scores naswot,speed`` runs ATS once per training-free score (``SearchConfig.score``:
the paper's NASWOT; training steps per second), each beside the same random search;
``--parent-rules paper,score`` once per parent rule (half the parents near the target
size, as in the paper, or all by score: ``ldp.NEAR_TARGET_PARENT_SHARE``).

``--random-within-target`` makes random search draw only networks within the parameter
target (a stronger baseline: uniform samples of a large space are mostly far over it).
ATS's pool is drawn within the target too (``LDPSearch.sample_pool``, since search
version 4; runs before it drew ATS's pool uniformly), from another seed than random
search's draws. ``--parent-limit`` sets how far over the target the score-ranked
parents may be (``SCORE_PARENT_LIMIT``; moot when the pool is within the target).
Both methods start cold by default (no warm start: the algorithms are compared);
``--warm-start`` gives both the task's default genotype (ATS searches from it first,
random search trains it first).

    python benchmarks/bench_search_ats_vs_random.py [--data ../shared/data/sr/T91]
        [--seeds 0,1,2] [--train-seconds 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
from pathlib import Path

import torch
from bench_hrnas_camvid import sign_test_p  # this folder is on sys.path when run

from edgenas.search import ldp, objectives
from edgenas.search.config import SCORES, SearchConfig
from edgenas.search.evaluation import CandidateEvaluator
from edgenas.search.run import run_search
from edgenas.store import RunStore

# --parent-rules: the share of ATS's parents chosen near the target size
# (ldp.NEAR_TARGET_PARENT_SHARE).
PARENT_RULES = {"paper": 0.5, "score": 0.0}
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "sr"


def random_genotypes(config: SearchConfig, evaluator, count: int, within_target: bool) -> list[str]:
    """``count`` genotypes sampled uniformly from the space; ``within_target``: only
    those whose parameters meet ``config.target_params`` (rejection sampling), so random
    search spends no training on networks the grade penalises for size."""
    draw = count * (ldp.POOL_DRAWS_PER_NETWORK if within_target else 1)
    sampled = config.space().sample_unique(draw, seed=10_000 + config.seed)
    picked = []
    for genotype in (g.encode() for g in sampled):
        if within_target and evaluator.params(genotype) > config.target_params:
            continue
        picked.append(genotype)
        if len(picked) == count:
            return picked
    raise RuntimeError(f"only {len(picked)} of {draw} random networks meet the target")


def random_search(config: SearchConfig, count: int, metric: str, within_target: bool) -> dict:
    """Train ``count`` sampled genotypes (:func:`random_genotypes`); return the best by G."""
    evaluator = CandidateEvaluator(config)
    starts = list(config.start_genotypes or ())
    best, trained_params, trained_rows = None, [], []
    try:
        sampled = random_genotypes(config, evaluator, count - len(starts), within_target)
        for genotype in starts + sampled:
            outcome = evaluator.train(genotype)
            values = {"params": outcome.params, "flops": outcome.flops}
            if outcome.latency_ms is not None:
                values["latency_ms"] = outcome.latency_ms
            grade = objectives.grade(outcome.accuracy, values, config.targets(), config.alpha)
            row = {
                "genotype": genotype,
                "grade": grade,
                "metric": outcome.metrics.get(metric),
                "params": outcome.params,
            }
            trained_params.append(outcome.params)
            trained_rows.append((genotype, "random", row["metric"], outcome.params, grade))
            if best is None or grade > best["grade"]:
                best = row
    finally:
        evaluator.close()
    return {**best, "trained_params": sorted(trained_params), "trained_rows": trained_rows}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--task", default="sr", help="sr (T91 x2) or depth/seg (built-in data by default)"
    )
    parser.add_argument(
        "--data", default=None, help="default: T91 for sr, built-in demo data otherwise"
    )
    parser.add_argument(
        "--val-data", default=None, help="default: the held-out tenth of --data (never a test set)"
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--train-seconds", type=float, default=20.0)
    parser.add_argument("--target-params", type=float, default=100e3)
    parser.add_argument("--pool", type=int, default=40)
    parser.add_argument("--parents", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--warm-start", action="store_true", help="both start from the default")
    parser.add_argument(
        "--random-within-target",
        action="store_true",
        help="random search samples only networks within --target-params",
    )
    parser.add_argument(
        "--scores",
        default="naswot",
        help="ATS variants to run side by side, by the training-free score that ranks "
        "parents and rewards children: naswot (the paper's), speed (training steps per "
        "second), or both: naswot,speed",
    )
    parser.add_argument(
        "--parent-limit",
        type=float,
        default=ldp.SCORE_PARENT_LIMIT,
        help="the score-ranked parents are the best scores among networks at most this "
        f"many times the target (default {ldp.SCORE_PARENT_LIMIT:g})",
    )
    parser.add_argument(
        "--parent-rules",
        default="paper",
        help="ATS variants by how parents are chosen: paper (half the best scores, half "
        "the best scores among the networks closest to the target size), score (all the "
        "best scores), or both: paper,score",
    )
    parser.add_argument(
        "--group",
        type=int,
        default=3,
        help="check the criterion (wins beyond the seed spread in all but one seed) per "
        "group of this many consecutive seeds (default 3: the issue's 2 of 3)",
    )
    parser.add_argument(
        "--summarize",
        default=None,
        metavar="FILE",
        help="print the summary of an earlier run's --out file (with its --task) and stop",
    )
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    if args.group < 2:
        parser.error(f"--group: at least 2 seeds per group, got {args.group}")
    metric = {"sr": "psnr", "depth": "delta1", "segmentation": "miou", "seg": "miou"}[args.task]
    if args.summarize:  # the verdict of an earlier run's --out, without training
        try:
            rows = json.loads(Path(args.summarize).read_text())
        except (OSError, ValueError) as error:
            parser.error(f"--summarize: cannot read {args.summarize}: {error}")
        methods = [m for m in rows[0] if m not in ("seed", "random")] + ["random"]
        print_summary(rows, methods, metric, args.group)
        return
    torch.set_num_threads(1)
    ldp.SCORE_PARENT_LIMIT = args.parent_limit  # read by LDPSearch.select_parents
    if args.task == "sr":
        args.data = args.data or str(SHARED / "T91")

    scores = [c.strip() for c in args.scores.split(",") if c.strip()]
    if not scores or len(set(scores)) != len(scores):
        parser.error(f"--scores: name each of {', '.join(SCORES)} at most once, at least one")
    for score_name in scores:
        if score_name not in SCORES:
            parser.error(f"--scores: {score_name!r} is not one of {', '.join(SCORES)}")
    rules = [r.strip() for r in args.parent_rules.split(",") if r.strip()]
    if not rules or len(set(rules)) != len(rules) or set(rules) - set(PARENT_RULES):
        parser.error(f"--parent-rules: name each of {', '.join(PARENT_RULES)} at most once")
    variants = [  # (method name, score, parent rule)
        (f"ats-{c}" if rules == ["paper"] else f"ats-{c}-{r}", c, r) for c in scores for r in rules
    ]
    methods = [name for name, _c, _r in variants] + ["random"]
    rows = []
    with tempfile.TemporaryDirectory() as runs:
        for seed in (int(s) for s in args.seeds.split(",")):
            config = SearchConfig(
                task="segmentation" if args.task == "seg" else args.task,
                data=args.data,
                val_data=args.val_data,
                proxy_input=(32, 32) if args.task == "sr" else (64, 80),
                deploy_input=(128, 128) if args.task == "sr" else (120, 160),
                target_params=args.target_params,
                target_latency_ms=None,
                pool_size=args.pool,
                parents=args.parents,
                max_iterations=args.iterations,
                train_seconds=args.train_seconds,
                final_seconds=1.0,
                baselines=(),
                start_genotypes=None if args.warm_start else (),
                seed=seed,
                runs_dir=runs,
            )
            row = {"seed": seed}
            for name, score_name, rule in variants:
                ldp.NEAR_TARGET_PARENT_SHARE = PARENT_RULES[rule]
                outcome = run_search(
                    dataclasses.replace(config, run_name=f"{name}-{seed}", score=score_name),
                    log=lambda m: None,
                )
                with RunStore.open_readonly(outcome.run_dir) as store:
                    trained = store.candidates(status="trained")
                best = max(trained, key=lambda c: c.grade)
                row[name] = {
                    "genotype": best.genotype,
                    "grade": best.grade,
                    "metric": best.metrics.get(metric),
                    "params": best.params,
                    "trained": len(trained),
                    "trained_params": sorted(c.params for c in trained),
                    "trained_rows": [
                        (c.genotype, c.origin, c.metrics.get(metric), c.params, c.grade)
                        for c in trained
                    ],
                }
            count = row[methods[0]]["trained"]
            if any(row[m]["trained"] != count for m in methods[:-1]):
                print(f"warning: the ATS variants trained different counts; random trains {count}")
            row["random"] = random_search(
                dataclasses.replace(config, run_name=f"random-{seed}"),
                count,
                metric,
                args.random_within_target,
            )
            row["random"]["trained"] = count
            rows.append(row)
            print(
                f"seed {seed}: "
                + " | ".join(
                    f"{m} ({row[m]['trained']} trained) best G {row[m]['grade']:.4f} "
                    f"{metric} {row[m]['metric']:.4f} params {row[m]['params']:,}"
                    for m in methods
                ),
                flush=True,
            )
            if args.out:  # after every seed: a long run killed late keeps its rows
                Path(args.out).write_text(json.dumps(rows, indent=2))
    print_summary(rows, methods, metric, args.group)


def print_summary(rows: list[dict], methods: list[str], metric: str, group_size: int) -> None:
    """Medians per method, ATS / random ratios with a sign test, and the criterion per
    group of ``group_size`` seeds; ``methods`` ends with ``"random"``."""
    print()
    for method in methods:
        print(
            f"{method:10s} median best G {statistics.median(r[method]['grade'] for r in rows):.4f}  "
            f"median {metric} {statistics.median(r[method]['metric'] for r in rows):.4f}  "
            f"median params {statistics.median(r[method]['params'] for r in rows):,.0f}  "
            f"best G spread {_spread([r[method]['grade'] for r in rows]):.4f}"
        )
    for method in methods[:-1]:
        ratios = [r[method]["grade"] / r["random"]["grade"] for r in rows]
        won = sum(ratio > 1.0 for ratio in ratios)  # a tie counts as a loss
        print(
            f"{method} / random: G ratios {', '.join(f'{x:.3f}' for x in ratios)}; median "
            f"{statistics.median(ratios):.3f}; {won} of {len(rows)} seeds won "
            f"(one-sided sign test p {sign_test_p(won, len(rows)):.3f})"
        )
        for group in criterion_groups(rows, method, group_size):
            print(
                f"  seeds {group['seeds']}: margins "
                + ", ".join(f"{m:+.4f}" for m in group["margins"])
                + f"; spread {method} {group['spread']:.4f}, random "
                f"{group['random_spread']:.4f}; beyond both spreads "
                f"{group['beyond_both']}, beyond random's {group['beyond_random']}: "
                + ("criterion met" if group["met"] else "criterion not met")
            )


def criterion_groups(rows: list[dict], method: str, size: int = 3) -> list[dict]:
    """Issue 13's criterion, per group of ``size`` consecutive seeds (a trailing
    shorter group is left out): ATS beats random search "in at least 2 of 3 seeds, by
    more than the spread between seeds". Per group: each seed's margin (``method``'s
    best G minus random search's), both methods' spreads (max - min of best G over
    the group), how many margins exceed both spreads and random search's alone, and
    whether at least ``size - 1`` exceed both."""
    groups = []
    for start in range(0, len(rows) - size + 1, size):
        group = rows[start : start + size]
        ours = [r[method]["grade"] for r in group]
        theirs = [r["random"]["grade"] for r in group]
        margins = [a - b for a, b in zip(ours, theirs, strict=True)]
        spread, random_spread = _spread(ours), _spread(theirs)
        beyond_both = sum(m > max(spread, random_spread) for m in margins)
        groups.append(
            {
                "seeds": [r["seed"] for r in group],
                "margins": margins,
                "spread": spread,
                "random_spread": random_spread,
                "beyond_both": beyond_both,
                "beyond_random": sum(m > random_spread for m in margins),
                "met": beyond_both >= size - 1,
            }
        )
    return groups


def _spread(values: list[float]) -> float:
    return max(values) - min(values)


if __name__ == "__main__":
    main()
