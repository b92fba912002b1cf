"""``edgenas search``: the LDP architecture search, end to end."""

from __future__ import annotations

import argparse
import re
import time

from edgenas.cli.common import add_command, parse_list, parse_shape
from edgenas.errors import UserError
from edgenas.parsing import number, scale_number, scales_text, seed_number
from edgenas.search.config import (
    BUDGET_FINAL_SHARE,
    BUDGET_MAX_ITERATIONS,
    DEFAULT_FINAL_SECONDS,
    DEFAULT_GRID_SUBSAMPLE,
    DEFAULT_MAX_ITERATIONS,
    DEFAULT_PROXY_INPUT,
    DEFAULT_SR_LAYOUT,
    DEFAULT_SR_PROXY_INPUT,
    DEFAULT_TARGET_LATENCY_MS,
    DEFAULT_TRAIN_SECONDS,
    EXECUTORS,
    PRESETS,
    SCORES,
    SPACE_BY_TASK,
    SR_LAYOUTS,
    SearchConfig,
)


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "search",
        help="LDP search: score-ranked parents, Assisted Tabu Search, best model + report",
        description=(
            "Search the LDP space for a network that is accurate and fits your targets.\n"
            "\n"
            "1. Sample --pool random genotypes (with --target-params, only networks within\n"
            "   it) and rank them by training speed (or --score naswot, the paper's) on\n"
            "   your training data; pick --parents parents: the task's default network\n"
            "   first (--start-from), then best scores, and best scores among those\n"
            "   closest to the target size. The ranking is updated after each parent.\n"
            "2. From each parent, Assisted Tabu Search: mutate --children children, train\n"
            "   the one with the best reward R for a short proxy budget, keep it if its\n"
            "   grade G = a*A + (1-a)*(P/P(m))^r improves, else move to the best untried\n"
            "   candidate; stop after --iterations or --patience steps without progress.\n"
            "   With --budget, the whole run (search, final training, baselines) fits it.\n"
            "3. Train the best genotype for --final-seconds, export it to a verified ONNX\n"
            "   file, measure its latency on --device, write report.md with plots.\n"
            "\n"
            "With no arguments it runs a small complete search on built-in demo data\n"
            f"(depth, host CPU, latency target {DEFAULT_TARGET_LATENCY_MS:g} ms at 120x160)"
            " in a few minutes.\n"
            "Everything goes to runs/NAME/run.sqlite; a killed search continues with --resume."
        ),
        epilog=(
            "examples:\n"
            "  edgenas search                                     # demo: a few minutes\n"
            "  edgenas search --task sr --data ../shared/data/sr/T91 --val-data ../shared/data/sr/Set5 \\\n"
            "      --target-params 300k --name sr-t91\n"
            "  edgenas search --task seg --data CamVid --target-latency 30ms --device pixel3a\n"
            "  edgenas search --task sr --data T91 --budget 20m --target-latency 15ms  # all in 20 min\n"
            "  edgenas search --preset paper --task seg --data CamVid --accelerator cuda\n"
            "  edgenas search --alpha-grid 0.4,0.5,0.6 --subsample 0.2\n"
            "  edgenas search --executor ray --workers 4 --ray-address auto  # on a Ray cluster\n"
            "  edgenas search --resume runs/search\n"
            "  edgenas search --name demo --tui      # search and watch it live in this terminal"
        ),
    )
    d = SearchConfig()  # defaults live in one place: the config dataclass
    data = parser.add_argument_group("task and data")
    data.add_argument("--task", default=d.task, help="depth, seg, sr or cls")
    data.add_argument("--data", default=None, help="dataset folder (default: built-in demo data)")
    data.add_argument(
        "--val-data", default=None, help="validation folder (default: --data's val split)"
    )
    from edgenas.data.open import FORMAT_NAMES

    data.add_argument(
        "--format",
        dest="data_format",
        default=None,
        choices=FORMAT_NAMES,
        help="dataset layout (default: detected)",
    )
    data.add_argument(
        "--scale",
        type=scale_number(),
        default=None,
        help=f"super-resolution factor, {scales_text()} (--task sr only; default {d.scale})",
    )
    data.add_argument(
        "--input",
        default=None,
        help=f"proxy training size HxW (default {_size(DEFAULT_PROXY_INPUT)}; "
        f"sr: {_size(DEFAULT_SR_PROXY_INPUT)} LR patches)",
    )
    data.add_argument(
        "--final-input",
        default=None,
        help="training size HxW of the final model and the baselines (default: --input); "
        "e.g. --input 64x80 --final-input 180x240 ranks candidates fast and trains the "
        "answer at full size",
    )
    data.add_argument(
        "--deploy-input",
        default=_size(d.deploy_input),
        help="size HxW at which FLOPs and latency count (sr: the LR size)",
    )

    targets = parser.add_argument_group(
        f"targets (several combine; none given: --target-latency {DEFAULT_TARGET_LATENCY_MS:g}ms)"
    )
    targets.add_argument("--target-params", default=None, help="e.g. 1.8M or 300k")
    targets.add_argument("--target-flops", default=None, help="MACs at --deploy-input, e.g. 1G")
    targets.add_argument(
        "--target-latency",
        default=None,
        metavar="TIME|baseline|MODEL",
        help="e.g. 30ms, measured on --device; or 'baseline' (or a reference model's "
        "name, e.g. unet): that model's latency, measured on --device at the start of "
        "the run, and every candidate is timed against it, so the answer is at most as "
        "slow as the network you would otherwise write (baseline: seg unet, sr espcn, "
        "depth fastdepth)",
    )
    targets.add_argument(
        "--device", default=d.device, help="device for latency (see `edgenas devices list`)"
    )
    targets.add_argument(
        "--threads", type=number(int, above=0), default=d.threads, help="threads on the device"
    )
    targets.add_argument(
        "--alpha",
        type=number(float, minimum=0, maximum=1),
        default=d.alpha,
        help="balance a between accuracy and compactness",
    )
    targets.add_argument(
        "--alpha-grid", default=None, help="comma-separated a values to choose from (Sec. 3.7)"
    )
    targets.add_argument(
        "--subsample",
        type=number(float, above=0, maximum=1),
        default=None,
        help=f"fraction of the training data for --alpha-grid (default {DEFAULT_GRID_SUBSAMPLE:g})",
    )

    paper = PRESETS["paper"]

    def preset_help(text: str, field: str, demo=None) -> str:
        """Help that names the demo and paper values of a preset-controlled option."""
        demo = getattr(d, field) if demo is None else demo
        value = paper.get(field, demo)

        def show(v) -> str:
            if isinstance(v, tuple):
                return _join(v)
            return f"{v:g}" if isinstance(v, float) else str(v)

        return f"{text} (demo: {show(demo)}; paper: {show(value)})"

    search = parser.add_argument_group(
        "search space and budget (defaults from --preset; options given override it)"
    )
    add = search.add_argument
    add(
        "--preset",
        choices=tuple(PRESETS),
        default=d.preset,
        help="demo: a complete search in minutes on a CPU; paper: the paper's settings "
        "(60K pool, 6 parents, 100 iterations, patience 10, batch 256, full operator "
        "lists; needs a GPU and days)",
    )
    add(
        "--budget",
        default=None,
        metavar="TIME",
        help="wall time of the whole run, e.g. 20m or 1h30m: the search plans pool, tabu "
        f"search, final training ({BUDGET_FINAL_SHARE:.0%}% of it unless --final-seconds) "
        "and baselines into it and shows the time left",
    )
    add(
        "--start-from",
        default=None,
        metavar="GENOTYPES|default|none",
        help="genotypes searched from first, before the score-ranked parents (comma-"
        "separated); default: the task's default genotype when it is in the space "
        "(demo), none (paper)",
    )
    sr_space, dense_space = SPACE_BY_TASK["sr"], SPACE_BY_TASK["dense"]
    add(
        "--scales",
        default=None,
        help=f"pyramid scale counts to sample (sr: {_join(sr_space['scales'])}; "
        f"others: {_join(dense_space['scales'])})",
    )
    add(
        "--channels",
        default=None,
        help=f"block widths to choose from (sr: {_join(sr_space['channels'])}; "
        f"others: {_join(dense_space['channels'])})",
    )
    add(
        "--sr-layout",
        choices=SR_LAYOUTS,
        default=None,
        help="--task sr only: the genotype layout searched. head (S<n>: strings): the whole "
        "pyramid at the LR resolution, a fixed pixel-shuffle head upsamples at the end; "
        "paper (S<n>U:, LDP Sec. 3.3): a searched upsample block up1 sits between the "
        "decoder and the refine block ref0, which runs at the HR resolution, and the head "
        "only projects to RGB (both add the bilinear upscaled input). Measured on "
        "this CPU (docs/search-space.md): the default genotype's paper-layout twin "
        "scored 0.47 dB lower on Set5 after 120 s of training, at 1.9x the latency "
        f"(demo: {DEFAULT_SR_LAYOUT}; paper: paper)",
    )
    add(
        "--ops",
        default=None,
        help=preset_help(
            "block operators: conv, ds (MobileNet's depthwise-separable conv), sep "
            "(as in Xception: the same inference cost, a cheaper training step), ib, micro, id (a "
            "block without layers: identity, or a 1x1 projection where the width or stride "
            "changes)",
            "ops",
        ),
    )
    add("--kernels", default=None, help=preset_help("kernel sizes", "kernels"))
    add("--se", default=None, help=preset_help("squeeze-and-excitation ratios in %%", "se"))
    add("--layers", default=None, help=preset_help("layers per block", "layers"))
    add(
        "--pool",
        type=number(int, above=0),
        default=None,
        help=preset_help(
            "random genotypes ranked by the score (with --target-params: drawn within it)",
            "pool_size",
        ),
    )
    add(
        "--parents",
        type=number(int, above=0),
        default=None,
        help=preset_help("parents to start tabu search from", "parents"),
    )
    add(
        "--children",
        type=number(int, above=0),
        default=d.children,
        help="children mutated per iteration",
    )
    add(
        "--iterations",
        type=number(int, above=0),
        default=None,
        help=f"max iterations per parent (demo: {DEFAULT_MAX_ITERATIONS}, with --budget "
        f"{BUDGET_MAX_ITERATIONS}; paper: {paper['max_iterations']})",
    )
    add(
        "--patience",
        type=number(int, above=0),
        default=None,
        help=preset_help("iterations without improvement before the next parent", "patience"),
    )
    add(
        "--tabu-tenure",
        type=number(int, above=0),
        default=d.tabu_tenure,
        help="iterations a visited architecture stays tabu",
    )
    add(
        "--score",
        choices=SCORES,
        default=None,
        help="training-free score that ranks parents and rewards children: speed "
        "(training steps per second; the default when candidates train for seconds on "
        "this machine's CPU) or naswot (the paper's; the default with --train-steps, a "
        "GPU, --executor ray or --preset paper); docs/search.md",
    )
    add(
        "--train-seconds",
        type=number(float, above=0),
        default=None,
        help=f"proxy training per candidate (default {DEFAULT_TRAIN_SECONDS:g}; with --budget "
        "sized so that about 20 candidates fit)",
    )
    add(
        "--train-steps",
        type=number(int, above=0),
        default=d.train_steps,
        help="proxy training steps per candidate (instead of seconds)",
    )
    add(
        "--final-seconds",
        type=number(float, above=0),
        default=None,
        help=f"training of the best genotype (default {DEFAULT_FINAL_SECONDS:g}; with "
        f"--budget {BUDGET_FINAL_SHARE:.0%}% of it)",
    )
    add(
        "--final-steps",
        type=number(int, above=0),
        default=d.final_steps,
        help="training steps of the best genotype (instead of seconds)",
    )
    add(
        "--batch-size",
        type=number(int, above=0),
        default=None,
        help=f"default: the task's recipe (paper: {paper['batch_size']})",
    )
    add(
        "--recipe",
        choices=("fast", "ldp"),
        default=None,
        help=preset_help(
            "training recipe of proxy and final training (see `edgenas train --help`; SR "
            "candidates train at 1e-3, docs/search.md)",
            "recipe",
        ),
    )
    add(
        "--train-clock",
        choices=("cpu", "wall"),
        default=None,
        help="what the seconds budgets of the candidates, the final model and the baselines "
        "count: cpu (default) counts the CPU time the training gets, so every network gets "
        "the steps a quiet machine would give it, whatever else runs; wall counts wall time "
        "(the CPU clock falls back to wall with --torch-threads above 1 or on a GPU)",
    )
    add(
        "--accelerator",
        default=d.accelerator,
        help="where candidates train: auto (CUDA when present), cpu or cuda[:N]; "
        "latency is still measured on --device",
    )
    add(
        "--executor",
        choices=EXECUTORS,
        default=d.executor,
        help="where candidates are scored and trained: inline (this process), process "
        "(--workers local processes) or ray (--workers Ray tasks on a cluster; needs "
        'pip install "edgenas[ray]"; see docs/distributed.md)',
    )
    add(
        "--workers",
        type=number(int, above=0),
        default=d.workers,
        help="evaluations at once with --executor process or ray; each tabu step then "
        "trains that many of its best-rewarded children together",
    )
    add(
        "--ray-address",
        metavar="auto|HOST:PORT",
        default=d.ray_address,
        help="with --executor ray: the cluster to join (auto: the one `ray start` runs "
        "on this machine); default: that one if it runs, else a local Ray instance",
    )
    add(
        "--task-timeout",
        metavar="SECONDS",
        type=number(float, above=0),
        default=d.task_timeout_s,
        help="with --executor ray: a task running longer is cancelled and its candidate "
        "recorded as failed (default: 10x the proxy training, at least 600 s)",
    )
    add(
        "--torch-threads",
        type=number(int, above=0),
        default=d.torch_threads,
        help="torch threads per process (see --executor)",
    )
    add(
        "--top-k", type=number(int, above=0), default=d.top_k, help="genotypes listed in the report"
    )
    from edgenas.baselines import DEFAULT_BASELINES  # light: no torch

    per_task = "; ".join(
        f"{t} {','.join(names)}" for t, names in DEFAULT_BASELINES.items() if names
    )
    add(
        "--baselines",
        default=None,
        metavar="NAMES|none",
        help="reference models (`edgenas models`) trained with the final budget, data and "
        "recipe beside the best genotype, measured on --device and compared in the report, "
        f"e.g. espcn,fsrcnn (default: {per_task}); each learned one costs one more final "
        "budget; none to skip",
    )
    add("--seed", type=seed_number(), default=d.seed)

    run = parser.add_argument_group("run")
    run.add_argument("--name", default=None, help="run name (default: search-<task>-<time>)")
    run.add_argument("--runs-dir", default=d.runs_dir, help="folder of runs")
    run.add_argument(
        "--resume", default=None, metavar="RUN_DIR", help="continue a killed or failed run"
    )
    run.add_argument(
        "--tui",
        action="store_true",
        help="search in the background and watch it here (edgenas monitor)",
    )
    parser.set_defaults(func=run_search_command)


def _join(values) -> str:
    return ",".join(str(v) for v in values)


def _size(hw) -> str:
    """``(64, 80)`` -> ``"64x80"``."""
    return "x".join(str(v) for v in hw)


def _start_genotypes(text: str | None) -> tuple[str, ...] | None:
    """``--start-from``: None/``default`` -> None (the config's default), ``none`` -> ()."""
    if text is None or text.strip() == "default":
        return None
    if text.strip() == "none":
        return ()
    from edgenas.parsing import parse_genotype

    return tuple(parse_genotype(part.strip()).encode() for part in text.split(","))


def latency_reference(text: str | None, task: str, baselines: str | None) -> str | None:
    """The reference model a ``--target-latency`` names, or None for a time (``30ms``).

    ``baseline`` is the first learned model among the run's ``--baselines`` (else the
    task's default ones: unet, espcn, fastdepth); a model's name is taken as is and
    checked with the rest of the config. A time is parsed by the caller."""
    if text is None or not re.fullmatch(r"\s*[A-Za-z][A-Za-z0-9_-]*\s*", text):
        return None
    name = text.strip().lower()
    if name in ("ms", "s"):
        return None  # a unit alone: the time parser names the problem
    if name != "baseline":
        return name
    from edgenas.baselines import default_baselines, parse_baselines
    from edgenas.models.reference import REFERENCE_MODELS

    for names in (parse_baselines(baselines) or (), default_baselines(task)):
        learned = [n for n in names if n in REFERENCE_MODELS and REFERENCE_MODELS[n].learned]
        if learned:
            return learned[0]
    raise ValueError(
        f"--target-latency baseline: {task} has no reference model to time; give a time like 30ms"
    )


def config_from_args(args: argparse.Namespace):
    """A :class:`SearchConfig` from the command line; bad values become UserErrors."""
    from edgenas.baselines import parse_baselines
    from edgenas.search.config import (
        parse_count,
        parse_duration,
        parse_milliseconds,
        preset_config,
    )
    from edgenas.task_names import canonical_task

    try:
        task = canonical_task(args.task)
        reference = latency_reference(args.target_latency, task, args.baselines)
        targets = {
            "target_params": parse_count(args.target_params) if args.target_params else None,
            "target_flops": parse_count(args.target_flops) if args.target_flops else None,
            "target_latency_ms": parse_milliseconds(args.target_latency)
            if args.target_latency and reference is None
            else None,
        }
    except ValueError as err:
        raise UserError(str(err)) from None
    if reference is not None:
        targets["target_latency_reference"] = reference
    elif all(value is None for value in targets.values()):
        targets["target_latency_ms"] = DEFAULT_TARGET_LATENCY_MS
    if args.scale is not None and task != "sr":
        raise UserError(f"--scale applies to --task sr only (this run's task is {task}); drop it")
    if args.sr_layout is not None and task != "sr":
        raise UserError(
            f"--sr-layout applies to --task sr only (this run's task is {task}); drop it"
        )
    # None: the config's default for the task (SearchConfig.__post_init__).
    proxy = None if args.input is None else parse_shape(args.input, ndim=2)
    name = args.name or f"search-{task}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        budget = parse_duration(args.budget) if args.budget else None
        space = {
            "ops": parse_list(args.ops, "--ops", str) if args.ops else None,
            "kernels": parse_list(args.kernels, "--kernels") if args.kernels else None,
            "se": parse_list(args.se, "--se") if args.se else None,
            "layers": parse_list(args.layers, "--layers") if args.layers else None,
        }
    except ValueError as err:
        raise UserError(str(err)) from None
    config = preset_config(
        args.preset,
        task=task,
        data=args.data,
        val_data=args.val_data,
        data_format=args.data_format,
        scale=args.scale if args.scale is not None else SearchConfig().scale,
        proxy_input=proxy,
        deploy_input=parse_shape(args.deploy_input, ndim=2),
        final_input=parse_shape(args.final_input, ndim=2) if args.final_input else None,
        device=args.device,
        threads=args.threads,
        alpha=args.alpha,
        alpha_grid=parse_list(args.alpha_grid, "--alpha-grid", float) if args.alpha_grid else (),
        subsample=args.subsample if args.alpha_grid else None,
        scales=parse_list(args.scales, "--scales") if args.scales else None,
        channels=parse_list(args.channels, "--channels") if args.channels else None,
        sr_layout=args.sr_layout,
        **space,
        budget_seconds=budget,
        start_genotypes=_start_genotypes(args.start_from),
        pool_size=args.pool,
        parents=args.parents,
        children=args.children,
        max_iterations=args.iterations,
        patience=args.patience,
        tabu_tenure=args.tabu_tenure,
        score=args.score,
        train_seconds=None if args.train_steps else args.train_seconds,
        train_steps=args.train_steps,
        final_seconds=None if args.final_steps else args.final_seconds,
        final_steps=args.final_steps,
        batch_size=args.batch_size,
        recipe=args.recipe,
        train_clock=args.train_clock,
        accelerator=args.accelerator,
        executor=args.executor,
        workers=args.workers,
        ray_address=args.ray_address,
        task_timeout_s=args.task_timeout,
        torch_threads=args.torch_threads,
        top_k=args.top_k,
        baselines=parse_baselines(args.baselines),
        seed=args.seed,
        run_name=name,
        runs_dir=args.runs_dir,
        **targets,
    )
    from edgenas.space import LDPSpace

    for scales in config.scales:
        if scales not in LDPSpace().scales:
            raise UserError(f"--scales {scales} is not among {LDPSpace().scales}")
    try:
        config.space()
    except ValueError as err:
        raise UserError(f"bad search space: {err}") from None
    return config


# Flags that --resume may come with: they change how the run is watched, how fast its
# process runs or where the Ray cluster is now, not what it computes.
_RESUME_FLAGS = {"resume", "tui", "torch_threads", "ray_address", "func", "command"}


def refuse_settings_on_resume(args: argparse.Namespace) -> None:
    """A resumed run keeps its stored settings: other flags are refused, not ignored."""
    from edgenas.cli import build_parser

    defaults = vars(build_parser().parse_args(["search"]))
    given = [
        "--" + dest.replace("_", "-")
        for dest, default in defaults.items()
        if dest not in _RESUME_FLAGS and getattr(args, dest, default) != default
    ]
    if given:
        raise UserError(
            f"--resume continues {args.resume} with its stored settings; drop {', '.join(given)}"
        )


def run_search_command(args: argparse.Namespace) -> None:
    if args.resume:
        refuse_settings_on_resume(args)
    if args.tui:
        # The search runs as this command without --tui in the background; the monitor
        # runs here (edgenas.tui.launch).
        from pathlib import Path

        from edgenas.tui.launch import search_with_monitor

        if args.resume:
            return search_with_monitor(Path(args.resume), name=None, resume=True)
        config = config_from_args(args)
        run_dir = Path(config.runs_dir) / config.run_name
        return search_with_monitor(run_dir, name=config.run_name, resume=False)
    from rich.console import Console

    from edgenas.search.run import resume_search, run_search

    console = Console(stderr=False, highlight=False)
    start = time.perf_counter()

    def log(message: str) -> None:
        console.print(f"[dim]{time.perf_counter() - start:7.1f}s[/] {message}")
        console.file.flush()  # progress must show at once, also when piped to a file

    def set_torch_threads() -> None:
        # One thread by default: a search runs many small models, and on a busy machine
        # OpenMP threads that wait for each other slow small convolutions down by 10x or
        # more. Use --executor process --workers N to use more cores. Called once the
        # run is checked, so bad input is refused before torch loads.
        from edgenas.tasks.runner import set_threads

        set_threads(args.torch_threads)

    if args.resume:
        outcome = resume_search(
            args.resume, log, prepare=set_torch_threads, ray_address=args.ray_address
        )
    else:
        outcome = run_search(config_from_args(args), log, prepare=set_torch_threads)
    console.print()
    console.print(f"[bold]best genotype[/] {outcome.best_genotype}")
    console.print(
        f"grade G {outcome.best_grade:.4f}, proxy accuracy {outcome.best_accuracy:.4f}, a = {outcome.alpha:g}"
    )
    if outcome.onnx_path:
        latency = outcome.latency_text or f"{outcome.latency_ms:.2f} ms"
        console.print(f"[bold]model[/]  {outcome.onnx_path}  (latency {latency})")
    if outcome.fixed_size_text:
        console.print(f"       fixed size {outcome.fixed_size_text}")
    console.print(f"[bold]report[/] {outcome.report_path}")
    console.print(f"[bold]store[/]  {outcome.run_dir / 'run.sqlite'}")
