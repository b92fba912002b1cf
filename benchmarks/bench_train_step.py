"""What a training step costs, network against network, side by side in one run.

Under a seconds budget a network's accuracy depends on how many steps it gets, and a
step costs more than inference: batch norms run forward and backward and cannot fold
into the convolutions. This times whole training steps (forward, backward, Adam) of
each network on the same random batch, one torch thread, channels-last as training
runs, in interleaved rounds whose order alternates, on the thread's CPU clock (other
load on the machine barely moves it). It prints each network's median ms per step and
its ratio to the first network (the reference).

Networks are reference model names (``unet``, ``fastdepth``, ...), ``default`` (the
task's default genotype), ``default-ds`` (the same built of MobileNet's ``ds`` blocks
instead of ``sep``) or genotype strings, separated by commas. The loss is the mean
square of the output, whose cost is the same for every network of a task.

    python benchmarks/bench_train_step.py --task seg --networks unet,default,default-ds \\
        --input 180x240
    python benchmarks/bench_train_step.py --task depth --networks fastdepth,default,default-ds
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from bench_train_seeds import build_network  # this folder is on sys.path when run


def build(task: str, network: str) -> torch.nn.Module:
    """A network for a reference name, ``default``, ``default-ds`` or a genotype string,
    with CamVid's 11 classes or SR x2; ``ValueError`` naming the problem."""
    from edgenas.data.base import DatasetInfo
    from edgenas.tasks import get_task
    from edgenas.tasks.defaults import default_genotype

    if network == "default-ds":
        network = default_genotype(task).replace("sep_", "ds_")
    info = DatasetInfo(task, "synthetic", "", "train", num_classes=11, scale=2)
    return build_network(get_task(task), network, info)


def step_times(models: dict, batch: torch.Tensor, rounds: int) -> dict[str, list[float]]:
    """Seconds per training step of each model, ``rounds`` interleaved rounds of two
    steps each (after one untimed warm-up step per model)."""
    optimizers = {
        name: torch.optim.Adam(model.parameters(), 1e-3) for name, model in models.items()
    }

    def step(name: str) -> None:
        optimizers[name].zero_grad(set_to_none=True)
        models[name](batch).square().mean().backward()
        optimizers[name].step()

    for name in models:
        step(name)
    times: dict[str, list[float]] = {name: [] for name in models}
    for index in range(rounds):
        for name in list(models) if index % 2 == 0 else list(reversed(models)):
            start = time.thread_time()
            step(name)
            step(name)
            times[name].append((time.thread_time() - start) / 2)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="seg", help="seg, depth or sr")
    parser.add_argument(
        "--networks", required=True, help="comma-separated; the first is the reference"
    )
    parser.add_argument("--input", default=None, help="HxW (default: the task's recipe input)")
    parser.add_argument("--batch", type=int, default=None, help="default: the task's recipe batch")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)
    from edgenas.errors import UserError
    from edgenas.models.builder import canonical_task
    from edgenas.parsing import parse_shape
    from edgenas.tasks.recipes import recipe_config, recipe_input

    try:
        task = canonical_task(args.task)
        size = parse_shape(args.input, ndim=2) if args.input else recipe_input(task)
        networks = [n for n in args.networks.split(",") if n]
        if len(networks) < 2:
            raise ValueError("--networks needs at least two networks")
        if args.rounds < 1 or (args.batch is not None and args.batch < 1):
            raise ValueError("--rounds and --batch must be at least 1")
        models = {n: build(task, n) for n in networks}
    except (ValueError, UserError) as err:
        print(f"bench_train_step: {err}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    torch.manual_seed(0)
    batch_size = args.batch or recipe_config(task).batch_size
    batch = torch.rand(batch_size, 3, *size).contiguous(memory_format=torch.channels_last)
    for model in models.values():
        model.train().to(memory_format=torch.channels_last)
    times = step_times(models, batch, args.rounds)
    reference = statistics.median(times[networks[0]])
    print(f"{task}, batch {batch_size} at {size[0]}x{size[1]}, 1 thread, {args.rounds} rounds\n")
    print("| network | params | ms per step (median) | vs the first |")
    print("|---|---|---|---|")
    for index, name in enumerate(networks):
        median = statistics.median(times[name])
        params = sum(p.numel() for p in models[name].parameters())
        label = name if len(name) < 40 else f"genotype {index}"
        print(f"| {label} | {params:,} | {median * 1000:.1f} | {median / reference:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
