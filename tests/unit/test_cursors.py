"""List cursors are sealed (issue 25, D-128): one this API issued opens in its tenant's scope only; one made
up, changed, or issued to another tenant is 422 INVALID_CURSOR."""

from __future__ import annotations

import base64
import json

import pytest

from loyalty.domain.errors import InvalidInput
from loyalty.store.table import decode_cursor, decode_position, encode_cursor, encode_position, tenant_scope


def test_a_cursor_opens_where_it_was_issued():
    with tenant_scope("acme"):
        cursor = encode_cursor("NOTE#01J")
        assert decode_cursor(cursor, "NOTE#") == "NOTE#01J"
        position = encode_position({"GSI1SK": {"S": "2026"}, "PK": {"S": "T#acme#M#1"}, "SK": {"S": "X"}}, "GSI1SK")
        assert decode_position(position, "T#acme#TAG#vip") == ("2026", "T#acme#M#1", "X")


def test_a_cursor_of_another_tenant_is_refused():
    with tenant_scope("acme"):
        cursor = encode_cursor("NOTE#01J")
    with tenant_scope("globex"), pytest.raises(InvalidInput) as refused:
        decode_cursor(cursor, "NOTE#")
    assert refused.value.code == "INVALID_CURSOR"


@pytest.mark.parametrize(
    "payload",
    [
        {"sk": "NOTE#01J"},  # unsealed, as cursors were before
        {"sk": "NOTE#01J", "mac": "AAAAAAAAAAAAAAAAAAAAAA"},
        {"at": ["x", "T#acme#M#1", "x"], "mac": ""},
    ],
)
def test_a_made_up_cursor_is_refused(payload):
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
    with tenant_scope("acme"), pytest.raises(InvalidInput) as refused:
        decode_cursor(forged, "NOTE#")
    assert refused.value.code == "INVALID_CURSOR"


def test_a_changed_cursor_is_refused():
    with tenant_scope("acme"):
        payload = json.loads(base64.urlsafe_b64decode(encode_cursor("NOTE#01J") + "=="))
        changed = base64.urlsafe_b64encode(json.dumps({**payload, "sk": "NOTE#01K"}).encode()).decode()
        with pytest.raises(InvalidInput):
            decode_cursor(changed, "NOTE#")
