"""How repeatable is a search's paired latency measurement? Two statistics of the same
sessions, side by side.

A search times every candidate in single onnxruntime sessions alternating with a
reference network (reference, candidate, reference, ..., reference; docs/search.md,
"Latency during a search") and reads the candidate as a ratio to the reference. On a
shared host one session can run 30-40 % slower than the next, in bursts, so the
statistic that turns the sessions into a ratio decides how far two measurements of
one network disagree. This benchmark repeats the paired measurement of each network
``--repeats`` times and computes from the very same sessions:

- ``median-ratio``: each round's candidate session over the faster of the reference
  sessions around it, the median of the rounds (what the search uses);
- ``min-min``: the candidate's fastest session over the reference's fastest (load only
  ever slows a session, so each fastest is the closest to the device's own speed, as
  the reference's own latency is taken).

For each network and statistic it prints the median ratio to the reference and the
spread of the repeats ((max - min) / median), then the median spread of each
statistic and their ratio. The networks are the reference model, the task's default
genotype and ``--genotypes`` (e.g. a search's answer), exported as the search exports
them. One torch and onnxruntime thread.

    python benchmarks/bench_search_paired_latency.py --task seg --reference unet \\
        --input 180x240 --repeats 10 [--genotypes S4:...] [--rounds 3] [--runs 15]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path


def min_min(reference: list[float], network: list[float]) -> float:
    """The fastest network session over the fastest reference session."""
    return min(network) / min(reference)


def median_ratio(reference: list[float], network: list[float]) -> float:
    """The search's statistic (:func:`edgenas.search.latency.paired_ratio`)."""
    from edgenas.search.latency import paired_ratio

    return paired_ratio(reference, network)


STATISTICS = {"median-ratio": median_ratio, "min-min": min_min}


def spread(values: list[float]) -> float:
    """(max - min) / median of repeated readings of one quantity."""
    return (max(values) - min(values)) / statistics.median(values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="seg")
    parser.add_argument("--reference", default="unet", help="a reference model's name")
    parser.add_argument("--input", default="180x240", help="deploy input HxW")
    parser.add_argument("--classes", type=int, default=12, help="seg: classes of the head")
    parser.add_argument("--genotypes", default="", help="comma-separated genotypes to add")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=None, help="default: the search's")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per session")
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds each session times at least (default: the search's)")  # fmt: skip
    parser.add_argument("--json", default=None, help="write every session here")
    args = parser.parse_args(argv)

    import torch

    from edgenas.latency_table import Measurer, timing_model
    from edgenas.models.reference import build_reference
    from edgenas.parsing import parse_shape
    from edgenas.search.latency import PAIRED_PROTOCOL, PAIRED_ROUNDS, paired_sessions
    from edgenas.space import decode
    from edgenas.tasks import get_task
    from edgenas.tasks.defaults import default_genotype

    torch.set_num_threads(1)
    task = get_task(args.task)
    shape = (1, 3, *parse_shape(args.input, ndim=2))
    options = {"num_classes": args.classes} if task.name == "segmentation" else {}
    rounds = args.rounds or PAIRED_ROUNDS
    protocol = PAIRED_PROTOCOL
    if args.runs is not None:
        protocol = dataclasses.replace(protocol, runs=args.runs)
    if args.min_time is not None:
        protocol = dataclasses.replace(protocol, min_time_s=args.min_time)
    genotypes = {"default": default_genotype(task.name)}
    for index, genotype in enumerate(g for g in args.genotypes.split(",") if g.strip()):
        genotypes[f"genotype {index + 1}"] = genotype.strip()

    measurer = Measurer("cpu", threads=1)
    try:
        torch.manual_seed(0)
        reference = build_reference(args.reference, task.name, **options).eval()
        files = {args.reference: measurer.network_file(reference, shape)}
        for name, genotype in genotypes.items():
            model = timing_model(decode(genotype), task.name, options).eval()
            files[name] = measurer.network_file(model, shape)
        sessions = {name: [] for name in files}
        for repeat in range(args.repeats):
            for name, path in files.items():  # the reference against itself too
                sessions[name].append(paired_sessions(measurer, files[args.reference], path,
                                                      rounds, protocol))  # fmt: skip
            print(f"repeat {repeat + 1}/{args.repeats}", file=sys.stderr, flush=True)
    finally:
        measurer.close()

    print(f"{args.task} at {args.input}, reference {args.reference}, {args.repeats} paired "
          f"measurements of {rounds} rounds, sessions of at least {protocol.runs} runs and "
          f"{protocol.min_time_s:g} s\n")  # fmt: skip
    print("| network | statistic | ratio to the reference (median) | spread of repeats |")
    print("|---|---|---|---|")
    spreads: dict[str, list[float]] = {stat: [] for stat in STATISTICS}
    for name, measured in sessions.items():
        for stat, function in STATISTICS.items():
            ratios = [function(ref, net) for ref, net in measured]
            spreads[stat].append(spread(ratios))
            print(f"| {name} | {stat} | {statistics.median(ratios):.3f} | "
                  f"{spread(ratios):.1%} |")  # fmt: skip
    print()
    for stat, values in spreads.items():
        print(f"{stat}: median spread {statistics.median(values):.1%}")
    ratio = statistics.median(spreads["min-min"]) / statistics.median(spreads["median-ratio"])
    print(f"min-min / median-ratio spread: {ratio:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"sessions": sessions}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
