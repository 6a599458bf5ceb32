"""The detailed health documents (`/health/detailed`, `/health/database`, `/health/system`),
in the shape of `/health` (draft-inadarei-api-health-check, `application/health+json`).

They add what a person diagnosing the service wants and a load balancer does not: the
database's engine, revision, size and masked URL; the process's memory, files, CPU and
uptime; the self-watch's measures and the dead man's switch. Nothing secret: the database URL
has its password masked and passes the redactor, like every error text here.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psutil

from watchkeeper.core.clock import Clock
from watchkeeper.core.redact import Redactor, redact_url
from watchkeeper.core.version import __version__
from watchkeeper.engine.housekeeping import FAILED, Housekeeping
from watchkeeper.engine.selfwatch import SelfWatch
from watchkeeper.engine.watchdog import Watchdog
from watchkeeper.services.status import StatusService, reading_entry
from watchkeeper.store.database import Database

_RANK = {"pass": 0, "warn": 1, "fail": 2}
_DATABASE_KEYS = ("storage:responseTime", "storage:writeLatency")
_SYSTEM_KEYS = ("eventLoop:lag", "process:memory", "process:openFiles")


def _ts(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _document(checks: dict[str, list[dict[str, Any]]], **extra: Any) -> dict[str, Any]:
    overall = max((e[0]["status"] for e in checks.values()), key=_RANK.__getitem__, default="pass")
    return {
        "status": overall,
        "version": __version__.split(".")[0],
        "releaseId": __version__,
        "serviceId": "watchkeeper",
        "description": "Watchkeeper operations monitor",
        **extra,
        "checks": checks,
    }


@dataclass(slots=True)
class HealthService:
    """Builds the detailed health documents; reads only, changes nothing."""

    db: Database
    clock: Clock
    status: StatusService
    selfwatch: SelfWatch
    watchdog: Watchdog | None
    redactor: Redactor
    started_at: Callable[[], datetime | None]
    housekeeping: Housekeeping | None = None

    async def detailed(self) -> dict[str, Any]:
        """`/health` with every database and system entry, the self-alerts open now and the
        dead man's switch."""
        base = await self.status.health()
        checks: dict[str, list[dict[str, Any]]] = dict(base["checks"])
        for key, entry in (await self._database()).items():
            checks.setdefault(key, entry)
        for key, entry in self._system().items():
            checks.setdefault(key, entry)
        now = _ts(self.clock.now())
        if self.selfwatch.alerts is not None:
            failing = self.selfwatch.alerts.failing
            checks["selfAlerts:open"] = [
                {
                    "componentType": "component",
                    "status": "fail" if failing else "pass",
                    "time": now,
                    "observedValue": len(failing),
                    "observedUnit": "alerts",
                    **(
                        {"output": "; ".join(f"{k}: {v}" for k, v in failing.items())}
                        if failing
                        else {}
                    ),
                }
            ]
        if self.watchdog is not None:
            checks["watchdog:lastPing"] = self._watchdog(now)
        checks.update(self._housekeeping(now))
        return _document(checks, notes=["thresholds: README, Self-watch"])

    async def database(self) -> dict[str, Any]:
        """The database: reachable, how fast a read and a write are, its revision and size."""
        return _document(await self._database())

    async def system(self) -> dict[str, Any]:
        """The process: event-loop lag, memory, open files, CPU, uptime."""
        return _document(self._system())

    async def _database(self) -> dict[str, list[dict[str, Any]]]:
        now = _ts(self.clock.now())
        url = self.redactor(redact_url(self.db.url))
        entry: dict[str, Any] = {
            "componentType": "datastore",
            "componentId": self.db.dialect,
            "time": now,
            "url": url,
        }
        checks: dict[str, list[dict[str, Any]]] = {}
        started = time.perf_counter()
        try:
            await self.db.ping()
            ping_ms = round((time.perf_counter() - started) * 1000, 3)
            revision = await self.db.current_revision()
            size = await self.db.size_bytes()
        except Exception as exc:
            error = self.redactor(f"{type(exc).__name__}: {exc}")
            checks["storage:responseTime"] = [{**entry, "status": "fail", "output": error}]
            return checks
        checks["storage:responseTime"] = [
            {**entry, "status": "pass", "observedValue": ping_ms, "observedUnit": "ms"}
        ]
        head = self.db.head_revision()
        checks["storage:revision"] = [
            {
                **entry,
                "status": "pass" if revision == head else "warn",
                "observedValue": revision,
                **({} if revision == head else {"output": f"the newest revision is {head}"}),
            }
        ]
        if size is not None:
            checks["storage:size"] = [
                {**entry, "status": "pass", "observedValue": size, "observedUnit": "bytes"}
            ]
        if (reading := self.selfwatch.readings.get("storage:writeLatency")) is not None:
            checks["storage:writeLatency"] = [{**reading_entry(reading, now)[0], "url": url}]
        return checks

    def _system(self) -> dict[str, list[dict[str, Any]]]:
        now = _ts(self.clock.now())
        checks = {
            key: reading_entry(reading, now)
            for key in _SYSTEM_KEYS
            if (reading := self.selfwatch.readings.get(key)) is not None
        }
        process = psutil.Process()
        system = {"componentType": "system", "status": "pass", "time": now}
        with process.oneshot():
            cpu = process.cpu_times()
            created = process.create_time()
        checks["process:cpuTime"] = [
            {**system, "observedValue": round(cpu.user + cpu.system, 3), "observedUnit": "s"}
        ]
        checks["process:uptime"] = [
            {**system, "observedValue": round(time.time() - created, 3), "observedUnit": "s"}
        ]
        if (started := self.started_at()) is not None:
            running = (self.clock.now() - started).total_seconds()
            checks["service:uptime"] = [
                {**system, "observedValue": round(running, 3), "observedUnit": "s"}
            ]
        if hasattr(os, "getloadavg"):
            checks["system:load"] = [
                {
                    **system,
                    "observedValue": round(os.getloadavg()[0], 2),
                    "observedUnit": "1-minute load average",
                    "output": f"{os.cpu_count()} CPUs",
                }
            ]
        checks["runtime:python"] = [
            {**system, "observedValue": platform.python_version(), "componentId": str(os.getpid())}
        ]
        return checks

    def _housekeeping(self, now: str) -> dict[str, list[dict[str, Any]]]:
        """`housekeeping:<job>`: each job's last run (when, how long, how it ended); a job
        whose last run failed warns (it runs again at its next turn)."""
        if self.housekeeping is None:
            return {}
        checks: dict[str, list[dict[str, Any]]] = {}
        for name in self.housekeeping.jobs:
            entry: dict[str, Any] = {"componentType": "component", "time": now}
            last = self.housekeeping.last_runs.get(name)
            if last is None:
                checks[f"housekeeping:{name}"] = [
                    {**entry, "status": "pass", "observedValue": None, "output": "not run yet"}
                ]
                continue
            checks[f"housekeeping:{name}"] = [
                {
                    **entry,
                    "status": "warn" if last.outcome == FAILED else "pass",
                    "observedValue": round(last.duration * 1000, 3),
                    "observedUnit": "ms",
                    "lastRun": _ts(last.at),
                    "outcome": last.outcome,
                    **({"output": last.detail} if last.detail else {}),
                }
            ]
        return checks

    def _watchdog(self, now: str) -> list[dict[str, Any]]:
        watchdog = self.watchdog
        assert watchdog is not None
        entry: dict[str, Any] = {"componentType": "component", "time": now}
        if watchdog.held_back is not None:
            return [{**entry, "status": "warn", "output": f"not pinging: {watchdog.held_back}"}]
        if watchdog.last_error is not None:
            return [{**entry, "status": "warn", "output": watchdog.last_error}]
        last = watchdog.last_ping_at
        return [
            {
                **entry,
                "status": "pass",
                "observedValue": _ts(last) if last is not None else None,
                "observedUnit": "time",
            }
        ]
