"""VpsHost: an existing Linux VPS made a hardened docker host over SSH (pulumi-command).

Per host, in order: bootstrap (packages, ufw, SSH hardening checked by ``sshd -t``,
unattended-upgrades, fail2ban, docker daemon settings) -> WireGuard key generated on the
host -> the mesh config with every peer -> the role's compose file and .env -> ``docker
compose up`` -> a bounded health check. Every command's inputs are rendered by the pure
functions below, so a re-run with nothing changed changes no input and runs nothing.

Two phases, because a host's mesh config needs every other host's public key:
``VpsHost(...)`` bootstraps and generates the key; ``host.deploy(peers)`` does the rest
once every host of the fleet exists.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Required, TypedDict

import pulumi
from pulumi_command import remote

from components.compose import MESH_PORTS

FILES = Path(__file__).with_name("vps_files")
SSHD_DROP_IN = "/etc/ssh/sshd_config.d/10-trading-infra.conf"
UFW_RULES = "/etc/trading-infra/ufw.rules"
APP_DIR = "/opt/trading-infra"
WIREGUARD_INTERFACE = "wg0"


@dataclass(frozen=True)
class HostSpec:
    """One host of the fleet."""

    name: str
    role: str
    address: str
    ssh_port: int
    ssh_user: str
    host_key: str
    wireguard_address: str


@dataclass(frozen=True)
class JumpSpec:
    """The SSH bastion every connection goes through (pulumi-command's ``proxy``)."""

    address: str
    port: int
    user: str
    host_key: str


@dataclass(frozen=True)
class MeshSpec:
    """The fleet as every host needs to know it."""

    cidr: str
    port: int
    admin_cidrs: tuple[str, ...]
    hosts: tuple[HostSpec, ...]
    jump_host: JumpSpec | None = None
    drift_public_key: str = ""
    """The read-only drift user's public key; no drift user when empty."""

    def peers_of(self, host: HostSpec) -> list[HostSpec]:
        return [other for other in self.hosts if other.name != host.name]

    @property
    def ssh_sources(self) -> tuple[str, ...]:
        """Who may open SSH to a host: the admin networks and the jump host."""
        jump = (f"{self.jump_host.address}/32",) if self.jump_host else ()
        return (*self.admin_cidrs, *jump)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


DRIFT_USER = "drift"
DRIFT_SUDOERS = "/etc/sudoers.d/trading-infra-drift"


def drift_reads(app_dir: str = APP_DIR) -> dict[str, list[str]]:
    """The read-only commands ``ops drift`` runs with sudo, program -> arguments: the
    drift user's sudoers allows exactly these (the program resolved on the host)."""
    compose = f"{app_dir}/docker-compose.yml"
    return {
        "sha256sum": [compose, f"{app_dir}/.env"],
        "docker": ["compose", "-f", compose, "ps", "--all", "--format", "json"],
        "ufw": ["show", "added"],
        "wg": ["show", WIREGUARD_INTERFACE, "dump"],
        "sshd": ["-T"],
    }


def sshd_hardening(ssh_user: str, ssh_port: int) -> str:
    """The sshd drop-in: keys only, no root, few tries, no forwarding of any kind."""
    settings = [
        ("Port", str(ssh_port)),
        ("PermitRootLogin", "no"),
        ("PasswordAuthentication", "no"),
        ("KbdInteractiveAuthentication", "no"),
        ("PermitEmptyPasswords", "no"),
        ("PubkeyAuthentication", "yes"),
        ("AuthenticationMethods", "publickey"),
        ("MaxAuthTries", "3"),
        ("LoginGraceTime", "30"),
        ("AllowUsers", f"{ssh_user} {DRIFT_USER}"),
        ("AllowTcpForwarding", "no"),
        ("AllowStreamLocalForwarding", "no"),
        ("AllowAgentForwarding", "no"),
        ("X11Forwarding", "no"),
        ("PermitTunnel", "no"),
        ("GatewayPorts", "no"),
        ("ClientAliveInterval", "300"),
        ("ClientAliveCountMax", "2"),
    ]
    lines = ["# Managed by trading-infra (components/vps.py); edits are overwritten."]
    lines += [f"{key} {value}" for key, value in settings]
    return "\n".join(lines) + "\n"


def docker_daemon_json() -> str:
    """Containers keep running across daemon restarts, cannot gain privileges, rotate
    their logs; the daemon listens on its Unix socket only (no ``hosts`` entry)."""
    return (
        json.dumps(
            {
                "live-restore": True,
                "no-new-privileges": True,
                "log-driver": "json-file",
                "log-opts": {"max-size": "10m", "max-file": "3"},
                "userland-proxy": False,
            },
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )


def fail2ban_jail(ssh_port: int) -> str:
    return (
        "[sshd]\n"
        "enabled = true\n"
        f"port = {ssh_port}\n"
        "backend = systemd\n"
        "maxretry = 5\n"
        "findtime = 10m\n"
        "bantime = 1h\n"
    )


def auto_upgrades() -> str:
    return (
        'APT::Periodic::Update-Package-Lists "1";\n'
        'APT::Periodic::Unattended-Upgrade "1";\n'
        'APT::Periodic::AutocleanInterval "7";\n'
    )


def ufw_rules(host: HostSpec, mesh: MeshSpec) -> str:
    """One ufw argument list per line. Default deny incoming (set by the script); SSH
    from the admin networks; WireGuard from the peers only; the role's service ports
    from the mesh, on the WireGuard interface."""
    lines = ["# Managed by trading-infra: ufw arguments, one rule per line."]
    for cidr in mesh.ssh_sources:
        lines.append(f"allow proto tcp from {cidr} to any port {host.ssh_port} comment ssh-admin")
    for peer in mesh.peers_of(host):
        lines.append(
            f"allow proto udp from {peer.address} to any port {mesh.port} "
            f"comment wireguard-{peer.name}"
        )
    for port in MESH_PORTS[host.role]:
        lines.append(
            f"allow in on {WIREGUARD_INTERFACE} proto tcp from {mesh.cidr} to any port {port} "
            "comment mesh"
        )
    return "\n".join(lines) + "\n"


def render_bootstrap(host: HostSpec, mesh: MeshSpec) -> str:
    """The bootstrap script: settings, the files it installs, then the static body."""
    files = [
        (SSHD_DROP_IN, "644", sshd_hardening(host.ssh_user, host.ssh_port)),
        ("/etc/docker/daemon.json", "644", docker_daemon_json()),
        ("/etc/fail2ban/jail.d/sshd.local", "644", fail2ban_jail(host.ssh_port)),
        ("/etc/apt/apt.conf.d/20auto-upgrades", "644", auto_upgrades()),
        (UFW_RULES, "644", ufw_rules(host, mesh)),
    ]
    reads = drift_reads()
    header = [
        "#!/usr/bin/env bash",
        f"# Bootstrap of {host.name} ({host.role}). Rendered by components/vps.py.",
        f"readonly SSHD_DROP_IN={shlex.quote(SSHD_DROP_IN)}",
        f"readonly UFW_RULES={shlex.quote(UFW_RULES)}",
        f"readonly APP_DIR={shlex.quote(APP_DIR)}",
        f"readonly SSH_USER={shlex.quote(host.ssh_user)}",
        f"readonly DRIFT_USER={shlex.quote(DRIFT_USER)}",
        f"readonly DRIFT_KEY={shlex.quote(mesh.drift_public_key)}",
        f"readonly DRIFT_SUDOERS={shlex.quote(DRIFT_SUDOERS)}",
        "# The drift user's sudo: exactly these reads (program, then its arguments).",
        "readonly -a DRIFT_READS=(",
        *(f"  {shlex.quote(program + ' ' + shlex.join(args))}" for program, args in reads.items()),
        ")",
        "",
        "install_files() {",
    ]
    for index, (path, mode, content) in enumerate(files):
        delimiter = f"TRADING_INFRA_FILE_{index}"
        if delimiter in content:
            raise ValueError(f"{path}: content contains its heredoc delimiter")
        header += [
            f"  write_file {shlex.quote(path)} {mode} <<'{delimiter}'",
            content.rstrip("\n"),
            delimiter,
        ]
    header += ["}", ""]
    return "\n".join(header) + (FILES / "bootstrap.sh").read_text()


def wireguard_config(host: HostSpec, mesh: MeshSpec, public_keys: Mapping[str, str]) -> str:
    """wg0.conf without the private key (the host splices in its own): every peer once,
    each allowed only its own mesh address."""
    prefix = ipaddress.IPv4Network(mesh.cidr).prefixlen
    lines = [
        "[Interface]",
        f"Address = {host.wireguard_address}/{prefix}",
        f"ListenPort = {mesh.port}",
    ]
    for peer in sorted(mesh.peers_of(host), key=lambda p: p.name):
        lines += [
            "",
            f"# {peer.name} ({peer.role})",
            "[Peer]",
            f"PublicKey = {public_keys[peer.name]}",
            f"AllowedIPs = {peer.wireguard_address}/32",
            f"Endpoint = {peer.address}:{mesh.port}",
            "PersistentKeepalive = 25",
        ]
    return "\n".join(lines) + "\n"


def with_settings(script: str, **settings: str | int) -> str:
    """A script file prefixed with ``readonly`` settings, for a remote command."""
    header = [
        f"readonly {key}={shlex.quote(str(value))}" for key, value in sorted(settings.items())
    ]
    return "\n".join(["#!/usr/bin/env bash", *header, (FILES / script).read_text()])


def step_scripts(health_timeout_seconds: int) -> dict[str, str]:
    """The script of each step after the bootstrap, by step name, as the host runs it."""
    return {
        "wireguard-key": with_settings("wireguard_key.sh"),
        "wireguard": with_settings("wireguard_apply.sh"),
        "env-file": with_settings("env_install.sh", APP_DIR=APP_DIR),
        "compose-up": with_settings("compose_up.sh", APP_DIR=APP_DIR),
        "health": with_settings(
            "health.sh", APP_DIR=APP_DIR, HEALTH_TIMEOUT=health_timeout_seconds
        ),
    }


MAX_COMMAND_BYTES = 131072
"""Linux's MAX_ARG_STRLEN: the longest single argument execve(2) accepts (see
execve(2), "Limits on size of arguments and environment"). The login shell receives the
whole command as one ``-c`` argument, and bash the script as another."""


def remote_bash(script: str, step: str, sudo: bool = False) -> str:
    """The command that runs ``script`` with bash on the host (as root with ``sudo``),
    whatever the login shell: the script is an argument (``bash -c``), so the session's
    stdin stays free for the step's payload (pulumi-command writes ``stdin`` to it). A
    heredoc would make bash read its script from that same stdin."""
    runner = ["sudo", "bash"] if sudo else ["bash"]
    command = shlex.join([*runner, "-c", script, f"trading-infra-{step}"])
    if len(command.encode()) >= MAX_COMMAND_BYTES:
        raise ValueError(
            f"{step}: the command is {len(command.encode())} bytes; Linux refuses a single "
            f"argument of {MAX_COMMAND_BYTES} or more (MAX_ARG_STRLEN)"
        )
    return command


def script_of(command: str) -> str:
    """The script inside a command ``remote_bash`` rendered (for ``ops drift``)."""
    words = shlex.split(command)
    return words[words.index("-c") + 1] if "-c" in words else command


def deploy_manifest(compose_sha256: str, env_sha256: str) -> str:
    """What a deploy must find on the host, in ``sha256sum --check`` form: the compose
    file and .env by content. The services' steps take it on stdin, so a change to
    either is an update of those steps (never a replacement, which would run the old
    step's ``delete``: ``docker compose down``)."""
    return f"{compose_sha256}  docker-compose.yml\n{env_sha256}  .env\n"


class VpsHostArgs(TypedDict, total=False):
    """Arguments of ``VpsHost``."""

    host: Required[HostSpec]
    """The host."""
    mesh: Required[MeshSpec]
    """The fleet."""
    private_key: Required[pulumi.Input[str]]
    """The deploy user's SSH private key (a secret)."""
    compose_file: Required[str]
    """The role's docker-compose.yml."""
    env_file: Required[pulumi.Input[str]]
    """The role's .env (secret values)."""
    health_timeout_seconds: int
    """How long the health check waits. Default 180."""
    protect: bool
    """Protect the deployment (its delete takes the services down). Default False."""


class VpsHost(pulumi.ComponentResource):
    """One VPS: bootstrap and key generation at construction, mesh and services in
    ``deploy``."""

    connection: remote.ConnectionArgs
    """SSH to the host, its host key pinned."""
    bootstrap: remote.Command
    """Packages and hardening."""
    wireguard_key: remote.Command
    """Generates the key pair on the host; its stdout is the public key."""
    wireguard_public_key: pulumi.Output[str]
    """The host's WireGuard public key."""
    health: remote.Command | None
    """The last step: every service healthy."""

    def __init__(
        self, name: str, args: VpsHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("trading-infra:vps:VpsHost", name, {}, opts)
        self._resource_name = name
        self._args = args
        host = args["host"]
        self.health = None
        # The host key is pinned: a host presenting any other key is refused, never
        # trusted on first use; so is the jump host's.
        private_key = pulumi.Output.secret(args["private_key"])
        jump = args["mesh"].jump_host
        self.connection = remote.ConnectionArgs(
            host=host.address,
            port=host.ssh_port,
            user=host.ssh_user,
            private_key=private_key,
            host_key=host.host_key,
            dial_error_limit=5,
            proxy=remote.ProxyConnectionArgs(
                host=jump.address,
                port=jump.port,
                user=jump.user,
                private_key=private_key,
                host_key=jump.host_key,
                dial_error_limit=5,
            )
            if jump
            else None,
        )
        # No triggers anywhere: pulumi-command replaces a command whose triggers change
        # (create, then the old delete). A changed script, stdin or copied file is an
        # update, which runs the step again.
        self.bootstrap = remote.Command(
            f"{name}-bootstrap",
            connection=self.connection,
            create=remote_bash(render_bootstrap(host, args["mesh"]), "bootstrap", sudo=True),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._scripts = step_scripts(args.get("health_timeout_seconds", 180))
        self.wireguard_key = remote.Command(
            f"{name}-wireguard-key",
            connection=self.connection,
            create=remote_bash(self._scripts["wireguard-key"], "wireguard-key", sudo=True),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bootstrap]),
        )
        self.wireguard_public_key = self.wireguard_key.stdout.apply(lambda out: out.strip())

    def deploy(self, public_keys: Mapping[str, pulumi.Input[str]]) -> None:
        """Join the mesh with every peer's public key, then deploy the role's services."""
        name = self._resource_name
        args = self._args
        host, mesh = args["host"], args["mesh"]
        peers = {peer.name: public_keys[peer.name] for peer in mesh.peers_of(host)}
        config = pulumi.Output.all(**peers).apply(lambda keys: wireguard_config(host, mesh, keys))
        scripts = self._scripts
        wireguard = remote.Command(
            f"{name}-wireguard",
            connection=self.connection,
            create=remote_bash(scripts["wireguard"], "wireguard", sudo=True),
            stdin=config,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.wireguard_key]),
        )
        compose = remote.CopyToRemote(
            f"{name}-compose-file",
            connection=self.connection,
            source=pulumi.StringAsset(args["compose_file"]),
            remote_path=f"{APP_DIR}/docker-compose.yml",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[wireguard]),
        )
        env_file = pulumi.Output.secret(args["env_file"])
        env = remote.Command(
            f"{name}-env-file",
            connection=self.connection,
            create=remote_bash(scripts["env-file"], "env-file"),
            stdin=env_file,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bootstrap]),
        )
        manifest = pulumi.Output.secret(
            env_file.apply(lambda text: deploy_manifest(sha256(args["compose_file"]), sha256(text)))
        )
        up_script = remote_bash(scripts["compose-up"], "compose-up")
        up = remote.Command(
            f"{name}-compose-up",
            connection=self.connection,
            create=up_script,
            update=up_script,
            delete=remote_bash(
                f"cd {APP_DIR} && sudo docker compose -f docker-compose.yml down --remove-orphans",
                "compose-down",
            ),
            stdin=manifest,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[compose, env], protect=args.get("protect", False)
            ),
        )
        self.health = remote.Command(
            f"{name}-health",
            connection=self.connection,
            create=remote_bash(scripts["health"], "health"),
            stdin=manifest,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[up]),
        )
        self.register_outputs(
            {
                "wireguard_public_key": self.wireguard_public_key,
                "address": host.address,
                "wireguard_address": host.wireguard_address,
            }
        )
