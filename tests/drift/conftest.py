"""The drift tests' world: a stack's plan built in moto's server (``moto_url``, from
tests/conftest.py) over real HTTP with real botocore."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from ops.drift.model import Report
from ops.drift.scan import scan
from tests.drift.moto_deploy import deploy
from tests.support import committed_plan

Clients = Callable[[str, str], Any]


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
