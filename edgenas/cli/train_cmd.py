"""``edgenas train``: train a genotype on a task with the LDP recipe."""

from __future__ import annotations

import argparse

from edgenas.cli.common import add_command
from edgenas.errors import UserError

DESCRIPTION = """\
Train the network of a genotype on monocular depth, semantic segmentation,
super-resolution or classification with the LDP recipe: Adam (0.9, 0.999, 1e-8),
learning rate 7e-4 for 10 epochs, then x0.95 every 5 epochs; rotation, flip, window
dropping and colour jitter augmentation. Stops after --epochs or --seconds of training.

--data takes a folder in a standard layout (detected, or named with --format):
  depth         NYU rgb/ + depth/ (uint16 mm PNG, .npy/.h5 metres), KITTI image/ +
                groundtruth_depth/ (uint16 / 256)
  seg           CamVid train/ trainannot/ val/ valannot/, Cityscapes leftImg8bit/ gtFine/
  sr            a folder of HR images (T91, DIV2K_train_HR, ...) or DIV2K *_HR + *_LR_bicubic/X2
  cls           one sub-folder of images per class
Without --data the built-in demo data are used (procedural scenes for depth/seg/cls,
scikit-image's bundled photographs for sr). Flat folders hold out every 10th file
for validation unless --val-data is given.

Writes OUT/checkpoint.pt (after every epoch, atomically), OUT/metrics.json and
OUT/samples.png (sample predictions)."""

EPILOG = """\
examples:
  edgenas train --task seg --seconds 60                 demo scenes, default genotype
  edgenas train --task seg --data ../shared/data/camvid --epochs 5 --input 180x240
  edgenas train --task sr --data ../shared/data/sr/T91 --val-data ../shared/data/sr/Set5 \\
      --scale 2 --seconds 300 --genotype "$(edgenas space sample --n 1 --scales 2)"
  edgenas train --task depth --data ../shared/data/depth --epochs 20 -o runs/depth
  edgenas train --task depth --resume runs/depth/checkpoint.pt --epochs 30"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "train",
        help="train a genotype on depth, segmentation, super-resolution or classification",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    parser.add_argument("--task", required=True, help="depth, seg, sr or cls")
    parser.add_argument("--data", help="dataset folder (default: built-in demo data)")
    parser.add_argument("--val-data", help="separate validation folder (e.g. Set5 for sr)")
    parser.add_argument("--format", dest="fmt", help="dataset layout (default: detected)")
    parser.add_argument("--genotype", help="genotype string (default: a fixed small one)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=int, help="train for N epochs")
    budget.add_argument(
        "--seconds", type=float, help="train for S seconds (default 120 unless --epochs)"
    )
    parser.add_argument(
        "--input",
        help="training input HxW (default 128x160; for sr the LR patch, default 48x48)",
    )
    parser.add_argument("--scale", type=int, default=2, help="super-resolution factor (2, 3, 4)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per step")
    parser.add_argument("--lr", type=float, default=7e-4, help="initial learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of init, order, augmentation")
    parser.add_argument("--workers", type=int, default=1, help="data-loading worker processes")
    parser.add_argument("--threads", type=int, help="torch threads (default: min(2, cores))")
    parser.add_argument("--class-weights", action="store_true", help="seg: weighted cross-entropy")
    parser.add_argument("--no-augment", action="store_true", help="turn augmentation off")
    parser.add_argument("--eval-every-epoch", action="store_true", help="validate every epoch")
    parser.add_argument("--resume", help="continue from this checkpoint")
    parser.add_argument("-o", "--out", help="output folder (default runs/<task>)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from edgenas.cli.common import parse_genotype
    from edgenas.models.complexity import count_macs, count_params
    from edgenas.tasks import get_task
    from edgenas.tasks.defaults import DEFAULT_GENOTYPE, DEFAULT_SECONDS, PROXY_INPUT, SR_PATCH
    from edgenas.tasks.runner import (
        format_metrics,
        open_for_cli,
        parse_size,
        set_threads,
        write_json,
    )
    from edgenas.training import Budget, TrainConfig, load_checkpoint, train
    from edgenas.visualize import sample_predictions

    task = get_task(args.task)
    for name in ("epochs", "batch_size", "workers"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "workers" else 1):
            raise UserError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if args.seconds is not None and args.seconds <= 0:
        raise UserError(f"--seconds must be positive, got {args.seconds}")
    if task.name == "sr" and args.scale not in (2, 3, 4):
        raise UserError(f"--scale must be 2, 3 or 4, got {args.scale}")
    set_threads(args.threads)

    resume = load_checkpoint(args.resume) if args.resume else None
    genotype_text = args.genotype
    if resume is not None and resume.get("model_spec"):
        spec = resume["model_spec"]
        if spec["task"] != task.name:
            raise UserError(f"--resume checkpoint is for task {spec['task']}, not {task.name}")
        genotype_text = genotype_text or spec["genotype"]
        if task.name == "sr":
            args.scale = spec["options"].get("scale", args.scale)
    genotype = parse_genotype(genotype_text or DEFAULT_GENOTYPE)

    if task.name == "sr":
        h, w = parse_size(args.input, (SR_PATCH, SR_PATCH))
        if h != w:
            raise UserError(f"--input for sr is a square LR patch, e.g. 48x48 (got {h}x{w})")
        size, patch = None, h
    else:
        size, patch = parse_size(args.input, PROXY_INPUT), SR_PATCH
    common = dict(fmt=args.fmt, size=size, scale=args.scale, patch=patch, seed=args.seed)
    if args.val_data:
        train_data = open_for_cli(task, args.data, "all", train=True, **common)
        val_data = open_for_cli(task, args.val_data, "all", train=False, **common)
        if args.fmt is None:
            pass
    else:
        train_data = open_for_cli(task, args.data, "train", train=True, **common)
        val_data = open_for_cli(task, args.data, "val", train=False, **common)

    torch.manual_seed(args.seed)
    model = task.build_model(genotype, train_data.info)
    if resume is not None:
        try:
            model.load_state_dict(resume["model"])
        except RuntimeError:
            raise UserError(
                f"--resume checkpoint {args.resume} does not fit this genotype/dataset "
                "(different classes or scale?)"
            ) from None

    seconds = args.seconds
    if args.epochs is None and seconds is None:
        seconds = DEFAULT_SECONDS
    budget = Budget(epochs=args.epochs, seconds=seconds)
    config = TrainConfig(
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        workers=args.workers,
        augment=not args.no_augment,
        class_weights=args.class_weights,
        eval_every_epoch=args.eval_every_epoch,
    )
    from pathlib import Path

    out = Path(args.out or f"runs/{task.name}")
    info = train_data.info
    in_shape = (1, 3, patch, patch) if task.name == "sr" else (1, 3, *size)
    params = count_params(model)
    macs = count_macs(model, in_shape)
    print(
        f"task {task.name}  data {info.root} ({info.format}, {len(train_data)} train / "
        f"{len(val_data)} val)  input {in_shape[2]}x{in_shape[3]}"
    )
    print(f"genotype {genotype.encode()}")
    print(f"params {params:,}  MACs {macs / 1e6:.1f}M at {in_shape[2]}x{in_shape[3]}")
    extra = {"input": list(in_shape[2:]), "data": info.root, "format": info.format}
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
    )
    images, preds, targets = sample_predictions(model, val_data)
    task.visualise(images, preds, targets, val_data.info, out / "samples.png")
    summary = {
        "task": task.name,
        "genotype": genotype.encode(),
        "data": info.root,
        "format": info.format,
        "val_data": val_data.info.root,
        "input": list(in_shape[2:]),
        "params": params,
        "macs": macs,
        "budget": {"epochs": budget.epochs, "seconds": budget.seconds},
        "epochs": result.epochs,
        "steps": result.steps,
        "images": result.images,
        "train_seconds": result.seconds,
        "images_per_second": result.images_per_second,
        "final_loss": result.final_loss,
        "metrics": result.metrics,
        "normalised_accuracy": result.normalised_accuracy,
        "history": result.history,
    }
    write_json(summary, out / "metrics.json")
    print(
        f"trained {result.epochs} epochs / {result.steps} steps in {result.seconds:.1f}s "
        f"({result.images_per_second:.1f} images/s), final loss {result.final_loss:.4f}"
    )
    print(
        f"val: {format_metrics(result.metrics)}  (normalised accuracy {result.normalised_accuracy:.4f})"
    )
    print(f"wrote {out / 'checkpoint.pt'}, {out / 'metrics.json'}, {out / 'samples.png'}")
    return 0
