"""Run an LDP search end to end: store, (alpha grid), search, final model, report.

``run_search(config)`` starts a new run in ``runs_dir/run_name``; ``resume_search(dir)``
continues one from its store. Both end with the outputs of a run:

- ``best.onnx``: the best genotype trained for ``final_seconds`` and exported as a
  verified ONNX file with dynamic height and width (metadata: genotype, task, grade,
  accuracy); ``best.pt``: its checkpoint (``edgenas export --run``, ``eval --checkpoint``);
- ``best.latency.json``: its latency measured on the device (``edgenas.latency/v1``);
- ``best.static.onnx`` and ``best.static.latency.json``: the same network at the deploy
  size only (:mod:`edgenas.finalise`), when it could be made;
- ``samples.png``: the final model's predictions on the first validation images;
- ``baselines/``: the task's reference models trained with the same final budget, data
  and recipe, exported and measured the same way (:mod:`edgenas.baselines`; their rows
  go to the run summary under ``"baselines"``);
- ``report.md`` with PNG plots (see :mod:`edgenas.search.report`);
- the store ``run.sqlite`` with every candidate and event.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgenas.errors import Interrupted, UserError, environment_error_line
from edgenas.search import objectives
from edgenas.search.budget import BudgetPlan, plan_budget, spent_before
from edgenas.search.config import SEARCH_VERSION, SearchConfig
from edgenas.search.recorder import Recorder
from edgenas.store import RunStore, StoreError, StoreWriteError, store_path

if TYPE_CHECKING:  # torch loads with these: only once a run really starts
    from edgenas.search.evaluation import CandidateEvaluator
    from edgenas.search.ldp import LDPSearch

Log = Callable[[str], None]
RUN_KIND = "ldp-search"


@dataclass
class SearchOutcome:
    """Where a finished run put its results, and the best candidate's figures."""

    run_dir: Path
    best_genotype: str
    best_grade: float
    best_accuracy: float
    onnx_path: Path | None
    latency_ms: float | None
    report_path: Path
    alpha: float
    # e.g. "17.6 ms at 1x3x120x160 on cpu (measured)"
    latency_text: str | None = None
    # the fixed-size twin (edgenas.finalise.fixed_size_text); None when there is none
    fixed_size_text: str | None = None


def _make_executor(config: SearchConfig, evaluator: CandidateEvaluator, session=None):
    from edgenas.search.executor import InlineExecutor, ProcessExecutor

    if config.executor == "ray":
        from edgenas.search.ray_executor import RayExecutor

        return RayExecutor(config, session)
    if config.executor == "process":
        return ProcessExecutor(config, config.workers, config.torch_threads)
    return InlineExecutor(evaluator)


def _open_session(config: SearchConfig, evaluator: CandidateEvaluator):
    """With ``--executor ray``: the run's Ray session, whose device actor then answers
    the evaluator's latency questions (the device may be on another node); else None."""
    if config.executor != "ray":
        return None
    from edgenas.search.ray_executor import RaySession

    session = RaySession(config, evaluator.latency_setup())
    evaluator.latency = session.latency
    return session


def _search(
    config: SearchConfig,
    store: RunStore,
    log: Log,
    evaluator: CandidateEvaluator,
    search_deadline: float | None = None,
    session=None,
) -> LDPSearch:
    """Run the search phase against a store (new or resumed); the caller owns
    ``evaluator`` and ``session``."""
    from edgenas.search.ldp import LDPSearch

    executor = _make_executor(config, evaluator, session)
    try:
        search = LDPSearch(
            config, evaluator, executor, Recorder(store), log, search_deadline=search_deadline
        )
        search.run()
    except BaseException:
        executor.abort()  # Ctrl-C, SIGTERM, an error: work in flight is not waited for
        raise
    executor.close()
    return search


def check_config(config: SearchConfig) -> None:
    """Fail before any work on bad values: task, sizes, folders, device, targets, data.

    Cheap checks come first, so most bad input is refused before torch loads.
    """
    from edgenas.parsing import check_accelerator_name, check_input_fits

    try:
        config.validate()
    except ValueError as err:
        raise UserError(str(err)) from None
    check_accelerator_name(config.accelerator)
    for option, size in (
        ("--input", config.proxy_input),
        ("--final-input", config.final_input),
        ("--deploy-input", config.deploy_input),
    ):
        if size is not None:
            check_input_fits(size, option)
    runs_dir = Path(config.runs_dir)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise UserError(f"--runs-dir {runs_dir} is a file, not a folder; name a folder for runs")
    from edgenas.data.open import check_folder  # stdlib only: missing, a file, unreadable

    for flag, folder in (("--data", config.data), ("--val-data", config.val_data)):
        if folder is not None:
            check_folder(flag, folder)
    from edgenas.devices.backends import make_backend
    from edgenas.devices.profile import resolve_device

    if config.executor == "ray":
        from edgenas.search.ray_executor import require_ray

        require_ray()
    # The final model is always measured on the device, so it must be usable now; on a
    # Ray cluster the device may be on another node, which the search checks at start.
    if config.executor != "ray" or config.ray_address is None:
        availability = make_backend(
            resolve_device(config.device), threads=config.threads
        ).availability()
        if not availability.usable:
            raise UserError(f"device {config.device} is not usable: {availability.reason}")
    from edgenas.baselines import resolve_baselines

    resolve_baselines(config.task, config.baselines)
    try:
        budget_plan(config)
    except ValueError as err:
        raise UserError(str(err)) from None
    from edgenas.data.open import check_data  # every data file, before the run exists

    check_data(config.task, config.data, config.val_data, fmt=config.data_format,
               scale=config.scale, patch=min(config.proxy_input))  # fmt: skip
    if config.executor == "ray":  # last: it starts (or joins) Ray, seconds
        from edgenas.search.ray_executor import check_cluster_device, connect

        connect(config.ray_address)  # an unreachable cluster is refused before the run exists
        if config.ray_address is not None:
            check_cluster_device(config)  # on the node that holds it


def budget_plan(config: SearchConfig) -> BudgetPlan | None:
    """How the run's ``budget_seconds`` is spent (None without a budget)."""
    if config.budget_seconds is None:
        return None
    from edgenas.baselines import resolve_baselines
    from edgenas.models.reference import REFERENCE_MODELS

    names = resolve_baselines(config.task, config.baselines)
    learned = sum(REFERENCE_MODELS[name].learned for name in names)
    return plan_budget(config.budget_seconds, float(config.final_seconds), learned)


def with_planned_proxy(config: SearchConfig) -> SearchConfig:
    """With a budget and no proxy budget given, the proxy seconds the plan allots
    (stored with the run, so a resume trains alike); otherwise ``config`` unchanged."""
    if config.budget_seconds is None or config.train_seconds or config.train_steps:
        return config
    if config.final_seconds is None:
        return config  # check_config names the problem
    try:
        plan = budget_plan(config)
    except ValueError as err:
        raise UserError(str(err)) from None
    return dataclasses.replace(config, train_seconds=plan.proxy_seconds)


def _alpha_grid(config: SearchConfig, run_dir: Path, log: Log) -> tuple[float, list[dict]]:
    """LDP Sec. 3.7: a short search per a on a random subset; returns the chosen a.

    The chosen a is the one whose best candidate has the highest accuracy among those
    meeting every target (compactness 1); if none meets them, the one closest to them.
    """
    rows = []
    for alpha in config.alpha_grid:
        sub = dataclasses.replace(
            config,
            alpha=alpha,
            alpha_grid=(),
            run_name=f"alpha-{alpha:g}",
            runs_dir=str(run_dir / "alpha-grid"),
        )
        sub_dir = Path(sub.runs_dir) / sub.run_name
        log(f"alpha grid: a = {alpha:g} on {config.subsample:.0%} of the training data")
        store = (
            RunStore.open(sub_dir)
            if store_path(sub_dir).exists()
            else RunStore.create(sub_dir, name=sub.run_name, kind=RUN_KIND, config=sub.to_dict())
        )
        with store:
            from edgenas.search.evaluation import CandidateEvaluator

            evaluator = CandidateEvaluator(sub)
            session = None
            try:
                session = _open_session(sub, evaluator)
                search = _search(sub, store, log, evaluator, session=session)
            finally:
                evaluator.close()
                if session is not None:
                    session.close()
            store.set_status("finished")
        finished = [e for e in search.trained.values() if math.isfinite(e.grade)]
        if not finished:
            raise UserError(f"alpha grid: every training of a = {alpha:g} failed")
        best = max(
            finished,
            key=lambda e: (
                objectives.compactness(_values(e.candidate), config.targets()),
                e.candidate.accuracy or 0.0,
            ),
        )
        rows.append(
            {
                "alpha": alpha,
                "genotype": best.genotype,
                "accuracy": best.candidate.accuracy,
                "compactness": objectives.compactness(_values(best.candidate), config.targets()),
                "grade": best.grade,
            }
        )
    chosen = max(rows, key=lambda r: (r["compactness"], r["accuracy"]))["alpha"]
    log(f"alpha grid: chose a = {chosen:g}")
    return chosen, rows


def _values(candidate) -> dict[str, float]:
    values = {"params": float(candidate.params or 0), "flops": float(candidate.flops or 0)}
    if candidate.latency_ms is not None:
        values["latency_ms"] = candidate.latency_ms
    return values


def _unfinished_final_training(path: Path, genotype: str) -> dict | None:
    """The checkpoint of an interrupted final training of ``genotype`` (a resumed search
    continues it instead of starting over), or None."""
    if not path.is_file():
        return None
    from edgenas.checkpoint import load_checkpoint

    try:
        ckpt = load_checkpoint(path)
    except UserError:
        return None  # unreadable (cut short while written): train from the start
    spec = ckpt.get("model_spec") or {}
    return ckpt if spec.get("genotype") == genotype and "optimizer" in ckpt else None


def _class_iou(evaluator: CandidateEvaluator, model) -> dict | None:
    """Segmentation: the final model's IoU per class on the validation data (report)."""
    if evaluator.task.name != "segmentation":
        return None
    from edgenas.inference import class_iou

    return class_iou(model, evaluator.task, evaluator.final_data()[1])


def _clock_line(config: SearchConfig) -> str:
    """What the run's seconds budgets count, said once at the start (a requested CPU
    clock falls back to wall time with several torch threads or on a GPU)."""
    from edgenas.training import clock_in_effect

    def said(train_config) -> str:
        clock = clock_in_effect(train_config)
        if clock == "wall" and train_config.clock == "cpu":
            return "wall time (the CPU clock needs one torch thread on the CPU)"
        return "CPU time" if clock == "cpu" else "wall time"

    candidates, final = said(config.train_config()), said(config.final_train_config())
    if candidates == final:
        return f"training budgets count {candidates}"
    return f"candidates' training budgets count {candidates}; the final model's and the baselines' {final} (--budget)"


def _final_model(
    config: SearchConfig, evaluator: CandidateEvaluator, best, run_dir: Path, log: Log
):
    """Train the best genotype for the final budget; export and measure it (finalise)."""
    from edgenas.finalise import deploy_example, finalise_model
    from edgenas.training import Budget, train

    budget = f"{config.final_steps} steps" if config.final_steps else f"{config.final_seconds:g} s"
    log(f"training the best genotype for the final budget ({budget})")
    model = evaluator.build(best.genotype)
    deploy = list(evaluator.deploy_shape[2:])
    train_source, val_data = evaluator.final_data()
    result = train(
        model,
        evaluator.task,
        train_source,
        val_data,
        Budget(seconds=config.final_seconds, steps=config.final_steps),
        config.final_train_config(),
        # The trained weights, for `edgenas export --run` and `edgenas eval --checkpoint`.
        checkpoint=run_dir / "best.pt",
        resume=_unfinished_final_training(run_dir / "best.pt", best.genotype),
        extra={
            "input": list(config.final_input or config.proxy_input),
            "deploy_input": deploy,
            "data": config.data or "<built-in>",
            "format": evaluator.info.format,
            "val_data": config.val_data,
            "run": config.run_name,
        },
    )
    deployed = finalise_model(
        model,
        run_dir,
        evaluator.deploy_shape,
        deploy_example(val_data[0][0], evaluator.deploy_shape),
        config.device,
        threads=config.threads,
        profiler=evaluator.latency.profile,
        fixed_size=True,
        metadata={
            "grade": f"{best.grade:.6f}",
            "proxy_accuracy": f"{best.candidate.accuracy:.6f}",
            "final_accuracy": f"{result.normalised_accuracy:.6f}",
            "final_metrics": json.dumps(result.metrics),
            "run": config.run_name,
            "checkpoint": "best.pt",
        },
        log=log,
    )
    return model, deployed, result


def _paired_with_reference(
    config: SearchConfig, evaluator: CandidateEvaluator, genotype: str, log: Log
) -> dict | None:
    """With ``--target-latency MODEL``: the final genotype timed as every candidate was,
    in sessions alternating with that model's (:meth:`LatencyService.paired`), so the
    report judges the target on the scale the search judged it on. One unpaired
    profile at the end can read a network a few percent slower or faster than the
    reference it matched while paired. None without a reference model."""
    name = config.target_latency_reference
    if name is None:
        return None
    latency = evaluator.paired_latency(genotype)
    ratio = latency / config.target_latency_ms
    log(f"the final network, timed alternating with {name}: {latency:.2f} ms ({ratio:.2f}x {name})")
    return {"reference": name, "latency_ms": latency, "ratio": ratio}


def _refuse_taken(run_dir: Path) -> None:
    """A new run may not take the folder of an existing one."""
    if store_path(run_dir).exists():
        raise UserError(
            f"run {run_dir} exists; resume it with `edgenas search --resume {run_dir}` "
            "or pick another --name"
        )


def _open_run(
    config: SearchConfig, run_dir: Path, resume: bool, *, checked: bool = False
) -> RunStore:
    """The run's store, opened for writing (this process then holds the run's lock).

    Everything that can be checked is checked first, so a refused start or resume
    writes nothing: the config (data, device, sizes), the name, the lock.
    """
    if not checked:  # every data file is read: once per start
        check_config(config)
    try:
        if resume:
            store = RunStore.open(run_dir)
            try:
                status = store.run_info().status
            except BaseException:
                store.close()
                raise
            if status == "finished":  # finished while this one started
                store.close()
                raise UserError(f"{run_dir} has finished; its report is {run_dir / 'report.md'}")
            return store
        _refuse_taken(run_dir)
        return RunStore.create(
            run_dir, name=config.run_name, kind=RUN_KIND, config=config.to_dict()
        )
    except StoreError as err:
        raise UserError(str(err)) from None


def with_measured_latency_target(config: SearchConfig, log: Log) -> SearchConfig:
    """With ``--target-latency MODEL``, ``config`` with ``target_latency_ms`` set to that
    reference model's latency measured on the run's device at the deploy size (stored
    with the run, so a resume keeps the target); otherwise ``config`` unchanged."""
    name = config.target_latency_reference
    if name is None or config.target_latency_ms is not None:
        return config
    from edgenas.search.evaluation import open_search_data
    from edgenas.search.latency import LatencyService, LatencySetup
    from edgenas.tasks import get_task

    task = get_task(config.task)
    # The head options (classes, scale) come from the data's description.
    train_data, _ = open_search_data(config, tuple(config.proxy_input))
    setup = LatencySetup(
        device=config.device,
        threads=config.threads,
        task=task.name,
        deploy_shape=(1, 3, *config.deploy_input),
        task_options=task.head_options(train_data.info),
        reference_model=name,
    )
    service = LatencyService(setup)
    try:
        latency = service.reference_latency()
    finally:
        service.close()
    size = "x".join(map(str, config.deploy_input))
    log(
        f"latency target: {name} measures {latency:.2f} ms on {config.device} at {size}; "
        f"every candidate is timed against it"
    )
    return dataclasses.replace(config, target_latency_ms=round(latency, 4))


def run_search(
    config: SearchConfig,
    log: Log | None = None,
    *,
    resume: bool = False,
    prepare: Callable[[], None] | None = None,
) -> SearchOutcome:
    """Run (or resume) a search and write its outputs; see the module docstring.

    The status says ``finished`` only once every output exists: the summary is stored
    first, then the report is written, then the status set. A run stopped in between
    is completed by ``--resume`` without searching or training again. ``prepare`` runs
    once the run is checked and its store opened, before any work (e.g. torch threads).
    """
    log = log or print
    run_dir = Path(config.runs_dir) / config.run_name
    checked = False
    if not resume:
        config = with_planned_proxy(config)
        if config.target_latency_reference is not None:
            check_config(config)  # bad input is refused before the measurement
            _refuse_taken(run_dir)
            config, checked = with_measured_latency_target(config, log), True
    store = _open_run(config, run_dir, resume, checked=checked)
    resume_hint = f"continue with `edgenas search --resume {run_dir}`"
    try:
        if prepare is not None:
            prepare()
        if resume:
            store.set_status("running")  # an interrupted or failed run runs again
            store.append_event("run_resumed", {})
            summary = store.run_info().summary
            if summary and summary.get("best"):
                # Stopped after its results were stored: only outputs are missing.
                log("the search and final training had finished; writing the missing outputs")
                return _complete_outputs(store, run_dir, summary)
        else:
            targets = ", ".join(f"{k} <= {v:g}" for k, v in config.targets().items())
            log(
                f"run {run_dir}: task {config.task}, data {config.data or 'built-in demo'}, "
                f"device {config.device}, targets {targets}, a {config.alpha}"
            )
            # Marks when the run's time starts counting (resume: edgenas.search.budget).
            store.append_event("run_started", {})
        summary = _search_and_finalise(config, store, run_dir, log, resume)
        return _complete_outputs(store, run_dir, summary)
    except KeyboardInterrupt as err:
        store.record_stop(err)
        raise Interrupted.after(err, resume_hint) from None
    except StoreWriteError as err:
        store.record_stop(err)
        raise UserError(f"{err}; {err.remedy}, then {resume_hint}") from None
    except Exception as err:
        store.record_stop(err)
        line = environment_error_line(err, resume_hint) if isinstance(err, OSError) else None
        if line is None:
            raise
        # A full disk or a permission while writing an output: the run resumes once fixed.
        raise UserError(line) from None
    finally:
        store.close()


def _search_and_finalise(
    config: SearchConfig, store: RunStore, run_dir: Path, log: Log, resume: bool
) -> dict:
    """The search, the final model and the baselines; returns the run's summary (stored
    with the run before this returns)."""
    started = time.perf_counter()
    evaluator = session = None
    plan = budget_plan(config)
    search_deadline = None
    if plan is not None:
        spent = spent_before([(e.kind, e.ts) for e in store.events()]) if resume else 0.0
        search_deadline = started + plan.search - spent
        proxy = (
            f"{config.train_seconds:g} s" if config.train_seconds else f"{config.train_steps} steps"
        )
        resumed = f" ({spent:.0f} s spent before this resume)" if spent else ""
        log(f"{plan.describe()}; proxy training {proxy} per candidate{resumed}")
    try:
        chosen_alpha, grid_rows = config.alpha, []
        if config.alpha_grid:
            chosen_alpha, grid_rows = _alpha_grid(config, run_dir, log)
        main_config = dataclasses.replace(config, alpha=chosen_alpha, subsample=1.0, alpha_grid=())
        from edgenas.search.evaluation import CandidateEvaluator, loss_history

        evaluator = CandidateEvaluator(main_config)
        log(_clock_line(main_config))
        session = _open_session(main_config, evaluator)
        search = _search(main_config, store, log, evaluator, search_deadline, session)
        ranked = sorted(
            (e for e in search.trained.values() if math.isfinite(e.grade)), key=lambda e: -e.grade
        )  # failed trainings (grade -inf) are counted apart
        failed = len(search.trained) - len(ranked)
        if not ranked:
            raise UserError(
                f"every candidate's training failed (lost or stuck Ray tasks); the events "
                f"in {run_dir / 'run.sqlite'} say why (edgenas monitor), then resume"
            )
        best = ranked[0]
        final_start = time.perf_counter()
        model, deployed, final = _final_model(main_config, evaluator, best, run_dir, log)
        onnx_path, latency_ms = Path(deployed.onnx_path), deployed.latency_ms
        paired = _paired_with_reference(main_config, evaluator, best.genotype, log)
        phases = {**search.phase_seconds, "final_model": time.perf_counter() - final_start}
        from edgenas.baselines import samples_and_baselines
        from edgenas.training import Budget

        baselines_start = time.perf_counter()
        baselines = samples_and_baselines(
            model,
            evaluator.task,
            *evaluator.final_data(),
            Budget(seconds=main_config.final_seconds, steps=main_config.final_steps),
            main_config.final_train_config(),
            evaluator.deploy_shape,
            main_config.device,
            run_dir=run_dir,
            names=main_config.baselines,
            threads=main_config.threads,
            profiler=evaluator.latency.profile,
            log=log,
        )
        phases["samples_and_baselines"] = time.perf_counter() - baselines_start
        resources = evaluator.static_resources(best.genotype, model)
        from edgenas.training import clock_in_effect

        summary = {
            "alpha": chosen_alpha,
            "alpha_grid": grid_rows,
            "best": best.genotype,
            "best_candidate_id": best.candidate.id,
            "best_grade": best.grade,
            "best_proxy_accuracy": best.candidate.accuracy,
            "final_metrics": final.metrics,
            "final_iou_per_class": _class_iou(evaluator, model),
            "final_accuracy": final.normalised_accuracy,
            "final_loss_history": loss_history(final),  # the monitor's loss curve
            # What the seconds budgets counted (the log says it at the start).
            "train_clocks": {
                "candidates": clock_in_effect(main_config.train_config()),
                "final": final.clock,
            },
            "final_params": int(resources["params"]),
            "final_macs": int(resources["flops"]),
            "onnx": str(onnx_path),
            "latency_ms": latency_ms,
            "device": config.device,
            "deployed": deployed.to_dict(),
            "paired_latency": paired,
            "samples": "samples.png",
            "baselines": baselines,
            "top_k": [e.genotype for e in ranked[: config.top_k]],
            "pareto": [e.genotype for e in search.pareto()],
            "trained": len(ranked),
            "failed": failed,
            "phase_seconds": phases,
            "seconds": time.perf_counter() - started,
            "budget_seconds": config.budget_seconds,
        }
        # The summary first: once it is stored, a resume only completes the outputs.
        store.set_summary(summary)
        store.append_event("run_finished", summary)
        return summary
    finally:
        if evaluator is not None:
            evaluator.close()
        if session is not None:
            session.close()


def _complete_outputs(store: RunStore, run_dir: Path, summary: dict) -> SearchOutcome:
    """Write the report of a run whose summary is stored, then mark it finished."""
    from edgenas.finalise import fixed_size_text, summary_latency_text
    from edgenas.search.report import write_report

    if not store.events(kinds=("run_finished",)):
        store.append_event("run_finished", summary)
    report_path = write_report(run_dir, status="finished")
    store.set_status("finished")
    config = SearchConfig.from_dict(store.run_info().config)
    onnx = summary.get("onnx")
    return SearchOutcome(
        run_dir=run_dir,
        best_genotype=summary["best"],
        best_grade=float(summary["best_grade"]),
        best_accuracy=float(summary.get("best_proxy_accuracy") or 0.0),
        onnx_path=Path(onnx) if onnx else None,
        latency_ms=summary.get("latency_ms"),
        latency_text=summary_latency_text(summary, config.deploy_input, config.device),
        fixed_size_text=fixed_size_text(summary.get("deployed") or {}),
        report_path=report_path,
        alpha=float(summary["alpha"]),
    )


def resume_search(
    run_dir: str | Path,
    log: Log | None = None,
    prepare: Callable[[], None] | None = None,
    *,
    ray_address: str | None = None,
) -> SearchOutcome:
    """Continue a run from its store (deterministic replay, see :mod:`recorder`).

    ``run_dir`` may also name the store file itself (``runs/X/run.sqlite``). A store
    this edgenas cannot continue (another kind of run, a newer or older search loop, a
    config it cannot read) is refused in one line before anything is written.
    ``ray_address``: the Ray cluster to continue on, when it is not the stored one.
    """
    run_dir = Path(run_dir)
    if run_dir.is_file() and run_dir.suffix == ".sqlite":
        run_dir = run_dir.parent
    try:
        info = RunStore.read_info(run_dir)
    except StoreError as err:
        raise UserError(str(err)) from None
    if info.kind != RUN_KIND:
        raise UserError(f"{run_dir} is a {info.kind} run, not an LDP search")
    if info.status == "finished":
        raise UserError(f"{run_dir} has finished; its report is {run_dir / 'report.md'}")
    config = stored_config(run_dir, info.config)
    if config.search_version != SEARCH_VERSION:
        raise UserError(
            f"{run_dir} was stored by an edgenas whose search loop differs (version "
            f"{config.search_version}, this one {SEARCH_VERSION}) and would not replay; "
            "its store stays readable (edgenas monitor), start a new run to search again"
        )
    config = dataclasses.replace(config, runs_dir=str(run_dir.parent), run_name=run_dir.name)
    if ray_address is not None:  # the cluster may have moved since (a restarted head)
        config = dataclasses.replace(config, ray_address=ray_address)
    return run_search(config, log, resume=True, prepare=prepare)


def stored_config(run_dir: Path, data: object) -> SearchConfig:
    """The :class:`SearchConfig` stored with a run; a config this edgenas cannot read
    (edited by hand, written by another version) is a one-line UserError."""
    if not isinstance(data, dict):
        raise UserError(
            f"{run_dir}: the stored config is not a JSON object; the run cannot continue"
        )
    known = {f.name for f in dataclasses.fields(SearchConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(
            f"{run_dir}: the stored config has settings this edgenas does not know "
            f"({', '.join(unknown)}); it was written by another version: resume it with that one"
        )
    defaults = SearchConfig()
    for name, value in data.items():
        expected = getattr(defaults, name)
        if not _same_kind(value, expected):
            raise UserError(
                f"{run_dir}: the stored config's {name} is {value!r}, not a "
                f"{type(expected).__name__}; the run cannot continue"
            )
    try:
        config = SearchConfig.from_dict(data)
        config.validate()
    except (TypeError, ValueError) as err:
        raise UserError(f"{run_dir}: the stored config is not usable ({err})") from None
    return config


def _same_kind(value: object, default: object) -> bool:
    """Whether a stored config value has the type of the field's default (None defaults
    and None values pass: the field is optional)."""
    if value is None or default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (tuple, list)):
        return isinstance(value, (tuple, list))
    return isinstance(value, type(default))
