"""The service layer: each operation the API, the dashboard and the CLI share, once.

A service method validates, runs one transaction through `store/`, publishes the change on
the change feed and wakes whoever must act on it (the dispatcher, the scheduler), and
refuses with a domain error (`watchkeeper.core.errors`), never with an HTTP exception:
`http.problems` maps those in one place. Routes and pages get the services from
`http.deps.get_services` and never touch the runtime's parts.

The composition root (`app.Runtime`) builds one `Services` per run from its components.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watchkeeper.services.alerts import AlertService
    from watchkeeper.services.checks import CheckService
    from watchkeeper.services.dashboard import DashboardService
    from watchkeeper.services.health import HealthService
    from watchkeeper.services.heartbeats import HeartbeatService
    from watchkeeper.services.incidents import IncidentService
    from watchkeeper.services.maintenance import MaintenanceService
    from watchkeeper.services.recovery import RecoveryService
    from watchkeeper.services.reload import ReloadService
    from watchkeeper.services.rules import RuleService
    from watchkeeper.services.series import SeriesService
    from watchkeeper.services.silences import SilenceService
    from watchkeeper.services.status import StatusService
    from watchkeeper.services.status_subscriptions import StatusSubscriptionService
    from watchkeeper.statuspage.snapshot import StatusPages

from watchkeeper.services.audit import AuditService
from watchkeeper.services.objects import ObjectService
from watchkeeper.services.sessions import SessionService
from watchkeeper.services.setup import SetupService
from watchkeeper.services.tokens import TokenService
from watchkeeper.services.users import UserService


@dataclass(slots=True)
class Services:
    """Every service of a running Watchkeeper (built by `app.Runtime`)."""

    checks: CheckService
    alerts: AlertService
    silences: SilenceService
    maintenance: MaintenanceService
    status: StatusService
    heartbeats: HeartbeatService
    rules: RuleService
    series: SeriesService
    dashboard: DashboardService
    users: UserService
    tokens: TokenService
    sessions: SessionService
    audit: AuditService
    objects: ObjectService
    recovery: RecoveryService
    setup: SetupService
    reload: ReloadService
    health: HealthService
    incidents: IncidentService
    status_pages: StatusPages
    """The public status pages' snapshots (served as they are, without the database)."""
    status_subscriptions: StatusSubscriptionService
