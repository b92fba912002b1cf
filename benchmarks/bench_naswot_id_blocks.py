"""Does NASWOT lean against `id` blocks? (They have no ReLU, so they add no activation codes.)

Scores random networks of a task's default search space (demo preset, `id` included)
with NASWOT on one fixed batch, and prints the Kendall tau of the score with the number
of `id` blocks and with MACs, side by side; then the task's default genotype against
the dense genotype it was derived from (segmentation: nine blocks made `id`).

    python benchmarks/bench_naswot_id_blocks.py --task seg --n 40
"""

from __future__ import annotations

import argparse

import torch
from scipy.stats import kendalltau


def score(genotype: str, task: str, images: torch.Tensor) -> tuple[float, int]:
    """NASWOT score (weights seeded) and MACs of ``genotype`` at the images' size."""
    from edgenas.models.builder import build_model
    from edgenas.models.complexity import count_macs
    from edgenas.naswot import naswot_score

    torch.manual_seed(0)
    model = build_model(genotype, task)
    return naswot_score(model, images), count_macs(model, (1, *images.shape[1:]))


def id_blocks(genotype: str) -> int:
    """How many of the genotype's blocks are ``id`` blocks."""
    from edgenas.space import decode

    return sum(block.op == "id" for block in decode(genotype).blocks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="seg")
    parser.add_argument("--n", type=int, default=40, help="random networks")
    parser.add_argument("--input", default="64x80", help="NASWOT image size HxW")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=3, help="sampling seed")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from edgenas.naswot import fixed_batch
    from edgenas.parsing import parse_shape
    from edgenas.search.config import SearchConfig
    from edgenas.tasks import get_task
    from edgenas.tasks.defaults import DENSE_GENOTYPE, default_genotype

    task = get_task(args.task).name
    height, width = parse_shape(args.input, ndim=2)
    images = fixed_batch((args.batch, 3, height, width), 0)
    rows = []
    for genotype in SearchConfig(task=task).space().sample_unique(args.n, seed=args.seed):
        text = genotype.encode()
        rows.append((*score(text, task, images), id_blocks(text)))
    scores, macs, ids = zip(*rows, strict=True)
    print(f"{args.n} random {task} networks, {min(ids)}-{max(ids)} id blocks each:")
    for name, values in (("id blocks", ids), ("MACs", macs)):
        tau = kendalltau(scores, values)
        print(f"  Kendall tau of the NASWOT score with {name}: {tau.statistic:+.2f} "
              f"(p {tau.pvalue:.2f})")  # fmt: skip
    default = default_genotype(task)
    if default != DENSE_GENOTYPE:
        (a, a_macs), (b, b_macs) = score(default, task, images), score(DENSE_GENOTYPE, task, images)
        print(f"default genotype ({id_blocks(default)} id blocks): {a:.1f}; dense genotype: "
              f"{b:.1f}; ratio {a / b:.3f} at {a_macs / b_macs:.2f}x the MACs")  # fmt: skip


if __name__ == "__main__":
    main()
