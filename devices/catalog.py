"""Device catalog: the built-in TOML shipped with the package plus the user's own file.

A device entry is plain data (:class:`DeviceEntry`); whether it is usable right now is
asked of its backend (see :func:`edgenas.devices.backends.check_availability`).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from edgenas.errors import UserError

KINDS = ("host", "openvino", "android")
BACKENDS = {"host": "onnxruntime", "openvino": "openvino", "android": "adb"}
RUNNERS = ("onnxruntime_perf_test", "benchmark_model")


@dataclass(frozen=True)
class DeviceEntry:
    """One device of the catalog.

    Attributes:
        name: the name used on the command line (``cpu``, ``pixel3a``).
        kind: ``host`` (onnxruntime here), ``openvino`` or ``android``.
        backend: ``onnxruntime``, ``openvino`` or ``adb``.
        description: one line for humans.
        threads: default intra-op thread count (None: the backend's default; on
            Android, the number of big cores).
        plugin: OpenVINO device name (``CPU``, ``GPU``, ``NPU``).
        soc, abi, big_cores, little_cores: what the phone is expected to be.
        model_match: substring of ``ro.product.model`` that picks this phone when
            several are connected.
        serial: adb serial of the phone (empty: the only one connected).
        runner: on-device benchmark program, ``onnxruntime_perf_test`` or
            ``benchmark_model`` (TFLite).
        cooldown_s: pause between measurement sessions (phones heat up).
        source: ``builtin`` or the path of the user catalog that defined it.
    """

    name: str
    kind: str
    backend: str
    description: str = ""
    threads: int | None = None
    plugin: str = ""
    soc: str = ""
    abi: str = ""
    big_cores: int | None = None
    little_cores: int | None = None
    model_match: str = ""
    serial: str = ""
    runner: str = ""
    cooldown_s: float = 0.0
    source: str = "builtin"

    def to_dict(self) -> dict:
        """Plain dict of the entry (for JSON and `devices show`)."""
        return dataclasses.asdict(self)


_FIELDS = {f.name for f in dataclasses.fields(DeviceEntry)} - {"name", "source"}


@dataclass
class Catalog:
    """Named device entries, built-in first, user entries merged over them."""

    entries: dict[str, DeviceEntry] = field(default_factory=dict)
    user_file: Path | None = None

    def names(self) -> list[str]:
        return list(self.entries)

    def get(self, name: str) -> DeviceEntry:
        """The entry called ``name``; UserError listing the known names otherwise."""
        try:
            return self.entries[name]
        except KeyError:
            known = ", ".join(self.entries)
            raise UserError(
                f"unknown device {name!r} (known: {known}); add it to your devices file, "
                "see `edgenas devices list`"
            ) from None


def config_dir() -> Path:
    """Directory of edgenas's user configuration (read at call time, never at import).

    ``EDGENAS_CONFIG_DIR`` wins, then ``$XDG_CONFIG_HOME/edgenas``, then
    ``~/.config/edgenas``.
    """
    if os.environ.get("EDGENAS_CONFIG_DIR"):
        return Path(os.environ["EDGENAS_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "edgenas"


def default_user_file() -> Path:
    """Where the user catalog lives when no ``--devices-file`` is given."""
    return config_dir() / "devices.toml"


def parse_catalog(text: str, source: str, base: dict[str, DeviceEntry] | None = None):
    """Parse catalog TOML text into entries, merged field by field over ``base``.

    Pure function: raises UserError naming ``source`` and the bad entry or field.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"bad devices file {source}: {err}") from None
    devices = data.get("devices", {})
    if not isinstance(devices, dict):
        raise UserError(f"bad devices file {source}: [devices] must be a table of entries")
    entries = dict(base or {})
    for name, raw in devices.items():
        if not isinstance(raw, dict):
            raise UserError(f"bad devices file {source}: devices.{name} must be a table")
        unknown = set(raw) - _FIELDS
        if unknown:
            raise UserError(
                f"bad devices file {source}: devices.{name} has unknown field(s) "
                f"{', '.join(sorted(unknown))} (known: {', '.join(sorted(_FIELDS))})"
            )
        merged = entries[name].to_dict() if name in entries else {}
        merged.update(raw)
        merged.update(name=name, source=source)
        kind = merged.get("kind")
        if kind not in KINDS:
            raise UserError(
                f"bad devices file {source}: devices.{name}.kind must be one of "
                f"{', '.join(KINDS)} (got {kind!r})"
            )
        merged.setdefault("backend", BACKENDS[kind])
        if merged["backend"] != BACKENDS[kind]:
            raise UserError(
                f"bad devices file {source}: devices.{name}: kind {kind!r} goes with backend "
                f"{BACKENDS[kind]!r}, not {merged['backend']!r}"
            )
        if kind == "android" and merged.get("runner", "onnxruntime_perf_test") not in RUNNERS:
            raise UserError(
                f"bad devices file {source}: devices.{name}.runner must be one of "
                f"{', '.join(RUNNERS)}"
            )
        if kind == "android":
            merged.setdefault("runner", "onnxruntime_perf_test")
        try:
            entries[name] = DeviceEntry(**merged)
        except TypeError as err:
            raise UserError(f"bad devices file {source}: devices.{name}: {err}") from None
    return entries


def builtin_catalog_text() -> str:
    """The TOML text of the catalog shipped with the package."""
    return resources.files("edgenas.devices").joinpath("catalog.toml").read_text("utf-8")


def load_catalog(devices_file: str | Path | None = None) -> Catalog:
    """Built-in catalog merged with the user catalog.

    ``devices_file`` must exist when given; otherwise the default user file is read if
    it exists.
    """
    entries = parse_catalog(builtin_catalog_text(), "builtin")
    if devices_file is not None:
        path = Path(devices_file)
        if not path.is_file():
            raise UserError(f"devices file {path} not found; check the --devices-file path")
    else:
        path = default_user_file()
        if not path.is_file():
            return Catalog(entries, None)
    entries = parse_catalog(path.read_text("utf-8"), str(path), entries)
    return Catalog(entries, path)
