"""Textual monitor of searches; reads the run store only."""
