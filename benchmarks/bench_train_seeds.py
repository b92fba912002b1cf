"""Is network B really better than network A? Both trained with several seeds, side by side.

One training of a small network for a few minutes varies by a few hundredths of mIoU
from seed to seed (docs/search.md, "Over several seeds"), so a single run cannot show a
win of that size. This trains every network once per seed with the task's recipe, the
same CPU-time budget (one torch thread, ``TrainConfig.clock = "cpu"``: other load on
the machine barely changes the step count) and the same data, opened as `edgenas train`
opens it, scores each on the held-out split, and prints:

* each network's held-out metric per seed, its median and its spread between seeds;
* each network's difference from the first one (the reference) per seed, with their
  median and mean and how many seeds it wins (positive: better, whichever way the
  metric points);
* each network's latency at the deploy size, measured in interleaved rounds
  (onnxruntime, 1 thread, static export), as a ratio to the reference;
* with ``--also-val``, the same two tables for each further held-out folder, scored
  with the same trained networks (sr: any folder of images never trained on).

Networks are reference model names (``unet``, ``espcn``, ...; `edgenas models`),
``default`` (the task's default genotype) or genotype strings, separated by commas.
The order of the networks alternates from seed to seed and ``--jobs 2`` trains two at
once (each on one thread), so slow drift in the machine's load falls on all of them.
``--json`` is rewritten after every training, so an interrupted run keeps what it did.

    python benchmarks/bench_train_seeds.py --task seg --data ../shared/data/camvid \\
        --networks unet,default --seeds 0,1,2,3,4 --seconds 300 --input 180x240 --jobs 2
    python benchmarks/bench_train_seeds.py --task sr --data ../shared/data/sr/T91 \\
        --val-data ../shared/data/sr/Set5 --networks espcn,default --seconds 300 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

SR_DEPLOY = (120, 160)  # `edgenas train`'s SR deploy size (LR input)


def open_data(task_name: str, data: str, val_data: str | None, input_size, seed: int):
    """``(train, held_out)`` as `edgenas train` opens them: dense tasks train at
    ``input_size`` and score at full resolution; SR trains on the recipe's LR patches."""
    from edgenas.data.open import open_train_val
    from edgenas.tasks.recipes import recipe_input

    patch = recipe_input("sr")[0] if task_name == "sr" else 48
    size = None if task_name == "sr" else input_size
    return open_train_val(task_name, data, val_data, size=size, val_size=None, patch=patch,
                          seed=seed)  # fmt: skip


def open_held_out(task_name: str, folder: str):
    """A further held-out folder (``--also-val``), whole, opened as :func:`open_data`
    opens the held-out split (images at their own size; scored at ``eval_size``); a
    one-line ``UserError`` naming the flag for a folder that cannot be used."""
    from edgenas.data.open import check_files, check_folder, open_dataset
    from edgenas.errors import UserError

    check_folder("--also-val", folder)
    images = open_dataset(task_name, folder, "all", train=False)
    if len(images) == 0:
        raise UserError(f"no images found in --also-val folder {folder}")
    check_files(images)
    return images


def eval_size(task_name: str, input_size):
    """The size held-out images are scored at: their own for SR (the LR image is the
    input), ``input_size`` for dense tasks (as `edgenas train` scores them)."""
    return None if task_name == "sr" else input_size


def build_network(task, network: str, info):
    """A model for a reference name, ``default`` or a genotype string; ``ValueError``
    naming the problem for a reference model of another task or one that does not learn."""
    from edgenas.models.reference import REFERENCE_MODELS, build_reference
    from edgenas.tasks.defaults import default_genotype

    if network in REFERENCE_MODELS:
        entry = REFERENCE_MODELS[network]
        if entry.task != task.name:
            raise ValueError(f"{network} is a {entry.task} model, not {task.name}")
        if not entry.learned:
            raise ValueError(f"{network} has nothing to train; compare learned networks")
        options = task.head_options(info)
        return build_reference(
            network, task.name, **{k: v for k, v in options.items() if k in entry.defaults}
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
    from edgenas.training import Budget, evaluate, train

    torch.set_num_threads(1)  # the CPU clock counts one thread's time
    task = get_task(job["task"])
    input_size = tuple(job["input"]) if job["input"] else None
    train_data, held_out = open_data(task.name, job["data"], job["val_data"], input_size,
                                     job["seed"])  # fmt: skip
    torch.manual_seed(job["seed"])
    network = job["network"]
    model = build_network(task, network, train_data.info)
    overrides = REFERENCE_MODELS[network].recipe if network in REFERENCE_MODELS else {}
    config = recipe_config(task.name, **{**overrides, "seed": job["seed"], "clock": "cpu",
                                         "accelerator": "cpu"})  # fmt: skip
    start = time.perf_counter()
    result = train(model, task, train_data, held_out, Budget(seconds=job["seconds"]), config,
                   eval_input=eval_size(task.name, input_size))  # fmt: skip
    wall_seconds = time.perf_counter() - start
    also = {
        folder: evaluate(
            model,
            task,
            open_held_out(task.name, folder),
            input_size=eval_size(task.name, input_size),
        )
        for folder in job.get("also_val", [])
    }
    return {
        "network": network,
        "seed": job["seed"],
        "metrics": result.metrics,
        "also": also,
        "steps": result.steps,
        "clock": result.clock,
        "params": count_params(model),
        "wall_seconds": wall_seconds,  # the training and its held-out scoring
    }


def latencies_ms(models: dict, deploy: tuple[int, ...], rounds: int) -> dict[str, float]:
    """Median latency (ms) of each model at ``deploy`` (N, C, H, W): each exported once,
    then measured in ``rounds`` interleaved rounds whose order alternates."""
    from edgenas.latency_table import Measurer

    measurer = Measurer("cpu", threads=1)
    try:
        files = {
            name: measurer.network_file(model.eval(), deploy) for name, model in models.items()
        }
        readings: dict[str, list[float]] = {name: [] for name in models}
        for index in range(rounds):
            order = list(files) if index % 2 == 0 else list(reversed(files))
            for name in order:
                readings[name].append(measurer.measure_file(files[name]))
    finally:
        measurer.close()
    return {name: statistics.median(values) for name, values in readings.items()}


def labels(networks: list[str]) -> dict[str, str]:
    """Short table labels: reference names and ``default`` as they are, genotype
    strings (long, sharing prefixes) as ``genotype 1``, ``genotype 2``, ..."""
    from edgenas.models.reference import REFERENCE_MODELS

    named, count = {}, 0
    for network in networks:
        if network in REFERENCE_MODELS or network == "default":
            named[network] = network
        else:
            count += 1
            named[network] = f"genotype {count}"
    return named


def report(metric: str, lower_is_better: bool, networks: list[str], seeds: list[int],
           results: list[dict], latency: dict | None = None,
           folder: str | None = None) -> str:  # fmt: skip
    """The per-seed and difference tables (Markdown) and a legend of genotype labels;
    with ``folder``, the scores on that ``--also-val`` folder."""
    score = {
        (r["network"], r["seed"]): (r["also"][folder] if folder else r["metrics"])[metric]
        for r in results
    }
    name = labels(networks)
    reference = networks[0]
    where = f" on {folder}" if folder else ""
    lines = [f"held-out {metric}{where} ({'lower' if lower_is_better else 'higher'} is better)",
             ""]  # fmt: skip
    head = ["network", *[f"seed {s}" for s in seeds], "median", "spread", "params", "steps"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for network in networks:
        values = [score[(network, s)] for s in seeds]
        mine = [r for r in results if r["network"] == network]
        cells = [name[network], *[f"{v:.4f}" for v in values],
                 f"{statistics.median(values):.4f}", f"{max(values) - min(values):.4f}",
                 f"{mine[0]['params']:,}", f"{statistics.median(r['steps'] for r in mine):.0f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"difference from {name[reference]} per seed{where} (positive: better)", ""]
    head = ["network", *[f"seed {s}" for s in seeds], "median diff", "mean diff", "seeds won",
            "latency ratio"]  # fmt: skip
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    sign = -1.0 if lower_is_better else 1.0
    for network in networks[1:]:
        deltas = [sign * (score[(network, s)] - score[(reference, s)]) for s in seeds]
        ratio = f"{latency[network] / latency[reference]:.3f}" if latency else "-"
        cells = [name[network], *[f"{d:+.4f}" for d in deltas],
                 f"{statistics.median(deltas):+.4f}", f"{statistics.mean(deltas):+.4f}",
                 f"{sum(d > 0 for d in deltas)} of {len(seeds)}", ratio]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    if latency:
        lines += ["", "latency (median of interleaved rounds): "
                  + ", ".join(f"{name[n]} {latency[n]:.2f} ms" for n in networks)]  # fmt: skip
    legend = [f"{name[n]}: {n}" for n in networks if name[n] != n]
    return "\n".join(lines + (["", *legend] if legend else []))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", required=True, help="sr, seg, depth or cls")
    parser.add_argument("--data", required=True,
                        help="training folder (its own held-out split unless --val-data)")  # fmt: skip
    parser.add_argument("--val-data", default=None, help="a separate held-out folder (sr: Set5)")
    parser.add_argument("--also-val", default=None,
                        help="comma-separated further held-out folders, each scored with "
                        "every trained network (sr: any folder of images)")  # fmt: skip
    parser.add_argument("--networks", required=True,
                        help="comma-separated: reference names, default, genotype strings; "
                        "the first is the reference")  # fmt: skip
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--seconds", type=float, default=300.0, help="CPU-time budget per training")
    parser.add_argument("--input", default=None,
                        help="dense tasks' training input HxW (default: the task's recipe)")  # fmt: skip
    parser.add_argument("--deploy-input", default=None,
                        help="latency input HxW (default: --input; sr: 120x160 LR)")  # fmt: skip
    parser.add_argument("--metric", default=None, help="default: the task's primary metric")
    parser.add_argument("--jobs", type=int, default=1, help="trainings at once, one thread each")
    parser.add_argument("--latency-rounds", type=int, default=7, help="0 skips latency")
    parser.add_argument("--json", default=None, help="write every training's result here")
    args = parser.parse_args(argv)
    args.networks = [n.strip() for n in args.networks.split(",") if n.strip()]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.also_val = [f.strip() for f in (args.also_val or "").split(",") if f.strip()]
    if len(args.networks) < 2 or len(set(args.networks)) != len(args.networks):
        parser.error("--networks needs at least two different networks")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error("--seeds lists a seed twice")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from edgenas.errors import UserError
    from edgenas.parsing import parse_shape
    from edgenas.tasks import get_task
    from edgenas.tasks.recipes import recipe_input

    task = get_task(args.task)
    if task.name == "sr" and args.input:
        print("--input: sr trains on the recipe's LR patches; give --deploy-input", file=sys.stderr)
        return 2
    metric = args.metric or task.primary_metric
    lower = task.higher_is_better.get(metric, True) is False
    name = labels(args.networks)
    # Every network is built here first: a typo fails now, not after hours of training.
    try:
        input_size = None
        if task.name != "sr":
            input_size = parse_shape(args.input, ndim=2) if args.input else recipe_input(task.name)
        deploy = parse_shape(args.deploy_input, ndim=2) if args.deploy_input else None
        train_data, _ = open_data(task.name, args.data, args.val_data, input_size, args.seeds[0])
        for folder in args.also_val:
            open_held_out(task.name, folder)
        models = {n: build_network(task, n, train_data.info) for n in args.networks}
    except (ValueError, UserError) as err:
        print(f"bench_train_seeds: {err}", file=sys.stderr)
        return 2
    jobs = [{"task": task.name, "data": args.data, "val_data": args.val_data,
             "input": input_size, "seed": seed, "network": network, "seconds": args.seconds,
             "also_val": args.also_val}
            for index, seed in enumerate(args.seeds)
            for network in (args.networks if index % 2 == 0 else args.networks[::-1])]  # fmt: skip
    results: list[dict] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(train_one, job) for job in jobs]
        try:
            for future in as_completed(futures):
                result = future.result()
                if result["clock"] != "cpu":
                    raise RuntimeError(f"the budget counted {result['clock']} time, not CPU time")
                print(f"seed {result['seed']} {name[result['network']]}: "
                      f"{metric} {result['metrics'][metric]:.4f}, {result['steps']} steps, "
                      f"{result['wall_seconds']:.0f} s", flush=True)  # fmt: skip
                results.append(result)
                if args.json:
                    Path(args.json).write_text(json.dumps({"results": results}, indent=1))
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    deploy = deploy or input_size or SR_DEPLOY
    latency = None
    if args.latency_rounds > 0:
        latency = latencies_ms(models, (1, 3, *deploy), args.latency_rounds)
    else:
        print("latency not measured (--latency-rounds 0)")
    print()
    print(report(metric, lower, args.networks, args.seeds, results, latency))
    for folder in args.also_val:
        print()
        print(report(metric, lower, args.networks, args.seeds, results, latency, folder))
    if args.json:
        payload = {"results": results, "latency_ms": latency, "deploy": deploy}
        Path(args.json).write_text(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
