"""Personal data declared once (D-123): every field of the member's models is declared personal or not, the
masks hide and are idempotent, and a log line carries no personal value whole."""

from __future__ import annotations

import io
import json
import logging

import pytest
from pydantic import BaseModel

from loyalty.domain.members import MemberPatch, MemberSummary, MemberView, Registration
from loyalty.domain.personal_data import DERIVED, FREE_TEXT, NOT_PERSONAL, PERSONAL, masked
from loyalty.observability import PersonalDataFilter

SAMPLES = {
    "phone": "13800138000",
    "name": "张三丰",
    "nickname": "小张",
    "email": "zhang.san@example.com",
    "birthday": "1990-05-01",
    "gender": "female",
    "address": {"province": "上海", "city": "上海", "district": "黄浦区", "line": "南京东路 100 号 2 室"},
    "avatarUrl": "https://img.example.com/a/zhang.png",
}


def _fields(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


@pytest.mark.parametrize("model", [Registration, MemberPatch, MemberView, MemberSummary])
def test_every_field_of_a_member_model_is_declared_personal_or_not(model):
    undeclared = _fields(model) - set(PERSONAL) - set(DERIVED) - set(FREE_TEXT) - NOT_PERSONAL
    assert undeclared == set(), f"declare {sorted(undeclared)} in loyalty/domain/personal_data.py"


def test_a_field_is_declared_one_way_only():
    assert not set(PERSONAL) & NOT_PERSONAL and not set(FREE_TEXT) & NOT_PERSONAL


def test_each_personal_field_has_a_sample_here():
    assert set(SAMPLES) == set(PERSONAL)


@pytest.mark.parametrize("field", sorted(PERSONAL))
def test_a_mask_hides_the_value_and_masking_again_changes_nothing(field):
    value = SAMPLES[field]
    shown = masked(field, value)
    assert shown != value and masked(field, shown) == shown
    assert json.dumps(value, ensure_ascii=False) not in json.dumps(shown, ensure_ascii=False)


def test_masks_show_what_a_record_shows():
    assert masked("phone", "13800138000") == "138****8000"
    assert masked("email", "zhang.san@example.com") == "z***@example.com"
    assert masked("name", "张三丰") == "张*" and masked("birthday", "1990-05-01") == "****-05-01"
    assert masked("address", SAMPLES["address"])["line"] == "***"
    assert masked("marketingOptIn", True) is True and masked("name", None) is None


def test_a_log_line_masks_personal_fields_and_free_text_wherever_they_sit():
    logger = logging.getLogger("personal-data-test")
    logger.addFilter(PersonalDataFilter())
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(phone)s %(order)s %(reason)s %(points)s"))
    logger.handlers = [handler]
    logger.propagate = False
    order = {"submission": {"member": {"phone": "13800138000"}}, "email": "zhang.san@example.com"}
    logger.warning("held", extra={"phone": "13800138000", "order": order, "reason": "她怀孕了", "points": 500})
    line = out.getvalue()
    assert "13800138000" not in line and "zhang.san" not in line and "怀孕" not in line
    assert "138****8000" in line and "z***@example.com" in line and line.strip().endswith("*** 500")
