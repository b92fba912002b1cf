"""Is network B really better than network A? Both trained with several seeds, side by side.

One training of a small network for a few minutes varies by a few hundredths of mIoU
from seed to seed (docs/search.md), so a single run cannot show a win of that size.
This trains every network once per seed, with the task's recipe, the same CPU-time
budget (one torch thread, ``TrainConfig.clock = "cpu"``: load on the machine does not
change the step count much) and the same data, evaluates each on the held-out split,
and prints per seed and in medians:

* the held-out metric of every network, and its spread between seeds;
* each network's difference from the first one (the reference), seed by seed, and how
  many seeds it wins;
* the latency of every network at the deploy size, measured in interleaved rounds
  (onnxruntime, 1 thread), as a ratio to the reference.

Networks are reference model names (``unet``, ``espcn``, ...; `edgenas models`),
``default`` (the task's default genotype) or genotype strings, separated by commas.
The order of the networks alternates from seed to seed and ``--jobs 2`` trains two at
once (each on one thread), so slow drift in the machine's load falls on all of them.

    python benchmarks/bench_train_seeds.py --task seg --data ../shared/data/camvid \\
        --networks unet,default --seeds 0,1,2 --seconds 300 --input 180x240 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

METRICS = {"sr": "psnr", "segmentation": "miou", "depth": "rel", "classification": "top1"}
LOWER_IS_BETTER = {"rel", "rmse"}


def _size(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


def _open(task, data: str, val_data: str | None, input_size, scale: int):
    """The training and held-out datasets, as `edgenas train` opens them."""
    from edgenas.tasks.recipes import recipe_input

    if task.name == "sr":
        patch = recipe_input("sr")[0]
        train = task.dataset(data, "all" if val_data else "train", scale=scale, patch=patch,
                             train=True)  # fmt: skip
        held_out = task.dataset(val_data or data, "all" if val_data else "val", scale=scale,
                                train=False)  # fmt: skip
        return train, held_out
    train = task.dataset(data, "train", size=input_size)
    held_out = task.dataset(val_data or data, "all" if val_data else "val", size=None)
    return train, held_out


def _build(task, network: str, info):
    """A model for a reference name, ``default`` or a genotype string."""
    from edgenas.models.reference import REFERENCE_MODELS, build_reference
    from edgenas.tasks.defaults import default_genotype

    if network in REFERENCE_MODELS:
        options = task.head_options(info)
        allowed = REFERENCE_MODELS[network].defaults
        return build_reference(
            network, task.name, **{k: v for k, v in options.items() if k in allowed}
        )
    genotype = default_genotype(task.name) if network == "default" else network
    return task.build_model(genotype, info)


def train_one(job: dict) -> dict:
    """Train one network with one seed and score it on the held-out split (runs in a
    worker process; everything in and out is plain data)."""
    from edgenas.models.complexity import count_params
    from edgenas.models.reference import REFERENCE_MODELS
    from edgenas.tasks import get_task
    from edgenas.tasks.recipes import recipe_config
    from edgenas.training import Budget, train

    torch.set_num_threads(1)
    task = get_task(job["task"])
    input_size = tuple(job["input"]) if job["input"] else None
    train_data, held_out = _open(task, job["data"], job["val_data"], input_size, job["scale"])
    torch.manual_seed(job["seed"])
    model = _build(task, job["network"], train_data.info)
    overrides = (
        REFERENCE_MODELS[job["network"]].recipe if job["network"] in REFERENCE_MODELS else {}
    )
    overrides = {**overrides, "seed": job["seed"], "clock": "cpu", "accelerator": "cpu"}
    config = recipe_config(task.name, **overrides)
    start = time.perf_counter()
    result = train(model, task, train_data, held_out, Budget(seconds=job["seconds"]), config,
                   eval_input=input_size)  # fmt: skip
    return {
        "network": job["network"],
        "seed": job["seed"],
        "metrics": result.metrics,
        "steps": result.steps,
        "params": count_params(model),
        "wall_seconds": time.perf_counter() - start,
    }


def latency_ratios(task_name: str, networks: list[str], info, deploy, rounds: int) -> dict:
    """Median latency (ms) of each network at ``deploy`` (N, C, H, W), interleaved rounds;
    ``info`` is the training set's (it sizes the heads)."""
    from edgenas.latency_table import Measurer
    from edgenas.tasks import get_task

    task = get_task(task_name)
    models = {network: _build(task, network, info).eval() for network in networks}
    readings: dict[str, list[float]] = {network: [] for network in networks}
    measurer = Measurer("cpu", threads=1)
    try:
        for index in range(rounds):
            order = networks if index % 2 == 0 else list(reversed(networks))
            for network in order:
                readings[network].append(measurer.measure_network(models[network], deploy))
    finally:
        measurer.close()
    return {network: statistics.median(values) for network, values in readings.items()}


def _short(network: str, width: int = 28) -> str:
    return network if len(network) <= width else network[: width - 3] + "..."


def report(task_name: str, networks: list[str], seeds: list[int], results: list[dict],
           latency: dict | None) -> str:  # fmt: skip
    """The per-seed and median tables, as Markdown."""
    metric = METRICS[task_name]
    lower = metric in LOWER_IS_BETTER
    score = {(r["network"], r["seed"]): r["metrics"][metric] for r in results}
    reference = networks[0]
    lines = [f"held-out {metric} ({'lower' if lower else 'higher'} is better)", ""]
    head = ["network", *[f"seed {s}" for s in seeds], "median", "spread", "params", "steps"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for network in networks:
        values = [score[(network, s)] for s in seeds]
        steps = [r["steps"] for r in results if r["network"] == network]
        params = next(r["params"] for r in results if r["network"] == network)
        cells = [_short(network), *[f"{v:.4f}" for v in values], f"{statistics.median(values):.4f}",
                 f"{max(values) - min(values):.4f}", f"{params:,}", f"{statistics.median(steps):.0f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"difference from {_short(reference)} (positive: better)", ""]
    head = ["network", *[f"seed {s}" for s in seeds], "median", "seeds won", "latency ratio"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for network in networks[1:]:
        sign = -1.0 if lower else 1.0
        deltas = [sign * (score[(network, s)] - score[(reference, s)]) for s in seeds]
        won = sum(d > 0 for d in deltas)
        ratio = f"{latency[network] / latency[reference]:.3f}" if latency else "-"
        cells = [_short(network), *[f"{d:+.4f}" for d in deltas],
                 f"{statistics.median(deltas):+.4f}", f"{won} of {len(seeds)}", ratio]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    if latency:
        lines += ["", "latency (median of interleaved rounds): " + ", ".join(
            f"{_short(n)} {latency[n]:.2f} ms" for n in networks)]  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", required=True, help="sr, seg, depth or cls")
    parser.add_argument("--data", required=True, help="training folder (held-out split inside)")
    parser.add_argument("--val-data", default=None, help="a separate held-out folder (sr: Set5)")
    parser.add_argument("--networks", required=True,
                        help="comma-separated: reference names, default, genotype strings; "
                        "the first is the reference")  # fmt: skip
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--seconds", type=float, default=300.0, help="CPU-time budget per training")
    parser.add_argument("--input", default=None, help="training input HxW (dense tasks)")
    parser.add_argument("--deploy-input", default=None, help="latency input HxW (default --input)")
    parser.add_argument("--scale", type=int, default=2, help="sr upscaling factor")
    parser.add_argument("--jobs", type=int, default=1, help="trainings at once, one thread each")
    parser.add_argument("--latency-rounds", type=int, default=7, help="0 skips latency")
    parser.add_argument("--json", default=None, help="write every training's result here")
    args = parser.parse_args()

    from edgenas.tasks import get_task

    task_name = get_task(args.task).name
    networks = [n.strip() for n in args.networks.split(",") if n.strip()]
    seeds = [int(s) for s in args.seeds.split(",")]
    if len(networks) < 2:
        parser.error("--networks needs at least two networks to compare")
    input_size = _size(args.input) if args.input else None
    jobs = []
    for index, seed in enumerate(seeds):
        order = networks if index % 2 == 0 else list(reversed(networks))
        jobs += [{"task": task_name, "data": args.data, "val_data": args.val_data,
                  "input": input_size, "scale": args.scale, "seed": seed,
                  "network": network, "seconds": args.seconds} for network in order]  # fmt: skip
    results = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for result in pool.map(train_one, jobs):
            metric = result["metrics"][METRICS[task_name]]
            print(f"seed {result['seed']} {_short(result['network'], 40)}: "
                  f"{METRICS[task_name]} {metric:.4f}, {result['steps']} steps, "
                  f"{result['wall_seconds']:.0f} s", flush=True)  # fmt: skip
            results.append(result)
    latency = None
    deploy = _size(args.deploy_input) if args.deploy_input else input_size
    if args.latency_rounds > 0 and deploy:
        task = get_task(task_name)
        info = _open(task, args.data, args.val_data, input_size, args.scale)[0].info
        latency = latency_ratios(task_name, networks, info, (1, 3, *deploy), args.latency_rounds)
    print()
    print(report(task_name, networks, seeds, results, latency))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"results": results, "latency_ms": latency}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
