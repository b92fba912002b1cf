"""Widgets of the monitor; each shows part of a :class:`~edgenas.tui.state.RunState`."""
