"""A tenant's email senders are the platform's to register (issue 25, D-125): `infra.mail_senders` registers and
lists them, refuses another tenant's, and email goes out under a MailSenderRole session tagged with its tenant."""

from __future__ import annotations

import pytest

from infra import mail_senders
from loyalty.services.messages.mail_identities import MailIdentities, TenantMail


def test_the_platform_registers_and_lists_a_tenants_senders_and_refuses_another_tenants(aws, capsys):
    mail_senders.main(["--tenant", "acme", "--register", "loyalty@acme.example.com"])
    mail_senders.main(["--tenant", "acme", "--register", "acme.example.com"])
    mail_senders.main(["--tenant", "globex", "--register", "news@globex.example.com"])
    assert mail_senders.main(["--tenant", "acme", "--register", "loyalty@acme.example.com"])  # a repeat
    assert sorted(mail_senders.main(["--tenant", "acme", "--list"]).splitlines()) == [
        "acme.example.com  SUCCESS",
        "loyalty@acme.example.com  SUCCESS",
    ]
    with pytest.raises(SystemExit):
        mail_senders.main(["--tenant", "globex", "--register", "loyalty@acme.example.com"])
    identities = MailIdentities()
    assert identities.owner("loyalty@acme.example.com") == "acme"
    assert identities.owner("anyone@acme.example.com") == "acme"  # through the domain's identity
    assert identities.owner("someone@elsewhere.example.com") is None


def test_an_email_client_is_a_session_tagged_with_its_tenant_renewed_before_it_ends(aws):
    calls, now = [], [1000.0]

    class Sts:
        def assume_role(self, **request):
            calls.append(request)
            return {"Credentials": {"AccessKeyId": "a", "SecretAccessKey": "b", "SessionToken": "c"}}

    clients = TenantMail("arn:aws:iam::123456789012:role/mail-sender", Sts(), clock=lambda: now[0])
    first = clients("acme")
    assert clients("acme") is first and len(calls) == 1
    assert calls[0]["Tags"] == [{"Key": "tenant", "Value": "acme"}] and calls[0]["RoleSessionName"] == "mail-acme"
    clients("globex")
    now[0] += 800  # within 2 minutes of the session's 15
    assert clients("acme") is not first and [c["Tags"][0]["Value"] for c in calls] == ["acme", "globex", "acme"]
