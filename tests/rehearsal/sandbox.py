"""Sandboxed hosts for the remote rehearsal: a real OpenSSH ``sshd`` on 127.0.0.1 per
host, each in its own private mount namespace whose ``/etc``, ``/opt`` and ``/home`` are
overlays of this machine's: writes land in a scratch directory the tests read (the
scripts remove their own temporary files in ``/tmp``). The deploy user exists only
inside its sandbox and gets root through Debian's real ``sudo``; ``sshd -t``,
``visudo``, ``useradd``, ``install`` and ``wg genkey``/``wg pubkey`` are real. Recording
stand-ins (``standins.py``) take the place of what cannot run here: apt, systemd, ufw,
iptables, the Docker engine and the WireGuard kernel interface.

The jump host is a sandbox too, with TCP forwarding on and nothing else.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.rehearsal import standins

OVERLAID = ("/etc", "/opt", "/home", "/usr/local/lib", "/var/lib")
"""Every directory a step writes under: each is an overlay whose writes land in the
host's scratch root, never on the machine running the tests."""


def sshd_binary() -> str:
    found = shutil.which("sshd") or "/usr/sbin/sshd"
    assert Path(found).exists(), "the rehearsal needs Debian's openssh-server (make system-deps)"
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    return found


def keygen(path: Path, comment: str = "rehearsal") -> str:
    """A new ed25519 key at ``path``; returns its public line (``type blob``)."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        timeout=30,
    )
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Sandbox:
    """One host: its sshd, its scratch root and its recording stand-ins."""

    name: str
    root: Path
    port: int
    host_key: str
    """The sshd's public host key, to pin."""
    process: subprocess.Popen[bytes]

    def path(self, absolute: str) -> Path:
        """Where a file the host wrote under an overlaid directory is, seen from here."""
        top = next(top for top in OVERLAID if absolute.startswith(top + "/"))
        return self.root / "upper" / top.strip("/") / absolute[len(top) + 1 :]

    def read(self, absolute: str) -> str:
        return self.path(absolute).read_text()

    def mode(self, absolute: str) -> int:
        return self.path(absolute).stat().st_mode & 0o777

    def calls(self) -> list[str]:
        """Every stand-in call, in order: ``program arg ...``."""
        log = self.root / "state" / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def state(self, name: str) -> Path:
        return self.root / "state" / name

    def inside(self, command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``command`` as root inside the sandbox's mount namespace."""
        return subprocess.run(
            ["nsenter", "-t", str(self.process.pid), "-m", "--", "/bin/bash", "-c", command],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start(
    name: str,
    scratch: Path,
    *,
    users: dict[str, str],
    forwarding: bool = False,
    sudoers: str = "",
    also_allow: tuple[str, ...] = (),
) -> Sandbox:
    """Start a sandbox whose sshd admits ``users`` (name -> authorized public key line,
    created with passwordless sudo) and ``also_allow`` (users the deploy creates)."""
    sshd = sshd_binary()
    root = scratch / name
    for sub in ("upper", "work", "state", "keys"):
        (root / sub).mkdir(parents=True)
    for top in OVERLAID:
        (root / "upper" / top.strip("/")).mkdir(parents=True)
        (root / "work" / top.strip("/")).mkdir(parents=True)
    bin_dir = standins.install(root / "bin", root / "state", python=sys.executable)
    host_key = keygen(root / "keys" / "host_key", f"{name}-host")
    for user, key in users.items():
        (root / "keys" / f"authorized_{user}").write_text(key + "\n")
    port = free_port()
    path = f"{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    (root / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {root / 'keys' / 'host_key'}",
                f"PidFile {root / 'sshd.pid'}",
                # The sandbox's own users' keys, then what the deploy installs in homes.
                f"AuthorizedKeysFile {root / 'keys'}/authorized_%u .ssh/authorized_keys",
                f"AllowUsers {' '.join([*users, *also_allow])}",
                "PermitRootLogin no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "StrictModes no",
                "UsePAM no",
                "Subsystem sftp internal-sftp",
                f"AllowTcpForwarding {'yes' if forwarding else 'no'}",
                "AcceptEnv REHEARSAL_*",
                f"SetEnv PATH={path}",
                "",
            ]
        )
    )
    mounts = [
        f"mount -t overlay overlay -o lowerdir={top},upperdir={root}/upper{top},"
        f"workdir={root}/work{top} {top}"
        for top in OVERLAID
    ]
    accounts = [
        f"useradd --create-home --shell /bin/bash --password '*' {shlex.quote(user)}"
        for user in users
    ]
    sudo_rules = (
        f'Defaults secure_path="{path}"\n'
        + "".join(f"{user} ALL=(ALL:ALL) NOPASSWD: ALL\n" for user in users if user != "drift")
        + sudoers
    )
    setup = " && ".join(
        [
            *mounts,
            *accounts,
            "install -d -m 0755 /etc/sudoers.d",
            f"printf %s {shlex.quote(sudo_rules)} > /etc/sudoers.d/00-rehearsal",
            "chmod 0440 /etc/sudoers.d/00-rehearsal",
            "visudo -cq",
            f"exec {sshd} -D -e -f {root}/sshd_config",
        ]
    )
    log = (root / "sshd.log").open("wb")
    process = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", setup],
        stdout=log,
        stderr=log,
        env={**os.environ, "PATH": path},
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name}: sandbox did not start:\n{(root / 'sshd.log').read_text()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError(f"{name}: sshd did not listen within 15 s")
    return Sandbox(name, root, port, host_key, process)
