"""The fleet's hosts as settings: each VPS, the jump host, the private registry.

``VpsHost`` takes a host and the mesh built from these; ``stacks/config.py`` holds them
in ``trading-infra:fleet``. Keys and addresses are parsed in full here, so a mangled
host key or a host name where an address belongs is refused before any SSH connection.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from typing import Annotated, Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from pydantic import AfterValidator, Field, field_validator

from components.compose import ROLES
from components.settings import Settings

HOST_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ssh-rsa")
Role = Literal["orchestrator", "futures", "equities-crypto"]
"""A host's role: the keys of ``components.compose.ROLES`` (a test holds them equal;
the literal gives the config schema its enum)."""

FLEET_ROLES = tuple(ROLES)
"""Every role (``components.compose.ROLES``); each needs a host."""


def _host_key(value: str) -> str:
    """An OpenSSH public host key line, ``<type> <base64 blob> [comment]``, parsed in full
    (the ``cryptography`` package checks the blob's structure: an ed25519 key's 32 bytes,
    an ECDSA point on its curve, an RSA modulus), so a truncated or mangled line is
    refused here, not by the first SSH connection."""
    parts = value.split()
    if len(parts) < 2 or parts[0] not in HOST_KEY_TYPES:
        raise ValueError(
            f"must be an OpenSSH public host key ('{HOST_KEY_TYPES[0]} AAAA...'); get it "
            "with `ssh-keyscan -t ed25519 HOST` from a trusted network"
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        raise ValueError("is not valid base64 after the key type; copy the whole line") from None
    length = int.from_bytes(blob[:4], "big")
    if blob[4 : 4 + length] != parts[0].encode():
        raise ValueError(f"blob is not a {parts[0]} key; copy the line ssh-keyscan prints")
    try:
        serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError(
            f"is not a valid {parts[0]} key (truncated or altered); copy the whole line "
            "ssh-keyscan prints"
        ) from None
    return f"{parts[0]} {parts[1]}"


def _ip_address(value: str) -> str:
    """An IP address, not a name: ufw rules and WireGuard endpoints take addresses."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address; ufw rules and WireGuard endpoints need the "
            "host's address, not a name"
        ) from None


_PINNED_IMAGE = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[0-9a-f]{64}$"
)
"""``name[:tag]@sha256:<64 hex>``: the reference grammar of the OCI distribution spec
(``docker buildx imagetools inspect NAME:TAG`` prints the digest)."""


def _pinned_image(value: str) -> str:
    if not _PINNED_IMAGE.match(value):
        name = value.split("@", 1)[0]
        raise ValueError(
            f"{value!r} is not pinned by digest; use NAME[:TAG]@sha256:<64 hex> (a tag can be "
            f"moved, a digest cannot): `docker buildx imagetools inspect {name}` prints it"
        )
    return value


PinnedImage = Annotated[str, AfterValidator(_pinned_image)]
"""A container image by digest."""


IpAddress = Annotated[str, AfterValidator(_ip_address)]
"""An IP address (not a name)."""
HostKey = Annotated[str, AfterValidator(_host_key)]
"""An OpenSSH public host key line, parsed in full."""


class HostSettings(Settings):
    """One VPS in ``trading-infra:fleet.hosts``."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")]
    """Host name, unique (``cdmx``, ``chicago``, ``nj``). Required."""
    role: Role
    """What it runs. Required."""
    address: IpAddress
    """Public IP address, used for SSH, the peers' ufw rules and WireGuard endpoints (an
    address, not a name). Required."""
    host_key: HostKey
    """The host's SSH public host key, pinned: connections to any other key are refused.
    Required."""
    wireguard_address: str
    """The host's address inside ``meshCidr``. Required."""
    ssh_port: Annotated[int, Field(ge=1, le=65535)] = 22
    """The port sshd listens on and deploys connect to. Default 22. To move it without
    locking anyone out, deploy once with the new port in ``additionalSshPorts``, then
    make it ``sshPort`` (docs/fleet.md)."""
    additional_ssh_ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(default_factory=list)
    """Ports sshd also listens on and ufw also admits SSH to (the socket too, where sshd
    is socket-activated). Default none."""
    ssh_user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")] = "deploy"
    """Non-root user with the deploy key and passwordless sudo. Default ``deploy``."""
    images: dict[str, PinnedImage] = Field(default_factory=dict)
    """This host's own images, by key of ``fleet.images`` (``tradingService: ...@sha256:``),
    over the fleet's: a canary host runs a new version while the others keep the old
    one. Only images its role runs. Default none: the fleet's images."""

    @field_validator("wireguard_address")
    @classmethod
    def _ipv4(cls, value: str) -> str:
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 address") from None

    @property
    def ssh_ports(self) -> tuple[int, ...]:
        """Every port sshd listens on, ``ssh_port`` first."""
        return (self.ssh_port, *(p for p in self.additional_ssh_ports if p != self.ssh_port))


class JumpHostSettings(Settings):
    """``trading-infra:fleet.jumpHost``: the SSH bastion every deploy and drift
    connection goes through (pulumi-command's ``connection.proxy``), so CI runners
    outside ``adminCidrs`` reach the hosts; its host key is pinned like theirs."""

    address: IpAddress
    """The jump host's public IP address; the hosts admit SSH from it. Required."""
    host_key: HostKey
    """Its SSH public host key (``ssh-keyscan -t ed25519 ADDRESS``). Required."""
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    """Its SSH port. Default 22."""
    user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")] = "jump"
    """The account the deploy key logs in to (forwarding only). Default ``jump``."""


class PullRegistrySettings(Settings):
    """``trading-infra:fleet.registry``: the private registry the hosts pull the platform's
    images from, with a read-only pull token (``registryPullToken``)."""

    server: Annotated[str, Field(pattern=r"^[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]+)?$")]
    """The registry's host name (``ghcr.io``). Required."""
    username: Annotated[str, Field(min_length=1, max_length=128)]
    """The account the token belongs to. Required."""
