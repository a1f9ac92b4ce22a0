"""Recording stand-ins for what a sandbox cannot run: apt, systemd, ufw, iptables, the
Docker engine and the WireGuard kernel interface.

Each one appends its command line to ``state/calls.log`` and keeps just enough state to
answer the questions the fleet's scripts ask (``ufw status``, ``docker compose ps``,
``docker inspect``, ``wg show wg0``). ``wg genkey``/``wg pubkey`` and ``wg-quick strip``
run the real wireguard-tools. Tests steer them through files in the state directory:
``unhealthy`` (services ``docker compose ps`` reports unhealthy), ``docker-version``
(the installed docker-ce), ``ssh-socket`` (sshd is socket-activated).
"""

from __future__ import annotations

from pathlib import Path

PROGRAMS = (
    "apt-get",
    "dpkg-query",
    "curl",
    "systemctl",
    "ufw",
    "docker",
    "wg",
    "wg-quick",
    "iptables",
    "iptables-restore",
)

STANDIN = r"""
# Imported where needed, not here: a deploy runs the stand-ins about 700 times, and most
# calls (dpkg-query -W, systemctl enable, ufw allow) need neither yaml nor json nor
# hashlib, which would add some 40 ms to each interpreter start.
import os
import sys
from pathlib import Path

STATE = Path(sys.argv[1])
PROGRAM = sys.argv[2]
ARGS = sys.argv[3:]
REAL = {"wg": "/usr/bin/wg", "wg-quick": "/usr/bin/wg-quick"}


def log(line):
    with open(STATE / "calls.log", "a") as handle:
        handle.write(line + "\n")


def sha(path):
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if Path(path).exists() else "absent"


def option(flag, default=None):
    return ARGS[ARGS.index(flag) + 1] if flag in ARGS else default


def docker_version():
    pinned = STATE / "docker-version"
    return pinned.read_text().strip() if pinned.exists() else "28.5.1"


def compose_services(compose):
    import yaml

    return (yaml.safe_load(Path(compose).read_text()) or {}).get("services") or {}


def unhealthy_services():
    marked = STATE / "unhealthy"
    return marked.read_text().split() if marked.exists() else []


def docker():
    if ARGS[:1] == ["version"]:
        print(docker_version())
        return 0
    if ARGS[:1] == ["login"]:
        secret = sys.stdin.read()
        target = STATE / "docker-login"
        target.write_text(f"{ARGS[1:]}\n{secret}")
        return 0
    if ARGS[:1] == ["inspect"]:
        # The metrics script's template: service, state, health, restart count.
        unhealthy = unhealthy_services()
        for container in ARGS[3:]:
            service = container.removeprefix("id-")
            health = "unhealthy" if service in unhealthy else "healthy"
            print(f"{service} running {health} 0")
        return 0
    if ARGS[:1] != ["compose"]:
        return 0
    if ARGS[1:2] == ["version"]:
        print("Docker Compose version v2.35.0")
        return 0
    compose = option("-f", "docker-compose.yml")
    env = option("--env-file", ".env")
    if "up" in ARGS:
        (STATE / "running").write_text(f"{sha(compose)} {sha(env)}\n")
        with open(STATE / "deploys.log", "a") as handle:
            handle.write(f"up {sha(compose)} {sha(env)}\n")
    elif "down" in ARGS:
        (STATE / "running").unlink(missing_ok=True)
        with open(STATE / "deploys.log", "a") as handle:
            handle.write("down\n")
    elif "config" in ARGS and "--services" in ARGS:
        services = compose_services(compose)
        print("\n".join(services))
    elif "ps" in ARGS:
        if not (STATE / "running").exists():
            return 0
        services = compose_services(compose)
        if "--quiet" in ARGS:
            print("\n".join(f"id-{service}" for service in services))
            return 0
        unhealthy = unhealthy_services()
        for service, definition in services.items():
            health = "unhealthy" if service in unhealthy else "healthy"
            if option("--format") == "json":
                import json

                # One object per line, as Compose v2 prints them.
                row = {"Service": service, "State": "running", "Health": health}
                print(json.dumps({**row, "Image": definition.get("image")}))
            else:
                print(f"{service} running {health}")
    return 0


def ufw_rule(words):
    # As the real ufw lists a rule: its comment in single quotes.
    if "comment" in words:
        at = words.index("comment")
        words = [*words[: at + 1], "'" + words[at + 1].strip("'") + "'", *words[at + 2 :]]
    return " ".join(words)


def ufw():
    rules = STATE / "ufw-rules"
    current = rules.read_text().splitlines() if rules.exists() else []
    if ARGS[:1] == ["status"]:
        print("Status: active" if (STATE / "ufw-enabled").exists() else "Status: inactive")
    elif ARGS[:2] == ["--force", "enable"]:
        (STATE / "ufw-enabled").touch()
    elif ARGS[:2] == ["--force", "reset"]:
        rules.write_text("")
        (STATE / "ufw-enabled").unlink(missing_ok=True)
    elif ARGS[:2] == ["show", "added"]:
        print("Added user rules (see 'ufw status' for running firewall):")
        for rule in current:
            print(f"ufw {rule}")
    elif ARGS[:1] == ["default"]:
        policy = {"deny": "DROP", "allow": "ACCEPT", "reject": "REJECT"}[ARGS[1]]
        key = {"incoming": "INPUT", "outgoing": "OUTPUT", "routed": "FORWARD"}[ARGS[2]]
        defaults = Path("/etc/default/ufw")
        prefix = f"DEFAULT_{key}_POLICY="
        lines = [
            f'{prefix}"{policy}"' if line.startswith(prefix) else line
            for line in defaults.read_text().splitlines()
        ]
        defaults.write_text("\n".join(lines) + "\n")
    elif ARGS[:1] == ["delete"]:
        rule = ufw_rule(ARGS[1:])
        if rule not in current:
            print(f"Could not delete non-existent rule", file=sys.stderr)
        rules.write_text("".join(f"{r}\n" for r in current if r != rule))
    elif ARGS[:1] in (["allow"], ["deny"], ["limit"], ["reject"]):
        rule = ufw_rule(ARGS)
        if rule not in current:
            rules.write_text("".join(f"{r}\n" for r in [*current, rule]))
    return 0


def wg():
    if ARGS[:1] in (["genkey"], ["pubkey"]):
        os.execv(REAL["wg"], ["wg", *ARGS])
    if ARGS[:2] == ["show", "wg0"]:
        if not (STATE / "wg0-up").exists():
            print("Unable to access interface: No such device", file=sys.stderr)
            return 1
        peers, key = [], None
        for line in Path("/etc/wireguard/wg0.conf").read_text().splitlines():
            name, _, value = (part.strip() for part in line.partition("="))
            if name == "PublicKey":
                key = value
            elif name == "AllowedIPs" and key:
                peers.append((key, value))
        if ARGS[2:3] == ["peers"]:
            print("\n".join(key for key, _ in peers))
        elif ARGS[2:3] == ["latest-handshakes"]:
            print("\n".join(f"{key}\t1700000000" for key, _ in peers))
        elif ARGS[2:3] == ["dump"]:
            # wg(8) dump: the interface line, then one tab-separated line per peer.
            print("\t".join(["(hidden)", "(public)", "51820", "off"]))
            for key, allowed in peers:
                print("\t".join([key, "(none)", "(endpoint)", allowed, "0", "0", "0", "25"]))
        return 0
    return 0


def systemctl():
    if ARGS[:1] == ["start"] and "wg-quick@wg0" in ARGS:
        (STATE / "wg0-up").touch()
    if ARGS[:1] == ["is-enabled"] and "ssh.socket" in ARGS:
        return 0 if (STATE / "ssh-socket").exists() else 1
    return 0


def main():
    log(" ".join([PROGRAM, *ARGS]))
    if PROGRAM == "dpkg-query":
        if any("Version" in arg for arg in ARGS) and "docker-ce" in ARGS:
            print(f"5:{docker_version()}-1~debian.12~bookworm", end="")
        else:
            print("install ok installed", end="")
        return 0
    if PROGRAM == "wg-quick" and ARGS[:1] == ["strip"]:
        os.execv(REAL["wg-quick"], ["wg-quick", *ARGS])
    handlers = {"docker": docker, "ufw": ufw, "wg": wg, "systemctl": systemctl}
    return handlers.get(PROGRAM, lambda: 0)()


sys.exit(main())
"""


def install(bin_dir: Path, state: Path, *, python: str) -> Path:
    """Write the stand-ins into ``bin_dir`` (to go first on PATH); returns ``bin_dir``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    program = bin_dir.parent / "standin.py"
    program.write_text(STANDIN)
    for name in PROGRAMS:
        wrapper = bin_dir / name
        direct = ""
        if name == "wg":
            # Key generation needs no recording, and works for unprivileged callers.
            direct = 'case "$1" in genkey|pubkey) exec /usr/bin/wg "$@" ;; esac\n'
        wrapper.write_text(f'#!/bin/sh\n{direct}exec {python} {program} {state} {name} "$@"\n')
        wrapper.chmod(0o755)
    state.mkdir(parents=True, exist_ok=True)
    (state / "calls.log").touch()
    # The deploy user's unprivileged commands log too.
    for path in (state, state / "calls.log"):
        path.chmod(0o777 if path.is_dir() else 0o666)
    return bin_dir
