"""The configuration API (operator keys): five routes per kind of configuration, made from its `Kind`,
plus `enable` for store and product groups. Described once in domain/config.py."""

import inspect
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import BaseModel, Field, create_model

from loyalty.api.params import Cursor, Limit
from loyalty.api.problems import responses
from loyalty.api.resolver import idempotency_key, principal
from loyalty.domain.config import CODE_PATTERN, KINDS, Kind
from loyalty.services.config import ConfigService, config_service
from loyalty.services.idempotency import run_once
from loyalty.store.config_repo import Stored

router = Router()
CodePath = Annotated[str, Path(pattern=CODE_PATTERN)]


@lru_cache(maxsize=1)
def service() -> ConfigService:
    return config_service()


def _resource_model(kind: Kind) -> type[BaseModel]:
    extra: dict[str, Any] = {"created_at": (datetime, ...), "updated_at": (datetime, ...)}
    if kind.enableable:
        extra["status"] = (Literal["draft", "enabled"], Field(description="Usable by rules only once enabled"))
        extra["member_count"] = (
            int,
            Field(description="Stores or products in it (listed at .../stores, .../products)"),
        )
    if kind.counts_members:
        extra["member_count"] = (int, Field(description="Members holding it now; it cannot be deleted before 0"))
    return create_model(f"{kind.title}Resource", __base__=kind.model, **extra)


def _page_model(kind: Kind, resource: type[BaseModel]) -> type[BaseModel]:
    return create_model(
        f"{kind.title}Page",
        items=(list[resource], ...),  # type: ignore[valid-type]
        next_cursor=(str | None, Field(default=None, alias="nextCursor")),
    )


def _dump(stored: Stored) -> dict[str, Any]:
    body = stored.item.model_dump(mode="json", by_alias=True)
    body.update(createdAt=stored.created_at, updatedAt=stored.updated_at)
    if stored.kind.enableable:
        body.update(status=stored.status, memberCount=stored.members)
    if stored.kind.counts_members:
        body["memberCount"] = stored.refs
    return body


def _operation_plural(kind: Kind) -> str:
    return kind.operation_plural or kind.title + "s"


_REQUIRED = inspect.Parameter.empty


def _describe(function: Callable[..., Any], parameters: list[tuple[str, Any, Any]], returns: Any) -> None:
    """Give a generated route function the signature Powertools reads: its parameters (path, query,
    body) with their types, and its response model. Parameters it does not declare stay unused."""
    function.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
            for name, annotation, default in parameters
        ],
        return_annotation=returns,
    )


def _register(kind: Kind) -> None:
    """Register create / list / get / replace / delete for one kind (program-scoped kinds nest under it)."""
    model, resource = kind.model, _resource_model(kind)
    page = _page_model(kind, resource)
    scoped = kind.scope == "program"
    collection = f"/v1/admin/programs/<programCode>/{kind.plural}" if scoped else f"/v1/admin/{kind.plural}"
    item_path = collection + "/<code>"
    tags = ["configuration" if scoped or kind.name == "program" else "master data"]

    def create(body: Any, programCode: str | None = None) -> Any:
        caller = principal(router)
        payload = {"program": programCode, **body.model_dump(mode="json")}
        return run_once(
            caller.tenant,
            f"create{kind.title}",
            idempotency_key(router),
            payload,
            lambda _: _dump(service().create(caller.tenant, kind, programCode, body)),
        )

    def list_items(limit: int = 50, cursor: str | None = None, programCode: str | None = None) -> Any:
        items, next_cursor = service().list_page(principal(router).tenant, kind, programCode, limit, cursor)
        return {"items": [_dump(stored) for stored in items], "nextCursor": next_cursor}

    def get(code: str, programCode: str | None = None) -> Any:
        return _dump(service().get(principal(router).tenant, kind, programCode, code))

    def replace(code: str, body: Any, programCode: str | None = None) -> Any:
        return _dump(service().replace(principal(router).tenant, kind, programCode, code, body))

    def delete(code: str, programCode: str | None = None) -> None:
        service().delete(principal(router).tenant, kind, programCode, code)

    program = [("programCode", CodePath, _REQUIRED)] if scoped else []
    body = ("body", Annotated[model, Body()], _REQUIRED)
    code = ("code", CodePath, _REQUIRED)
    _describe(create, program + [body], resource)
    _describe(list_items, program + [("limit", Limit, 50), ("cursor", Cursor, None)], page)
    _describe(get, program + [code], resource)
    _describe(replace, program + [code, body], resource)
    _describe(delete, program + [code], None)

    title, plural = kind.title, _operation_plural(kind)

    def add(
        method: str, path: str, operation: str, summary: str, function: Callable[..., Any], status: int = 200
    ) -> None:
        router.route(
            path,
            method,
            operation_id=operation,
            summary=summary,
            status_code=status,
            tags=tags,
            responses=responses(status),
        )(function)

    add("POST", collection, f"create{title}", f"Create a {kind.name}", create, 201)
    add("GET", collection, f"list{plural}", f"List {kind.plural}", list_items)
    add("GET", item_path, f"get{title}", f"Read a {kind.name}", get)
    add("PUT", item_path, f"update{title}", f"Replace a {kind.name}", replace)
    add(
        "DELETE",
        item_path,
        f"delete{title}",
        f"Delete a {kind.name}; refused (409) while it is referenced",
        delete,
        204,
    )

    if kind.enableable:

        def enable(code: str) -> Any:
            return _dump(service().enable(principal(router).tenant, kind, code))

        _describe(enable, [("code", CodePath, _REQUIRED)], resource)
        add(
            "POST",
            item_path + "/enable",
            f"enable{title}",
            f"Enable a {kind.name}: its members freeze and rules may use it",
            enable,
        )


for _kind in KINDS.values():
    _register(_kind)
