"""The checkpoint format: trained weights plus what is needed to rebuild the network.

A checkpoint is a dict of tensors and plain values (``torch.load(weights_only=True)``
reads it; nothing in it can run code). ``model_spec`` names the network: a genotype of
the LDP space (``{"genotype", "task", "options"}``), a reference model
(``{"model", "task", "options"}``, see :mod:`edgenas.models.reference`) or a network
extracted by HR-NAS shrinking (``{"hrnas_arch", "supernet", "task", "options"}``: the
encoded architecture and its supernet configuration, see :mod:`edgenas.hrnas.arch`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgenas.atomic import atomic_path
from edgenas.errors import UserError, first_line

CHECKPOINT_FORMAT = "edgenas-checkpoint-v1"


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` ``obj`` to ``path`` whole or not at all (:func:`edgenas.atomic.atomic_path`)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def cpu_state(state: Any) -> Any:
    """A (nested) state dict with every tensor on the CPU, for device-free checkpoints."""
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


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint with ``weights_only=True``; a bad file is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        first = first_line(err)
        raise UserError(f"cannot read checkpoint {path}: {first}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not an edgenas checkpoint (written by `edgenas train`)")
    return ckpt


def model_from_checkpoint(ckpt: dict) -> nn.Module:
    """Rebuild the network of a checkpoint and load its weights."""
    spec = ckpt.get("model_spec")
    if spec is None:
        raise UserError("this checkpoint names no network; rebuild the model and load 'model'")
    try:
        model = build_from_spec(spec)
    except ValueError as err:
        raise UserError(f"cannot rebuild the checkpoint's network: {err}") from None
    model.load_state_dict(ckpt["model"])
    return model
