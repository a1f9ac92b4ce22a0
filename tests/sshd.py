"""A real sshd on 127.0.0.1 (Debian's openssh-server) with a throwaway host key,
admitting the user running the tests with a throwaway client key; fake programs first
on the session's PATH (``FAKES``, each may read recorded answers from ``fake``)."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

FAKES = {
    "sudo": '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n',
    "docker": '#!/bin/sh\ncat "{fake}/docker-ps.json"\n',
    "ufw": '#!/bin/sh\ncat "{fake}/ufw.txt"\n',
    "wg": '#!/bin/sh\ncat "{fake}/wg.txt"\n',
    "sshd": '#!/bin/sh\ncat "{fake}/sshd-T.txt"\n',
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30
    )
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


@dataclass
class Server:
    port: int
    host_key: str
    client_key: Path
    fake: Path
    app: Path


@contextmanager
def running_sshd(root: Path, fakes: dict[str, str] = FAKES) -> Iterator[Server]:
    """An sshd on a free port of 127.0.0.1, its files under ``root``; stopped on exit."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    assert Path(sshd).exists(), "these tests need Debian's openssh-server (.ci/run installs it)"
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    host_key = keygen(root / "host_key")
    keygen(root / "client_key")
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    fake, bin_dir, app = root / "fake", root / "bin", root / "app"
    for directory in (fake, bin_dir, app):
        directory.mkdir()
    for name, body in fakes.items():
        script = bin_dir / name
        script.write_text(body.format(fake=fake))
        script.chmod(0o755)
    port = free_port()
    (root / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {root / 'host_key'}",
                f"PidFile {root / 'sshd.pid'}",
                f"AuthorizedKeysFile {root / 'authorized_keys'}",
                f"AllowUsers {getpass.getuser()}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "StrictModes no",
                "UsePAM no",
                f"SetEnv PATH={bin_dir}:/usr/bin:/bin",
                "",
            ]
        )
    )
    process = subprocess.Popen(
        [sshd, "-D", "-e", "-f", str(root / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            raise RuntimeError("sshd did not start within 10 s")
        yield Server(port, host_key, root / "client_key", fake, app)
    finally:
        process.terminate()
        process.wait(timeout=10)
