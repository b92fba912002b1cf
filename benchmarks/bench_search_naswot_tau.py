"""NASWOT score vs the trained metric: Kendall tau over N random genotypes on one task.

Each genotype is scored with NASWOT (the search's fixed batch) and trained with the
same proxy budget; the script prints both per genotype and the rank correlation
(Kendall tau, with its p-value) between score and normalised accuracy. Whatever it is,
it says how much the training-free ranking of LDP's parents can be trusted here.

    python benchmarks/bench_search_naswot_tau.py [--task depth] [--n 30] [--train-seconds 8]
"""

from __future__ import annotations

import argparse
import time

import torch
from scipy.stats import kendalltau

from edgenas.search.config import SearchConfig
from edgenas.search.evaluation import CandidateEvaluator
from edgenas.space import LDPSpace


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="depth")
    parser.add_argument("--data", default=None)
    parser.add_argument("--val-data", default=None)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--train-seconds", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    config = SearchConfig(
        task=args.task,
        data=args.data,
        val_data=args.val_data,
        target_latency_ms=None,
        train_seconds=args.train_seconds,
        seed=args.seed,
        score="naswot",
    )
    evaluator = CandidateEvaluator(config)
    space = LDPSpace(scales=config.scales, channels=config.channels)
    scores, accuracies, score_seconds, train_seconds = [], [], 0.0, 0.0
    for index, genotype in enumerate(space.sample_unique(args.n, seed=args.seed)):
        start = time.perf_counter()
        score = evaluator.score(genotype.encode())
        score_seconds += time.perf_counter() - start
        start = time.perf_counter()
        outcome = evaluator.train(genotype.encode())
        train_seconds += time.perf_counter() - start
        scores.append(score)
        accuracies.append(outcome.accuracy)
        print(
            f"{index:3d} score {score:9.3f}  accuracy {outcome.accuracy:.4f}  params {outcome.params:,}",
            flush=True,
        )
    tau, p_value = kendalltau(scores, accuracies)
    print(
        f"\nKendall tau (NASWOT score vs {args.task} normalised accuracy, n={args.n}): {tau:.3f} (p = {p_value:.3g})"
    )
    print(
        f"time: scoring {score_seconds / args.n:.2f} s per genotype, training {train_seconds / args.n:.1f} s per genotype "
        f"(ratio {train_seconds / max(score_seconds, 1e-9):.0f}x)"
    )


if __name__ == "__main__":
    main()
