"""T91 -> Set5 super-resolution under one equal short training budget.

Rows: bicubic, an FSRCNN-sized hand-designed network (Dong et al. 2016, d=56, s=12,
m=4), three random LDP genotypes of about 100K parameters and three of about 1M.
Each network trains on T91 (random 48x48 LR patches, batch 16) for --seconds of
wall-clock training on CPU, then is evaluated on Set5 (Y-channel PSNR/SSIM, scale
pixels shaved). Needs ../shared/data/sr.

    python benchmarks/bench_tasks_sr.py --seconds 60 --scale 2 --threads 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sr"


class FSRCNN(nn.Module):
    """FSRCNN(d, s, m): feature extraction, shrinking, m mapping layers, expanding, deconv."""

    def __init__(self, scale: int, d: int = 56, s: int = 12, m: int = 4) -> None:
        super().__init__()
        layers = [nn.Conv2d(3, d, 5, padding=2), nn.PReLU(d), nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        self.deconv = nn.ConvTranspose2d(d, 3, 9, stride=scale, padding=4, output_padding=scale - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.body(x))


def pick_genotypes(target: int, n: int, scale: int, seed: int) -> list:
    """``n`` sampled 2-scale genotypes whose SR network has the closest parameter count."""
    from edgenas.models import build_model, count_params
    from edgenas.space import LDPSpace

    pool = LDPSpace().sample_unique(120, seed=seed, scales=(2,))
    sized = [
        (abs(count_params(build_model(g, "sr", scale=scale)) / target - 1), i, g)
        for i, g in enumerate(pool)
    ]
    return [g for _, _, g in sorted(sized)[:n]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from edgenas.models import count_params
    from edgenas.tasks import get_task
    from edgenas.tasks.baselines import BicubicUpscaler
    from edgenas.training import Budget, TrainConfig, evaluate, train

    task = get_task("sr")
    train_data = task.dataset(
        DATA / "T91", "all", scale=args.scale, train=True, patch=48, patches_per_image=8
    )
    val_data = task.dataset(DATA / "Set5", "all", scale=args.scale)
    rows = []
    metrics = evaluate(BicubicUpscaler(args.scale), task, val_data)
    rows.append({"model": "bicubic", "params": 0, **metrics, "images_per_second": None})
    candidates = [("FSRCNN (d56 s12 m4)", FSRCNN(args.scale))]
    for target, label in ((100_000, "LDP ~100K"), (1_000_000, "LDP ~1M")):
        for i, g in enumerate(pick_genotypes(target, 3, args.scale, seed=target)):
            torch.manual_seed(i)
            candidates.append((f"{label} #{i + 1}", task.build_model(g, None, scale=args.scale)))
    config = TrainConfig(batch_size=16, seed=0)
    for name, model in candidates:
        result = train(model, task, train_data, val_data, Budget(seconds=args.seconds), config)
        row = {"model": name, "params": count_params(model), **result.metrics,
               "images_per_second": result.images_per_second, "steps": result.steps}  # fmt: skip
        if hasattr(model, "genotype"):
            row["genotype"] = model.genotype.encode()
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(
        f"\nT91 -> Set5 x{args.scale}, {args.seconds:.0f} s CPU training each, {args.threads} thread(s)"
    )
    print("| model | params | PSNR (dB) | SSIM | train images/s |\n|---|---:|---:|---:|---:|")
    for r in rows:
        ips = "-" if r["images_per_second"] is None else f"{r['images_per_second']:.1f}"
        print(f"| {r['model']} | {r['params']:,} | {r['psnr']:.2f} | {r['ssim']:.4f} | {ips} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
