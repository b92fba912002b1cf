"""The bench spec (TOML): which models to measure, where, how, and how much slower is too slow.

Parsing is pure: :func:`parse_spec` turns the TOML data into dataclasses and checks every
field; files, devices and genotypes are looked at only when the spec is run.

    threshold = "10%"             # default for every case
    alpha = 0.05                  # significance level of the U test
    devices = ["cpu"]

    [protocol]                    # edgenas profile's options
    runs = 20
    warmup = 5
    sessions = 10
    threads = 1

    [[case]]
    name = "depth-small"
    onnx = "models/depth.onnx"    # relative to the spec file
    input = "1x3x240x320"         # optional: shape of a free-dimension input

    [[case]]
    name = "seg-ref"
    genotype = "S2:..."
    task = "seg"
    input = "1x3x120x160"
    num_classes = 11
    devices = ["cpu", "openvino-cpu"]
    threshold = "15%"
    protocol = { sessions = 12 }
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from edgenas.errors import UserError

DEFAULT_THRESHOLD = 0.10
DEFAULT_ALPHA = 0.05
# With 4 sessions per side the smallest two-sided U-test p-value is 2/70 = 0.029; with
# 3 it is 0.1, so a regression could never be called real.
MIN_SESSIONS = 4
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

TOP_KEYS = {"threshold", "alpha", "devices", "protocol", "case"}
CASE_KEYS = {
    "name",
    "onnx",
    "genotype",
    "task",
    "input",
    "num_classes",
    "scale",
    "upsampler",
    "devices",
    "threshold",
    "protocol",
}
PROTOCOL_KEYS = {"runs", "warmup", "sessions", "min_time", "cooldown", "threads"}


@dataclass(frozen=True)
class BenchProtocol:
    """Measurement settings of a case (``edgenas profile``'s options)."""

    runs: int = 20
    warmup: int = 5
    sessions: int = 10
    min_time: float = 0.0
    cooldown: float | None = None  # None: the device entry's cooldown_s
    threads: int | None = None  # None: the device entry's threads

    def to_dict(self) -> dict:
        return {
            "runs": self.runs,
            "warmup": self.warmup,
            "sessions": self.sessions,
            "min_time": self.min_time,
            "cooldown": self.cooldown,
            "threads": self.threads,
        }


@dataclass(frozen=True)
class BenchCase:
    """One model to measure: an ONNX file, or a genotype exported for a task and input."""

    name: str
    devices: tuple[str, ...]
    protocol: BenchProtocol
    threshold: float | None = None  # None: the spec's (or `check --threshold`)
    onnx: Path | None = None
    genotype: str | None = None
    task: str = "depth"
    input: tuple[int, ...] | None = None
    task_options: dict = field(default_factory=dict)

    def source(self) -> dict:
        """What was measured, as recorded in results (enough to measure it again)."""
        shape = None if self.input is None else list(self.input)
        if self.onnx is not None:
            return {"onnx": str(self.onnx), "input": shape}
        return {
            "genotype": self.genotype,
            "task": self.task,
            "input": shape,
            **self.task_options,
        }


@dataclass(frozen=True)
class BenchSpec:
    """A parsed spec file."""

    path: Path | None
    threshold: float
    alpha: float
    cases: tuple[BenchCase, ...]

    def case(self, name: str) -> BenchCase | None:
        return next((c for c in self.cases if c.name == name), None)


def parse_threshold(value: object, where: str = "threshold") -> float:
    """``"10%"``, ``"10"``-free fractions like ``0.1``: a relative slow-down > 0.

    A bare number must be a fraction below 1 (``0.1``); ``10`` is refused because it is
    unclear whether 10% or 1000% was meant.
    """
    text = str(value).strip()
    try:
        if text.endswith("%"):
            fraction = float(text[:-1]) / 100.0
        elif isinstance(value, bool):
            raise ValueError
        else:
            fraction = float(text)
            if fraction >= 1:
                raise UserError(
                    f"{where} {text!r} is ambiguous: write a percentage ({text}%) or a "
                    f"fraction below 1 ({float(text) / 100:g})"
                )
    except ValueError:
        raise UserError(f"bad {where} {text!r}: write e.g. 10% or 0.10") from None
    if not 0 < fraction < 10:
        raise UserError(f"bad {where} {text!r}: must be above 0%")
    return fraction


def _parse_shape(text: object, where: str) -> tuple[int, ...]:
    from edgenas.parsing import check_input_fits, parse_input_shape

    if not isinstance(text, str):
        raise UserError(f'{where}: input must be a string like "1x3x240x320"')
    shape = parse_input_shape(text)
    check_input_fits(shape, f"{where}: input")
    return shape


def _check_keys(data: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise UserError(
            f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _int(data: dict, key: str, where: str, minimum: int) -> int | None:
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise UserError(f"{where}: {key} must be a whole number >= {minimum}, got {value!r}")
    return value


def _float(data: dict, key: str, where: str) -> float | None:
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise UserError(f"{where}: {key} must be a number of seconds >= 0, got {value!r}")
    return float(value)


def parse_protocol(data: object, base: BenchProtocol, where: str) -> BenchProtocol:
    """Overlay a ``[protocol]`` table on ``base``."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: protocol must be a table, e.g. protocol = {{ sessions = 10 }}")
    _check_keys(data, PROTOCOL_KEYS, f"{where} protocol")
    changes = {
        "runs": _int(data, "runs", where, 1),
        "warmup": _int(data, "warmup", where, 0),
        "sessions": _int(data, "sessions", where, 1),
        "threads": _int(data, "threads", where, 1),
        "min_time": _float(data, "min_time", where),
        "cooldown": _float(data, "cooldown", where),
    }
    protocol = replace(base, **{k: v for k, v in changes.items() if v is not None})
    if protocol.sessions < MIN_SESSIONS:
        raise UserError(
            f"{where}: sessions = {protocol.sessions} is too few for the significance test; "
            f"use at least {MIN_SESSIONS} (10 recommended)"
        )
    return protocol


def _devices(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise UserError(f'{where}: devices must be a list of device names, e.g. ["cpu"]')
    return tuple(dict.fromkeys(value))


def parse_case(data: object, index: int, *, devices, protocol, base_dir: Path | None) -> BenchCase:
    """One ``[[case]]`` table."""
    where = f"case {index + 1}"
    if not isinstance(data, dict):
        raise UserError(f"{where} must be a table ([[case]])")
    name = data.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise UserError(f"{where}: name must be letters, digits, '.', '_' or '-' (got {name!r})")
    where = f"case {name!r}"
    _check_keys(data, CASE_KEYS, where)
    if ("onnx" in data) == ("genotype" in data):
        raise UserError(f"{where}: give either onnx = FILE or genotype = STR (with input)")
    shape = _parse_shape(data["input"], where) if "input" in data else None
    threshold = (
        parse_threshold(data["threshold"], f"{where} threshold") if "threshold" in data else None
    )
    common = {
        "name": name,
        "devices": _devices(data["devices"], where) if "devices" in data else devices,
        "protocol": parse_protocol(data["protocol"], protocol, where)
        if "protocol" in data
        else protocol,
        "threshold": threshold,
        "input": shape,
    }
    if "onnx" in data:
        stray = sorted({"genotype", "task", "num_classes", "scale", "upsampler"} & set(data))
        if stray:
            raise UserError(f"{where}: {stray[0]} applies to genotype cases only")
        if not isinstance(data["onnx"], str) or not data["onnx"]:
            raise UserError(f"{where}: onnx must be a file path")
        path = Path(data["onnx"])
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        return BenchCase(onnx=path, **common)
    if not isinstance(data["genotype"], str) or not data["genotype"].strip():
        raise UserError(f"{where}: genotype must be a genotype string")
    if shape is None:
        raise UserError(f'{where}: a genotype case needs input = "1x3x240x320" (or HxW)')
    task = data.get("task", "depth")
    if not isinstance(task, str):
        raise UserError(f"{where}: task must be a string")
    options = {k: data[k] for k in ("num_classes", "scale", "upsampler") if k in data}
    return BenchCase(genotype=data["genotype"].strip(), task=task, task_options=options, **common)


def parse_spec(data: dict, base_dir: Path | None = None, path: Path | None = None) -> BenchSpec:
    """Check and convert parsed TOML; relative ONNX paths are taken from ``base_dir``."""
    _check_keys(data, TOP_KEYS, "spec")
    threshold = parse_threshold(data.get("threshold", DEFAULT_THRESHOLD))
    alpha = data.get("alpha", DEFAULT_ALPHA)
    if not isinstance(alpha, float | int) or isinstance(alpha, bool) or not 0 < alpha < 1:
        raise UserError(f"spec: alpha must be a number between 0 and 1, got {alpha!r}")
    devices = _devices(data.get("devices", ["cpu"]), "spec")
    protocol = parse_protocol(data.get("protocol", {}), BenchProtocol(), "spec")
    raw_cases = data.get("case")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise UserError(
            'spec: no cases; add at least one [[case]] with name = "..." and onnx = ...'
        )
    cases = [
        parse_case(c, i, devices=devices, protocol=protocol, base_dir=base_dir)
        for i, c in enumerate(raw_cases)
    ]
    names = [c.name for c in cases]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"spec: case name {dupes[0]!r} is used twice; names must be unique")
    return BenchSpec(path=path, threshold=threshold, alpha=float(alpha), cases=tuple(cases))


def load_spec(path: str | Path) -> BenchSpec:
    """Read and parse a spec file; every problem is a one-line UserError naming the file."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"spec file {path} is a folder; give the bench spec (.toml) itself")
    if not path.is_file():
        raise UserError(f"spec file {path} not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid TOML ({err})") from None
    try:
        return parse_spec(data, base_dir=path.parent, path=path)
    except UserError as err:
        raise UserError(f"{path}: {err}") from None
