"""Screens of the monitor: run list, run dashboard, candidate detail, help."""
