"""A fake adb server that emulates one Android phone behind the real adb wire protocol.

It speaks the host protocol (``host:version``, ``host:devices[-l]``,
``host:transport:``/``host:tport:serial:``, ``host-serial:S:features|get-state``) and
the device services ``shell:``, ``shell,v2:`` and ``sync:`` (STAT, SEND/DATA/DONE,
RECV, QUIT), so adbutils talks to it over TCP exactly as to a real server.

The "phone" is a folder: ``sync: SEND`` stores the pushed bytes under it, and the
shell runs the command with ``/bin/sh`` on this machine after mapping the device paths
``/data/local/tmp`` and ``/sys/devices/system/cpu`` into that folder. Fake ``getprop``,
``dumpsys`` and ``taskset`` programs stand in for Android's. The runner pushed by
``edgenas devices setup`` is a host program (see :mod:`.runner`) that prints
onnxruntime_perf_test's output format. Results measured through it carry device kind
``emulated`` (the phone reports ``ro.edgenas.emulated=1``).

Safety: binds only to 127.0.0.1 and stops by itself after ``lifetime_s`` seconds.
There is no cap on connections: the adb protocol opens one per shell command or file
transfer, and a phone-targeted search makes thousands (the server used to drop every
connection after 5,000, which ended such searches midway). :attr:`FakeAdbServer.connections`
counts them, so tests can check how many a measurement needs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import socketserver
import stat
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

PIXEL3A_PROPS = {
    "ro.product.model": "Pixel 3a (edgenas emulated)",
    "ro.product.manufacturer": "Google",
    "ro.board.platform": "sdm670",
    "ro.soc.model": "SDM670",
    "ro.build.version.release": "12",
    "ro.build.version.sdk": "32",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.edgenas.emulated": "1",
}
# Snapdragon 670: six Kryo 360 Silver at 1.7 GHz, two Kryo 360 Gold at 2.0 GHz.
PIXEL3A_FREQS = {
    0: 1708800,
    1: 1708800,
    2: 1708800,
    3: 1708800,
    4: 1708800,
    5: 1708800,
    6: 2016000,
    7: 2016000,
}
FEATURES = "shell_v2,cmd,stat_v2,fixed_push_mkdir"


def _fake_programs(root: Path, props: dict[str, str]) -> None:
    """Write getprop, dumpsys and taskset stand-ins into ``root/system/bin``."""
    bindir = root / "system" / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"[{k}]: [{v}]\n" for k, v in props.items())
    (bindir / "props.txt").write_text(lines)
    scripts = {
        "getprop": (
            '#!/bin/sh\nif [ $# -eq 0 ]; then cat "$(dirname "$0")/props.txt"; exit 0; fi\n'
            'grep -F "[$1]: " "$(dirname "$0")/props.txt" | sed \'s/^.*]: \\[\\(.*\\)\\]$/\\1/\'\n'
        ),
        "dumpsys": (
            '#!/bin/sh\ncase "$1" in\n'
            '  battery) printf "Current Battery Service state:\\n  AC powered: false\\n'
            '  USB powered: true\\n  level: 87\\n  temperature: 312\\n";;\n'
            '  thermalservice) printf "IsStatusOverride: false\\nThermal Status: 0\\n";;\n'
            '  *) echo "Can\'t find service: $1"; exit 1;;\nesac\n'
        ),
        # taskset MASK PROG ARGS...: check the mask is hex, then run without pinning
        # (the host has other cores than the phone).
        "taskset": (
            '#!/bin/sh\ncase "$1" in\n  *[!0-9a-fA-F]*|"") echo "taskset: bad mask $1" >&2; exit 1;;\n'
            'esac\nshift\nexec "$@"\n'
        ),
    }
    for name, text in scripts.items():
        path = bindir / name
        path.write_text(text)
        path.chmod(0o755)


class FakeAdbServer:
    """One emulated phone behind a loopback adb server. Use as a context manager.

    Attributes:
        port: the TCP port it listens on (set ANDROID_ADB_SERVER_PORT to it).
        root: the folder that holds the phone's files.
        disconnect_on_run: if set to N, the N-th shell command that runs a program
            under ``/data/local/tmp`` drops the connection mid-output and the phone
            disappears from ``host:devices`` (a cable pulled mid-run).
        extra_serials: more phones listed by ``host:devices`` (to test selection).
        connections: how many connections clients have opened so far.
    """

    def __init__(
        self,
        serial: str = "EMU3A0001",
        props: dict[str, str] | None = None,
        cpu_freqs: dict[int, int] | None = None,
        root: str | Path | None = None,
        lifetime_s: float = 900.0,
    ) -> None:
        self.serial = serial
        self.props = dict(PIXEL3A_PROPS if props is None else props)
        self.cpu_freqs = dict(PIXEL3A_FREQS if cpu_freqs is None else cpu_freqs)
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="edgenas-fakeadb-")).resolve()
        if any(c not in "/-_.+" and not c.isalnum() for c in str(self.root)):
            raise ValueError(f"the emulated phone's folder needs a plain path, got {self.root}")
        self.lifetime_s = lifetime_s
        self.disconnect_on_run: int | None = None
        self.extra_serials: list[str] = []
        self.connected = True
        self.commands: list[str] = []  # every shell command received (for tests)
        self._runs = 0
        self._connections = 0
        self._count_lock = threading.Lock()
        self._stop_lock = threading.Lock()
        self._server: socketserver.ThreadingTCPServer | None = None
        self._threads: list[threading.Thread] = []
        self._build_filesystem()

    # -- the phone's files ----------------------------------------------------------------

    def _build_filesystem(self) -> None:
        (self.root / "data" / "local" / "tmp").mkdir(parents=True, exist_ok=True)
        for cpu, freq in self.cpu_freqs.items():
            folder = self.root / "sys" / "devices" / "system" / "cpu" / f"cpu{cpu}" / "cpufreq"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "cpuinfo_max_freq").write_text(f"{freq}\n")
            (folder / "scaling_governor").write_text("schedutil\n")
        _fake_programs(self.root, self.props)

    def host_path(self, device_path: str) -> Path:
        """Where a device path lives in the emulated phone's folder."""
        return self.root / device_path.lstrip("/")

    def _map_command(self, command: str) -> str:
        # Device paths only appear in commands edgenas built (quoted or not); map their
        # prefixes into the phone's folder, which has a plain path (checked above).
        for prefix in ("/data/local/tmp", "/sys/devices/system/cpu"):
            command = command.replace(prefix, str(self.root) + prefix)
        return command

    # -- lifecycle --------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Connections opened so far (every adb request is one)."""
        return self._connections

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.server_address[1]

    def start(self, port: int = 0) -> FakeAdbServer:
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with outer._count_lock:
                    outer._connections += 1
                self.request.settimeout(60)
                with contextlib.suppress(OSError, ConnectionError, _Drop):
                    outer._serve(self.request)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        try:
            self._server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
        except OSError:
            # Port taken (or not ours to use): nothing was served, so leave nothing behind.
            if self._own_root:
                shutil.rmtree(self.root, ignore_errors=True)
            raise
        self._server.daemon_threads = True
        serve = threading.Thread(target=self._server.serve_forever, daemon=True)
        serve.start()
        timer = threading.Timer(self.lifetime_s, self.stop)
        timer.daemon = True
        timer.start()
        self._threads = [serve]
        self._timer = timer
        return self

    def stop(self) -> None:
        """Stop serving and remove the phone's folder (safe to call twice, from the
        lifetime timer and from the caller at the same moment)."""
        with self._stop_lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self._timer.cancel()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> FakeAdbServer:
        return self.start() if self._server is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- protocol ---------------------------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        request = _read_request(conn)
        if request == "host:version":
            _okay(conn, "0029")  # 41, like platform-tools 29+
        elif request in ("host:devices", "host:devices-l"):
            serials = ([self.serial] if self.connected else []) + self.extra_serials
            suffix = " product:sargo model:Pixel_3a device:sargo" if request.endswith("-l") else ""
            _okay(conn, "".join(f"{s}\tdevice{suffix}\n" for s in serials))
        elif request.startswith("host-serial:"):
            serial, _, what = request[len("host-serial:") :].rpartition(":")
            if not self._known(serial):
                return _fail(conn, f"device '{serial}' not found")
            answers = {"features": FEATURES, "get-state": "device", "get-serialno": serial}
            if what not in answers:
                return _fail(conn, f"unsupported: {what}")
            _okay(conn, answers[what])
        elif request.startswith(("host:transport:", "host:tport:serial:")):
            serial = request.rsplit(":", 1)[1]
            if not self._known(serial):
                return _fail(conn, f"device '{serial}' not found")
            conn.sendall(b"OKAY")
            if request.startswith("host:tport:"):
                conn.sendall(struct.pack("<Q", 1))  # transport id
            self._service(conn, _read_request(conn))
        elif request == "host:kill":
            conn.sendall(b"OKAY")
            threading.Thread(target=self.stop, daemon=True).start()
        else:
            _fail(conn, f"unknown host service {request!r}")

    def _known(self, serial: str) -> bool:
        return (serial == self.serial and self.connected) or serial in self.extra_serials

    def _service(self, conn: socket.socket, request: str) -> None:
        if request.startswith("shell,v2:"):
            self._shell(conn, request[len("shell,v2:") :], v2=True)
        elif request.startswith("shell:"):
            self._shell(conn, request[len("shell:") :], v2=False)
        elif request == "sync:":
            conn.sendall(b"OKAY")
            self._sync(conn)
        else:
            _fail(conn, f"unknown device service {request!r}")

    def _shell(self, conn: socket.socket, command: str, v2: bool) -> None:
        self.commands.append(command)
        conn.sendall(b"OKAY")
        drop = False
        if "/data/local/tmp/" in command and ("taskset" in command):
            self._runs += 1
            drop = self.disconnect_on_run is not None and self._runs >= self.disconnect_on_run
        env = {
            "PATH": f"{self.root}/system/bin:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.root / "data" / "local" / "tmp"),
            "TMPDIR": str(self.root / "data" / "local" / "tmp"),
        }
        # Pass through what the host runner needs to find Python packages.
        for key in ("PYTHONPATH", "VIRTUAL_ENV", "LD_LIBRARY_PATH"):
            if key in os.environ:
                env[key] = os.environ[key]
        proc = subprocess.run(
            ["/bin/sh", "-c", self._map_command(command)],
            cwd=self.root,
            env=env,
            capture_output=True,
            timeout=600,
        )
        stdout = proc.stdout.replace(str(self.root).encode(), b"")
        stderr = proc.stderr.replace(str(self.root).encode(), b"")
        if drop:
            # A cable pulled mid-run: half the output, then nothing; the phone is gone.
            self.connected = False
            conn.sendall(
                (b"\x01" + struct.pack("<I", len(stdout) // 2) if v2 else b"")
                + stdout[: len(stdout) // 2]
            )
            raise _Drop()
        if v2:
            for ident, data in ((1, stdout), (2, stderr)):
                if data:
                    conn.sendall(bytes([ident]) + struct.pack("<I", len(data)) + data)
            conn.sendall(b"\x03" + struct.pack("<I", 1) + bytes([proc.returncode & 0xFF]))
        else:
            conn.sendall(stdout + stderr)

    def _sync(self, conn: socket.socket) -> None:
        for _ in range(10_000):  # bounded: one sync session never loops forever
            head = _recv_exact(conn, 8)
            ident, length = head[:4], struct.unpack("<I", head[4:])[0]
            if ident == b"QUIT":
                return
            arg = _recv_exact(conn, length).decode("utf-8")
            if ident == b"STAT":
                path = self.host_path(arg)
                if path.exists():
                    st = path.stat()
                    mode = (stat.S_IFDIR if path.is_dir() else stat.S_IFREG) | (st.st_mode & 0o777)
                    conn.sendall(b"STAT" + struct.pack("<III", mode, st.st_size, int(st.st_mtime)))
                else:
                    conn.sendall(b"STAT" + struct.pack("<III", 0, 0, 0))
                return
            if ident == b"SEND":
                remote, _, mode = arg.rpartition(",")
                self._receive(conn, remote, int(mode) & 0o777)
                return
            if ident == b"RECV":
                path = self.host_path(arg)
                if not path.is_file():
                    msg = b"No such file or directory"
                    conn.sendall(b"FAIL" + struct.pack("<I", len(msg)) + msg)
                    return
                data = path.read_bytes()
                for i in range(0, len(data), 65536):
                    chunk = data[i : i + 65536]
                    conn.sendall(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
                conn.sendall(b"DONE" + struct.pack("<I", 0))
                return
            _fail(conn, f"unsupported sync request {ident!r}")
            return

    def _receive(self, conn: socket.socket, remote: str, mode: int) -> None:
        if not remote.startswith("/data/local/tmp/"):
            # Like a real phone: the shell user may only write under /data/local/tmp.
            _drain_upload(conn)
            _sync_fail(conn, f"remote couldn't create file: Permission denied: {remote}")
            return
        target = self.host_path(remote)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)  # fixed_push_mkdir
            # A short temporary name: a long file name plus a suffix would pass the file
            # system's 255-byte limit on names that are themselves within it.
            fd, tmp = tempfile.mkstemp(prefix=".push-", suffix=".part", dir=target.parent)
        except OSError as err:
            # adbd answers FAIL with the reason (e.g. "File name too long"); it does not
            # hang up on the client.
            _drain_upload(conn)
            _sync_fail(conn, f"remote couldn't create file: {err.strerror}: {remote}")
            return
        try:
            with os.fdopen(fd, "wb") as fh:
                while True:
                    head = _recv_exact(conn, 8)
                    ident, length = head[:4], struct.unpack("<I", head[4:])[0]
                    if ident == b"DONE":
                        break
                    if ident != b"DATA" or length > 65536:
                        raise _Drop()
                    fh.write(_recv_exact(conn, length))
            os.chmod(tmp, mode or 0o644)
            os.replace(tmp, target)
        except OSError as err:
            Path(tmp).unlink(missing_ok=True)
            _sync_fail(conn, f"remote couldn't create file: {err.strerror}: {remote}")
            return
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        conn.sendall(b"OKAY" + struct.pack("<I", 0))


def _drain_upload(conn: socket.socket) -> None:
    """Read a SEND's DATA chunks up to DONE (the client sends them all before reading)."""
    while True:
        head = _recv_exact(conn, 8)
        if head[:4] == b"DONE":
            return
        _recv_exact(conn, struct.unpack("<I", head[4:])[0])


def _sync_fail(conn: socket.socket, message: str) -> None:
    data = message.encode()
    conn.sendall(b"FAIL" + struct.pack("<I", len(data)) + data)


class _Drop(Exception):
    """Close the connection abruptly."""


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise _Drop()
        data += chunk
    return data


def _read_request(conn: socket.socket) -> str:
    length = int(_recv_exact(conn, 4), 16)
    return _recv_exact(conn, length).decode("utf-8")


def _okay(conn: socket.socket, payload: str) -> None:
    data = payload.encode()
    conn.sendall(b"OKAY" + f"{len(data):04x}".encode() + data)


def _fail(conn: socket.socket, message: str) -> None:
    data = message.encode()
    conn.sendall(b"FAIL" + f"{len(data):04x}".encode() + data)


def serve_forever(port: int, lifetime_s: float) -> None:
    """Run an emulated Pixel 3a until interrupted or ``lifetime_s`` passes (CLI use)."""
    with FakeAdbServer(lifetime_s=lifetime_s).start(port) as server:
        print(f"emulated Pixel 3a {server.serial} on 127.0.0.1:{server.port}", flush=True)
        print(f"  export ANDROID_ADB_SERVER_PORT={server.port}", flush=True)
        print(
            f"  phone folder: {server.root}  (stops after {lifetime_s:.0f} s or Ctrl-C)", flush=True
        )
        deadline = time.monotonic() + lifetime_s
        while time.monotonic() < deadline and server._server is not None:
            time.sleep(0.5)


__all__ = ["FakeAdbServer", "serve_forever"]
