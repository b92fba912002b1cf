"""Bad data is refused in one line before any run folder exists (issue 15, data side).

`train`, `search`, `shrink` and `eval` read every label and depth map (and every image
header) of the data they are given before they start: a label outside the classes, an
8-bit or empty depth map, a corrupt, missing or mismatched file, a folder that is a
file or cannot be read, or a `--format` that is no layout of the task is one line
naming the file and the value, exit 2, and nothing written. The datasets are tiny
folders built once for the module; see tests/bad_inputs.py for the contract.
"""

from __future__ import annotations

import ctypes
import os
import subprocess

import numpy as np
import pytest
from bad_inputs import case, check_rejected
from data_helpers import camvid, grey, nyu, sr_folder, striped_labels
from PIL import Image

# Short runs that would start at once if the data passed (and write into out/ or runs/).
TRAIN = ("--seconds", "1", "--input", "32x32", "--no-export", "--quiet", "-o", "out")
SEARCH = ("--train-seconds", "1", "--name", "s")
SHRINK = ("--seconds", "1", "--name", "s")


def _label_200(split: str, i: int) -> np.ndarray:
    label = striped_labels()
    if split == "train" and i == 1:
        label[3, 4] = 200
    return label


def _tiny_onnx(path, classes: int = 11) -> None:
    """A 1x1 convolution from RGB to ``classes`` logits, any input size (onnx only)."""
    from onnx import TensorProto, helper, numpy_helper, save

    weight = numpy_helper.from_array(np.zeros((classes, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["output"])],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, classes, "h", "w"])],
        [weight],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Each bad dataset in its own folder under data/, plus a file and a tiny model."""
    root = tmp_path_factory.mktemp("data-bad")
    data = root / "data"
    camvid(data / "label-200", labels=_label_200)
    camvid(data / "label-16bit-300", labels=lambda s, i: np.full((32, 32), 300, np.uint16))
    camvid(data / "all-unlabelled", labels=lambda s, i: np.full((32, 32), 11, np.uint8))
    camvid(data / "size-mismatch")
    grey(data / "size-mismatch" / "valannot" / "f2.png", np.zeros((16, 32), np.uint8))
    camvid(data / "truncated-image")
    whole = (data / "truncated-image" / "train" / "f1.png").read_bytes()
    (data / "truncated-image" / "train" / "f1.png").write_bytes(whole[: len(whole) // 2])
    camvid(data / "bad-checksum")
    label = bytearray((data / "bad-checksum" / "valannot" / "f2.png").read_bytes())
    label[60] ^= 0xFF  # inside the compressed pixels: the chunk's CRC no longer matches
    (data / "bad-checksum" / "valannot" / "f2.png").write_bytes(bytes(label))
    nyu(data / "depth-8bit", depth_mm=lambda i: np.full((32, 32), 120, np.uint8))
    nyu(data / "depth-zero", depth_mm=lambda i: np.zeros((32, 32), np.uint16))
    nyu(
        data / "depth-one-zero",
        n=10,
        depth_mm=lambda i: np.zeros((32, 32), np.uint16) if i == 4 else None,
    )
    sr_folder(data / "sr-tiny-val" / "train")
    sr_folder(data / "sr-tiny-val" / "val", size=12)
    (data / "sr-float").mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((32, 32), np.float32)).save(data / "sr-float" / f"f{i}.tif")
    (root / "a-file").write_text("not a dataset\n")
    camvid(data / "locked")
    _tiny_onnx(root / "seg.onnx")
    return root


CASES = [
    # labels outside the classes (IndexError tracebacks in train, search and shrink)
    case("train", "--task", "seg", "--data", "data/label-200", *TRAIN,
         says=("label 200", "label-200/trainannot/f1.png", "0-10")),
    case("search", "--task", "seg", "--data", "data/label-200", *SEARCH,
         says=("label 200", "trainannot/f1.png")),
    case("shrink", "--task", "seg", "--data", "data/label-200", *SHRINK,
         says=("label 200", "trainannot/f1.png")),
    case("eval", "--task", "seg", "--data", "data/label-200", "--split", "all",
         "--onnx", "seg.onnx", says=("label 200", "trainannot/f1.png")),
    case("train", "--task", "seg", "--data", "data/label-16bit-300", *TRAIN,
         says=("label 300", "trainannot/f0.png")),
    case("train", "--task", "seg", "--data", "data/all-unlabelled", *TRAIN,
         says="every label pixel of the train split"),
    # depth: 8-bit PNGs, no valid pixel (NaN metrics, "accuracy 0")
    case("train", "--task", "depth", "--data", "data/depth-8bit", *TRAIN,
         says=("depth-8bit/depth/d0.png is 8-bit", "16-bit in millimetres")),
    case("train", "--task", "depth", "--data", "data/depth-zero", *TRAIN,
         says=("3 of the 3 depth maps", "no valid pixel", "depth-zero/depth/d0.png")),
    case("search", "--task", "depth", "--data", "data/depth-one-zero", *SEARCH,
         says=("1 of the 9 depth maps of the train split has no valid pixel", "d4.png")),
    # files: missing, mismatched, corrupt
    case("train", "--task", "seg", "--data", "data/size-mismatch", *TRAIN,
         says=("size mismatch", "valannot/f2.png is 32x16")),
    case("train", "--task", "seg", "--data", "data/truncated-image", *TRAIN,
         says=("cannot read image", "train/f1.png")),
    case("shrink", "--task", "seg", "--data", "data/bad-checksum", *SHRINK,
         says=("valannot/f2.png",)),
    # super-resolution
    case("eval", "--task", "sr", "--data", "data/sr-tiny-val", "--baseline", "bicubic",
         says=("too small to score at x2", "val/i0.png (12x12)")),
    case("eval", "--task", "sr", "--data", "data/sr-float", "--baseline", "bicubic",
         says=("f0.tif is 32-bit float",)),
    # folders
    case("train", "--task", "seg", "--data", "a-file", *TRAIN, says="a-file is a file, not a folder"),
    case("shrink", "--task", "seg", "--val-data", "a-file", *SHRINK, says="--val-data a-file is a file"),
    # --format: always checked, with or without --data
    case("train", "--task", "seg", "--format", "bogus", *TRAIN, says=("--format", "invalid choice: 'bogus'")),
    case("search", "--format", "bogus", *SEARCH, says=("--format", "invalid choice")),
    case("shrink", "--task", "seg", "--format", "bogus", *SHRINK, says=("--format", "invalid choice")),
    case("eval", "--task", "sr", "--format", "bogus", "--baseline", "bicubic", says="invalid choice"),
    case("eval", "--task", "sr", "--format", "nyu", "--baseline", "bicubic",
         says="--format nyu is a depth layout; sr data takes sr-folder or sr-paired"),
]  # fmt: skip


@pytest.mark.parametrize("bad", CASES, ids=lambda c: c.id)
def test_bad_data_is_refused_before_anything_is_written(bad, workspace):
    check_rejected(bad, workspace)


def _without_root_powers() -> None:
    """Drop the capabilities that let root read any file (CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH) from the bounding set, so that mode 000 stops root too."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.parametrize(
    "locked, says",
    [
        ("locked", "cannot read --data folder data/locked: permission denied"),
        ("locked/trainannot/f1.png", "trainannot/f1.png"),
    ],
)
def test_unreadable_data_is_one_line(workspace, locked, says):
    preexec = None
    if os.geteuid() == 0:
        try:
            subprocess.run(["true"], preexec_fn=_without_root_powers, check=True)
        except (subprocess.SubprocessError, OSError):
            pytest.skip("root here cannot give up reading unreadable files")
        preexec = _without_root_powers
    path = workspace / "data" / locked
    mode = path.stat().st_mode
    path.chmod(0)
    try:
        bad = case("train", "--task", "seg", "--data", "data/locked", *TRAIN, says=says)
        check_rejected(bad, workspace, preexec=preexec)
    finally:
        path.chmod(mode)
