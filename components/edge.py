"""GeoEdge: one CloudFront distribution that routes each viewer to a region.

A viewer-request CloudFront Function (``edge/geo_router.js``) reads the viewer's
country, looks its region up in a KeyValueStore and picks that region's origin, or the
other one when the chosen region is marked unhealthy. Routes are KeyValueStore data:
changing one is a key write, never a republish.

A little over the ~500 lines aimed at: the settings, the function's rendering and the
distribution's origins are one routing design, tested together.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Literal, Required, TypedDict

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator, model_validator

from components.certificate import DnsValidatedCertificate
from components.countries import COMMON_MISTAKES, ISO_3166_ALPHA_2
from components.settings import Hostname, Settings
from components.tagging import component_tags

FUNCTION_SOURCE = Path(__file__).with_name("edge") / "geo_router.js"
"""The function's source, published as is but for its SETTINGS line."""

FUNCTION_SIZE_LIMIT = 10 * 1024
"""CloudFront Functions reject code above 10 KB."""

CACHING_DISABLED_POLICY = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
"""Managed cache policy CachingDisabled: an API's responses are never cached."""

ALL_VIEWER_AND_CLOUDFRONT_POLICY = "33f36d7e-f396-46d9-90e0-52428a34d9dc"
"""Managed origin request policy AllViewerAndCloudFrontHeaders-2022-06: forwards the
viewer's headers and CloudFront's, CloudFront-Viewer-Country among them (AllViewer
alone does not)."""

CLOUDFRONT_ZONE_ID = "Z2FDTNDATAQYW2"
"""Route 53 hosted zone id of every CloudFront distribution, for alias records."""

ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
API_PATH = "/api/*"

HEALTHY = "healthy"
HEALTH_KEY_PREFIX = "health:"
"""Keys ``health:<region>``: values owned by the failover automation, not by Pulumi."""

VPC_ORIGIN_TIMEOUT = "30m"
"""A VPC origin takes about 15 minutes to deploy and can exceed the provider's default
waiter (terraform-aws-modules/terraform-aws-cloudfront#163)."""
_SETTINGS_LINE = re.compile(r"^const SETTINGS = .*;$", re.MULTILINE)

Protection = Literal["vpc-origin", "public"]


def render_function(source: str, kvs_id: str, regions: list[str]) -> str:
    """The function as published: SETTINGS carries the store id and the region ids
    (primary first); the rest of the source is unchanged."""
    settings = json.dumps({"kvsId": kvs_id, "regions": regions})
    rendered, count = _SETTINGS_LINE.subn(lambda _: f"const SETTINGS = {settings};", source)
    if count != 1:
        raise ValueError("the function source must have exactly one `const SETTINGS = …;` line")
    if len(rendered.encode()) > FUNCTION_SIZE_LIMIT:
        raise ValueError(f"the rendered function exceeds CloudFront's {FUNCTION_SIZE_LIMIT} bytes")
    return rendered


def routing_table(
    routes: dict[str, str], default_region: str, drained: list[str]
) -> dict[str, str]:
    """The KeyValueStore keys Pulumi owns: routes, the default region, drained regions.

    Health keys are not here: they are created ``healthy`` once and then belong to the
    failover automation and operators.
    """
    table = {f"country:{country}": region for country, region in sorted(routes.items())}
    table["default"] = default_region
    table["drained"] = json.dumps(sorted(drained))
    return table


def get_failover_worst_case_seconds(connection_attempts: int, connection_timeout: int) -> int:
    """Seconds before a GET to an unreachable region is retried on the other one: every
    connection attempt to the first origin times out, then the origin group moves on.
    An origin answering 5xx fails over as soon as it answers."""
    return connection_attempts * connection_timeout


def vpc_origin_name(prefix: str, region: str, alb_arn: str, port: int, policy: str) -> str:
    """``<prefix>-<region>-<hash>``: a new name whenever the endpoint changes, so the
    replacement can exist beside the VPC origin it replaces."""
    config = json.dumps([alb_arn, port, policy])
    return f"{prefix}-{region}-{hashlib.sha256(config.encode()).hexdigest()[:8]}"


def kvs_id_from_arn(arn: str) -> str:
    """``arn:aws:cloudfront::123:key-value-store/<id>`` -> ``<id>`` (what cf.kvs() takes)."""
    return arn.rsplit("/", 1)[1]


class EdgeOrigin(TypedDict, total=False):
    """One region's load balancer as a CloudFront origin."""

    region: Required[str]
    """Region id, also the origin id (``sg``, ``eu``)."""
    protection: Required[Protection]
    """How the ALB is reached: ``vpc-origin`` or ``public``."""
    alb_arn: Required[pulumi.Input[str]]
    """The ALB (VPC origins point at it)."""
    domain_name: Required[pulumi.Input[str]]
    """Hostname CloudFront connects to (the ALB's DNS name, or the name its
    certificate covers)."""
    protocol: Required[pulumi.Input[str]]
    """``HTTP`` or ``HTTPS``: the ALB listener's protocol."""
    port: Required[pulumi.Input[int]]
    """The ALB listener's port."""
    origin_header_name: str
    """``public``: header carrying the secret. Default ``X-Origin-Verify``."""
    origin_secret: pulumi.Input[str]
    """``public``: the secret header value."""


class OriginTimeoutsSettings(Settings):
    """``trading-infra:edge.originTimeouts``: how long CloudFront waits for a region."""

    connection_attempts: Annotated[int, Field(ge=1, le=3)] = 1
    """Connection attempts per origin before failing over. Default 1."""
    connection_timeout_seconds: Annotated[int, Field(ge=1, le=10)] = 3
    """Seconds per connection attempt. Default 3."""
    read_timeout_seconds: Annotated[int, Field(ge=1, le=120)] = 30
    """Seconds CloudFront waits for a response (bounds a region that accepts connections
    but hangs). Default 30; above 60 needs a quota increase."""
    keepalive_timeout_seconds: Annotated[int, Field(ge=1, le=60)] = 5
    """Seconds an idle origin connection is kept. Default 5."""


class CustomDomainSettings(Settings):
    """``trading-infra:edge.customDomain``: serve the API on your own hostname."""

    name: Hostname
    """The hostname, e.g. ``api.example.com``. Required."""
    certificate_arn: (
        Annotated[str, Field(pattern=r"^arn:aws[\w-]*:acm:us-east-1:\d{12}:certificate/")] | None
    ) = None
    """An existing ACM certificate **in us-east-1** covering ``name``."""
    create_certificate: bool = False
    """Create the certificate in us-east-1 and validate it through ``hostedZoneId``."""
    hosted_zone_id: Annotated[str, Field(pattern=r"^Z[A-Z0-9]+$")] | None = None
    """Route 53 zone of ``name``: validation records and the alias records go there."""

    @model_validator(mode="after")
    def _one_certificate_setting(self) -> CustomDomainSettings:
        if (self.certificate_arn is None) == (not self.create_certificate):
            raise ValueError(
                "needs exactly one certificate setting: certificateArn (an existing us-east-1 "
                "certificate) or createCertificate: true"
            )
        if self.create_certificate and self.hosted_zone_id is None:
            raise ValueError("createCertificate needs hostedZoneId to validate the certificate")
        return self


class GeoEdgeSettings(Settings):
    """``trading-infra:edge``: the global CloudFront entry point (primary stack only)."""

    default_region: str
    """Region id serving countries without a route. Required."""
    routes: dict[str, str] = Field(default_factory=dict)
    """Country code (ISO 3166-1 alpha-2) -> region id."""
    drained_regions: list[str] = Field(default_factory=list)
    """Region ids routed around by configuration (a planned drain)."""
    price_class: Literal["PriceClass_All", "PriceClass_200", "PriceClass_100"] = "PriceClass_All"
    """CloudFront price class; ``PriceClass_All`` serves India and Singapore from
    local edges. Default ``PriceClass_All``."""
    origin_timeouts: OriginTimeoutsSettings = Field(default_factory=OriginTimeoutsSettings)
    """Origin connection and response timeouts."""
    origin_request_policy: Literal["all-viewer-and-cloudfront", "custom"] = (
        "all-viewer-and-cloudfront"
    )
    """``all-viewer-and-cloudfront``: the managed AllViewerAndCloudFrontHeaders-2022-06.
    ``custom``: CloudFront-Viewer-Country plus ``forwardedHeaders`` only."""
    forwarded_headers: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9-]+$")]] = Field(
        default_factory=list
    )
    """``custom`` policy: viewer headers forwarded besides CloudFront-Viewer-Country."""
    custom_domain: CustomDomainSettings | None = None
    """Your own hostname. Default: the distribution's cloudfront.net name."""
    minimum_protocol_version: Literal["TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025"] = (
        "TLSv1.2_2021"
    )
    """Viewer TLS floor with a custom domain. Default ``TLSv1.2_2021``."""
    web_acl_arn: Annotated[str, Field(pattern=r"^arn:aws[\w-]*:wafv2:us-east-1:")] | None = None
    """An existing WAFv2 web ACL (CLOUDFRONT scope) to attach instead of the one ``waf``
    creates. Default none."""

    @field_validator("routes")
    @classmethod
    def _iso_countries(cls, routes: dict[str, str]) -> dict[str, str]:
        unknown = sorted(code for code in routes if code not in ISO_3166_ALPHA_2)
        if unknown:
            hints = [
                f"{code} (did you mean {COMMON_MISTAKES[code]}?)"
                if COMMON_MISTAKES.get(code)
                else code
                for code in unknown
            ]
            raise ValueError(
                f"{', '.join(hints)}: not ISO 3166-1 alpha-2 country codes (upper case, "
                "two letters, as in CloudFront-Viewer-Country)"
            )
        return routes


class GeoEdge(pulumi.ComponentResource):
    """The global entry point: CloudFront, the routing function and its table."""

    distribution: aws.cloudfront.Distribution
    """The distribution."""
    domain_name: pulumi.Output[str]
    """Its cloudfront.net hostname."""
    key_value_store: aws.cloudfront.KeyValueStore
    """The routing table."""
    function: aws.cloudfront.Function
    """The viewer-request router."""
    vpc_origins: dict[str, aws.cloudfront.VpcOrigin]
    """VPC origins by region id."""
    routing_table: dict[str, str]
    """The Pulumi-owned keys of the store."""
    health_keys: dict[str, aws.cloudfront.KeyvaluestoreKey]
    """``health:<region>`` keys by region id (values owned by failover automation)."""
    get_failover_seconds: int
    """Worst case before a GET to an unreachable region moves to the other."""

    def __init__(
        self,
        name: str,
        settings: GeoEdgeSettings,
        *,
        resource_prefix: str,
        origins: list[EdgeOrigin],
        firewall_arn: pulumi.Input[str] | None = None,
        certificate_provider: aws.Provider | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """Wiring, apart from the settings: ``resource_prefix`` (of the account-unique
        names: function, store, policies), ``origins`` (the regions, primary first: the
        default behaviour's origin), ``firewall_arn`` (a web ACL the stack made, used
        when the settings bring none) and ``certificate_provider`` (a us-east-1
        provider, CloudFront's only certificate region; needed to create the custom
        domain's certificate)."""
        super().__init__("trading-infra:edge:GeoEdge", name, {}, opts)
        if settings.web_acl_arn is not None and firewall_arn is not None:
            raise ValueError(
                f"GeoEdge {name}: `web_acl_arn` is set and `firewall_arn` is given; "
                "attach one web ACL."
            )
        web_acl_arn = settings.web_acl_arn or firewall_arn
        if not origins:
            raise ValueError(f"GeoEdge {name}: at least one origin is required.")
        regions = [origin["region"] for origin in origins]
        unknown = {settings.default_region, *settings.routes.values()} - set(regions)
        if unknown:
            raise ValueError(
                f"GeoEdge {name}: routes name regions without an origin: {sorted(unknown)}."
            )
        custom_domain = settings.custom_domain
        # First, so that a custom domain missing its settings fails before any resource.
        certificate_arn, aliases = self._certificate(name, custom_domain, certificate_provider)
        tags = component_tags("edge")
        child = pulumi.ResourceOptions(parent=self)
        prefix = resource_prefix
        timeouts = settings.origin_timeouts

        self.key_value_store = aws.cloudfront.KeyValueStore(
            f"{name}-routes",
            name=f"{prefix}-routes",
            comment="Viewer country -> region, default region, region health",
            tags=tags,
            opts=child,
        )
        self.routing_table = routing_table(
            settings.routes, settings.default_region, settings.drained_regions
        )
        for key, value in self.routing_table.items():
            aws.cloudfront.KeyvaluestoreKey(
                f"{name}-key-{key.replace(':', '-').lower()}",
                key_value_store_arn=self.key_value_store.arn,
                key=key,
                value=value,
                opts=child,
            )
        self.health_keys = {
            region: aws.cloudfront.KeyvaluestoreKey(
                f"{name}-key-health-{region}",
                key_value_store_arn=self.key_value_store.arn,
                key=f"{HEALTH_KEY_PREFIX}{region}",
                value=HEALTHY,
                # Created healthy once; from then on the failover automation and
                # operators own the value, and `pulumi up` must not undo a failover.
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["value"]),
            )
            for region in regions
        }

        source = FUNCTION_SOURCE.read_text()
        self.function = aws.cloudfront.Function(
            f"{name}-router",
            name=f"{prefix}-geo-router",
            runtime="cloudfront-js-2.0",
            comment="Routes viewers to a region by country and region health",
            publish=True,
            code=self.key_value_store.arn.apply(
                lambda arn: render_function(source, kvs_id_from_arn(arn), regions)
            ),
            key_value_store_associations=[self.key_value_store.arn],
            tags=tags,
            opts=child,
        )

        self.vpc_origins = {}
        distribution_origins = [
            self._origin(name, prefix, origin, timeouts, tags) for origin in origins
        ]

        headers_policy = aws.cloudfront.ResponseHeadersPolicy(
            f"{name}-security-headers",
            name=f"{prefix}-security-headers",
            comment="HSTS, nosniff, frame and referrer policy for the API",
            security_headers_config=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigArgs(
                strict_transport_security=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigStrictTransportSecurityArgs(
                    access_control_max_age_sec=63072000,
                    include_subdomains=True,
                    preload=True,
                    override=True,
                ),
                content_type_options=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigContentTypeOptionsArgs(
                    override=True
                ),
                frame_options=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigFrameOptionsArgs(
                    frame_option="DENY", override=True
                ),
                referrer_policy=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigReferrerPolicyArgs(
                    referrer_policy="strict-origin-when-cross-origin", override=True
                ),
            ),
            opts=child,
        )
        origin_request_policy_id: pulumi.Input[str] = ALL_VIEWER_AND_CLOUDFRONT_POLICY
        if settings.origin_request_policy == "custom":
            forwarded: list[str] = sorted(
                {"CloudFront-Viewer-Country", *settings.forwarded_headers}
            )
            origin_request_policy_id = aws.cloudfront.OriginRequestPolicy(
                f"{name}-origin-request",
                name=f"{prefix}-origin-request",
                comment="Viewer country for the router, and the API's own headers",
                headers_config=aws.cloudfront.OriginRequestPolicyHeadersConfigArgs(
                    header_behavior="whitelist",
                    headers=aws.cloudfront.OriginRequestPolicyHeadersConfigHeadersArgs(
                        items=forwarded
                    ),
                ),
                cookies_config=aws.cloudfront.OriginRequestPolicyCookiesConfigArgs(
                    cookie_behavior="all"
                ),
                query_strings_config=aws.cloudfront.OriginRequestPolicyQueryStringsConfigArgs(
                    query_string_behavior="all"
                ),
                opts=child,
            ).id

        behaviour = {
            "allowed_methods": ALL_METHODS,
            "cached_methods": ["GET", "HEAD"],
            "target_origin_id": regions[0],
            "viewer_protocol_policy": "redirect-to-https",
            "cache_policy_id": CACHING_DISABLED_POLICY,
            "origin_request_policy_id": origin_request_policy_id,
            "response_headers_policy_id": headers_policy.id,
            "compress": True,
        }
        association = {"event_type": "viewer-request", "function_arn": self.function.arn}

        viewer_certificate = (
            aws.cloudfront.DistributionViewerCertificateArgs(
                acm_certificate_arn=certificate_arn,
                ssl_support_method="sni-only",
                minimum_protocol_version=settings.minimum_protocol_version,
            )
            if certificate_arn is not None
            else aws.cloudfront.DistributionViewerCertificateArgs(
                cloudfront_default_certificate=True
            )
        )

        self.distribution = aws.cloudfront.Distribution(
            f"{name}-distribution",
            enabled=True,
            comment=f"{prefix}: geo-routed trading API",
            is_ipv6_enabled=True,
            http_version="http2and3",
            price_class=settings.price_class,
            aliases=aliases,
            web_acl_id=web_acl_arn,
            # Standard logging is v2 (CloudWatch Logs delivery), made beside the
            # distribution by the stack: see components/log_bucket.py.
            origins=distribution_origins,
            default_cache_behavior=aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                **behaviour,
                function_associations=[
                    aws.cloudfront.DistributionDefaultCacheBehaviorFunctionAssociationArgs(
                        **association
                    )
                ],
            ),
            ordered_cache_behaviors=[
                aws.cloudfront.DistributionOrderedCacheBehaviorArgs(
                    path_pattern=API_PATH,
                    **behaviour,
                    function_associations=[
                        aws.cloudfront.DistributionOrderedCacheBehaviorFunctionAssociationArgs(
                            **association
                        )
                    ],
                )
            ],
            restrictions=aws.cloudfront.DistributionRestrictionsArgs(
                geo_restriction=aws.cloudfront.DistributionRestrictionsGeoRestrictionArgs(
                    restriction_type="none"
                )
            ),
            viewer_certificate=viewer_certificate,
            tags=tags,
            opts=child,
        )
        self.domain_name = self.distribution.domain_name
        if custom_domain is not None and custom_domain.hosted_zone_id is not None:
            for record_type in ("A", "AAAA"):
                aws.route53.Record(
                    f"{name}-alias-{record_type.lower()}",
                    zone_id=custom_domain.hosted_zone_id,
                    name=custom_domain.name,
                    type=record_type,
                    aliases=[
                        aws.route53.RecordAliasArgs(
                            name=self.distribution.domain_name,
                            zone_id=CLOUDFRONT_ZONE_ID,
                            evaluate_target_health=False,
                        )
                    ],
                    opts=child,
                )

        self.get_failover_seconds = get_failover_worst_case_seconds(
            timeouts.connection_attempts, timeouts.connection_timeout_seconds
        )
        self.register_outputs(
            {
                "distribution_id": self.distribution.id,
                "domain_name": self.domain_name,
                "key_value_store_arn": self.key_value_store.arn,
            }
        )

    def _origin(
        self,
        name: str,
        prefix: str,
        origin: EdgeOrigin,
        timeouts: OriginTimeoutsSettings,
        tags: dict[str, str],
    ) -> aws.cloudfront.DistributionOriginArgs:
        region = origin["region"]
        protocol_policy = pulumi.Output.from_input(origin["protocol"]).apply(
            lambda protocol: "https-only" if protocol == "HTTPS" else "http-only"
        )
        read_timeout = timeouts.read_timeout_seconds
        keepalive = timeouts.keepalive_timeout_seconds
        common = {
            "origin_id": region,
            "domain_name": origin["domain_name"],
            "connection_attempts": timeouts.connection_attempts,
            "connection_timeout": timeouts.connection_timeout_seconds,
        }
        if origin["protection"] == "vpc-origin":
            endpoint = pulumi.Output.all(origin["alb_arn"], origin["port"], protocol_policy)
            vpc_origin = aws.cloudfront.VpcOrigin(
                f"{name}-vpc-origin-{region}",
                vpc_origin_endpoint_config=aws.cloudfront.VpcOriginVpcOriginEndpointConfigArgs(
                    name=endpoint.apply(lambda v: vpc_origin_name(prefix, region, *v)),
                    arn=origin["alb_arn"],
                    http_port=origin["port"],
                    https_port=origin["port"],
                    origin_protocol_policy=protocol_policy,
                    origin_ssl_protocols=aws.cloudfront.VpcOriginVpcOriginEndpointConfigOriginSslProtocolsArgs(
                        items=["TLSv1.2"], quantity=1
                    ),
                ),
                tags=tags,
                # CloudFront refuses to update a VPC origin a distribution uses (409,
                # "currently associated with one or more distributions";
                # hashicorp/terraform-provider-aws#40905). Any endpoint change therefore
                # replaces it, the new one first under a new name (the name carries the
                # config's hash), then the distribution moves, then the old one goes.
                opts=pulumi.ResourceOptions(
                    parent=self,
                    replace_on_changes=["vpcOriginEndpointConfig"],
                    delete_before_replace=False,
                    custom_timeouts=pulumi.CustomTimeouts(
                        create=VPC_ORIGIN_TIMEOUT,
                        update=VPC_ORIGIN_TIMEOUT,
                        delete=VPC_ORIGIN_TIMEOUT,
                    ),
                ),
            )
            self.vpc_origins[region] = vpc_origin
            return aws.cloudfront.DistributionOriginArgs(
                **common,
                vpc_origin_config=aws.cloudfront.DistributionOriginVpcOriginConfigArgs(
                    vpc_origin_id=vpc_origin.id,
                    origin_read_timeout=read_timeout,
                    origin_keepalive_timeout=keepalive,
                ),
            )
        secret = origin.get("origin_secret")
        if secret is None:
            raise ValueError(f"origin {region}: `public` protection needs `origin_secret`.")
        return aws.cloudfront.DistributionOriginArgs(
            **common,
            custom_headers=[
                aws.cloudfront.DistributionOriginCustomHeaderArgs(
                    name=origin.get("origin_header_name", "X-Origin-Verify"),
                    value=pulumi.Output.secret(secret),
                )
            ],
            custom_origin_config=aws.cloudfront.DistributionOriginCustomOriginConfigArgs(
                http_port=80,
                https_port=origin["port"],
                origin_protocol_policy="https-only",
                origin_ssl_protocols=["TLSv1.2"],
                origin_read_timeout=read_timeout,
                origin_keepalive_timeout=keepalive,
            ),
        )

    def _certificate(
        self,
        name: str,
        custom_domain: CustomDomainSettings | None,
        provider: aws.Provider | None,
    ) -> tuple[pulumi.Input[str] | None, list[str] | None]:
        if custom_domain is None:
            return None, None
        if custom_domain.certificate_arn is not None:
            return custom_domain.certificate_arn, [custom_domain.name]
        zone_id = custom_domain.hosted_zone_id
        if provider is None or zone_id is None:
            raise ValueError(
                f"GeoEdge {name}: a custom domain without `certificate_arn` needs "
                "`certificate_provider` (us-east-1) and `hosted_zone_id`."
            )
        certificate = DnsValidatedCertificate(
            f"{name}-certificate",
            domain_name=custom_domain.name,
            zone_id=zone_id,
            component="edge",
            # Route 53 is global; the certificate (and so its children) is CloudFront's,
            # in us-east-1.
            opts=pulumi.ResourceOptions(parent=self, providers=[provider]),
        )
        return certificate.arn, [custom_domain.name]
