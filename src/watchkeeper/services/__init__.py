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

from watchkeeper.services.audit import AuditService
from watchkeeper.services.objects import ObjectService
from watchkeeper.services.sessions import SessionService
from watchkeeper.services.tokens import TokenService
from watchkeeper.services.users import UserService


@dataclass(slots=True)
class Services:
    """Every service of a running Watchkeeper (built by `app.Runtime`)."""

    users: UserService
    tokens: TokenService
    sessions: SessionService
    audit: AuditService
    objects: ObjectService
