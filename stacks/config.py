"""Typed, validated stack configuration.

Every stack reads its config once, here, before any resource is registered. Values are
validated as a whole and every problem is reported at once, each naming the full config
key (``trading-infra:network.cidr``) and how to fix it.

Pulumi hands the program every config value as a string: scalars as written, objects
and lists as JSON. Top-level values are decoded as JSON where they parse, so
``production: true`` arrives as a boolean while ``role: primary`` stays a string;
inside objects, YAML types are kept and checked strictly (``"3"`` is not a number).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import pulumi
import yaml
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from components.edge import GeoEdgeSettings
from components.failover import FailoverSettings
from components.hosts import (
    FLEET_ROLES,
    HostSettings,
    JumpHostSettings,
    PullRegistrySettings,
)
from components.load_balancer import LoadBalancerSettings
from components.log_bucket import AccessLogSettings
from components.monitoring import MonitoringSettings
from components.network import NetworkSettings, private_cidr
from components.registry import BuildSettings, RegistrySettings
from components.service import ENV_NAME, ServiceSettings
from components.settings import Hostname, Settings, camel
from components.waf import WafSettings

PROJECT = "trading-infra"
"""The Pulumi project name, and so the namespace of the program's own config keys."""

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""Relative paths in config (build contexts) are resolved against the project root."""

REGION_KEY = "aws:region"


DEFAULT_EXCHANGE_ACCESS_REGIONS = ("ap-southeast-1", "eu-central-1")
"""Regions from which Binance.com accepts API requests (it refuses us-east-1)."""


class ConfigError(pulumi.RunError):
    """All of a stack's config problems, raised before any resource is registered.

    A ``RunError`` so that ``pulumi up`` prints the messages without a traceback.
    """

    def __init__(self, stack: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"stack {stack!r} has {len(self.problems)} config error(s):\n{lines}")


class _Section(Settings):
    """Config object conventions (``components.settings.Settings``)."""


class NetworkConfig(NetworkSettings, _Section):
    """``trading-infra:network``: the region's VPC."""

    peer_cidrs: list[str] = Field(default_factory=list)
    """The other regions' VPC CIDRs; this VPC must not overlap them (future peering)."""

    @field_validator("peer_cidrs")
    @classmethod
    def _peers_are_networks(cls, values: list[str]) -> list[str]:
        return [private_cidr(value, min_prefix=8, max_prefix=28) for value in values]

    @model_validator(mode="after")
    def _disjoint_from_peers(self) -> NetworkConfig:
        vpc = ipaddress.IPv4Network(self.cidr)
        for peer in self.peer_cidrs:
            if vpc.overlaps(ipaddress.IPv4Network(peer)):
                raise ValueError(
                    f"cidr {self.cidr} overlaps peer network {peer}; choose a VPC range "
                    "disjoint from the other regions' so they can be peered"
                )
        return self


class RegistryConfig(RegistrySettings, _Section):
    """``trading-infra:registry``: the ECR repository and the image the service runs."""

    @field_validator("build")
    @classmethod
    def _paths_exist(cls, build: BuildSettings | None) -> BuildSettings | None:
        """The build context is read from this checkout: it must be there."""
        if build is None:
            return None
        context = PROJECT_ROOT / build.context
        if not context.is_dir():
            raise ValueError(
                f"context {build.context!r} is not a directory under the project root; "
                "point it at the folder holding the Dockerfile"
            )
        if not (context / build.dockerfile).is_file():
            raise ValueError(
                f"dockerfile {build.dockerfile!r} does not exist in {build.context!r}; "
                "give its path relative to the context"
            )
        return build


Port = Annotated[int, Field(ge=1, le=65535)]


class LoadBalancerConfig(LoadBalancerSettings, _Section):
    """``trading-infra:loadBalancer``: the ALB and how only CloudFront can reach it."""

    certificate_arn: Annotated[str, Field(pattern=r"^arn:aws[\w-]*:acm:")] | None = None
    """ACM certificate for an HTTPS listener; required with ``public``, optional with
    ``vpc-origin`` (which otherwise listens on HTTP inside the VPC)."""
    access_logs: AccessLogSettings = Field(default_factory=AccessLogSettings)
    """Access logs (FSBP ELB.5): on by default in production, into a stack-owned bucket
    in the stack's region."""
    create_certificate: bool = False
    """Create the listener's certificate for ``originDomainName`` in the stack's region,
    validated through ``hostedZoneId``, and point ``originDomainName`` at the ALB there:
    CloudFront then reaches the ALB over HTTPS (the VPC origin ``https-only``). Default
    false: a certificate from ``certificateArn``, or none."""
    hosted_zone_id: Annotated[str, Field(pattern=r"^Z[A-Z0-9]+$")] | None = None
    """The Route 53 zone of ``originDomainName``; required with ``createCertificate``."""
    origin_domain_name: Hostname | None = None
    """Hostname CloudFront uses for this origin when the listener is HTTPS: it must be
    covered by the certificate and resolve to the ALB (``createCertificate`` makes the
    alias record). Required with a certificate; without one the ALB's DNS name is used
    (plain HTTP inside the VPC: for stacks without a custom domain only)."""

    @model_validator(mode="after")
    def _public_needs_tls(self) -> LoadBalancerConfig:
        if self.origin_protection == "public" and self.certificate_arn is None:
            raise ValueError(
                "originProtection 'public' needs certificateArn (an ACM certificate in the "
                "stack's region) for its HTTPS listener; set it or use 'vpc-origin'"
            )
        if self.certificate_arn is not None and self.create_certificate:
            raise ValueError("@createCertificate: certificateArn is set too; keep one of the two")
        if self.create_certificate and self.hosted_zone_id is None:
            raise ValueError(
                "@hostedZoneId: createCertificate validates the certificate and "
                "points originDomainName at the ALB in this Route 53 zone; set it"
            )
        has_certificate = self.certificate_arn is not None or self.create_certificate
        if has_certificate and self.origin_domain_name is None:
            raise ValueError(
                "@originDomainName: a certificate needs it: CloudFront checks the "
                "ALB's certificate against the origin's hostname, which the ALB's own DNS name "
                "never matches"
            )
        return self


class ServiceConfig(ServiceSettings, _Section):
    """``trading-infra:service``: the Fargate service running the API."""


class MonitoringConfig(MonitoringSettings, _Section):
    """``trading-infra:monitoring``: alarms, their thresholds and who hears of them."""


class EdgeConfig(GeoEdgeSettings, _Section):
    """``trading-infra:edge``: the global CloudFront entry point (primary stack only)."""

    fallback_stack: str | None = None
    """The fallback stack's name (``eu``), also its region id. The reference is
    ``<organization>/<project>/<name>`` with the organization and project of the
    deploying stack (``pulumi.get_organization()``), so it resolves on Pulumi Cloud and
    self-managed backends alike. Unset: the edge serves the primary origin alone."""
    waf: WafSettings = Field(default_factory=WafSettings)
    """The web ACL the stack creates (rate limits, AWS managed rules, request logs):
    on by default in production."""
    access_logs: AccessLogSettings = Field(default_factory=AccessLogSettings)
    """CloudFront standard logging (v2, through CloudWatch Logs delivery, FSBP
    CloudFront.5): on by default in production, into a stack-owned bucket in
    us-east-1."""

    @property
    def fallback_region(self) -> str | None:
        """The fallback's region id: its stack name."""
        return self.fallback_stack

    @field_validator("fallback_stack")
    @classmethod
    def _stack_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if "/" in value:
            raise ValueError(
                f"{value!r}: give the stack name only (e.g. 'eu'); the organization and "
                "project are the deploying stack's own"
            )
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", value):
            raise ValueError(f"{value!r} is not a stack name (lower case, digits, . _ -)")
        context = info.context or {}
        if context.get("role", "primary") == "primary" and value == context.get("stack"):
            raise ValueError(f"{value!r} is this stack; name the fallback stack")
        regions = context.get("stack_regions", {})
        own, theirs = context.get("region"), regions.get(value)
        if own is not None and theirs == own:
            raise ValueError(
                f"stack {value!r} is in {own} too (its Pulumi.{value}.yaml); a fallback in "
                "the primary's region fails with it. Deploy the fallback to another region"
            )
        return value

    @model_validator(mode="after")
    def _regions_are_origins(self, info: ValidationInfo) -> EdgeConfig:
        context = info.context or {}
        if context.get("role", "primary") != "primary":
            raise ValueError(
                f"is set but role is {context['role']!r}; only the primary stack has an edge. "
                "Remove it"
            )
        stack = context.get("stack")
        origins = [region for region in (stack, self.fallback_region) if region]
        if not origins:
            return self
        wrong = (
            [f"defaultRegion {self.default_region!r}"] if self.default_region not in origins else []
        )
        wrong += [
            f"routes.{country} {region!r}"
            for country, region in sorted(self.routes.items())
            if region not in origins
        ]
        wrong += [f"drainedRegions {r!r}" for r in self.drained_regions if r not in origins]
        if wrong:
            raise ValueError(
                f"{', '.join(wrong)}: not one of the edge's origins ({', '.join(origins)}); "
                "route to this stack's name or to the fallbackStack's"
            )
        return self


class FailoverConfig(FailoverSettings, _Section):
    """``trading-infra:failover``: automatic region failover for every HTTP method
    (primary stack only: the edge owns the routing table)."""

    enabled: bool = True
    """Create the alarms, EventBridge rules and Lambdas. Default true."""

    @field_validator("layer_path")
    @classmethod
    def _layer_built(cls, value: str, info: ValidationInfo) -> str:
        if (info.context or {}).get("check_artifacts") and not Path(value).is_dir():
            raise ValueError(
                f"{value!r} does not exist; build the failover Lambda's layer with "
                "`make lambda-layer` before `pulumi preview` or `pulumi up`"
            )
        return value

    @model_validator(mode="after")
    def _primary_only(self, info: ValidationInfo) -> FailoverConfig:
        role = (info.context or {}).get("role", "primary")
        if role != "primary":
            raise ValueError(
                f"is set but role is {role!r}; failover is wired by the primary stack, which "
                "owns the edge. Remove it"
            )
        return self


class RegionalStackConfig(_Section):
    """Config of a regional stack (``sg`` primary, ``eu`` fallback)."""

    role: Literal["primary", "fallback"]
    """The stack's role: ``primary`` (backend + edge) or ``fallback`` (backend). Required."""
    production: bool = False
    """Production stacks protect stateful resources from deletion. Default false."""
    exchange_access_regions: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXCHANGE_ACCESS_REGIONS)
    )
    """Regions the exchanges accept API calls from. Default ap-southeast-1, eu-central-1."""
    region: str = Field(alias=REGION_KEY)
    """The stack's AWS region (``aws:region``); must be in ``exchangeAccessRegions``."""
    network: NetworkConfig
    """The VPC. Required (its ``cidr`` has no default)."""
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    """The ECR repository and image. Default: build ``app/`` into ``trading-api``."""
    load_balancer: LoadBalancerConfig = Field(default_factory=LoadBalancerConfig)
    """The ALB and its origin protection. Default ``vpc-origin``."""
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    """The Fargate service."""
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    """Alarms, dashboard and notifications."""
    service_secrets: dict[Annotated[str, Field(pattern=ENV_NAME)], str] = Field(
        default_factory=dict
    )
    """Secret environment variables of the service, stored in Secrets Manager. Set each
    with ``pulumi config set --secret --path 'serviceSecrets.NAME' VALUE``."""
    origin_secret: str | None = None
    """Value of the origin header in ``public`` mode. Set with ``pulumi config set
    --secret originSecret VALUE``."""
    edge: EdgeConfig | None = None
    """The global CloudFront edge: required in the primary stack, absent elsewhere."""
    failover: FailoverConfig | None = None
    """Region failover (primary only). Default: enabled with the values above."""

    @field_validator("region")
    @classmethod
    def _region_reaches_exchanges(cls, value: str, info: ValidationInfo) -> str:
        allowed = info.data.get("exchange_access_regions")
        if allowed is not None and value not in allowed:
            raise ValueError(
                f"{value} is not in {PROJECT}:exchangeAccessRegions ({', '.join(allowed)}); "
                "the exchanges refuse API requests from it (Binance.com refuses us-east-1). "
                "Deploy to an allowed region"
            )
        return value

    @field_validator("service_secrets", "origin_secret")
    @classmethod
    def _stored_encrypted(cls, value: Any, info: ValidationInfo) -> Any:
        return _must_be_secret(value, info)

    @model_validator(mode="after")
    def _primary_has_an_edge(self) -> RegionalStackConfig:
        if self.role == "primary" and self.edge is None:
            raise ValueError(
                f"role 'primary' needs {PROJECT}:edge (at least defaultRegion): the primary "
                "stack owns the global CloudFront entry point"
            )
        return self

    def logs_on(self, settings: AccessLogSettings) -> bool:
        """Whether access logs of ``settings`` are written (default: in production)."""
        return settings.enabled if settings.enabled is not None else self.production

    @property
    def creates_waf(self) -> bool:
        """Whether the stack creates the edge's web ACL (an existing one wins)."""
        edge = self.edge
        if edge is None or edge.web_acl_arn:
            return False
        return edge.waf.enabled if edge.waf.enabled is not None else self.production

    @model_validator(mode="after")
    def _one_web_acl(self) -> RegionalStackConfig:
        if self.edge is not None and self.edge.web_acl_arn and self.edge.waf.enabled:
            raise ValueError(
                "@edge.waf.enabled: edge.webAclArn attaches an existing web ACL; remove one "
                "of the two"
            )
        return self

    @model_validator(mode="after")
    def _public_origin_has_a_secret(self) -> RegionalStackConfig:
        if self.load_balancer.origin_protection == "public" and not self.origin_secret:
            raise ValueError(
                f"loadBalancer.originProtection is 'public' but {PROJECT}:originSecret is not "
                "set; set it with `pulumi config set --secret originSecret VALUE`"
            )
        overlap = sorted(set(self.service_secrets) & set(self.service.environment))
        if overlap:
            raise ValueError(
                f"{', '.join(overlap)} is both in service.environment and serviceSecrets; "
                "keep it in serviceSecrets only"
            )
        return self


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


class FleetImagesConfig(_Section):
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


class FleetConfig(_Section):
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
    futures_brokers: list[str] = Field(
        default_factory=lambda: ["tradestation", "interactive-brokers", "bybit-futures"]
    )
    """Brokers the futures node trades with."""
    futures_data_providers: list[str] = Field(default_factory=lambda: ["cme", "cboe"])
    """Market data the futures node collects."""
    equities_crypto_brokers: list[str] = Field(
        default_factory=lambda: ["alpaca", "binance", "coinbase"]
    )
    """Brokers the equities/crypto node trades with."""
    equities_crypto_data_providers: list[str] = Field(
        default_factory=lambda: ["polygon", "alpaca", "tiingo"]
    )
    """Market data the equities/crypto node collects."""
    health_timeout_seconds: Annotated[int, Field(ge=10, le=1800)] = 180
    """How long a deploy waits for every service to be healthy. Default 180."""

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
        roles = [h.role for h in self.hosts]
        missing = [role for role in FLEET_ROLES if role not in roles]
        if missing:
            problems.append(f"no host has role {', '.join(missing)}; every role needs one")
        if roles.count("orchestrator") > 1:
            problems.append("more than one orchestrator; the fleet has a single QuestDB writer")
        if problems:
            raise ValueError("\n".join(problems))
        return self


class FleetStackConfig(_Section):
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
    )
    @classmethod
    def _stored_encrypted(cls, value: Any, info: ValidationInfo) -> Any:
        return _must_be_secret(value, info)

    @model_validator(mode="after")
    def _credentials_match_the_brokers(self, info: ValidationInfo) -> FleetStackConfig:
        fleet = self.fleet
        brokers = {*fleet.futures_brokers, *fleet.equities_crypto_brokers}
        providers = {*fleet.futures_data_providers, *fleet.equities_crypto_data_providers}
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


StackConfig = RegionalStackConfig | FleetStackConfig
"""The typed config of any stack."""

MODELS: dict[str, type[RegionalStackConfig] | type[FleetStackConfig]] = {
    "primary": RegionalStackConfig,
    "fallback": RegionalStackConfig,
    "vps-fleet": FleetStackConfig,
}
"""The config model of each stack role."""

REQUIRED_SECRETS: dict[str, tuple[str, ...]] = {
    "vps-fleet": ("sshPrivateKey", "grafanaAdminPassword", "questdbPassword")
}
"""Secret keys a role cannot do without; never committed, so offline plans stand in a
placeholder for them."""


def _must_be_secret(value: Any, info: ValidationInfo) -> Any:
    secret_keys = (info.context or {}).get("secret_keys", ())
    key = f"{PROJECT}:{camel(str(info.field_name))}"
    if value and key not in secret_keys:
        raise ValueError(
            "is stored in plain text; remove it from the stack file and set it with "
            "`pulumi config set --secret`"
        )
    return value


def _decode(value: Any) -> Any:
    """Decode a top-level value the way Pulumi serialised it (JSON where it parses)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _key_for(loc: tuple[int | str, ...]) -> str:
    """``("network", "cidr")`` -> ``trading-infra:network.cidr``; lists as ``[i]``."""
    if not loc:
        return PROJECT
    head, *rest = loc
    key = str(head) if str(head) == REGION_KEY else f"{PROJECT}:{head}"
    for part in rest:
        key += f"[{part}]" if isinstance(part, int) else f".{part}"
    return key


def _keys_at(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The valid keys of the object at ``loc`` inside ``model``, for typo suggestions."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = next(
            (f for name, f in current.model_fields.items() if part in (name, f.alias)), None
        )
        if field is None:
            return []
        current = _model_in(field.annotation)
        if current is None:
            return []
    return [field.alias or name for name, field in current.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    loc = error["loc"]
    # Errors of a model validator carry the model's own location; name the object.
    key = _key_for(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        name = str(loc[-1])
        candidates = _keys_at(model, loc[:-1])
        if len(loc) == 1:
            candidates = [f"{PROJECT}:{c}" if c != REGION_KEY else c for c in candidates]
            name = key
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(candidates)}"
        return f"{key}: unknown key; {hint}"
    if kind == "missing":
        return f"{key}: required but not set; set it in the stack's Pulumi.<stack>.yaml"
    message = error["msg"].removeprefix("Value error, ")
    if kind.endswith("_type") or kind == "literal_error":
        return f"{key}: {message} (got {error['input']!r})"
    return "\n".join(_at(key, line) for line in message.split("\n"))


def _at(key: str, problem: str) -> str:
    """A model validator's problem at ``key``; ``@hosts[2].name: ...`` names the
    offending key inside the object."""
    if problem.startswith("@"):
        where, _, problem = problem[1:].partition(": ")
        return f"{key}{':' if key == PROJECT else '.'}{where}: {problem}"
    return f"{key}: {problem}"


def local_stack_regions(root: Path) -> dict[str, str]:
    """Stack name -> ``aws:region`` of every ``Pulumi.<stack>.yaml`` in ``root``: lets the
    edge's config see where its fallback stack deploys."""
    regions = {}
    for path in sorted(root.glob("Pulumi.*.yaml")):
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            continue
        region = (document.get("config") or {}).get(REGION_KEY)
        if isinstance(region, str):
            regions[path.name[len("Pulumi.") : -len(".yaml")]] = region
    return regions


def parse_stack_config(
    raw: Mapping[str, Any],
    stack: str,
    secret_keys: Collection[str] = (),
    *,
    stack_regions: Mapping[str, str] | None = None,
    check_artifacts: bool = False,
) -> StackConfig:
    """Validate a stack's raw config (``{"trading-infra:network": "{...}"}``).

    Keys of other namespaces than the project's are provider settings and pass through,
    except ``aws:region``, the stack's region. ``stack_regions`` (stack -> region, from
    the project's stack files) lets cross-stack settings be checked; ``check_artifacts``
    requires built artifacts (the Lambda layer) to exist, as a real deploy does (offline
    plans do not package them). Raises ``ConfigError`` listing every problem.
    """
    document: dict[str, Any] = {}
    for key, value in raw.items():
        namespace, _, name = key.partition(":")
        if key == REGION_KEY:
            document[REGION_KEY] = value
        elif namespace == PROJECT:
            document[name] = _decode(value)
    role = document.get("role")
    model = MODELS.get(role) if isinstance(role, str) else None
    if model is None:
        got = "not set" if role is None else f"{role!r}"
        raise ConfigError(
            stack,
            [f"{PROJECT}:role: {got}; set one of {', '.join(MODELS)} in Pulumi.{stack}.yaml"],
        )
    try:
        return model.model_validate(
            document,
            context={
                "secret_keys": set(secret_keys),
                "stack": stack,
                "role": role,
                "region": document.get(REGION_KEY),
                "stack_regions": dict(stack_regions or {}),
                "check_artifacts": check_artifacts,
            },
        )
    except ValidationError as error:
        problems = sorted(
            {line for detail in error.errors() for line in _describe(detail, model).split("\n")}
        )
        raise ConfigError(stack, problems) from None


def load_stack_config() -> StackConfig:
    """Read and validate the running stack's config from the Pulumi engine.

    ``pulumi.Config`` reads one key at a time and cannot list the keys that were set, so
    a misspelt key would go unnoticed; the runtime's config map has them all.
    """
    from pulumi.runtime import config as runtime_config

    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = {*runtime_config.get_config_secret_keys_env(), *runtime_config._SECRET_KEYS.get()}
    return parse_stack_config(
        raw,
        pulumi.get_stack(),
        secret_keys,
        stack_regions=local_stack_regions(Path.cwd()),
        check_artifacts=not _mocked(),
    )


def _mocked() -> bool:
    """Whether Pulumi's mock runtime runs the program (``ops plan``, tests): it packages
    no archive, so built artifacts need not exist; a real preview or up does."""
    from pulumi.runtime import mocks, settings

    monitor = settings.SETTINGS.monitor  # pyright: ignore[reportAttributeAccessIssue]
    return isinstance(monitor, mocks.MockMonitor)
