"""The regional stacks: composition only.

``fallback``: Network -> ContainerRegistry -> LoadBalancer -> Monitoring ->
FargateService. Monitoring comes before the service because the service's deployments
roll back on its alarms; the alarms only need the names the stack gives the cluster and
service. ``primary``: the same backend, plus the GeoEdge in front of both regions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.certificate import DnsValidatedCertificate
from components.edge import EdgeOrigin, GeoEdge
from components.failover import RegionFailover, failover_budget
from components.load_balancer import LoadBalancer
from components.log_bucket import CloudFrontAccessLogs, LogBucket
from components.monitoring import Monitoring
from components.network import Network
from components.registry import ContainerRegistry
from components.service import FargateService
from components.waf import EdgeFirewall
from stacks import outputs
from stacks.config import PROJECT, FailoverConfig, RegionalStackConfig
from stacks.project import default_tags


def regional_provider(config: RegionalStackConfig) -> aws.Provider:
    """The explicit provider every resource of the stack is created through."""
    stack = pulumi.get_stack()
    return aws.Provider(
        f"aws-{config.region}",
        region=config.region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=default_tags(stack, config.region)),
    )


def _network(config: RegionalStackConfig, opts: pulumi.ResourceOptions) -> Network:
    return Network("network", config.network, protect=config.production, opts=opts)


def _registry(config: RegionalStackConfig, opts: pulumi.ResourceOptions) -> ContainerRegistry:
    return ContainerRegistry("registry", config.registry, protect=config.production, opts=opts)


def _load_balancer(
    config: RegionalStackConfig, network: Network, opts: pulumi.ResourceOptions
) -> LoadBalancer:
    lb = config.load_balancer
    public = lb.origin_protection == "public"
    certificate_arn: pulumi.Input[str] | None = lb.certificate_arn
    if lb.create_certificate and lb.origin_domain_name and lb.hosted_zone_id:
        # ACM certificates are regional: the listener's is made in the ALB's region.
        certificate_arn = DnsValidatedCertificate(
            "alb-certificate",
            domain_name=lb.origin_domain_name,
            zone_id=lb.hosted_zone_id,
            component="load_balancer",
            opts=opts,
        ).arn
    access_logs_bucket: pulumi.Input[str] | None = None
    if lb.listener_arn is None and config.logs_on(lb.access_logs):
        access_logs_bucket = lb.access_logs.bucket or (
            LogBucket(
                "alb-logs",
                bucket_prefix=f"{PROJECT}-{pulumi.get_stack()}-alb-logs-",
                writer="elb",
                region=config.region,
                expiration_days=lb.access_logs.expiration_days,
                protect=config.production,
                opts=opts,
            ).name
        )
    load_balancer = LoadBalancer(
        "alb",
        lb,
        vpc_id=network.vpc_id,
        vpc_cidr=config.network.cidr,
        subnet_ids=network.public_subnet_ids if public else network.private_subnet_ids,
        target_port=config.service.container_port,
        certificate_arn=certificate_arn,
        origin_secret=(
            pulumi.Output.secret(config.origin_secret) if config.origin_secret else None
        ),
        access_logs_bucket=access_logs_bucket,
        alternate_target_group=config.service.deployment.strategy != "ROLLING",
        opts=opts,
    )
    if load_balancer.listener_protocol == "HTTPS" and lb.origin_domain_name is None:
        # Only an existing listener gets here (the config requires the name with a
        # certificate): its protocol is known once the plan has looked it up.
        raise ValueError(
            f"{PROJECT}:loadBalancer.originDomainName: the listener {lb.listener_arn} is "
            "HTTPS, and CloudFront checks its certificate against the origin's hostname, "
            "which the ALB's own DNS name never matches; set it to a name the certificate "
            "covers"
        )
    if lb.create_certificate and lb.origin_domain_name and lb.hosted_zone_id:
        # The origin's hostname resolves to the ALB (the name its certificate covers).
        aws.route53.Record(
            "alb-origin-alias",
            zone_id=lb.hosted_zone_id,
            name=lb.origin_domain_name,
            type="A",
            aliases=[
                aws.route53.RecordAliasArgs(
                    name=load_balancer.dns_name,
                    zone_id=load_balancer.zone_id,
                    evaluate_target_health=False,
                )
            ],
            opts=opts,
        )
    return load_balancer


def _service(
    config: RegionalStackConfig,
    cluster_name: str,
    network: Network,
    registry: ContainerRegistry,
    load_balancer: LoadBalancer,
    monitoring: Monitoring,
    opts: pulumi.ResourceOptions,
) -> FargateService:
    build = config.registry.image_build
    alternate = load_balancer.alternate_target_group
    return FargateService(
        "api",
        config.service,
        cluster_name=cluster_name,
        image=registry.image_ref,
        repository_arn=registry.repository_arn if config.registry.image_uri is None else None,
        vpc_id=network.vpc_id,
        subnet_ids=network.private_subnet_ids,
        load_balancer_security_group_ids=load_balancer.security_group_ids,
        target_group_arn=load_balancer.target_group.arn,
        listener_rule=load_balancer.production_rule,
        secrets={key: pulumi.Output.secret(value) for key, value in config.service_secrets.items()},
        health_check_path=config.load_balancer.health_check.path,
        cpu_architecture="ARM64" if build and build.platform == "linux/arm64" else "X86_64",
        alternate_target_group_arn=alternate.arn if alternate is not None else None,
        production_listener_rule_arn=(
            load_balancer.production_rule.arn if alternate is not None else None
        ),
        rollback_alarm_names=monitoring.deployment_alarm_names,
        # Request-count scaling is bound to one target group; blue/green-style
        # deployments swap which group is live, so it only applies to ROLLING.
        request_count_label=(
            pulumi.Output.concat(
                load_balancer.arn_suffix, "/", load_balancer.target_group.arn_suffix
            )
            if alternate is None
            else None
        ),
        protect=config.production,
        opts=opts,
    )


@dataclass(frozen=True)
class RegionalBackend:
    """What the primary stack builds the edge and failover from."""

    provider: aws.Provider
    load_balancer: LoadBalancer
    monitoring: Monitoring
    origin_domain: pulumi.Output[str]


def build_regional(config: RegionalStackConfig) -> RegionalBackend:
    """The region's backend: the API on Fargate behind an ALB only CloudFront reaches."""
    stack = pulumi.get_stack()
    provider = regional_provider(config)
    opts = pulumi.ResourceOptions(providers=[provider])
    cluster_name = config.service.existing_cluster_name or f"{PROJECT}-{stack}"
    service_name = config.service.name

    network = _network(config, opts)
    registry = _registry(config, opts)
    load_balancer = _load_balancer(config, network, opts)
    monitoring = Monitoring(
        "monitoring",
        config.monitoring,
        alarm_prefix=f"{service_name}-{stack}",
        load_balancer_arn_suffix=load_balancer.arn_suffix,
        target_group_arn_suffixes=load_balancer.target_group_arn_suffixes,
        cluster_name=cluster_name,
        service_name=service_name,
        opts=opts,
    )
    service = _service(
        config,
        cluster_name,
        network,
        registry,
        load_balancer,
        monitoring,
        opts,
    )

    pulumi.export(outputs.REGION, config.region)
    pulumi.export(outputs.VPC_ID, network.vpc_id)
    pulumi.export(outputs.VPC_CIDR, config.network.cidr)
    pulumi.export(outputs.PUBLIC_SUBNET_IDS, network.public_subnet_ids)
    pulumi.export(outputs.PRIVATE_SUBNET_IDS, network.private_subnet_ids)
    pulumi.export(outputs.REPOSITORY_URL, registry.repository_url)
    pulumi.export(outputs.IMAGE_REF, registry.image_ref)
    pulumi.export(outputs.ALB_ARN, load_balancer.arn)
    pulumi.export(outputs.ALB_DNS_NAME, load_balancer.dns_name)
    pulumi.export(outputs.ALB_SECURITY_GROUP_ID, load_balancer.security_group_ids[0])
    pulumi.export(outputs.ORIGIN_PROTECTION, config.load_balancer.origin_protection)
    pulumi.export(outputs.ORIGIN_PROTOCOL, load_balancer.listener_protocol)
    pulumi.export(outputs.ORIGIN_PORT, load_balancer.listener_port)
    pulumi.export(outputs.TARGET_GROUP_ARN, load_balancer.target_group.arn)
    pulumi.export(outputs.ALB_ARN_SUFFIX, load_balancer.arn_suffix)
    pulumi.export(outputs.TARGET_GROUP_ARN_SUFFIXES, load_balancer.target_group_arn_suffixes)
    pulumi.export(outputs.CLUSTER_NAME, service.cluster_name)
    pulumi.export(outputs.SERVICE_NAME, service.service_name)
    pulumi.export(outputs.ALARM_NAMES, monitoring.alarm_names)
    pulumi.export(outputs.ALARM_TOPIC_ARN, monitoring.topic.arn)

    lb = config.load_balancer
    origin_domain = pulumi.Output.from_input(lb.origin_domain_name or load_balancer.dns_name)
    pulumi.export(outputs.ORIGIN_DOMAIN, origin_domain)
    pulumi.export(outputs.ORIGIN_HEADER_NAME, lb.origin_header_name)
    if config.origin_secret:
        pulumi.export(outputs.ORIGIN_SECRET, pulumi.Output.secret(config.origin_secret))
    return RegionalBackend(provider, load_balancer, monitoring, origin_domain)


def _fallback_origin(
    config: RegionalStackConfig, fallback: pulumi.StackReference, stack_name: str
) -> EdgeOrigin:
    """The fallback region's origin, read from its stack's outputs (its region id is its
    stack name).

    Both regions must protect their ALB the same way: the check runs on the data path
    of the origin's domain, so a mismatch fails the preview instead of being ignored.
    """
    protection = config.load_balancer.origin_protection

    def same_protection(values: list) -> str:
        theirs, domain = values
        if theirs != protection:
            raise ValueError(
                f"{stack_name} protects its ALB with {theirs!r}, this stack with "
                f"{protection!r}; set the same loadBalancer.originProtection in both"
            )
        return domain

    origin = EdgeOrigin(
        region=stack_name,
        protection=protection,
        alb_arn=fallback.require_output(outputs.ALB_ARN),
        domain_name=pulumi.Output.all(
            fallback.require_output(outputs.ORIGIN_PROTECTION),
            fallback.require_output(outputs.ORIGIN_DOMAIN),
        ).apply(same_protection),
        protocol=fallback.require_output(outputs.ORIGIN_PROTOCOL),
        port=fallback.require_output(outputs.ORIGIN_PORT),
        origin_header_name=config.load_balancer.origin_header_name,
    )
    if protection == "public":
        origin["origin_secret"] = fallback.require_output(outputs.ORIGIN_SECRET)
    return origin


def fallback_reference(stack: str) -> str:
    """``<organization>/<project>/<stack>``: the deploying stack's own organization and
    project, right on Pulumi Cloud and on self-managed backends (whose organization is
    ``organization``)."""
    return f"{pulumi.get_organization()}/{pulumi.get_project()}/{stack}"


def _us_east_1(stack: str) -> aws.Provider:
    """The us-east-1 provider of CloudFront's global resources (certificates, the web
    ACL, the edge's logs)."""
    return aws.Provider(
        "aws-us-east-1",
        region="us-east-1",
        default_tags=aws.ProviderDefaultTagsArgs(tags=default_tags(stack, "us-east-1")),
    )


def build_primary(config: RegionalStackConfig) -> None:
    """The primary region's backend and the global edge in front of both regions."""
    edge = config.edge
    if edge is None:
        raise ValueError("the primary stack needs edge config")  # config validation ensures it
    stack = pulumi.get_stack()
    backend = build_regional(config)
    lb = config.load_balancer
    primary = EdgeOrigin(
        region=stack,
        protection=lb.origin_protection,
        alb_arn=backend.load_balancer.arn,
        domain_name=backend.origin_domain,
        protocol=backend.load_balancer.listener_protocol,
        port=backend.load_balancer.listener_port,
        origin_header_name=lb.origin_header_name,
    )
    if config.origin_secret:
        primary["origin_secret"] = pulumi.Output.secret(config.origin_secret)
    origins = [primary]
    fallback: pulumi.StackReference | None = None
    if edge.fallback_stack:
        fallback = pulumi.StackReference(fallback_reference(edge.fallback_stack))
        origins.append(_fallback_origin(config, fallback, edge.fallback_stack))
    else:
        pulumi.log.warn("edge: no fallbackStack configured; the edge has the primary origin only")

    domain = edge.custom_domain
    edge_logs = config.logs_on(edge.access_logs)
    needs_us_east_1 = config.creates_waf or edge_logs or (domain and domain.create_certificate)
    us_east_1 = _us_east_1(stack) if needs_us_east_1 else None
    firewall_arn = None
    if edge.web_acl_arn is None and us_east_1 is not None and config.creates_waf:
        firewall_arn = EdgeFirewall(
            "waf",
            edge.waf,
            prefix=f"{PROJECT}-{stack}",
            provider=us_east_1,
            protect_logs=config.production,
        ).arn
    geo_edge = GeoEdge(
        "edge",
        edge,
        resource_prefix=f"{PROJECT}-{stack}",
        origins=origins,
        firewall_arn=firewall_arn,
        # CloudFront takes certificates from us-east-1 only.
        certificate_provider=us_east_1 if domain and domain.create_certificate else None,
        opts=pulumi.ResourceOptions(providers=[backend.provider]),
    )
    if edge_logs and us_east_1 is not None:
        existing = edge.access_logs.bucket
        CloudFrontAccessLogs(
            "edge-delivery",
            distribution_arn=geo_edge.distribution.arn,
            bucket_arn=f"arn:aws:s3:::{existing}"
            if existing
            else LogBucket(
                "edge-logs",
                bucket_prefix=f"{PROJECT}-{stack}-edge-logs-",
                writer="cloudwatch-logs",
                region="us-east-1",
                expiration_days=edge.access_logs.expiration_days,
                protect=config.production,
                opts=pulumi.ResourceOptions(provider=us_east_1),
            ).arn,
            prefix=f"{PROJECT}-{stack}-edge",
            provider=us_east_1,
        )

    pulumi.export(outputs.DISTRIBUTION_ID, geo_edge.distribution.id)
    pulumi.export(outputs.EDGE_DOMAIN_NAME, geo_edge.domain_name)
    pulumi.export(outputs.KEY_VALUE_STORE_ARN, geo_edge.key_value_store.arn)
    pulumi.export(outputs.EDGE_REGIONS, [origin["region"] for origin in origins])
    pulumi.export(outputs.ROUTING_TABLE, geo_edge.routing_table)
    pulumi.export(outputs.GET_FAILOVER_SECONDS, geo_edge.get_failover_seconds)

    failover = config.failover or FailoverConfig()
    if failover.enabled:
        _failover(config, failover, backend, geo_edge, fallback)


def _failover(
    config: RegionalStackConfig,
    failover: FailoverConfig,
    backend: RegionalBackend,
    geo_edge: GeoEdge,
    fallback: pulumi.StackReference | None,
) -> None:
    """One RegionFailover per origin, each in its own region, all writing the edge's
    store. The primary stack owns them because it owns the store: the deploy order
    stays eu -> sg, with no reference back from eu to sg."""
    stack = pulumi.get_stack()

    def region_failover(
        region: str,
        load_balancer_arn_suffix: pulumi.Input[str],
        target_group_arn_suffixes: pulumi.Input[Sequence[pulumi.Input[str]]],
        alarm_topic_arn: pulumi.Input[str],
        provider: aws.Provider,
    ) -> RegionFailover:
        return RegionFailover(
            f"failover-{region}",
            failover,
            region=region,
            name_prefix=f"{PROJECT}-{region}",
            key_value_store_arn=geo_edge.key_value_store.arn,
            load_balancer_arn_suffix=load_balancer_arn_suffix,
            target_group_arn_suffixes=target_group_arn_suffixes,
            alarm_topic_arn=alarm_topic_arn,
            log_retention_days=config.service.log_retention_days,
            protect=config.production,
            opts=pulumi.ResourceOptions(providers=[provider]),
        )

    region_failover(
        stack,
        backend.load_balancer.arn_suffix,
        backend.load_balancer.target_group_arn_suffixes,
        backend.monitoring.topic.arn,
        backend.provider,
    )
    edge = config.edge
    if fallback is not None and edge is not None and edge.fallback_region:
        region = edge.fallback_region
        # The fallback's alarms, rules and function live in the fallback's AWS region,
        # next to the metrics they watch.
        provider = aws.Provider(
            f"aws-{region}",
            region=fallback.require_output(outputs.REGION),
            default_tags=aws.ProviderDefaultTagsArgs(
                tags=fallback.require_output(outputs.REGION).apply(
                    lambda aws_region: default_tags(stack, aws_region)
                )
            ),
        )
        region_failover(
            region,
            fallback.require_output(outputs.ALB_ARN_SUFFIX),
            fallback.require_output(outputs.TARGET_GROUP_ARN_SUFFIXES),
            fallback.require_output(outputs.ALARM_TOPIC_ARN),
            provider,
        )
    budget = failover_budget(
        failover.period_seconds,
        failover.evaluation_periods,
        failover.lambda_timeout_seconds,
        geo_edge.get_failover_seconds,
    )
    pulumi.export(outputs.FAILOVER_BUDGET, budget.as_output())
