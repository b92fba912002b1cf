"""``edgenas shrink``: HR-NAS progressive shrinking of a multi-branch supernet."""

from __future__ import annotations

import argparse

from edgenas.cli.common import add_command
from edgenas.errors import UserError

DESCRIPTION = """\
Search a network by HR-NAS resource-aware progressive shrinking (Ding et al., CVPR
2021): train a multi-branch supernet of searching blocks (depthwise 3x3 / 5x5 / 7x7
branches plus a lightweight transformer) with the loss

    task loss + lambda * sum_i Delta_i |alpha_i|

where alpha_i is the importance (BN scale) of a depthwise channel or transformer token
and Delta_i its cost: MACs (--cost flops) or its latency slope on --device measured
into the device's lookup table (--cost latency). Every --shrink-every epochs the units
with |alpha| < --epsilon are removed physically (weights and Adam state sliced, BN
statistics recalibrated). Channel counts are rounded up to multiples of --align
(default 8): CPU runtimes use 8-channel blocked layouts, and odd widths measured up to
2x slower than wider aligned ones. The final network is extracted as a static model, exported
to verified ONNX and profiled on --device.

The paper's epsilon (1e-3) prunes almost nothing in a few CPU minutes; the defaults
(lambda 2e-3, epsilon 2e-2, importance learning rate x50) are chosen so that the
built-in demo visibly removes units in a few minutes. Tune them for real runs.

Writes runs/NAME/: run.sqlite (run store: config, one shrink_step event per step, the
extracted candidate), model.onnx, extracted.pt, report.md and its figures."""

EPILOG = """\
examples:
  edgenas shrink --task seg                                  built-in scenes, ~2 minutes
  edgenas shrink --task seg --cost latency --device cpu --epochs 4
  edgenas shrink --task seg --data ../shared/data/camvid --input 96x128 --epochs 6 \\
      --lambda 1.4e-4 --epsilon 1e-3 --name camvid-flops
  edgenas shrink --task seg --device pixel3a --cost latency   needs the phone (see devices)
  edgenas shrink --task depth --seconds 120 --widths 8,16,24,32 --tokens 4"""


def register(subparsers) -> None:
    from edgenas.cli.profile_cmd import add_device_arguments

    parser = add_command(
        subparsers,
        "shrink",
        help="HR-NAS: shrink a multi-branch supernet to a device's budget",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    parser.add_argument("--task", required=True, help="depth, seg, sr or cls")
    parser.add_argument("--data", help="dataset folder (default: built-in demo data)")
    parser.add_argument("--val-data", help="separate validation folder")
    parser.add_argument("--format", dest="fmt", help="dataset layout (default: detected)")
    parser.add_argument("--input", help="input HxW (default 64x80; sr: LR patch, 48x48)")
    parser.add_argument("--scale", type=int, default=2, help="super-resolution factor")
    parser.add_argument(
        "--lambda", dest="lam", type=float, default=2e-3, help="weight of the resource term"
    )
    parser.add_argument(
        "--epsilon", type=float, default=2e-2, help="remove units with |alpha| below this"
    )
    parser.add_argument(
        "--align",
        type=int,
        default=8,
        help="keep channels per kernel in multiples of this (1: fully fine-grained)",
    )
    parser.add_argument("--cost", choices=("flops", "latency"), default="flops", help="Delta_i")
    add_device_arguments(parser)
    parser.add_argument(
        "--threads", type=int, help="torch threads (default 1: many small kernels scale badly)"
    )
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=int, help="train for N epochs (default 5)")
    budget.add_argument("--seconds", type=float, help="train for S seconds")
    parser.add_argument("--shrink-every", type=int, default=1, help="epochs between shrinks")
    parser.add_argument("--warmup", type=float, default=1.0, help="lambda warm-up (epochs)")
    parser.add_argument(
        "--alpha-lr-mult", type=float, default=50.0, help="learning-rate factor of the alphas"
    )
    parser.add_argument("--widths", default="16,24,32,48", help="branch widths")
    parser.add_argument("--branches", default="1,2,3,4,4", help="branches per parallel module")
    parser.add_argument("--depth", type=int, default=1, help="blocks per branch and module")
    parser.add_argument("--expansion", type=float, default=2.0, help="expansion ratio r")
    parser.add_argument("--tokens", type=int, default=8, help="tokens per transformer (0: none)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per step")
    parser.add_argument("--lr", type=float, default=7e-4, help="initial learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed")
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes")
    parser.add_argument(
        "--accelerator",
        default="auto",
        help="where the supernet trains: auto (CUDA when present), cpu or cuda[:N]; "
        "latency is still measured on --device",
    )
    parser.add_argument("--name", help="run name (default hrnas-TASK-DATE-TIME)")
    parser.add_argument("--runs-dir", default="runs", help="folder of runs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"{flag} takes comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise UserError(f"{flag} values must be positive, got {text!r}")
    return values


def _check(args: argparse.Namespace):
    """Every user error, before any work starts; returns (task, config, device entry)."""
    from edgenas.devices.backends import check_availability
    from edgenas.devices.catalog import load_catalog
    from edgenas.hrnas.supernet import SupernetConfig
    from edgenas.tasks import get_task

    task = get_task(args.task)
    for name in ("epochs", "batch_size", "shrink_every", "threads", "align"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.seconds is not None and args.seconds <= 0:
        raise UserError(f"--seconds must be positive, got {args.seconds}")
    if args.lam < 0 or args.epsilon < 0:
        raise UserError("--lambda and --epsilon cannot be negative")
    if args.data is not None:
        from pathlib import Path

        if not Path(args.data).is_dir():
            raise UserError(f"--data folder {args.data} does not exist")
    try:
        config = SupernetConfig(
            widths=_ints(args.widths, "--widths"),
            branches=_ints(args.branches, "--branches"),
            depth=args.depth,
            expansion=args.expansion,
            tokens=args.tokens,
        )
    except ValueError as err:
        raise UserError(f"bad supernet: {err}") from None
    entry = load_catalog(args.devices_file).get(args.device)
    options = {"serial": args.serial} if entry.backend == "adb" and args.serial else {}
    availability = check_availability(entry, **options)
    if not availability.usable:
        raise UserError(f"device {entry.name} is not usable: {availability.reason}")
    return task, config, entry


def run(args: argparse.Namespace) -> int:
    from edgenas.hrnas.session import ShrinkSession

    task, config, entry = _check(args)
    session = ShrinkSession.from_args(args, task, config, entry)
    return session.run()
