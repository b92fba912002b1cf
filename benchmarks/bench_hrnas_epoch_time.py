"""Time per shrinking epoch vs a plain training epoch of the same HR-NAS supernet.

Plain: `edgenas.training.train` for one epoch (task loss only). Shrinking: one epoch
of `run_shrink` with the resource term (FLOPs cost) in the loss, plus the shrink step
that follows it (selection, surgery, Adam state slicing, BN recalibration, cost
recomputation; evaluation excluded from both). Built-in segmentation scenes by
default, or CamVid with --camvid.

    python benchmarks/bench_hrnas_epoch_time.py --input 64x80 --repeats 2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default="64x80")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--camvid", action="store_true")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)

    from edgenas.hrnas.costs import flops_costs
    from edgenas.hrnas.shrink import ShrinkConfig, run_shrink
    from edgenas.hrnas.supernet import HRSupernet, SupernetConfig
    from edgenas.tasks import get_task
    from edgenas.training import Budget, TrainConfig, train

    h, w = (int(v) for v in args.input.split("x"))
    shape = (1, 3, h, w)
    task = get_task("seg")
    root = DATA if args.camvid else None
    train_data = task.dataset(root, "train", size=(h, w))
    plain, shrink, step_overhead = [], [], []
    for r in range(args.repeats):
        torch.manual_seed(r)
        model = HRSupernet(SupernetConfig(), "seg", num_classes=train_data.info.num_classes)
        result = train(model, task, train_data, None, Budget(epochs=1), TrainConfig(seed=r))
        plain.append(result.seconds)

        torch.manual_seed(r)
        model = HRSupernet(SupernetConfig(), "seg", num_classes=train_data.info.num_classes)
        config = ShrinkConfig(epochs=1, seed=r, warmup_epochs=0.0)
        out = run_shrink(
            model,
            task,
            train_data,
            None,
            config,
            input_shape=shape,
            cost_fn=lambda m: flops_costs(m, shape),
        )
        shrink.append(out.epoch_seconds[0])
        # steps[i].seconds is stamped after step i's bookkeeping (no evaluation without
        # val data): last stamp - training time - step-0 stamp = the shrink step.
        step_overhead.append(
            out.steps[-1].seconds - out.steps[-1].train_seconds - out.steps[0].seconds
        )
    row = {
        "input": [h, w],
        "data": "camvid" if args.camvid else "built-in",
        "images": len(train_data),
        "plain_epoch_s": plain,
        "shrink_epoch_s": shrink,
        "shrink_step_s": step_overhead,
        "ratio": sum(shrink) / sum(plain),
    }
    print(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
