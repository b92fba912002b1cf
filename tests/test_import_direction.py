"""Imports point down the layers: nothing below the CLI imports it, no private names leak.

Every ``.py`` file of the three source folders is parsed (not imported) and its import
statements are read, so the check is cheap and sees lazy imports inside functions too.
The folders map to import names as in pyproject's ``package-dir``: ``edgenas/`` is
``edgenas``, ``devices/`` is ``edgenas.devices`` and ``tui/`` is ``edgenas.tui``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "edgenas": ROOT / "edgenas",
    "edgenas.devices": ROOT / "devices",
    "edgenas.tui": ROOT / "tui",
}


def module_name(package: str, folder: Path, path: Path) -> str:
    """The import name of ``path`` inside ``folder`` (imported as ``package``)."""
    parts = list(path.relative_to(folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def source_modules() -> dict[str, Path]:
    """Import name -> file, for every module of the three source folders."""
    modules = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" not in path.parts:
                modules[module_name(package, folder, path)] = path
    return modules


def imports(name: str, path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, imported module, names taken from it)`` for each import in the file.

    ``import a.b`` gives ``("a.b", [])``; ``from a import x, y`` gives ``("a", ["x", "y"])``.
    Relative imports are resolved against the module's own package.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, target]) if target else ".".join(base)
            found.append((node.lineno, target, [alias.name for alias in node.names]))
    return sorted(found)


def where(path: Path, line: int) -> str:
    """``path:line``, relative to the repository when the file is in it."""
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return f"{shown}:{line}"


def is_private(name: str) -> bool:
    """A single-underscore name (``_helper``); dunders such as ``__version__`` are public."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def is_edgenas(module: str) -> bool:
    return module == "edgenas" or module.startswith("edgenas.")


def is_cli(module: str) -> bool:
    return module == "edgenas.cli" or module.startswith("edgenas.cli.")


def test_the_walk_sees_all_three_folders():
    modules = source_modules()
    assert "edgenas.cli.common" in modules
    assert "edgenas.devices.result" in modules
    assert "edgenas.tui" in modules
    assert "edgenas.parsing" in modules


def test_only_the_cli_imports_the_cli():
    offenders = []
    for name, path in source_modules().items():
        if is_cli(name) or name == "edgenas.__main__":
            continue
        for line, module, names in imports(name, path):
            targets = [module] + [f"{module}.{n}" for n in names if module == "edgenas"]
            if any(is_cli(t) for t in targets):
                offenders.append(f"{where(path, line)} imports {module}")
    assert not offenders, "modules below the CLI import edgenas.cli:\n" + "\n".join(offenders)


def private_imports(name: str, path: Path, modules: dict[str, Path]) -> list[str]:
    """What ``name`` (at ``path``) imports that is private to another edgenas module.

    A private name (``from edgenas.x import _y``) belongs to module ``edgenas.x`` alone;
    a private module (``edgenas.x._impl``) may be imported from inside package
    ``edgenas.x`` only. ``modules`` tells the two apart.
    """
    found = []
    for line, module, names in imports(name, path):
        if not is_edgenas(module):
            continue
        targets = [f"{module}.{n}" for n in names] if names else [module]
        for target in targets:
            parts = target.split(".")
            for i, part in enumerate(parts):
                if not is_private(part):
                    continue
                owner = ".".join(parts[:i])
                is_module = ".".join(parts[: i + 1]) in modules
                if name != owner and not (is_module and name.startswith(owner + ".")):
                    found.append(f"{where(path, line)} imports {target}")
                    break
    return found


def test_no_module_imports_another_modules_private_names():
    modules = source_modules()
    offenders = [
        offence
        for name, path in modules.items()
        for offence in private_imports(name, path, modules)
    ]
    assert not offenders, "private names imported across modules:\n" + "\n".join(offenders)


def test_the_checks_catch_what_they_are_meant_to(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from edgenas.cli.common import parse_shape\n"
        "def f():\n"
        "    from edgenas.latency_table import _helper, __version__\n"
        "    from . import _sibling\n"
    )
    found = imports("edgenas.bench.bad", bad)
    assert (1, "edgenas.cli.common", ["parse_shape"]) in found
    assert (3, "edgenas.latency_table", ["_helper", "__version__"]) in found
    assert (4, "edgenas.bench", ["_sibling"]) in found
    assert is_cli("edgenas.cli.common") and not is_cli("edgenas.client")
    assert is_private("_helper") and not is_private("__version__") and not is_private("helper")

    modules = {"edgenas.bench._impl": bad, "edgenas.bench.bad": bad}
    offences = private_imports("edgenas.bench.bad", bad, modules)
    assert [o.rsplit(" ", 1)[1] for o in offences] == [
        "edgenas.latency_table._helper",
        "edgenas.bench._sibling",
    ]
    # A private module of the importer's own package is fine; from elsewhere it is not.
    inside = tmp_path / "inside.py"
    inside.write_text("from edgenas.bench import _impl\nimport edgenas.bench._impl\n")
    assert private_imports("edgenas.bench.inside", inside, modules) == []
    assert len(private_imports("edgenas.search.inside", inside, modules)) == 2
