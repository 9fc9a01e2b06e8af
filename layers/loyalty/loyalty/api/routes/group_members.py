"""The stores of a store group and the products of a product group (D-084): an item each, so a group holds
thousands; put in or taken out one at a time while the group is a draft (or thousands at once with a
master-data job), and listed a page at a time."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import Field

from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.domain.config import CODE_PATTERN
from loyalty.domain.validity import View
from loyalty.services.config import ConfigService, config_service

router = Router()
Code = Annotated[str, Path(pattern=CODE_PATTERN)]


class GroupMember(View):
    code: str = Field(description="The store's or product's code")
    added_at: str | None = None


class GroupMemberPage(View):
    items: list[GroupMember]
    next_cursor: str | None = None


@lru_cache(maxsize=1)
def service() -> ConfigService:
    return config_service()


def _page(group_kind: str, group: str, limit: int, cursor: str | None) -> GroupMemberPage:
    items, next_cursor = service().repository.members_page(principal(router).tenant, group_kind, group, limit, cursor)
    return GroupMemberPage(items=[GroupMember.model_validate(i) for i in items], next_cursor=next_cursor)


Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(min_length=1, max_length=500)]


@router.put(
    "/v1/admin/store-groups/<groupCode>/stores/<storeCode>",
    operation_id="addStoreToGroup",
    tags=["configuration"],
    responses=responses(),
    summary="Put a store in a draft store group (repeatable)",
)
def add_store(groupCode: Code, storeCode: Code) -> GroupMember:
    service().add_member(principal(router).tenant, "storeGroup", groupCode, storeCode)
    return GroupMember(code=storeCode)


@router.delete(
    "/v1/admin/store-groups/<groupCode>/stores/<storeCode>",
    operation_id="removeStoreFromGroup",
    tags=["configuration"],
    status_code=204,
    responses=responses(204),
    summary="Take a store out of a draft store group (repeatable)",
)
def remove_store(groupCode: Code, storeCode: Code) -> None:
    service().remove_member(principal(router).tenant, "storeGroup", groupCode, storeCode)


@router.get(
    "/v1/admin/store-groups/<groupCode>/stores",
    operation_id="listStoreGroupStores",
    tags=["configuration"],
    responses=responses(),
    summary="The stores of a store group, by code, a page at a time",
)
def list_stores(groupCode: Code, limit: Limit = 100, cursor: Cursor = None) -> GroupMemberPage:
    return _page("storeGroup", groupCode, limit, cursor)


@router.put(
    "/v1/admin/product-groups/<groupCode>/products/<productCode>",
    operation_id="addProductToGroup",
    tags=["configuration"],
    responses=responses(),
    summary="Put a product in a draft product group (repeatable)",
)
def add_product(groupCode: Code, productCode: Code) -> GroupMember:
    service().add_member(principal(router).tenant, "productGroup", groupCode, productCode)
    return GroupMember(code=productCode)


@router.delete(
    "/v1/admin/product-groups/<groupCode>/products/<productCode>",
    operation_id="removeProductFromGroup",
    tags=["configuration"],
    status_code=204,
    responses=responses(204),
    summary="Take a product out of a draft product group (repeatable)",
)
def remove_product(groupCode: Code, productCode: Code) -> None:
    service().remove_member(principal(router).tenant, "productGroup", groupCode, productCode)


@router.get(
    "/v1/admin/product-groups/<groupCode>/products",
    operation_id="listProductGroupProducts",
    tags=["configuration"],
    responses=responses(),
    summary="The products of a product group, by code, a page at a time",
)
def list_products(groupCode: Code, limit: Limit = 100, cursor: Cursor = None) -> GroupMemberPage:
    return _page("productGroup", groupCode, limit, cursor)
