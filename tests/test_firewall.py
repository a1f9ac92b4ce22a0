"""The bootstrap's firewall part under Debian's real ufw and iptables, in a network and
mount namespace of its own (nothing reaches this machine's firewall): the rules file is
spelled as ufw lists its rules, so a second run changes nothing; a change is applied as
a diff (add first, then delete; never a reset); the DOCKER-USER block of after.rules is
loaded by ufw itself, once, and follows the mesh."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.vps import (
    DOCKER_USER_BEGIN,
    UFW_RULES,
    MeshSpec,
    docker_user_rules,
    render_firewall,
    ufw_rules,
)
from tests.test_vps import host, mesh

UFW = shutil.which("ufw") or "/usr/sbin/ufw"


class Namespace:
    """A process holding a private network and mount namespace, with ``/etc/ufw`` and
    ``/etc/default/ufw`` bound to copies under ``root``."""

    def __init__(self, root: Path) -> None:
        assert Path(UFW).exists(), "needs Debian's ufw (make system-deps)"
        self.root = root
        (root / "etc" / "default").mkdir(parents=True)
        shutil.copytree("/etc/ufw", root / "etc" / "ufw")
        shutil.copy("/etc/default/ufw", root / "etc" / "default" / "ufw")
        setup = (
            f"mount --bind {root}/etc/ufw /etc/ufw && "
            f"mount --bind {root}/etc/default/ufw /etc/default/ufw && "
            "touch /tmp/.ns-ready-$$ && exec sleep 300"
        )
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c", setup]
        )
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.ns-ready-{self.holder.pid}").exists():
            assert time.monotonic() < deadline, "the namespace did not start"
            time.sleep(0.02)
        Path(f"/tmp/.ns-ready-{self.holder.pid}").unlink()

    def run(self, command: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nsenter", "-t", str(self.holder.pid), "-n", "-m", "--", "env"]
            + [f"{k}={v}" for k, v in env.items()]
            + ["bash", "-c", command],
            capture_output=True,
            text=True,
            timeout=120,
        )

    def apply(self, fleet: MeshSpec, name: str = "cdmx") -> list[str]:
        spec = next(h for h in fleet.hosts if h.name == name)
        result = self.run(render_firewall(spec, fleet), ROOT=str(self.root))
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout.splitlines()

    def added(self) -> set[str]:
        listed = self.run(f"{UFW} show added").stdout.splitlines()
        return {line.removeprefix("ufw ") for line in listed if line.startswith("ufw ")}

    def docker_user(self) -> list[str]:
        return self.run("iptables -S DOCKER-USER").stdout.splitlines()

    def stop(self) -> None:
        self.holder.kill()
        self.holder.wait(timeout=10)


@pytest.fixture
def namespace(tmp_path: Path) -> Iterator[Namespace]:
    ns = Namespace(tmp_path / "root")
    yield ns
    ns.stop()


def rules_of(text: str) -> set[str]:
    return {line for line in text.splitlines() if line and not line.startswith("#")}


def test_first_run_enables_ufw_with_exactly_the_rendered_rules_and_docker_user(
    namespace: Namespace,
) -> None:
    output = namespace.apply(mesh())
    cdmx = host("cdmx")
    assert "changed: ufw enabled" in output
    assert namespace.run(f"{UFW} status").stdout.startswith("Status: active")
    # ufw's own listing equals the file: the spelling is ufw's, so diffs are exact.
    assert namespace.added() == rules_of(ufw_rules(cdmx, mesh()))
    assert (namespace.root / UFW_RULES.lstrip("/")).exists()
    # ufw loaded the DOCKER-USER block from after.rules into the kernel's tables.
    loaded = namespace.docker_user()
    appended = [line for line in docker_user_rules(cdmx, mesh()).splitlines() if "-A" in line]
    assert len([line for line in loaded if line.startswith("-A")]) == len(appended)
    for peer in ("10.99.0.2/32", "10.99.0.3/32"):
        assert any(
            f"-s {peer} -i wg0" in line and "--ctorigdstport 9009" in line for line in loaded
        )
    assert "-A DOCKER-USER -i wg0 -j DROP" in loaded
    assert "-A DOCKER-USER -m conntrack --ctstate DNAT -j DROP" in loaded
    # Default deny incoming, for real.
    assert "-P INPUT DROP" in namespace.run("iptables -S INPUT").stdout.splitlines()


def test_second_run_changes_nothing(namespace: Namespace) -> None:
    namespace.apply(mesh())
    rules, chain = namespace.added(), namespace.docker_user()
    after = (namespace.root / "etc/ufw/after.rules").read_text()
    output = namespace.apply(mesh())
    assert [line for line in output if line.split(":")[0] in ("added", "deleted", "changed")] == []
    assert "unchanged: ufw rules" in output
    assert namespace.added() == rules
    assert namespace.docker_user() == chain
    assert (namespace.root / "etc/ufw/after.rules").read_text() == after
    assert after.count(DOCKER_USER_BEGIN) == 1


def test_a_change_is_a_diff_added_before_deleted_and_stray_rules_go(
    namespace: Namespace,
) -> None:
    namespace.apply(mesh())
    namespace.run(f"{UFW} allow 8080/tcp")  # an operator's hand-made rule
    # New admin network, and nj leaves the fleet: its WireGuard and mesh rules go.
    changed = dataclasses.replace(
        mesh(),
        admin_cidrs=("192.0.2.0/24",),
        hosts=tuple(h for h in mesh().hosts if h.name != "nj"),
    )
    output = namespace.apply(changed)
    cdmx = next(h for h in changed.hosts if h.name == "cdmx")
    assert namespace.added() == rules_of(ufw_rules(cdmx, changed))
    assert not any("reset" in line for line in output)
    added = [i for i, line in enumerate(output) if line.startswith("added:")]
    deleted = [i for i, line in enumerate(output) if line.startswith("deleted:")]
    assert added and deleted and max(added) < min(deleted), output
    assert "deleted: ufw allow 8080/tcp" in output
    assert "added: ufw allow from 192.0.2.0/24 to any port 22 proto tcp comment 'ssh-admin'" in (
        output
    )
    # after.rules changed, so ufw reloaded it: nj's address is gone, nothing doubled.
    assert "changed: ufw reloaded" in output
    chain = namespace.docker_user()
    assert not any("10.99.0.3" in line for line in chain)
    assert len(chain) == len(set(chain))
    assert (namespace.root / "etc/ufw/after.rules").read_text().count(DOCKER_USER_BEGIN) == 1
