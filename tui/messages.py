"""Messages from the data side to the widgets: each carries one plain dataclass."""

from __future__ import annotations

from edgenas.tui.state import RunState
from textual.message import Message


class StateChanged(Message):
    """A poll found something new; ``state`` is the whole derived dashboard state."""

    def __init__(self, state: RunState) -> None:
        super().__init__()
        self.state = state
