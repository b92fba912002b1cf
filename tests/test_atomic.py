"""The one atomic writer (edgenas.atomic) and the writers that go through it.

Finished files must get the mode an ordinary ``open()`` gives under the user's umask
(not the 0600 of the temporary file), and a failure while writing must leave no
temporary file and the old destination untouched.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch
from torch import nn

from edgenas.atomic import atomic_path, default_file_mode, write_bytes_atomic, write_text_atomic


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_default_file_mode_follows_the_umask():
    old = os.umask(0o027)
    try:
        assert default_file_mode() == 0o640
        assert os.umask(0o027) == 0o027  # reading the umask left it as it was
    finally:
        os.umask(old)


def test_text_and_bytes_writers_give_the_umask_mode(tmp_path, umask_022):
    write_text_atomic(tmp_path / "sub" / "a.txt", "héllo\n")
    write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "sub" / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert mode(tmp_path / "sub" / "a.txt") == 0o644 and mode(tmp_path / "b.bin") == 0o644
    assert listing(tmp_path) == ["b.bin", "sub"] and listing(tmp_path / "sub") == ["a.txt"]


def test_other_umasks_are_followed_too(tmp_path):
    old = os.umask(0o002)
    try:
        write_text_atomic(tmp_path / "shared.txt", "x")
    finally:
        os.umask(old)
    assert mode(tmp_path / "shared.txt") == 0o664


def test_a_failure_inside_leaves_no_temp_file_and_the_old_file_intact(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("half written")
        assert tmp.parent == tmp_path and tmp.exists()
        raise RuntimeError("boom")
    assert target.read_text() == "old\n"
    assert listing(tmp_path) == ["result.json"]


def test_a_failed_checkpoint_save_keeps_the_previous_checkpoint(tmp_path):
    from edgenas.checkpoint import atomic_save

    target = tmp_path / "checkpoint.pt"
    atomic_save({"step": 1}, target)
    with pytest.raises(Exception):  # noqa: B017 - whatever pickling raises
        atomic_save({"step": 2, "bad": lambda: None}, target)
    assert torch.load(target, weights_only=True) == {"step": 1}
    assert listing(tmp_path) == ["checkpoint.pt"]


def test_checkpoint_writer_gives_0644(tmp_path, umask_022):
    from edgenas.checkpoint import atomic_save

    atomic_save({"w": torch.ones(2)}, tmp_path / "ckpt" / "checkpoint.pt")
    path = tmp_path / "ckpt" / "checkpoint.pt"
    assert mode(path) == 0o644
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(2))


def test_device_result_writer_gives_0644(tmp_path, umask_022):
    from edgenas.devices.result import write_atomic

    write_atomic(tmp_path / "latency.json", '{"a": 1}\n')
    assert mode(tmp_path / "latency.json") == 0o644
    assert json.loads((tmp_path / "latency.json").read_text()) == {"a": 1}
    assert listing(tmp_path) == ["latency.json"]


def test_task_json_writer_gives_0644_and_nulls_nan(tmp_path, umask_022):
    from edgenas.tasks.runner import write_json

    write_json({"psnr": float("nan"), "x": [1.5]}, tmp_path / "metrics.json")
    assert mode(tmp_path / "metrics.json") == 0o644
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"psnr": None, "x": [1.5]}


def test_synthetic_bench_model_gives_0644(tmp_path, umask_022):
    import onnx

    from edgenas.bench.synthetic import conv_chain_onnx

    path = conv_chain_onnx(tmp_path / "chain.onnx", 2, channels=4, size=8)
    assert mode(path) == 0o644
    onnx.checker.check_model(onnx.load(str(path)))
    assert listing(tmp_path) == ["chain.onnx"]


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))


def test_export_onnx_gives_0644_and_leaves_no_staging(tmp_path, umask_022):
    import onnx

    from edgenas.export import export_onnx

    report = export_onnx(_tiny(), (1, 3, 16, 16), tmp_path / "out" / "model.onnx")
    path = Path(report.path)
    assert mode(path) == 0o644
    onnx.checker.check_model(onnx.load(str(path)))
    assert listing(tmp_path / "out") == ["model.onnx"]


def test_export_openvino_ir_gives_0644(tmp_path, umask_022):
    from edgenas.export import export_onnx

    report = export_onnx(_tiny(), (1, 3, 16, 16), tmp_path / "model.xml", openvino=True)
    assert listing(tmp_path) == ["model.bin", "model.xml"]
    assert mode(Path(report.path)) == 0o644 and mode(tmp_path / "model.bin") == 0o644


def test_latency_table_part_export_gives_0644(tmp_path, umask_022):
    from edgenas.latency_table import export_model

    export_model(_tiny().eval(), (1, 3, 8, 8), tmp_path / "part.onnx")
    assert mode(tmp_path / "part.onnx") == 0o644
    assert listing(tmp_path) == ["part.onnx"]


def test_run_store_gives_0644_and_opens(tmp_path, umask_022):
    from edgenas.store import RunStore

    with RunStore.create(tmp_path / "run", name="r", kind="test", config={"a": 1}) as store:
        assert mode(store.path) == 0o644
    # No staging file left behind; run.lock is the run's writer lock (edgenas.store).
    assert listing(tmp_path / "run") == ["run.lock", "run.sqlite"]
    assert not [n for n in listing(tmp_path / "run") if n.startswith(".")]
    with RunStore.open_readonly(tmp_path / "run") as store:
        assert store.run_info().config == {"a": 1}


def test_a_failed_write_removes_the_folders_it_made(tmp_path):
    target = tmp_path / "new" / "deeper" / "file.txt"
    with pytest.raises(RuntimeError), atomic_path(target):
        raise RuntimeError("the writer failed")
    assert listing(tmp_path) == []  # neither the file, a temporary file nor new/deeper
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "kept" / "f"):
        raise RuntimeError("the writer failed")
    assert listing(tmp_path) == ["kept"]  # a folder that was there stays
