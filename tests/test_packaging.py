"""Packaging: every package is listed, import names map to the right folders."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {"edgenas": "edgenas", "edgenas.devices": "devices", "edgenas.tui": "tui"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = set()
    for import_name, folder in PACKAGE_DIRS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            found.add(".".join([import_name, *init.parent.relative_to(ROOT / folder).parts]))
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
    assert listed <= found, f"listed packages with no folder: {sorted(listed - found)}"


def test_package_dir_mapping():
    assert _pyproject()["tool"]["setuptools"]["package-dir"] == PACKAGE_DIRS


def test_light_packages_do_not_import_torch():
    code = (
        "import sys, edgenas, edgenas.tui, edgenas.devices, edgenas.cli;"
        "assert 'torch' not in sys.modules, 'torch imported';"
        "print(edgenas.devices.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).parent.name == "devices"


def test_torch_pin_admits_the_cpu_wheel():
    from packaging.specifiers import SpecifierSet

    torch_spec = next(d for d in _pyproject()["project"]["dependencies"] if d.startswith("torch"))
    assert "2.13.0" in SpecifierSet(torch_spec.removeprefix("torch"))
    readme = (ROOT / "README.md").read_text()
    assert "pip install torch==2.13.0 &&" in readme
