"""Android phones over adb (adbutils): push model and runner to /data/local/tmp/edgenas/,
run on the big cores with taskset, parse the runner's output.

Every argument that reaches the device shell goes through :func:`shlex.quote` (via
``shlex.join``); commands are never assembled from unquoted strings.

Connections: the adb server takes one request per TCP connection, so every shell
command and every file transfer is a connection (adbutils adds a ``host:version``
query before each one, which is cached here). A backend therefore connects once, asks
everything it needs about the phone in one shell command, and can be reused for many
models (:class:`~edgenas.latency_table.Measurer` does): after that a model costs one
push plus one shell command per session, whose tail also reads the battery
temperature and thermal status. One prediction with a fresh latency table (35 parts)
opened 1,015 connections with a backend per part, 110 this way (docs/devices.md).
"""

from __future__ import annotations

import datetime
import json
import os
import posixpath
import shlex
import socket
import stat
import struct
import time
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
GOVERNOR_GLOB = "/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor"
# A line no command prints: separates the outputs of commands run as one shell command.
MARK = "@@edgenas-section@@"
# Longest model file name (bytes) pushed as it is. Phone file systems allow 255 bytes a
# name; longer names are shortened (content hash kept) so they never hit that limit.
MAX_REMOTE_NAME = 120
# DATA chunks of the sync protocol may be at most 64 KiB.
SYNC_CHUNK = 64 * 1024
# Seconds one runner invocation may take before we call the device lost.
RUN_TIMEOUT_S = 600


def adb_address() -> tuple[str, int]:
    """Host and port of the adb server (ANDROID_ADB_SERVER_HOST / _PORT, read now)."""
    host = os.environ.get("ANDROID_ADB_SERVER_HOST", "127.0.0.1")
    text = os.environ.get("ANDROID_ADB_SERVER_PORT", "5037")
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise UserError(
            f"ANDROID_ADB_SERVER_PORT must be a port number from 1 to 65535, got {text!r}; "
            "set it to the port the adb server listens on (5037 by default)"
        )
    return host, port


def remote_model_name(name: str, sha256: str) -> str:
    """The file name a model gets on the phone: its own name when that is short and
    UTF-8, else a shortened one that keeps the start of the name, the extension and
    8 hex digits of the content hash (the folder is per content, so it cannot collide).
    """
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:  # a file name with undecodable bytes
        encoded = b""
        name = "model" + "".join(Path(name).suffixes[-1:]).encode("ascii", "replace").decode()
    if encoded and len(encoded) <= MAX_REMOTE_NAME:
        return name
    suffix = Path(name).suffix if len(Path(name).suffix) <= 16 else ""
    stem = name[: len(name) - len(suffix)] if suffix else name
    tail = f"~{sha256[:8]}{suffix}"
    budget = MAX_REMOTE_NAME - len(tail.encode("utf-8"))
    short = stem.encode("utf-8")[:budget].decode("utf-8", "ignore")
    return (short or "model") + tail


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
    """What `devices setup` recorded: {serial: {runner: record}} (empty if nothing yet)."""
    path = runners_file()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    well_formed = isinstance(data, dict) and all(
        isinstance(runners, dict)
        and all(isinstance(r, dict) and isinstance(r.get("remote"), str) for r in runners.values())
        for runners in data.values()
    )
    if not well_formed:
        raise UserError(f"{path} is corrupt; delete it and run `edgenas devices setup` again")
    return data


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
    """A phone reached through the adb server; runs ``entry.runner`` on it.

    One backend may measure many models (``prepare``/``measure`` again): the phone is
    chosen and described once, and each model then costs one push and one shell
    command per session.
    """

    device_kind = "android"

    def __init__(
        self,
        entry: DeviceEntry,
        threads: int | None = None,
        serial: str | None = None,
        precision: str = "fp32",
    ):
        super().__init__(entry, threads, precision)
        self.serial = serial or entry.serial or None
        self._device = None
        self._props: dict[str, str] = {}
        self._cores: list[int] = []
        self._freqs: dict[int, int] = {}
        self._governors: dict[int, str] = {}
        self._battery_c: float | None = None
        self._thermal: int | None = None
        self._push_mkdir = False
        self._remote_model: str | None = None
        self._model_info: ModelInfo | None = None
        self._runner: dict | None = None
        self._threads_used: int | None = None
        self._facts: dict = {}

    # -- connection -------------------------------------------------------------------

    def _client(self):
        # Before importing adbutils: it reads ANDROID_ADB_SERVER_PORT when imported and
        # fails with a traceback on a value that is not a number.
        host, port = adb_address()
        import adbutils

        # adbutils would spawn `adb start-server` on a refused connection; check first so
        # the user gets one clear line instead.
        if not _reachable(host, port):
            raise UserError(
                f"adb server not reachable at {host}:{port}; start it with `adb start-server` "
                "(or set ANDROID_ADB_SERVER_PORT to the port it listens on); no phone? try "
                "`edgenas devices emulate` (see docs/devices.md)"
            )
        client = adbutils.AdbClient(host=host, port=port, socket_timeout=RUN_TIMEOUT_S)
        # adbutils asks the server's version before every shell command and transfer; it
        # does not change while we talk to it, so ask once (half the connections).
        try:
            version = client.server_version()
        except Exception as err:
            raise UserError(
                f"{host}:{port} does not answer like an adb server ({type(err).__name__}); "
                "check ANDROID_ADB_SERVER_PORT"
            ) from None
        client.server_version = lambda: version
        return client

    def connect(self):
        """Pick the phone: the given serial, the one matching the entry, or the only one;
        then read what we need to know about it (once per backend)."""
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
        try:
            features = self._device.get_features()
        except Exception as err:
            self._lost(err)
        # adbd creates the folders of a pushed file itself when it has this feature.
        self._push_mkdir = "fixed_push_mkdir" in features.split(",")
        self._probe()
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

    def _probe(self) -> None:
        """Properties, core speeds, governors, temperature, thermal status and whether
        the recorded runner is there, in one shell command (one connection)."""
        record = load_runners().get(self.serial, {}).get(self.entry.runner)
        runner_test = (
            f"test -x {shlex.quote(record['remote'])} && echo present || echo missing"
            if record
            else "echo missing"
        )
        commands = [
            "getprop",
            f'for f in {CPU_FREQ_GLOB}; do echo "$f $(cat "$f")"; done',
            f'for f in {GOVERNOR_GLOB}; do echo "$f $(cat "$f")"; done',
            *self._status_commands(),
            runner_test,
        ]
        output = self._shell(f"; echo {MARK}; ".join(commands), check=False)
        try:
            props, freqs, governors, battery, thermal, runner = parsers.split_sections(
                output, MARK, len(commands)
            )
        except parsers.ParseError as err:
            raise UserError(f"unexpected answer from {self.serial}: {err}") from None
        self._props = parse_getprop(props)
        self._freqs = parsers.parse_cpu_max_freqs(freqs)
        self._governors = parsers.parse_governors(governors)
        self._read_status(battery, thermal)
        self._runner = record if "present" in runner else None

    @staticmethod
    def _status_commands() -> list[str]:
        return ["dumpsys battery", "dumpsys thermalservice"]

    def _read_status(self, battery: str, thermal: str) -> None:
        self._battery_c = parsers.parse_battery_temperature(battery)
        self._thermal = parsers.parse_thermal_status(thermal)

    def _matches(self, client, serial: str) -> bool:
        model = client.device(serial=serial).shell(["getprop", "ro.product.model"], timeout=10)
        return self.entry.model_match in model

    def _run(self, command: str, timeout: float = 60) -> tuple[int, str]:
        """Run a fully quoted command line on the device: (exit status, output)."""
        try:
            result = self._device.shell2(command, timeout=timeout, v2=True)
        except Exception as err:
            self._lost(err)
        return result.returncode, result.output

    def _shell(self, argv: list[str] | str, timeout: float = 60, check: bool = True) -> str:
        """Run a command on the device. A list is quoted word by word (shlex.join); a str
        must already be a safe, fully quoted command line."""
        command = argv if isinstance(argv, str) else shlex.join(argv)
        returncode, output = self._run(command, timeout)
        if check and returncode != 0:
            self._failed(returncode, output)
        return output

    def _failed(self, returncode: int, output: str):
        tail = " | ".join(output.strip().splitlines()[-3:])
        raise UserError(
            f"command on {self.serial} failed (exit {returncode}): {tail or 'no output'}"
        )

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
        if self._runner is None:
            return Availability(
                False,
                f"{self.serial} connected, but no {self.entry.runner} runner set up; run "
                f"`edgenas devices setup {self.entry.name} --runner PATH`",
            )
        return Availability(
            True,
            f"{self.serial} ({self._props.get('ro.product.model', '?')}), runner "
            f"{self._runner['remote']}",
        )

    def setup(self, runner_path: str | Path) -> dict:
        """Push the runner binary to the phone and record it; returns the record."""
        runner_path = Path(runner_path)
        if runner_path.is_dir():
            raise UserError(f"runner {runner_path} is a folder; give the runner program itself")
        if not runner_path.is_file():
            raise UserError(
                f"runner {runner_path} not found; build or download it first (see docs/devices.md)"
            )
        load_runners()  # a corrupt record file is refused before anything is pushed
        self.connect()
        remote = posixpath.join(REMOTE_DIR, self.entry.runner)
        if not self._push_mkdir:
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
        self._runner = record
        return record

    def _push(self, local: Path, remote: str, mode: int = 0o644) -> None:
        """Send one file over the sync protocol (one connection: SEND, DATA..., DONE).

        adbutils' push asks STAT first (another connection) and reports a refusal as a
        bare "FAIL"; the phone's own reason is read here and shown.
        """
        try:
            conn = self._device.open_transport(timeout=RUN_TIMEOUT_S)
        except Exception as err:
            self._lost(err)
        with conn, open(local, "rb") as source:
            try:
                conn.send_command("sync:")
                conn.check_okay()
                header = f"{remote},{stat.S_IFREG | mode}".encode()
                sock = conn.conn
                sock.sendall(b"SEND" + struct.pack("<I", len(header)) + header)
                for chunk in iter(lambda: source.read(SYNC_CHUNK), b""):
                    sock.sendall(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
                sock.sendall(b"DONE" + struct.pack("<I", int(time.time())))
                reply = conn.read_exact(8)
                message = b""
                if reply[:4] == b"FAIL":
                    message = conn.read_exact(struct.unpack("<I", reply[4:])[0])
            except Exception as err:
                self._lost(err)
        if reply[:4] == b"FAIL":
            reason = message.decode("utf-8", "replace").strip()
            raise UserError(f"{self.serial} refused the file {remote}: {reason}")
        if reply[:4] != b"OKAY":
            raise UserError(f"unexpected answer from {self.serial} to a push: {reply[:4]!r}")

    def facts(self) -> dict:
        facts = dict(self._facts)
        if facts:  # temperature after the sessions (read by each session's command)
            facts["battery_temp_c_after"] = self._battery_c
            facts["thermal_status_after"] = self._thermal
        return facts

    def live_facts(self) -> dict:
        """Model, SoC, Android SDK, ABI, cores, governor, battery temperature, thermal."""
        self.connect()
        big = parsers.big_cores(self._freqs)
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
            "governor": self._governors.get(big[0]) if big else None,
            "battery_temp_c": self._battery_c,
            "thermal_status": self._thermal,
            "emulated": self.device_kind == "emulated",
        }

    def runtime(self) -> dict:
        return {
            "name": self.entry.runner,
            "version": (self._runner or {}).get("sha256", "")[:12] or None,
            "provider": "cpu",
            "threads": self._threads_used,
            "precision": self.model_precision(self._model_info),
            "cpu_mask": self._facts.get("cpu_mask"),
        }

    def prepare(self, model: ModelInfo) -> None:
        self._model_info = model
        self.connect()
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
        # The temperature before this model: the latest reading (the probe's, or the
        # previous model's last session's).
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
        name = remote_model_name(Path(model.path).name, model.sha256)
        self._remote_model = posixpath.join(folder, name)
        if not self._push_mkdir:
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
        # graph optimisations, generated inputs, CPU provider; the result file gets one
        # line per timed run (the raw samples) and -s prints the statistics as well.
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
            "-s",
            "-I",
            model,
            self.times_file(),
        ]

    def times_file(self) -> str:
        """Where perf_test writes the per-run times: beside the model, one file per
        edgenas process (perf_test appends, so it is removed before each session)."""
        return posixpath.join(posixpath.dirname(self._remote_model), f"times-{os.getpid()}.csv")

    def measure(self, protocol: Protocol) -> SessionTimings:
        argv = self.command(protocol)
        # The runner, then (same connection) the temperature and thermal status after
        # it; the runner's exit status is the command's.
        # perf_test's result file (its raw samples) is printed and removed in between.
        status = "".join(f"; echo {MARK}; {c}" for c in self._status_commands())
        times = ""
        if self.entry.runner != "benchmark_model":
            quoted = shlex.quote(self.times_file())
            argv_line = f"rm -f {quoted} && {shlex.join(argv)}"
            times = f"; echo {MARK}; cat {quoted} 2>/dev/null; rm -f {quoted}"
        else:
            argv_line = shlex.join(argv)
        line = (
            f"cd {shlex.quote(REMOTE_DIR)} && {argv_line}; status=$?{times}{status}; exit $status"
        )
        exit_code, output = self._run(line, timeout=RUN_TIMEOUT_S)
        sections = 4 if times else 3
        try:
            run, *samples, battery, thermal = parsers.split_sections(output, MARK, sections)
        except parsers.ParseError:
            # The tail is missing: the runner (or the shell) died before it.
            run, samples, battery, thermal = output, [], "", ""
        if exit_code != 0:
            self._failed(exit_code, run)
        self._read_status(battery, thermal)
        try:
            if self.entry.runner == "benchmark_model":
                return parsers.parse_benchmark_model(run)
            return parsers.parse_perf_test(run, "".join(samples))
        except parsers.ParseError as err:
            raise UserError(f"cannot read the runner's output on {self.serial}: {err}") from None

    def close(self) -> None:
        self._device = None
