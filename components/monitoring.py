"""Monitoring: a region's alarms, alarm topic and dashboard for the API service."""

from __future__ import annotations

import json
from typing import Required, TypedDict

import pulumi
import pulumi_aws as aws

from components.tagging import component_tags


class MonitoringArgs(TypedDict, total=False):
    """Arguments of ``Monitoring``. Thresholds default to the values shown."""

    alarm_prefix: Required[str]
    """Prefix of every alarm and the dashboard's name (e.g. ``trading-api-sg``)."""
    load_balancer_arn_suffix: Required[pulumi.Input[str]]
    """The ALB's ARN suffix (``app/name/id``)."""
    target_group_arn_suffix: Required[pulumi.Input[str]]
    """The production target group's ARN suffix."""
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


def dashboard_body(
    region: str, load_balancer: str, target_group: str, cluster: str, service: str
) -> str:
    """The CloudWatch dashboard: traffic, errors, latency, hosts, CPU and memory."""
    alb = {"LoadBalancer": load_balancer}
    tg = {"LoadBalancer": load_balancer, "TargetGroup": target_group}
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
                metric("AWS/ApplicationELB", "HealthyHostCount", tg),
                metric("AWS/ApplicationELB", "UnHealthyHostCount", tg),
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
    """Alarm notifications (encrypted with the AWS-managed SNS key)."""
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

        self.topic = aws.sns.Topic(
            f"{name}-alarms", kms_master_key_id="alias/aws/sns", tags=tags, opts=child
        )
        for index, email in enumerate(args.get("alarm_emails", [])):
            aws.sns.TopicSubscription(
                f"{name}-email-{index}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=child,
            )

        alb = {"LoadBalancer": args["load_balancer_arn_suffix"]}
        tg = {**alb, "TargetGroup": args["target_group_arn_suffix"]}
        ecs = {"ClusterName": args["cluster_name"], "ServiceName": args["service_name"]}
        common = {
            "period": period,
            "evaluation_periods": periods,
            "datapoints_to_alarm": periods,
            "alarm_actions": [self.topic.arn],
            "ok_actions": [self.topic.arn],
            "tags": tags,
            "opts": child,
        }

        def alarm(short: str, description: str, **kwargs) -> aws.cloudwatch.MetricAlarm:
            return aws.cloudwatch.MetricAlarm(
                f"{name}-{short}",
                name=f"{prefix}-{short}",
                alarm_description=description,
                **{**common, **kwargs},
            )

        def query(
            query_id: str, metric_name: str, stat: str
        ) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=query_id,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace="AWS/ApplicationELB",
                    metric_name=metric_name,
                    dimensions=alb,
                    period=period,
                    stat=stat,
                ),
            )

        rate = args.get("target_5xx_rate_percent", 5.0)
        self.alarms = {
            "target-5xx-rate": alarm(
                "target-5xx-rate",
                f"Target 5xx responses above {rate}% of requests",
                comparison_operator="GreaterThanThreshold",
                threshold=rate,
                treat_missing_data="notBreaching",
                metric_queries=[
                    query("errors", "HTTPCode_Target_5XX_Count", "Sum"),
                    query("requests", "RequestCount", "Sum"),
                    aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id="rate",
                        expression="100 * FILL(errors, 0) / requests",
                        label="Target 5xx rate (%)",
                        return_data=True,
                    ),
                ],
                period=None,
            ),
            "elb-5xx": alarm(
                "elb-5xx",
                "5xx responses generated by the load balancer itself",
                namespace="AWS/ApplicationELB",
                metric_name="HTTPCode_ELB_5XX_Count",
                dimensions=alb,
                statistic="Sum",
                comparison_operator="GreaterThanThreshold",
                threshold=args.get("elb_5xx_count", 10),
                treat_missing_data="notBreaching",
            ),
            "p95-latency": alarm(
                "p95-latency",
                "p95 target response time too high",
                namespace="AWS/ApplicationELB",
                metric_name="TargetResponseTime",
                dimensions=alb,
                extended_statistic="p95",
                comparison_operator="GreaterThanThreshold",
                threshold=args.get("p95_response_seconds", 1.0),
                treat_missing_data="notBreaching",
            ),
            "unhealthy-hosts": alarm(
                "unhealthy-hosts",
                "At least one target failing its health check",
                namespace="AWS/ApplicationELB",
                metric_name="UnHealthyHostCount",
                dimensions=tg,
                statistic="Maximum",
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                treat_missing_data="notBreaching",
            ),
            # An ALB with no healthy target fails open instead of answering 503, so
            # "no healthy hosts" has to be watched directly. Missing data counts as
            # breaching: a target group that stops reporting has nothing to serve with.
            "no-healthy-hosts": alarm(
                "no-healthy-hosts",
                "No healthy target: the region cannot serve",
                namespace="AWS/ApplicationELB",
                metric_name="HealthyHostCount",
                dimensions=tg,
                statistic="Minimum",
                comparison_operator="LessThanThreshold",
                threshold=1,
                treat_missing_data="breaching",
            ),
            "cpu": alarm(
                "cpu",
                "Service CPU high",
                namespace="AWS/ECS",
                metric_name="CPUUtilization",
                dimensions=ecs,
                statistic="Average",
                comparison_operator="GreaterThanThreshold",
                threshold=args.get("cpu_percent", 80),
                treat_missing_data="notBreaching",
            ),
            "memory": alarm(
                "memory",
                "Service memory high",
                namespace="AWS/ECS",
                metric_name="MemoryUtilization",
                dimensions=ecs,
                statistic="Average",
                comparison_operator="GreaterThanThreshold",
                threshold=args.get("memory_percent", 80),
                treat_missing_data="notBreaching",
            ),
        }
        self.alarm_names = {short: f"{prefix}-{short}" for short in self.alarms}
        self.deployment_alarm_names = [
            self.alarm_names["target-5xx-rate"],
            self.alarm_names["elb-5xx"],
        ]

        region = aws.get_region(opts=pulumi.InvokeOptions(parent=self)).region
        body = pulumi.Output.all(
            args["load_balancer_arn_suffix"],
            args["target_group_arn_suffix"],
            args["cluster_name"],
            args["service_name"],
        ).apply(lambda values: dashboard_body(region, *values))
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=prefix, dashboard_body=body, opts=child
        )
        self.register_outputs({"alarm_names": self.alarm_names, "topic_arn": self.topic.arn})
