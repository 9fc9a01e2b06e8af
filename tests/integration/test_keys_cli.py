"""The key-issuing command for deployed stacks: the printed key works, and only its digest is stored."""

import pytest

from infra.keys import main
from tests.support import load_event


def test_an_issued_operator_key_resolves_to_its_tenant(aws, api, capsys):
    key = main(["--tenant", "acme", "--role", "operator", "--name", "acme admin"])
    assert key in capsys.readouterr().out
    event = load_event("authorizer.json")
    event["headers"] = {"authorization": f"Bearer {key}"}
    context = api.functions["AuthorizerFunction"].invoke(event)["context"]
    assert (context["tenant"], context["role"]) == ("acme", "operator")


def test_a_channel_key_needs_its_channel(aws):
    with pytest.raises(SystemExit):
        main(["--tenant", "acme", "--role", "channel", "--name", "tills"])
    with pytest.raises(SystemExit):
        main(["--tenant", "bad tenant", "--role", "operator", "--name", "x"])
