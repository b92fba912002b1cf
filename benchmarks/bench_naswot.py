"""NASWOT: architectures per second, edgenas vs the plain reference implementation.

Same 20 genotypes, same batch, same weights, run interleaved (A, B, A, B, ...) so that
machine noise hits both sides alike. Prints per-genotype ratios, their median, the
throughput of each side and the largest relative difference between the scores.

    python benchmarks/bench_naswot.py [--n 20] [--batch 32] [--input 64] [--torch-threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from edgenas.models import build_model
from edgenas.naswot import fixed_batch, naswot_score, reference_score
from edgenas.space import LDPSpace


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--input", type=int, default=64)
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)

    genotypes = LDPSpace().sample_unique(args.n, seed=args.seed)
    images = fixed_batch((args.batch, 3, args.input, args.input), args.seed)
    ours_times, ref_times, fast_times, ratios, worst, worst_fast = [], [], [], [], 0.0, 0.0
    print(
        f"{args.n} genotypes, batch {args.batch}x3x{args.input}x{args.input}, {args.torch_threads} thread(s)"
    )
    print(
        f"{'#':>3} {'S':>2} {'params':>9} {'edgenas s':>10} {'reference s':>12} {'ratio':>6}  score"
    )
    for index, genotype in enumerate(genotypes):
        torch.manual_seed(index)
        model = build_model(genotype, "depth")
        naswot_score(model, images)  # warm-up: allocator and kernels
        start = time.perf_counter()
        ours = naswot_score(model, images)
        ours_time = time.perf_counter() - start
        start = time.perf_counter()
        reference = reference_score(model, images)
        ref_time = time.perf_counter() - start
        start = time.perf_counter()
        fast = naswot_score(model, images, channels_last=True)
        fast_times.append(time.perf_counter() - start)
        worst = max(worst, abs(ours - reference) / abs(reference))
        worst_fast = max(worst_fast, abs(fast - reference) / abs(reference))
        ours_times.append(ours_time)
        ref_times.append(ref_time)
        ratios.append(ref_time / ours_time)
        params = sum(p.numel() for p in model.parameters())
        print(
            f"{index:3d} {genotype.scales:2d} {params:9,d} {ours_time:10.3f} {ref_time:12.3f} {ratios[-1]:6.2f}  {ours:.3f}"
        )
    print()
    print(
        f"edgenas:   {args.n / sum(ours_times):.2f} architectures/s (median {statistics.median(ours_times):.3f} s)"
    )
    print(
        f"reference: {args.n / sum(ref_times):.2f} architectures/s (median {statistics.median(ref_times):.3f} s)"
    )
    print(
        f"speed-up: median ratio {statistics.median(ratios):.2f}x, total-time ratio {sum(ref_times) / sum(ours_times):.2f}x"
    )
    print(f"largest relative score difference: {worst:.2e}")
    fast_ratio = statistics.median(r / f for r, f in zip(ref_times, fast_times, strict=True))
    print(
        f"channels_last=True (opt-in): {args.n / sum(fast_times):.2f} architectures/s, "
        f"median ratio {fast_ratio:.2f}x vs reference, largest relative score difference "
        f"{worst_fast:.2e} (not bit-identical)"
    )


if __name__ == "__main__":
    main()
