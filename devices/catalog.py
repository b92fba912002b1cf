"""Device catalog: the built-in TOML shipped with the package plus the user's own file.

A device entry is plain data (:class:`DeviceEntry`); whether it is usable right now is
asked of its backend (see :func:`edgenas.devices.backends.check_availability`).
"""

from __future__ import annotations

import dataclasses
import math
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


# Upper bounds that catch typos (threads = 4000, cooldown_s = 3e5) without limiting any
# real device: no phone or CPU edgenas targets has more cores, and an hour between
# sessions is already far longer than any cooling a phone needs.
MAX_THREADS = 1024
MAX_COOLDOWN_S = 3600.0
MAX_CORES = 1024
# Device names end up in file names (latency tables: DEVICE-tN.json), so they are kept to
# characters that are safe there.
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+")

_TEXT_FIELDS = (
    "kind",
    "backend",
    "description",
    "plugin",
    "soc",
    "abi",
    "model_match",
    "serial",
    "runner",
)


def _whole_number(value, low: int, high: int) -> bool:
    # TOML booleans are Python bools, which are ints: `threads = true` must not mean 1.
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _field_problem(field_name: str, value) -> str | None:
    """What is wrong with one field's value (None when it is fine)."""
    if field_name in _TEXT_FIELDS:
        return None if isinstance(value, str) else "must be a quoted string"
    if field_name == "threads":
        if _whole_number(value, 1, MAX_THREADS):
            return None
        return f"must be a whole number from 1 to {MAX_THREADS}"
    if field_name in ("big_cores", "little_cores"):
        if _whole_number(value, 0, MAX_CORES):
            return None
        return f"must be a whole number from 0 to {MAX_CORES}"
    if field_name == "cooldown_s":
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number and math.isfinite(value) and 0 <= value <= MAX_COOLDOWN_S:
            return None
        return f"must be a number of seconds from 0 to {MAX_COOLDOWN_S:g}"
    return None


def _check_entry(source: str, name: str, raw: dict) -> None:
    """Refuse an entry whose name, field names or field values cannot be used."""
    if not name or not set(name) <= NAME_CHARS or name.startswith("."):
        raise UserError(
            f"bad devices file {source}: device name {name!r} may only use letters, digits "
            "and - _ . + (and must not start with a dot); rename the entry"
        )
    unknown = set(raw) - _FIELDS
    if unknown:
        raise UserError(
            f"bad devices file {source}: devices.{name} has unknown field(s) "
            f"{', '.join(sorted(unknown))} (known: {', '.join(sorted(_FIELDS))})"
        )
    for field_name, value in raw.items():
        problem = _field_problem(field_name, value)
        if problem is not None:
            raise UserError(
                f"bad devices file {source}: devices.{name}.{field_name} {problem}, "
                f"got {value!r}; fix that line"
            )


def parse_catalog(text: str, source: str, base: dict[str, DeviceEntry] | None = None):
    """Parse catalog TOML text into entries, merged field by field over ``base``.

    Pure function: every field's type and range is checked here, so a bad file is
    refused when it is loaded, with a UserError naming ``source``, the entry, the field,
    the value and what is expected (never later, as a runtime's error).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"bad devices file {source}: {err}") from None
    # A misspelt table ([device.cpu]) would otherwise be ignored without a word.
    extra = sorted(set(data) - {"devices"})
    if extra:
        raise UserError(
            f"bad devices file {source}: unknown key(s) {', '.join(extra)}; entries go in "
            "[devices.NAME] tables"
        )
    devices = data.get("devices", {})
    if not isinstance(devices, dict):
        raise UserError(f"bad devices file {source}: [devices] must be a table of entries")
    entries = dict(base or {})
    for name, raw in devices.items():
        if not isinstance(raw, dict):
            raise UserError(f"bad devices file {source}: devices.{name} must be a table")
        _check_entry(source, name, raw)
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
                f"{', '.join(RUNNERS)}, got {merged.get('runner')!r}"
            )
        if kind == "android":
            merged.setdefault("runner", "onnxruntime_perf_test")
        entries[name] = DeviceEntry(**merged)
    return entries


def read_catalog_text(path: Path) -> str:
    """The text of a user devices file; a folder or bytes that are not UTF-8 are one line."""
    if path.is_dir():
        raise UserError(f"devices file {path} is a folder; give the path of a .toml file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise UserError(
            f"bad devices file {path}: byte 0x{data[err.start]:02x} on line {line} is not "
            "UTF-8 text; save the file as UTF-8"
        ) from None


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
        if not path.exists():
            raise UserError(f"devices file {path} not found; check the --devices-file path")
    else:
        path = default_user_file()
        if not path.exists():
            return Catalog(entries, None)
    entries = parse_catalog(read_catalog_text(path), str(path), entries)
    return Catalog(entries, path)
