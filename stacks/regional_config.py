"""The config of the regional stacks (``sg`` primary, ``eu`` fallback), by section.

Each section is its component's settings model plus what needs the stack: the
other stacks, the artifacts on disk, the role.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from components.edge import GeoEdgeSettings
from components.failover import FailoverSettings
from components.load_balancer import LoadBalancerSettings
from components.log_bucket import AccessLogSettings
from components.monitoring import MonitoringSettings
from components.network import NetworkSettings, private_cidr
from components.registry import BuildSettings, RegistrySettings
from components.service import ENV_NAME, ServiceSettings
from components.settings import Hostname, refuse_set
from components.waf import WafSettings
from stacks.project import (
    DEFAULT_EXCHANGE_ACCESS_REGIONS,
    PROJECT,
    PROJECT_ROOT,
    REGION_KEY,
    Section,
    must_be_secret,
)


class NetworkConfig(NetworkSettings, Section):
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


class RegistryConfig(RegistrySettings, Section):
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


class LoadBalancerConfig(LoadBalancerSettings, Section):
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
        if self.listener_arn is not None:
            return self._existing_listener_has_the_rest()
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

    def _existing_listener_has_the_rest(self) -> LoadBalancerConfig:
        """An existing listener brings its certificate and its ALB's access logs; its
        protocol is checked against ``originProtection`` when the plan looks it up."""
        refuse_set(
            self,
            ["certificate_arn", "create_certificate", "hosted_zone_id", "access_logs"],
            "has no effect with listenerArn (the existing listener has its own certificate, "
            "its ALB its own access logs); remove it",
        )
        return self


class ServiceConfig(ServiceSettings, Section):
    """``trading-infra:service``: the Fargate service running the API."""


class MonitoringConfig(MonitoringSettings, Section):
    """``trading-infra:monitoring``: alarms, their thresholds and who hears of them."""


class EdgeConfig(GeoEdgeSettings, Section):
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


class FailoverConfig(FailoverSettings, Section):
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


class RegionalStackConfig(Section):
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
        return must_be_secret(value, info)

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
