"""Where training and evaluation run: CPU or a CUDA GPU, at which precision.

``resolve_accelerator("auto")`` picks CUDA when torch sees a GPU and the CPU otherwise;
naming ``cuda`` on a machine without one is a one-line :class:`UserError`. On a GPU the
forward pass runs under autocast (bf16 where the GPU supports it, else fp16 with a
gradient scaler) and host-to-device copies are non-blocking; on the CPU everything
stays fp32, which is what the tests and CI run. Activations use the channels-last
(NHWC) layout on both: tensor cores want it, and on a 2-core x86 CPU it measured
10-28 % more training images/s for the default networks (docs/tasks.md). Latency is
never measured here: it belongs to the deployment device (``--device``), whatever
trains the network.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from edgenas.errors import UserError
from edgenas.parsing import check_accelerator_name

ACCELERATORS = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Accelerator:
    """A resolved place to compute: ``device``, autocast dtype (None = fp32), layout."""

    device: torch.device
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False

    @property
    def kind(self) -> str:
        """``cpu`` or ``cuda``."""
        return self.device.type

    @property
    def precision(self) -> str:
        """``fp32``, ``bf16`` or ``fp16``."""
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]

    def describe(self) -> str:
        """One line for logs: ``cuda:0 (NVIDIA H200) bf16 channels-last``."""
        name = str(self.device)
        if self.device.type == "cuda":
            name += f" ({torch.cuda.get_device_name(self.device)})"
        layout = " channels-last" if self.channels_last else ""
        return f"{name} {self.precision}{layout}"

    def autocast(self):
        """Context manager for the forward pass (a no-op in fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def grad_scaler(self):
        """A gradient scaler for fp16 (None otherwise: bf16 and fp32 need none)."""
        if self.amp_dtype is torch.float16:
            return torch.amp.GradScaler(self.device.type)
        return None

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move ``model`` to the device (and layout) in place; returns it."""
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """Copy a batch to the device (non-blocking from pinned memory)."""
        if tensor.device == self.device:
            return tensor
        return tensor.to(self.device, non_blocking=tensor.is_pinned())

    def images(self, tensor: torch.Tensor) -> torch.Tensor:
        """An image batch on the device in the model's layout."""
        tensor = self.to_device(tensor)
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor


CPU = Accelerator(torch.device("cpu"))


def device_kind(name: str = "auto") -> str:
    """The device type an accelerator name trains on ("cpu", "cuda", ...), "auto"
    resolved as :func:`resolve_accelerator` does, without touching the GPU."""
    base = (name or "auto").lower().split(":", 1)[0]
    if base == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return base


def resolve_accelerator(
    name: str = "auto", precision: str = "auto", channels_last: bool | None = None
) -> Accelerator:
    """The accelerator ``name`` (auto, cpu, cuda, cuda:N) at ``precision``.

    ``precision="auto"``: bf16 autocast on GPUs that support it, fp16 on older GPUs,
    fp32 on the CPU. ``channels_last=None``: on (it measured faster on both).
    """
    name = (name or "auto").lower()
    check_accelerator_name(name)  # cpu:x, tpu: one line before torch.device() raises
    base = name.split(":", 1)[0]
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    if base == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "--accelerator cuda: torch sees no CUDA GPU here (a CPU build of torch, or no "
            "driver); use --accelerator cpu or auto"
        )
    if base == "auto":
        name = device_kind(base)
    device = torch.device(name)
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UserError(
            f"--accelerator {name}: only {torch.cuda.device_count()} CUDA device(s) here"
        )
    if precision == "auto":
        if device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "fp32"
    if precision == "fp16" and device.type == "cpu":
        raise UserError("fp16 training needs a GPU; on the CPU use fp32 (or bf16)")
    amp = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    if channels_last is None:
        channels_last = True
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed-size batches: let cuDNN pick kernels
    return Accelerator(device, amp, channels_last)
