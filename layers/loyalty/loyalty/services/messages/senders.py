"""The three ways a message leaves (D-103), each a small adapter behind one interface: SMS through Amazon SNS,
email through Amazon SES, a webhook by HTTPS POST signed with HMAC-SHA256 (app push, WeChat template messages:
the receiver knows how to reach the member). An adapter answers the provider's message id, or raises:

- `Undeliverable(reason)`: the provider said no for good (an invalid number, an unverified sender, a 4xx);
  the send record says why and nothing is retried;
- `TryLater(reason)`: throttled, timed out, a 5xx; the request goes back to the queue with a backoff, and to
  the DLQ after the queue's receive count.

No adapter logs a recipient or a body.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachable

from loyalty.services.messages.mail_identities import TenantMail
from loyalty.services.messages.webhook_target import (
    Resolver,
    Target,
    TargetRefused,
    address_for,
    checked_url,
    system_resolver,
)
from loyalty.settings import get_settings

SMS_TYPES = {"business": "Transactional", "marketing": "Promotional"}
THROTTLED = {"Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException", "InternalError"}
SIGNATURE_HEADER = "X-Loyalty-Signature"
TIMESTAMP_HEADER = "X-Loyalty-Timestamp"


class Undeliverable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TryLater(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Outgoing:
    """What a sender needs: who, what, and why (the purpose picks the SMS type)."""

    message_id: str
    recipient: str  # E.164 phone, an email address, or a webhook URL
    body: str
    purpose: str
    subject: str | None = None
    sender: str | None = None  # the email's from-address
    tenant: str = ""  # whose identity an email goes out under (D-125)
    secret: str | None = None  # the webhook's signing key
    payload: dict[str, Any] | None = None  # what a webhook carries beside the body


class Sender(Protocol):
    def send(self, message: Outgoing) -> str: ...


class SnsSms:
    """SNS Publish to a phone number; Transactional for business messages, Promotional for marketing."""

    def __init__(self, client: Any = None) -> None:
        self.client = client or boto3.client("sns")

    def send(self, message: Outgoing) -> str:
        attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": SMS_TYPES[message.purpose]}}
        try:
            response = self.client.publish(
                PhoneNumber=message.recipient, Message=message.body, MessageAttributes=attributes
            )
        except ClientError as error:
            raise _classified(error, "invalidNumber") from None
        except (EndpointUnreachable, HTTPClientError):
            raise TryLater("providerUnreachable") from None
        return str(response["MessageId"])


class SesEmail:
    """SES v2 SendEmail from the program's address, as plain UTF-8 text, with the client of the message's
    tenant: a MailSenderRole session tagged with it, so SES sends only from that tenant's identities (D-125)."""

    def __init__(self, clients: Callable[[str], Any]) -> None:
        self.clients = clients

    def send(self, message: Outgoing) -> str:
        try:
            response = self.clients(message.tenant).send_email(
                FromEmailAddress=message.sender,
                Destination={"ToAddresses": [message.recipient]},
                Content={
                    "Simple": {
                        "Subject": {"Data": message.subject or "", "Charset": "UTF-8"},
                        "Body": {"Text": {"Data": message.body, "Charset": "UTF-8"}},
                    }
                },
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("AccessDenied", "AccessDeniedException"):
                raise Undeliverable("senderNotAllowed") from None
            raise _classified(error, "unverifiedSender" if code == "MessageRejected" else "invalidAddress") from None
        except (EndpointUnreachable, HTTPClientError):
            raise TryLater("providerUnreachable") from None
        return str(response["MessageId"])


class Webhook:
    """POST JSON with `X-Loyalty-Signature: sha256=<hex>` over `<timestamp>.<body>` and the message id as
    Idempotency-Key, so a receiver can check who sent it, refuse a replay, and drop a duplicate. Up to
    `attempts` tries of `timeout` seconds each while the receiver times out or answers 429 or 5xx.

    The target is checked first (webhook_target, D-124): https to a name that resolves to public addresses
    only, then the connection goes to the address checked, and no redirect is followed. What the send record
    says is coarse (refused, unavailable, unreachable), never the receiver's exact status."""

    def __init__(
        self,
        timeout: float = 3.0,
        attempts: int = 3,
        backoff: float = 0.5,
        local: bool = False,
        resolve: Resolver = system_resolver,
    ) -> None:
        self.timeout, self.attempts, self.backoff = timeout, attempts, backoff
        self.local, self.resolve = local, resolve

    def send(self, message: Outgoing) -> str:
        try:
            target = checked_url(message.recipient, local=self.local)
            address = address_for(target, self.resolve)
        except TargetRefused as refused:
            raise Undeliverable(refused.reason) from None
        except OSError:
            raise TryLater("webhookUnreachable") from None
        body = json.dumps(
            {"messageId": message.message_id, "body": message.body, **(message.payload or {})}, ensure_ascii=False
        ).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: "sha256=" + signature(message.secret or "", stamp, body),
            "Idempotency-Key": message.message_id,
        }
        reason = "webhookUnreachable"
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                status, provider_id = self._post(target, address, body, headers)
            except (OSError, http.client.HTTPException):
                reason = "webhookUnreachable"
                continue
            if 200 <= status < 300:
                return provider_id or message.message_id
            if status != 429 and status < 500:
                raise Undeliverable("webhookRefused")  # a 3xx too: no redirect is followed
            reason = "webhookUnavailable"
        raise TryLater(reason)

    def _post(self, target: Target, address: str, body: bytes, headers: dict[str, str]) -> tuple[int, str | None]:
        connection: http.client.HTTPConnection
        if target.scheme == "https":
            connection = _PinnedHttps(target.host, target.port, address, self.timeout)
        else:  # the local stack's receiver (checked_url allows it only there)
            connection = http.client.HTTPConnection(address, target.port, timeout=self.timeout)
        try:
            connection.request("POST", target.path, body=body, headers=headers)
            response = connection.getresponse()
            response.read(65536)
            return response.status, response.getheader("X-Message-Id")
        finally:
            connection.close()


class _PinnedHttps(http.client.HTTPSConnection):
    """HTTPS to the address checked, with the certificate verified for the host's name (SNI and Host too)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.address = address

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


def retry_delay(receives: int) -> int:
    """Seconds before a request a provider asked to try later is tried again: 30 after its first receive,
    doubling, at most 15 minutes; with the queue's 6 receives a request waits about 16 minutes in all before the DLQ."""
    return int(min(30 * 2 ** (receives - 1), 900))


def signature(secret: str, stamp: str, body: bytes) -> str:
    """HMAC-SHA256 of `<timestamp>.<body>` with the program's secret, in hex (what a receiver recomputes)."""
    return hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _classified(error: ClientError, permanent: str) -> Exception:
    code = error.response.get("Error", {}).get("Code", "")
    if code in THROTTLED or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
        return TryLater(code or "providerError")
    return Undeliverable(permanent)


@lru_cache(maxsize=1)
def senders() -> dict[str, Sender]:
    """One adapter per channel, made once per container."""
    settings = get_settings()
    return {
        "sms": SnsSms(),
        "email": SesEmail(TenantMail(settings.mail_sender_role_arn)),
        "webhook": Webhook(local=settings.local_webhooks),
    }
