"""DataLoader construction and iteration shared by training, evaluation and shrinking."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from edgenas.errors import UserError


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # loaders must not fight the training process for cores


def make_loader(
    data: Dataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
    order: Sequence[int] | None = None,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader over ``data``; ``order`` (sample indices) replaces shuffling."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        data,
        batch_size=batch_size,
        shuffle=shuffle if order is None else False,
        sampler=list(order) if order is not None else None,
        num_workers=workers,
        generator=generator,
        drop_last=drop_last,
        worker_init_fn=_worker_init if workers else None,
        pin_memory=pin_memory,
    )


def iterate_loader(loader: DataLoader) -> Iterator:
    """Iterate a loader; a UserError raised in a worker comes back as a one-line UserError."""
    iterator = iter(loader)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except UserError:
            raise
        except Exception as err:
            text = str(err)
            if "UserError" in text:
                last = [line for line in text.splitlines() if "UserError:" in line][-1]
                raise UserError(last.split("UserError:", 1)[1].strip()) from None
            raise
        yield batch
