"""Automatic recovery as the API sees it: the configured actions with their state, the
record of runs, and running or resetting an action by hand.

Actions themselves come only from the config file (those that run programs must never be
defined over the API): there is no operation here that creates or changes one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from watchkeeper.core.errors import Conflict, NotFound
from watchkeeper.recovery.coordinator import ActionStatus, NotPending, Recovery, run_record
from watchkeeper.recovery.guard import Refused
from watchkeeper.store import recovery as run_store
from watchkeeper.store.database import Database

NO_SUCH_ACTION = "no recovery action named {!r}"
NO_SUCH_RUN = "no such recovery run"

Verdict = Literal["approved", "rejected"]
"""What an operator decided about a runbook run waiting for approval."""


@dataclass(slots=True)
class RecoveryService:
    """Reads and operator actions over the runtime's `Recovery`."""

    recovery: Recovery
    db: Database

    def actions(self) -> list[ActionStatus]:
        """Every configured action with its state (ready, running, cooling down,
        exhausted) and, for `process`, its program."""
        return self.recovery.status()

    def action(self, name: str) -> ActionStatus:
        """One action's state; NotFound if there is none."""
        for status in self.recovery.status():
            if status.name == name:
                return status
        raise NotFound(NO_SUCH_ACTION.format(name))

    async def runs(
        self,
        *,
        action: str | None,
        check: str | None,
        limit: int,
        offset: int,
        status: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Runs, newest first, with the total matching count (a running one with its
        output so far)."""
        rows, total = await run_store.list_runs(
            self.db, action=action, check=check, status=status, limit=limit, offset=offset
        )
        return [self._with_live(run_record(row)) for row in rows], total

    async def pending(self) -> list[dict[str, Any]]:
        """Runs waiting for approval, newest first, each with its `expires_at`."""
        rows, _ = await run_store.list_runs(self.db, status=run_store.PENDING_APPROVAL, limit=1000)
        return [self._with_live(run_record(row)) for row in rows]

    async def run(self, run_id: str) -> dict[str, Any]:
        """One run; NotFound if there is none."""
        row = await run_store.get_run(self.db, run_id)
        if row is None:
            raise NotFound(NO_SUCH_RUN)
        return self._with_live(run_record(row))

    def _with_live(self, record: dict[str, Any]) -> dict[str, Any]:
        lines = self.recovery.live.get(record["id"])
        if record["status"] == run_store.RUNNING and lines:
            record["output"] = "\n".join(lines)
        pending = self.recovery.pending.get(record["id"])
        record["expires_at"] = pending.deadline if pending is not None else None
        return record

    async def decide(
        self, run_id: str, verdict: Verdict, *, actor: str, comment: str
    ) -> dict[str, Any]:
        """A person's decision on a pending runbook run: approved, it runs now (its record
        once started); rejected, it ends without running, with the reason. NotFound: no
        such run; Conflict: it is not waiting for approval."""
        decide = self.recovery.approve if verdict == "approved" else self.recovery.reject
        try:
            await decide(run_id, actor=actor, comment=comment)
        except NotPending:
            raise await self._not_pending(run_id) from None
        return await self.run(run_id)

    async def _not_pending(self, run_id: str) -> Exception:
        record = await self.run(run_id)  # NotFound when there is no such run
        return Conflict(f"the run is {record['status']}, not waiting for approval")

    async def start(self, name: str, *, actor: str) -> dict[str, Any]:
        """Run `name` now, by hand; return its record once it started. NotFound for an
        unknown action, Conflict when its guard refuses (running, cooling down, exhausted:
        the reason says which)."""
        try:
            run_id = await self.recovery.run(name, actor=actor)
        except KeyError:
            raise NotFound(NO_SUCH_ACTION.format(name)) from None
        except Refused as refused:
            raise Conflict(str(refused)) from None
        return await self.run(run_id)

    async def reset(self, name: str) -> ActionStatus:
        """Lift the lock-out of `name` and forget its attempts; NotFound if unknown."""
        try:
            await self.recovery.reset(name)
        except KeyError:
            raise NotFound(NO_SUCH_ACTION.format(name)) from None
        return self.action(name)
