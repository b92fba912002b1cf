"""Which training-free score ranks networks the way training does?

Reads the rows of a ``bench_search_proxy_tau.py --out`` run (genotypes with their A
after the 18 s rung and after the final budget, their NASWOT score and NASWOT at equal
MACs, both computed by that run) and computes, side by side on the same networks, data
and seeded weights:

- ZiCo (Li et al., ICLR 2023): per layer, the log of the sum over weights of
  mean |gradient| / standard deviation of the gradient across minibatches, summed;
- SynFlow (Tanaka et al., 2020): sum of |theta * dR/dtheta| for R the output sum of
  the network with |weights| on an all-ones input (computed in double precision);
- gradient norm: the norm of the loss's gradient on one minibatch;
- training speed: training steps per second, exactly as ``--score speed`` times them
  (the proxy's minibatch and layout), since under a time budget the steps a network
  gets decide much of its accuracy;
- fewer MACs and fewer parameters.

It prints NASWOT (Mellor et al., the search's default score) and NASWOT at equal MACs
(its residual over a least-squares line against log MACs) from the rows beside them,
and each score's Kendall tau against the final A and against the rung's A (the
search's proxy). A score that ranks could choose ATS's parents and reward its children.

    python benchmarks/bench_zero_cost_tau.py tau-seg.json [--batches 4] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys

import torch
from scipy.stats import kendalltau

from edgenas.errors import UserError
from edgenas.parsing import parse_shape
from edgenas.search.config import SearchConfig
from edgenas.search.evaluation import CandidateEvaluator


def _minibatches(evaluator: CandidateEvaluator, count: int, size: int, seed: int) -> list:
    """``count`` seeded minibatches of ``size`` training pairs, the same for every net."""
    generator = torch.Generator().manual_seed(seed)
    data = evaluator.train_data
    order = torch.randperm(len(data), generator=generator).tolist()
    batches = []
    for start in range(0, count * size, size):  # wraps around a small dataset
        pairs = [data[order[i % len(order)]] for i in range(start, start + size)]
        batches.append((torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])))
    return batches


def _weights(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Convolution and linear weights (the layers the scores sum over)."""
    return [
        m.weight
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear) and m.weight.requires_grad
    ]


def zico(model: torch.nn.Module, loss_of, batches) -> float:
    """ZiCo: sum over layers of log(sum over weights of mean|g| / std(g)) across batches."""
    model.train()
    weights = _weights(model)
    grads: list[list[torch.Tensor]] = [[] for _ in weights]
    for images, targets in batches:
        model.zero_grad(set_to_none=True)
        loss_of(model(images), targets).backward()
        for slot, weight in zip(grads, weights, strict=True):
            if weight.grad is not None:
                slot.append(weight.grad.detach().clone())
    total = 0.0
    for slot in grads:
        if len(slot) < 2:
            continue
        stacked = torch.stack(slot)
        std = stacked.std(dim=0)
        ratio = stacked.abs().mean(dim=0)[std > 0] / std[std > 0]
        if ratio.numel() and float(ratio.sum()) > 0:
            total += math.log(float(ratio.sum()))
    return total


def synflow(model: torch.nn.Module, shape: tuple[int, ...]) -> float:
    """SynFlow on |weights| and an all-ones input (batch norm in eval mode, double)."""
    model = model.double().eval()
    signs = {}
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                signs[name] = torch.sign(tensor)
                tensor.abs_()
    model.zero_grad(set_to_none=True)
    output = model(torch.ones((1, *shape), dtype=torch.double))
    torch.sum(output).backward()
    score = sum(
        float((p * p.grad).detach().abs().sum()) for p in model.parameters() if p.grad is not None
    )
    return math.log(score) if score > 0 else -math.inf


def grad_norm(model: torch.nn.Module, loss_of, batch) -> float:
    """Norm of the loss's gradient over all parameters on one minibatch."""
    model.train()
    model.zero_grad(set_to_none=True)
    images, targets = batch
    loss_of(model(images), targets).backward()
    squares = sum(float(p.grad.pow(2).sum()) for p in model.parameters() if p.grad is not None)
    return math.sqrt(squares)


def _fail(message: str) -> None:
    """Bad input: one line on stderr, exit status 2."""
    print(f"bench_zero_cost_tau.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rows", help="the --out JSON of bench_search_proxy_tau.py")
    parser.add_argument("--batches", type=int, default=4, help="minibatches for ZiCo")
    parser.add_argument(
        "--batch-size", type=int, default=8, help="minibatch size for ZiCo and the gradient norm"
    )
    parser.add_argument("--out", default=None, help="write the scores as JSON here")
    args = parser.parse_args()
    try:
        with open(args.rows) as handle:
            run = json.load(handle)
        rows, settings = run["rows"], run["args"]
    except (OSError, ValueError, KeyError) as error:
        _fail(f"cannot read {args.rows} as a bench_search_proxy_tau.py --out file: {error}")
    if args.batches < 2:
        _fail("--batches must be at least 2 (ZiCo needs a spread across minibatches)")
    if args.batch_size < 1:
        _fail("--batch-size must be at least 1")
    needed = {"genotype", "final", "flops", "params", "naswot", "naswot_residual"}
    missing = needed - set(rows[0]) if rows else {"rows"}
    if missing:
        _fail(f"{args.rows} lacks {', '.join(sorted(missing))}: rerun its bench")
    torch.set_num_threads(1)
    config = SearchConfig(
        task=settings["task"],
        data=settings["data"],
        val_data=settings.get("val_data"),
        seed=settings.get("seed", 0),
    )
    try:
        if settings.get("input"):
            proxy_input = parse_shape(settings["input"], ndim=2)
            config = dataclasses.replace(config, proxy_input=proxy_input)
        evaluator = CandidateEvaluator(config)
    except UserError as error:
        _fail(str(error))
    task, info = evaluator.task, evaluator.info

    def loss_of(pred, targets):
        return task.loss(pred, targets, info)

    batches = _minibatches(evaluator, args.batches, args.batch_size, config.seed)
    shape = tuple(batches[0][0].shape[1:])
    for index, row in enumerate(rows):
        genotype = row["genotype"]
        row["zico"] = zico(evaluator.build(genotype), loss_of, batches)
        row["synflow"] = synflow(evaluator.build(genotype), shape)
        row["grad_norm"] = grad_norm(evaluator.build(genotype), loss_of, batches[0])
        row["speed"] = evaluator.training_speed(evaluator.build(genotype))  # --score speed
        print(
            f"{index:3d} naswot {row['naswot']:7.1f}  zico {row['zico']:7.1f}  synflow "
            f"{row['synflow']:7.1f}  grad norm {row['grad_norm']:8.3f}  "
            f"{row['speed']:5.1f} steps/s  final A {row['final']:.4f}",
            flush=True,
        )
    for row in rows:
        row["fewer_macs"], row["fewer_params"] = -row["flops"], -row["params"]
        row["rung"] = statistics.fmean(v for k, v in row.items() if k.startswith("rung_"))
    final, rung = [r["final"] for r in rows], [r["rung"] for r in rows]
    print(f"\n{len(rows)} networks of {args.rows}: Kendall tau of each score against")
    print(f"  {'score':34s} {'final A':>16s} {'rung A (proxy)':>16s}")
    named = [
        ("NASWOT", "naswot"),
        ("NASWOT at equal MACs", "naswot_residual"),
        ("ZiCo", "zico"),
        ("SynFlow (log)", "synflow"),
        ("gradient norm", "grad_norm"),
        ("training steps per second", "speed"),
        ("fewer MACs", "fewer_macs"),
        ("fewer parameters", "fewer_params"),
        ("rung A (18 s of training)", "rung"),
    ]
    results = {}
    for name, key in named:
        values = [r[key] for r in rows]
        if not all(math.isfinite(v) for v in values):
            # e.g. SynFlow of networks whose output layer starts at zero (SR): no signal
            # flows back, the score is log 0.
            bad = sum(not math.isfinite(v) for v in values)
            print(f"  {name:34s} n/a: {bad} of {len(values)} networks score non-finite")
            continue
        tau_final, p_final = kendalltau(values, final)
        tau_rung, p_rung = kendalltau(values, rung)
        results[key] = {"final": [tau_final, p_final], "rung": [tau_rung, p_rung]}
        print(
            f"  {name:34s} {tau_final:+.2f} (p {p_final:.2f})    {tau_rung:+.2f} (p {p_rung:.2f})"
        )
    evaluator.close()
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"rows": rows, "tau": results}, handle, indent=1)


if __name__ == "__main__":
    main()
