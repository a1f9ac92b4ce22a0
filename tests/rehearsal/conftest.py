"""The rehearsal fleet: one sandboxed sshd per host of the committed vps stack, and a
jump host, all on 127.0.0.1; the stack's config pointed at them (their host keys pinned,
the jump host set) and the program run with every remote command carried out."""

from __future__ import annotations

import gc
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ops.plan import plan_config
from ops.runtime import Plan
from stacks.config import PROJECT
from tests.rehearsal.engine import Operation, RehearsalMocks
from tests.rehearsal.sandbox import Sandbox, keygen, start
from tests.support import ROOT, committed_config

HOSTS = ("cdmx", "chicago", "nj")
CREDENTIALS = {
    broker: {"apiKey": f"{broker}-key", "apiSecret": f"{broker}-secret"}
    for broker in ("tradestation", "interactive-brokers", "bybit-futures", "alpaca", "binance")
} | {"coinbase": {"apiKey": "cb-key"}, "bybit-spot": {"apiKey": "bs-key"}}
SECRETS = {
    f"{PROJECT}:grafanaAdminPassword": "grafana-rehearsal-pass",
    f"{PROJECT}:questdbPassword": "questdb-rehearsal-pass",
    f"{PROJECT}:backupPassword": "restic-rehearsal-pass",
    f"{PROJECT}:brokerCredentials": json.dumps(CREDENTIALS),
    f"{PROJECT}:registryPullToken": "ghp_rehearsal-pull-token",
    f"{PROJECT}:driftDigestKey": "rehearsal-digest-key",
}


@dataclass
class Fleet:
    hosts: dict[str, Sandbox]
    jump: Sandbox
    deploy_key: str
    drift_key: Path
    drift_public: str
    addresses: dict[str, str]
    mocks: RehearsalMocks = field(init=False)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the previous deployments (the hosts keep what they hold)."""
        routes = {(self.addresses[n], 22): ("127.0.0.1", s.port) for n, s in self.hosts.items()}
        routes[("127.0.0.1", self.jump.port)] = ("127.0.0.1", self.jump.port)
        self.mocks = RehearsalMocks(routes=routes)

    def config(self, **fleet_changes: Any) -> dict[str, str]:
        """The committed vps config on this fleet, with ``fleet_changes`` merged in."""
        raw = committed_config("vps")
        fleet = json.loads(raw[f"{PROJECT}:fleet"])
        for host in fleet["hosts"]:
            host["hostKey"] = self.hosts[host["name"]].host_key
        fleet["jumpHost"] = {
            "address": "127.0.0.1",
            "port": self.jump.port,
            "user": "jump",
            "hostKey": self.jump.host_key,
        }
        fleet["driftPublicKey"] = self.drift_public
        fleet.update(fleet_changes)
        return {
            **raw,
            f"{PROJECT}:fleet": json.dumps(fleet),
            f"{PROJECT}:sshPrivateKey": self.deploy_key,
            **SECRETS,
        }

    def deploy(self, raw: dict[str, str]) -> tuple[Plan, list[Operation]]:
        """``pulumi up`` of ``raw`` on the fleet: returns the plan and what ran."""
        secret_keys = [f"{PROJECT}:sshPrivateKey", *SECRETS]
        offline = plan_config("vps", raw, secret_keys, ROOT)
        self.mocks.protected = {r.name for r in offline.resources if r.protect}
        start_at = len(self.mocks.operations)
        plan = plan_config("vps", raw, secret_keys, ROOT, mocks_for=lambda *_: self.mocks)
        self.mocks.finish()
        return plan, self.mocks.operations[start_at:]


@pytest.fixture(autouse=True)
def _collect_failed_runs() -> Iterator[None]:
    """A deploy that fails on purpose leaves Pulumi futures holding the step's error;
    asyncio logs each as "Future exception was never retrieved" when it is collected.
    Collected here, that lands in the test's own captured output rather than in the
    run's log (258 tracebacks under pytest-xdist)."""
    yield
    gc.collect()


@pytest.fixture(scope="session")
def fleet() -> Iterator[Fleet]:
    scratch = Path(tempfile.mkdtemp(prefix="rehearsal-"))
    scratch.chmod(0o755)
    started: list[Sandbox] = []
    try:
        keys = scratch / "client"
        keys.mkdir()
        deploy_public = keygen(keys / "deploy", "deploy")
        drift_public = keygen(keys / "drift", "drift")
        # The jump host admits the deploy key and the drift key, for forwarding.
        jump = start(
            "jump", scratch, users={"jump": f"{deploy_public}\n{drift_public}"}, forwarding=True
        )
        started.append(jump)
        hosts = {}
        for name in HOSTS:
            hosts[name] = start(
                name, scratch, users={"deploy": deploy_public}, also_allow=("drift",)
            )
            started.append(hosts[name])
        committed = json.loads(committed_config("vps")[f"{PROJECT}:fleet"])
        yield Fleet(
            hosts=hosts,
            jump=jump,
            deploy_key=(keys / "deploy").read_text(),
            drift_key=keys / "drift",
            drift_public=drift_public,
            addresses={h["name"]: h["address"] for h in committed["hosts"]},
        )
    finally:
        for sandbox in started:
            sandbox.stop()
        shutil.rmtree(scratch, ignore_errors=True)
