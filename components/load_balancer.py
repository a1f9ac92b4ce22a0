"""LoadBalancer: an ALB that only CloudFront can reach, and the service's target groups."""

from __future__ import annotations

from typing import Literal, Required, TypedDict

import pulumi
import pulumi_aws as aws

from components.tagging import component_tags

OriginProtection = Literal["vpc-origin", "public"]

CLOUDFRONT_PREFIX_LIST = "com.amazonaws.global.cloudfront.origin-facing"
"""The AWS-managed prefix list of CloudFront's origin-facing addresses."""

PRODUCTION_RULE_PRIORITY = 10


class HealthCheckArgs(TypedDict, total=False):
    """Target group health check. Every field has a default."""

    path: str
    """Probed path. Default ``/health``."""
    interval_seconds: int
    """Default 10."""
    timeout_seconds: int
    """Default 5."""
    healthy_threshold: int
    """Default 2."""
    unhealthy_threshold: int
    """Default 2."""


class LoadBalancerArgs(TypedDict, total=False):
    """Arguments of ``LoadBalancer``."""

    vpc_id: Required[pulumi.Input[str]]
    """The network's VPC."""
    vpc_cidr: Required[pulumi.Input[str]]
    """The VPC range: the ALB sends traffic only to targets inside it."""
    subnet_ids: Required[pulumi.Input[list[str]]]
    """Subnets in every AZ: private ones for ``vpc-origin``, public ones for ``public``."""
    target_port: Required[int]
    """The container port the target groups forward to."""
    origin_protection: OriginProtection
    """``vpc-origin`` (internal ALB) or ``public`` (internet-facing, HTTPS, prefix list
    and secret header). Default ``vpc-origin``."""
    certificate_arn: pulumi.Input[str]
    """ACM certificate: makes the listener HTTPS. Required for ``public``."""
    ssl_policy: str
    """TLS policy of the HTTPS listener. Default ``ELBSecurityPolicy-TLS13-1-2-2021-06``."""
    origin_header_name: str
    """Header CloudFront adds in ``public`` mode. Default ``X-Origin-Verify``."""
    origin_secret: pulumi.Input[str]
    """Its value (a secret). Required for ``public``."""
    listener_port: int
    """Listener port. Default 443 with a certificate, else 80."""
    idle_timeout_seconds: int
    """Default 60."""
    desync_mitigation_mode: Literal["defensive", "strictest"]
    """Default ``defensive``."""
    deletion_protection: bool
    """Default True."""
    access_logs_bucket: pulumi.Input[str]
    """Existing S3 bucket for access logs. Default: no access logs."""
    access_logs_prefix: str
    """Default ``alb``."""
    deregistration_delay_seconds: int
    """Default 30."""
    health_check: HealthCheckArgs
    """Default: ``/health`` every 10 s."""
    alternate_target_group: bool
    """Create a second target group for ECS blue/green, canary and linear deployments,
    and leave the production rule's weights to ECS. Default False."""


class LoadBalancer(pulumi.ComponentResource):
    """An Application Load Balancer that only CloudFront can reach.

    Traffic enters through one *production listener rule* (ECS's native blue/green
    deployments shift its weights); anything the rule does not match gets a fixed 403.
    In ``public`` mode the rule requires the secret origin header, so requests that
    reach the ALB without passing through this distribution are refused even from
    CloudFront's address ranges.
    """

    alb: aws.lb.LoadBalancer
    """The load balancer."""
    arn: pulumi.Output[str]
    """Its ARN."""
    arn_suffix: pulumi.Output[str]
    """Its ARN suffix, the ``LoadBalancer`` dimension of CloudWatch metrics."""
    dns_name: pulumi.Output[str]
    """Its DNS name, the CloudFront origin domain."""
    security_group: aws.ec2.SecurityGroup
    """The ALB's security group: the service admits traffic from it only."""
    target_group: aws.lb.TargetGroup
    """The production target group."""
    alternate_target_group: aws.lb.TargetGroup | None
    """The second target group of blue/green-style deployments, if any."""
    listener: aws.lb.Listener
    """The listener CloudFront connects to."""
    production_rule: aws.lb.ListenerRule
    """The rule forwarding to the target group(s)."""
    target_group_arn_suffixes: list[pulumi.Output[str]]
    """CloudWatch ``TargetGroup`` dimensions of every target group, production first."""
    listener_port: int
    """The port CloudFront connects to."""
    listener_protocol: Literal["HTTP", "HTTPS"]
    """The protocol CloudFront speaks to the ALB."""

    def __init__(
        self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("trading-infra:load_balancer:LoadBalancer", name, {}, opts)
        mode: OriginProtection = args.get("origin_protection", "vpc-origin")
        certificate_arn = args.get("certificate_arn")
        origin_secret = args.get("origin_secret")
        if mode == "public" and (certificate_arn is None or origin_secret is None):
            raise ValueError(
                f"LoadBalancer {name}: `public` origin protection needs `certificate_arn` "
                "and `origin_secret`."
            )
        tags = component_tags("load_balancer")
        child = pulumi.ResourceOptions(parent=self)
        self.listener_protocol = "HTTPS" if certificate_arn is not None else "HTTP"
        self.listener_port = args.get(
            "listener_port", 443 if self.listener_protocol == "HTTPS" else 80
        )
        target_port = args["target_port"]

        cloudfront = aws.ec2.get_managed_prefix_list(
            name=CLOUDFRONT_PREFIX_LIST, opts=pulumi.InvokeOptions(parent=self)
        )
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args["vpc_id"],
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
                    cidr_blocks=[args["vpc_cidr"]],
                    description="To the service's tasks",
                )
            ],
            tags={**tags, "Name": f"{name}-alb"},
            opts=child,
        )

        access_logs = None
        if bucket := args.get("access_logs_bucket"):
            access_logs = aws.lb.LoadBalancerAccessLogsArgs(
                bucket=bucket, prefix=args.get("access_logs_prefix", "alb"), enabled=True
            )
        self.alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=mode == "vpc-origin",
            subnets=args["subnet_ids"],
            security_groups=[self.security_group.id],
            drop_invalid_header_fields=True,
            desync_mitigation_mode=args.get("desync_mitigation_mode", "defensive"),
            idle_timeout=args.get("idle_timeout_seconds", 60),
            enable_deletion_protection=args.get("deletion_protection", True),
            enable_http2=True,
            access_logs=access_logs,
            tags=tags,
            opts=child,
        )
        self.arn = self.alb.arn
        self.arn_suffix = self.alb.arn_suffix
        self.dns_name = self.alb.dns_name

        self.target_group = self._target_group(f"{name}-tg", args, tags)
        self.alternate_target_group = (
            self._target_group(f"{name}-tg-alt", args, tags)
            if args.get("alternate_target_group", False)
            else None
        )

        self.listener = aws.lb.Listener(
            f"{name}-listener",
            load_balancer_arn=self.alb.arn,
            port=self.listener_port,
            protocol=self.listener_protocol,
            certificate_arn=certificate_arn,
            ssl_policy=(
                args.get("ssl_policy", "ELBSecurityPolicy-TLS13-1-2-2021-06")
                if self.listener_protocol == "HTTPS"
                else None
            ),
            default_actions=[_forbidden()],
            tags=tags,
            opts=child,
        )
        if origin_secret is not None and mode == "public":
            condition = aws.lb.ListenerRuleConditionArgs(
                http_header=aws.lb.ListenerRuleConditionHttpHeaderArgs(
                    http_header_name=args.get("origin_header_name", "X-Origin-Verify"),
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
            listener_arn=self.listener.arn,
            priority=PRODUCTION_RULE_PRIORITY,
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

    def _target_group(
        self, resource_name: str, args: LoadBalancerArgs, tags: dict[str, str]
    ) -> aws.lb.TargetGroup:
        check = args.get("health_check", {})
        return aws.lb.TargetGroup(
            resource_name,
            vpc_id=args["vpc_id"],
            target_type="ip",
            port=args["target_port"],
            protocol="HTTP",
            deregistration_delay=args.get("deregistration_delay_seconds", 30),
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True,
                path=check.get("path", "/health"),
                protocol="HTTP",
                matcher="200",
                interval=check.get("interval_seconds", 10),
                timeout=check.get("timeout_seconds", 5),
                healthy_threshold=check.get("healthy_threshold", 2),
                unhealthy_threshold=check.get("unhealthy_threshold", 2),
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
