"""``edgenas train``: train a genotype on a task with the LDP recipe."""

from __future__ import annotations

import argparse
import shlex
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from edgenas.cli.common import add_command, check_writable_folder, parse_genotype
from edgenas.cli.profile_cmd import add_device_arguments, backend_options
from edgenas.errors import Interrupted, UserError
from edgenas.parsing import (
    check_accelerator_name,
    number,
    scale_number,
    scales_text,
    seed_number,
)

DESCRIPTION = """\
Train a network on monocular depth, semantic segmentation, super-resolution or
classification, for a budget in seconds (default 120) or epochs. The network is a
genotype of the LDP space (--genotype, default: the task's default genotype) or a
reference model (--model espcn, fsrcnn, unet, lraspp, fastdepth; list: `edgenas models`).

The recipe (--recipe fast, the default) is each task's measured set of defaults: Adam
with a learning rate that warms up and then decays to zero over the budget (cosine), so
a 60 s run and a 6 h run both end on a decayed rate; sr: L1 loss on batches of 16
random 24x24 LR patches with flips; seg: class-balanced cross-entropy when the classes
are imbalanced; depth/seg/cls: rotation, flip, colour jitter and window dropping.
--recipe ldp is the LDP paper's (Adam 7e-4, step decay, batch 256). Any option given
(--lr, --batch-size, --schedule, ...) overrides the recipe. The training set is decoded
once into memory when it fits; batches are cropped and augmented as tensor operations,
on the GPU with --accelerator cuda (auto picks it when present; bf16 autocast).

--data takes a folder in a standard layout (detected, or named with --format):
  depth         NYU rgb/ + depth/ (uint16 mm PNG, .npy/.h5 metres), KITTI image/ +
                groundtruth_depth/ (uint16 / 256)
  seg           CamVid train/ trainannot/ val/ valannot/, Cityscapes leftImg8bit/ gtFine/
  sr            a folder of HR images (T91, DIV2K_train_HR, ...) or DIV2K *_HR + *_LR_bicubic/X2
  cls           one sub-folder of images per class
Without --data the built-in demo data are used (procedural scenes for depth/seg/cls,
scikit-image's bundled photographs for sr). Flat folders hold out every 10th file
for validation unless --val-data is given (then it is used whole). Validation runs at
the end, on full-resolution targets (inputs resized to the training size).

Writes OUT/checkpoint.pt (at the end, on Ctrl-C or SIGTERM and about once a minute,
atomically; the interrupted command prints the one that continues it),
OUT/metrics.json, OUT/samples.png (sample predictions) and, like search and shrink,
OUT/model.onnx (takes any image size; verified against PyTorch on a validation image)
with OUT/model.latency.json, its latency on --device at --deploy-input, and
OUT/model.static.onnx with OUT/model.static.latency.json (the same network at
--deploy-input only, often faster where the input size is fixed) (--no-export skips
these four)."""

EPILOG = """\
examples:
  edgenas train --task seg --seconds 60                 demo scenes, default genotype
  edgenas train --task sr --data ../shared/data/sr/T91 --val-data ../shared/data/sr/Set5 --seconds 300
  edgenas train --task sr --model espcn --data ../shared/data/sr/T91 --val-data ../shared/data/sr/Set5
  edgenas train --task seg --data ../shared/data/camvid --input 180x240 --seconds 300
  edgenas train --task depth --data ../shared/data/depth --model fastdepth --epochs 20 -o runs/depth
  edgenas train --task seg --accelerator cuda --recipe ldp --epochs 100 --data path/to/Cityscapes
  edgenas train --task depth --resume runs/depth/checkpoint.pt      continue an interrupted run"""


# Super-resolution trains on small LR patches; its latency counts on a whole LR image,
# the size the search measures SR candidates at.
DEPLOY_SR = (120, 160)


def register(subparsers) -> None:
    scales = scales_text()
    parser = add_command(
        subparsers,
        "train",
        help="train a genotype or a reference model on depth, segmentation, SR or classification",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    parser.add_argument("--task", required=True, help="depth, seg, sr or cls")
    parser.add_argument("--data", help="dataset folder (default: built-in demo data)")
    parser.add_argument("--val-data", help="separate validation folder (e.g. Set5 for sr)")
    from edgenas.data.open import FORMAT_NAMES

    parser.add_argument(
        "--format", dest="fmt", choices=FORMAT_NAMES, help="dataset layout (default: detected)"
    )
    network = parser.add_mutually_exclusive_group()
    network.add_argument("--genotype", help="genotype string (default: the task's default)")
    network.add_argument("--model", help="reference model instead (see `edgenas models`)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=number(float, above=0), help="train for N epochs")
    budget.add_argument(
        "--seconds",
        type=number(float, above=0),
        help="train for S seconds (default 120 unless --epochs)",
    )
    parser.add_argument(
        "--input",
        help="training input HxW (default 128x160; for sr the square LR patch, default 24x24)",
    )
    parser.add_argument(
        "--scale",
        type=scale_number(),
        default=None,
        help=f"super-resolution factor ({scales}; default 2)",
    )
    parser.add_argument(
        "--recipe", choices=("fast", "ldp"), default="fast", help="training recipe (see above)"
    )
    parser.add_argument(
        "--batch-size", type=number(int, above=0), help="images per step (default: the recipe's)"
    )
    parser.add_argument(
        "--lr", type=number(float, above=0), help="peak learning rate (default: the recipe's)"
    )
    parser.add_argument(
        "--schedule",
        choices=("cosine", "ldp", "constant"),
        help="learning-rate schedule over the budget (default: the recipe's)",
    )
    # Options that default to None leave the training config's own value (the recipe's,
    # else TrainConfig's): the help says what that is; the CLI keeps no second copy.
    parser.add_argument(
        "--class-weights",
        choices=("auto", "on", "off"),
        help="seg: median-frequency class balancing (default auto: when the classes are "
        "imbalanced)",
    )
    parser.add_argument("--no-augment", action="store_true", help="turn augmentation off")
    parser.add_argument("--eval-every-epoch", action="store_true", help="validate every epoch")
    parser.add_argument(
        "--seed", type=seed_number(), help="seed of init, order, augmentation (default 0)"
    )
    parser.add_argument(
        "--accelerator",
        help="auto (CUDA when present), cpu or cuda[:N] (default auto)",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        help="default auto: bf16 autocast on GPUs that have it, fp32 on the CPU",
    )
    parser.add_argument(
        "--channels-last",
        choices=("on", "off"),
        help="NHWC activations (default on: measured faster on CPUs and GPUs for these networks)",
    )
    parser.add_argument(
        "--workers", type=number(int, minimum=0), help="data-loading worker processes (default 0)"
    )
    parser.add_argument(
        "--torch-threads", type=number(int, above=0), help="torch threads (default: min(2, cores))"
    )
    parser.add_argument(
        "--resume",
        help="continue from this checkpoint (towards its budget); the outputs go beside it "
        "unless -o says otherwise",
    )
    parser.add_argument(
        "-o",
        "--out",
        help="output folder (default runs/<task>; runs/<task>-2, -3, ... when an earlier "
        "training holds it)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start over in an -o folder that holds an earlier training's checkpoint.pt "
        "(without it such a folder is refused, so that no training is lost by mistake)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    deploy = parser.add_argument_group("the exported model (OUT/model.onnx) and its latency")
    deploy.add_argument(
        "--deploy-input",
        metavar="HxW",
        help="size its latency is measured at (default: the training --input; sr: a "
        f"{DEPLOY_SR[0]}x{DEPLOY_SR[1]} LR image)",
    )
    add_device_arguments(deploy)
    deploy.add_argument(
        "--threads",
        type=number(int, above=0),
        help="threads on the latency device (default: the device's)",
    )
    deploy.add_argument(
        "--no-export", action="store_true", help="write no model.onnx and measure nothing"
    )
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class _Plan:
    """What the command line alone decides, checked before torch loads."""

    task: str  # canonical task name
    input_hw: tuple[int, int] | None  # --input (None: the recipe's or the checkpoint's)
    deploy_hw: tuple[int, int] | None  # --deploy-input
    out: Path
    deploy_entry: object | None  # the latency device's catalog entry (None: --no-export)


def run(args: argparse.Namespace) -> int:
    plan = _check(args)
    created = not plan.out.exists()
    try:
        return _train(args, plan)
    except (UserError, OSError):
        # A run refused on the way (a full disk at the first write) leaves no empty
        # folder behind; a folder with anything in it is kept.
        if created and plan.out.is_dir() and not any(plan.out.iterdir()):
            plan.out.rmdir()
        raise


def _check(args: argparse.Namespace) -> _Plan:
    """Every error the command line alone shows, before torch loads or a file is
    written: task, scale, sizes, accelerator, the output folder, the resume file, the
    data folders and the latency device. Numbers are range-checked by the parser."""
    from edgenas.data.open import check_folder
    from edgenas.parsing import check_input_fits, parse_task
    from edgenas.tasks.runner import parse_size

    task = parse_task(args.task)
    if args.scale is not None and task != "sr":
        raise UserError("--scale applies to --task sr only")
    if args.resume and (args.genotype or args.model):
        raise UserError("--resume continues the checkpoint's network; drop --genotype/--model")
    check_accelerator_name(args.accelerator)
    if args.genotype is not None:
        parse_genotype(args.genotype)  # a bad string is one line before torch loads
    input_hw = parse_size(args.input, (0, 0)) if args.input else None
    if input_hw is not None:
        h, w = input_hw
        if task == "sr" and h != w:
            raise UserError(f"--input for sr is a square LR patch, e.g. 24x24 (got {h}x{w})")
        # A batch size given counts (activations grow with it); the recipe's is not
        # known before torch loads, and the check only has to catch impossible sizes.
        check_input_fits((args.batch_size, 3, h, w) if args.batch_size else (h, w), "--input")
    deploy_hw = parse_size(args.deploy_input, (0, 0)) if args.deploy_input else None
    if deploy_hw is not None:
        check_input_fits(deploy_hw, "--deploy-input")
    if args.no_export:
        given = [
            flag
            for flag, value in (("--deploy-input", args.deploy_input), ("--threads", args.threads))
            if value is not None
        ]
        if given:
            raise UserError(
                f"{', '.join(given)} only apply to the exported model, and --no-export "
                "exports none; drop one or the other"
            )
    if args.resume:
        from edgenas.checkpoint import check_checkpoint_file

        check_checkpoint_file(args.resume, "--resume checkpoint")
    for flag, folder in (("--data", args.data), ("--val-data", args.val_data)):
        if folder is not None:
            check_folder(flag, folder)
    deploy_entry = None if args.no_export else _usable_device(args)
    out = _output_folder(args, task)
    _check_output_folder(out, args)
    return _Plan(task, input_hw, deploy_hw, out, deploy_entry)


def _output_folder(args: argparse.Namespace, task: str) -> Path:
    """-o, else the resumed checkpoint's folder (a resumed run writes where it was
    trained), else runs/<task>, or runs/<task>-2, -3, ... when an earlier training holds
    it: without -o a second training never overwrites nor stops on the first."""
    if args.out:
        return Path(args.out)
    if args.resume:
        return Path(args.resume).parent
    base = Path("runs") / task
    candidate, number = base, 1
    while (candidate / "checkpoint.pt").exists() and not args.overwrite:
        number += 1
        candidate = base.with_name(f"{task}-{number}")
    return candidate


def _check_output_folder(out: Path, args: argparse.Namespace) -> None:
    """Refuse an output folder that cannot be written, or one that holds another
    training's checkpoint (it would be overwritten) unless --overwrite or --resume of
    that very checkpoint."""
    option = f"-o {out}" if args.out else f"the output folder {out}"
    if out.exists() and not out.is_dir():
        raise UserError(
            f"{option} is a file; -o names the folder the outputs go in (checkpoint.pt, "
            "metrics.json, samples.png, model.onnx): choose a folder"
        )
    check_writable_folder(out, option)
    checkpoint = out / "checkpoint.pt"
    if not checkpoint.exists() or args.overwrite:
        return
    if args.resume and Path(args.resume).resolve() == checkpoint.resolve():
        return
    raise UserError(
        f"{checkpoint} holds an earlier training; continue it with `edgenas train --task "
        f"{args.task} --resume {checkpoint}`, start over with --overwrite, or choose another -o"
    )


def _train(args: argparse.Namespace, plan: _Plan) -> int:
    """Load the checkpoint and data, build the network, train, write the outputs."""
    import torch

    from edgenas.accelerator import resolve_accelerator
    from edgenas.checkpoint import (
        CheckpointWriteError,
        build_from_spec,
        check_room,
        checkpoint_bytes,
        describe_spec,
        load_checkpoint,
        load_weights,
        model_spec,
    )
    from edgenas.data.open import open_train_val
    from edgenas.models.complexity import count_macs, count_params
    from edgenas.tasks import get_task
    from edgenas.tasks.defaults import DEFAULT_SECONDS, default_genotype
    from edgenas.tasks.recipes import recipe_config, recipe_input
    from edgenas.tasks.runner import format_metrics, set_threads, write_json
    from edgenas.training import Budget, TrainConfig, train
    from edgenas.visualize import sample_predictions

    task = get_task(plan.task)
    scale = args.scale if args.scale is not None else 2
    set_threads(args.torch_threads)
    if args.accelerator is not None or args.precision is not None:
        resolve_accelerator(args.accelerator or "auto", args.precision or "auto")  # a GPU?
    deploy_entry = plan.deploy_entry

    resume = load_checkpoint(args.resume) if args.resume else None
    stored_config = (resume or {}).get("config") or {}
    # A resumed run keeps its own seed (batches are indexed by step: the same seed gives
    # the same remaining batches) unless --seed says otherwise.
    seed = args.seed if args.seed is not None else stored_config.get("seed", TrainConfig.seed)
    spec = None
    if resume is not None:
        if "optimizer" not in resume:
            raise UserError(
                f"{args.resume} holds trained weights only (a search's or shrink's final "
                "model), not a training state to resume; --resume takes the checkpoint.pt "
                "of an `edgenas train` run"
            )
        spec = resume.get("model_spec")
        if not isinstance(spec, dict) or "task" not in spec:
            raise UserError(f"--resume checkpoint {args.resume} names no network")
        if spec["task"] != task.name:
            raise UserError(
                f"--resume checkpoint {args.resume} is for task {spec['task']}, not {task.name}"
            )
        if task.name == "sr":
            trained = spec.get("options", {}).get("scale", scale)
            if args.scale is not None and args.scale != trained:
                raise UserError(
                    f"--resume checkpoint was trained for x{trained}, not x{args.scale}"
                )
            scale = trained
        # The network and its weights are checked before any data are decoded.
        try:
            model = build_from_spec(spec)
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(
                f"cannot rebuild the network of --resume checkpoint {args.resume}: {err}"
            ) from None
        source = f"--resume checkpoint {args.resume} ({describe_spec(spec)})"
        load_weights(model, resume["model"], source)

    default_h, _ = recipe_input(task.name)
    saved = (resume or {}).get("extra", {}).get("input")
    if task.name == "sr":
        h = plan.input_hw[0] if plan.input_hw else (saved[0] if saved else default_h)
        size, patch = None, h
    else:
        size = plan.input_hw or (tuple(saved) if saved else recipe_input(task.name))
        patch = 48
    # Validation on full-resolution targets; inputs are resized to the training size.
    train_data, val_data = open_train_val(
        task.name, args.data, args.val_data, fmt=args.fmt, size=size, val_size=None,
        scale=scale, patch=patch, seed=seed,
    )  # fmt: skip

    torch.manual_seed(seed)
    info = train_data.info
    if spec is None:  # (a resumed network was built and loaded above)
        if args.model:
            model = _reference_model(args.model, task, info)
        else:
            genotype = parse_genotype(
                args.genotype if args.genotype is not None else default_genotype(task.name)
            )
            try:
                model = task.build_model(genotype, info)
            except ValueError as err:
                raise UserError(str(err)) from None
    if task.name in ("segmentation", "classification"):
        classes = model.options.get("num_classes")
        if classes is not None and classes != info.num_classes:
            raise UserError(
                f"the checkpoint predicts {classes} classes but {info.root} has {info.num_classes}"
            )
    checkpoint_path = plan.out / "checkpoint.pt"
    # A full disk is one line now, not after the whole budget was trained.
    check_room(checkpoint_path, checkpoint_bytes(model), "-o")

    seconds = args.seconds
    stored = (resume or {}).get("budget")
    if args.epochs is None and seconds is None:
        budget = Budget(**stored) if stored else Budget(seconds=DEFAULT_SECONDS)
    else:
        budget = Budget(epochs=args.epochs, seconds=seconds)
    try:
        given = {
            "batch_size": args.batch_size,
            "lr": args.lr,
            "schedule": args.schedule,
            "augment": False if args.no_augment else None,
            "eval_every_epoch": True if args.eval_every_epoch else None,
        }
        flags = {
            **{k: v for k, v in given.items() if v is not None},
            "seed": seed,
            "workers": args.workers,
            "accelerator": args.accelerator,
            "precision": args.precision,
            "channels_last": {"on": True, "off": False, None: None}[args.channels_last],
        }
        if stored_config:
            # Resume with the run's own settings; flags given now override them.
            names = {f.name for f in fields(TrainConfig)}
            kept = {k: v for k, v in stored_config.items() if k in names}
            kept["betas"] = tuple(kept.get("betas", TrainConfig.betas))
            config = replace(
                TrainConfig(**kept), **{k: v for k, v in flags.items() if v is not None}
            )
        else:
            preferred = _reference_recipe(args.model or (spec or {}).get("model"), args.recipe)
            config = recipe_config(task.name, args.recipe, **{**preferred, **flags})
        if args.class_weights is not None:  # "auto" is None in the config
            weights = {"auto": None, "on": True, "off": False}[args.class_weights]
            config = replace(config, class_weights=weights)
    except (TypeError, ValueError) as err:
        raise UserError(str(err)) from None

    out = plan.out
    in_shape = (1, 3, patch, patch) if task.name == "sr" else (1, 3, *size)
    params = count_params(model)
    macs = count_macs(model, in_shape)
    spec = model_spec(model)
    print(
        f"task {task.name}  data {info.root} ({info.format}, {len(train_data)} train / "
        f"{len(val_data)} val)  input {in_shape[2]}x{in_shape[3]}"
    )
    print(describe_spec(spec) if spec else type(model).__name__)
    print(
        f"params {params:,}  MACs {macs / 1e6:.1f}M at {in_shape[2]}x{in_shape[3]}  "
        f"recipe {config.recipe}: batch {config.batch_size}, lr {config.lr:g} {config.schedule}"
    )
    started = False

    def on_start(step: int, steps_per_epoch: int) -> None:
        nonlocal started
        started = True
        print(
            f"training started at step {step} ({steps_per_epoch} steps per epoch); Ctrl-C "
            f"saves {checkpoint_path} and prints how to continue",
            flush=True,
        )

    extra = {"input": list(in_shape[2:]), "data": info.root, "format": info.format}
    if args.val_data:  # a separate validation folder: export and eval find it here
        extra["val_data"] = val_data.info.root
    try:
        result = train(
            model,
            task,
            train_data,
            val_data,
            budget,
            config,
            checkpoint=checkpoint_path,
            resume=resume,
            progress=not args.quiet,
            extra=extra,
            eval_input=None if task.name == "sr" else size,
            on_start=on_start,
        )
        eval_size = None if task.name == "sr" else size
        images, preds, targets = sample_predictions(model, val_data, input_size=eval_size)
        task.visualise(images, preds, targets, val_data.info, out / "samples.png")
        summary = {
            "task": task.name,
            "network": spec,
            "genotype": spec.get("genotype") if spec else None,
            "model": spec.get("model") if spec else None,
            "data": info.root,
            "format": info.format,
            "val_data": val_data.info.root,
            "input": list(in_shape[2:]),
            "params": params,
            "macs": macs,
            "budget": budget.to_dict(),
            "recipe": config.recipe,
            "config": {k: v for k, v in asdict(config).items() if not isinstance(v, tuple)},
            "accelerator": result.accelerator,
            "in_memory": result.in_memory,
            "class_weights": result.class_weights,
            "epochs": result.epochs,
            "steps": result.steps,
            "images": result.images,
            "train_seconds": result.seconds,
            "images_per_second": result.images_per_second,
            "steps_per_second": result.steps_per_second,
            "final_loss": result.final_loss,
            "metrics": result.metrics,
            "normalised_accuracy": result.normalised_accuracy,
            "history": result.history,
        }
        written = [checkpoint_path, out / "metrics.json", out / "samples.png"]
        latency_text = fixed_text = None
        if deploy_entry is not None:
            from edgenas.finalise import deploy_example, finalise_model, fixed_size_text

            deploy_hw = plan.deploy_hw or (DEPLOY_SR if task.name == "sr" else tuple(in_shape[2:]))
            deploy_shape = (1, 3, *deploy_hw)
            deployed = finalise_model(
                model,
                out,
                deploy_shape,
                deploy_example(val_data[0][0], deploy_shape),
                deploy_entry,
                threads=args.threads,
                backend_options=backend_options(args, deploy_entry),
                metadata={"checkpoint": "checkpoint.pt"},
                name="model",
                fixed_size=True,
                log=(lambda _message: None) if args.quiet else print,
            )
            summary["deployed"] = deployed.to_dict()
            latency_text = deployed.latency_text()
            fixed_text = fixed_size_text(summary["deployed"])
            written += [Path(deployed.onnx_path), Path(deployed.latency_path)]
            if deployed.fixed is not None:
                written += [Path(deployed.fixed.onnx_path), Path(deployed.fixed.latency_path)]
        write_json(summary, out / "metrics.json")
    except KeyboardInterrupt as err:
        raise Interrupted.after(err, _interrupted_hint(args, plan, started)) from None
    except CheckpointWriteError as err:
        if not checkpoint_path.is_file():
            raise  # nothing saved yet: free space and run the command again
        raise UserError(
            f"cannot write {err.path}: {err.reason}; free some space, then continue with: "
            f"{_continue_command(args, plan, checkpoint_path)}"
        ) from None
    print(
        f"trained {result.steps} steps ({result.epochs} epochs) in {result.seconds:.1f}s on "
        f"{result.accelerator}: {result.steps_per_second:.1f} steps/s, "
        f"{result.images_per_second:.1f} images/s, final loss {result.final_loss:.4f}"
    )
    where = "" if task.name == "sr" else ", full-resolution targets"
    print(
        f"val: {format_metrics(result.metrics)}  "
        f"(normalised accuracy {result.normalised_accuracy:.4f}{where})"
    )
    if latency_text:
        print(f"model.onnx: {latency_text}")
    if fixed_text:
        print(f"fixed size {fixed_text}")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _interrupted_hint(args: argparse.Namespace, plan: _Plan, started: bool) -> str:
    """What Ctrl-C (or SIGTERM) leaves and the exact command that continues it: once
    training started, train() saved the checkpoint; before, a resumed run can still
    continue from its own checkpoint, a new one has nothing to continue."""
    saved = plan.out / "checkpoint.pt"
    if started:
        return f"saved {saved}; continue with: {_continue_command(args, plan, saved)}"
    if args.resume:
        return f"continue with: {_continue_command(args, plan, Path(args.resume))}"
    return "nothing was trained yet, so nothing was saved; run the command again to start"


def _continue_command(args: argparse.Namespace, plan: _Plan, checkpoint: Path) -> str:
    """``edgenas train --resume CHECKPOINT ...`` with what the checkpoint does not hold:
    the data, the output folder if it is not the checkpoint's, the export settings."""
    parts = ["edgenas", "train", "--task", args.task, "--resume", str(checkpoint)]
    options = [
        ("--data", args.data),
        ("--val-data", args.val_data),
        ("--format", args.fmt),
        ("-o", str(plan.out) if checkpoint.parent != plan.out else None),
        ("--deploy-input", args.deploy_input),
        ("--device", args.device if args.device != "cpu" else None),
        ("--devices-file", args.devices_file),
        ("--serial", args.serial),
        ("--threads", args.threads),
        ("--torch-threads", args.torch_threads),
    ]
    for flag, value in options:
        if value is not None:
            parts += [flag, str(value)]
    parts += [flag for flag, on in (("--no-export", args.no_export), ("--quiet", args.quiet)) if on]
    return " ".join(shlex.quote(part) for part in parts)


def _usable_device(args: argparse.Namespace):
    """The latency device's catalog entry, checked before any training is spent."""
    from edgenas.devices.backends import check_availability
    from edgenas.devices.catalog import load_catalog

    entry = load_catalog(args.devices_file).get(args.device)
    availability = check_availability(entry, **backend_options(args, entry))
    if not availability.usable:
        raise UserError(
            f"device {entry.name} is not usable: {availability.reason} (or --no-export)"
        )
    return entry


def _reference_recipe(name: str | None, recipe: str) -> dict:
    """Training-config fields a reference model prefers over the fast recipe."""
    if name is None or recipe != "fast":
        return {}
    from edgenas.models.reference import REFERENCE_MODELS

    entry = REFERENCE_MODELS.get(name)
    return dict(entry.recipe) if entry is not None else {}


def _reference_model(name: str, task, info):
    """A reference model for ``task`` with the head sized for the data."""
    from edgenas.models.reference import REFERENCE_MODELS, build_reference

    entry = REFERENCE_MODELS.get(name)
    if entry is None:
        raise UserError(
            f"unknown model {name!r} (known: {', '.join(REFERENCE_MODELS)}; see `edgenas models`)"
        )
    if entry.task != task.name:
        raise UserError(f"--model {name} is a {entry.task} model, not {task.name}")
    if not entry.learned:
        raise UserError(f"--model {name} has nothing to train; evaluate it with `edgenas eval`")
    options = {k: v for k, v in task.head_options(info).items() if k in entry.defaults}
    try:
        return build_reference(name, task.name, **options)
    except ValueError as err:
        raise UserError(str(err)) from None
