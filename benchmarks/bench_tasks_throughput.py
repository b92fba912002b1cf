"""Training throughput (images/s) on CPU for 3 candidate sizes at the proxy resolution.

Three random 2-scale genotypes (smallest, median and largest by parameters of 9 drawn)
train on the built-in segmentation scenes at 128x160, batch 8, for --steps steps after
2 warm-up steps; the full step (augmentation, forward, loss, backward, Adam) is timed.

    python benchmarks/bench_tasks_throughput.py --torch-threads 2
"""

from __future__ import annotations

import argparse

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)

    from edgenas.models import count_macs, count_params
    from edgenas.space import LDPSpace
    from edgenas.tasks import get_task
    from edgenas.training import Budget, TrainConfig, train

    task = get_task("seg")
    data, _ = task.demo_data()
    pool = LDPSpace().sample_unique(9, seed=1, scales=(2,))
    sized = sorted((count_params(task.build_model(g, data.info)), i, g) for i, g in enumerate(pool))
    print(f"threads {args.torch_threads}, input 128x160, batch 8\n")
    print("| candidate | params | GMACs (1x3x128x160) | train images/s |\n|---|---:|---:|---:|")
    for label, (_, _, g) in zip(
        ("small", "median", "large"), (sized[0], sized[4], sized[-1]), strict=True
    ):
        model = task.build_model(g, data.info)
        config = TrainConfig(batch_size=8)
        train(model, task, data, None, Budget(steps=2), config)  # warm-up
        result = train(model, task, data, None, Budget(steps=args.steps), config)
        macs = count_macs(model, (1, 3, 128, 160)) / 1e9
        print(
            f"| {label} | {count_params(model):,} | {macs:.2f} | {result.images_per_second:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
