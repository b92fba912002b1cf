"""onnxsim's constant-folding notes stay off the user's terminal; other output does not."""

from __future__ import annotations

import os

from edgenas.export import FOLDING_NOTE, _without_folding_notes, export_onnx
from edgenas.hrnas.config import SupernetConfig
from edgenas.hrnas.supernet import HRSupernet


def test_native_stderr_passes_through_except_the_folding_notes(capfd):
    with _without_folding_notes():
        os.write(2, f'{FOLDING_NOTE}"Add" op (name is "/x/Add"), skip...\n'.encode())
        os.write(2, b"onnxsim: a real problem\n")
    err = capfd.readouterr().err
    assert "a real problem" in err
    assert FOLDING_NOTE not in err


def test_a_fixed_size_hrnas_export_prints_no_folding_notes(tmp_path, capfd):
    # At a fixed size onnxsim cannot fold the transformer's positional Add and said so
    # once per transformer (4 lines for this supernet) before the notes were filtered.
    model = HRSupernet(SupernetConfig(widths=(8, 16), branches=(1, 2)), "seg").eval()
    export_onnx(model, (1, 3, 32, 40), tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").is_file()
    assert FOLDING_NOTE not in capfd.readouterr().err
