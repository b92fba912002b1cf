"""The HR-NAS network's final mix computed per branch (``BranchMix``, the code's way)
against concatenating the resized branches first (the paper's description, the code's
way until this bench was written): MACs, the outputs' agreement, and the latency of the
two exports measured side by side.

Both files hold the same parameters and compute the same function (a 1x1 convolution
and bilinear resizing commute); only the order of the operations differs. Each round
profiles both files in turn (A first in odd rounds, B first in even ones); the table
gives the median over rounds of each file's fastest session median and the ratio
per-branch / concatenated per round (median and range).

    python benchmarks/bench_hrnas_mix.py [--run runs/X] [--input 180x240] [--rounds 9]
        [--export dynamic|static]

Without ``--run`` the network is the supernet of ``bench_hrnas_camvid.py`` (widths
16,32,64, branches 1,2,3, no tokens, expansion 1, 12 classes) with random weights;
``--run`` takes an ``edgenas shrink`` run's ``best.pt`` (the shrunk network).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from edgenas.devices.profile import interleaved_fastest_medians
from edgenas.devices.protocol import Protocol
from torch import nn
from torch.nn import functional as F

from edgenas.export import export_onnx
from edgenas.hrnas.supernet import BranchMix, HRSupernet
from edgenas.models.complexity import count_macs

PROTOCOL = Protocol(warmup_runs=3, warmup_min_s=0.1, runs=15, sessions=5)


class ConcatMix(BranchMix):
    """The mix as first written: resize every branch to the first one's size,
    concatenate, then 1x1 conv + BN + ReLU at that size."""

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        size = feats[0].shape[-2:]
        resized = [feats[0]] + [
            F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats[1:]
        ]
        return self.relu(self.bn(self.conv(torch.cat(resized, dim=1))))

    def forward_macs(self, inputs, output) -> int:
        return 0  # its conv is called as a module here and counts itself


def concat_version(model: HRSupernet) -> HRSupernet:
    """A copy of ``model`` whose mix concatenates first (same parameters)."""
    old = copy.deepcopy(model)
    old.mix.__class__ = ConcatMix
    return old


def load(run: str | None) -> HRSupernet:
    if run is None:
        from edgenas.hrnas.config import SupernetConfig

        torch.manual_seed(0)
        config = SupernetConfig(widths=(16, 32, 64), branches=(1, 2, 3), tokens=0, expansion=1.0)
        model = HRSupernet(config, "seg", num_classes=12)
        for module in model.modules():  # trained-looking BN statistics, so folding matters
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
        return model
    from edgenas.checkpoint import load_checkpoint, model_from_checkpoint

    path = Path(run) / "best.pt"
    if not path.is_file():
        sys.exit(f"--run {run}: no best.pt there; give an `edgenas shrink` run folder")
    model = model_from_checkpoint(load_checkpoint(path), str(path))
    if not isinstance(model, HRSupernet):
        sys.exit(f"--run {run}: best.pt is not an HR-NAS network")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--run", help="an `edgenas shrink` run folder (default: the bench supernet)"
    )
    parser.add_argument("--input", default="180x240", help="HxW")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--threads", type=int, default=1, help="onnxruntime threads of the latency sessions"
    )
    parser.add_argument("--export", choices=("dynamic", "static"), default="dynamic")
    args = parser.parse_args()
    torch.set_num_threads(1)
    shape = (1, 3, *(int(d) for d in args.input.split("x")))
    new = load(args.run).eval()
    old = concat_version(new).eval()
    macs_new, macs_old = count_macs(new, shape), count_macs(old, shape)
    print(
        f"MACs: concatenated {macs_old / 1e6:.2f}M, per branch {macs_new / 1e6:.2f}M "
        f"({macs_new / macs_old:.3f}x)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        files = {"concatenated": Path(tmp) / "concat.onnx", "per branch": Path(tmp) / "branch.onnx"}
        for name, model in (("concatenated", old), ("per branch", new)):
            export_onnx(model, shape, files[name], dynamic=args.export == "dynamic")
        image = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        outputs = [
            ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(
                None, {"input": image}
            )[0]
            for p in files.values()
        ]
        scale = float(np.abs(outputs[0]).max())
        print(
            f"outputs: max abs difference {np.abs(outputs[0] - outputs[1]).max():.2e} "
            f"(largest output {scale:.2f})"
        )
        names = list(files)

        def report(round_index: int, times: list[list[float]]) -> None:
            print(
                f"round {round_index + 1}/{args.rounds}: "
                + "  ".join(f"{n} {t[-1]:.3f} ms" for n, t in zip(names, times, strict=True)),
                flush=True,
            )

        times = dict(zip(names, interleaved_fastest_medians(
            [files[n] for n in names], "cpu", PROTOCOL, args.rounds, threads=args.threads,
            input_shapes={"input": shape}, on_round=report,
        ), strict=True))  # fmt: skip
    ratios = [b / a for a, b in zip(times["concatenated"], times["per branch"], strict=True)]
    print(
        f"\n{'x'.join(map(str, shape))}, {args.export} export, {args.threads} thread(s), "
        f"{args.rounds} interleaved rounds"
    )
    for name in files:
        print(f"{name:13s} median {statistics.median(times[name]):.3f} ms")
    print(
        f"per branch / concatenated: median {statistics.median(ratios):.3f} "
        f"(range {min(ratios):.2f}-{max(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
