"""Dense-prediction tasks: registry, datasets, losses, metrics (see :mod:`.registry`)."""

from edgenas.tasks.registry import TASKS, Task, get_task

__all__ = ["TASKS", "Task", "get_task"]
