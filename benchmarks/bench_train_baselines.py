"""Reference baselines vs LDP genotypes, each trained for the same wall time, in one run.

For each task on ../shared/data (held-out images only for the metrics):

* sr     T91 -> Set5, x2: bicubic, ESPCN, FSRCNN, the default genotype, a residual-conv
         genotype of ESPCN's size, and a minimal plain-PyTorch ESPCN loop written here
         as an outside reference (edgenas's ESPCN must land within 0.2 dB of it, at
         >= 0.9x its images/s);
* seg    CamVid train -> val at 180x240 (mIoU scored on the full-resolution labels):
         U-Net, LR-ASPP, the default genotype, a residual-conv genotype;
* depth  ../shared/data/depth (every 10th pair held out) at 128x160, scored at full
         resolution: the median training depth everywhere, FastDepth, the default
         genotype, a residual-conv genotype.

Every trained row uses `edgenas.training.train` with the task's recipe, the same
budget, seed and data; the table gives the metrics, params, MACs and latency at the
deploy size (onnxruntime, 1 thread, this CPU), steps/s and images/s.

    python benchmarks/bench_train_baselines.py --task all --seconds 300 --json out.json
    python benchmarks/bench_train_baselines.py --task sr --seconds 60      # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# The first releases' default genotype (a random 2-scale sample): the SR default is now
# itself a plain residual-conv genotype of ESPCN's size, so SR compares with this one.
PREVIOUS_DEFAULT = (
    "S2:micro_k5_se0_nores_c32_n3-ib3_k3_se0_nores_c32_n2-ib3_k5_se25_res_c8_n2-"
    "micro_k5_se25_nores_c8_n2-micro_k5_se0_nores_c64_n2-ds_k5_se0_res_c16_n1-"
    "ib3_k3_se0_nores_c8_n3-ds_k5_se25_res_c24_n1-ib3_k5_se0_nores_c32_n1-"
    "conv_k5_se25_res_c16_n3-ds_k5_se25_res_c8_n3-micro_k3_se25_res_c48_n3"
)
# A plain residual-conv 4-scale genotype of about the U-Net's size (59K parameters,
# 87M MACs at 180x240 with 11 classes): 3x3 conv blocks of 8, 8, 16, 24 channels.
_WIDTHS = (8, 8, 16, 24)
RESIDUAL_CONV_DENSE = "S4:" + "-".join(
    f"conv_k3_se0_res_c{_WIDTHS[i]}_n1"
    for i in (0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0)
)
LABELS = {"default": "LDP default genotype", PREVIOUS_DEFAULT: "LDP previous default genotype",
          RESIDUAL_CONV_DENSE: "LDP residual-conv genotype"}  # fmt: skip

TASKS = {
    "sr": {
        "train": DATA / "sr" / "T91",
        "val": DATA / "sr" / "Set5",
        "deploy": (120, 160),
        "rows": ["bicubic", "espcn", "fsrcnn", "default", PREVIOUS_DEFAULT],
    },
    "segmentation": {
        "train": DATA / "camvid",
        "input": (180, 240),
        "deploy": (180, 240),
        "rows": ["unet", "lraspp", "default", RESIDUAL_CONV_DENSE],
    },
    "depth": {
        "train": DATA / "depth",
        "input": (128, 160),
        "deploy": (128, 160),
        "rows": ["median", "fastdepth", "default", RESIDUAL_CONV_DENSE],
    },
}


# ----- the outside reference: ESPCN in a plain PyTorch loop ---------------------------------


class PlainESPCN(nn.Module):
    """ESPCN as a user writes it: 5x5x64 tanh, 3x3x32 tanh, 3x3 -> 3s^2, pixel shuffle,
    plus a bilinear global residual (last conv zero-initialised)."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.conv1 = nn.Conv2d(3, 64, 5, padding=2)
        self.conv2 = nn.Conv2d(64, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 3 * scale * scale, 3, padding=1)
        nn.init.zeros_(self.conv3.weight)
        nn.init.zeros_(self.conv3.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.tanh(self.conv2(torch.tanh(self.conv1(x))))
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return F.pixel_shuffle(self.conv3(features), self.scale) + base


def plain_espcn_loop(folder: Path, scale: int, seconds: float, seed: int = 0):
    """Train PlainESPCN for ``seconds``: Adam 1e-3 with cosine decay over the budget, L1,
    batches of 16 random 24x24 LR patches with flips, LR by PIL bicubic of whole images."""
    from PIL import Image

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    pairs = []
    for path in sorted(folder.iterdir()):
        hr = np.asarray(Image.open(path).convert("RGB"))
        hr = hr[: hr.shape[0] - hr.shape[0] % scale, : hr.shape[1] - hr.shape[1] % scale]
        size = (hr.shape[1] // scale, hr.shape[0] // scale)
        lr = np.asarray(Image.fromarray(hr).resize(size, Image.BICUBIC))
        if min(lr.shape[:2]) >= 24:
            pairs.append((hr, lr))
    model = PlainESPCN(scale)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps, spent, patch = 0, 0.0, 24
    while spent < seconds:
        tick = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = 1e-3 * 0.5 * (1 + math.cos(math.pi * min(spent / seconds, 1.0)))
        lows, highs = [], []
        for _ in range(16):
            hr, lr = pairs[rng.integers(len(pairs))]
            y = rng.integers(lr.shape[0] - patch + 1)
            x = rng.integers(lr.shape[1] - patch + 1)
            a = lr[y : y + patch, x : x + patch]
            b = hr[y * scale : (y + patch) * scale, x * scale : (x + patch) * scale]
            if rng.random() < 0.5:
                a, b = a[:, ::-1], b[:, ::-1]
            if rng.random() < 0.5:
                a, b = a[::-1], b[::-1]
            lows.append(a.copy())
            highs.append(b.copy())
        low = torch.from_numpy(np.stack(lows)).permute(0, 3, 1, 2).float() / 255
        high = torch.from_numpy(np.stack(highs)).permute(0, 3, 1, 2).float() / 255
        loss = F.l1_loss(model(low), high)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
        spent += time.perf_counter() - tick
    return model, steps, spent


class MedianDepth(nn.Module):
    """Predict one depth (the training set's median) everywhere."""

    def __init__(self, depth: float) -> None:
        super().__init__()
        self.depth = depth

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.full_like(image[:, :1], self.depth)


# ----- one row ---------------------------------------------------------------------------------


def _latency_ms(model: nn.Module, shape) -> float:
    from edgenas.latency_table import Measurer

    measurer = Measurer("cpu", threads=1)
    try:
        return measurer.measure_network(model.eval(), shape)
    finally:
        measurer.close()


def _open(task, spec: dict, scale: int):
    from edgenas.tasks.recipes import recipe_input

    if task.name == "sr":
        patch = recipe_input("sr")[0]
        train = task.dataset(spec["train"], "all", scale=scale, patch=patch, train=True)
        val = task.dataset(spec["val"], "all", scale=scale, train=False)
    else:
        train = task.dataset(spec["train"], "train", size=spec["input"])
        val = task.dataset(spec["train"], "val", size=None)
    return train, val


def _build(task, row: str, info):
    from edgenas.models.reference import REFERENCE_MODELS, build_reference
    from edgenas.tasks.defaults import default_genotype

    if row in REFERENCE_MODELS:
        options = {
            k: v for k, v in task.head_options(info).items() if k in REFERENCE_MODELS[row].defaults
        }
        return build_reference(row, task.name, **options), row
    genotype = default_genotype(task.name) if row == "default" else row
    return task.build_model(genotype, info), LABELS[row]


def run_task(name: str, seconds: float, scale: int, accelerator: str, log) -> list[dict]:
    from edgenas.models.complexity import count_macs, count_params
    from edgenas.models.reference import REFERENCE_MODELS
    from edgenas.tasks import get_task
    from edgenas.tasks.recipes import recipe_config
    from edgenas.training import Budget, evaluate, train

    task = get_task(name)
    spec = TASKS[task.name]
    train_data, val_data = _open(task, spec, scale)
    eval_input = spec.get("input")
    deploy = (1, 3, *spec["deploy"])
    rows = []
    for row in spec["rows"]:
        torch.manual_seed(0)
        if row == "median":
            depths = torch.cat([train_data[i][1].flatten() for i in range(len(train_data))])
            model, label = MedianDepth(float(depths[depths > 0].median())), "median training depth"
            result = None
        else:
            model, label = _build(task, row, train_data.info)
            result = None
        learned = (
            not (row in REFERENCE_MODELS and not REFERENCE_MODELS[row].learned) and row != "median"
        )
        start = time.perf_counter()
        if learned:
            overrides = REFERENCE_MODELS[row].recipe if row in REFERENCE_MODELS else {}
            config = recipe_config(task.name, accelerator=accelerator, **overrides)
            result = train(model, task, train_data, val_data, Budget(seconds=seconds), config,
                           eval_input=eval_input)  # fmt: skip
            metrics = result.metrics
        else:
            metrics = evaluate(model, task, val_data, input_size=eval_input)
        record = {
            "task": task.name,
            "model": label,
            "network": row,
            "params": count_params(model),
            "macs": count_macs(model, deploy) if row != "median" else 0,
            "latency_ms": _latency_ms(model, deploy) if row != "median" else None,
            "metrics": metrics,
            "steps": result.steps if result else None,
            "steps_per_second": result.steps_per_second if result else None,
            "images_per_second": result.images_per_second if result else None,
            "seconds": time.perf_counter() - start,
        }
        rows.append(record)
        log(record)
    if task.name == "sr":
        start = time.perf_counter()
        model, steps, spent = plain_espcn_loop(spec["train"], scale, seconds)
        metrics = evaluate(model, task, val_data)
        record = {
            "task": task.name,
            "model": "plain PyTorch ESPCN loop (outside reference)",
            "network": "plain-espcn",
            "params": count_params(model),
            "macs": count_macs(model, deploy),
            "latency_ms": _latency_ms(model, deploy),
            "metrics": metrics,
            "steps": steps,
            "steps_per_second": steps / spent,
            "images_per_second": steps * 16 / spent,
            "seconds": time.perf_counter() - start,
        }
        rows.append(record)
        log(record)
    return rows


METRIC_COLUMNS = {
    "sr": [("psnr", "PSNR dB", 2), ("ssim", "SSIM", 4)],
    "segmentation": [("miou", "mIoU", 4), ("pixel_acc", "pixel acc", 4)],
    "depth": [("rel", "REL", 4), ("rmse", "RMSE m", 3), ("delta1", "delta1", 4)],
}


def table(rows: list[dict]) -> str:
    """A Markdown table of one task's rows."""
    task = rows[0]["task"]
    metrics = METRIC_COLUMNS[task]
    head = ["model", *[m[1] for m in metrics], "params", "MMACs", "latency ms", "steps/s", "img/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:

        def fmt(value, digits):
            return (
                "-"
                if value is None or (isinstance(value, float) and math.isnan(value))
                else f"{value:.{digits}f}"
            )

        cells = [r["model"], *[fmt(r["metrics"].get(k), d) for k, _, d in metrics]]
        cells += [f"{r['params']:,}", f"{r['macs'] / 1e6:.1f}", fmt(r["latency_ms"], 2)]
        cells += [fmt(r["steps_per_second"], 1), fmt(r["images_per_second"], 1)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def checks(rows: list[dict]) -> list[str]:
    """The acceptance comparisons of the task, as printed lines (ratios and deltas)."""
    by = {r["network"]: r for r in rows}
    task = rows[0]["task"]
    out = []
    if task == "sr" and "plain-espcn" in by and "espcn" in by:
        ours, plain = by["espcn"], by["plain-espcn"]
        delta = ours["metrics"]["psnr"] - plain["metrics"]["psnr"]
        ratio = ours["images_per_second"] / plain["images_per_second"]
        out.append(f"edgenas ESPCN - plain ESPCN: {delta:+.2f} dB (must be >= -0.2)")
        out.append(f"edgenas / plain images/s: {ratio:.2f}x (must be >= 0.9)")
        for key in ("default", PREVIOUS_DEFAULT):
            if key in by:
                gain = by[key]["metrics"]["psnr"] - by["bicubic"]["metrics"]["psnr"]
                out.append(f"{by[key]['model']} - bicubic: {gain:+.2f} dB")
    if task == "depth" and "median" in by:
        base = by["median"]["metrics"]
        for key in ("fastdepth", "default", RESIDUAL_CONV_DENSE):
            if key in by:
                m = by[key]["metrics"]
                out.append(
                    f"{by[key]['model']}: REL {m['rel']:.3f} vs {base['rel']:.3f} "
                    f"({m['rel'] / base['rel']:.2f}x), delta1 {m['delta1']:.3f} vs {base['delta1']:.3f}"
                )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="all", help="sr, seg, depth or all")
    parser.add_argument("--seconds", type=float, default=300.0, help="training budget per row")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--torch-threads", type=int, default=2, help="torch threads for training")
    parser.add_argument("--accelerator", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--json", default=None, help="write every row to this JSON file")
    args = parser.parse_args()
    from edgenas.models.builder import canonical_task

    if not DATA.is_dir():
        print(f"needs ../shared/data (looked in {DATA})", file=sys.stderr)
        return 2
    torch.set_num_threads(args.torch_threads)
    names = list(TASKS) if args.task == "all" else [canonical_task(args.task)]

    def log(record: dict) -> None:
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in record["metrics"].items())
        print(f"  {record['task']:12s} {record['model'][:40]:40s} {metrics}", flush=True)

    every = []
    for name in names:
        print(f"== {name}: {args.seconds:g} s of training per row", flush=True)
        rows = run_task(name, args.seconds, args.scale, args.accelerator, log)
        every += rows
        print()
        print(table(rows))
        for line in checks(rows):
            print(line)
        print(flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(every, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
