import pytest

from loyalty.api.principal import principal_for, required_role
from loyalty.domain.errors import Forbidden, Unauthorized
from loyalty.domain.members import normalize_phone
from loyalty.ids import new_ulid


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("13800138000", "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("+86 (138) 0013.8000", "+8613800138000"),
    ],
)
def test_one_spelling_per_phone_number(raw, normalized):
    assert normalize_phone(raw) == normalized


@pytest.mark.parametrize("raw", ["12345", "1380013800012345", "phone", "+86+138", ""])
def test_what_is_not_a_phone_number_is_refused(raw):
    with pytest.raises(ValueError):
        normalize_phone(raw)


def test_the_admin_api_needs_an_operator_key_and_the_rest_a_channel_key():
    assert required_role("/v1/admin/stores") == "operator"
    assert required_role("/v1/members") == "channel"
    assert required_role("/v1/administrators") == "channel"  # the prefix is the whole segment
    with pytest.raises(Unauthorized):
        principal_for("/v1/members", {"tenant": ""})
    with pytest.raises(Unauthorized):
        principal_for("/v1/members", None)
    with pytest.raises(Forbidden):
        principal_for("/v1/admin/stores", {"tenant": "t", "role": "channel", "channel": "POS", "keyId": "k"})
    assert (
        principal_for("/v1/members", {"tenant": "t", "role": "channel", "channel": "POS", "keyId": "k"}).tenant == "t"
    )


def test_ulids_sort_by_creation_time():
    earlier, later = new_ulid(now_ms=1_700_000_000_000), new_ulid(now_ms=1_700_000_000_001)
    assert len(earlier) == 26 and earlier < later
    assert set(earlier) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
