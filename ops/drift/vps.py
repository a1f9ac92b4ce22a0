"""VPS drift: what each host runs against what the ``vps`` stack deployed.

Over SSH with the host key pinned (a host presenting another key is refused, never
trusted), read-only commands: the compose file's and .env's hashes, the containers,
the active ufw rules, the WireGuard peers and the effective sshd settings. pulumi-command
cannot refresh any of this; ``pulumi refresh`` does not see it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import paramiko
import yaml

from components.vps import (
    BOOTSTRAP,
    COMPOSE_FILE,
    COMPOSE_UP,
    DRIFT_USER,
    FILE_DELIMITER,
    UFW_RULES,
    VPS_HOST_TYPE,
    WIREGUARD,
    drift_reads,
    env_digest,
    script_of,
    step_name,
)
from ops.drift.model import Diff, Finding
from ops.drift.state import SECRET, StackState, StateResource
from stacks import outputs

HOST_TYPE = VPS_HOST_TYPE
FLEET_HOSTS = outputs.FLEET_HOSTS
FLEET_JUMP_HOST = outputs.FLEET_JUMP_HOST
FLEET_ENV_DIGESTS = outputs.FLEET_ENV_DIGESTS
DIGEST_KEY_ENV = "DRIFT_DIGEST_KEY"
"""The environment variable holding the key of the stack's .env digests."""
_FILE_BLOCK = re.compile(
    r"write_file '?(?P<path>[^' ]+)'? \d+ "
    rf"<<'(?P<tag>{FILE_DELIMITER}\d+)'\n(?P<body>.*?)\n(?P=tag)",
    re.DOTALL,
)


class Remote(Protocol):
    """Runs a read-only command on a host."""

    def run(self, command: str) -> tuple[int, str]: ...

    def close(self) -> None: ...


@dataclass
class HostExpectation:
    """What the state says a host should run."""

    name: str
    urn: str | None
    address: str
    port: int
    user: str
    host_key: str
    compose_path: str = ""
    compose_text: str = ""
    env_sha256: str | None = None
    """Known only when the export carries secrets (``--show-secrets``)."""
    env_digest: str | None = None
    """The stack's keyed digest of the .env (``fleetEnvDigests``), compared with the key."""
    files: dict[str, str] = field(default_factory=dict)
    """Files the bootstrap installs, by path (sshd drop-in, ufw rules...)."""
    wireguard_config: str = ""
    jump: dict[str, Any] | None = None
    """The jump host (address, port, user, hostKey) the deploy goes through, if any."""

    @property
    def services(self) -> dict[str, str]:
        document = yaml.safe_load(self.compose_text) or {}
        return {name: str(s.get("image")) for name, s in (document.get("services") or {}).items()}

    @property
    def ufw_rules(self) -> set[str]:
        text = next((body for path, body in self.files.items() if path == UFW_RULES), "")
        return {
            _rule(line) for line in text.splitlines() if line.strip() and not line.startswith("#")
        }

    @property
    def sshd(self) -> dict[str, str]:
        text = next((body for path, body in self.files.items() if "sshd_config.d" in path), "")
        return sshd_settings(text.splitlines())

    @property
    def wireguard_peers(self) -> dict[str, str]:
        peers: dict[str, str] = {}
        key = None
        for line in self.wireguard_config.splitlines():
            name, _, value = (part.strip() for part in line.partition("="))
            if name == "PublicKey":
                key = value
            elif name == "AllowedIPs" and key:
                peers[key] = value
        return peers


def bootstrap_files(command: str) -> dict[str, str]:
    """The files a bootstrap command installs, by path (its ``write_file`` heredocs)."""
    script = script_of(command)
    return {m["path"]: m["body"] + "\n" for m in _FILE_BLOCK.finditer(script)}


_LISTS = frozenset({"allowusers", "allowgroups", "denyusers", "denygroups", "port"})
"""sshd keywords that take several values: ``sshd -T`` prints one line per value."""


def sshd_settings(lines: Iterable[str]) -> dict[str, str]:
    """sshd settings by lowercase keyword, values lowercased; the several values of a
    list keyword (``AllowUsers deploy drift``, one ``Port`` line each) sorted into one."""
    values: dict[str, list[str]] = {}
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.strip().partition(" ")
        key, value = key.lower(), value.strip().lower()
        if key in _LISTS:
            values.setdefault(key, []).extend(value.split())
        else:
            values[key] = [value]
    return {key: " ".join(sorted(v) if key in _LISTS else v) for key, v in values.items()}


def _rule(line: str) -> str:
    """One ufw rule in one spelling: no ``ufw`` prefix, no quotes."""
    return " ".join(line.strip().removeprefix("ufw ").replace("'", "").split())


def _resource(state: StackState, name: str) -> StateResource | None:
    return next((r for r in state.resources if r.urn.endswith(f"::{name}")), None)


def expectations(state: StackState) -> list[HostExpectation]:
    """Every host of the state's fleet, with what it should run."""
    hosts = state.outputs.get(FLEET_HOSTS) or {}
    jump = state.outputs.get(FLEET_JUMP_HOST) or None
    found = []
    for name, host in sorted(hosts.items()):
        expected = HostExpectation(
            name=name,
            urn=None,
            address=host["address"],
            port=int(host.get("sshPort", 22)),
            # The read-only drift user, never the deploy user: its sudo allows the
            # reads below and nothing else.
            user=DRIFT_USER,
            host_key=host["hostKey"],
            jump=dict(jump) if isinstance(jump, dict) else None,
        )
        if compose := _resource(state, step_name(name, COMPOSE_FILE)):
            expected.compose_path = str(compose.get("remotePath"))
            expected.compose_text = str((compose.get("source") or {}).get("text", ""))
            expected.urn = compose.parent
        if up := _resource(state, step_name(name, COMPOSE_UP)):
            # The deploy manifest (sha256sum lines) names the .env's hash; a secret, known
            # only in a `--show-secrets` export.
            manifest = up.revealed_inputs.get("stdin")
            if isinstance(manifest, str) and manifest != SECRET:
                for line in manifest.splitlines():
                    digest, _, path = line.partition("  ")
                    if path == ".env":
                        expected.env_sha256 = digest
        digests = state.outputs.get(FLEET_ENV_DIGESTS) or {}
        if isinstance(digests, dict) and isinstance(digests.get(name), str):
            expected.env_digest = digests[name]
        if bootstrap := _resource(state, step_name(name, BOOTSTRAP)):
            expected.files = bootstrap_files(str(bootstrap.get("create", "")))
        if wireguard := _resource(state, step_name(name, WIREGUARD)):
            expected.wireguard_config = str(wireguard.get("stdin", ""))
        found.append(expected)
    return found


def _pinned_client(address: str, port: int, host_key: str) -> paramiko.SSHClient:
    key_type, blob = host_key.split()[:2]
    known = paramiko.PKey.from_type_string(key_type, base64.b64decode(blob))
    client = paramiko.SSHClient()
    entry = address if port == 22 else f"[{address}]:{port}"
    client.get_host_keys().add(entry, key_type, known)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return client


class SshRemote:
    """paramiko, the host key pinned: RejectPolicy and only the expected key known.
    Through the jump host when the fleet has one (a direct-tcpip channel of the jump
    host's session, its key pinned too), as pulumi-command's ``connection.proxy``."""

    def __init__(self, host: HostExpectation, key_path: str, timeout: float = 10) -> None:
        self.jump: paramiko.SSHClient | None = None
        options: dict[str, Any] = {
            "look_for_keys": False,
            "allow_agent": False,
            "timeout": timeout,
            "banner_timeout": timeout,
            "auth_timeout": timeout,
        }
        sock = None
        if host.jump:
            jump_at = (str(host.jump["address"]), int(host.jump.get("port", 22)))
            self.jump = _pinned_client(*jump_at, str(host.jump["hostKey"]))
            self.jump.connect(
                jump_at[0],
                port=jump_at[1],
                username=str(host.jump.get("user", "jump")),
                # The drift key: the jump host authorizes it for forwarding only.
                key_filename=key_path,
                **options,
            )
            transport = self.jump.get_transport()
            assert transport is not None
            sock = transport.open_channel("direct-tcpip", (host.address, host.port), ("", 0))
        self.client = _pinned_client(host.address, host.port, host.host_key)
        try:
            self.client.connect(
                host.address,
                port=host.port,
                username=host.user,
                key_filename=key_path,
                sock=sock,  # type: ignore[arg-type]
                **options,
            )
        except BaseException:
            self.close()
            raise

    def run(self, command: str) -> tuple[int, str]:
        _, stdout, _ = self.client.exec_command(command, timeout=30)
        output = stdout.read().decode()
        return stdout.channel.recv_exit_status(), output

    def execute(self, command: str, timeout: float) -> tuple[int, str, str]:
        """``command``'s exit status, stdout and stderr, both read as they come (a long
        command's chatter on stderr cannot stall it); TimeoutError after ``timeout``."""
        transport = self.client.get_transport()
        assert transport is not None
        channel = transport.open_session()
        channel.exec_command(command)
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        while True:
            busy = False
            if channel.recv_ready():
                out += channel.recv(65536)
                busy = True
            if channel.recv_stderr_ready():
                err += channel.recv_stderr(65536)
                busy = True
            if not busy:
                if channel.exit_status_ready():
                    break
                if time.monotonic() > deadline:
                    channel.close()
                    raise TimeoutError(f"{command!r} still running after {timeout:.0f} s")
                time.sleep(0.02)
        status = channel.recv_exit_status()
        channel.close()
        return status, out.decode(errors="replace"), err.decode(errors="replace")

    def close(self) -> None:
        self.client.close()
        if self.jump is not None:
            self.jump.close()


def read_command(program: str, app_dir: str) -> str:
    """One of the drift user's sudo reads, exactly as its sudoers entry allows it."""
    return shlex.join(["sudo", "-n", program, *drift_reads(app_dir)[program]])


def _containers(output: str) -> list[dict[str, Any]]:
    """``docker compose ps --format json``: a JSON array or one object per line."""
    output = output.strip()
    if not output:
        return []
    if output.startswith("["):
        return json.loads(output)
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def inspect(host: HostExpectation, remote: Remote, digest_key: str = "") -> list[Diff]:
    """Every difference between the host and its expectation (``digest_key``: the key of
    the stack's .env digests, to compare the .env without the state's secrets)."""
    diffs: list[Diff] = []
    app_dir = str(Path(host.compose_path).parent)
    env_path = str(Path(host.compose_path).with_name(".env"))
    _, sums = remote.run(read_command("sha256sum", app_dir))
    actual = {
        line.split()[1]: line.split()[0] for line in sums.splitlines() if len(line.split()) == 2
    }
    expected_compose = hashlib.sha256(host.compose_text.encode()).hexdigest()
    if actual.get(host.compose_path) != expected_compose:
        diffs.append(
            Diff("compose file sha256", expected_compose, actual.get(host.compose_path, "absent"))
        )
    if host.env_sha256 is not None and actual.get(env_path) != host.env_sha256:
        diffs.append(Diff(".env sha256", SECRET, SECRET if env_path in actual else "absent"))
    elif host.env_sha256 is None and host.env_digest is not None and digest_key:
        found = actual.get(env_path)
        if found is None or not hmac.compare_digest(env_digest(digest_key, found), host.env_digest):
            diffs.append(Diff(".env digest", SECRET, SECRET if found else "absent"))

    _, ps = remote.run(read_command("docker", app_dir))
    running = {str(c.get("Service")): c for c in _containers(ps)}
    for service, image in sorted(host.services.items()):
        container = running.get(service)
        if container is None:
            diffs.append(Diff(f"container {service}", f"running {image}", "absent"))
            continue
        if container.get("Image") != image:
            diffs.append(Diff(f"container {service} image", image, container.get("Image")))
        state = f"{container.get('State')} {container.get('Health') or ''}".strip()
        if state != "running healthy":
            diffs.append(Diff(f"container {service} state", "running healthy", state))
    for extra in sorted(set(running) - set(host.services)):
        diffs.append(Diff(f"container {extra}", "absent", f"running {running[extra].get('Image')}"))

    _, ufw = remote.run(read_command("ufw", app_dir))
    active = {_rule(line) for line in ufw.splitlines() if line.startswith("ufw ")}
    for rule in sorted(active - host.ufw_rules):
        diffs.append(Diff("ufw rule", "absent", rule))
    for rule in sorted(host.ufw_rules - active):
        diffs.append(Diff("ufw rule", rule, "absent"))

    _, dump = remote.run(read_command("wg", app_dir))
    peers = {}
    for line in dump.splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) >= 4:
            peers[fields[0]] = fields[3]
    if peers != host.wireguard_peers:
        diffs.append(Diff("wireguard peers", host.wireguard_peers, peers))

    _, effective = remote.run(read_command("sshd", app_dir))
    settings = sshd_settings(effective.splitlines())
    for key, value in sorted(host.sshd.items()):
        if settings.get(key) != value:
            diffs.append(Diff(f"sshd {key}", value, settings.get(key, "unset")))
    return diffs


Connector = Callable[[HostExpectation], Remote]


def scan_vps(
    state: StackState, connect: Connector | None = None, digest_key: str = ""
) -> list[Finding]:
    """One finding per host: ``ok``, ``changed`` (with the differences), or ``unknown``
    when it could not be read (a host key mismatch is refused, not trusted)."""
    findings = []
    for host in expectations(state):
        try:
            if connect is None:
                raise RuntimeError("no SSH key: pass --ssh-key to read the VPS hosts")
            remote = connect(host)
        except paramiko.BadHostKeyException as error:
            findings.append(
                Finding(
                    "unknown",
                    HOST_TYPE,
                    host.name,
                    urn=host.urn,
                    error=f"host key mismatch, refused: {host.address} presented "
                    f"{error.key.get_name()} {error.key.get_base64()[:16]}…, not the pinned key",
                )
            )
            continue
        except (OSError, paramiko.SSHException, RuntimeError) as error:
            findings.append(
                Finding("unknown", HOST_TYPE, host.name, urn=host.urn, error=str(error))
            )
            continue
        try:
            diffs = inspect(host, remote, digest_key)
        finally:
            remote.close()
        findings.append(
            Finding("changed" if diffs else "ok", HOST_TYPE, host.name, urn=host.urn, diffs=diffs)
        )
    return findings


def ssh_connector(key_path: str) -> Connector:
    return lambda host: SshRemote(host, key_path)
