"""A moto server on 127.0.0.1 for the drift tests: real HTTP, real botocore."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import moto.settings
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer
from moto.wafv2.models import WAFV2Backend

from ops.drift.model import Report
from ops.drift.scan import scan
from tests.drift.moto_deploy import deploy
from tests.support import committed_plan

Clients = Callable[[str, str], Any]


def _cloudfront_logging_configurations(
    backend: Any, scope: str, **_: Any
) -> tuple[list[Any], None]:
    """moto 5.2's ListLoggingConfigurations looks for ``:global:`` in the ARN, but a
    CloudFront web ACL's ARN is ``arn:aws:wafv2:us-east-1:<account>:global/webacl/...``
    (https://docs.aws.amazon.com/waf/latest/APIReference/API_WebACL.html), so it
    never lists one: match the ARN as AWS writes it."""
    marker = ":global/" if scope == "CLOUDFRONT" else f":{backend.region_name}:"
    return [c for arn, c in backend.logging_configurations.items() if marker in arn], None


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # ACM issues a DNS-validated certificate at once (moto waits 60 s by default), as
    # a deployed stack's validated certificates are issued.
    moto.settings.ACM_VALIDATION_WAIT = 0
    WAFV2Backend.list_logging_configurations = _cloudfront_logging_configurations  # type: ignore[method-assign]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def reset(url: str) -> None:
    # The local moto server's own reset endpoint (http://127.0.0.1).
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


def client_factory(url: str, max_attempts: int = 2) -> Clients:
    config = Config(retries={"mode": "standard", "max_attempts": max_attempts}, connect_timeout=5)
    cache: dict[tuple[str, str], Any] = {}

    def clients(service: str, region: str) -> Any:
        if (service, region) not in cache:
            cache[(service, region)] = boto3.client(
                service,
                region_name=region,
                endpoint_url=url,
                config=config,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return cache[(service, region)]

    return clients


@dataclass
class World:
    """A stack's plan built in moto, its checkpoint, and the clients to both."""

    stack: str
    clients: Clients
    checkpoint: dict[str, Any]

    @property
    def state(self) -> str:
        return json.dumps(self.checkpoint)

    def resource(self, name: str) -> dict[str, Any]:
        return next(
            r for r in self.checkpoint["deployment"]["resources"] if r["urn"].endswith(f"::{name}")
        )

    def scan(self, **kwargs: Any) -> Report:
        kwargs.setdefault("clients", self.clients)
        report, _ = scan(self.stack, self.state, **kwargs)
        return report


def build_world(url: str, stack: str) -> World:
    reset(url)
    clients = client_factory(url)
    return World(stack, clients, deploy(committed_plan(stack), clients))


def drifted(report: Report) -> list[tuple[str, str, str]]:
    """(status, type, urn name or id) of every finding that is not ok."""
    return sorted(
        (f.status, f.type, f.urn.rsplit("::", 1)[1] if f.urn else "unmanaged")
        for f in report.findings
        if f.status != "ok"
    )
