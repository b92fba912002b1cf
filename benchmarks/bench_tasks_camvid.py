"""CamVid train -> val segmentation at 240x180 for 3 random LDP genotypes (mIoU).

Each genotype trains for --seconds of wall-clock CPU training (batch 8, the LDP
recipe, CamVid median-frequency class weights off) and is evaluated on the 101 val
images at the same 180x240 (HxW) input, labels resized by nearest neighbour, class 11
ignored. Needs ../shared/data/camvid.

    python benchmarks/bench_tasks_camvid.py --seconds 120 --threads 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from edgenas.models import count_macs, count_params
    from edgenas.space import LDPSpace
    from edgenas.tasks import get_task
    from edgenas.training import Budget, TrainConfig, train

    task = get_task("seg")
    size = (180, 240)
    train_data = task.dataset(DATA, "train", size=size)
    val_data = task.dataset(DATA, "val", size=size)
    rows = []
    for i, g in enumerate(LDPSpace().sample_unique(3, seed=args.seed, scales=(2,))):
        torch.manual_seed(i)
        model = task.build_model(g, train_data.info)
        result = train(
            model,
            task,
            train_data,
            val_data,
            Budget(seconds=args.seconds),
            TrainConfig(batch_size=8),
        )
        row = {"genotype": g.encode(), "params": count_params(model),
               "gmacs": count_macs(model, (1, 3, *size)) / 1e9, **result.metrics,
               "epochs": result.epochs, "steps": result.steps,
               "images_per_second": result.images_per_second}  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(
        f"\nCamVid train ({len(train_data)}) -> val ({len(val_data)}), 240x180, {args.seconds:.0f} s each"
    )
    print("| genotype | params | GMACs | mIoU | pixel acc | steps | images/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for i, r in enumerate(rows):
        print(f"| #{i + 1} | {r['params']:,} | {r['gmacs']:.2f} | {r['miou']:.4f} | "
              f"{r['pixel_acc']:.4f} | {r['steps']} | {r['images_per_second']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
