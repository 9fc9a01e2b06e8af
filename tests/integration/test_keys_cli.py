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


def test_the_platform_lists_rotates_and_revokes_a_tenants_keys(aws, api, capsys):
    key = main(["--tenant", "acme", "--role", "channel", "--channel", "POS", "--name", "tills"])
    event = load_event("authorizer.json")
    event["headers"] = {"authorization": f"Bearer {key}"}
    key_id = api.functions["AuthorizerFunction"].invoke(event)["context"]["keyId"]
    listed = main(["--tenant", "acme", "--list"])
    assert key_id in listed and "active" in listed and key not in capsys.readouterr().out.replace(key, "", 1)
    new = main(["--tenant", "acme", "--rotate", key_id, "--grace-hours", "0"])
    assert api.functions["AuthorizerFunction"].invoke(event)["isAuthorized"] is False  # no grace
    event["headers"] = {"authorization": f"Bearer {new}"}
    assert api.functions["AuthorizerFunction"].invoke(event)["isAuthorized"] is True
    main(["--tenant", "acme", "--revoke", key_id])
    assert api.functions["AuthorizerFunction"].invoke(event)["isAuthorized"] is False
    assert "revoked" in main(["--tenant", "acme", "--list"])
    with pytest.raises(SystemExit):
        main(["--tenant", "acme", "--rotate", key_id, "--grace-hours", "721"])
