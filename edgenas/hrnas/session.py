"""One ``edgenas shrink`` run: data, supernet, costs, shrinking, store, extraction, report.

Kept apart from the command module so that benchmarks can run the same path from
Python (``ShrinkSession(...).run()``).
"""

from __future__ import annotations

import argparse
import datetime
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgenas.errors import UserError
from edgenas.hrnas.shrink import ShrinkConfig
from edgenas.hrnas.supernet import SupernetConfig

DEFAULT_INPUT = (64, 80)
DEFAULT_EPOCHS = 5


@dataclass
class ShrinkSession:
    task: Any
    config: SupernetConfig
    device: Any  # DeviceEntry
    cost: str = "flops"
    shrink: ShrinkConfig = field(default_factory=lambda: ShrinkConfig(epochs=DEFAULT_EPOCHS))
    data: str | None = None
    val_data: str | None = None
    fmt: str | None = None
    input_hw: tuple[int, int] = DEFAULT_INPUT
    scale: int = 2
    threads: int | None = None
    backend_options: dict = field(default_factory=dict)
    run_dir: Path = Path("runs/hrnas")
    quiet: bool = False
    log: Any = print

    @classmethod
    def from_args(cls, args: argparse.Namespace, task, config, entry) -> ShrinkSession:
        from edgenas.tasks.runner import parse_size

        epochs, seconds = args.epochs, args.seconds
        if epochs is None and seconds is None:
            epochs = DEFAULT_EPOCHS
        default = (48, 48) if task.name == "sr" else DEFAULT_INPUT
        name = args.name or (
            f"hrnas-{task.name}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
        )
        run_dir = Path(args.runs_dir) / name
        if (run_dir / "run.sqlite").exists():
            raise UserError(f"run {run_dir} already exists; choose another --name")
        options = {"serial": args.serial} if entry.backend == "adb" and args.serial else {}
        return cls(
            task=task,
            config=config,
            device=entry,
            cost=args.cost,
            shrink=ShrinkConfig(
                lam=args.lam,
                epsilon=args.epsilon,
                align=args.align,
                epochs=epochs,
                seconds=seconds,
                shrink_every=args.shrink_every,
                warmup_epochs=args.warmup,
                alpha_lr_mult=args.alpha_lr_mult,
                batch_size=args.batch_size,
                lr=args.lr,
                seed=args.seed,
                workers=args.workers,
                accelerator=args.accelerator,
            ),
            data=args.data,
            val_data=args.val_data,
            fmt=args.fmt,
            input_hw=parse_size(args.input, default),
            scale=args.scale,
            threads=args.threads,
            backend_options=options,
            run_dir=run_dir,
            quiet=args.quiet,
        )

    # ------------------------------------------------------------------------------
    def _open_data(self):
        from edgenas.tasks.runner import open_for_cli

        sr = self.task.name == "sr"
        size, patch = (None, self.input_hw[0]) if sr else (self.input_hw, 48)
        common = dict(fmt=self.fmt, size=size, scale=self.scale, patch=patch, seed=self.shrink.seed)
        if self.val_data:
            train = open_for_cli(self.task, self.data, "all", train=True, **common)
            val = open_for_cli(self.task, self.val_data, "all", train=False, **common)
        else:
            train = open_for_cli(self.task, self.data, "train", train=True, **common)
            val = open_for_cli(self.task, self.data, "val", train=False, **common)
        if len(train) == 0:
            raise UserError(f"no training images in {self.data}")
        return train, val

    def settings(self) -> dict:
        """The fully resolved configuration stored with the run."""
        return {
            "method": "hrnas-progressive-shrinking",
            "task": self.task.name,
            "data": self.data or "built-in",
            "val_data": self.val_data,
            "input": list(self.input_hw),
            "supernet": self.config.to_dict(),
            "cost": self.cost,
            "device": self.device.name,
            "threads": self.threads,
            # the run store's keys (report and monitor read them)
            "lambda": self.shrink.lam,
            "epsilon": self.shrink.epsilon,
            "align": self.shrink.align,
            "epochs": self.shrink.epochs,
            "seconds": self.shrink.seconds,
            "shrink_every": self.shrink.shrink_every,
            "warmup_epochs": self.shrink.warmup_epochs,
            "alpha_lr_mult": self.shrink.alpha_lr_mult,
            "batch_size": self.shrink.batch_size,
            "lr": self.shrink.lr,
            "seed": self.shrink.seed,
            "accelerator": self.shrink.accelerator,
        }

    def run(self) -> int:
        import torch

        from edgenas.export import export_onnx
        from edgenas.hrnas.arch import architecture
        from edgenas.hrnas.costs import LatencyCoster, blocks_latency, flops_costs
        from edgenas.hrnas.costs import count_hrnas_macs as count_macs
        from edgenas.hrnas.extract import extract
        from edgenas.hrnas.report import write_report
        from edgenas.hrnas.shrink import run_shrink
        from edgenas.hrnas.supernet import HRSupernet
        from edgenas.latency_table import Measurer
        from edgenas.models.complexity import count_params
        from edgenas.store import RunStore, StoreError
        from edgenas.tasks.runner import format_metrics, set_threads
        from edgenas.training import atomic_save, evaluate

        set_threads(self.threads if self.threads is not None else 1)
        train_data, val_data = self._open_data()
        info = train_data.info
        shape = (1, 3, *self.input_hw)
        torch.manual_seed(self.shrink.seed)
        model = HRSupernet(self.config, self.task.name, **self.task.head_options(info))
        try:
            store = RunStore.create(
                self.run_dir, name=self.run_dir.name, kind="hrnas-shrink", config=self.settings()
            )
        except StoreError as err:
            raise UserError(str(err)) from None
        measurer = Measurer(
            self.device, threads=self.device.threads, backend_options=self.backend_options
        )
        log = self.log
        try:
            arch0 = architecture(model)
            n_tokens = sum(b.tokens for b in arch0.blocks)
            log(
                f"task {self.task.name}  data {info.root} ({len(train_data)} train / "
                f"{len(val_data)} val)  input {shape[2]}x{shape[3]}"
            )
            log(
                f"supernet {len(arch0.blocks)} blocks, {arch0.units:,} units "
                f"({arch0.units - n_tokens:,} channels, {n_tokens} tokens), "
                f"params {count_params(model) / 1e6:.2f}M, MACs {count_macs(model, shape) / 1e6:.1f}M"
            )
            log(
                f"cost {self.cost}  device {self.device.name}  lambda {self.shrink.lam:g}  "
                f"epsilon {self.shrink.epsilon:g}  align {self.shrink.align}  shrink every {self.shrink.shrink_every} epoch(s)"
            )
            if self.cost == "latency":
                coster = LatencyCoster(measurer, shape)
                log("measuring latency slopes of the units on the device (cached in its table)")

                def cost_fn(m):
                    return coster.costs(m)

                def measure_fn(m):
                    return measurer.measure_network(m.eval(), shape)

                def blocks_ms_fn(m):
                    return blocks_latency(coster, m)
            else:

                def cost_fn(m):
                    return flops_costs(m, shape)

                measure_fn = blocks_ms_fn = None

            config = self.shrink
            store.append_event("run_started", {"settings": self.settings()})

            def on_step(step, _model):
                payload = step.to_dict()
                store.append_event("shrink_step", payload, iteration=step.epoch)
                metric = self.task.primary_metric
                latency = ""
                if step.measured_ms is not None:
                    latency = (
                        f", latency {step.measured_ms:.2f} ms (predicted {step.predicted_ms:.2f}, "
                        f"by unit slopes {step.slope_predicted_ms:.2f})"
                    )
                log(
                    f"step {step.step} (epoch {step.epoch}): removed {step.removed_total} units, "
                    f"MACs {step.macs / 1e6:.1f}M, params {step.params / 1e6:.3f}M, "
                    f"{metric} {step.metrics.get(metric, float('nan')):.4f}{latency}"
                )

            with _Bar(not self.quiet) as bar:
                result = run_shrink(
                    model,
                    self.task,
                    train_data,
                    val_data,
                    config,
                    input_shape=shape,
                    cost_fn=cost_fn,
                    measure_fn=measure_fn,
                    blocks_ms_fn=blocks_ms_fn,
                    on_step=on_step,
                    progress=bar.update,
                )

            static = extract(model, self.shrink.epsilon, self.shrink.align)
            arch = architecture(static)
            onnx_path = self.run_dir / "model.onnx"
            t = time.perf_counter()
            report = export_onnx(
                static,
                shape,
                onnx_path,
                metadata={"hrnas_arch": arch.encode(), "task": self.task.name},
            )
            export_s = time.perf_counter() - t
            measured = measurer.measure_network(static, shape)
            metrics = evaluate(static, self.task, val_data)
            # SR validates on whole images of varying size; the static ONNX model takes
            # the training patch size only, so it is checked by export_onnx alone.
            onnx_metrics = (
                {} if self.task.name == "sr" else evaluate(str(onnx_path), self.task, val_data)
            )
            atomic_save(
                {
                    "format": "edgenas-hrnas-v1",
                    "architecture": arch.to_dict(),
                    "arch": arch.encode(),
                    "task": self.task.name,
                    "options": dict(static.options),
                    "model": static.state_dict(),
                },
                self.run_dir / "extracted.pt",
            )
            last = result.steps[-1]
            store.add_candidate(
                arch.encode(),
                origin="extracted",
                status="trained",
                iteration=last.epoch,
                params=count_params(static),
                flops=count_macs(static, shape),
                latency_ms=measured,
                latency_source="measured",
                device=self.device.name,
                metrics=metrics,
                accuracy=self.task.normalised_accuracy(metrics),
                timings={
                    "train_seconds": result.train_seconds,
                    "epoch_seconds_mean": sum(result.epoch_seconds) / len(result.epoch_seconds),
                    "export_seconds": export_s,
                },
                onnx_path=str(onnx_path),
            )
            first = result.steps[0]
            summary = {
                "architecture": arch.encode(),
                "epochs": result.epochs,
                "shrink_steps": len(result.steps) - 1,
                "train_seconds": result.train_seconds,
                "units_before": arch0.units,
                "units_after": arch.units,
                "macs_before": first.macs,
                "macs_after": count_macs(static, shape),
                "params_before": first.params,
                "params_after": count_params(static),
                "latency_ms": measured,
                "device": self.device.name,
                "metrics": metrics,
                "onnx_metrics": onnx_metrics,
                "onnx_max_rel_err": report.max_rel_err,
            }
            store.set_status("finished", summary)
            store.append_event("run_finished", summary)
        except BaseException as err:
            store.set_status("failed", {"error": str(err).splitlines()[0] if str(err) else ""})
            raise
        finally:
            store.close()
            measurer.close()
        written = write_report(self.run_dir)
        log(
            f"extracted: {arch.units:,} of {arch0.units:,} units kept, params "
            f"{summary['params_after'] / 1e6:.3f}M (was {summary['params_before'] / 1e6:.3f}M), "
            f"MACs {summary['macs_after'] / 1e6:.1f}M (was {summary['macs_before'] / 1e6:.1f}M)"
        )
        log(f"val (torch): {format_metrics(metrics)}")
        onnx_text = format_metrics(onnx_metrics) if onnx_metrics else "not run (fixed-size model)"
        log(f"val (ONNX):  {onnx_text}  (export max rel. error {report.max_rel_err:.1e})")
        log(f"latency on {self.device.name}: {measured:.2f} ms (measured, {shape[2]}x{shape[3]})")
        log(
            f"wrote {self.run_dir}/: run.sqlite, model.onnx, extracted.pt, "
            + ", ".join(p.name for p in written)
        )
        return 0


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
