"""Memory the embedded AWS must not keep: moto appends every model object it ever creates
(each DynamoDB item version, every copy a read or a transaction makes, every stream record,
iterator and SQS message) to a per-class `instances_tracked` list, for its dashboard
(`/moto-api/data.json`), and never lets go. Under a steady load that list is the whole growth:
deleted and overwritten items, expired ones included, stay in memory until the process ends.

`stop_instance_tracking` makes new objects untracked and forgets those tracked so far. Only the
dashboard reads the lists (it then shows no instances); moto's own state is in its backends.
Call it before a checkpoint is loaded, so the loaded objects are not tracked either.
"""

from __future__ import annotations

from typing import Any


def stop_instance_tracking() -> None:
    from moto.core.common_models import BaseModel
    from moto.core.model_instances import reset_model_data

    if getattr(BaseModel, "_local_untracked", False):
        return

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        return super(BaseModel, cls).__new__(cls)  # type: ignore[misc]

    BaseModel.__new__ = staticmethod(__new__)  # type: ignore[method-assign,assignment]
    BaseModel._local_untracked = True  # type: ignore[attr-defined]
    reset_model_data()


def tracked_instances() -> int:
    """Objects still held by moto's tracking lists (0 once tracking is stopped)."""
    from moto.core.model_instances import model_data

    return sum(
        len(getattr(model, "instances_tracked", ()))
        for models in model_data.values()
        for model in models.values()
    )
