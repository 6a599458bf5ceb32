"""Maintenance windows: alerts of the checks in one are held back while it is active."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from watchkeeper.alerting import stored_windows as window_store
from watchkeeper.alerting.broken import BrokenObjects, describe
from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.core.clock import Clock
from watchkeeper.core.errors import Conflict, Invalid, NotFound
from watchkeeper.services.silences import parse_length
from watchkeeper.store.database import Database

FROM_CONFIG = "this window comes from the config file; edit it there"
NO_SUCH_WINDOW = "no such maintenance window"


def _exists(name: str) -> str:
    return f"a maintenance window named {name!r} exists"


@dataclass(frozen=True, slots=True)
class WindowView:
    """A window as listed: where it comes from, whether it is active, and when that changes.
    One that does not validate or cannot be evaluated is inactive and says why (`broken`)."""

    name: str
    source: str
    """`config` (edited in the file only) or `api`."""
    active: bool
    next_change: datetime | None
    definition: dict[str, Any]
    broken: str | None = None


@dataclass(frozen=True, slots=True)
class TimedWindow:
    """A window that validates, with whether it is active now and when that changes."""

    window: MaintenanceWindow
    source: str
    active: bool
    next_change: datetime | None


@dataclass(slots=True)
class MaintenanceService:
    """The windows of the config file (read-only) and those made over the API or the
    dashboard (stored); the dispatcher applies them."""

    db: Database
    clock: Clock
    configured: Sequence[MaintenanceWindow]
    broken: BrokenObjects
    wake_dispatcher: Callable[[], None]

    async def list_windows(self) -> list[WindowView]:
        """Every window, the config file's first; a stored one that does not validate, or
        one that cannot be evaluated, is listed with `broken` (never an error for all)."""
        now = self.clock.now()
        items = [self._listed(w.name, "config", w, now) for w in self.configured]
        for stored in await window_store.load_stored_windows(self.db):
            items.append(self._listed(stored.name, "api", stored.window or stored, now))
        return items

    async def timed_windows(self) -> list[TimedWindow]:
        """The windows that validate, each with its timing now; one that cannot be evaluated
        is inactive (the dispatcher reports it broken)."""
        now = self.clock.now()
        windows = [(w, "config") for w in self.configured] + [
            (w, "api") for w in await window_store.load_windows(self.db)
        ]
        return [TimedWindow(w, source, *_timing(w, now)) for w, source in windows]

    def _listed(self, name: str, source: str, definition: Any, now: datetime) -> WindowView:
        if isinstance(definition, MaintenanceWindow):
            try:
                return WindowView(
                    name=definition.name,
                    source=source,
                    active=definition.active_at(now),
                    next_change=definition.next_change(now),
                    definition=definition.model_dump(mode="json", exclude_unset=True),
                    broken=self.broken.error("maintenance", name),
                )
            except Exception as exc:
                error = describe(exc)
            shown = definition.model_dump(mode="json", exclude_unset=True)
        else:
            error, shown = definition.error, definition.definition
        if not isinstance(shown, dict):
            shown = {"definition": shown}
        return WindowView(
            name=name, source=source, active=False, next_change=None, definition=shown, broken=error
        )

    async def create(self, window: MaintenanceWindow, created_by: str) -> WindowView:
        """Store a window and have the dispatcher apply it; Conflict if the name is taken
        (in the config file or stored)."""
        taken = {w.name for w in self.configured}
        taken.update(w.name for w in await window_store.load_windows(self.db))
        if window.name in taken:
            raise Conflict(_exists(window.name))
        now = self.clock.now()
        try:
            await window_store.save_window(self.db, window, created_by, now)
        except KeyError:
            raise Conflict(_exists(window.name)) from None
        self.wake_dispatcher()
        return self._listed(window.name, "api", window, now)

    async def start_now(
        self,
        name: str,
        length: str,
        *,
        checks: Sequence[str] = (),
        comment: str = "",
        created_by: str,
    ) -> WindowView:
        """A window from now for `length` (as typed: `1h`, `2d`) over `checks`. Invalid
        naming what is wrong (`duration`, or the first field that does not validate);
        Conflict as `create`."""
        now = self.clock.now()
        span = parse_length(length, "duration")
        try:
            window = MaintenanceWindow.model_validate(
                {
                    "name": name,
                    "starts_at": now,
                    "ends_at": now + span,
                    "checks": list(checks),
                    "comment": comment,
                }
            )
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in error["loc"])
            raise Invalid(f"{where}: {error['msg']}" if where else str(error["msg"])) from None
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        return await self.create(window, created_by)

    async def delete(self, name: str) -> None:
        """Delete a stored window; Conflict for one of the config file, NotFound if none."""
        if any(w.name == name for w in self.configured):
            raise Conflict(FROM_CONFIG)
        if not await window_store.delete_window(self.db, name):
            raise NotFound(NO_SUCH_WINDOW)
        self.wake_dispatcher()


def _timing(window: MaintenanceWindow, now: datetime) -> tuple[bool, datetime | None]:
    try:
        return window.active_at(now), window.next_change(now)
    except Exception:
        return False, None
