"""VPS drift against a real sshd on 127.0.0.1 (Debian's openssh-server), a throwaway host
key pinned in the state, and fake docker/ufw/wg/sshd -T on the session's PATH that print
recorded outputs. Clean, a changed compose file, a missing container, an unexpected ufw
rule, and a host key mismatch (refused, not trusted)."""

from __future__ import annotations

import getpass
import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from components.compose import ilp_auth_file, render_compose
from ops.drift.scan import scan
from ops.drift.state import parse_state
from ops.drift.vps import Connector, HostExpectation, SshRemote, expectations, scan_vps
from ops.runtime import Plan
from stacks.config import FleetStackConfig, parse_stack_config
from stacks.fleet import mesh_of, services_of
from tests.sshd import Server, keygen, running_sshd
from tests.support import committed_config, committed_plan

SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}
ASSET_SIG = {"4dabf18193072939515e22adb298388d": "c44067f5952c0a294b673a41bacd8c17"}


def compose_text(name: str, plan: Plan) -> str:
    """The compose file the vps stack renders for a host, as the program renders it (the
    orchestrator's with the ILP keys the plan's execution hosts printed)."""
    values = {
        **committed_config("vps"),
        "trading-infra:sshPrivateKey": "k",
        "trading-infra:grafanaAdminPassword": "p",
        "trading-infra:questdbPassword": "q",
        "trading-infra:backupPassword": "b",
    }
    config = parse_stack_config(
        values,
        "vps",
        [
            "trading-infra:sshPrivateKey",
            "trading-infra:grafanaAdminPassword",
            "trading-infra:questdbPassword",
            "trading-infra:backupPassword",
        ],
    )
    assert isinstance(config, FleetStackConfig)
    spec = next(h for h in mesh_of(config).hosts if h.name == name)
    lines = [r.outputs["stdout"] for r in plan.resources if r.name.endswith("-ilp-key")]
    return render_compose(
        spec.role, spec.wireguard_address, services_of(config), ilp_auth_file(lines)
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as started:
        yield started


def as_test_user(server: Server) -> Connector:
    """This test's sshd admits the user running the tests, not a drift user."""
    return lambda host: SshRemote(replace(host, user=getpass.getuser()), str(server.client_key))


@pytest.fixture(scope="module")
def vps_plan() -> Plan:
    return committed_plan("vps")


def checkpoint(plan: Plan, server: Server, host_key: str | None = None) -> str:
    """The vps stack's export, its cdmx host pointed at the test sshd."""
    hosts = plan.outputs["fleetHosts"]
    cdmx = {
        **hosts["cdmx"],
        "address": "127.0.0.1",
        "sshPort": server.port,
        "sshUser": getpass.getuser(),
        "hostKey": host_key or server.host_key,
    }
    resources: list[dict[str, Any]] = [
        {
            "urn": "urn:pulumi:vps::trading-infra::pulumi:pulumi:Stack::trading-infra-vps",
            "type": "pulumi:pulumi:Stack",
            "custom": False,
            # Directly: the rehearsal covers the jump host and the real drift user.
            "outputs": {**plan.outputs, "fleetHosts": {"cdmx": cdmx}, "fleetJumpHost": None},
        }
    ]
    for resource in plan.resources:
        if resource.type.startswith(("aws:", "pulumi:providers:aws", "trading-infra:backup:")):
            continue  # the backup bucket: the AWS scan's, tested against moto there
        inputs = dict(resource.revealed)
        if resource.name == "cdmx-compose-file":
            inputs["remotePath"] = str(server.app / "docker-compose.yml")
            # Pulumi's checkpoint keeps a string asset's text (the plan keeps its hash).
            text = compose_text("cdmx", plan)
            assert inputs["source"] == {"stringAsset": hashlib.sha256(text.encode()).hexdigest()}
            inputs["source"] = {**ASSET_SIG, "hash": inputs["source"]["stringAsset"], "text": text}
        if resource.name == "cdmx-compose-up":
            # A `--show-secrets` export: the secret carries its plaintext.
            inputs["stdin"] = {**SECRET_SIG, "plaintext": json.dumps(inputs["stdin"])}
        resources.append(
            {
                "urn": resource.urn,
                "type": resource.type,
                "custom": resource.custom,
                "id": resource.id or "",
                "inputs": inputs,
                "outputs": {**resource.outputs, **inputs},
                "parent": resource.parent,
            }
        )
    return json.dumps({"version": 3, "deployment": {"resources": resources}})


def record_a_healthy_host(server: Server, host: HostExpectation, env: str) -> None:
    """What a correctly deployed cdmx host would print."""
    (server.app / "docker-compose.yml").write_text(host.compose_text)
    (server.app / ".env").write_text(env)
    ps = [
        {"Service": s, "Image": i, "State": "running", "Health": "healthy"}
        for s, i in host.services.items()
    ]
    (server.fake / "docker-ps.json").write_text("\n".join(json.dumps(c) for c in ps) + "\n")
    rules = "\n".join(f"ufw {rule}" for rule in sorted(host.ufw_rules))
    (server.fake / "ufw.txt").write_text(
        f"Added user rules (see 'ufw status' for running firewall):\n{rules}\n"
    )
    peers = "".join(
        f"{key}\t(none)\t203.0.113.{20 + n}:51820\t{ips}\t0\t0\t0\t25\n"
        for n, (key, ips) in enumerate(sorted(host.wireguard_peers.items()))
    )
    (server.fake / "wg.txt").write_text(f"private\tpublic\t51820\toff\n{peers}")
    settings = "".join(f"{k} {v}\n" for k, v in sorted(host.sshd.items()))
    (server.fake / "sshd-T.txt").write_text(f"ciphers chacha20-poly1305@openssh.com\n{settings}")


@pytest.fixture
def healthy(server: Server, vps_plan: Plan) -> tuple[str, HostExpectation]:
    state = checkpoint(vps_plan, server)
    (host,) = expectations(parse_state(state))
    env = vps_plan.named("cdmx-env-file").revealed["stdin"]
    assert hashlib.sha256(env.encode()).hexdigest() == host.env_sha256
    record_a_healthy_host(server, host, env)
    return state, host


def vps_report(state: str, server: Server):
    report, _ = scan("vps", state, vps=lambda s: scan_vps(s, as_test_user(server)))
    return report


def test_a_clean_host_is_ok(server: Server, healthy: tuple[str, HostExpectation]) -> None:
    state, _ = healthy
    report = vps_report(state, server)
    (finding,) = report.findings
    assert (finding.type, finding.id, finding.status, finding.diffs) == (
        "trading-infra:vps:VpsHost",
        "cdmx",
        "ok",
        [],
    )
    assert report.exit_code() == 0


def diffs(state: str, server: Server) -> list[tuple[str, Any, Any]]:
    (finding,) = vps_report(state, server).findings
    return [(d.attribute, d.expected, d.actual) for d in finding.diffs]


def test_a_changed_compose_file_is_found(
    server: Server, healthy: tuple[str, HostExpectation]
) -> None:
    state, host = healthy
    with (server.app / "docker-compose.yml").open("a") as compose:
        compose.write("# edited on the host\n")
    (found,) = diffs(state, server)
    assert found[0] == "compose file sha256"
    assert found[1] == hashlib.sha256(host.compose_text.encode()).hexdigest() != found[2]


def test_a_missing_container_is_found(server: Server, healthy: tuple[str, HostExpectation]) -> None:
    state, host = healthy
    lines = (server.fake / "docker-ps.json").read_text().splitlines()
    (server.fake / "docker-ps.json").write_text(
        "\n".join(line for line in lines if '"redis"' not in line) + "\n"
    )
    assert diffs(state, server) == [
        ("container redis", f"running {host.services['redis']}", "absent")
    ]


def test_an_unhealthy_container_and_a_changed_image_are_found(
    server: Server, healthy: tuple[str, HostExpectation]
) -> None:
    state, host = healthy
    ps = [json.loads(line) for line in (server.fake / "docker-ps.json").read_text().splitlines()]
    for container in ps:
        if container["Service"] == "grafana":
            container["Health"] = "unhealthy"
        if container["Service"] == "questdb":
            container["Image"] = "questdb/questdb:7.0.0"
    (server.fake / "docker-ps.json").write_text("\n".join(json.dumps(c) for c in ps) + "\n")
    assert sorted(diffs(state, server)) == [
        ("container grafana state", "running healthy", "running unhealthy"),
        ("container questdb image", host.services["questdb"], "questdb/questdb:7.0.0"),
    ]


def test_an_unexpected_ufw_rule_is_found(
    server: Server, healthy: tuple[str, HostExpectation]
) -> None:
    state, _ = healthy
    with (server.fake / "ufw.txt").open("a") as ufw:
        ufw.write("ufw allow 8080/tcp\n")
    assert diffs(state, server) == [("ufw rule", "absent", "allow 8080/tcp")]


def test_weakened_sshd_and_a_foreign_wireguard_peer_are_found(
    server: Server, healthy: tuple[str, HostExpectation]
) -> None:
    state, _ = healthy
    settings = (
        (server.fake / "sshd-T.txt")
        .read_text()
        .replace("passwordauthentication no", "passwordauthentication yes")
    )
    (server.fake / "sshd-T.txt").write_text(settings)
    with (server.fake / "wg.txt").open("a") as wg:
        wg.write("c3RyYW5nZXI=\t(none)\t198.51.100.9:51820\t10.99.0.9/32\t0\t0\t0\t25\n")
    found = dict((a, (e, v)) for a, e, v in diffs(state, server))
    assert found["sshd passwordauthentication"] == ("no", "yes")
    assert "c3RyYW5nZXI=" in found["wireguard peers"][1]


def test_a_host_key_mismatch_is_refused_not_trusted(
    server: Server, vps_plan: Plan, healthy: tuple[str, HostExpectation], tmp_path: Path
) -> None:
    impostor = keygen(tmp_path / "other")
    state = checkpoint(vps_plan, server, host_key=impostor)
    report = vps_report(state, server)
    (finding,) = report.findings
    assert finding.status == "unknown"
    assert "host key mismatch, refused" in (finding.error or "")
    assert report.exit_code() == 1


def test_without_a_key_the_hosts_are_unknown(
    server: Server, healthy: tuple[str, HostExpectation]
) -> None:
    state, _ = healthy
    report, _ = scan("vps", state, vps=lambda s: scan_vps(s, None))
    assert [(f.status, f.error) for f in report.findings] == [
        ("unknown", "no SSH key: pass --ssh-key to read the VPS hosts")
    ]
