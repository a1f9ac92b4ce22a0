"""Monitoring: a region's alarms, alarm topic and dashboard for the API service."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Required, TypedDict

import pulumi
import pulumi_aws as aws

from components.tagging import component_tags


class MonitoringArgs(TypedDict, total=False):
    """Arguments of ``Monitoring``. Thresholds default to the values shown."""

    alarm_prefix: Required[str]
    """Prefix of every alarm and the dashboard's name (e.g. ``trading-api-sg``)."""
    load_balancer_arn_suffix: Required[pulumi.Input[str]]
    """The ALB's ARN suffix (``app/name/id``)."""
    target_group_arn_suffixes: Required[Sequence[pulumi.Input[str]]]
    """ARN suffixes of the service's target groups: blue/green-style deployments move the
    live targets between two groups, so host counts are summed over all of them."""
    cluster_name: Required[pulumi.Input[str]]
    """The ECS cluster's name."""
    service_name: Required[pulumi.Input[str]]
    """The ECS service's name."""
    alarm_emails: list[str]
    """E-mail subscriptions of the alarm topic. Default none."""
    period_seconds: int
    """Default 60."""
    evaluation_periods: int
    """Default 3."""
    target_5xx_rate_percent: float
    """Default 5."""
    elb_5xx_count: int
    """Default 10."""
    p95_response_seconds: float
    """Default 1.0."""
    cpu_percent: int
    """Default 80."""
    memory_percent: int
    """Default 80."""


def _elb_query(
    query_id: str,
    metric_name: str,
    stat: str,
    period: int,
    dimensions: dict[str, pulumi.Input[str]],
) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=query_id,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace="AWS/ApplicationELB",
            metric_name=metric_name,
            dimensions=dimensions,
            period=period,
            stat=stat,
        ),
    )


def _summed_over_target_groups(
    metric_name: str,
    stat: str,
    period: int,
    load_balancer: pulumi.Input[str],
    target_groups: pulumi.Input[Sequence[pulumi.Input[str]]],
    label: str,
    missing_as_zero: bool = True,
) -> pulumi.Output[list[aws.cloudwatch.MetricAlarmMetricQueryArgs]]:
    """Metric math summing one metric over target groups whose number may only be known
    at deploy time (another stack's output). ``missing_as_zero``: a period without data
    counts as 0 (``FILL``); otherwise the sum has no datapoint where no group reported
    (``SUM([...])`` adds what is there), so the alarm's missing-data rule decides."""

    def queries(groups: list[str]) -> list[aws.cloudwatch.MetricAlarmMetricQueryArgs]:
        ids = [f"m{index}" for index in range(len(groups))]
        total = (
            " + ".join(f"FILL({query}, 0)" for query in ids)
            if missing_as_zero
            else f"SUM([{', '.join(ids)}])"
        )
        return [
            *(
                _elb_query(
                    query,
                    metric_name,
                    stat,
                    period,
                    {"LoadBalancer": load_balancer, "TargetGroup": target_group},
                )
                for query, target_group in zip(ids, groups, strict=True)
            ),
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id="total", expression=total, label=label, return_data=True
            ),
        ]

    return pulumi.Output.from_input(target_groups).apply(
        lambda groups: queries([str(g) for g in groups])
    )


def availability_alarms(
    load_balancer: pulumi.Input[str],
    target_groups: pulumi.Input[Sequence[pulumi.Input[str]]],
    period: int,
    target_5xx_rate_percent: float,
    elb_5xx_count: int,
    missing_hosts_breach: bool = True,
) -> dict[str, dict[str, Any]]:
    """The alarms that mean "this region cannot serve", as MetricAlarm arguments without
    name, evaluation periods or actions: Monitoring notifies on them, RegionFailover
    builds its faster failover alarms from the same definitions.

    ``missing_hosts_breach``: whether a period with no host-count data counts as "no
    healthy host". Right for a notification over several periods; wrong for failover,
    which acts on one period and would flip a region on a single missing datapoint (a
    target group that has not reported yet right after a deploy)."""
    alb = {"LoadBalancer": load_balancer}
    return {
        "target-5xx-rate": {
            "alarm_description": (
                f"Target 5xx responses above {target_5xx_rate_percent}% of requests"
            ),
            "comparison_operator": "GreaterThanThreshold",
            "threshold": target_5xx_rate_percent,
            "treat_missing_data": "notBreaching",
            "metric_queries": [
                _elb_query("errors", "HTTPCode_Target_5XX_Count", "Sum", period, alb),
                _elb_query("requests", "RequestCount", "Sum", period, alb),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="rate",
                    expression="100 * FILL(errors, 0) / requests",
                    label="Target 5xx rate (%)",
                    return_data=True,
                ),
            ],
        },
        "elb-5xx": {
            "alarm_description": "5xx responses generated by the load balancer itself",
            "namespace": "AWS/ApplicationELB",
            "metric_name": "HTTPCode_ELB_5XX_Count",
            "dimensions": alb,
            "statistic": "Sum",
            "period": period,
            "comparison_operator": "GreaterThanThreshold",
            "threshold": elb_5xx_count,
            "treat_missing_data": "notBreaching",
        },
        # An ALB with no healthy target fails open instead of answering 503, so "no
        # healthy hosts" has to be watched directly: a reported 0 breaches; a period
        # without data breaches only where `missing_hosts_breach` says so.
        "no-healthy-hosts": {
            "alarm_description": "No healthy target: the region cannot serve",
            "comparison_operator": "LessThanThreshold",
            "threshold": 1,
            "treat_missing_data": "breaching" if missing_hosts_breach else "missing",
            "metric_queries": _summed_over_target_groups(
                "HealthyHostCount",
                "Minimum",
                period,
                load_balancer,
                target_groups,
                "Healthy targets",
                missing_as_zero=missing_hosts_breach,
            ),
        },
    }


def alarm_topic_key_policy(account_id: str, region: str) -> str:
    """Key policy of the alarm topic's customer-managed key.

    CloudWatch publishes alarm notifications to an encrypted topic only when the key's
    policy lets ``cloudwatch.amazonaws.com`` generate data keys and decrypt; the
    AWS-managed ``alias/aws/sns`` key's policy cannot be changed, so alarms publishing
    to a topic under it are dropped silently (SNS Developer Guide, "Enabling
    compatibility between event sources from AWS services and encrypted topics").
    The account root keeps administration, so IAM policies govern everyone else.
    """
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchAlarmsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account_id},
                        "ArnLike": {
                            "aws:SourceArn": f"arn:aws:cloudwatch:{region}:{account_id}:alarm:*"
                        },
                    },
                },
            ],
        },
        sort_keys=True,
    )


def dashboard_body(
    region: str, load_balancer: str, target_groups: list[str], cluster: str, service: str
) -> str:
    """The CloudWatch dashboard: traffic, errors, latency, hosts, CPU and memory."""
    alb = {"LoadBalancer": load_balancer}
    ecs = {"ClusterName": cluster, "ServiceName": service}

    def widget(title: str, metrics: list[list], stat: str, x: int, y: int) -> dict:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "stat": stat,
                "period": 60,
                "view": "timeSeries",
                "metrics": metrics,
            },
        }

    def metric(namespace: str, name: str, dimensions: dict[str, str]) -> list:
        flat: list = [namespace, name]
        for key, value in dimensions.items():
            flat += [key, value]
        return flat

    widgets = [
        widget("Requests", [metric("AWS/ApplicationELB", "RequestCount", alb)], "Sum", 0, 0),
        widget(
            "5xx",
            [
                metric("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb),
                metric("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", alb),
            ],
            "Sum",
            12,
            0,
        ),
        widget(
            "Target response time p95",
            [metric("AWS/ApplicationELB", "TargetResponseTime", alb)],
            "p95",
            0,
            6,
        ),
        widget(
            "Targets",
            [
                metric("AWS/ApplicationELB", name, {**alb, "TargetGroup": target_group})
                for target_group in target_groups
                for name in ("HealthyHostCount", "UnHealthyHostCount")
            ],
            "Minimum",
            12,
            6,
        ),
        widget(
            "Service CPU and memory",
            [
                metric("AWS/ECS", "CPUUtilization", ecs),
                metric("AWS/ECS", "MemoryUtilization", ecs),
            ],
            "Average",
            0,
            12,
        ),
    ]
    return json.dumps({"widgets": widgets}, sort_keys=True)


class Monitoring(pulumi.ComponentResource):
    """Alarms on what makes the API unable to serve, an SNS topic, and a dashboard.

    ``deployment_alarm_names`` are the alarms ECS watches during a deployment to roll
    back; ``no_healthy_hosts_alarm`` and the 5xx alarms are what region failover builds
    its composite "cannot serve" alarm on.
    """

    topic: aws.sns.Topic
    """Alarm notifications, encrypted with ``topic_key``."""
    topic_key: aws.kms.Key
    """The topic's customer-managed key: CloudWatch may use it to publish."""
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    """Every alarm by short name: target-5xx-rate, elb-5xx, p95-latency,
    unhealthy-hosts, no-healthy-hosts, cpu, memory."""
    alarm_names: dict[str, str]
    """Every alarm's CloudWatch name, by short name."""
    deployment_alarm_names: list[str]
    """Alarms that roll an ECS deployment back: target 5xx rate and ELB 5xx."""
    dashboard: aws.cloudwatch.Dashboard
    """The region's dashboard."""

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("trading-infra:monitoring:Monitoring", name, {}, opts)
        tags = component_tags("monitoring")
        child = pulumi.ResourceOptions(parent=self)
        prefix = args["alarm_prefix"]
        period = args.get("period_seconds", 60)
        periods = args.get("evaluation_periods", 3)

        region = aws.get_region(opts=pulumi.InvokeOptions(parent=self)).region
        account_id = aws.get_caller_identity(opts=pulumi.InvokeOptions(parent=self)).account_id
        self.topic_key = aws.kms.Key(
            f"{name}-alarms-key",
            description=f"{prefix} alarm topic: CloudWatch alarms publish through it",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=alarm_topic_key_policy(account_id, region),
            tags=tags,
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-alarms-key-alias",
            name=f"alias/{prefix}-alarms",
            target_key_id=self.topic_key.key_id,
            opts=child,
        )
        self.topic = aws.sns.Topic(
            f"{name}-alarms", kms_master_key_id=self.topic_key.arn, tags=tags, opts=child
        )
        for index, email in enumerate(args.get("alarm_emails", [])):
            aws.sns.TopicSubscription(
                f"{name}-email-{index}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=child,
            )

        load_balancer = args["load_balancer_arn_suffix"]
        target_groups = args["target_group_arn_suffixes"]
        ecs = {"ClusterName": args["cluster_name"], "ServiceName": args["service_name"]}
        common = {
            "evaluation_periods": periods,
            "datapoints_to_alarm": periods,
            "alarm_actions": [self.topic.arn],
            "ok_actions": [self.topic.arn],
            "tags": tags,
            "opts": child,
        }

        def alarm(short: str, **kwargs: Any) -> aws.cloudwatch.MetricAlarm:
            return aws.cloudwatch.MetricAlarm(
                f"{name}-{short}", name=f"{prefix}-{short}", **{**common, **kwargs}
            )

        availability = availability_alarms(
            load_balancer,
            target_groups,
            period,
            args.get("target_5xx_rate_percent", 5.0),
            args.get("elb_5xx_count", 10),
        )
        self.alarms = {short: alarm(short, **spec) for short, spec in availability.items()}
        self.alarms["p95-latency"] = alarm(
            "p95-latency",
            alarm_description="p95 target response time too high",
            namespace="AWS/ApplicationELB",
            metric_name="TargetResponseTime",
            dimensions={"LoadBalancer": load_balancer},
            extended_statistic="p95",
            period=period,
            comparison_operator="GreaterThanThreshold",
            threshold=args.get("p95_response_seconds", 1.0),
            treat_missing_data="notBreaching",
        )
        self.alarms["unhealthy-hosts"] = alarm(
            "unhealthy-hosts",
            alarm_description="At least one target failing its health check",
            comparison_operator="GreaterThanThreshold",
            threshold=0,
            treat_missing_data="notBreaching",
            metric_queries=_summed_over_target_groups(
                "UnHealthyHostCount",
                "Maximum",
                period,
                load_balancer,
                target_groups,
                "Unhealthy targets",
            ),
        )
        for short, metric_name, threshold in (
            ("cpu", "CPUUtilization", args.get("cpu_percent", 80)),
            ("memory", "MemoryUtilization", args.get("memory_percent", 80)),
        ):
            self.alarms[short] = alarm(
                short,
                alarm_description=f"Service {short} high",
                namespace="AWS/ECS",
                metric_name=metric_name,
                dimensions=ecs,
                statistic="Average",
                period=period,
                comparison_operator="GreaterThanThreshold",
                threshold=threshold,
                treat_missing_data="notBreaching",
            )
        self.alarm_names = {short: f"{prefix}-{short}" for short in self.alarms}
        self.deployment_alarm_names = [
            self.alarm_names["target-5xx-rate"],
            self.alarm_names["elb-5xx"],
        ]

        body = pulumi.Output.all(
            load_balancer,
            pulumi.Output.all(*target_groups),
            args["cluster_name"],
            args["service_name"],
        ).apply(lambda v: dashboard_body(region, v[0], list(v[1]), v[2], v[3]))
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=prefix, dashboard_body=body, opts=child
        )
        self.register_outputs({"alarm_names": self.alarm_names, "topic_arn": self.topic.arn})
