"""The checkpoint format: trained weights plus what is needed to rebuild the network.

A checkpoint is a dict of tensors and plain values (``torch.load(weights_only=True)``
reads it; nothing in it can run code). ``model_spec`` names the network: a genotype of
the LDP space (``{"genotype", "task", "options"}``), a reference model
(``{"model", "task", "options"}``, see :mod:`edgenas.models.reference`) or a network
extracted by HR-NAS shrinking (``{"hrnas_arch", "supernet", "task", "options"}``: the
encoded architecture and its supernet configuration, see :mod:`edgenas.hrnas.arch`).
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgenas.atomic import atomic_path, nearest_existing_folder
from edgenas.errors import UserError, first_line

if TYPE_CHECKING:
    from torch import nn

CHECKPOINT_FORMAT = "edgenas-checkpoint-v1"
# torch loads on first use: commands check a checkpoint file (missing, a folder, empty,
# not a PyTorch file) before paying for it.


class CheckpointWriteError(UserError):
    """A checkpoint the machine would not take (disk full, file size limit); nothing of
    it was left. ``path`` and ``reason`` let a command say how to continue."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(
            f"cannot write {path}: {reason}; free some space (or choose another output "
            "folder) and run the command again"
        )


# Write errors of the machine, not of edgenas (permissions and the like stay OSErrors,
# which the command line reports in one line itself).
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` ``obj`` to ``path`` whole or not at all (:func:`edgenas.atomic.atomic_path`).

    A write the machine refuses (disk full, file size limit) is a one-line
    :class:`CheckpointWriteError` naming the file and the reason; torch reports those
    as a ``RuntimeError`` from its zip writer, which no caller could tell from a bug.
    """
    import torch

    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
    except RuntimeError as err:
        if not _is_write_failure(err):
            raise
        raise CheckpointWriteError(path, _why_writes_fail(path, err)) from None
    except OSError as err:
        if err.errno not in _FULL_ERRNOS:
            raise
        raise CheckpointWriteError(path, _why_writes_fail(path, err)) from None


def _is_write_failure(err: RuntimeError) -> bool:
    """Whether torch.save's RuntimeError is its file writer failing (not a bug)."""
    text = str(err)
    return any(
        word in text
        for word in ("inline_container", "PytorchStreamWriter", "iostream", "write", "file")
    )


def _why_writes_fail(path: Path, err: BaseException) -> str:
    """The likely reason a write to ``path`` failed: a full disk, a quota, the file size
    limit, or the error's own first line. torch's writer says none of them, so for its
    errors the free space and the limit are looked at."""
    import resource
    import shutil

    known = {
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
    }
    if isinstance(err, OSError) and err.errno in known:
        return known[err.errno]
    folder = nearest_existing_folder(path)
    free = shutil.disk_usage(folder).free
    if free < 64 * 2**20:
        return f"the disk is full ({free / 2**20:.0f} MiB free in {folder})"
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        return f"the file size limit of this shell (ulimit -f, {limit:,} bytes) was reached"
    return first_line(err)


def check_room(path: str | Path, nbytes: int, option: str) -> None:
    """Refuse to start work whose output ``path`` (about ``nbytes``) cannot be written:
    less free space than that in its folder, or a file size limit below it.

    Checked before training starts, so that a full disk is one line at once rather
    than after the whole budget was spent.
    """
    import resource
    import shutil

    path = Path(path)
    needed = int(nbytes)
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and limit < needed:
        raise UserError(
            f"{option}: {path} will take about {_size(needed)} but this shell's file size "
            f"limit (ulimit -f) is {_size(limit)}; raise the limit and run the command again"
        )
    folder = nearest_existing_folder(path)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise UserError(
            f"{option}: {path} will take about {_size(needed)} but only {_size(free)} is "
            f"free in {folder}; free some space or choose another folder"
        )


def _size(nbytes: float) -> str:
    """``1.2 MB``-style size for messages."""
    for unit in ("bytes", "kB", "MB", "GB"):
        if nbytes < 1000 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} TB"


def checkpoint_bytes(model: nn.Module, optimizer_copies: int = 2) -> int:
    """About the size of a training checkpoint of ``model``: its weights plus Adam's two
    moments per parameter, plus room for the rest of the dictionary."""
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return weights + optimizer_copies * params + 64 * 1024


def cpu_state(state: Any) -> Any:
    """A (nested) state dict with every tensor on the CPU, for device-free checkpoints."""
    import torch

    if isinstance(state, torch.Tensor):
        return state.detach().cpu()
    if isinstance(state, dict):
        return {k: cpu_state(v) for k, v in state.items()}
    if isinstance(state, list):
        return [cpu_state(v) for v in state]
    return state


def model_spec(model: nn.Module) -> dict | None:
    """How to rebuild ``model``: ``{"genotype" | "model" | "hrnas_arch", "task",
    "options"}``; None for modules that are neither a genotype network, a reference
    model nor an HR-NAS network."""
    if not hasattr(model, "task"):
        return None
    options = dict(getattr(model, "options", {}))
    from edgenas.hrnas.supernet import HRSupernet

    if isinstance(model, HRSupernet):
        from edgenas.hrnas.arch import architecture

        return {
            "hrnas_arch": architecture(model).encode(),
            "supernet": model.config.to_dict(),
            "task": model.task,
            "options": options,
        }
    reference = getattr(model, "reference", None)
    if reference is not None:
        return {"model": reference, "task": model.task, "options": options}
    genotype = getattr(model, "genotype", None)
    if genotype is None:
        return None
    return {"genotype": genotype.encode(), "task": model.task, "options": options}


def build_from_spec(spec: dict) -> nn.Module:
    """The (untrained) network a :func:`model_spec` describes."""
    if "hrnas_arch" in spec:
        from edgenas.hrnas.arch import build_architecture
        from edgenas.hrnas.config import SupernetConfig

        try:
            config = SupernetConfig.from_dict(spec["supernet"])
        except TypeError as err:  # unknown or missing fields: another version's spec
            raise ValueError(f"bad HR-NAS supernet configuration: {err}") from None
        return build_architecture(spec["hrnas_arch"], config, spec["task"], **spec["options"])
    if "model" in spec:
        from edgenas.models.reference import build_reference

        return build_reference(spec["model"], spec["task"], **spec["options"])
    from edgenas.models.builder import build_model

    return build_model(spec["genotype"], spec["task"], **spec["options"])


def describe_spec(spec: dict) -> str:
    """``model espcn``, ``genotype S2:...`` or ``HR-NAS hrnas(...):...`` for messages
    and summaries."""
    if "hrnas_arch" in spec:
        return f"HR-NAS {spec['hrnas_arch']}"
    return f"model {spec['model']}" if "model" in spec else f"genotype {spec['genotype']}"


_WRITTEN_BY = "edgenas checkpoints are written by `edgenas train`, `search` and `shrink`"


def check_checkpoint_file(path: str | Path, option: str = "checkpoint") -> Path:
    """Refuse, without loading torch, a path that cannot be a checkpoint: missing, a
    folder, an empty file, a file that is not a PyTorch archive (random bytes, text, a
    file cut short while it was written). ``option`` names it in the message."""
    import zipfile

    path = Path(path)
    if path.is_dir():
        raise UserError(
            f"{option} {path} is a folder; give the .pt file inside it "
            f"(e.g. {path / 'checkpoint.pt'} or {path / 'best.pt'})"
        )
    if not path.is_file():
        raise UserError(f"{option} {path} does not exist")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is not an edgenas checkpoint (the file is empty); {_WRITTEN_BY}")
    # torch.save writes a zip archive; anything else would reach the unpickler, whose
    # message talks about weights_only instead of saying what is wrong.
    if not zipfile.is_zipfile(path):
        raise UserError(
            f"{path} is not an edgenas checkpoint (not a PyTorch file, or one cut short "
            f"while it was written); {_WRITTEN_BY}"
        )
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint with ``weights_only=True``; a bad file is a one-line UserError
    that says what the file is instead (a folder, empty, not a PyTorch file or one cut
    short, a file holding Python objects, a file of another program)."""
    import warnings

    import torch

    path = check_checkpoint_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's pickle-protocol warnings
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        text = str(err)
        if "Weights only load failed" in text or "Unsupported global" in text:
            reason = "it holds Python objects, which edgenas never loads (they could run code)"
        else:
            reason = f"it cannot be read: {first_line(err)}"
        raise UserError(f"{path} is not an edgenas checkpoint ({reason}); {_WRITTEN_BY}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UserError(
            f"{path} is not an edgenas checkpoint (a PyTorch file of another program); {_WRITTEN_BY}"
        )
    return ckpt


def load_weights(model: nn.Module, state: dict, source: str) -> None:
    """Load ``state`` into ``model``; weights of another shape are a one-line UserError
    naming the first difference with both shapes (``source`` names where ``state`` came
    from, e.g. ``checkpoint runs/seg/checkpoint.pt``)."""
    problem = weights_mismatch(model, state)
    if problem is not None:
        raise UserError(f"{source} does not fit the network it names: {problem}")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as err:
        raise UserError(f"{source} does not fit the network it names: {first_line(err)}") from None


def weights_mismatch(model: nn.Module, state: dict) -> str | None:
    """The first difference between ``model``'s weights and ``state`` (a missing or an
    extra weight, or one of another shape, with both shapes), or None if they fit."""
    if not isinstance(state, dict):
        return f"its weights are a {type(state).__name__}, not a dictionary of tensors"
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    differ = [
        (k, tuple(state[k].shape), tuple(v.shape))
        for k, v in expected.items()
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)
    ]

    def more(items: list) -> str:
        return f" (and {len(items) - 1} more)" if len(items) > 1 else ""

    def shape(dims: tuple) -> str:
        return "x".join(map(str, dims)) or "a scalar"

    if differ:
        name, saved, wanted = differ[0]
        return (
            f"weight {name!r} is {shape(saved)} in the checkpoint but {shape(wanted)} in "
            f"the network{more(differ)}"
        )
    if missing:
        return f"it lacks weight {missing[0]!r}{more(missing)}"
    if extra:
        return f"it has weight {extra[0]!r}{more(extra)} that the network does not"
    return None


def model_from_checkpoint(ckpt: dict, source: str = "the checkpoint") -> nn.Module:
    """Rebuild the network of a checkpoint and load its weights (a spec this version
    cannot build, or weights of another shape, are one-line UserErrors)."""
    spec = ckpt.get("model_spec")
    if not isinstance(spec, dict):
        raise UserError(
            f"{source} names no network (no model_spec): rebuild the model and load its 'model'"
        )
    try:
        model = build_from_spec(spec)
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"cannot rebuild the network of {source}: {first_line(err)}") from None
    load_weights(model, ckpt.get("model"), f"{source} ({describe_spec(spec)})")
    return model
