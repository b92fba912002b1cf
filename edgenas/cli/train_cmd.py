"""``edgenas train``: train a genotype on a task with the LDP recipe."""

from __future__ import annotations

import argparse
from dataclasses import asdict, fields, replace

from edgenas.cli.common import add_command
from edgenas.cli.profile_cmd import add_device_arguments, backend_options
from edgenas.errors import UserError

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

Writes OUT/checkpoint.pt (at the end, on Ctrl-C and about once a minute, atomically),
OUT/metrics.json, OUT/samples.png (sample predictions) and, like search and shrink,
OUT/model.onnx (takes any image size; verified against PyTorch on a validation image)
with OUT/model.latency.json, its latency on --device at --deploy-input (--no-export
skips both)."""

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
    budget.add_argument("--epochs", type=float, help="train for N epochs")
    budget.add_argument(
        "--seconds", type=float, help="train for S seconds (default 120 unless --epochs)"
    )
    parser.add_argument(
        "--input",
        help="training input HxW (default 128x160; for sr the square LR patch, default 24x24)",
    )
    parser.add_argument(
        "--scale", type=int, default=None, help="super-resolution factor (2, 3, 4; default 2)"
    )
    parser.add_argument(
        "--recipe", choices=("fast", "ldp"), default="fast", help="training recipe (see above)"
    )
    parser.add_argument("--batch-size", type=int, help="images per step (default: the recipe's)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
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
    parser.add_argument("--seed", type=int, help="seed of init, order, augmentation (default 0)")
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
    parser.add_argument("--workers", type=int, help="data-loading worker processes (default 0)")
    parser.add_argument("--torch-threads", type=int, help="torch threads (default: min(2, cores))")
    parser.add_argument("--resume", help="continue from this checkpoint (towards its budget)")
    parser.add_argument("-o", "--out", help="output folder (default runs/<task>)")
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
        "--threads", type=int, help="threads on the latency device (default: the device's)"
    )
    deploy.add_argument(
        "--no-export", action="store_true", help="write no model.onnx and measure nothing"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    import torch

    from edgenas.checkpoint import build_from_spec, describe_spec, load_checkpoint, model_spec
    from edgenas.data.open import open_train_val
    from edgenas.models.complexity import count_macs, count_params
    from edgenas.tasks import get_task
    from edgenas.tasks.defaults import DEFAULT_SECONDS, default_genotype
    from edgenas.tasks.recipes import recipe_config, recipe_input
    from edgenas.tasks.runner import (
        format_metrics,
        parse_size,
        set_threads,
        write_json,
    )
    from edgenas.training import Budget, TrainConfig, train
    from edgenas.visualize import sample_predictions

    task = get_task(args.task)
    for name in ("epochs", "seconds", "batch_size", "lr"):
        value = getattr(args, name)
        if value is not None and not (value > 0 and value < float("inf")):
            raise UserError(f"--{name.replace('_', '-')} must be a positive number, got {value}")
    if args.workers is not None and args.workers < 0:
        raise UserError(f"--workers must be at least 0, got {args.workers}")
    if args.scale is not None and task.name != "sr":
        raise UserError("--scale applies to --task sr only")
    scale = args.scale if args.scale is not None else 2
    if scale not in (2, 3, 4):
        raise UserError(f"--scale must be 2, 3 or 4, got {scale}")
    set_threads(args.torch_threads)
    deploy_entry = None if args.no_export else _usable_device(args)

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
        if spec is None:
            raise UserError(f"--resume checkpoint {args.resume} names no network")
        if spec["task"] != task.name:
            raise UserError(f"--resume checkpoint is for task {spec['task']}, not {task.name}")
        if args.genotype or args.model:
            raise UserError("--resume continues the checkpoint's network; drop --genotype/--model")
        if task.name == "sr":
            trained = spec["options"].get("scale", scale)
            if args.scale is not None and args.scale != trained:
                raise UserError(
                    f"--resume checkpoint was trained for x{trained}, not x{args.scale}"
                )
            scale = trained

    default_h, _ = recipe_input(task.name)
    if task.name == "sr":
        saved = (resume or {}).get("extra", {}).get("input")
        h, w = parse_size(args.input, tuple(saved) if saved else (default_h, default_h))
        if h != w:
            raise UserError(f"--input for sr is a square LR patch, e.g. 24x24 (got {h}x{w})")
        size, patch = None, h
    else:
        saved = (resume or {}).get("extra", {}).get("input")
        size, patch = parse_size(args.input, tuple(saved) if saved else recipe_input(task.name)), 48
    # Validation on full-resolution targets; inputs are resized to the training size.
    train_data, val_data = open_train_val(
        task.name, args.data, args.val_data, fmt=args.fmt, size=size, val_size=None,
        scale=scale, patch=patch, seed=seed,
    )  # fmt: skip

    torch.manual_seed(seed)
    info = train_data.info
    if spec is not None:
        model = build_from_spec(spec)
        try:
            model.load_state_dict(resume["model"])
        except RuntimeError:
            raise UserError(
                f"--resume checkpoint {args.resume} does not fit its own network"
            ) from None
    elif args.model:
        model = _reference_model(args.model, task, info)
    else:
        from edgenas.cli.common import parse_genotype

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
    except ValueError as err:
        raise UserError(str(err)) from None

    out = Path(args.out or f"runs/{task.name}")
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
    extra = {"input": list(in_shape[2:]), "data": info.root, "format": info.format}
    try:
        result = train(
            model,
            task,
            train_data,
            val_data,
            budget,
            config,
            checkpoint=out / "checkpoint.pt",
            resume=resume,
            progress=not args.quiet,
            extra=extra,
            eval_input=None if task.name == "sr" else size,
        )
    except KeyboardInterrupt:
        sys.stderr.write(
            f"edgenas: interrupted; saved {out / 'checkpoint.pt'}. Continue with:\n"
            f"  edgenas train --task {args.task} --resume {out / 'checkpoint.pt'}"
            + (f" --data {args.data}" if args.data else "")
            + (f" --val-data {args.val_data}" if args.val_data else "")
            + (f" -o {args.out}" if args.out else "")
            + "\n"
        )
        return 130
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
    written = [out / "checkpoint.pt", out / "metrics.json", out / "samples.png"]
    latency_text = None
    if deploy_entry is not None:
        from edgenas.finalise import deploy_example, finalise_model

        if args.deploy_input:
            deploy_hw = parse_size(args.deploy_input, (0, 0))
        else:
            deploy_hw = DEPLOY_SR if task.name == "sr" else tuple(in_shape[2:])
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
            log=(lambda _message: None) if args.quiet else print,
        )
        summary["deployed"] = deployed.to_dict()
        latency_text = deployed.latency_text()
        written += [Path(deployed.onnx_path), Path(deployed.latency_path)]
    write_json(summary, out / "metrics.json")
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
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _usable_device(args: argparse.Namespace):
    """The latency device's catalog entry, checked before any training is spent."""
    from edgenas.devices.backends import check_availability
    from edgenas.devices.catalog import load_catalog

    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
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
