"""``edgenas shrink``: HR-NAS progressive shrinking of a multi-branch supernet.

The command maps its flags onto :class:`edgenas.hrnas.session.ShrinkSession` (and the
:class:`~edgenas.hrnas.config.ShrinkConfig` / :class:`~edgenas.hrnas.config.SupernetConfig`
inside it); every default shown here is read from those dataclasses.
"""

from __future__ import annotations

import argparse
import dataclasses

from edgenas.cli.common import add_command
from edgenas.errors import UserError
from edgenas.parsing import (
    check_accelerator_name,
    number,
    scale_number,
    scales_text,
    seed_number,
)

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
2x slower than wider aligned ones. The final network is extracted, exported to ONNX
with dynamic height and width (verified on a validation image at two sizes) and
profiled on --device at --deploy-input.

To a budget: --target-latency 5ms (measured on --device) or --target-flops 300M
(MACs), both at --deploy-input, make lambda adaptive: raised while the network, even
after removing what is below epsilon, is far (>25%) above the target, lowered once the
next shrink can reach it, 0 once it is reached. A shrink step removes no more units
than bring the cost to the target, pruning stops there (training continues for the
rest of the budget), and if the budget ends above the target the final step removes
the least important units until it is met. A target the supernet already meets, or
one below its smallest network, is refused before training.

The supernet trains with the recipe of `edgenas train` and of the baselines it is
compared with (--optimizer fast: Adam 3e-3, cosine over the budget, class-weighted
segmentation loss). The paper's epsilon (1e-3) prunes almost nothing in a few CPU
minutes; the defaults (lambda 2e-3, epsilon 2e-2, importance learning rate x12) are
chosen so that the built-in demo visibly removes units in a few minutes. Tune them for
real runs. --optimizer hrnas is the official HR-NAS recipe (AdamW, one-cycle, lr 0.04
per 32 images), --optimizer ldp LDP's Adam 7e-4; --shrink-every 5 is the paper's
interval, 1 the fast setting. The default supernet (--supernet full, 1.83M parameters,
with transformers) is too large for minutes of CPU training: on real data with a
budget of a few CPU minutes, use --supernet small (93K parameters, no transformers).

The run saves its state (shrunk supernet, weights, Adam state, progress) at every
epoch end and shrink step and on Ctrl-C; `--resume runs/NAME` continues it to the end
of its budget with its stored settings.

Writes runs/NAME/: run.sqlite (run store: config, one shrink_step event per step, the
extracted candidate, the summary), best.pt (the extracted network as an edgenas
checkpoint: `edgenas export --run`, `eval --checkpoint`, `profile`), best.onnx (any
input size), best.latency.json (latency at --deploy-input on --device),
best.static.onnx and best.static.latency.json (the same network at --deploy-input only,
often faster where the input size is fixed; the log says whether it measured faster),
report.md and its figures; shrink_state.pt while the run is unfinished."""

EPILOG = """\
examples:
  edgenas shrink --task seg                                  built-in scenes, ~3 minutes
  edgenas shrink --task seg --cost latency --device cpu --epochs 4
  edgenas shrink --task seg --target-latency 5ms --device cpu   adaptive lambda, stops at 5 ms
  edgenas shrink --task seg --target-flops 12M --shrink-every 1  MACs at --deploy-input
  edgenas shrink --task seg --optimizer hrnas --epsilon 1e-3       the paper's recipe
  edgenas shrink --task seg --data ../shared/data/camvid --input 180x240 --seconds 300 \\
      --supernet small                                        a supernet 5 CPU minutes can train
  edgenas shrink --task seg --data ../shared/data/camvid --input 96x128 --epochs 6 \\
      --lambda 1.4e-4 --epsilon 1e-3 --deploy-input 360x480 --name camvid-flops
  edgenas shrink --resume runs/camvid-flops                  after Ctrl-C or a crash
  edgenas shrink --task seg --device pixel3a --cost latency   needs the phone (see devices)
  edgenas shrink --task depth --seconds 120 --widths 8,16,24,32 --tokens 4"""

# Flags that --resume may come with (they do not change the run's results' meaning).
_RESUME_FLAGS = {"resume", "quiet", "torch_threads"}


def _field_default(cls, name: str):
    """The default of dataclass field ``name`` of ``cls`` (None for a required field)."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def defaults() -> dict:
    """``{dest: default}`` of every setting flag, read from the dataclasses."""
    from edgenas.hrnas.config import ShrinkConfig, SupernetConfig
    from edgenas.hrnas.session import RUNS_DIR, ShrinkSession

    shrink, net = ShrinkConfig(), SupernetConfig()
    session = {
        f.name: _field_default(ShrinkSession, f.name) for f in dataclasses.fields(ShrinkSession)
    }
    return {
        "task": None,
        "data": session["data"],
        "val_data": session["val_data"],
        "fmt": session["fmt"],
        "input": None,
        "deploy_input": None,
        "scale": None,  # sr: the session's (2); given for another task: refused
        "lam": shrink.lam,
        "epsilon": shrink.epsilon,
        "align": shrink.align,
        "cost": session["cost"],
        "latency_model": session["latency_model"],
        "device": session["device"],
        "devices_file": session["devices_file"],
        "serial": None,
        "threads": session["threads"],
        "torch_threads": session["torch_threads"],
        "baselines": None,
        "epochs": None,
        "seconds": None,
        "shrink_every": shrink.shrink_every,
        "optimizer": shrink.optimizer,
        "target_latency": None,
        "target_flops": None,
        "warmup": shrink.warmup_epochs,
        "alpha_lr_mult": None,  # per optimiser
        "supernet": "full",
        "widths": None,  # None: the --supernet preset's (see supernet_config)
        "branches": None,
        "depth": net.depth,
        "expansion": None,
        "tokens": None,
        "batch_size": shrink.batch_size,
        "lr": None,  # per optimiser
        "seed": shrink.seed,
        "workers": shrink.workers,
        "accelerator": shrink.accelerator,
        "train_clock": shrink.clock,
        "name": None,
        "runs_dir": RUNS_DIR,
        "resume": None,
        "quiet": session["quiet"],
    }


def register(subparsers) -> None:
    from edgenas.cli.profile_cmd import add_device_arguments
    from edgenas.hrnas.config import LATENCY_MODELS, SUPERNET_PRESETS, ShrinkConfig
    from edgenas.hrnas.session import COSTS, DEFAULT_INPUT, SR_DEFAULT_INPUT, ShrinkSession

    d = defaults()
    parser = add_command(
        subparsers,
        "shrink",
        help="HR-NAS: shrink a multi-branch supernet to a device's budget",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    parser.add_argument("--task", help="depth, seg, sr or cls (required unless --resume)")
    parser.add_argument("--data", help="dataset folder (default: built-in demo data)")
    parser.add_argument("--val-data", help="separate validation folder")
    from edgenas.data.open import FORMAT_NAMES

    parser.add_argument(
        "--format", dest="fmt", choices=FORMAT_NAMES, help="dataset layout (default: detected)"
    )
    size = "x".join(map(str, DEFAULT_INPUT))
    patch = "x".join(map(str, SR_DEFAULT_INPUT))
    parser.add_argument(
        "--input", help=f"training input HxW (default {size}; sr: LR patch, {patch})"
    )
    parser.add_argument(
        "--deploy-input",
        help="HxW at which the final model is verified and its latency measured "
        "(default: --input; sr: the LR size)",
    )
    scales = scales_text()
    parser.add_argument(
        "--scale",
        type=scale_number(),
        default=d["scale"],
        help=f"super-resolution factor ({scales}; default {_field_default(ShrinkSession, 'scale')})",
    )
    parser.add_argument(
        "--lambda",
        dest="lam",
        type=number(float, minimum=0),
        default=d["lam"],
        help="weight of the resource term",
    )
    parser.add_argument(
        "--epsilon",
        type=number(float, minimum=0),
        default=d["epsilon"],
        help="remove units with |alpha| below this",
    )
    parser.add_argument(
        "--align",
        type=number(int, above=0),
        default=d["align"],
        help="keep channels per kernel in multiples of this (1: fully fine-grained)",
    )
    parser.add_argument("--cost", choices=COSTS, default=d["cost"], help="Delta_i")
    parser.add_argument(
        "--latency-model",
        choices=LATENCY_MODELS,
        default=d["latency_model"],
        help="with --cost latency, where each unit's latency slope comes from: measured "
        "(the unit's parts timed on --device, cached in its table) or kernels (the device's "
        "fused-kernel predictor, no timing noise; needs `edgenas devices calibrate DEVICE`)",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--target-latency",
        default=d["target_latency"],
        help="shrink to this latency on --device at --deploy-input, e.g. 5ms; lambda "
        "(--lambda: its start) adapts and pruning stops there",
    )
    target.add_argument(
        "--target-flops",
        default=d["target_flops"],
        help="shrink to this many MACs at --deploy-input, e.g. 300M (as --target-latency)",
    )
    add_device_arguments(parser, default=d["device"])
    parser.add_argument(
        "--threads",
        type=number(int, above=0),
        default=d["threads"],
        help="threads on the latency device (default: the device's)",
    )
    parser.add_argument(
        "--torch-threads",
        type=number(int, above=0),
        default=d["torch_threads"],
        help="torch threads of the training (many small kernels scale badly)",
    )
    from edgenas.baselines import DEFAULT_BASELINES  # light: no torch

    per_task = "; ".join(f"{t} {','.join(n)}" for t, n in DEFAULT_BASELINES.items() if n)
    parser.add_argument(
        "--baselines",
        default=d["baselines"],
        metavar="NAMES|none",
        help="reference models (`edgenas models`) trained for the shrink's training time on "
        f"the same data, measured on --device and compared in the report (default: {per_task}); "
        "each learned one costs that time again; none to skip",
    )
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--epochs",
        type=number(int, above=0),
        help=f"train for N epochs (default {ShrinkConfig.DEFAULT_EPOCHS})",
    )
    budget.add_argument("--seconds", type=number(float, above=0), help="train for S seconds")
    parser.add_argument(
        "--shrink-every",
        type=number(int, above=0),
        default=d["shrink_every"],
        help="epochs between shrinks (the paper's 5; 1: the fast setting for short budgets)",
    )
    from edgenas.hrnas.config import OPTIMIZERS

    parser.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default=d["optimizer"],
        help="fast: the recipe of `edgenas train` and of the baselines (Adam at the task's "
        "rate, 3e-3 for seg, warm-up then cosine over the budget, class-weighted loss for "
        "segmentation), "
        "importances at x12; ldp: Adam, lr 7e-4, importances at x50; hrnas: the official "
        "HR-NAS recipe (AdamW eps 1e-3, one-cycle schedule, lr 0.04 x batch/32, L2 1e-5 on "
        "weights, importances at x1)",
    )
    parser.add_argument(
        "--warmup",
        type=number(float, minimum=0),
        default=d["warmup"],
        help="lambda warm-up (epochs)",
    )
    parser.add_argument(
        "--alpha-lr-mult",
        type=number(float, above=0),
        default=d["alpha_lr_mult"],
        help="learning-rate factor of the alphas (default: 12 with fast, 50 with ldp, 1 with "
        "hrnas)",
    )
    full, small = _preset_text("full"), _preset_text("small")
    parser.add_argument(
        "--supernet",
        choices=tuple(SUPERNET_PRESETS),
        default=d["supernet"],
        help=f"supernet shape: full ({full}; 1.83M parameters) or small ({small}; 93K "
        "parameters, what a few minutes of CPU training can train: on CamVid it was faster "
        "than a U-Net trained as long and more accurate in 14 seeds of 17). --widths, "
        "--branches, --expansion and --tokens override it",
    )
    preset = "default: the --supernet preset's"
    parser.add_argument("--widths", default=d["widths"], help=f"branch widths ({preset})")
    parser.add_argument(
        "--branches", default=d["branches"], help=f"branches per parallel module ({preset})"
    )
    parser.add_argument(
        "--depth",
        type=number(int, above=0),
        default=d["depth"],
        help="blocks per branch and module",
    )
    parser.add_argument(
        "--expansion",
        type=number(float, above=0),
        default=d["expansion"],
        help=f"expansion ratio r ({preset})",
    )
    parser.add_argument(
        "--tokens",
        type=number(int, minimum=0),
        default=d["tokens"],
        help=f"tokens per transformer, 0: none ({preset})",
    )
    parser.add_argument(
        "--batch-size", type=number(int, above=0), default=d["batch_size"], help="images per step"
    )
    parser.add_argument(
        "--lr",
        type=number(float, above=0),
        default=d["lr"],
        help="peak (fast, hrnas) or initial (ldp) learning rate (default: the task's rate "
        "of `edgenas train` with fast, 7e-4 with ldp, 0.04 x batch-size/32 with hrnas)",
    )
    parser.add_argument("--seed", type=seed_number(), default=d["seed"], help="seed")
    parser.add_argument(
        "--workers",
        type=number(int, minimum=0),
        default=d["workers"],
        help="data-loading processes",
    )
    parser.add_argument(
        "--accelerator",
        default=d["accelerator"],
        help="where the supernet trains: auto (CUDA when present), cpu or cuda[:N]; "
        "latency is still measured on --device",
    )
    parser.add_argument(
        "--train-clock",
        choices=("cpu", "wall"),
        default=d["train_clock"],
        help="what --seconds counts, for the shrink and for the baselines trained for its "
        "seconds: cpu counts the CPU time the training gets, so other processes' load "
        "takes no steps from either; wall counts wall time (cpu falls back to wall with "
        "--torch-threads above 1 or on a GPU)",
    )
    parser.add_argument("--name", help="run name (default hrnas-TASK-DATE-TIME)")
    parser.add_argument("--runs-dir", default=d["runs_dir"], help="folder of runs")
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted or failed shrink run with its stored settings "
        "(only --quiet and --torch-threads may come with it)",
    )
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


def _flag(dest: str) -> str:
    return {"lam": "--lambda", "fmt": "--format", "warmup": "--warmup"}.get(
        dest, "--" + dest.replace("_", "-")
    )


def _check(args: argparse.Namespace):
    """Every user error, before any work starts (and before torch loads); returns (task
    name, config, device entry). Numbers are range-checked by the parser."""
    from edgenas.data.open import check_folder
    from edgenas.devices.backends import check_availability
    from edgenas.devices.catalog import load_catalog
    from edgenas.parsing import parse_task

    if args.task is None:
        raise UserError("--task is required (or --resume RUN_DIR to continue a run)")
    task = parse_task(args.task)
    if args.scale is not None and task != "sr":
        raise UserError("--scale applies to --task sr only")
    check_accelerator_name(args.accelerator)
    _check_sizes(args, task)
    _check_run_folder(args)
    _targets(args)  # a malformed target fails before the data are read
    for flag, folder in (("--data", args.data), ("--val-data", args.val_data)):
        if folder is not None:
            check_folder(flag, folder)  # from edgenas.data.open: missing, a file, unreadable
    config = supernet_config(args)
    entry = load_catalog(args.devices_file).get(args.device)
    options = {"serial": args.serial} if entry.backend == "adb" and args.serial else {}
    availability = check_availability(entry, **options)
    if not availability.usable:
        raise UserError(f"device {entry.name} is not usable: {availability.reason}")
    return task, config, entry


def _preset_text(name: str) -> str:
    """The shape of preset ``name`` as the flags that give it, for --help."""
    from edgenas.hrnas.config import SUPERNET_PRESETS, SupernetConfig

    config = SupernetConfig(**SUPERNET_PRESETS[name])
    return (
        f"--widths {','.join(map(str, config.widths))} "
        f"--branches {','.join(map(str, config.branches))} "
        f"--expansion {config.expansion:g} --tokens {config.tokens}"
    )


def supernet_config(args: argparse.Namespace):
    """The :class:`SupernetConfig` of ``--supernet``, with each shape flag given
    replacing the preset's value."""
    from edgenas.hrnas.config import SUPERNET_PRESETS, SupernetConfig

    fields = dict(SUPERNET_PRESETS[args.supernet])
    if args.widths is not None:
        fields["widths"] = _ints(args.widths, "--widths")
    if args.branches is not None:
        fields["branches"] = _ints(args.branches, "--branches")
    for name in ("expansion", "tokens"):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    try:
        return SupernetConfig(depth=args.depth, **fields)
    except ValueError as err:
        hint = ""
        if SUPERNET_PRESETS[args.supernet]:
            hint = (
                f" (--supernet {args.supernet} is {_preset_text(args.supernet)}: give the "
                "other shape flags to match, or another --supernet)"
            )
        raise UserError(f"bad supernet: {err}{hint}") from None


def _check_sizes(args: argparse.Namespace, task: str) -> None:
    """--input and --deploy-input: HxW, square for sr (its LR patch), and small enough
    for this machine's memory."""
    from edgenas.parsing import check_input_fits, parse_shape

    if args.input:
        h, w = parse_shape(args.input, ndim=2)
        if task == "sr" and h != w:
            raise UserError(f"--input for sr is a square LR patch, e.g. 48x48 (got {h}x{w})")
        check_input_fits((h, w), "--input")
    if args.deploy_input:
        check_input_fits(parse_shape(args.deploy_input, ndim=2), "--deploy-input")


def _check_run_folder(args: argparse.Namespace) -> None:
    """--runs-dir must be a folder (or not exist yet) and --name a plain folder name:
    a name with a slash or '..' would put the run outside --runs-dir, where neither
    `edgenas monitor` nor a default --resume looks."""
    from pathlib import Path

    runs_dir = Path(args.runs_dir)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise UserError(f"--runs-dir {runs_dir} is a file, not a folder; name a folder for runs")
    name = args.name
    if name is not None and (
        not name.strip() or name in (".", "..") or "/" in name or "\\" in name
    ):
        raise UserError(
            f"--name {name!r} must be a plain folder name (no '/', not '.' or '..'); the run "
            "goes in --runs-dir"
        )


def _targets(args: argparse.Namespace) -> dict:
    """``{"target_flops": MACs}`` / ``{"target_latency_ms": ms}`` from the flags."""
    from edgenas.search.config import parse_count, parse_milliseconds

    try:
        if args.target_latency is not None:
            return {"target_latency_ms": parse_milliseconds(args.target_latency)}
        if args.target_flops is not None:
            return {"target_flops": parse_count(args.target_flops)}
    except ValueError as err:
        flag = "--target-latency" if args.target_latency is not None else "--target-flops"
        raise UserError(f"{flag}: {err}") from None
    return {}


def session_from_args(args: argparse.Namespace, task: str, config, entry):
    """The :class:`ShrinkSession` the flags describe (checked by :func:`_check`)."""
    from pathlib import Path

    from edgenas.baselines import parse_baselines
    from edgenas.hrnas.config import ShrinkConfig
    from edgenas.hrnas.session import ShrinkSession, default_run_name
    from edgenas.parsing import parse_shape

    input_hw = parse_shape(args.input, ndim=2) if args.input else None  # None: the task's
    deploy_hw = parse_shape(args.deploy_input, ndim=2) if args.deploy_input else None
    run_dir = Path(args.runs_dir) / (args.name or default_run_name(task))
    if (run_dir / "run.sqlite").exists():
        raise UserError(
            f"run {run_dir} already exists; continue it with `edgenas shrink --resume "
            f"{run_dir}` or choose another --name"
        )
    try:
        shrink = ShrinkConfig(
            lam=args.lam,
            epsilon=args.epsilon,
            align=args.align,
            epochs=args.epochs,
            seconds=args.seconds,
            shrink_every=args.shrink_every,
            warmup_epochs=args.warmup,
            alpha_lr_mult=args.alpha_lr_mult,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            workers=args.workers,
            accelerator=args.accelerator,
            optimizer=args.optimizer,
            clock=args.train_clock,
            **_targets(args),
        )
    except ValueError as err:
        raise UserError(str(err)) from None
    return ShrinkSession(
        task=task,
        config=config,
        device=entry,
        cost=args.cost,
        latency_model=args.latency_model,
        shrink=shrink,
        data=args.data,
        val_data=args.val_data,
        fmt=args.fmt,
        input_hw=input_hw,
        deploy_hw=deploy_hw,
        scale=args.scale if args.scale is not None else _field_default(ShrinkSession, "scale"),
        threads=args.threads,
        torch_threads=args.torch_threads,
        baselines=parse_baselines(args.baselines),
        devices_file=args.devices_file,
        backend_options={"serial": args.serial} if entry.backend == "adb" and args.serial else {},
        run_dir=run_dir,
        quiet=args.quiet,
    )


def _resumed_session(args: argparse.Namespace):
    """The session of ``--resume RUN_DIR``; other settings are refused, not ignored."""
    from edgenas.hrnas.session import ShrinkSession

    given = [
        _flag(dest)
        for dest, default in defaults().items()
        if dest not in _RESUME_FLAGS and getattr(args, dest, default) != default
    ]
    if given:
        raise UserError(
            f"--resume continues {args.resume} with its stored settings; drop {', '.join(given)}"
        )
    from edgenas.devices.backends import check_availability

    session = ShrinkSession.from_run(
        args.resume, quiet=args.quiet, torch_threads=args.torch_threads
    )
    availability = check_availability(session.device, **session.backend_options)
    if not availability.usable:
        raise UserError(f"device {session.device.name} is not usable: {availability.reason}")
    return session


def run(args: argparse.Namespace) -> int:
    if args.resume:
        return _resumed_session(args).run(resume=True)
    task, config, entry = _check(args)
    return session_from_args(args, task, config, entry).run()
