"""The sender adapters' answers to what providers say (issue 15): "try later" for throttling and outages, a
reason for good otherwise; the webhook's signature; phone numbers as SNS wants them; quiet hours without an
offset."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from loyalty.domain.messages import QuietHours, e164
from loyalty.services.messages.senders import (
    Outgoing,
    SesEmail,
    SnsSms,
    TryLater,
    Undeliverable,
    Webhook,
    retry_delay,
    signature,
)


class Failing:
    """A boto3 client whose every call raises `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def publish(self, **_: object) -> dict:
        raise self.error

    def send_email(self, **_: object) -> dict:
        raise self.error


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


SMS = Outgoing("01JDQ5W8C4M7Q3V2X9Z6K1B0TA", "+8613800138000", "您获得120积分", "business")
MAIL = Outgoing("01JDQ5W8C4M7Q3V2X9Z6K1B0TA", "z@example.com", "正文", "business", "主题", "loyalty@example.com")


@pytest.mark.parametrize(
    ("error", "outcome", "reason"),
    [
        (client_error("Throttling"), TryLater, "Throttling"),
        (client_error("InternalError", 500), TryLater, "InternalError"),
        (client_error("ServiceUnavailable", 503), TryLater, "ServiceUnavailable"),
        (client_error("InvalidParameter"), Undeliverable, "invalidNumber"),
        (EndpointConnectionError(endpoint_url="https://sns.example"), TryLater, "providerUnreachable"),
    ],
)
def test_sms_says_try_later_for_throttling_and_outages_and_why_not_otherwise(error, outcome, reason):
    with pytest.raises(outcome) as raised:
        SnsSms(Failing(error)).send(SMS)
    assert raised.value.reason == reason


def test_email_from_an_unverified_sender_is_refused_for_good_and_throttling_is_tried_later():
    with pytest.raises(Undeliverable) as raised:
        SesEmail(lambda tenant: Failing(client_error("MessageRejected"))).send(MAIL)
    assert raised.value.reason == "unverifiedSender"
    with pytest.raises(Undeliverable) as raised:
        SesEmail(lambda tenant: Failing(client_error("InvalidParameterValue"))).send(MAIL)
    assert raised.value.reason == "invalidAddress"
    with pytest.raises(TryLater):
        SesEmail(lambda tenant: Failing(client_error("Throttling"))).send(MAIL)
    # IAM refuses an identity of another tenant's (D-125): for good, and said so
    with pytest.raises(Undeliverable) as raised:
        SesEmail(lambda tenant: Failing(client_error("AccessDeniedException"))).send(MAIL)
    assert raised.value.reason == "senderNotAllowed"


def test_a_webhook_signs_timestamp_dot_body_with_hmac_sha256_and_goes_only_to_https_or_this_machine():
    expected = hmac.new(b"a-long-shared-secret", b"1765000000." + b'{"body":"x"}', hashlib.sha256).hexdigest()
    assert signature("a-long-shared-secret", "1765000000", b'{"body":"x"}') == expected
    assert len(expected) == 64
    hook = Outgoing("01JDQ5W8C4M7Q3V2X9Z6K1B0TA", "http://hooks.example.com/x", "x", "business", secret="s" * 16)
    with pytest.raises(Undeliverable) as raised:
        Webhook().send(hook)
    assert raised.value.reason == "webhookUrlRefused"


def test_a_webhook_nobody_answers_is_tried_later_after_its_attempts():
    hook = Outgoing("01JDQ5W8C4M7Q3V2X9Z6K1B0TA", "http://127.0.0.1:9/", "x", "business", secret="s" * 16)
    with pytest.raises(TryLater) as raised:
        Webhook(timeout=0.5, attempts=2, backoff=0.01, local=True).send(hook)
    assert raised.value.reason == "webhookUnreachable"


def test_a_request_to_try_later_waits_30_s_then_doubling_up_to_15_minutes():
    assert [retry_delay(n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]


def test_phones_go_to_sns_in_e164_and_quiet_hours_are_times_of_the_program_zone():
    assert e164("13800138000", "+86") == "+8613800138000"
    assert e164("+14155550100", "+86") == "+14155550100"
    with pytest.raises(ValueError, match="without an offset"):
        QuietHours.model_validate({"start": "21:00:00+08:00", "end": "09:00:00"})
