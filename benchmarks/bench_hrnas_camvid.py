"""HR-NAS shrinking on CamVid against the U-Net trained for the same seconds.

For each seed, lambda and cost (flops, or latency on `cpu`, 1 thread) one `edgenas
shrink` run (same code path as the CLI) on CamVid train (184 images) -> val (101) at
--input (default 180x240), trained for --seconds (default 300) with the supernet and
recipe given (defaults: the CamVid settings of docs/hrnas.md). Each run also trains the
segmentation baseline (U-Net) for as long as the shrink trained, on the same images with
the same recipe, and measures both. The table prints, side by side, the mIoU of both on
the held-out images and the latency of the shrunk network as a ratio to the U-Net's,
measured in interleaved rounds on the same device (one absolute time on a shared
machine means little): for `best.onnx` (any input size, like the U-Net's file) and
`best.static.onnx` (the deploy size only). For latency runs it also prints how the
predicted latency tracked the latency measured after every shrink step. Needs
../shared/data/camvid (or --data).

    python benchmarks/bench_hrnas_camvid.py --seeds 0,1,2 --out /tmp/hrnas-camvid
    python benchmarks/bench_hrnas_camvid.py --costs latency --seeds 0,1,2 --out /tmp/lat
    python benchmarks/bench_hrnas_camvid.py --costs latency --latency-model kernels --seeds 0
    python benchmarks/bench_hrnas_camvid.py --table /tmp/hrnas-camvid/summary.json /tmp/b/summary.json

The last line trains nothing: it prints one table over the runs of earlier benches, with
the sign test's p-values (short CPU trainings move the mIoU of one network by a few
hundredths between runs, so one seed proves little).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"


def _mape(pred: list[float], meas: list[float]) -> float:
    return sum(abs(p - m) / m for p, m in zip(pred, meas, strict=True)) / len(meas)


def sign_test_p(successes: int, trials: int) -> float:
    """One-sided sign test: the chance of ``successes`` or more in ``trials`` fair coin
    flips (how often a method no better than its baseline would look this good)."""
    return sum(math.comb(trials, k) for k in range(successes, trials + 1)) / 2**trials


def _ints(text: str, what: str, parser: argparse.ArgumentParser) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        parser.error(f"{what}: write whole numbers like 0,1,2, got {text!r}")


class _AtShape:
    """Measures files on the host CPU (1 thread) at one input shape, the files with a
    free height and width too (what :func:`paired_sessions` needs of a measurer)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def measure_file(self, path: Path, protocol) -> float:
        from edgenas.devices.modelinfo import shapes_for_single_input
        from edgenas.devices.profile import profile_model

        shapes = shapes_for_single_input(path, self.shape)
        return profile_model(path, "cpu", protocol, threads=1, input_shapes=shapes).median_ms


def _paired(measurer: _AtShape, reference: Path, network: Path, rounds: int) -> float | None:
    """The network's latency over the reference's, in interleaved rounds."""
    from edgenas.search.latency import paired_ratio, paired_sessions

    if not (reference.is_file() and network.is_file()):
        return None
    return paired_ratio(*paired_sessions(measurer, reference, network, rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA), help="CamVid folder (train/, val/ ...)")
    parser.add_argument("--lambdas", default="2e-3")
    parser.add_argument("--costs", default="flops", help="flops, latency or both (flops,latency)")
    parser.add_argument("--seconds", type=float, default=300.0, help="training budget")
    parser.add_argument(
        "--epochs", type=int, default=None, help="a budget in epochs instead of --seconds"
    )
    parser.add_argument("--input", default="180x240", help="training and deploy size HxW")
    # The supernet defaults to `edgenas shrink --supernet small`'s shape.
    from edgenas.hrnas.config import LATENCY_MODELS, SUPERNET_PRESETS

    small = SUPERNET_PRESETS["small"]
    parser.add_argument("--widths", default=",".join(map(str, small["widths"])))
    parser.add_argument("--branches", default=",".join(map(str, small["branches"])))
    parser.add_argument("--tokens", type=int, default=small["tokens"])
    parser.add_argument("--expansion", type=float, default=small["expansion"])
    parser.add_argument("--optimizer", default="fast", choices=("fast", "ldp", "hrnas"))
    parser.add_argument("--epsilon", type=float, default=2e-2)
    parser.add_argument("--align", type=int, default=8)
    parser.add_argument(
        "--shrink-every", type=int, default=5, help="epochs between shrinks (the paper: 5)"
    )
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (each cost and lambda)")
    parser.add_argument(
        "--no-baselines", action="store_true", help="skip the U-Net trained beside each run"
    )
    parser.add_argument("--rounds", type=int, default=5, help="paired latency rounds")
    parser.add_argument(
        "--latency-model",
        choices=LATENCY_MODELS,
        default="measured",
        help="latency cost's slopes: measured, or the kernel predictor (`edgenas devices "
        "calibrate cpu --threads 1` first)",
    )
    parser.add_argument("--out", default="/tmp/hrnas-camvid")
    parser.add_argument(
        "--table",
        nargs="+",
        metavar="SUMMARY",
        help="print one table over the summary.json files of earlier runs; train nothing",
    )
    args = parser.parse_args()
    if args.table:
        rows = []
        for path in args.table:
            try:
                rows += json.loads(Path(path).read_text())
            except (OSError, ValueError) as err:
                raise SystemExit(f"--table: cannot read {path} ({err})") from None
        _print_table(rows)
        return
    seeds = _ints(args.seeds, "--seeds", parser)
    try:
        lambdas = [float(v) for v in args.lambdas.split(",")]
    except ValueError:
        parser.error(f"--lambdas: write numbers like 1e-3,4e-3, got {args.lambdas!r}")
    costs = args.costs.split(",")
    if not set(costs) <= {"flops", "latency"}:
        parser.error(f"--costs: choose from flops and latency, got {args.costs!r}")
    widths = _ints(args.widths, "--widths", parser)
    branches = _ints(args.branches, "--branches", parser)
    from edgenas.parsing import parse_shape

    try:
        h, w = parse_shape(args.input, ndim=2)
    except ValueError as err:
        parser.error(f"--input: {err}")
    if not Path(args.data, "train").is_dir():
        raise SystemExit(f"{args.data} has no train/ folder; pass --data with CamVid")

    from edgenas.devices.profile import resolve_device

    from edgenas.hrnas.session import ShrinkSession
    from edgenas.hrnas.shrink import ShrinkConfig
    from edgenas.hrnas.supernet import SupernetConfig
    from edgenas.store import RunStore
    from edgenas.tasks import get_task

    supernet = SupernetConfig(
        widths=widths, branches=branches, tokens=args.tokens, expansion=args.expansion
    )
    rows = []
    runs = [(seed, lam, cost) for seed in seeds for lam in lambdas for cost in costs]
    measurer = _AtShape((1, 3, h, w))
    for seed, lam, cost in runs:
        model = args.latency_model if cost == "latency" else "measured"
        label = cost if model == "measured" else f"{cost}-{model}"  # e.g. latency-kernels
        run_dir = Path(args.out) / f"{label}-lam{lam:g}" / f"seed{seed}"
        if (run_dir / "run.sqlite").exists():
            raise SystemExit(f"{run_dir} exists; pass another --out")
        session = ShrinkSession(
            task=get_task("seg"),
            config=supernet,
            device=resolve_device("cpu"),
            cost=cost,
            latency_model=model,
            shrink=ShrinkConfig(
                lam=lam,
                epsilon=args.epsilon,
                align=args.align,
                seconds=None if args.epochs else args.seconds,
                epochs=args.epochs,
                shrink_every=args.shrink_every,
                optimizer=args.optimizer,
                seed=seed,
            ),
            baselines=() if args.no_baselines else ("unet",),
            data=args.data,
            input_hw=(h, w),
            threads=1,
            run_dir=run_dir,
            quiet=True,
        )
        session.run()
        with RunStore.open_readonly(run_dir) as store:
            summary = store.run_info().summary
            steps = [e.payload for e in store.events(kinds=("shrink_step",))]
        unet = run_dir / "baselines" / "baseline-unet.onnx"
        row = {
            "seed": seed,
            "onnx": str(run_dir / "best.onnx"),
            "cost": label,
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
            # Latency over the U-Net's, interleaved on the same device.
            "ratio_any": _paired(measurer, unet, run_dir / "best.onnx", args.rounds),
            "ratio_static": _paired(measurer, unet, run_dir / "best.static.onnx", args.rounds),
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
    _print_table(rows)


def _print_table(rows: list[dict]) -> None:
    print(
        "| seed | cost | lambda | mIoU | U-Net mIoU (same s) | params K | MACs M "
        "| latency / U-Net: best.onnx, best.static.onnx |"
    )
    print("|---|---|---|---|---|---|---|---|")
    deltas, ratios, wins, faster = [], [], 0, 0
    for r in rows:
        unet = next((b for b in r["baselines"] if b["name"] == "unet"), None)
        base = f"{unet['metrics']['miou']:.4f}" if unet else "-"
        any_, static = r["ratio_any"], r["ratio_static"]
        ratio = f"{any_:.2f}, {static:.2f}" if any_ is not None and static is not None else "-"
        print(
            f"| {r['seed']} | {r['cost']} | {r['lambda']:g} | {r['miou']:.4f} | {base} "
            f"| {r['params'] / 1e3:.0f} (of {r['params_before'] / 1e3:.0f}) "
            f"| {r['macs'] / 1e6:.1f} (of {r['macs_before'] / 1e6:.1f}) | {ratio} |"
        )
        if unet and any_ is not None:
            delta = r["miou"] - unet["metrics"]["miou"]
            deltas.append(delta)
            ratios.append(any_)
            wins += delta > 0 and any_ <= 1.0
            faster += any_ < 1.0
    if deltas:
        print(
            f"\nshrunk vs U-Net over {len(deltas)} run(s): mIoU difference median "
            f"{statistics.median(deltas):+.4f} (min {min(deltas):+.4f}, max {max(deltas):+.4f}); "
            f"latency ratio (best.onnx) median {statistics.median(ratios):.2f} "
            f"(min {min(ratios):.2f}, max {max(ratios):.2f}); better mIoU at equal or lower "
            f"latency in {wins} of {len(deltas)}"
        )
        n, better = len(deltas), sum(d > 0 for d in deltas)
        print(
            f"sign tests (one-sided): mIoU higher in {better} of {n} (p {sign_test_p(better, n):.3f}), "
            f"best.onnx faster in {faster} of {n} (p {sign_test_p(faster, n):.3f})"
        )


if __name__ == "__main__":
    main()
