"""Recovery action types. Importing this package registers every built-in type: each module
in this folder that is not `base` defines one type with `@ACTIONS.register`."""

from watchkeeper.core.registry import autoload
from watchkeeper.recovery.actions.base import (
    ACTIONS,
    Action,
    ActionContext,
    ActionOutcome,
    OutcomeStatus,
    build_action,
)

autoload(__name__, __path__, skip=("base",))

__all__ = ["ACTIONS", "Action", "ActionContext", "ActionOutcome", "OutcomeStatus", "build_action"]
