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
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachable

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
    """SES SendEmail from the program's verified address, as plain UTF-8 text."""

    def __init__(self, client: Any = None) -> None:
        self.client = client or boto3.client("ses")

    def send(self, message: Outgoing) -> str:
        try:
            response = self.client.send_email(
                Source=message.sender,
                Destination={"ToAddresses": [message.recipient]},
                Message={
                    "Subject": {"Data": message.subject or "", "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": message.body, "Charset": "UTF-8"}},
                },
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            raise _classified(error, "unverifiedSender" if code == "MessageRejected" else "invalidAddress") from None
        except (EndpointUnreachable, HTTPClientError):
            raise TryLater("providerUnreachable") from None
        return str(response["MessageId"])


class Webhook:
    """POST JSON with `X-Loyalty-Signature: sha256=<hex>` over `<timestamp>.<body>` and the message id as
    Idempotency-Key, so a receiver can check who sent it, refuse a replay, and drop a duplicate. Up to
    `attempts` tries of `timeout` seconds each while the receiver times out or answers 5xx."""

    def __init__(self, timeout: float = 3.0, attempts: int = 3, backoff: float = 0.5) -> None:
        self.timeout, self.attempts, self.backoff = timeout, attempts, backoff

    def send(self, message: Outgoing) -> str:
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
        if not message.recipient.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise Undeliverable("webhookNotHttps")  # the settings' pattern says so too
        reason = "webhookUnreachable"
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            # https, or http to this machine only (checked above and by the settings).
            request = urllib.request.Request(message.recipient, data=body, headers=headers, method="POST")  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # nosec B310  # noqa: S310
                    return str(response.headers.get("X-Message-Id") or message.message_id)
            except urllib.error.HTTPError as error:
                if error.code < 500 and error.code != 429:
                    raise Undeliverable(f"webhookRefused{error.code}") from None
                reason = f"webhookStatus{error.code}"
            except (urllib.error.URLError, TimeoutError, OSError):
                reason = "webhookUnreachable"
        raise TryLater(reason)


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
    return {"sms": SnsSms(), "email": SesEmail(), "webhook": Webhook()}
