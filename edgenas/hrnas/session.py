"""One ``edgenas shrink`` run: data, supernet, costs, shrinking, store, final model, report.

Kept apart from the command module so that benchmarks and other programs run the same
path from Python (``ShrinkSession(task="seg", ...).run()``); the dataclasses
(:class:`ShrinkSession`, :class:`~edgenas.hrnas.config.ShrinkConfig`,
:class:`~edgenas.hrnas.config.SupernetConfig`) own every default, and the command line
takes its defaults from them.

A run writes into ``run_dir``:

- ``run.sqlite``: the run store (kind ``hrnas-shrink``): the resolved settings, one
  ``shrink_step`` event per step, the extracted candidate, the summary (with the
  deployed model under ``"deployed"``);
- ``shrink_state.pt``: the resumable state (:func:`edgenas.hrnas.shrink.run_shrink`),
  saved at every shrink step, epoch end and on Ctrl-C, removed when the run finishes;
  :meth:`ShrinkSession.from_run` + ``run(resume=True)`` continue from it;
- ``best.pt``: the extracted network in the edgenas checkpoint format
  (:mod:`edgenas.checkpoint`, ``edgenas export --run``, ``eval --checkpoint``,
  ``profile``);
- ``best.onnx`` and ``best.latency.json``: the shared final step
  (:func:`edgenas.finalise.finalise_model`): ONNX with dynamic height and width,
  verified on a real validation image at two sizes, profiled at the deploy size
  (with ``best.static.onnx``, the same network at the deploy size only);
- ``report.md`` and its figures (:mod:`edgenas.hrnas.report`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgenas.errors import UserError
from edgenas.hrnas.config import ShrinkConfig, SupernetConfig

DEFAULT_INPUT = (64, 80)  # training input of dense tasks
SR_DEFAULT_INPUT = (48, 48)  # super-resolution: LR training patch
RUNS_DIR = "runs"
RUN_KIND = "hrnas-shrink"
STATE_FILE = "shrink_state.pt"
COSTS = ("flops", "latency")
_BUILT_IN = "<built-in>"  # how settings and checkpoints name the built-in demo data


def default_input(task_name: str) -> tuple[int, int]:
    """The training input (H, W) of a task when none is given."""
    return SR_DEFAULT_INPUT if task_name == "sr" else DEFAULT_INPUT


def default_run_name(task_name: str) -> str:
    """``hrnas-TASK-DATE-TIME``."""
    return f"hrnas-{task_name}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"


@dataclass
class ShrinkSession:
    """Everything one shrinking run needs; :meth:`run` does it.

    ``task`` and ``device`` may be given by name. ``input_hw`` defaults to
    :func:`default_input`, ``deploy_hw`` (where the final model's latency is measured)
    to ``input_hw``. ``threads`` are threads on the latency device (None: the device's
    default); ``torch_threads`` those of the training process.
    """

    task: Any  # a Task or its name
    config: SupernetConfig = field(default_factory=SupernetConfig)
    device: Any = "cpu"  # a DeviceEntry or its name
    cost: str = "flops"
    # With cost "latency": where the per-unit slopes come from (edgenas.hrnas.config.
    # LATENCY_MODELS): timed on the device, or the device's calibrated kernel predictor.
    latency_model: str = "measured"
    shrink: ShrinkConfig = field(default_factory=ShrinkConfig)
    data: str | None = None
    val_data: str | None = None
    fmt: str | None = None
    input_hw: tuple[int, int] | None = None
    deploy_hw: tuple[int, int] | None = None
    scale: int = 2
    threads: int | None = None
    torch_threads: int = 1
    # Reference models trained for the shrink's training time beside the final model
    # (None: the task's defaults, see edgenas.baselines; empty: none).
    baselines: tuple[str, ...] | None = None
    devices_file: str | None = None
    backend_options: dict = field(default_factory=dict)
    run_dir: Path = Path(RUNS_DIR) / "hrnas"
    quiet: bool = False
    log: Any = print

    def __post_init__(self) -> None:
        from edgenas.tasks import get_task

        if isinstance(self.task, str):
            self.task = get_task(self.task)
        if isinstance(self.device, str):
            from edgenas.devices.catalog import load_catalog

            self.device = load_catalog(self.devices_file).get(self.device)
        if self.cost not in COSTS:
            raise UserError(f"cost must be one of {', '.join(COSTS)}, got {self.cost!r}")
        for name in ("threads", "torch_threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"{name.replace('_', ' ')} must be at least 1, got {value}")
        self._check_latency_model()
        from edgenas.baselines import resolve_baselines

        if self.baselines is not None:
            self.baselines = tuple(self.baselines)
        resolve_baselines(self.task.name, self.baselines)  # bad names fail before any work
        self.input_hw = tuple(self.input_hw or default_input(self.task.name))
        self.deploy_hw = tuple(self.deploy_hw or self.input_hw)
        self.run_dir = Path(self.run_dir)

    def _check_latency_model(self) -> None:
        """A kernel-predicted latency cost needs a latency cost, a host runtime and the
        device's kernel calibration; each missing piece is a one-line error."""
        from edgenas.hrnas.config import LATENCY_MODELS

        if self.latency_model not in LATENCY_MODELS:
            raise UserError(
                f"latency model must be one of {', '.join(LATENCY_MODELS)}, "
                f"got {self.latency_model!r}"
            )
        if self.latency_model == "measured":
            return
        if self.cost != "latency":
            raise UserError(
                "--latency-model kernels applies only to --cost latency: add --cost latency"
            )
        measurer = self._measurer()
        try:
            if measurer.kernel_backend is None:
                raise UserError(
                    f"--latency-model kernels needs a host runtime; {self.device.name} runs "
                    f"through {self.device.backend}: use --latency-model measured"
                )
            if not measurer.uses_kernels:
                threads = f" --threads {measurer.threads}" if measurer.threads else ""
                name = self.device.name
                label = f"{name} ({measurer.threads} thread(s))" if measurer.threads else name
                raise UserError(
                    f"{label} has no kernel calibration, which --latency-model kernels needs: run "
                    f"`edgenas devices calibrate {self.device.name}{threads}` first (about 4 "
                    "minutes; a new run may use --latency-model measured instead)"
                )
        finally:
            measurer.close()

    # ------------------------------------------------------------------------------
    def settings(self) -> dict:
        """The fully resolved configuration stored with the run (:meth:`from_settings`
        reads it back; the report and the monitor read its keys)."""
        from edgenas.hrnas.shrink import learning_rate

        s = self.shrink
        return {
            "method": "hrnas-progressive-shrinking",
            "task": self.task.name,
            "data": self.data or _BUILT_IN,
            "val_data": self.val_data,
            "format": self.fmt,
            "input": list(self.input_hw),
            "deploy_input": list(self.deploy_hw),
            "scale": self.scale,
            "supernet": self.config.to_dict(),
            "cost": self.cost,
            "latency_model": self.latency_model,
            "device": self.device.name,
            "devices_file": self.devices_file,
            "backend_options": dict(self.backend_options),
            "threads": self.threads,
            "torch_threads": self.torch_threads,
            "baselines": None if self.baselines is None else list(self.baselines),
            "lambda": s.lam,
            "epsilon": s.epsilon,
            "align": s.align,
            "epochs": s.epochs,
            "seconds": s.seconds,
            "shrink_every": s.shrink_every,
            "warmup_epochs": s.warmup_epochs,
            "alpha_lr_mult": s.alpha_lr_mult,
            "recalibrate_batches": s.recalibrate_batches,
            "batch_size": s.batch_size,
            "lr": learning_rate(s, self.task.name),
            "seed": s.seed,
            "workers": s.workers,
            "augment": s.augment,
            "eval_batches": s.eval_batches,
            "accelerator": s.accelerator,
            "optimizer": s.optimizer,
            "clock": s.clock,
            "target_flops": s.target_flops,
            "target_latency_ms": s.target_latency_ms,
        }

    @classmethod
    def from_settings(cls, settings: dict, run_dir: str | Path, **overrides) -> ShrinkSession:
        """The session whose :meth:`settings` are ``settings``, writing to ``run_dir``."""
        keys = {"lambda": "lam"}
        shrink_fields = {f.name for f in dataclasses.fields(ShrinkConfig)}
        shrink = {keys.get(k, k): v for k, v in settings.items() if keys.get(k, k) in shrink_fields}
        shrink.setdefault("clock", "wall")  # runs stored before budgets could count CPU time
        data = settings.get("data")
        values = dict(
            task=settings["task"],
            config=SupernetConfig.from_dict(settings["supernet"]),
            device=settings["device"],
            cost=settings["cost"],
            latency_model=settings.get("latency_model", "measured"),  # older runs: measured
            shrink=ShrinkConfig(**shrink),
            data=None if data in (None, _BUILT_IN, "built-in") else data,
            val_data=settings.get("val_data"),
            fmt=settings.get("format"),
            input_hw=tuple(settings["input"]),
            deploy_hw=tuple(settings.get("deploy_input") or settings["input"]),
            scale=settings.get("scale", 2),
            threads=settings.get("threads"),
            torch_threads=settings.get("torch_threads") or 1,
            baselines=settings.get("baselines"),
            devices_file=settings.get("devices_file"),
            backend_options=dict(settings.get("backend_options") or {}),
            run_dir=Path(run_dir),
        )
        return cls(**{**values, **overrides})

    @classmethod
    def from_run(cls, run_dir: str | Path, **overrides) -> ShrinkSession:
        """The session of an unfinished shrink run, to continue with ``run(resume=True)``.

        A folder that is not a shrink run, a finished run and a run that stopped before
        it saved any state are one-line :class:`UserError` s. A run stopped after its
        final model was stored needs no state: its resume writes the missing outputs.
        """
        from edgenas.store import RunStore, StoreError, store_path

        run_dir = Path(run_dir)
        if not store_path(run_dir).is_file():
            raise UserError(f"{run_dir} is not a shrink run (no {store_path(run_dir).name})")
        try:
            info = RunStore.read_info(run_dir)  # leaves no file behind if refused
        except StoreError as err:
            raise UserError(str(err)) from None
        if info.kind != RUN_KIND:
            raise UserError(f"{run_dir} is a {info.kind} run, not a shrink run")
        if info.status == "finished":
            raise UserError(f"{run_dir} has finished; its report is {run_dir / 'report.md'}")
        final_model_stored = bool((info.summary or {}).get("architecture"))
        if not (run_dir / STATE_FILE).is_file() and not final_model_stored:
            raise UserError(
                f"{run_dir} has no saved state to resume (it stopped before its first "
                "shrink step); start it again under a new --name"
            )
        try:
            return cls.from_settings(info.config, run_dir, **overrides)
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"{run_dir} has settings this version cannot read ({err})") from None

    # ------------------------------------------------------------------------------
    def _open_data(self):
        from edgenas.data.open import open_train_val

        sr = self.task.name == "sr"
        size, patch = (None, self.input_hw[0]) if sr else (self.input_hw, 48)
        return open_train_val(
            self.task.name, self.data, self.val_data, fmt=self.fmt, size=size,
            scale=self.scale, patch=patch, seed=self.shrink.seed,
        )  # fmt: skip

    def _cost_functions(self, measurer, shape):
        """``(cost_fn, measure_fn, blocks_ms_fn)`` of :func:`run_shrink` for ``self.cost``."""
        from edgenas.hrnas.costs import LatencyCoster, blocks_latency, flops_costs

        if self.cost == "latency":
            coster = LatencyCoster(measurer, shape, model=self.latency_model)

            def measure_fn(m):
                return measurer.measure_network(m.eval(), shape)

            return coster.costs, measure_fn, lambda m: blocks_latency(coster, m)
        return (lambda m: flops_costs(m, shape)), None, None

    def run(self, *, resume: bool = False) -> int:
        """Shrink, extract, finalise and report; ``resume=True`` continues the run in
        ``run_dir`` from its saved state (see :meth:`from_run`). Returns 0.

        The status says ``finished`` only once every output exists: the summary is
        stored with the final model, then the report is written, then the status set,
        then the state file removed; a run stopped in between is completed by
        ``--resume`` without training again. Ctrl-C and SIGTERM mark the run
        ``interrupted`` and raise :class:`~edgenas.errors.Interrupted` with the
        ``--resume`` command. A new run stopped before it saved anything to resume is
        removed again: nothing is left behind that would block its name.
        """
        from edgenas.accelerator import resolve_accelerator
        from edgenas.hrnas.shrink import load_shrink_state
        from edgenas.tasks.runner import set_threads

        set_threads(self.torch_threads)
        resolve_accelerator(self.shrink.accelerator, "fp32")  # no GPU there: before any work
        if resume and self._stored_summary() is not None:
            return self._complete_stopped_run()
        # What this resume continues from, to check again once it holds the run's lock
        # (another process may have moved the run on while the data were opened).
        self._state_stamp = _file_stamp(self.run_dir / STATE_FILE)
        state = load_shrink_state(self.run_dir / STATE_FILE) if resume else None
        train_data, val_data = self._open_data()
        # An unreachable or already met target is refused before anything is written.
        self._target_points = self._check_target(train_data.info) if state is None else []
        created = not self.run_dir.exists()
        model, store = self._open_run(state, train_data.info)
        try:
            summary, written = self._shrink_and_finish(store, model, state, train_data, val_data)
        except BaseException as err:
            reported, resumable = self._stopped(store, err)
            store.close()
            if created and not resumable:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            raise reported from None
        store.close()
        self._log_summary(summary, written)
        return 0

    def _measurer(self):
        from edgenas.latency_table import Measurer

        threads = self.threads if self.threads is not None else self.device.threads
        return Measurer(self.device, threads=threads, backend_options=self.backend_options)

    def _target_cost(self, measurer):
        """The :class:`~edgenas.hrnas.target.TargetCost` of ``--target-flops`` /
        ``--target-latency`` at the deploy size (None without a target)."""
        from edgenas.hrnas.target import TargetCost

        if self.shrink.target is None:
            return None
        kind, value = self.shrink.target
        return TargetCost(
            kind, value, (1, 3, *self.deploy_hw), measurer if kind == "latency" else None
        )

    def _check_target(self, info) -> list:
        """Refuse a target the supernet already meets or cannot reach (one line, before
        the run folder exists); returns the latency points measured for it."""
        if self.shrink.target is None:
            return []
        import torch

        from edgenas.hrnas.supernet import HRSupernet
        from edgenas.hrnas.target import check_reachable

        torch.manual_seed(self.shrink.seed)  # the same supernet the run will build
        model = HRSupernet(self.config, self.task.name, **self.task.head_options(info))
        latency = self.shrink.target[0] == "latency"
        if latency:
            self.log(f"measuring the supernet and its smallest network on {self.device.name}")
        measurer = self._measurer() if latency else None
        try:
            cost = self._target_cost(measurer)
            full, least = check_reachable(cost, model, self.shrink.align)
        finally:
            if measurer is not None:
                measurer.close()
        self.log(
            f"target {cost.text(cost.target)} at 1x3x{'x'.join(map(str, self.deploy_hw))}: "
            f"supernet {cost.text(full)}, smallest reachable {cost.text(least)}; lambda "
            f"starts at {self.shrink.lam:g} and adapts"
        )
        return list(cost.points)

    def _shrink_and_finish(self, store, model, state, train_data, val_data):
        """Shrink (or continue shrinking), extract and finalise, then complete the
        outputs; returns ``(summary, the files the report wrote)``."""
        from edgenas.hrnas.arch import architecture
        from edgenas.hrnas.costs import count_hrnas_macs as count_macs
        from edgenas.hrnas.shrink import run_shrink
        from edgenas.latency_table import Measurer
        from edgenas.models.complexity import count_params

        info = train_data.info
        shape = (1, 3, *self.input_hw)
        log = self.log
        device_threads = self.threads if self.threads is not None else self.device.threads
        measurer = Measurer(
            self.device, threads=device_threads, backend_options=self.backend_options
        )
        try:
            if state is None:
                arch0 = architecture(model)
                n_tokens = sum(b.tokens for b in arch0.blocks)
                log(
                    f"task {self.task.name}  data {info.root} ({len(train_data)} train / "
                    f"{len(val_data)} val)  input {shape[2]}x{shape[3]}"
                )
                log(
                    f"supernet {len(arch0.blocks)} blocks, {arch0.units:,} units "
                    f"({arch0.units - n_tokens:,} channels, {n_tokens} tokens), "
                    f"params {count_params(model) / 1e6:.2f}M, "
                    f"MACs {count_macs(model, shape) / 1e6:.1f}M"
                )
                cost_detail = " (kernel predictor)" if self.latency_model == "kernels" else ""
                log(
                    f"cost {self.cost}{cost_detail}  device {self.device.name}  "
                    f"lambda {self.shrink.lam:g}  "
                    f"epsilon {self.shrink.epsilon:g}  align {self.shrink.align}  "
                    f"shrink every {self.shrink.shrink_every} epoch(s)"
                )
                log(f"training budget counts {self._clock_text()}")
                store.append_event("run_started", {"settings": self.settings()})
            else:
                done = len(state["result"]["steps"]) - 1
                log(
                    f"resuming {self.run_dir}: epoch {state['epoch']} "
                    f"(+{state['batch']} batches), {done} shrink step(s) done"
                )
                self._replay_missing_steps(store, state)
            if self.cost == "latency" and self.latency_model == "kernels":
                log("latency slopes of the units from the device's kernel predictor")
            elif self.cost == "latency":
                log("measuring latency slopes of the units on the device (cached in its table)")
            cost_fn, measure_fn, blocks_ms_fn = self._cost_functions(measurer, shape)
            target = self._target_cost(measurer)
            if target is not None:
                target.points = list(getattr(self, "_target_points", []))

            def on_step(step, _model):
                store.append_event("shrink_step", step.to_dict(), iteration=step.epoch)
                self._log_step(step)

            with _Bar(not self.quiet) as bar:
                result = run_shrink(
                    model,
                    self.task,
                    train_data,
                    val_data,
                    self.shrink,
                    input_shape=shape,
                    cost_fn=cost_fn,
                    measure_fn=measure_fn,
                    blocks_ms_fn=blocks_ms_fn,
                    on_step=on_step,
                    progress=bar.update,
                    state_path=self.run_dir / STATE_FILE,
                    resume=state,
                    target=target,
                )
            summary = self._finish(store, model, result, train_data, val_data)
        finally:
            measurer.close()
        return summary, self._complete_outputs(store, summary)

    def _complete_outputs(self, store, summary: dict) -> list[Path]:
        """The last steps of a run whose summary is stored: the ``run_finished`` event,
        the report (written as finished), the status, and then the state file goes
        (best.pt holds the network). Returns the files the report wrote."""
        from edgenas.hrnas.report import write_report

        if not store.events(kinds=("run_finished",)):
            store.append_event("run_finished", summary)
        written = write_report(self.run_dir, status="finished")
        store.set_status("finished")
        (self.run_dir / STATE_FILE).unlink(missing_ok=True)
        return written

    def _stored_summary(self) -> dict | None:
        """The summary of a run stopped after its final model was stored (only the
        report or the status is missing), else None."""
        from edgenas.store import RunStore, StoreError

        try:
            summary = RunStore.read_info(self.run_dir).summary
        except StoreError as err:
            raise UserError(str(err)) from None
        return summary if summary and summary.get("architecture") else None

    def _complete_stopped_run(self) -> int:
        """``--resume`` of a run stopped after its final model: write what is missing."""
        from edgenas.store import RunStore, StoreError

        try:
            store = RunStore.open(self.run_dir)
        except StoreError as err:
            raise UserError(str(err)) from None
        info = store.run_info()
        if info.status == "finished":  # finished by another process meanwhile
            store.close()
            raise UserError(f"{self.run_dir} has finished; its report is in that folder")
        try:
            summary = info.summary
            self.log("the shrinking and the final model had finished; writing the missing outputs")
            store.append_event("run_resumed", {"outputs_only": True})
            written = self._complete_outputs(store, summary)
        except BaseException as err:
            reported, _ = self._stopped(store, err)
            store.close()
            raise reported from None
        store.close()
        self._log_summary(summary, written)
        return 0

    def _stopped(self, store, err: BaseException) -> tuple[BaseException, bool]:
        """Record in the store why the run stopped (``interrupted`` or ``failed``, unless
        the store cannot take the write: the error reported matters more). Returns the
        exception to report and whether the run left anything ``--resume`` continues:
        Ctrl-C and SIGTERM become :class:`Interrupted` with the ``--resume`` command (or
        the note that nothing was saved), a full disk under the store one line with it."""
        from edgenas.checkpoint import CheckpointWriteError
        from edgenas.errors import Interrupted
        from edgenas.store import StoreError, StoreWriteError

        summary = None
        with contextlib.suppress(StoreError):
            summary = store.run_info().summary
        resumable = (self.run_dir / STATE_FILE).is_file() or bool(
            (summary or {}).get("architecture")
        )
        interrupted = isinstance(err, KeyboardInterrupt)
        store.record_stop(err)
        resume = f"continue with `edgenas shrink --resume {self.run_dir}`"
        if interrupted:
            hint = (
                resume
                if resumable
                else "stopped before the first shrink step, so nothing was saved; run the "
                "command again to start"
            )
            return Interrupted.after(err, hint), resumable
        if isinstance(err, StoreWriteError):
            return UserError(f"{err}; {err.remedy}, then {resume}"), resumable
        if isinstance(err, CheckpointWriteError) and resumable:
            return UserError(
                f"cannot write {err.path}: {err.reason}; free space, then {resume}"
            ), resumable
        return err, resumable

    def _open_run(self, state: dict | None, info):
        """``(model, store)``: a new supernet and store, or the state's shrunk network
        and the existing store (marked running again). The store is opened for writing
        (this process holds the run's lock until it closes it)."""
        import torch

        from edgenas.hrnas.arch import build_architecture
        from edgenas.hrnas.supernet import HRSupernet
        from edgenas.store import RunStore, StoreError

        if state is None:
            torch.manual_seed(self.shrink.seed)
            model = HRSupernet(self.config, self.task.name, **self.task.head_options(info))
            try:
                store = RunStore.create(
                    self.run_dir, name=self.run_dir.name, kind=RUN_KIND, config=self.settings()
                )
            except StoreError as err:
                raise UserError(str(err)) from None
            return model, store
        try:
            model = build_architecture(
                state["architecture"],
                SupernetConfig.from_dict(state["supernet"]),
                state["task"],
                **state["options"],
            )
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"cannot rebuild the network of {STATE_FILE}: {err}") from None
        try:
            store = RunStore.open(self.run_dir)
        except StoreError as err:
            raise UserError(str(err)) from None
        try:
            if store.run_info().status == "finished" or (
                _file_stamp(self.run_dir / STATE_FILE) != self._state_stamp
            ):
                raise UserError(
                    f"{self.run_dir} was moved on by another process while this resume "
                    f"started; see `edgenas monitor {self.run_dir}` and resume again if needed"
                )
            store.set_status("running")
            store.append_event("run_resumed", {"epoch": state["epoch"], "batch": state["batch"]})
        except BaseException:
            store.close()
            raise
        return model, store

    def _replay_missing_steps(self, store, state: dict) -> None:
        """Append the ``shrink_step`` events a state holds but the store lacks (an
        interruption between saving a step and storing it)."""
        stored = {e.payload.get("step") for e in store.events(kinds=("shrink_step",))}
        for step in state["result"]["steps"]:
            if step["step"] not in stored:
                store.append_event("shrink_step", step, iteration=step["epoch"])

    def _log_step(self, step) -> None:
        metric = self.task.primary_metric
        latency = ""
        if step.measured_ms is not None:
            latency = (
                f", latency {step.measured_ms:.2f} ms (predicted {step.predicted_ms:.2f}, "
                f"by unit slopes {step.slope_predicted_ms:.2f})"
            )
        self.log(
            f"step {step.step} (epoch {step.epoch}): removed {step.removed_total} units, "
            f"MACs {step.macs / 1e6:.1f}M, params {step.params / 1e6:.3f}M, "
            f"{metric} {step.metrics.get(metric, float('nan')):.4f}{latency}"
        )

    def _finish(self, store, model, result, train_data, val_data) -> dict:
        """Extract the network, write best.pt, finalise best.onnx, store the candidate
        and the summary; returns the summary."""
        from edgenas.checkpoint import CHECKPOINT_FORMAT, atomic_save, model_spec
        from edgenas.finalise import deploy_example, finalise_model
        from edgenas.hrnas.arch import architecture
        from edgenas.hrnas.costs import count_hrnas_macs as count_macs
        from edgenas.hrnas.extract import extract
        from edgenas.inference import class_iou, evaluate
        from edgenas.models.complexity import count_params

        # With a target the shrink steps removed exactly what the budget needed and the
        # network was measured as it is: extracting below epsilon as well would cut
        # units nobody measured (a 4 ms target ended at 3.45 ms and lost 0.16 mIoU).
        threshold = 0.0 if self.shrink.target is not None else self.shrink.epsilon
        static = extract(model, threshold, self.shrink.align)
        arch = architecture(static)
        shape, deploy_shape = (1, 3, *self.input_hw), (1, 3, *self.deploy_hw)
        metrics = evaluate(static, self.task, val_data)
        atomic_save(
            {
                "format": CHECKPOINT_FORMAT,
                "model_spec": model_spec(static),
                "model": {k: v.detach().cpu() for k, v in static.state_dict().items()},
                "epoch": result.epochs,
                "step": result.batches,
                "seconds": result.train_seconds,
                "config": {**dataclasses.asdict(self.shrink), "supernet": self.config.to_dict()},
                "metrics": metrics,
                "extra": {
                    "input": list(self.input_hw),
                    "deploy_input": list(self.deploy_hw),
                    "data": self.data or _BUILT_IN,
                    "format": train_data.info.format,
                    "val_data": self.val_data,
                    "run": self.run_dir.name,
                    "method": "hrnas-progressive-shrinking",
                },
            },
            self.run_dir / "best.pt",
        )
        t = time.perf_counter()
        deployed = finalise_model(
            static,
            self.run_dir,
            deploy_shape,
            deploy_example(val_data[0][0], deploy_shape),
            self.device,
            threads=self.threads,
            backend_options=self.backend_options,
            fixed_size=True,
            metadata={
                "hrnas_arch": arch.encode(),
                "run": self.run_dir.name,
                "checkpoint": "best.pt",
            },
            log=self.log,
        )
        export_s = time.perf_counter() - t
        # The model takes any input size, so it is checked on the validation images
        # themselves (whole images for super-resolution).
        onnx_metrics = evaluate(deployed.onnx_path, self.task, val_data)
        first, last = result.steps[0], result.steps[-1]
        candidate = dict(
            iteration=last.epoch,
            params=count_params(static),
            flops=count_macs(static, deploy_shape),
            latency_ms=deployed.latency_ms,
            latency_source=deployed.latency_source,
            device=deployed.device,
            metrics=metrics,
            accuracy=self.task.normalised_accuracy(metrics),
            timings={
                "train_seconds": result.train_seconds,
                "epoch_seconds_mean": sum(result.epoch_seconds) / max(1, len(result.epoch_seconds)),
                "export_seconds": export_s,
            },
            onnx_path=deployed.onnx_path,
        )
        existing = store.find_candidate(arch.encode())  # an earlier attempt's, on resume
        if existing is None:
            store.add_candidate(arch.encode(), origin="extracted", status="trained", **candidate)
        else:
            store.update_candidate(existing.id, status="trained", **candidate)
        summary = {
            "architecture": arch.encode(),
            "epochs": result.epochs,
            "batches": result.batches,
            "shrink_steps": len(result.steps) - 1,
            "train_seconds": result.train_seconds,
            "train_clock": self._clock_name(),  # what train_seconds counted
            "units_before": sum(sum(u.values()) for u in first.units.values()),
            "units_after": arch.units,
            "macs_before": first.macs,
            "macs_after": count_macs(static, shape),
            # The comparison with baselines counts MACs where latency is measured.
            "macs_deploy": count_macs(static, deploy_shape),
            "params_before": first.params,
            "params_after": count_params(static),
            "latency_ms": deployed.latency_ms,
            "device": deployed.device,
            "metrics": metrics,
            "iou_per_class": (
                class_iou(static, self.task, val_data) if self.task.name == "segmentation" else None
            ),
            "onnx_metrics": onnx_metrics,
            "onnx_max_rel_err": deployed.max_rel_err,
            "onnx": deployed.onnx_path,
            "checkpoint": str(self.run_dir / "best.pt"),
            "deployed": deployed.to_dict(),
            "target": self._target_summary(static, deployed),
        }
        summary.update(self._samples_and_baselines(static, result, train_data, val_data))
        # Stored now; the status says finished once the report exists too.
        store.set_summary(summary)
        return summary

    def _target_summary(self, static, deployed) -> dict | None:
        """The target and the final network's cost against it: MACs counted at the deploy
        size, or the latency ``finalise_model`` measured there on the device."""
        from edgenas.hrnas.costs import count_hrnas_macs

        if self.shrink.target is None:
            return None
        kind, value = self.shrink.target
        rechecked = None
        if kind == "flops":
            final, source = float(count_hrnas_macs(static, (1, 3, *self.deploy_hw))), "counted"
        else:
            final, source = _fastest_session_ms(deployed), deployed.latency_source
            if final > value:
                # As while shrinking: load only slows a measurement down, so a final
                # figure above the target is measured once more, the faster one kept
                # (a run that stopped at -6 % read +74 % in a busy moment).
                rechecked = self._remeasure_fastest_session(deployed)
                final = min(final, rechecked)
        return {
            "kind": kind,
            "value": value,
            "final": final,
            "source": source,
            "relative_error": final / value - 1.0,
            "rechecked_ms": rechecked,
            "statistic": "fastest session median" if kind == "latency" else None,
            "input_shape": [1, 3, *self.deploy_hw],
            "device": deployed.device if kind == "latency" else None,
        }

    def _remeasure_fastest_session(self, deployed) -> float:
        """``best.onnx`` profiled again on the device with the shrinking's protocol
        (:data:`edgenas.hrnas.target.TARGET_PROTOCOL`): its fastest session median."""
        from edgenas.devices.modelinfo import shapes_for_single_input
        from edgenas.devices.profile import profile_model
        from edgenas.hrnas.target import TARGET_PROTOCOL

        path = Path(deployed.onnx_path)
        self.log(f"measuring {path.name} again: its latency read above the target")
        result = profile_model(
            path,
            self.device,
            TARGET_PROTOCOL,
            threads=self.threads,
            input_shapes=shapes_for_single_input(path, tuple(deployed.input_shape)),
            backend_options=self.backend_options,
        )
        return float(min(s.median for s in result.sessions))

    def _clock_name(self) -> str:
        """``cpu`` or ``wall``: what the seconds budget (of the shrink and of its
        baselines) counts in this process."""
        from edgenas.tasks.recipes import recipe_config
        from edgenas.training import clock_in_effect

        config = recipe_config(
            self.task.name, accelerator=self.shrink.accelerator, clock=self.shrink.clock
        )
        return clock_in_effect(config)

    def _clock_text(self) -> str:
        """:meth:`_clock_name` in words, for the log."""
        if self._clock_name() == "cpu":
            return "CPU time (other processes' load takes no steps from it)"
        if self.shrink.clock == "cpu":
            return "wall time (the CPU clock needs one torch thread on the CPU)"
        return "wall time"

    def _samples_and_baselines(self, static, result, train_data, val_data) -> dict:
        """``samples.png`` of the final model, and the task's reference baselines trained
        for as long as the shrink trained, on the same data (the report compares them)."""
        from edgenas.baselines import samples_and_baselines
        from edgenas.tasks.recipes import recipe_config
        from edgenas.training import Budget

        config = recipe_config(
            self.task.name,
            seed=self.shrink.seed,
            workers=self.shrink.workers,
            accelerator=self.shrink.accelerator,
            clock=self.shrink.clock,  # the baselines get the seconds the shrink counted
        )
        rows = samples_and_baselines(
            static,
            self.task,
            train_data,
            val_data,
            Budget(seconds=max(1.0, result.train_seconds)),
            config,
            (1, 3, *self.deploy_hw),
            self.device,
            run_dir=self.run_dir,
            names=self.baselines,
            threads=self.threads,
            backend_options=self.backend_options,
            log=self.log,
        )
        return {"samples": "samples.png", "baselines": rows}

    def _log_summary(self, summary: dict, written) -> None:
        from edgenas.finalise import fixed_size_text, latency_label
        from edgenas.tasks.runner import format_metrics

        deployed = summary["deployed"]
        self.log(
            f"extracted: {summary['units_after']:,} of {summary['units_before']:,} units kept, "
            f"params {summary['params_after'] / 1e6:.3f}M (was "
            f"{summary['params_before'] / 1e6:.3f}M), MACs {summary['macs_after'] / 1e6:.1f}M "
            f"(was {summary['macs_before'] / 1e6:.1f}M)"
        )
        self.log(f"val (torch): {format_metrics(summary['metrics'])}")
        self.log(
            f"val (ONNX):  {format_metrics(summary['onnx_metrics'])}  "
            f"(export max rel. error {summary['onnx_max_rel_err']:.1e})"
        )
        label = latency_label(
            deployed["latency_ms"],
            deployed["input_shape"],
            deployed["device"],
            deployed["device_kind"],
        )
        self.log(f"latency: {label}")
        fixed = fixed_size_text(deployed)
        if fixed:
            self.log(f"fixed size {fixed}")
        target = summary.get("target")
        if target:
            self.log(f"target: {target_text(target)}")
        self.log(
            f"wrote {self.run_dir}/: run.sqlite, best.pt, best.onnx, best.latency.json, "
            + ("best.static.onnx, best.static.latency.json, " if deployed.get("fixed") else "")
            + ", ".join(p.name for p in written)
            + (", samples.png" if (self.run_dir / "samples.png").is_file() else "")
            + (", baselines/" if (self.run_dir / "baselines").is_dir() else "")
        )


class _Bar:
    """A rich progress bar for the shrinking loop (or nothing)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __enter__(self) -> _Bar:
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("[bold]shrink"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                transient=True,
            )
            self.progress.start()
            self.bar = self.progress.add_task("shrink", total=1.0, status="")
        return self

    def update(self, fraction: float, status: str) -> None:
        if self.enabled:
            self.progress.update(self.bar, completed=fraction, status=status)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.progress.stop()


def _file_stamp(path: Path) -> tuple[int, int] | None:
    """``(size, modification time)`` of a file, None when it does not exist."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_size, info.st_mtime_ns


def _fastest_session_ms(deployed) -> float:
    """The final profile's fastest session median: the statistic the shrinking stopped
    on (:meth:`edgenas.hrnas.target.TargetCost.measure`; load only slows a session down),
    so that the target is judged the way it was approached. The headline latency (the
    median of the session medians) is reported beside it."""
    try:
        data = json.loads(Path(deployed.latency_path).read_text())
        return float(min(data["timings"]["session_medians_ms"]))
    except (OSError, ValueError, KeyError, TypeError):
        return float(deployed.latency_ms)


def target_text(target: dict) -> str:
    """``5.00 ms, final 4.83 ms measured on cpu at 1x3x64x80 (-3.4%)``."""
    if target["kind"] == "latency":
        value, final = f"{target['value']:.2f} ms", f"{target['final']:.2f} ms"
        how = f"{target['source']} on {target['device']}"
        if target.get("statistic"):
            how += f", {target['statistic']}"
        if target.get("rechecked_ms") is not None:
            how += " (the faster of two profiles)"
    else:
        value, final = f"{target['value'] / 1e6:.1f}M MACs", f"{target['final'] / 1e6:.1f}M"
        how = "counted"
    size = "x".join(map(str, target["input_shape"]))
    return f"{value}, final {final} {how} at {size} ({100 * target['relative_error']:+.1f}%)"
