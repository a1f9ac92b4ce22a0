"""VpsHost: an existing Linux VPS made a hardened docker host over SSH (pulumi-command).

Per host, in order: bootstrap (packages, ufw, SSH hardening checked by ``sshd -t``,
unattended-upgrades, fail2ban, docker daemon settings) -> WireGuard key generated on the
host -> the mesh config with every peer -> the role's compose file and .env, and the
metrics timer the alerts read -> ``docker compose up`` -> a bounded health check -> the
backup timer. In a rollout, the services' steps wait for the previous host's health
check (``deploy(after=...)``). Every command's inputs are rendered by the pure
functions below, so a re-run with nothing changed changes no input and runs nothing.

Two phases, because a host's mesh config needs every other host's public key:
``VpsHost(...)`` bootstraps and generates the key; ``host.deploy(peers)`` does the rest
once every host of the fleet exists.

Longer than the ~500 lines aimed at: the pure renderers (bootstrap, sshd, ufw,
WireGuard, step scripts) are what the component sends, and ``ops drift`` reads them
back from here; splitting them from the steps would part each file from its reader.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
from pulumi_command import remote

from components.alerting import (
    FLEET_METRICS,
    METRICS_DIR,
    METRICS_SCRIPT,
    METRICS_UNIT,
    metrics_service,
    metrics_timer,
)
from components.backup import (
    BACKUP_ENV,
    BACKUP_METRICS,
    BACKUP_SCRIPT,
    BACKUP_UNIT,
    RESTORE_DRILL,
    RESTORE_DRILL_SUDOERS,
    BackupSettings,
    backup_script_settings,
    backup_service,
    backup_timer,
    restore_drill_settings,
    restore_drill_sudoers,
)
from components.compose import EXECUTION_ROLES, MESH_CLIENTS, QUESTDB_HTTP_PORT
from components.hosts import HostSettings, JumpHostSettings, PullRegistrySettings

FILES = Path(__file__).with_name("vps_files")
SSHD_DROP_IN = "/etc/ssh/sshd_config.d/10-trading-infra.conf"
SSH_SOCKET_DROP_IN = "/etc/systemd/system/ssh.socket.d/10-trading-infra.conf"
DOCKER_DROP_IN = "/etc/systemd/system/docker.service.d/10-trading-infra.conf"
DOCKER_ORIGINS = "/etc/apt/apt.conf.d/51trading-infra-docker"
UFW_RULES = "/etc/trading-infra/ufw.rules"
DOCKER_USER_RULES = "/etc/trading-infra/docker-user.rules"
DOCKER_USER_BEGIN = "# BEGIN trading-infra DOCKER-USER"
DOCKER_USER_END = "# END trading-infra DOCKER-USER"
MIN_DOCKER_VERSION = "28.3.3"
"""Docker Engine 28.0 drops traffic from other hosts to ports published on 127.0.0.1
(moby/moby#48721), and 28.3.3 keeps those rules across a firewall reload
(CVE-2025-54388, GHSA-x4rx-4gw3-53p4): https://docs.docker.com/engine/release-notes/28/"""
APP_DIR = "/opt/trading-infra"
WIREGUARD_INTERFACE = "wg0"

VPS_HOST_TYPE = "trading-infra:vps:VpsHost"
"""The component's type token: ``ops drift`` finds the hosts in a state by it."""

BOOTSTRAP = "bootstrap"
WIREGUARD_KEY = "wireguard-key"
ILP_KEY = "ilp-key"
WIREGUARD = "wireguard"
COMPOSE_FILE = "compose-file"
ENV_FILE = "env-file"
REGISTRY_LOGIN = "registry-login"
METRICS = "metrics"
COMPOSE_UP = "compose-up"
HEALTH = "health"
BACKUP = "backup"
"""A host's steps, in order. Each is a resource named ``<host>-<step>`` (``step_name``);
``ops drift``, the plan mocks and the rehearsal find the steps by these names."""

FILE_DELIMITER = "TRADING_INFRA_FILE_"
"""The prefix of the bootstrap's heredoc delimiters (``TRADING_INFRA_FILE_<n>``), by
which ``ops drift`` reads back the files a bootstrap installs."""


def step_name(host: str, step: str) -> str:
    """The resource name of ``host``'s ``step``."""
    return f"{host}-{step}"


@dataclass(frozen=True)
class MeshSpec:
    """The fleet as every host needs to know it."""

    cidr: str
    port: int
    admin_cidrs: tuple[str, ...]
    hosts: tuple[HostSettings, ...]
    jump_host: JumpHostSettings | None = None
    drift_public_key: str = ""
    """The read-only drift user's public key; no drift user when empty."""

    def peers_of(self, host: HostSettings) -> list[HostSettings]:
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


SSH_KEX = (
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group-exchange-sha256",
)
SSH_CIPHERS = (
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)
SSH_MACS = ("hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com")
"""dev-sec's ssh-baseline (sshd-14/15/16, OpenSSH >= 8.5) and CIS 5.1: no SHA-1, no
NIST curves, MACs encrypt-then-MAC only. OpenSSH 9.2 (Debian 12) and Go's x/crypto/ssh
(pulumi-command) and paramiko (``ops drift``) all negotiate within them; the rehearsal
logs in through a host's hardened sshd to prove it."""


def sshd_hardening(ssh_user: str, ssh_ports: tuple[int, ...]) -> str:
    """The sshd drop-in: keys only, no root, few tries, no forwarding of any kind, the
    baseline's algorithms, verbose logs (key fingerprints), bounded unauthenticated
    connections."""
    settings = [
        *(("Port", str(port)) for port in ssh_ports),
        ("PermitRootLogin", "no"),
        ("PasswordAuthentication", "no"),
        ("KbdInteractiveAuthentication", "no"),
        ("PermitEmptyPasswords", "no"),
        ("PubkeyAuthentication", "yes"),
        ("AuthenticationMethods", "publickey"),
        ("MaxAuthTries", "3"),
        ("MaxStartups", "10:30:60"),
        ("LoginGraceTime", "30"),
        ("LogLevel", "VERBOSE"),
        ("AllowUsers", f"{ssh_user} {DRIFT_USER}"),
        ("DisableForwarding", "yes"),
        ("AllowTcpForwarding", "no"),
        ("AllowStreamLocalForwarding", "no"),
        ("AllowAgentForwarding", "no"),
        ("X11Forwarding", "no"),
        ("PermitTunnel", "no"),
        ("GatewayPorts", "no"),
        ("KexAlgorithms", ",".join(SSH_KEX)),
        ("Ciphers", ",".join(SSH_CIPHERS)),
        ("MACs", ",".join(SSH_MACS)),
        ("ClientAliveInterval", "300"),
        ("ClientAliveCountMax", "2"),
    ]
    lines = ["# Managed by trading-infra (components/vps.py); edits are overwritten."]
    lines += [f"{key} {value}" for key, value in settings]
    return "\n".join(lines) + "\n"


def ssh_socket_drop_in(ssh_ports: tuple[int, ...]) -> str:
    """Socket-activated sshd (Ubuntu >= 22.10) listens where ``ssh.socket`` says and
    ignores ``Port``: the socket gets the same ports (the empty ``ListenStream=`` drops
    the packaged 22). Harmless where sshd is not socket-activated. See Ubuntu's
    "OpenSSH server" guide and systemd.socket(5)."""
    lines = [
        "# Managed by trading-infra: the ports of the sshd drop-in, for socket activation.",
        "[Socket]",
        "ListenStream=",
        *(f"ListenStream={port}" for port in ssh_ports),
    ]
    return "\n".join(lines) + "\n"


def docker_wireguard_drop_in() -> str:
    """Docker starts after ``wg0`` is up: containers publish ports on the WireGuard
    address, and a bind that fails at boot is not retried (moby/moby#39559)."""
    unit = f"wg-quick@{WIREGUARD_INTERFACE}.service"
    return (
        "# Managed by trading-infra: publish on the WireGuard address only once it exists.\n"
        "[Unit]\n"
        f"Wants={unit}\n"
        f"After={unit}\n"
    )


def docker_upgrade_origins() -> str:
    """unattended-upgrades also takes Docker's own repository (its Release file says
    ``Origin: Docker``, ``Label: Docker CE``); apt appends this list to the distribution's
    ``Unattended-Upgrade::Origins-Pattern``."""
    return (
        "// Managed by trading-infra: security fixes of the Docker engine arrive unattended.\n"
        "Unattended-Upgrade::Origins-Pattern {\n"
        '        "origin=Docker,label=Docker CE,codename=${distro_codename}";\n'
        "};\n"
    )


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


def fail2ban_jail(ssh_ports: tuple[int, ...]) -> str:
    return (
        "[sshd]\n"
        "enabled = true\n"
        f"port = {','.join(map(str, ssh_ports))}\n"
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


def mesh_clients(host: HostSettings, mesh: MeshSpec) -> list[tuple[int, HostSettings]]:
    """(port, peer): each port the host publishes on the mesh, with every peer whose role
    needs it (``MESH_CLIENTS``)."""
    return [
        (port, peer)
        for port, roles in MESH_CLIENTS[host.role].items()
        for peer in sorted(mesh.peers_of(host), key=lambda p: p.name)
        if peer.role in roles
    ]


def _ufw_source(cidr: str) -> str:
    # ufw lists a single-address network as the address (``show added``).
    network = ipaddress.ip_network(cidr)
    single = network.prefixlen == network.max_prefixlen
    return str(network.network_address) if single else str(network)


def ufw_rules(host: HostSettings, mesh: MeshSpec) -> str:
    """One rule per line, spelled as ``ufw show added`` lists it (so the firewall step
    applies a diff): SSH from the admin networks and the jump host; WireGuard from the
    peers; each mesh port from the peers that need it, on ``wg0``. Default deny incoming
    is set by the script."""
    lines = ["# Managed by trading-infra: ufw rules as `ufw show added` lists them."]
    for port in host.ssh_ports:
        for cidr in mesh.ssh_sources:
            lines.append(
                f"allow from {_ufw_source(cidr)} to any port {port} proto tcp comment 'ssh-admin'"
            )
    for peer in sorted(mesh.peers_of(host), key=lambda p: p.name):
        lines.append(
            f"allow from {peer.address} to any port {mesh.port} proto udp "
            f"comment 'wireguard-{peer.name}'"
        )
    for port, peer in mesh_clients(host, mesh):
        lines.append(
            f"allow in on {WIREGUARD_INTERFACE} from {peer.wireguard_address} to any port "
            f"{port} proto tcp comment 'mesh-{peer.name}'"
        )
    return "\n".join(lines) + "\n"


def docker_user_rules(host: HostSettings, mesh: MeshSpec) -> str:
    """The mesh policy for published ports, which never reach ufw's INPUT rules: an
    ``iptables-restore`` block for ``/etc/ufw/after.rules`` (so every ``ufw reload``
    restores it). Docker sends forwarded traffic through ``DOCKER-USER`` first
    (https://docs.docker.com/engine/network/packet-filtering-firewalls/): replies and the
    containers' own traffic pass; a new connection to a published port (DNAT) passes
    only from a peer that needs that port, arriving on ``wg0``; anything else arriving
    on ``wg0`` or to a published port is dropped, whatever address the port is bound to."""
    chain = "-A DOCKER-USER"
    lines = [
        DOCKER_USER_BEGIN,
        "*filter",
        ":DOCKER-USER - [0:0]",
        f"{chain} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        f"{chain} -i docker0 -j RETURN",
        f"{chain} -i br-+ -j RETURN",
        *(
            f"{chain} -i {WIREGUARD_INTERFACE} -s {peer.wireguard_address}/32 -p tcp "
            f"-m conntrack --ctstate DNAT --ctorigdstport {port} -j RETURN"
            for port, peer in mesh_clients(host, mesh)
        ),
        f"{chain} -i {WIREGUARD_INTERFACE} -j DROP",
        f"{chain} -m conntrack --ctstate DNAT -j DROP",
        f"{chain} -j RETURN",
        "COMMIT",
        DOCKER_USER_END,
    ]
    return "\n".join(lines) + "\n"


def _installer(function: str, files: list[tuple[str, str, str]]) -> list[str]:
    """A bash function writing ``files`` (path, mode, content) with ``write_file``."""
    lines = [f"{function}() {{"]
    for index, (path, mode, content) in enumerate(files):
        delimiter = f"{FILE_DELIMITER}{index}"
        if delimiter in content:
            raise ValueError(f"{path}: content contains its heredoc delimiter")
        lines += [
            f"  write_file {shlex.quote(path)} {mode} <<'{delimiter}'",
            content.rstrip("\n"),
            delimiter,
        ]
    return [*lines, "}", ""]


def _firewall_settings(
    host: HostSettings, mesh: MeshSpec
) -> tuple[list[str], list[tuple[str, str, str]]]:
    settings = [
        f"readonly UFW_RULES={shlex.quote(UFW_RULES)}",
        f"readonly DOCKER_USER_RULES={shlex.quote(DOCKER_USER_RULES)}",
        f"readonly DOCKER_USER_BEGIN={shlex.quote(DOCKER_USER_BEGIN)}",
        f"readonly DOCKER_USER_END={shlex.quote(DOCKER_USER_END)}",
    ]
    files = [
        (UFW_RULES, "644", ufw_rules(host, mesh)),
        (DOCKER_USER_RULES, "644", docker_user_rules(host, mesh)),
    ]
    return settings, files


def render_firewall(host: HostSettings, mesh: MeshSpec) -> str:
    """The bootstrap's firewall part alone (its files, then ``apply_firewall``): what the
    tests run against the real ufw and iptables in a network namespace of their own."""
    settings, files = _firewall_settings(host, mesh)
    return "\n".join(
        [
            "#!/usr/bin/env bash",
            f"# Firewall of {host.name} ({host.role}). Rendered by components/vps.py.",
            *settings,
            "",
            *_installer("install_firewall_files", files),
            (FILES / "lib.sh").read_text(),
            (FILES / "firewall.sh").read_text(),
            "install_firewall_files",
            "apply_firewall",
            "",
        ]
    )


def render_bootstrap(host: HostSettings, mesh: MeshSpec) -> str:
    """The bootstrap script: settings, the files it installs, then the static body."""
    firewall_settings, firewall_files = _firewall_settings(host, mesh)
    files = [
        (SSHD_DROP_IN, "600", sshd_hardening(host.ssh_user, host.ssh_ports)),
        (SSH_SOCKET_DROP_IN, "644", ssh_socket_drop_in(host.ssh_ports)),
        (DOCKER_DROP_IN, "644", docker_wireguard_drop_in()),
        ("/etc/docker/daemon.json", "644", docker_daemon_json()),
        ("/etc/fail2ban/jail.d/sshd.local", "644", fail2ban_jail(host.ssh_ports)),
        ("/etc/apt/apt.conf.d/20auto-upgrades", "644", auto_upgrades()),
        (DOCKER_ORIGINS, "644", docker_upgrade_origins()),
        *firewall_files,
    ]
    reads = drift_reads()
    header = [
        "#!/usr/bin/env bash",
        f"# Bootstrap of {host.name} ({host.role}). Rendered by components/vps.py.",
        f"readonly SSHD_DROP_IN={shlex.quote(SSHD_DROP_IN)}",
        f"readonly SSH_SOCKET_DROP_IN={shlex.quote(SSH_SOCKET_DROP_IN)}",
        f"readonly DOCKER_DROP_IN={shlex.quote(DOCKER_DROP_IN)}",
        f"readonly MIN_DOCKER_VERSION={shlex.quote(MIN_DOCKER_VERSION)}",
        *firewall_settings,
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
        *_installer("install_files", files),
    ]
    body = [(FILES / name).read_text() for name in ("lib.sh", "firewall.sh", "bootstrap.sh")]
    return "\n".join(header) + "\n".join(body)


def wireguard_config(host: HostSettings, mesh: MeshSpec, public_keys: Mapping[str, str]) -> str:
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
        WIREGUARD_KEY: with_settings("wireguard_key.sh"),
        WIREGUARD: with_settings("wireguard_apply.sh"),
        ENV_FILE: with_settings("env_install.sh", APP_DIR=APP_DIR),
        COMPOSE_UP: with_settings("compose_up.sh", APP_DIR=APP_DIR),
        HEALTH: with_settings("health.sh", APP_DIR=APP_DIR, HEALTH_TIMEOUT=health_timeout_seconds),
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


def env_digest(key: str, env_sha256: str) -> str:
    """A keyed digest of a host's .env, safe to keep in clear in the stack's outputs:
    HMAC-SHA256 under ``driftDigestKey`` of the file's SHA-256 (what ``sha256sum``
    prints on the host). Without the key it says nothing of the secrets."""
    return hmac.new(key.encode(), env_sha256.encode(), hashlib.sha256).hexdigest()


def deploy_manifest(compose_sha256: str, env_sha256: str) -> str:
    """What a deploy must find on the host, in ``sha256sum --check`` form: the compose
    file and .env by content. The services' steps take it on stdin, so a change to
    either is an update of those steps (never a replacement, which would run the old
    step's ``delete``: ``docker compose down``)."""
    return f"{compose_sha256}  docker-compose.yml\n{env_sha256}  .env\n"


def ilp_key_script(host: HostSettings) -> str:
    """The ``ilp-key`` step of an execution host: its QuestDB ILP key, named after it."""
    return with_settings("ilp_key.sh", APP_DIR=APP_DIR, KEY_ID=host.name)


def registry_login_script(registry: PullRegistrySettings) -> str:
    return with_settings(
        "registry_login.sh", REGISTRY=registry.server, REGISTRY_USER=registry.username
    )


@dataclass(frozen=True)
class HostBackup:
    """Wiring of a host's backups: its ``backup.env`` (a secret) and the settings."""

    env: pulumi.Output[str]
    settings: BackupSettings


def backup_install_script(host: HostSettings, settings: BackupSettings) -> str:
    """The ``backup`` step: installs the backup script, its service and timer, the
    restore drill and the drift user's sudo for it (checked by visudo first), and
    ``backup.env`` from stdin (root-only), then starts the timer. Each file is carried
    base64-encoded inside the script (a here-string: the session's stdin stays the
    env's)."""
    script = with_settings(
        "backup.sh",
        **backup_script_settings(host.name, host.role, settings, APP_DIR, QUESTDB_HTTP_PORT),
    )
    files = [
        (BACKUP_SCRIPT, "755", script),
        (
            RESTORE_DRILL,
            "755",
            with_settings("restore_drill.sh", **restore_drill_settings(host.name)),
        ),
        (f"/etc/systemd/system/{BACKUP_UNIT}.service", "644", backup_service()),
        (
            f"/etc/systemd/system/{BACKUP_UNIT}.timer",
            "644",
            backup_timer(settings.interval_minutes),
        ),
        (RESTORE_DRILL_SUDOERS, "440", restore_drill_sudoers(DRIFT_USER)),
    ]
    lines = [
        "set -euo pipefail",
        "umask 077",
        f"install -d -m 755 {shlex.quote(BACKUP_SCRIPT.rsplit('/', 1)[0])}",
        f"install -d -m 700 {shlex.quote(BACKUP_ENV.rsplit('/', 1)[0])}",
        f"install -d -m 755 {shlex.quote(BACKUP_METRICS.rsplit('/', 1)[0])}",
        f"cat >{shlex.quote(BACKUP_ENV)}.new",
        f"chmod 600 {shlex.quote(BACKUP_ENV)}.new",
        f"mv {shlex.quote(BACKUP_ENV)}.new {shlex.quote(BACKUP_ENV)}",
    ]
    lines += _staged_files(files)
    lines += [
        "systemctl daemon-reload",
        f"systemctl enable --now {BACKUP_UNIT}.timer",
        f"echo 'backup: {BACKUP_UNIT}.timer every {settings.interval_minutes} min'",
    ]
    return "#!/usr/bin/env bash\n" + "\n".join(lines) + "\n"


def _staged_files(files: list[tuple[str, str, str]]) -> list[str]:
    """Lines writing each (path, mode, text): base64 in a here-string (the session's
    stdin stays the step's own), staged beside the target, sudoers files checked by
    visudo, then moved into place."""
    lines = []
    for path, mode, text in files:
        encoded = base64.b64encode(text.encode()).decode()
        staged = shlex.quote(f"{path}.new")
        lines += [
            f"base64 -d >{staged} <<<{shlex.quote(encoded)}",
            f"chmod {mode} {staged}",
            *([f"visudo -cqf {staged}"] if path.startswith("/etc/sudoers.d/") else []),
            f"mv {staged} {shlex.quote(path)}",
        ]
    return lines


METRICS_DATA_PATHS = ("/", "/var/lib/docker")
"""The filesystems the disk alert watches: the system and the containers' volumes."""


def metrics_install_script() -> str:
    """The ``metrics`` step: installs the metrics script, its service and timer, the
    node exporter's textfile directory, and starts the timer (every minute)."""
    script = with_settings(
        "fleet_metrics.sh",
        APP_DIR=APP_DIR,
        METRICS=FLEET_METRICS,
        WG_CONFIG=f"/etc/wireguard/{WIREGUARD_INTERFACE}.conf",
        WG_INTERFACE=WIREGUARD_INTERFACE,
        DATA_PATHS=" ".join(METRICS_DATA_PATHS),
    )
    files = [
        (METRICS_SCRIPT, "755", script),
        (f"/etc/systemd/system/{METRICS_UNIT}.service", "644", metrics_service()),
        (f"/etc/systemd/system/{METRICS_UNIT}.timer", "644", metrics_timer()),
    ]
    lines = [
        "set -euo pipefail",
        f"install -d -m 755 {shlex.quote(METRICS_SCRIPT.rsplit('/', 1)[0])}",
        f"install -d -m 755 {shlex.quote(METRICS_DIR)}",
        *_staged_files(files),
        "systemctl daemon-reload",
        f"systemctl enable --now {METRICS_UNIT}.timer",
        f"echo 'metrics: {METRICS_UNIT}.timer every minute into {METRICS_DIR}'",
    ]
    return "#!/usr/bin/env bash\n" + "\n".join(lines) + "\n"


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
    ilp_key: remote.Command | None
    """Execution hosts: generates the QuestDB ILP key on the host."""
    ilp_public_key: pulumi.Output[str] | None
    """Execution hosts: the key's line of QuestDB's ILP auth file."""
    health: remote.Command | None
    """The last step: every service healthy."""

    def __init__(
        self,
        name: str,
        host: HostSettings,
        *,
        mesh: MeshSpec,
        private_key: pulumi.Input[str],
        env_file: pulumi.Input[str],
        health_timeout_seconds: int = 180,
        registry: PullRegistrySettings | None = None,
        registry_token: pulumi.Input[str] | None = None,
        backup: HostBackup | None = None,
        protect: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``host`` is this VPS; the wiring: ``mesh`` (the fleet as every host needs to
        know it), the deploy user's SSH ``private_key`` and the role's ``env_file``
        (secrets both), how long the health check waits, the private ``registry`` to
        log in to before pulling with its read-only ``registry_token`` (a secret),
        its ``backup`` (none: not backed up), and ``protect`` (the deployment: its
        delete takes the services down)."""
        super().__init__(VPS_HOST_TYPE, name, {}, opts)
        if registry is not None and registry_token is None:
            raise ValueError(f"VpsHost {name}: `registry` needs `registry_token`.")
        # Not `_name` or `_protect`: pulumi.Resource keeps its own under those names
        # (children inherit `_protect`).
        self._resource_name = name
        self._host, self._mesh = host, mesh
        self._env_file = env_file
        self._registry, self._registry_token = registry, registry_token
        self._protect_deployment = protect
        self._backup = backup
        self.health = None
        # The host key is pinned: a host presenting any other key is refused, never
        # trusted on first use; so is the jump host's.
        private_key = pulumi.Output.secret(private_key)
        jump = mesh.jump_host
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
            step_name(name, BOOTSTRAP),
            connection=self.connection,
            create=remote_bash(render_bootstrap(host, mesh), BOOTSTRAP, sudo=True),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._scripts = step_scripts(health_timeout_seconds)
        self.wireguard_key = remote.Command(
            step_name(name, WIREGUARD_KEY),
            connection=self.connection,
            create=remote_bash(self._scripts[WIREGUARD_KEY], WIREGUARD_KEY, sudo=True),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bootstrap]),
        )
        self.wireguard_public_key = self.wireguard_key.stdout.apply(lambda out: out.strip())
        # Like the WireGuard key: the private half never leaves the host.
        self.ilp_key = self.ilp_public_key = None
        if host.role in EXECUTION_ROLES:
            self.ilp_key = remote.Command(
                step_name(name, ILP_KEY),
                connection=self.connection,
                create=remote_bash(ilp_key_script(host), ILP_KEY, sudo=True),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bootstrap]),
            )
            self.ilp_public_key = self.ilp_key.stdout.apply(lambda out: out.strip())

    def deploy(
        self,
        public_keys: Mapping[str, pulumi.Input[str]],
        compose_file: pulumi.Input[str],
        *,
        after: pulumi.Resource | None = None,
    ) -> None:
        """Join the mesh with every peer's public key, then deploy the role's services
        (``compose_file``: its docker-compose.yml), not before ``after`` (the previous
        host's health step in a rollout: if it fails, this host keeps what it runs)."""
        name = self._resource_name
        # The mesh is not held back: every host's health needs its peers reachable.
        gate = [after] if after is not None else []
        host, mesh = self._host, self._mesh
        peers = {peer.name: public_keys[peer.name] for peer in mesh.peers_of(host)}
        config = pulumi.Output.all(**peers).apply(lambda keys: wireguard_config(host, mesh, keys))
        scripts = self._scripts
        wireguard = remote.Command(
            step_name(name, WIREGUARD),
            connection=self.connection,
            create=remote_bash(scripts[WIREGUARD], WIREGUARD, sudo=True),
            stdin=config,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.wireguard_key]),
        )
        compose = remote.CopyToRemote(
            step_name(name, COMPOSE_FILE),
            connection=self.connection,
            source=pulumi.Output.from_input(compose_file).apply(pulumi.StringAsset),
            remote_path=f"{APP_DIR}/docker-compose.yml",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[wireguard, *gate]),
        )
        env_file = pulumi.Output.secret(self._env_file)
        env = remote.Command(
            step_name(name, ENV_FILE),
            connection=self.connection,
            create=remote_bash(scripts[ENV_FILE], ENV_FILE),
            stdin=env_file,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bootstrap, *gate]),
        )
        manifest = pulumi.Output.secret(
            pulumi.Output.all(compose_file, env_file).apply(
                lambda files: deploy_manifest(sha256(files[0]), sha256(files[1]))
            )
        )
        # The node exporter serves the metrics directory: the timer fills it first.
        metrics = remote.Command(
            step_name(name, METRICS),
            connection=self.connection,
            create=remote_bash(metrics_install_script(), METRICS, sudo=True),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[wireguard]),
        )
        pulls_after: list[pulumi.Resource] = [compose, env, metrics, *gate]
        if self.ilp_key is not None:
            pulls_after.append(self.ilp_key)
        registry = self._registry
        if registry is not None:
            pulls_after.append(
                remote.Command(
                    step_name(name, REGISTRY_LOGIN),
                    connection=self.connection,
                    create=remote_bash(registry_login_script(registry), REGISTRY_LOGIN, sudo=True),
                    stdin=pulumi.Output.secret(self._registry_token or ""),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bootstrap]),
                )
            )
        up_script = remote_bash(scripts[COMPOSE_UP], COMPOSE_UP)
        up = remote.Command(
            step_name(name, COMPOSE_UP),
            connection=self.connection,
            create=up_script,
            update=up_script,
            delete=remote_bash(
                f"cd {APP_DIR} && sudo docker compose -f docker-compose.yml down --remove-orphans",
                "compose-down",
            ),
            stdin=manifest,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=pulls_after, protect=self._protect_deployment
            ),
        )
        self.health = remote.Command(
            step_name(name, HEALTH),
            connection=self.connection,
            create=remote_bash(scripts[HEALTH], HEALTH),
            stdin=manifest,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[up]),
        )
        if self._backup is not None:
            # After the services: the volumes it backs up exist once they are up.
            remote.Command(
                step_name(name, BACKUP),
                connection=self.connection,
                create=remote_bash(
                    backup_install_script(host, self._backup.settings), BACKUP, sudo=True
                ),
                stdin=pulumi.Output.secret(self._backup.env),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.health]),
            )
        self.register_outputs(
            {
                "wireguard_public_key": self.wireguard_public_key,
                "address": host.address,
                "wireguard_address": host.wireguard_address,
            }
        )
