"""The bootstrap's hardening, rehearsed: the firewall changes as a diff and never resets;
an SSH port moves in two deploys without a moment in which the next deploy's port is
closed (socket-activated sshd included); an old Docker engine is replaced or the step
fails; the host's own hardened sshd admits the fleet's clients and refuses weak ones."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator

import paramiko
import pytest

from components.vps import (
    DOCKER_USER_BEGIN,
    MIN_DOCKER_VERSION,
    SSH_SOCKET_DROP_IN,
    SSHD_DROP_IN,
    UFW_RULES,
)
from ops.drift.vps import HostExpectation, SshRemote, read_command
from stacks.config import PROJECT
from tests.rehearsal.conftest import Fleet
from tests.rehearsal.engine import StepFailedError
from tests.rehearsal.sandbox import Sandbox, free_port, sshd_binary


@pytest.fixture(scope="module")
def deployed(fleet: Fleet) -> Fleet:
    fleet.reset()
    fleet.deploy(fleet.config())
    return fleet


def hosts_with(fleet: Fleet, name: str, **changes: object) -> list[dict[str, object]]:
    """The fleet's hosts as config, with ``changes`` on host ``name``."""
    hosts = json.loads(fleet.config()[f"{PROJECT}:fleet"])["hosts"]
    for host in hosts:
        if host["name"] == name:
            host.update(changes)
    return hosts


def ufw_state(box: Sandbox) -> set[str]:
    return set(box.state("ufw-rules").read_text().splitlines())


def rendered_rules(box: Sandbox) -> set[str]:
    return {line for line in box.read(UFW_RULES).splitlines() if line and not line.startswith("#")}


def test_ufw_holds_exactly_the_rendered_rules_and_after_rules_the_docker_user_block(
    deployed: Fleet,
) -> None:
    for box in deployed.hosts.values():
        assert ufw_state(box) == rendered_rules(box)
        after = box.inside("cat /etc/ufw/after.rules").stdout
        assert after.count(DOCKER_USER_BEGIN) == 1
        assert not any("reset" in call for call in box.calls() if call.startswith("ufw"))


def test_a_new_admin_network_is_added_before_the_old_one_is_deleted(deployed: Fleet) -> None:
    box = deployed.hosts["chicago"]
    before = len(box.calls())
    deployed.deploy(deployed.config(adminCidrs=["192.0.2.0/24"]))
    calls = [c for c in box.calls()[before:] if c.startswith("ufw ")]
    added = [i for i, c in enumerate(calls) if c.startswith("ufw allow from 192.0.2.0/24")]
    deleted = [i for i, c in enumerate(calls) if c.startswith("ufw delete")]
    assert added and deleted and max(added) < min(deleted), calls
    assert not any("reset" in c for c in calls)
    assert ufw_state(box) == rendered_rules(box)
    deployed.deploy(deployed.config())


def listens_and_admits(box: Sandbox, port: int) -> bool:
    """Would a deploy on ``port`` get in: sshd's drop-in and the socket list it, and ufw
    admits it."""
    ports = {
        line.split()[1] for line in box.read(SSHD_DROP_IN).splitlines() if line.startswith("Port ")
    }
    socket = box.read(SSH_SOCKET_DROP_IN).splitlines()
    return (
        str(port) in ports
        and f"ListenStream={port}" in socket
        and any(f"to any port {port} proto tcp comment 'ssh-admin'" in r for r in ufw_state(box))
    )


@pytest.fixture
def socket_activated(deployed: Fleet) -> Iterator[Sandbox]:
    box = deployed.hosts["nj"]
    box.state("ssh-socket").touch()
    yield box
    box.state("ssh-socket").unlink()
    deployed.reset()
    deployed.deploy(deployed.config())


def test_moving_the_ssh_port_in_two_deploys_never_closes_the_next_deploys_port(
    deployed: Fleet, socket_activated: Sandbox
) -> None:
    box = socket_activated
    address = deployed.addresses["nj"]
    # The network: the host answers on 2222 once it listens there.
    deployed.mocks.routes = {**deployed.mocks.routes, (address, 2222): ("127.0.0.1", box.port)}
    before = len(box.calls())
    deployed.deploy(deployed.config(hosts=hosts_with(deployed, "nj", additionalSshPorts=[2222])))
    assert listens_and_admits(box, 22) and listens_and_admits(box, 2222)
    systemd = [c for c in box.calls()[before:] if c.startswith("systemctl")]
    # Socket-activated: the unit files are reloaded and the socket restarted, after ufw.
    assert systemd.index("systemctl daemon-reload") < systemd.index("systemctl restart ssh.socket")
    assert "systemctl reload ssh" not in systemd
    calls = box.calls()[before:]
    last_ufw = max(i for i, c in enumerate(calls) if c.startswith("ufw allow"))
    assert last_ufw < calls.index("systemctl restart ssh.socket")

    deployed.deploy(deployed.config(hosts=hosts_with(deployed, "nj", sshPort=2222)))
    assert listens_and_admits(box, 2222)
    assert not listens_and_admits(box, 22)


def test_sshd_without_socket_activation_is_reloaded(deployed: Fleet) -> None:
    box = deployed.hosts["cdmx"]
    before = len(box.calls())
    deployed.deploy(deployed.config(hosts=hosts_with(deployed, "cdmx", additionalSshPorts=[2200])))
    systemd = [c for c in box.calls()[before:] if c.startswith("systemctl")]
    assert "systemctl reload ssh" in systemd
    assert "systemctl restart ssh.socket" not in systemd
    deployed.deploy(deployed.config())


@pytest.fixture
def old_engine(deployed: Fleet) -> Iterator[Sandbox]:
    box = deployed.hosts["chicago"]
    box.state("docker-version").write_text("27.5.1\n")
    yield box
    box.state("docker-version").unlink()


def test_an_engine_older_than_the_minimum_is_replaced_or_the_bootstrap_fails(
    deployed: Fleet, old_engine: Sandbox
) -> None:
    box = old_engine
    deployed.reset()  # a new stack on the same hosts: the bootstrap runs again
    with pytest.raises(StepFailedError, match=re.escape(f"older than {MIN_DOCKER_VERSION}")):
        deployed.deploy(deployed.config())
    assert any(c.startswith("apt-get install") and "docker-ce" in c for c in box.calls())
    # The stand-in apt "installs" nothing; once the engine is recent, the step passes.
    box.state("docker-version").write_text("28.5.1\n")
    deployed.reset()
    deployed.deploy(deployed.config())


def hardened_sshd(box: Sandbox) -> tuple[subprocess.Popen[bytes], int]:
    """The host's own sshd configuration (Debian's main file and the bootstrap's drop-in),
    started inside the sandbox on a free port with the sandbox's host key."""
    port = free_port()
    keys = box.root / "keys"
    process = subprocess.Popen(
        [
            "nsenter",
            "-t",
            str(box.process.pid),
            "-m",
            "--",
            sshd_binary(),
            "-D",
            "-e",
            "-f",
            "/etc/ssh/sshd_config",
            "-p",
            str(port),
            "-h",
            str(keys / "host_key"),
            "-o",
            "ListenAddress=127.0.0.1",
            "-o",
            f"PidFile={box.root / 'hardened.pid'}",
            "-o",
            "UsePAM=no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(box.root / "hardened.log").open("wb"),
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        assert process.poll() is None, (box.root / "hardened.log").read_text()
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the hardened sshd did not listen")


def test_the_hosts_hardened_sshd_admits_ops_drift_and_refuses_weak_algorithms(
    deployed: Fleet,
) -> None:
    box = deployed.hosts["cdmx"]
    process, port = hardened_sshd(box)
    try:
        expectation = HostExpectation(
            name="cdmx",
            urn=None,
            address="127.0.0.1",
            port=port,
            user="drift",
            host_key=box.host_key,
        )
        remote = SshRemote(expectation, str(deployed.drift_key))
        try:
            status, effective = remote.run(read_command("sshd", "/opt/trading-infra"))
        finally:
            remote.close()
        assert status == 0, effective
        assert "disableforwarding yes" in effective.splitlines()
        assert "maxstartups 10:30:60" in effective.splitlines()
        # A client offering only non-ETM MACs (or only SHA-1 key exchange) is refused.
        for disabled in (
            {"macs": ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"]},
            {
                "kex": [
                    "mlkem768x25519-sha256",
                    "curve25519-sha256@libssh.org",
                    "diffie-hellman-group-exchange-sha256",
                ]
            },
        ):
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507
            with pytest.raises(paramiko.SSHException):
                client.connect(
                    "127.0.0.1",
                    port=port,
                    username="drift",
                    key_filename=str(deployed.drift_key),
                    look_for_keys=False,
                    allow_agent=False,
                    disabled_algorithms=disabled,
                    timeout=10,
                )
            client.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
