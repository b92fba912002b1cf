"""LDP architecture search: objectives, evaluation, executors, Assisted Tabu Search, runs."""

from edgenas.search.config import SearchConfig

__all__ = ["SearchConfig"]
