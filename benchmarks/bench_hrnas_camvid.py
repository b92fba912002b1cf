"""HR-NAS shrinking on CamVid at reduced resolution: FLOPs cost vs host-CPU latency cost.

For each lambda in --lambdas and each cost (flops, latency on `cpu`, 1 thread) one
`edgenas shrink` run (same code path as the CLI) on CamVid train (184 images) -> val
(101), input --input (default 96x128). Reports mIoU, params, MACs and measured latency
of the extracted network, and, for latency runs, how predicted latency (measured
supernet minus the summed slopes of removed units) tracked the latency measured after
every shrink step: predicted = step-0 measurement + change of the summed whole-block
table entries (and, for comparison, minus the summed slopes of removed units). Each run
also trains the segmentation baseline (U-Net) for as long as the shrink trained, on
the same data, and the table prints its row beside the shrunk network's. Needs
../shared/data/camvid.

    python benchmarks/bench_hrnas_camvid.py --epochs 6 --out /tmp/hrnas-camvid
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"


def _mape(pred: list[float], meas: list[float]) -> float:
    return sum(abs(p - m) / m for p, m in zip(pred, meas, strict=True)) / len(meas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lambdas", default="1e-3,4e-3")
    parser.add_argument("--costs", default="flops,latency")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--input", default="96x128")
    parser.add_argument("--epsilon", type=float, default=2e-2)
    parser.add_argument("--align", type=int, default=8)
    parser.add_argument(
        "--shrink-every", type=int, default=1, help="epochs between shrinks (the paper: 5)"
    )
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (each cost and lambda)")
    parser.add_argument(
        "--no-baselines", action="store_true", help="skip the U-Net trained beside each run"
    )
    parser.add_argument("--out", default="/tmp/hrnas-camvid")
    args = parser.parse_args()
    try:
        seeds = [int(v) for v in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds: write whole numbers like 0,1,2, got {args.seeds!r}")

    from edgenas.devices.profile import resolve_device

    from edgenas.hrnas.session import ShrinkSession
    from edgenas.hrnas.shrink import ShrinkConfig
    from edgenas.hrnas.supernet import SupernetConfig
    from edgenas.store import RunStore
    from edgenas.tasks import get_task

    h, w = (int(v) for v in args.input.split("x"))
    rows = []
    runs = [
        (seed, lam, cost)
        for seed in seeds
        for lam in (float(v) for v in args.lambdas.split(","))
        for cost in args.costs.split(",")
    ]
    for seed, lam, cost in runs:
        run_dir = Path(args.out) / f"{cost}-lam{lam:g}" / f"seed{seed}"
        if (run_dir / "run.sqlite").exists():
            raise SystemExit(f"{run_dir} exists; pass another --out")
        session = ShrinkSession(
            task=get_task("seg"),
            config=SupernetConfig(),
            device=resolve_device("cpu"),
            cost=cost,
            shrink=ShrinkConfig(
                lam=lam,
                epsilon=args.epsilon,
                align=args.align,
                epochs=args.epochs,
                shrink_every=args.shrink_every,
                seed=seed,
            ),
            baselines=() if args.no_baselines else None,
            data=str(DATA),
            input_hw=(h, w),
            threads=1,
            run_dir=run_dir,
            quiet=True,
        )
        session.run()
        with RunStore.open_readonly(run_dir) as store:
            summary = store.run_info().summary
            steps = [e.payload for e in store.events(kinds=("shrink_step",))]
        row = {
            "seed": seed,
            "onnx": str(run_dir / "best.onnx"),
            "cost": cost,
            "lambda": lam,
            "miou": summary["metrics"]["miou"],
            "params": summary["params_after"],
            "params_before": summary["params_before"],
            "macs": summary["macs_after"],
            "macs_before": summary["macs_before"],
            "latency_ms": summary["latency_ms"],
            "units": summary["units_after"],
            "units_before": summary["units_before"],
            "train_seconds": summary["train_seconds"],
            "fixed_latency_ms": ((summary.get("deployed") or {}).get("fixed") or {}).get(
                "latency_ms"
            ),
            "baselines": [
                {k: b.get(k) for k in ("name", "metrics", "params", "macs", "latency_ms")}
                for b in summary.get("baselines") or []
                if "error" not in b
            ],
        }
        if cost == "latency":
            pred = [s["predicted_ms"] for s in steps]
            slope = [s["slope_predicted_ms"] for s in steps]
            meas = [s["measured_ms"] for s in steps]
            row.update(
                predicted_ms=pred,
                slope_predicted_ms=slope,
                measured_ms=meas,
                tracking_mape=_mape(pred, meas),
                slope_tracking_mape=_mape(slope, meas),
                predicted_drop_ms=pred[0] - pred[-1],
                measured_drop_ms=meas[0] - meas[-1],
            )
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = Path(args.out) / "summary.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(
        "| seed | cost | lambda | mIoU | params (K) | MACs (M) | latency ms (fixed size) "
        "| units kept |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        fixed = f"{r['fixed_latency_ms']:.2f}" if r.get("fixed_latency_ms") else "-"
        print(
            f"| {r['seed']} | {r['cost']} | {r['lambda']:g} | {r['miou']:.4f} | {r['params'] / 1e3:.0f} "
            f"(of {r['params_before'] / 1e3:.0f}) | {r['macs'] / 1e6:.1f} (of "
            f"{r['macs_before'] / 1e6:.1f}) | {r['latency_ms']:.2f} ({fixed}) | {r['units']} of "
            f"{r['units_before']} |"
        )
        for b in r["baselines"]:
            # Trained for the same seconds on the same data, measured the same way.
            print(
                f"| {r['seed']} | baseline {b['name']} (same {r['train_seconds']:.0f} s) | | "
                f"{b['metrics']['miou']:.4f} | {b['params'] / 1e3:.0f} | {b['macs'] / 1e6:.1f} "
                f"| {b['latency_ms']:.2f} | |"
            )


if __name__ == "__main__":
    main()
