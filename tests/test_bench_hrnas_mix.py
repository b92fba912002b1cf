"""benchmarks/bench_hrnas_mix.py: the concatenating mix it compares against computes
what BranchMix computes, with the MACs the concatenation costs."""

from __future__ import annotations

import pytest
import torch

from edgenas.hrnas.config import SupernetConfig
from edgenas.hrnas.costs import count_hrnas_macs
from edgenas.hrnas.supernet import HRSupernet


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("bench_hrnas_mix")


def test_the_concatenating_copy_computes_the_same_at_the_concatenated_cost(bench):
    torch.manual_seed(0)
    config = SupernetConfig(widths=(4, 8, 12), branches=(1, 2, 3), tokens=0, head_channels=6)
    model = HRSupernet(config, "seg", num_classes=3).eval()
    old = bench.concat_version(model).eval()
    image = torch.randn(1, 3, 36, 44)  # 9x11 at 1/4, 5x6 and 3x3 below: no factor-2 resizes
    with torch.no_grad():
        assert torch.allclose(model(image), old(image), atol=1e-5)
    saving = 6 * (8 * (9 * 11 - 5 * 6) + 12 * (9 * 11 - 3 * 3))
    assert count_hrnas_macs(old, image.shape) - count_hrnas_macs(model, image.shape) == saving


def test_a_run_folder_without_best_pt_is_refused_in_one_line(bench, tmp_path):
    with pytest.raises(SystemExit, match=r"no best\.pt there"):
        bench.load(str(tmp_path))
