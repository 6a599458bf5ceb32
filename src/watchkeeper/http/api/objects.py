"""Writes of API-managed objects: checks, escalation policies and rules.

Bodies are what the config file would hold for the object (the same fields, the same
validation and cross-references). Objects from the config file are listed with
`source: config` and are read-only here (409). Admins write, viewers read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel

from watchkeeper.http import audit, problems
from watchkeeper.http.api.checks import check_out
from watchkeeper.http.api.schemas import CheckOut, Limit, Offset, Page
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Principal, Role, require
from watchkeeper.services import Services
from watchkeeper.services.objects import Kind, ManagedRecord, ObjectView

ADMIN = Depends(require(Role.ADMIN))

checks_router = APIRouter(
    prefix="/api/v1/checks", tags=["checks"], dependencies=[Depends(require(Role.VIEWER))]
)
policies_router = APIRouter(
    prefix="/api/v1/escalation-policies",
    tags=["escalation"],
    dependencies=[Depends(require(Role.VIEWER))],
)
rules_router = APIRouter(
    prefix="/api/v1/rules", tags=["rules"], dependencies=[Depends(require(Role.VIEWER))]
)
status_pages_router = APIRouter(
    prefix="/api/v1/status-pages",
    tags=["status pages"],
    dependencies=[Depends(require(Role.VIEWER))],
)

_WRITE_PROBLEMS = problems.responses(409, 503)

DefinitionBody = Annotated[
    dict[str, Any],
    Body(
        description="The object as the config file would hold it (the config reference lists "
        "every field); validated with the same models and cross-references."
    ),
]


class ManagedInfo(BaseModel):
    """Who made an API-managed object, and when it last changed (None for config ones)."""

    version: int | None = None
    """1 when created, +1 with each replacement."""
    created_by: str | None = None
    created_at: datetime | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None


def _info(record: ManagedRecord | None) -> dict[str, Any]:
    if record is None:
        return {}
    return {
        "version": record.version,
        "created_by": record.created_by,
        "created_at": record.created_at,
        "updated_by": record.updated_by,
        "updated_at": record.updated_at,
    }


# -- checks -----------------------------------------------------------------------------------


class ManagedCheckOut(CheckOut, ManagedInfo):
    definition: dict[str, Any]
    """As stored, with secret values (passwords, tokens) masked."""


def _managed_check_out(request: Request, services: Services, name: str) -> ManagedCheckOut:
    out = check_out(services.checks.get(name))
    return ManagedCheckOut(
        **out.model_dump(),
        **_info(services.objects.record(Kind.CHECK, name)),
        definition=services.objects.check_definition(name) or {},
    )


# -- escalation policies ----------------------------------------------------------------------


class DefinitionOut(ManagedInfo):
    name: str
    source: str
    """`config` (read-only here) or `api`."""
    definition: dict[str, Any]
    broken: str | None = None
    """Why the object cannot be evaluated: it is then ignored (alerts naming a broken
    policy are routed as if they named none) and an alert says so."""


class EscalationPolicyOut(DefinitionOut):
    """`definition`: `steps` (each `after` and `notify`) and `repeat`, as in the config file."""


OutT = TypeVar("OutT", bound=DefinitionOut)


def _definition_out(view: ObjectView, model: type[OutT]) -> OutT:
    """A config-file or API-managed object as stored (API) or as configured (config file)."""
    return model(
        name=view.name,
        source=view.source,
        definition=view.definition,
        broken=view.broken,
        **_info(view.record),
    )


@policies_router.get(
    "", response_model=Page[EscalationPolicyOut], summary="Escalation policies (config and API)"
)
async def list_policies(
    services: Services = Depends(get_services), limit: Limit = 100, offset: Offset = 0
) -> Page[EscalationPolicyOut]:
    views = services.objects.policies()
    return Page.of([_definition_out(v, EscalationPolicyOut) for v in views], limit, offset)


@policies_router.get("/{name}", response_model=EscalationPolicyOut, summary="One policy")
async def get_policy(name: str, services: Services = Depends(get_services)) -> Any:
    return _definition_out(services.objects.policy(name), EscalationPolicyOut)


# -- rules (the list with each series' state is GET /api/v1/rules, in api/rules.py) -----------


class RuleDefinitionOut(DefinitionOut):
    """A rule's definition, as in the config file."""


@rules_router.get("/{name}", response_model=RuleDefinitionOut, summary="One rule's definition")
async def get_rule(name: str, services: Services = Depends(get_services)) -> Any:
    return _definition_out(services.objects.rule(name), RuleDefinitionOut)


# -- status pages (their incidents: /api/v1/incidents) ------------------------------------


class StatusPageOut(DefinitionOut):
    """A status page's definition, as in the config file (`status_pages:`)."""


@status_pages_router.get(
    "", response_model=Page[StatusPageOut], summary="Status pages (config and API)"
)
async def list_status_pages(
    services: Services = Depends(get_services), limit: Limit = 100, offset: Offset = 0
) -> Page[StatusPageOut]:
    views = services.objects.status_pages()
    return Page.of([_definition_out(v, StatusPageOut) for v in views], limit, offset)


@status_pages_router.get("/{slug}", response_model=StatusPageOut, summary="One status page")
async def get_status_page(slug: str, services: Services = Depends(get_services)) -> Any:
    return _definition_out(services.objects.status_page(slug), StatusPageOut)


def _writes(
    router: APIRouter,
    kind: Kind,
    out_model: type[BaseModel],
    out: Callable[[Request, Services, str], BaseModel],
    *,
    create: str,
    replace: str,
    delete: str,
) -> None:
    """POST, PUT and DELETE for one kind: the same but for the kind, its answer and wording."""

    @router.post(
        "",
        response_model=out_model,
        status_code=201,
        dependencies=[ADMIN],
        responses=_WRITE_PROBLEMS,
        summary=create,
        name=f"create_{kind.value}",
    )
    async def create_object(
        request: Request,
        body: DefinitionBody,
        services: Services = Depends(get_services),
        who: Principal = ADMIN,
    ) -> Any:
        record = await services.objects.create(kind, body, who.name)
        audit.add_detail(request, name=record.name)
        return out(request, services, record.name)

    @router.put(
        "/{name}",
        response_model=out_model,
        dependencies=[ADMIN],
        responses=_WRITE_PROBLEMS,
        summary=replace,
        name=f"replace_{kind.value}",
    )
    async def replace_object(
        name: str,
        request: Request,
        body: DefinitionBody,
        services: Services = Depends(get_services),
        who: Principal = ADMIN,
    ) -> Any:
        await services.objects.replace(kind, name, body, who.name)
        return out(request, services, name)

    @router.delete(
        "/{name}",
        status_code=204,
        response_model=None,
        dependencies=[ADMIN],
        responses=_WRITE_PROBLEMS,
        summary=delete,
        name=f"delete_{kind.value}",
    )
    async def delete_object(
        name: str, services: Services = Depends(get_services), who: Principal = ADMIN
    ) -> Any:
        await services.objects.delete(kind, name, who.name)
        return None


_writes(
    checks_router,
    Kind.CHECK,
    ManagedCheckOut,
    _managed_check_out,
    create="Create a check (same fields as in the config file); it runs at once",
    replace="Replace an API-managed check (config-file checks: 409)",
    delete="Delete an API-managed check: it stops, its open alerts resolve",
)
_writes(
    policies_router,
    Kind.ESCALATION_POLICY,
    EscalationPolicyOut,
    lambda _request, services, name: _definition_out(
        services.objects.policy(name), EscalationPolicyOut
    ),
    create="Create an escalation policy (same fields as in the config file)",
    replace="Replace an API-managed escalation policy (config-file ones: 409)",
    delete="Delete an API-managed escalation policy (409 while a check or rule uses it)",
)
_writes(
    rules_router,
    Kind.RULE,
    RuleDefinitionOut,
    lambda _request, services, name: _definition_out(
        services.objects.rule(name), RuleDefinitionOut
    ),
    create="Create a metric rule (same fields as in the config file)",
    replace="Replace an API-managed rule (config-file rules: 409)",
    delete="Delete an API-managed rule: its open alerts resolve",
)

_writes(
    status_pages_router,
    Kind.STATUS_PAGE,
    StatusPageOut,
    lambda _request, services, name: _definition_out(
        services.objects.status_page(name), StatusPageOut
    ),
    create="Create a status page (same fields as a `status_pages:` entry; `slug` names it)",
    replace="Replace an API-managed status page (config-file ones: 409)",
    delete="Delete an API-managed status page (its incidents stay stored)",
)

router = APIRouter()
for _router in (checks_router, policies_router, rules_router, status_pages_router):
    router.include_router(_router)
