"""The device panel: latency device, how latencies were obtained, last measurements,
the runtime of the final measurement."""

from __future__ import annotations

import time

from edgenas.tui.state import DeviceState
from rich.table import Table
from rich.text import Text
from textual.widgets import Static


class DevicePanel(Static):
    """Renders a :class:`DeviceState`."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._device: DeviceState | None = None

    def show(self, device: DeviceState) -> None:
        """Render ``device`` (no-op when unchanged)."""
        if device == self._device:
            return
        self._device = device
        text = Text()
        text.append(f"device {device.device}", "bold")
        if device.target_latency_ms is not None:
            text.append(f"   target ≤ {device.target_latency_ms:g} ms")
        text.append(
            f"\nlatencies: {device.measured} measured, {device.predicted} predicted (lookup table)"
        )
        text.append(
            f"\nruntime: {device.runtime or 'not known yet (known once best.onnx is measured)'}"
        )
        if device.best_latency_ms is not None:
            text.append(f"\nbest.onnx median: {device.best_latency_ms:.3f} ms", "bold")
        table = Table(
            "time",
            "candidate",
            "latency ms",
            "device",
            box=None,
            title="last measurements",
            title_justify="left",
        )
        for m in reversed(device.recent):
            table.add_row(
                time.strftime("%H:%M:%S", time.localtime(m.ts)),
                "-" if m.candidate_id is None else f"#{m.candidate_id}",
                f"{m.latency_ms:.3f}",
                m.device,
            )
        if not device.recent:
            table.add_row("-", "-", "-", "-")
        from rich.console import Group

        self.update(Group(text, Text(""), table))
