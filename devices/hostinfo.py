"""Facts about the machine edgenas runs on (for host and OpenVINO results)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's marketing name from /proc/cpuinfo (its text ``cpuinfo`` when already
    read), or platform.processor()."""
    text = (_read("/proc/cpuinfo") if cpuinfo is None else cpuinfo) or ""
    for line in text.splitlines():
        if line.lower().startswith(("model name", "hardware")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


# Vector extensions that change which kernels a runtime picks, the most telling first.
_VECTOR_ISAS = (
    "amx_tile", "avx512_vnni", "avx512f", "avx_vnni", "avx2", "avx", "sse4_2",  # x86
    "sve2", "sve", "i8mm", "asimddp", "asimd", "neon",  # Arm
)  # fmt: skip
# Per-core identity lines of /proc/cpuinfo, with the label the signature gives them.
_CORE_FIELDS = (
    ("vendor_id", ""), ("cpu family", "family "), ("model", "model "),
    ("stepping", "stepping "),  # x86
    ("cpu implementer", "implementer "), ("cpu part", "part "), ("cpu variant", "variant "),
    ("cpu revision", "revision "),  # Arm
)  # fmt: skip


def cpu_signature(cpuinfo: str) -> str | None:
    """The CPU's microarchitecture as /proc/cpuinfo's text ``cpuinfo`` gives it: each
    distinct kind of core (vendor, family, model and stepping on x86; implementer,
    part, variant and revision on Arm, where big.LITTLE SoCs list two or three kinds,
    joined by " + ") and the most telling vector extension, e.g.
    ``AuthenticAMD family 25 model 17 stepping 1, avx512_vnni``; None if it names none.

    A virtual machine may show only a generic model name ("AMD EPYC"), and an Arm
    board only "aarch64", for CPUs whose kernels run at different relative speeds, so
    host timings are comparable only when this matches too."""
    cores: list[str] = []
    flags: set[str] = set()
    for block in cpuinfo.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip().lower(), value.strip())
        core = " ".join(label + fields[key] for key, label in _CORE_FIELDS if fields.get(key))
        if core and core not in cores:
            cores.append(core)
        flags |= set((fields.get("flags") or fields.get("features") or "").split())
    if not cores:
        return None
    isa = next((name for name in _VECTOR_ISAS if name in flags), None)
    return " + ".join(cores) + (f", {isa}" if isa else "")


def host_facts() -> dict:
    """CPU, core counts, OS, governor and load: what makes two host timings comparable."""
    cpuinfo = _read("/proc/cpuinfo") or ""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "cpu": cpu_model(cpuinfo),
        "cpu_signature": cpu_signature(cpuinfo),
        "machine": platform.machine(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "os": f"{platform.system()} {platform.release()}",
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "loadavg_1m": load,
    }


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _status_kb(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM), or None off Linux."""
    for line in (_read("/proc/self/status") or "").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


class PeakMemory:
    """How much the process's resident memory grew at its peak since the block began.

    Linux keeps the peak RSS (VmHWM); writing 5 to /proc/self/clear_refs resets it
    to the current RSS, so the peak since then minus the RSS before is what loading
    and running the model took (runtime libraries loaded for the first time
    included). Without the reset the figure is known only when the work set a new
    process-wide peak. Creating one starts the count; :meth:`sample` gives
    ``(mb, source)``: mb is None and source says why when the figure is unknown.
    """

    def __init__(self) -> None:
        self._before = _status_kb("VmRSS")
        self._old_peak = _status_kb("VmHWM")
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self._reset = True
        except OSError:
            self._reset = False

    def sample(self) -> tuple[float | None, str]:
        """The peak RSS increase so far (MB) and what it is, or None and why not."""
        peak = _status_kb("VmHWM")
        if self._before is None or peak is None:
            return None, "unknown: this OS has no /proc/self/status (VmRSS, VmHWM)"
        if self._reset or (self._old_peak is not None and peak > self._old_peak):
            return (
                max(0, peak - self._before) / 1024.0,
                "host process peak RSS increase since loading began (VmHWM - VmRSS before)",
            )
        return None, (
            "unknown: the process's earlier peak RSS hides this one "
            "(/proc/self/clear_refs not writable)"
        )
