"""RegionFailover: a region's "cannot serve" alarm flips its health key at the edge.

CloudFront origin groups fail over only GET/HEAD/OPTIONS, and an ALB whose targets are
all unhealthy fails open; so orders (POST) keep reaching a dead region unless the
routing table says otherwise. This component watches the region, and a small Lambda
writes the region's ``health:<region>`` key in the edge's KeyValueStore.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components.iam import service_assume_role_policy
from components.monitoring import availability_alarms
from components.settings import Settings
from components.tagging import component_tags

LAMBDA_SOURCE = Path(__file__).with_name("failover_lambda") / "handler.py"
LAMBDA_RUNTIME = "python3.12"
LAMBDA_ARCHITECTURE = "arm64"

EVENTBRIDGE_DELIVERY_SECONDS = 10
"""Allowance for an alarm state change to reach the Lambda through EventBridge (AWS
delivers CloudWatch alarm events on a best-effort basis, typically within seconds)."""

KVS_PROPAGATION_SECONDS = 30
"""Allowance for a KeyValueStore write to reach every edge location (AWS: "within
seconds"; observed up to the low tens of seconds)."""

CHILD_ALARMS = ("no-healthy-hosts", "target-5xx-rate", "elb-5xx")


@dataclass(frozen=True)
class FailoverBudget:
    """Worst-case seconds from a region dying to its traffic moving away."""

    alarm_seconds: int
    """period x evaluation periods: until the composite alarm fires."""
    eventbridge_seconds: int
    lambda_seconds: int
    """The function's timeout: one invocation, conflict retries included."""
    propagation_seconds: int
    all_methods_seconds: int
    """Every method, POST orders included: the sum of the above."""
    get_seconds: int
    """GET/HEAD/OPTIONS: per-request origin-group failover at the edge."""

    def as_output(self) -> dict[str, int]:
        return asdict(self)


def failover_budget(
    period_seconds: int,
    evaluation_periods: int,
    lambda_timeout_seconds: int,
    get_failover_seconds: int,
) -> FailoverBudget:
    """The failover time budget computed from the config."""
    alarm = period_seconds * evaluation_periods
    return FailoverBudget(
        alarm_seconds=alarm,
        eventbridge_seconds=EVENTBRIDGE_DELIVERY_SECONDS,
        lambda_seconds=lambda_timeout_seconds,
        propagation_seconds=KVS_PROPAGATION_SECONDS,
        all_methods_seconds=alarm
        + EVENTBRIDGE_DELIVERY_SECONDS
        + lambda_timeout_seconds
        + KVS_PROPAGATION_SECONDS,
        get_seconds=get_failover_seconds,
    )


def composite_rule(alarm_names: Sequence[str]) -> str:
    """``ALARM("a") OR ALARM("b")``: the region cannot serve if any child fires."""
    return " OR ".join(f'ALARM("{name}")' for name in alarm_names)


def alarm_event_pattern(alarm_arn: str) -> str:
    """EventBridge pattern matching state changes of exactly one alarm."""
    return json.dumps(
        {
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            "resources": [alarm_arn],
        },
        sort_keys=True,
    )


def lambda_policy(kvs_arn: str, alarm_arn: str, log_group_arn: str, dead_letter_arn: str) -> str:
    """Exactly what the function needs: read and write that one store, read that one
    alarm, write its own logs, park failed events."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "HealthKey",
                    "Effect": "Allow",
                    "Action": [
                        "cloudfront-keyvaluestore:DescribeKeyValueStore",
                        "cloudfront-keyvaluestore:GetKey",
                        "cloudfront-keyvaluestore:PutKey",
                    ],
                    "Resource": kvs_arn,
                },
                {
                    "Sid": "AlarmState",
                    "Effect": "Allow",
                    "Action": "cloudwatch:DescribeAlarms",
                    "Resource": alarm_arn,
                },
                {
                    "Sid": "Logs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": f"{log_group_arn}:*",
                },
                {
                    "Sid": "DeadLetters",
                    "Effect": "Allow",
                    "Action": "sqs:SendMessage",
                    "Resource": dead_letter_arn,
                },
                {
                    # Active tracing: the function sends its segments to X-Ray. These
                    # two actions take no resource ARN (Service Authorization Reference,
                    # "Actions defined by AWS X-Ray"), so "*" is their only form.
                    "Sid": "Tracing",
                    "Effect": "Allow",
                    "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                    "Resource": "*",
                },
            ],
        },
        sort_keys=True,
    )


def dead_letter_queue_policy(queue_arn: str, rule_arns: Sequence[str]) -> str:
    """EventBridge may park undeliverable events in the queue, for these rules only."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "EventBridgeDeadLetters",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}},
                }
            ],
        },
        sort_keys=True,
    )


class FailoverSettings(Settings):
    """``trading-infra:failover``: automatic region failover for every HTTP method
    (primary stack only: the edge owns the routing table)."""

    period_seconds: Literal[60, 120, 300] = 60
    """Failover alarm period (ALB metrics are per minute). Default 60."""
    evaluation_periods: Annotated[int, Field(ge=1, le=5)] = 1
    """Breaching periods before a region is routed away from. Default 1."""
    recovery_periods: Annotated[int, Field(ge=1, le=60)] = 5
    """OK periods before it is routed to again (hysteresis). Default 5."""
    target_5xx_rate_percent: Annotated[float, Field(gt=0, le=100)] = 10.0
    """Target 5xx share that means the region cannot serve. Default 10."""
    elb_5xx_count: Annotated[int, Field(ge=1)] = 20
    """ALB-generated 5xx per period that mean it cannot serve. Default 20."""
    lambda_timeout_seconds: Annotated[int, Field(ge=3, le=60)] = 10
    """Timeout of the health-writing Lambda. Default 10."""
    layer_path: str = "build/lambda-layer"
    """Lambda layer directory built by ``make lambda-layer``. Default ``build/lambda-layer``."""


class RegionFailover(pulumi.ComponentResource):
    """Alarms -> EventBridge -> Lambda -> the region's health key at the edge."""

    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    """The failover alarms by short name."""
    composite_alarm: aws.cloudwatch.CompositeAlarm
    """"This region cannot serve"."""
    function: aws.lambda_.Function
    """The health writer."""
    role: aws.iam.Role
    """Its role."""
    dead_letter_queue: aws.sqs.Queue
    """Failed invocations and undeliverable events."""
    alarm_rule: aws.cloudwatch.EventRule
    """State changes of the composite alarm."""
    schedule_rule: aws.cloudwatch.EventRule
    """The recovery check, once a minute."""
    error_alarm: aws.cloudwatch.MetricAlarm
    """Fires when the function errors."""

    def __init__(
        self,
        name: str,
        settings: FailoverSettings,
        *,
        region: str,
        name_prefix: str,
        key_value_store_arn: pulumi.Input[str],
        load_balancer_arn_suffix: pulumi.Input[str],
        target_group_arn_suffixes: pulumi.Input[Sequence[pulumi.Input[str]]],
        alarm_topic_arn: pulumi.Input[str] | None = None,
        log_retention_days: int = 365,
        protect: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """Wiring, apart from the settings: ``region`` (the region id at the edge, so
        the key is ``health:<region>``), ``name_prefix`` (of the alarm and function
        names), the edge's routing table, the region's ALB and target groups (CloudWatch
        dimensions), ``alarm_topic_arn`` (told when the region is declared down and
        when the Lambda fails), the function's log retention and ``protect`` (its log
        group)."""
        super().__init__("trading-infra:failover:RegionFailover", name, {}, opts)
        tags = component_tags("failover")
        child = pulumi.ResourceOptions(parent=self)
        prefix = name_prefix
        period = settings.period_seconds
        periods = settings.evaluation_periods
        topic = alarm_topic_arn
        actions = [topic] if topic is not None else []

        definitions = availability_alarms(
            load_balancer_arn_suffix,
            target_group_arn_suffixes,
            period,
            settings.target_5xx_rate_percent,
            settings.elb_5xx_count,
            # Failover acts on one period: only a reported zero flips the region, a
            # missing datapoint leaves the alarm INSUFFICIENT_DATA (Monitoring's alarm
            # still notifies when the data stays away).
            missing_hosts_breach=False,
        )
        self.alarms = {
            short: aws.cloudwatch.MetricAlarm(
                f"{name}-{short}",
                name=f"{prefix}-failover-{short}",
                evaluation_periods=periods,
                datapoints_to_alarm=periods,
                tags=tags,
                opts=child,
                **definitions[short],
            )
            for short in CHILD_ALARMS
        }
        self.composite_alarm = aws.cloudwatch.CompositeAlarm(
            f"{name}-cannot-serve",
            alarm_name=f"{prefix}-cannot-serve",
            alarm_description=f"Region {region} cannot serve: traffic is routed away",
            alarm_rule=pulumi.Output.all(*[a.name for a in self.alarms.values()]).apply(
                composite_rule
            ),
            alarm_actions=actions,
            ok_actions=actions,
            tags=tags,
            opts=child,
        )

        function_name = f"{prefix}-failover"
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=log_retention_days,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-dead-letters",
            message_retention_seconds=14 * 24 * 3600,
            sqs_managed_sse_enabled=True,
            tags=tags,
            opts=child,
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=aws.get_caller_identity_output(
                opts=pulumi.InvokeOutputOptions(parent=self)
            ).account_id.apply(
                lambda account: service_assume_role_policy("lambda.amazonaws.com", account)
            ),
            description=f"Writes health:{region} in the edge's routing table",
            tags=tags,
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=pulumi.Output.all(
                key_value_store_arn,
                self.composite_alarm.arn,
                log_group.arn,
                self.dead_letter_queue.arn,
            ).apply(lambda v: lambda_policy(*v)),
            opts=child,
        )
        layer = aws.lambda_.LayerVersion(
            f"{name}-awscrt",
            layer_name=f"{prefix}-awscrt",
            description="AWS CRT: SigV4A signing for the KeyValueStore API",
            code=pulumi.FileArchive(settings.layer_path),
            compatible_runtimes=[LAMBDA_RUNTIME],
            compatible_architectures=[LAMBDA_ARCHITECTURE],
            opts=child,
        )
        recovery_seconds = settings.recovery_periods * period
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=function_name,
            description=f"Marks region {region} unhealthy/healthy at the edge",
            runtime=LAMBDA_RUNTIME,
            architectures=[LAMBDA_ARCHITECTURE],
            handler="handler.handler",
            code=pulumi.AssetArchive({"handler.py": pulumi.FileAsset(str(LAMBDA_SOURCE))}),
            role=self.role.arn,
            layers=[layer.arn],
            timeout=settings.lambda_timeout_seconds,
            memory_size=256,
            # No reserved concurrency: accounts at the minimum quota reject any
            # reservation ("decreases account's UnreservedConcurrentExecution below its
            # minimum value of [10]"), and concurrent writers are safe: each write is
            # conditional on the store's ETag and re-read on a conflict.
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    "KVS_ARN": key_value_store_arn,
                    "REGION_ID": region,
                    "ALARM_NAME": self.composite_alarm.alarm_name,
                    "RECOVERY_SECONDS": str(recovery_seconds),
                }
            ),
            dead_letter_config=aws.lambda_.FunctionDeadLetterConfigArgs(
                target_arn=self.dead_letter_queue.arn
            ),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="Text", log_group=log_group.name
            ),
            # X-Ray traces each invocation: the path from the alarm to the store.
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, log_group]),
        )

        self.alarm_rule = aws.cloudwatch.EventRule(
            f"{name}-alarm-changes",
            description=f"State changes of {prefix}-cannot-serve",
            event_pattern=self.composite_alarm.arn.apply(alarm_event_pattern),
            tags=tags,
            opts=child,
        )
        self.schedule_rule = aws.cloudwatch.EventRule(
            f"{name}-recovery-check",
            description=f"Once a minute: has region {region} been OK long enough?",
            schedule_expression="rate(1 minute)",
            tags=tags,
            opts=child,
        )
        for short, rule in (
            ("alarm-changes", self.alarm_rule),
            ("recovery-check", self.schedule_rule),
        ):
            aws.cloudwatch.EventTarget(
                f"{name}-{short}-target",
                rule=rule.name,
                arn=self.function.arn,
                retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                    maximum_event_age_in_seconds=300, maximum_retry_attempts=3
                ),
                dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(
                    arn=self.dead_letter_queue.arn
                ),
                opts=child,
            )
            aws.lambda_.Permission(
                f"{name}-{short}-invoke",
                action="lambda:InvokeFunction",
                function=self.function.name,
                principal="events.amazonaws.com",
                source_arn=rule.arn,
                opts=child,
            )
        aws.sqs.QueuePolicy(
            f"{name}-dead-letters-policy",
            queue_url=self.dead_letter_queue.url,
            policy=pulumi.Output.all(
                self.dead_letter_queue.arn, self.alarm_rule.arn, self.schedule_rule.arn
            ).apply(lambda v: dead_letter_queue_policy(v[0], v[1:])),
            opts=child,
        )

        def any_above_zero(
            short: str,
            description: str,
            namespace: str,
            metric: str,
            dimensions: dict,
            statistic: str,
            period: int,
        ) -> aws.cloudwatch.MetricAlarm:
            return aws.cloudwatch.MetricAlarm(
                f"{name}-{short}",
                name=f"{prefix}-failover-{short}",
                alarm_description=description,
                namespace=namespace,
                metric_name=metric,
                dimensions=dimensions,
                statistic=statistic,
                period=period,
                evaluation_periods=1,
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                treat_missing_data="notBreaching",
                alarm_actions=actions,
                tags=tags,
                opts=child,
            )

        self.error_alarm = any_above_zero(
            "function-errors",
            "The failover Lambda failed: region health may be stale",
            "AWS/Lambda",
            "Errors",
            {"FunctionName": self.function.name},
            "Sum",
            60,
        )
        any_above_zero(
            "dead-letters",
            "Failover events were dropped into the dead-letter queue",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": self.dead_letter_queue.name},
            "Maximum",
            300,
        )
        self.register_outputs(
            {
                "composite_alarm_arn": self.composite_alarm.arn,
                "function_arn": self.function.arn,
            }
        )
