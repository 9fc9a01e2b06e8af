"""DynamoDB refuses expression values or names a request does not use; the emulator lets them through, so
the table wrapper refuses them itself (a return of a non-member sale once sent one and was a 500 on
DynamoDB Local only)."""

import pytest

from loyalty.store.table import _all_placeholders_used, update


def test_every_value_and_name_given_is_used():
    good = update("T#t#X", "S", "SET #s = :new", {":new": 1, ":old": 0}, "#s = :old", {"#s": "status"})
    _all_placeholders_used(good["Update"])
    unused = update("T#t#X", "S", "SET a = :new", {":new": 1, ":v": 0}, "attribute_not_exists(b)")
    with pytest.raises(ValueError, match=":v"):
        _all_placeholders_used(unused["Update"])
    with pytest.raises(ValueError, match="#s"):
        _all_placeholders_used(update("T#t#X", "S", "SET a = :n", {":n": 1}, names={"#s": "status"})["Update"])
