"""Webhooks cannot reach inside (issue 25, D-124): every form of URL the audit used to reach loopback, the
metadata service, private, CGNAT, ULA and IPv6 addresses, integer and hex IPs and user info is refused;
a public name is resolved and connected to at the address checked; no redirect is followed; the send record's
reason is coarse."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from loyalty.services.messages import senders
from loyalty.services.messages.senders import Outgoing, TryLater, Undeliverable, Webhook
from loyalty.services.messages.webhook_target import TargetRefused, address_for, checked_url, public

REFUSED_FORMS = [
    "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",  # Lambda's runtime API, without the local flag
    "http://localhost:9001/",
    "https://127.0.0.1/",
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.5/",
    "https://192.168.1.1/",
    "https://172.16.0.1/",
    "https://100.64.0.1/",  # CGNAT
    "https://[::1]/",
    "https://[fd00::1]/",  # ULA
    "https://[fe80::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://2130706433/",  # 127.0.0.1 as one integer
    "https://0x7f000001/",  # and in hex
    "https://0177.0.0.1/",  # and in octal
    "https://user:pass@hooks.example.com/",
    "https://hooks.example.com@169.254.169.254/",
    "https://localhost/",
    "https://metadata.google.internal/",
    "http://hooks.example.com/x",  # plain http to anyone
    "ftp://hooks.example.com/",
    "https://hooks.example.com:99999/",
]


@pytest.mark.parametrize("url", REFUSED_FORMS)
def test_a_url_that_could_reach_inside_is_refused_by_its_form(url):
    with pytest.raises(TargetRefused):
        checked_url(url, local=False)


def test_plain_http_to_this_machine_only_where_the_local_stack_allows_it():
    assert checked_url("http://127.0.0.1:8080/_local/webhook", local=True).port == 8080
    with pytest.raises(TargetRefused):
        checked_url("http://10.0.0.5:8080/", local=True)
    with pytest.raises(TargetRefused):
        checked_url("http://127.0.0.1:8080/", local=False)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "169.254.169.254",
        "10.1.2.3",
        "172.31.0.1",
        "192.168.0.1",
        "100.100.100.200",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fd00:ec2::254",
        "fc00::1",
        "fe80::1",
        "::ffff:10.0.0.1",
        "2002:a00:1::1",
        "::",
    ],
)
def test_an_address_that_is_not_on_the_public_internet_is_not_public(address):
    assert not public(address)


def test_public_addresses_are_public():
    assert public("93.184.215.14") and public("2606:2800:21f:cb07:6820:80da:af6b:8b2c")


def test_a_name_that_resolves_to_any_inside_address_is_refused_and_a_public_one_gives_its_address():
    target = checked_url("https://hooks.example.com/loyalty?x=1", local=False)
    assert (target.host, target.port, target.path) == ("hooks.example.com", 443, "/loyalty?x=1")
    assert address_for(target, lambda host, port: ["93.184.215.14"]) == "93.184.215.14"
    with pytest.raises(TargetRefused) as refused:
        address_for(target, lambda host, port: ["93.184.215.14", "169.254.169.254"])
    assert refused.value.reason == "webhookAddressRefused"


def test_the_sender_refuses_a_name_that_resolves_inside_before_connecting(monkeypatch):
    monkeypatch.setattr(socket, "create_connection", pytest.fail)
    hook = Outgoing("01JDQ5W8C4M7Q3V2X9Z6K1B0TA", "https://hooks.example.com/", "x", "business", secret="s" * 16)
    with pytest.raises(Undeliverable) as raised:
        Webhook(resolve=lambda host, port: ["127.0.0.1"]).send(hook)
    assert raised.value.reason == "webhookAddressRefused"


def test_the_sender_connects_to_the_address_it_checked_under_the_hosts_name(monkeypatch):
    dialled = []

    def connection(address, timeout):
        dialled.append(address)
        raise ConnectionRefusedError

    monkeypatch.setattr(senders.socket, "create_connection", connection)
    hook = Outgoing("01JDQ5W8C4M7Q3V2X9Z6K1B0TA", "https://hooks.example.com/", "x", "business", secret="s" * 16)
    with pytest.raises(TryLater) as raised:
        Webhook(attempts=1, resolve=lambda host, port: ["93.184.215.14"]).send(hook)
    assert dialled == [("93.184.215.14", 443)] and raised.value.reason == "webhookUnreachable"


class Receiver(BaseHTTPRequestHandler):
    answers: list[int] = []

    def do_POST(self) -> None:
        status = self.answers.pop(0)
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


@pytest.mark.parametrize(
    ("answers", "outcome"),
    [
        ([302], "webhookRefused"),  # not followed: the location is never asked
        ([404], "webhookRefused"),
        ([401], "webhookRefused"),  # the same reason: the record is no oracle of the receiver's status
        ([503, 500, 429], "webhookUnavailable"),
    ],
)
def test_redirects_are_not_followed_and_reasons_are_coarse(receiver, answers, outcome):
    Receiver.answers = list(answers)
    hook = Outgoing("01JDQ5W8C4M7Q3V2X9Z6K1B0TA", receiver, "x", "business", secret="s" * 16)
    with pytest.raises((Undeliverable, TryLater)) as raised:
        Webhook(attempts=3, backoff=0.01, local=True).send(hook)
    assert raised.value.reason == outcome and Receiver.answers == []


def test_a_receiver_that_answers_2xx_gets_the_message(receiver):
    Receiver.answers = [204]
    hook = Outgoing("01JDQ5W8C4M7Q3V2X9Z6K1B0TA", receiver, "x", "business", secret="s" * 16)
    assert Webhook(local=True).send(hook) == "01JDQ5W8C4M7Q3V2X9Z6K1B0TA"
