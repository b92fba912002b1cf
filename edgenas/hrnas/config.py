"""The plain settings of HR-NAS: the supernet's shape and the shrinking recipe.

Kept free of torch so that the command line can read every default from here when it
builds its parser (``edgenas --help`` stays fast); :mod:`edgenas.hrnas.supernet` and
:mod:`edgenas.hrnas.shrink` re-export both classes.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import ClassVar


@dataclass(frozen=True)
class SupernetConfig:
    """Shape of the supernet; every field is a plain value (stored with each run)."""

    widths: tuple[int, ...] = (16, 24, 32, 48)
    branches: tuple[int, ...] = (1, 2, 3, 4, 4)
    depth: int = 1
    expansion: float = 2.0
    tokens: int = 8
    fusion_tokens: int = 0
    token_size: int = 8
    heads: int = 1
    stem_channels: int = 16
    head_channels: int = 32

    def __post_init__(self) -> None:
        b = self.branches
        if not b or b[0] != 1 or any(y - x not in (0, 1) for x, y in itertools.pairwise(b)):
            raise ValueError(
                f"branches {b} must start at 1 and grow by at most 1 per module, e.g. 1,2,3,4,4"
            )
        if max(b) > len(self.widths):
            raise ValueError(f"{max(b)} branches need {max(b)} widths, got {len(self.widths)}")
        if self.depth < 1 or self.expansion <= 0 or min(self.widths) < 1:
            raise ValueError("depth, expansion and widths must be positive")
        if self.tokens < 0 or self.fusion_tokens < 0:
            raise ValueError("token counts cannot be negative")
        if (self.token_size**2) % self.heads:
            raise ValueError(f"token dimension {self.token_size**2} not divisible by heads")

    def to_dict(self) -> dict:
        """JSON-ready dictionary (tuples as lists); :meth:`from_dict` reads it back."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> SupernetConfig:
        """The configuration :meth:`to_dict` wrote."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True)
class ShrinkConfig:
    """Hyper-parameters of progressive shrinking (training recipe: LDP's Adam).

    The budget is ``epochs``, ``seconds`` or both (the first reached ends training);
    with neither, :attr:`DEFAULT_EPOCHS` epochs.
    """

    DEFAULT_EPOCHS: ClassVar[int] = 5

    lam: float = 2e-3
    epsilon: float = 2e-2
    align: int = 8
    epochs: int | None = None
    seconds: float | None = None
    shrink_every: int = 1
    warmup_epochs: float = 1.0
    alpha_lr_mult: float = 50.0
    recalibrate_batches: int = 4
    batch_size: int = 8
    lr: float = 7e-4
    seed: int = 0
    workers: int = 0
    augment: bool = True
    eval_batches: int | None = None
    # Where the supernet trains (auto: CUDA when present). Shrink steps, costs, exports
    # and latency measurements run on a CPU copy of the state either way.
    accelerator: str = "auto"

    def __post_init__(self) -> None:
        if self.epochs is None and self.seconds is None:
            object.__setattr__(self, "epochs", self.DEFAULT_EPOCHS)
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError(f"seconds must be positive, got {self.seconds}")
        if self.lam < 0 or self.epsilon < 0:
            raise ValueError("lambda and epsilon cannot be negative")
        if self.align < 1:
            raise ValueError("align must be at least 1")
        if self.shrink_every < 1:
            raise ValueError("shrink_every must be at least 1")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
