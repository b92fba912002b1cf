"""Android phones over adb (adbutils): push model and runner to /data/local/tmp/edgenas/,
run on the big cores with taskset, parse the runner's output.

Every argument that reaches the device shell goes through :func:`shlex.quote` (via
``shlex.join``); commands are never assembled from unquoted strings.
"""

from __future__ import annotations

import datetime
import json
import os
import posixpath
import shlex
import socket
from pathlib import Path

from edgenas.devices import parsers
from edgenas.devices.backends.base import Availability, Backend
from edgenas.devices.catalog import DeviceEntry, config_dir
from edgenas.devices.modelinfo import ModelInfo, sha256_file
from edgenas.devices.protocol import Protocol
from edgenas.devices.result import write_atomic
from edgenas.devices.stats import SessionTimings

from edgenas.errors import UserError

REMOTE_DIR = "/data/local/tmp/edgenas"
CPU_FREQ_GLOB = "/sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq"
# Seconds one runner invocation may take before we call the device lost.
RUN_TIMEOUT_S = 600


def adb_address() -> tuple[str, int]:
    """Host and port of the adb server (ANDROID_ADB_SERVER_HOST / _PORT, read now)."""
    host = os.environ.get("ANDROID_ADB_SERVER_HOST", "127.0.0.1")
    try:
        port = int(os.environ.get("ANDROID_ADB_SERVER_PORT", "5037"))
    except ValueError:
        raise UserError("ANDROID_ADB_SERVER_PORT must be a port number") from None
    return host, port


def _reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def runners_file() -> Path:
    """Where `devices setup` records the runners installed on each phone."""
    return config_dir() / "android-runners.json"


def load_runners() -> dict:
    path = runners_file()
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError:
        raise UserError(
            f"{path} is corrupt; delete it and run `edgenas devices setup` again"
        ) from None


def parse_getprop(text: str) -> dict[str, str]:
    """``[key]: [value]`` lines of ``getprop`` -> dict."""
    props = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and "]: [" in line and line.endswith("]"):
            key, value = line[1:-1].split("]: [", 1)
            props[key] = value
    return props


class AndroidBackend(Backend):
    """A phone reached through the adb server; runs ``entry.runner`` on it."""

    device_kind = "android"

    def __init__(self, entry: DeviceEntry, threads: int | None = None, serial: str | None = None):
        super().__init__(entry, threads)
        self.serial = serial or entry.serial or None
        self._device = None
        self._props: dict[str, str] = {}
        self._cores: list[int] = []
        self._freqs: dict[int, int] = {}
        self._remote_model: str | None = None
        self._runner: dict | None = None
        self._threads_used: int | None = None
        self._facts: dict = {}

    # -- connection -------------------------------------------------------------------

    def _client(self):
        import adbutils

        host, port = adb_address()
        # adbutils would spawn `adb start-server` on a refused connection; check first so
        # the user gets one clear line instead.
        if not _reachable(host, port):
            raise UserError(
                f"adb server not reachable at {host}:{port}; start it with `adb start-server` "
                "(or set ANDROID_ADB_SERVER_PORT to the port it listens on)"
            )
        return adbutils.AdbClient(host=host, port=port, socket_timeout=RUN_TIMEOUT_S)

    def connect(self):
        """Pick the phone: the given serial, the one matching the entry, or the only one."""
        if self._device is not None:
            return self._device
        client = self._client()
        try:
            infos = client.list()
        except Exception as err:
            raise UserError(f"adb server did not answer host:devices ({err})") from None
        ready = [i.serial for i in infos if i.state == "device"]
        others = [f"{i.serial} ({i.state})" for i in infos if i.state != "device"]
        hint = (
            f"; not ready: {', '.join(others)} (unlock the phone and accept USB debugging)"
            if others
            else ""
        )
        if self.serial:
            if self.serial not in ready:
                raise UserError(
                    f"device {self.serial} is not connected (connected: {', '.join(ready) or 'none'}){hint}"
                )
            chosen = self.serial
        elif not ready:
            raise UserError(
                "no Android device connected: plug in the phone, enable USB debugging and accept "
                f"the prompt; `adb devices` must list it{hint}"
            )
        elif len(ready) > 1:
            matching = (
                [s for s in ready if self._matches(client, s)] if self.entry.model_match else []
            )
            if len(matching) != 1:
                raise UserError(
                    f"several devices connected ({', '.join(ready)}); pass --serial SERIAL "
                    "or set serial in your devices file"
                )
            chosen = matching[0]
        else:
            chosen = ready[0]
        self._device = client.device(serial=chosen)
        self.serial = chosen
        self._props = parse_getprop(self._shell(["getprop"]))
        if self.entry.model_match and self.entry.model_match not in self._props.get(
            "ro.product.model", ""
        ):
            raise UserError(
                f"the connected phone is a {self._props.get('ro.product.model', 'unknown model')!r}, "
                f"not a {self.entry.model_match}; use --device android or add an entry for it"
            )
        if (
            self._props.get("ro.kernel.qemu") == "1"
            or self._props.get("ro.edgenas.emulated") == "1"
        ):
            self.device_kind = "emulated"
        return self._device

    def _matches(self, client, serial: str) -> bool:
        model = client.device(serial=serial).shell(["getprop", "ro.product.model"], timeout=10)
        return self.entry.model_match in model

    def _shell(self, argv: list[str] | str, timeout: float = 60, check: bool = True) -> str:
        """Run a command on the device. A list is quoted word by word (shlex.join); a str
        must already be a safe, fully quoted command line."""
        command = argv if isinstance(argv, str) else shlex.join(argv)
        try:
            result = self._device.shell2(command, timeout=timeout, v2=True)
        except Exception as err:
            self._lost(err)
        if check and result.returncode != 0:
            tail = " | ".join(result.output.strip().splitlines()[-3:])
            raise UserError(
                f"command on {self.serial} failed (exit {result.returncode}): {tail or 'no output'}"
            )
        return result.output

    def _lost(self, err: Exception):
        raise UserError(
            f"device {self.serial} disconnected or stopped answering during the run "
            f"({type(err).__name__}); partial results discarded, nothing was recorded"
        ) from None

    # -- backend interface --------------------------------------------------------------

    def availability(self) -> Availability:
        try:
            self.connect()
        except UserError as err:
            return Availability(False, str(err))
        runner = self._installed_runner()
        if runner is None:
            return Availability(
                False,
                f"{self.serial} connected, but no {self.entry.runner} runner set up; run "
                f"`edgenas devices setup {self.entry.name} --runner PATH`",
            )
        return Availability(
            True,
            f"{self.serial} ({self._props.get('ro.product.model', '?')}), runner {runner['remote']}",
        )

    def _installed_runner(self) -> dict | None:
        record = load_runners().get(self.serial, {}).get(self.entry.runner)
        if record is None:
            return None
        out = self._shell(
            f"test -x {shlex.quote(record['remote'])} && echo present || echo missing", check=False
        )
        return record if "present" in out else None

    def setup(self, runner_path: str | Path) -> dict:
        """Push the runner binary to the phone and record it; returns the record."""
        runner_path = Path(runner_path)
        if not runner_path.is_file():
            raise UserError(
                f"runner {runner_path} not found; build or download it first (see docs/devices.md)"
            )
        self.connect()
        remote = posixpath.join(REMOTE_DIR, self.entry.runner)
        self._shell(["mkdir", "-p", REMOTE_DIR])
        self._push(runner_path, remote, mode=0o755)
        self._shell(["chmod", "755", remote])
        record = {
            "remote": remote,
            "sha256": sha256_file(runner_path),
            "source": str(runner_path.resolve()),
            "installed": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "model": self._props.get("ro.product.model", ""),
        }
        runners = load_runners()
        runners.setdefault(self.serial, {})[self.entry.runner] = record
        write_atomic(runners_file(), json.dumps(runners, indent=2) + "\n")
        return record

    def _push(self, local: Path, remote: str, mode: int = 0o644) -> None:
        try:
            self._device.sync.push(str(local), remote, mode=mode, check=True)
        except Exception as err:
            self._lost(err)

    def facts(self) -> dict:
        facts = dict(self._facts)
        if facts:  # temperature after the sessions, next to the one before them
            facts["battery_temp_c_after"] = parsers.parse_battery_temperature(
                self._shell(["dumpsys", "battery"], check=False)
            )
        return facts

    def live_facts(self) -> dict:
        """Model, SoC, Android SDK, ABI, cores, governor, battery temperature, thermal."""
        self.connect()
        if not self._freqs:
            listing = self._shell(
                f'for f in {CPU_FREQ_GLOB}; do echo "$f $(cat "$f")"; done', check=False
            )
            self._freqs = parsers.parse_cpu_max_freqs(listing)
        big = parsers.big_cores(self._freqs)
        governor = None
        if big:
            governor = (
                self._shell(
                    ["cat", f"/sys/devices/system/cpu/cpu{big[0]}/cpufreq/scaling_governor"],
                    check=False,
                ).strip()
                or None
            )
        p = self._props
        return {
            "serial": self.serial,
            "model": p.get("ro.product.model"),
            "manufacturer": p.get("ro.product.manufacturer"),
            "soc": p.get("ro.soc.model") or p.get("ro.board.platform") or p.get("ro.hardware"),
            "android_release": p.get("ro.build.version.release"),
            "android_sdk": p.get("ro.build.version.sdk"),
            "abi": p.get("ro.product.cpu.abi"),
            "cpu_max_freq_khz": {str(k): v for k, v in sorted(self._freqs.items())},
            "big_cores": big,
            "governor": governor,
            "battery_temp_c": parsers.parse_battery_temperature(
                self._shell(["dumpsys", "battery"], check=False)
            ),
            "thermal_status": parsers.parse_thermal_status(
                self._shell(["dumpsys", "thermalservice"], check=False)
            ),
            "emulated": self.device_kind == "emulated",
        }

    def runtime(self) -> dict:
        return {
            "name": self.entry.runner,
            "version": (self._runner or {}).get("sha256", "")[:12] or None,
            "provider": "cpu",
            "threads": self._threads_used,
            "precision": "f32",
            "cpu_mask": self._facts.get("cpu_mask"),
        }

    def prepare(self, model: ModelInfo) -> None:
        self.connect()
        self._runner = self._installed_runner()
        if self._runner is None:
            raise UserError(
                f"no {self.entry.runner} runner set up on {self.serial}; run "
                f"`edgenas devices setup {self.entry.name} --runner PATH`"
            )
        wants_tflite = self.entry.runner == "benchmark_model"
        if wants_tflite != model.path.endswith(".tflite"):
            raise UserError(
                f"runner {self.entry.runner} takes {'.tflite' if wants_tflite else '.onnx'} files, "
                f"not {Path(model.path).name}"
            )
        self._facts = self.live_facts()
        cores = self._facts["big_cores"] or [0]
        if self.threads:
            by_speed = sorted(self._freqs, key=lambda c: (-self._freqs[c], c)) or list(
                range(self.threads)
            )
            cores = sorted(by_speed[: self.threads])
        self._cores = cores
        self._threads_used = len(cores)  # threads = cores in the mask
        self._facts["cpu_mask"] = parsers.cpu_mask(cores)
        # One folder per model content: same name, different weights never collide.
        folder = posixpath.join(REMOTE_DIR, "models", model.sha256[:16])
        self._remote_model = posixpath.join(folder, Path(model.path).name)
        self._shell(["mkdir", "-p", folder])
        self._push(Path(model.path), self._remote_model)

    def command(self, protocol: Protocol) -> list[str]:
        """The runner's argv for one session (quoted later as a whole)."""
        runner, model = self._runner["remote"], self._remote_model
        prefix = ["taskset", parsers.cpu_mask(self._cores), runner]
        threads = str(self._threads_used)
        if self.entry.runner == "benchmark_model":
            return [
                *prefix,
                f"--graph={model}",
                f"--num_threads={threads}",
                f"--warmup_runs={protocol.warmup_runs}",
                f"--warmup_min_secs={protocol.warmup_min_s}",
                f"--num_runs={protocol.runs}",
                f"--min_secs={protocol.min_time_s}",
            ]
        # perf_test: fixed run count, intra-op threads, sequential (its default), all
        # graph optimisations, generated inputs, CPU provider.
        return [
            *prefix,
            "-m",
            "times",
            "-r",
            str(protocol.runs),
            "-x",
            threads,
            "-y",
            "1",
            "-o",
            "99",
            "-e",
            "cpu",
            "-I",
            model,
        ]

    def measure(self, protocol: Protocol) -> SessionTimings:
        argv = self.command(protocol)
        line = f"cd {shlex.quote(REMOTE_DIR)} && {shlex.join(argv)}"
        output = self._shell(line, timeout=RUN_TIMEOUT_S)
        try:
            if self.entry.runner == "benchmark_model":
                return parsers.parse_benchmark_model(output)
            return parsers.parse_perf_test(output)
        except parsers.ParseError as err:
            raise UserError(f"cannot read the runner's output on {self.serial}: {err}") from None

    def close(self) -> None:
        self._device = None
