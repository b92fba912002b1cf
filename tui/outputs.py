"""Where a run's model and report are: the lines printed when the monitor closes.

``edgenas search`` and ``edgenas shrink`` both end in ``RUN_DIR/best.onnx`` (the
exported model, whose path the summary also stores), ``best.pt`` (the trained weights)
and ``report.md``; a run that has not finished has not written them yet.
"""

from __future__ import annotations

from pathlib import Path

from edgenas.store import RunStore, StoreError


def _model_path(run_dir: Path, summary: dict) -> Path:
    """The exported model: the summary's path when it names an existing file (it may be
    relative to where the search started), else ``RUN_DIR/best.onnx``."""
    stored = summary.get("onnx") or (summary.get("deployed") or {}).get("onnx_path")
    if stored and Path(stored).is_file():
        return Path(stored)
    return run_dir / "best.onnx"


def exit_lines(run_dir: str | Path, *, always: bool = False) -> list[str]:
    """Lines naming the model and report of a finished run; for an unfinished one
    (only when ``always``) where they will be; nothing for an unreadable store."""
    run_dir = Path(run_dir)
    if run_dir.suffix == ".sqlite":
        run_dir = run_dir.parent
    try:
        info = RunStore.read_info(run_dir)
    except StoreError:
        return []
    model = _model_path(run_dir, info.summary or {})
    checkpoint, report = run_dir / "best.pt", run_dir / "report.md"
    if info.status == "finished" and model.is_file():
        lines = [f"model:  {model}" + (f"  (weights {checkpoint})" if checkpoint.is_file() else "")]
        if report.is_file():
            lines.append(f"report: {report}")
        return lines
    if not always:
        return []
    return [f"run {info.name} is {info.status}: it writes {model} and {report} when it finishes"]
