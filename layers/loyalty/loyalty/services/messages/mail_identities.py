"""Whose email addresses a tenant may send from (D-125): the SES identities the platform registered for it,
each tagged `tenant=<id>` (`python -m infra.mail_senders`; a tenant's operator cannot register one). A program's
`emailFrom` must be such an identity (the address, or its domain) when the settings are written; and every
email goes out under a session of MailSenderRole tagged with the message's tenant, whose policy lets SES send
only from identities carrying that same tag. A bug that picked another tenant's address is refused by IAM."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError

TENANT_TAG = "tenant"
_SESSION_SECONDS = 900
_RENEW_BEFORE = 120  # a session this close to its end is renewed before a send


class SenderTaken(Exception):
    """The address is registered to another tenant."""


class MailIdentities:
    """The platform's register of tenants' sender identities, kept in SES itself (the identity's tags)."""

    def __init__(self, client: Any = None) -> None:
        self.client = client or boto3.client("sesv2")

    def owner(self, address: str) -> str | None:
        """The tenant an address may be sent from by: its own identity's tag, else its domain's; None when
        neither is registered to a tenant."""
        for identity in (address, address.rpartition("@")[2]):
            try:
                found = self.client.get_email_identity(EmailIdentity=identity)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "NotFoundException":
                    continue
                raise
            tags = {tag["Key"]: tag["Value"] for tag in found.get("Tags") or []}
            if TENANT_TAG in tags:
                return tags[TENANT_TAG]
        return None

    def register(self, tenant: str, address: str) -> None:
        """Make an address (or a domain) one the tenant sends from: SES starts its verification. Refused if it
        is another tenant's; repeatable for the same tenant."""
        current = self.owner(address) if "@" in address else None
        if current not in (None, tenant):
            raise SenderTaken(f"{address} is registered to another tenant")
        tags = [{"Key": TENANT_TAG, "Value": tenant}]
        try:
            self.client.create_email_identity(EmailIdentity=address, Tags=tags)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "AlreadyExistsException":
                raise
            found = self.client.get_email_identity(EmailIdentity=address)
            owners = {tag["Value"] for tag in found.get("Tags") or [] if tag["Key"] == TENANT_TAG}
            if owners - {tenant}:
                raise SenderTaken(f"{address} is registered to another tenant") from None


class TenantMail:
    """An SES v2 client per tenant, under a MailSenderRole session tagged with the tenant, renewed before its
    credentials end (one AssumeRole per tenant per 13 minutes per container)."""

    def __init__(self, role_arn: str, sts: Any = None, clock: Callable[[], float] = time.time) -> None:
        self.role_arn, self.clock = role_arn, clock
        self.sts = sts or boto3.client("sts")
        self.sessions: dict[str, tuple[float, Any]] = {}

    def __call__(self, tenant: str) -> Any:
        ends, client = self.sessions.get(tenant, (0.0, None))
        if client is None or self.clock() > ends - _RENEW_BEFORE:
            granted = self.sts.assume_role(
                RoleArn=self.role_arn,
                RoleSessionName=f"mail-{tenant}"[:64],
                DurationSeconds=_SESSION_SECONDS,
                Tags=[{"Key": TENANT_TAG, "Value": tenant}],
            )["Credentials"]
            client = boto3.client(
                "sesv2",
                aws_access_key_id=granted["AccessKeyId"],
                aws_secret_access_key=granted["SecretAccessKey"],
                aws_session_token=granted["SessionToken"],
            )
            self.sessions[tenant] = (self.clock() + _SESSION_SECONDS, client)
        return client
