"""Does inheriting the parent's weights make the proxy rank a parent's children better?

Assisted Tabu Search trains one child of the current architecture per step, from
scratch, for the proxy budget, and ranks it by the A it reaches. This benchmark asks
whether a child that starts from its trained parent's weights (every tensor whose name
and shape the mutation kept: the untouched blocks, the stem, the head) is ranked better
by the same proxy budget, as issue 13 item 3 suggests.

One run, side by side for the same children:

1. the parent (the task's default genotype, the search's warm start) trains for
   ``--parent-seconds`` from its seeded weights, as the search trains a parent;
2. ``--n`` children, each one mutation away (``space.mutate``, as the search proposes
   them), and for each of them, interleaved:
   - **scratch proxy**: ``--proxy-seconds`` from the seeded weights (what the search does);
   - **inherited proxy**: ``--proxy-seconds`` from the parent's trained weights where
     they fit, seeded weights elsewhere;
   - **final A**: ``--final-seconds`` from the seeded weights (a longer training at
     the proxy size on the proxy data: the ranking target);

and prints the Kendall tau of each proxy against the final A and the final A of each
proxy's best child. Budgets are CPU time on one thread, so load barely moves them.

    python benchmarks/bench_search_inherit_tau.py --task seg --data CAMVID-DEV \\
        --input 64x80 --n 16 --out inherit-seg.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import time

import torch
from bench_search_proxy_tau import _tau  # this folder is on sys.path when run

from edgenas.errors import UserError
from edgenas.parsing import parse_shape
from edgenas.search.config import SearchConfig
from edgenas.search.evaluation import CandidateEvaluator
from edgenas.space import decode
from edgenas.training import Budget, train


def inherit_weights(child: torch.nn.Module, parent_state: dict[str, torch.Tensor]) -> float:
    """Copy into ``child`` every tensor of ``parent_state`` whose name and shape it has;
    returns the share of the child's parameters (by count of values) copied."""
    own = child.state_dict()
    kept = {k: v for k, v in parent_state.items() if k in own and own[k].shape == v.shape}
    child.load_state_dict(kept, strict=False)
    names = dict(child.named_parameters())
    total = sum(p.numel() for p in names.values())
    copied = sum(names[k].numel() for k in kept if k in names)
    return copied / total if total else 0.0


def _train(
    evaluator: CandidateEvaluator, model: torch.nn.Module, seconds: float, final: bool = False
):
    """Train ``model`` for ``seconds`` of CPU time: as the search trains a candidate, or
    with ``final`` as it trains the final model (the recipe's peak rate, not the
    proxy's)."""
    config = evaluator.config.final_train_config() if final else evaluator.train_config
    return train(
        model,
        evaluator.task,
        evaluator.train_source,
        evaluator.val_data,
        Budget(seconds=seconds),
        dataclasses.replace(config, clock="cpu"),
    )


def _children(config: SearchConfig, parent: str, n: int, seed: int) -> list[str]:
    """``n`` distinct single mutations of ``parent``, as the search proposes them."""
    space, rng = config.space(), random.Random(seed)
    found: dict[str, None] = {}
    for _ in range(200 * n):
        child = space.mutate(decode(parent), rng).encode()
        if child != parent:
            found.setdefault(child, None)
        if len(found) == n:
            return list(found)
    raise UserError(
        f"only {len(found)} distinct single mutations of the parent found: use a smaller --n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="sr")
    parser.add_argument("--data", default=None)
    parser.add_argument("--val-data", default=None)
    parser.add_argument("--input", default=None, help="proxy input HxW (default: the search's)")
    parser.add_argument("--n", type=int, default=16, help="children (single mutations)")
    parser.add_argument("--parent-seconds", type=float, default=18.0)
    parser.add_argument("--proxy-seconds", type=float, default=18.0)
    parser.add_argument("--final-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    if args.n < 3:
        parser.error("--n must be at least 3 (a rank correlation needs several children)")
    for name in ("parent_seconds", "proxy_seconds", "final_seconds"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be above 0")
    torch.set_num_threads(1)
    try:
        _run(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _run(args) -> None:
    config = SearchConfig(task=args.task, data=args.data, val_data=args.val_data, seed=args.seed)
    if args.input:
        config = dataclasses.replace(config, proxy_input=parse_shape(args.input, ndim=2))
    evaluator = CandidateEvaluator(config)
    try:
        _measure(args, config, evaluator)
    finally:
        evaluator.close()


def _measure(args, config: SearchConfig, evaluator: CandidateEvaluator) -> None:
    parent = config.start_genotypes[0]
    model = evaluator.build(parent)
    parent_result = _train(evaluator, model, args.parent_seconds)
    parent_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    parent_a = float(parent_result.normalised_accuracy)
    print(f"parent A {parent_a:.4f} after {args.parent_seconds:g} s ({parent_result.steps} steps)")
    rows = []
    for index, child in enumerate(_children(config, parent, args.n, args.seed)):
        start = time.perf_counter()
        row = {"genotype": child, **evaluator.static_resources(child)}
        scratch = _train(evaluator, evaluator.build(child), args.proxy_seconds)
        inherited_model = evaluator.build(child)
        row["inherited_share"] = inherit_weights(inherited_model, parent_state)
        inherited = _train(evaluator, inherited_model, args.proxy_seconds)
        final = _train(evaluator, evaluator.build(child), args.final_seconds, final=True)
        row.update(
            scratch=float(scratch.normalised_accuracy),
            inherited=float(inherited.normalised_accuracy),
            final=float(final.normalised_accuracy),
            steps_scratch=int(scratch.steps),
            steps_inherited=int(inherited.steps),
        )
        rows.append(row)
        print(
            f"{index:3d} params {row['params']:>8,.0f}  inherited {row['inherited_share']:5.1%}  "
            f"scratch {row['scratch']:.4f}  inherited {row['inherited']:.4f}  "
            f"final {row['final']:.4f}  ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    final = [r["final"] for r in rows]
    results = {"parent": parent_a}
    print(f"\n{args.task}: {len(rows)} children of the default genotype, one mutation each")
    for name, key in (("scratch proxy", "scratch"), ("inherited proxy", "inherited")):
        tau, p = _tau([r[key] for r in rows], final)
        top = max(rows, key=lambda r: r[key])
        results[key] = {"tau": tau, "p": p, "final_of_its_best": top["final"]}
        print(
            f"  {name:16s} tau vs final A {tau:+.3f} (p = {p:.3f}); its best child's "
            f"final A {top['final']:.4f}; median A {statistics.median(r[key] for r in rows):.4f}"
        )
    best_final = max(final)
    print(
        f"  best final A among the children {best_final:.4f}, median {statistics.median(final):.4f}"
    )
    shares = [r["inherited_share"] for r in rows]
    print(f"  share of parameters inherited: median {statistics.median(shares):.1%}")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"args": vars(args), "rows": rows, "tau": results}, handle, indent=1)


if __name__ == "__main__":
    main()
