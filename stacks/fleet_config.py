"""The config of the ``vps`` stack (role ``vps-fleet``): hosts, mesh, services, secrets."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from components.alerting import (
    AlertingSettings,
    receiver_secret_problem,
)
from components.backup import BackupSettings
from components.compose import EXECUTION_ROLES, ROLES
from components.hosts import (
    FLEET_ROLES,
    HostSettings,
    JumpHostSettings,
    PinnedImage,
    PullRegistrySettings,
)
from components.network import private_cidr
from components.settings import camel
from stacks.project import (
    Section,
    must_be_secret,
)


def covers_everything(cidrs: Sequence[str]) -> list[str]:
    """The address families (``0.0.0.0/0``, ``::/0``) that ``cidrs`` cover together,
    including in pieces (``0.0.0.0/1`` + ``128.0.0.0/1``)."""
    covered = []
    for version, world in ((4, "0.0.0.0/0"), (6, "::/0")):
        networks = [ipaddress.ip_network(c) for c in cidrs]
        family = [n for n in networks if n.version == version]
        if any(n.prefixlen == 0 for n in ipaddress.collapse_addresses(family)):  # type: ignore[arg-type]
            covered.append(world)
    return covered


class FleetImagesConfig(Section):
    """``trading-infra:fleet.images``: every image pinned by digest (``name[:tag]@sha256:``),
    like the ECS service's. The platform's own images have no default: their release
    sets them."""

    api_gateway: PinnedImage
    """Orchestrator: the API gateway (platform image). Required."""
    backtesting: PinnedImage
    """Orchestrator: backtesting service (platform image). Required."""
    ml_service: PinnedImage
    """Orchestrator: ML service (platform image). Required."""
    trading_service: PinnedImage
    """Execution nodes: order execution (platform image). Required."""
    market_data: PinnedImage
    """Execution nodes: market data collection (platform image). Required."""
    questdb: PinnedImage = (
        "questdb/questdb:9.1.1"
        "@sha256:e62916bd62087cc48ab56f10b72a183e8f6aa987b4d46e0f316be083bbee2373"
    )
    """Orchestrator: the fleet's single time-series writer."""
    redis: PinnedImage = (
        "redis:7.4.2-alpine@sha256:02419de7eddf55aa5bcf49efb74e88fa8d931b4d77c07eff8a6b2144472b6952"
    )
    """Every node: local cache."""
    prometheus: PinnedImage = (
        "prom/prometheus:v3.1.0"
        "@sha256:6559acbd5d770b15bb3c954629ce190ac3cbbdb2b7f1c30f0385c4e05104e218"
    )
    """Orchestrator: metrics."""
    grafana: PinnedImage = (
        "grafana/grafana:11.4.0"
        "@sha256:d8ea37798ccc41061a62ab080f2676dda6bf7815558499f901bdb0f533a456fb"
    )
    """Orchestrator: dashboards."""
    alertmanager: PinnedImage = (
        "prom/alertmanager:v0.27.0"
        "@sha256:e13b6ed5cb929eeaee733479dce55e10eb3bc2e9c4586c705a4e8da41e5eacf5"
    )
    """Orchestrator: routes the fleet's alerts to the receiver."""
    node_exporter: PinnedImage = (
        "prom/node-exporter:v1.8.2"
        "@sha256:4032c6d5bfd752342c3e631c2f1de93ba6b86c41db6b167b9a35372c139e7706"
    )
    """Every node: serves the host's metrics (textfile collector) to Prometheus."""


class BackupConfig(BackupSettings, Section):
    """``trading-infra:fleet.backup``: restic backups of each host's stateful data."""


class AlertingConfig(AlertingSettings, Section):
    """``trading-infra:fleet.alerting``: alert thresholds and the receiver."""


class ExecutionRoleConfig(Section):
    """``trading-infra:fleet.roles.<role>``: one execution role's markets."""

    brokers: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]] = Field(default_factory=list)
    """Brokers the role's node trades with. Default none."""
    data_providers: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]] = Field(
        default_factory=list
    )
    """Market data providers the role's node collects from. Default none."""


class FleetConfig(Section):
    """``trading-infra:fleet``: the self-hosted VPS and their WireGuard mesh."""

    mesh_cidr: str = "10.99.0.0/24"
    """The WireGuard network: private, a /24. Default 10.99.0.0/24."""
    wireguard_port: Annotated[int, Field(ge=1, le=65535)] = 51820
    """WireGuard UDP port on every host. Default 51820."""
    admin_cidrs: Annotated[list[str], Field(min_length=1)]
    """Networks allowed to SSH to the hosts. Required; 0.0.0.0/0 only with
    ``allowSshFromAnywhere``."""
    allow_ssh_from_anywhere: bool = False
    """Accept 0.0.0.0/0 or ::/0 in ``adminCidrs`` (fail2ban still applies). Default false."""
    hosts: Annotated[list[HostSettings], Field(min_length=1)]
    """The VPS. Required: at least one host per role, exactly one orchestrator."""
    jump_host: JumpHostSettings | None = None
    """The SSH bastion deploys and drift go through (for CI runners outside
    ``adminCidrs``). Default none: connect directly, from an admin network or a
    self-hosted runner inside one."""
    drift_public_key: str
    """The OpenSSH public key of the read-only ``drift`` user ``ops drift`` logs in as;
    its sudo is limited to the read commands drift runs. Required."""
    images: FleetImagesConfig
    """Service images, by digest. Required (the platform's own images have no default)."""
    registry: PullRegistrySettings | None = None
    """The private registry of the platform's images; the hosts log in to it with
    ``registryPullToken``. Default none: public images only."""
    roles: dict[str, ExecutionRoleConfig] = Field(
        default_factory=lambda: {
            "futures": ExecutionRoleConfig(
                brokers=["tradestation", "interactive-brokers", "bybit-futures"],
                data_providers=["cme", "cboe"],
            ),
            "equities-crypto": ExecutionRoleConfig(
                brokers=["alpaca", "binance", "coinbase"],
                data_providers=["polygon", "alpaca", "tiingo"],
            ),
        }
    )
    """What each execution role trades with and collects, by role (every execution
    role of ``components.compose.ROLES``: ``futures``, ``equities-crypto``). Default
    futures: tradestation, interactive-brokers, bybit-futures; cme, cboe.
    equities-crypto: alpaca, binance, coinbase; polygon, alpaca, tiingo."""
    backup: BackupConfig
    """Backups of each host's stateful data, off-host. Required: ``bucketRegion`` at
    least."""
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    """Alert rules and where alerts go. Default: a webhook (``alertWebhookUrl``) with
    the default thresholds."""
    health_timeout_seconds: Annotated[int, Field(ge=10, le=1800)] = 180
    """How long a deploy waits for every service to be healthy. Default 180."""
    rollout_order: list[str] = Field(default_factory=list)
    """The order hosts are deployed in, by name, the canary first: a host's services
    are updated only once the previous host's health check passed, so a failed check
    stops the rollout there. Every host once. Default: the order of ``hosts``."""

    @property
    def rollout(self) -> list[HostSettings]:
        """The hosts in the order they are deployed in (``rolloutOrder``)."""
        by_name = {host.name: host for host in self.hosts}
        return (
            [by_name[name] for name in self.rollout_order] if self.rollout_order else [*self.hosts]
        )

    def _rollout_problems(self) -> list[str]:
        if not self.rollout_order:
            return []
        names = [host.name for host in self.hosts]
        order = self.rollout_order
        problems = [
            f"@rolloutOrder: {name!r} is not a host; use the names of hosts ({', '.join(names)})"
            for name in dict.fromkeys(order)
            if name not in names
        ]
        problems += [
            f"@rolloutOrder: {name!r} is listed {order.count(name)} times; list every host once"
            for name in dict.fromkeys(order)
            if order.count(name) > 1
        ]
        missing = [name for name in names if name not in order]
        if missing:
            problems.append(
                f"@rolloutOrder: {', '.join(missing)} missing; list every host once, the "
                "canary first (or remove rolloutOrder to deploy in the order of hosts)"
            )
        return problems

    def _image_override_problems(self) -> list[str]:
        keys = {field.alias or name: name for name, field in FleetImagesConfig.model_fields.items()}
        problems = []
        for index, host in enumerate(self.hosts):
            runs = ROLES[host.role].images
            for key in host.images:
                if key not in keys:
                    problems.append(
                        f"@hosts[{index}].images.{key}: not an image of fleet.images; use one "
                        f"of {', '.join(camel(image) for image in runs)}"
                    )
                elif keys[key] not in runs:
                    problems.append(
                        f"@hosts[{index}].images.{key}: host {host.name} ({host.role}) does "
                        f"not run it; its images are {', '.join(camel(image) for image in runs)}"
                    )
        return problems

    def images_of(self, host: HostSettings) -> dict[str, str]:
        """The images ``host`` runs, by key of ``fleet.images`` (snake case): the
        fleet's, with the host's own over them."""
        fleet: dict[str, str] = self.images.model_dump()
        return {key: host.images.get(camel(key), fleet[key]) for key in ROLES[host.role].images}

    @field_validator("mesh_cidr")
    @classmethod
    def _mesh(cls, value: str) -> str:
        return private_cidr(value, min_prefix=24, max_prefix=24)

    @field_validator("drift_public_key")
    @classmethod
    def _drift_key(cls, value: str) -> str:
        parts = value.split()
        try:
            serialization.load_ssh_public_key(" ".join(parts[:2]).encode())
        except (ValueError, UnsupportedAlgorithm, IndexError):
            raise ValueError(
                "must be an OpenSSH public key line ('ssh-ed25519 AAAA...'): the .pub of "
                "`ssh-keygen -t ed25519 -f drift`"
            ) from None
        return " ".join(parts[:2])

    @field_validator("admin_cidrs")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        cleaned = []
        for value in values:
            try:
                cleaned.append(str(ipaddress.ip_network(value, strict=True)))
            except ValueError as error:
                raise ValueError(f"{value!r} is not a network ({error})") from None
        return cleaned

    @model_validator(mode="after")
    def _fleet_is_consistent(self) -> FleetConfig:
        problems = []
        world = covers_everything(self.admin_cidrs)
        if world and not self.allow_ssh_from_anywhere:
            problems.append(
                f"adminCidrs cover {' and '.join(world)} together: SSH would be open to the "
                "whole internet; list your admin networks, or set allowSshFromAnywhere: "
                "true to accept it"
            )
        for field_name, label in (
            ("name", "name"),
            ("address", "address"),
            ("wireguard_address", "wireguardAddress"),
        ):
            first: dict[str, int] = {}
            for index, host in enumerate(self.hosts):
                value = getattr(host, field_name)
                if value in first:
                    problems.append(
                        f"@hosts[{index}].{label}: {value!r} is already hosts[{first[value]}]'s; "
                        f"every host needs its own {label}"
                    )
                first.setdefault(value, index)
        mesh = ipaddress.IPv4Network(self.mesh_cidr)
        usable = set(mesh.hosts())
        for host in self.hosts:
            if ipaddress.IPv4Address(host.wireguard_address) not in usable:
                problems.append(
                    f"host {host.name}: wireguardAddress {host.wireguard_address} is not a host "
                    f"address of meshCidr {self.mesh_cidr}"
                )
        problems += [
            f"@roles.{role}: not an execution role (brokers and data providers belong to "
            f"{', '.join(EXECUTION_ROLES)}); remove it"
            for role in self.roles
            if role not in EXECUTION_ROLES
        ]
        problems += [
            f"@roles.{role}: its node needs its brokers and dataProviders; add them"
            for role in EXECUTION_ROLES
            if role not in self.roles
        ]
        problems += self._rollout_problems()
        problems += self._image_override_problems()
        roles = [h.role for h in self.hosts]
        missing = [role for role in FLEET_ROLES if role not in roles]
        if missing:
            problems.append(f"no host has role {', '.join(missing)}; every role needs one")
        if roles.count("orchestrator") > 1:
            problems.append("more than one orchestrator; the fleet has a single QuestDB writer")
        if problems:
            raise ValueError("\n".join(problems))
        return self


class FleetStackConfig(Section):
    """Config of the ``vps`` stack (role ``vps-fleet``)."""

    role: Literal["vps-fleet"]
    """``vps-fleet``. Required."""
    production: bool = False
    """Protect the running services: ``pulumi destroy`` then refuses to take them down.
    Default false."""
    fleet: FleetConfig
    """Hosts, mesh and services. Required."""
    ssh_private_key: str
    """The deploy key (OpenSSH private key), a secret:
    ``pulumi config set --secret sshPrivateKey < key``."""
    grafana_admin_password: str
    """Grafana's admin password, a secret:
    ``pulumi config set --secret grafanaAdminPassword …``."""
    questdb_password: str
    """The password of QuestDB's PG-wire user (``trading``; the image's ``admin/quest``
    is replaced), a secret: ``pulumi config set --secret questdbPassword …``."""
    drift_digest_key: str = ""
    """The key of the .env digests the stack exports for ``ops drift`` (a secret: ``pulumi
    config set --secret driftDigestKey "$(openssl rand -hex 32)"``, and the same value
    as the drift workflow's ``DRIFT_DIGEST_KEY``). Unset: drift does not compare the
    .env."""
    backup_password: str
    """The password of every host's restic repository, a secret: ``pulumi config set
    --secret backupPassword …``. Losing it loses the backups: keep a copy apart."""
    alert_webhook_url: str = ""
    """The webhook alerts are posted to with ``fleet.alerting.receiver: webhook`` (an
    https:// URL with its token: Slack, Opsgenie, PagerDuty), a secret: ``pulumi config
    set --secret alertWebhookUrl …``. Required on a real deploy with that receiver."""
    alert_smtp_password: str = ""
    """The SMTP password with ``fleet.alerting.receiver: email``, a secret: ``pulumi
    config set --secret alertSmtpPassword …``. Required on a real deploy with that
    receiver."""
    registry_pull_token: str = ""
    """A read-only pull token for ``fleet.registry`` (a GitHub token with
    ``read:packages`` only, for ghcr.io), a secret: ``pulumi config set --secret
    registryPullToken …``. Required with ``fleet.registry``."""
    broker_credentials: dict[
        Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")],
        dict[Annotated[str, Field(pattern=r"^[a-z][A-Za-z0-9]*$")], str],
    ] = Field(default_factory=dict)
    """Credentials by broker or data provider, a secret object: each host's .env gets
    those of its role's brokers and providers only (``binance.apiKey`` becomes
    ``BINANCE_API_KEY``). Set each with ``pulumi config set --secret --path
    'brokerCredentials.binance.apiKey' …``. Every broker needs one on a real deploy."""

    @field_validator(
        "ssh_private_key",
        "grafana_admin_password",
        "questdb_password",
        "broker_credentials",
        "registry_pull_token",
        "drift_digest_key",
        "backup_password",
        "alert_webhook_url",
        "alert_smtp_password",
    )
    @classmethod
    def _stored_encrypted(cls, value: Any, info: ValidationInfo) -> Any:
        return must_be_secret(value, info)

    @property
    def alert_receiver_secret(self) -> str:
        """The secret of the configured receiver ("" when unset)."""
        if self.fleet.alerting.receiver == "webhook":
            return self.alert_webhook_url
        return self.alert_smtp_password

    def _receiver_secret_problems(self, real_deploy: bool) -> list[str]:
        receiver = self.fleet.alerting.receiver
        key, other = (
            ("alertWebhookUrl", "alertSmtpPassword")
            if receiver == "webhook"
            else ("alertSmtpPassword", "alertWebhookUrl")
        )
        problems = []
        if self.alert_smtp_password if receiver == "webhook" else self.alert_webhook_url:
            problems.append(
                f"@{other}: fleet.alerting.receiver is {receiver}, which does not use it; "
                f"remove it, or change the receiver"
            )
        secret = self.alert_receiver_secret
        if secret:
            problem = receiver_secret_problem(secret, receiver)
            if problem:
                problems.append(f"@{key}: {problem}")
        elif real_deploy:
            problems.append(
                f"@{key}: fleet.alerting.receiver {receiver} needs it, or no alert reaches "
                f"anyone; set it with `pulumi config set --secret {key} …`"
            )
        return problems

    @model_validator(mode="after")
    def _credentials_match_the_brokers(self, info: ValidationInfo) -> FleetStackConfig:
        fleet = self.fleet
        brokers = {name for role in fleet.roles.values() for name in role.brokers}
        providers = {name for role in fleet.roles.values() for name in role.data_providers}
        problems = [
            f"@brokerCredentials.{name}: no role trades with or collects from {name!r}; use one of "
            f"{', '.join(sorted(brokers | providers))}"
            for name in sorted(set(self.broker_credentials) - brokers - providers)
        ]
        if self.registry_pull_token and fleet.registry is None:
            problems.append(
                "@registryPullToken: there is no fleet.registry to log in to; set "
                "fleet.registry {server, username} or remove the token"
            )
        problems += self._receiver_secret_problems(
            bool((info.context or {}).get("check_artifacts"))
        )
        if (info.context or {}).get("check_artifacts"):
            if fleet.registry is not None and not self.registry_pull_token:
                problems.append(
                    f"@registryPullToken: the hosts cannot pull from {fleet.registry.server} "
                    "without it; set a read-only token with `pulumi config set --secret "
                    "registryPullToken …`"
                )
            problems += [
                f"@brokerCredentials.{name}: the {name} broker has no credentials; set "
                f"them with `pulumi config set --secret --path "
                f"'brokerCredentials.{name}.apiKey' …`"
                for name in sorted(brokers - set(self.broker_credentials))
            ]
        if problems:
            raise ValueError("\n".join(problems))
        return self
