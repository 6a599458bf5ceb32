"""Base for every config model: unknown keys are errors, values are validated on assignment."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=100)]
"""Names of checks, channels, rules: lowercase letters, digits, '-' and '_'."""
