"""LoadBalancer: an ALB that only CloudFront can reach, and the service's target groups."""

from __future__ import annotations

from typing import Annotated, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator, model_validator

from components.settings import Settings, refuse_set
from components.tagging import component_tags

OriginProtection = Literal["vpc-origin", "public"]

CLOUDFRONT_PREFIX_LIST = "com.amazonaws.global.cloudfront.origin-facing"
"""The AWS-managed prefix list of CloudFront's origin-facing addresses."""

PRODUCTION_RULE_PRIORITY = 10

LISTENER_ARN = (
    r"^arn:aws[\w-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:listener/app/[A-Za-z0-9-]{1,32}"
    r"/[0-9a-f]+/[0-9a-f]+$"
)
"""An Application Load Balancer listener's ARN (``listener/app/<name>/<lb-id>/<id>``)."""

OWN_BALANCER_SETTINGS = (
    "ssl_policy",
    "idle_timeout_seconds",
    "desync_mitigation_mode",
    "deletion_protection",
    "access_logs_prefix",
    "listener_port",
)
"""Settings of the ALB and listener this component creates: an existing listener's
balancer keeps its owner's, so setting one of them with ``listenerArn`` is an error."""


class HealthCheckSettings(Settings):
    """``trading-infra:loadBalancer.healthCheck``: the target group's health check."""

    path: str = "/health"
    """HTTP path probed on each task. Default ``/health``."""
    interval_seconds: Annotated[int, Field(ge=5, le=300)] = 10
    """Seconds between probes. Default 10."""
    timeout_seconds: Annotated[int, Field(ge=2, le=120)] = 5
    """Seconds before a probe fails; less than the interval. Default 5."""
    healthy_threshold: Annotated[int, Field(ge=2, le=10)] = 2
    """Consecutive successes before a target is healthy. Default 2."""
    unhealthy_threshold: Annotated[int, Field(ge=2, le=10)] = 2
    """Consecutive failures before a target is unhealthy. Default 2."""

    @field_validator("path")
    @classmethod
    def _path_is_absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must start with '/'; write '/{value}'")
        return value

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> HealthCheckSettings:
        if self.timeout_seconds >= self.interval_seconds:
            raise ValueError(
                f"timeoutSeconds {self.timeout_seconds} must be less than intervalSeconds "
                f"{self.interval_seconds}"
            )
        return self


class LoadBalancerSettings(Settings):
    """``trading-infra:loadBalancer``: the ALB and how only CloudFront can reach it."""

    origin_protection: OriginProtection = "vpc-origin"
    """``vpc-origin``: internal ALB reached through a CloudFront VPC origin. ``public``:
    internet-facing ALB over HTTPS, CloudFront prefix list plus a secret header
    (``originSecret``). Default ``vpc-origin``."""
    ssl_policy: str = "ELBSecurityPolicy-TLS13-1-2-2021-06"
    """TLS policy of the HTTPS listener. Default the recommended TLS 1.3/1.2 policy."""
    idle_timeout_seconds: Annotated[int, Field(ge=1, le=4000)] = 60
    """Connection idle timeout. Default 60."""
    desync_mitigation_mode: Literal["defensive", "strictest"] = "defensive"
    """HTTP desync mitigation (FSBP ELB.12). Default ``defensive``."""
    deletion_protection: bool = True
    """Deletion protection (FSBP ELB.6). Default true; turn off only for throwaway stacks."""
    access_logs_prefix: str = "alb"
    """Key prefix of the access logs. Default ``alb``."""
    deregistration_delay_seconds: Annotated[int, Field(ge=0, le=3600)] = 30
    """Seconds a draining target keeps its connections. Default 30 (fast deploys)."""
    listener_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """Port CloudFront connects to. Default 443 with a certificate, else 80."""
    origin_header_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]+$")] = "X-Origin-Verify"
    """Header carrying ``originSecret`` in ``public`` mode. Default ``X-Origin-Verify``."""
    health_check: HealthCheckSettings = Field(default_factory=HealthCheckSettings)
    """Target group health check."""
    listener_arn: Annotated[str, Field(pattern=LISTENER_ARN)] | None = None
    """Bring your own: an existing ALB listener to put the production rule on, instead
    of creating an ALB, its security group and listener. The ALB must be in the stack's
    VPC, internal for ``vpc-origin`` and listening on HTTPS for ``public``; its security
    groups must let it reach the tasks on the container port. Its access logs, deletion
    protection, TLS policy and desync mitigation stay its owner's. Default: create them."""
    production_rule_priority: Annotated[int, Field(ge=1, le=50000)] = PRODUCTION_RULE_PRIORITY
    """Priority of the production rule on the listener; on a shared ``listenerArn``, one
    no other rule uses. Default 10."""

    @model_validator(mode="after")
    def _existing_listener_keeps_its_own_settings(self) -> LoadBalancerSettings:
        if self.listener_arn is None:
            return self
        refuse_set(
            self,
            OWN_BALANCER_SETTINGS,
            "has no effect with listenerArn (the existing ALB keeps its own); remove it, "
            "or drop listenerArn to create the ALB",
        )
        return self


class LoadBalancer(pulumi.ComponentResource):
    """An Application Load Balancer that only CloudFront can reach.

    Traffic enters through one *production listener rule* (ECS's native blue/green
    deployments shift its weights); anything the rule does not match gets a fixed 403.
    In ``public`` mode the rule requires the secret origin header, so requests that
    reach the ALB without passing through this distribution are refused even from
    CloudFront's address ranges.
    """

    alb: aws.lb.LoadBalancer | None
    """The load balancer; none on an existing listener."""
    arn: pulumi.Output[str]
    """Its ARN."""
    arn_suffix: pulumi.Output[str]
    """Its ARN suffix, the ``LoadBalancer`` dimension of CloudWatch metrics."""
    dns_name: pulumi.Output[str]
    """Its DNS name, the CloudFront origin domain."""
    zone_id: pulumi.Output[str]
    """Its Route 53 hosted zone, for alias records."""
    security_group: aws.ec2.SecurityGroup | None
    """The ALB's security group; none on an existing listener."""
    security_group_ids: pulumi.Output[list[str]]
    """The ALB's security groups: the service admits traffic from them only."""
    target_group: aws.lb.TargetGroup
    """The production target group."""
    alternate_target_group: aws.lb.TargetGroup | None
    """The second target group of blue/green-style deployments, if any."""
    listener: aws.lb.Listener | None
    """The listener CloudFront connects to; none when it is an existing one."""
    listener_arn: pulumi.Output[str]
    """That listener's ARN."""
    production_rule: aws.lb.ListenerRule
    """The rule forwarding to the target group(s)."""
    target_group_arn_suffixes: list[pulumi.Output[str]]
    """CloudWatch ``TargetGroup`` dimensions of every target group, production first."""
    listener_port: int
    """The port CloudFront connects to."""
    listener_protocol: Literal["HTTP", "HTTPS"]
    """The protocol CloudFront speaks to the ALB."""

    def __init__(
        self,
        name: str,
        settings: LoadBalancerSettings,
        *,
        vpc_id: pulumi.Input[str],
        vpc_cidr: pulumi.Input[str],
        subnet_ids: pulumi.Input[list[str]],
        target_port: int,
        certificate_arn: pulumi.Input[str] | None = None,
        origin_secret: pulumi.Input[str] | None = None,
        access_logs_bucket: pulumi.Input[str] | None = None,
        alternate_target_group: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """Wiring, apart from the settings: ``vpc_id``/``vpc_cidr`` (the ALB sends
        traffic only to targets inside the VPC), ``subnet_ids`` (private ones for
        ``vpc-origin``, public ones for ``public``), ``target_port`` (the container
        port), ``certificate_arn`` (makes the listener HTTPS; required for ``public``),
        ``origin_secret`` (the origin header's value; required for ``public``),
        ``access_logs_bucket`` (an existing bucket; none: no access logs) and
        ``alternate_target_group`` (a second target group for ECS blue/green, canary
        and linear deployments, which then own the production rule's weights)."""
        super().__init__("trading-infra:load_balancer:LoadBalancer", name, {}, opts)
        mode = settings.origin_protection
        existing = settings.listener_arn
        if mode == "public" and (
            origin_secret is None or (certificate_arn is None and existing is None)
        ):
            raise ValueError(
                f"LoadBalancer {name}: `public` origin protection needs `origin_secret`, and "
                "`certificate_arn` unless the listener is an existing one."
            )
        tags = component_tags("load_balancer")
        target_vpc_id = vpc_id
        if existing is None:
            self._create_balancer(
                name,
                settings,
                vpc_id=vpc_id,
                vpc_cidr=vpc_cidr,
                subnet_ids=subnet_ids,
                target_port=target_port,
                certificate_arn=certificate_arn,
                access_logs_bucket=access_logs_bucket,
                tags=tags,
            )
        else:
            target_vpc_id = self._existing_balancer(name, existing, mode, vpc_id)

        def target_group(resource_name: str) -> aws.lb.TargetGroup:
            return self._target_group(resource_name, settings, target_vpc_id, target_port, tags)

        self.target_group = target_group(f"{name}-tg")
        self.alternate_target_group = (
            target_group(f"{name}-tg-alt") if alternate_target_group else None
        )

        if origin_secret is not None and mode == "public":
            condition = aws.lb.ListenerRuleConditionArgs(
                http_header=aws.lb.ListenerRuleConditionHttpHeaderArgs(
                    http_header_name=settings.origin_header_name,
                    values=[pulumi.Output.secret(origin_secret)],
                )
            )
        else:
            condition = aws.lb.ListenerRuleConditionArgs(
                path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=["/*"])
            )
        weighted = [
            aws.lb.ListenerRuleActionForwardTargetGroupArgs(arn=self.target_group.arn, weight=100)
        ]
        if self.alternate_target_group is not None:
            weighted.append(
                aws.lb.ListenerRuleActionForwardTargetGroupArgs(
                    arn=self.alternate_target_group.arn, weight=0
                )
            )
        self.production_rule = aws.lb.ListenerRule(
            f"{name}-production-rule",
            listener_arn=self.listener_arn,
            priority=settings.production_rule_priority,
            conditions=[condition],
            actions=[
                aws.lb.ListenerRuleActionArgs(
                    type="forward",
                    forward=aws.lb.ListenerRuleActionForwardArgs(target_groups=weighted),
                )
            ],
            tags=tags,
            # ECS shifts the weights between the two target groups during a deployment;
            # Pulumi must not shift them back on the next `up`.
            opts=pulumi.ResourceOptions(
                parent=self,
                ignore_changes=["actions"] if self.alternate_target_group is not None else None,
            ),
        )

        self.target_group_arn_suffixes = [self.target_group.arn_suffix]
        if self.alternate_target_group is not None:
            self.target_group_arn_suffixes.append(self.alternate_target_group.arn_suffix)
        self.register_outputs(
            {"arn": self.arn, "dns_name": self.dns_name, "target_group_arn": self.target_group.arn}
        )

    def _create_balancer(
        self,
        name: str,
        settings: LoadBalancerSettings,
        *,
        vpc_id: pulumi.Input[str],
        vpc_cidr: pulumi.Input[str],
        subnet_ids: pulumi.Input[list[str]],
        target_port: int,
        certificate_arn: pulumi.Input[str] | None,
        access_logs_bucket: pulumi.Input[str] | None,
        tags: dict[str, str],
    ) -> None:
        """The ALB, its security group (CloudFront's origin-facing ranges in, the
        tasks out) and the listener, whose default action refuses what no rule takes."""
        mode = settings.origin_protection
        child = pulumi.ResourceOptions(parent=self)
        self.listener_protocol = "HTTPS" if certificate_arn is not None else "HTTP"
        self.listener_port = settings.listener_port or (
            443 if self.listener_protocol == "HTTPS" else 80
        )

        cloudfront = aws.ec2.get_managed_prefix_list(
            name=CLOUDFRONT_PREFIX_LIST, opts=pulumi.InvokeOptions(parent=self)
        )
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=vpc_id,
            description="ALB: from CloudFront's origin-facing ranges only",
            # One rule: each reference to the CloudFront origin-facing prefix list counts
            # as 55 rules against the default quota of 60 per group (VPC User Guide,
            # "AWS-managed prefix list weight"), so a second port would not fit.
            # CloudFront speaks only the listener's protocol (HTTPS to a public origin).
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp",
                    from_port=self.listener_port,
                    to_port=self.listener_port,
                    prefix_list_ids=[cloudfront.id],
                    description=f"CloudFront origin-facing, port {self.listener_port}",
                )
            ],
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp",
                    from_port=target_port,
                    to_port=target_port,
                    cidr_blocks=[vpc_cidr],
                    description="To the service's tasks",
                )
            ],
            tags={**tags, "Name": f"{name}-alb"},
            opts=child,
        )

        access_logs = None
        if access_logs_bucket is not None:
            access_logs = aws.lb.LoadBalancerAccessLogsArgs(
                bucket=access_logs_bucket, prefix=settings.access_logs_prefix, enabled=True
            )
        self.alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=mode == "vpc-origin",
            subnets=subnet_ids,
            security_groups=[self.security_group.id],
            drop_invalid_header_fields=True,
            desync_mitigation_mode=settings.desync_mitigation_mode,
            idle_timeout=settings.idle_timeout_seconds,
            enable_deletion_protection=settings.deletion_protection,
            enable_http2=True,
            access_logs=access_logs,
            tags=tags,
            opts=child,
        )
        self.arn = self.alb.arn
        self.arn_suffix = self.alb.arn_suffix
        self.dns_name = self.alb.dns_name
        self.zone_id = self.alb.zone_id
        self.security_group_ids = pulumi.Output.all(self.security_group.id).apply(list)

        self.listener = aws.lb.Listener(
            f"{name}-listener",
            load_balancer_arn=self.alb.arn,
            port=self.listener_port,
            protocol=self.listener_protocol,
            certificate_arn=certificate_arn,
            ssl_policy=(settings.ssl_policy if self.listener_protocol == "HTTPS" else None),
            default_actions=[_forbidden()],
            tags=tags,
            opts=child,
        )
        self.listener_arn = self.listener.arn

    def _existing_balancer(
        self, name: str, listener_arn: str, mode: OriginProtection, vpc_id: pulumi.Input[str]
    ) -> pulumi.Output[str]:
        """Bring your own: read the listener and its ALB (two lookups at plan time), and
        refuse one that cannot serve ``mode`` before anything is put on it. Returns the
        stack's VPC id, checked to be the ALB's when it is known."""
        self.alb = self.security_group = self.listener = None
        lookup = pulumi.InvokeOptions(parent=self)
        listener = aws.lb.get_listener(arn=listener_arn, opts=lookup)
        balancer = aws.lb.get_load_balancer(arn=listener.load_balancer_arn, opts=lookup)
        problems = []
        if mode == "vpc-origin" and not balancer.internal:
            problems.append("is internet-facing; a CloudFront VPC origin needs an internal ALB")
        if mode == "public" and listener.protocol != "HTTPS":
            problems.append(
                f"listens on {listener.protocol}; `public` origin protection sends its secret "
                "header, so it needs an HTTPS listener"
            )
        if problems:
            raise ValueError(
                f"LoadBalancer {name}: the listener {listener_arn} " + "; ".join(problems)
            )
        self.listener_protocol = "HTTPS" if listener.protocol == "HTTPS" else "HTTP"
        self.listener_port = listener.port
        self.listener_arn = pulumi.Output.from_input(listener.arn)
        self.arn = pulumi.Output.from_input(balancer.arn)
        self.arn_suffix = pulumi.Output.from_input(balancer.arn_suffix)
        self.dns_name = pulumi.Output.from_input(balancer.dns_name)
        self.zone_id = pulumi.Output.from_input(balancer.zone_id)
        self.security_group_ids = pulumi.Output.from_input(list(balancer.security_groups))

        # A listener rule forwards only to target groups in its ALB's VPC. The stack's VPC
        # id is known at deploy time only: the target groups wait for this check.
        def same_vpc(stack_vpc: str) -> str:
            if stack_vpc != balancer.vpc_id:
                raise ValueError(
                    f"LoadBalancer {name}: the listener {listener_arn} belongs to an ALB in "
                    f"{balancer.vpc_id}, not the stack's VPC {stack_vpc}; its rules cannot "
                    "forward to this stack's target groups"
                )
            return stack_vpc

        return pulumi.Output.from_input(vpc_id).apply(same_vpc)

    def _target_group(
        self,
        resource_name: str,
        settings: LoadBalancerSettings,
        vpc_id: pulumi.Input[str],
        target_port: int,
        tags: dict[str, str],
    ) -> aws.lb.TargetGroup:
        check = settings.health_check
        return aws.lb.TargetGroup(
            resource_name,
            vpc_id=vpc_id,
            target_type="ip",
            port=target_port,
            protocol="HTTP",
            deregistration_delay=settings.deregistration_delay_seconds,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True,
                path=check.path,
                protocol="HTTP",
                matcher="200",
                interval=check.interval_seconds,
                timeout=check.timeout_seconds,
                healthy_threshold=check.healthy_threshold,
                unhealthy_threshold=check.unhealthy_threshold,
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )


def _forbidden() -> aws.lb.ListenerDefaultActionArgs:
    return aws.lb.ListenerDefaultActionArgs(
        type="fixed-response",
        fixed_response=aws.lb.ListenerDefaultActionFixedResponseArgs(
            content_type="text/plain", message_body="Forbidden", status_code="403"
        ),
    )
