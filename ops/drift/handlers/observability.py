"""Log groups and log delivery, CloudWatch alarms and dashboards, EventBridge rules and
targets, SNS topics, SQS queues and their policies, Secrets Manager metadata."""

from __future__ import annotations

import re
from collections.abc import Sequence

from botocore.exceptions import ClientError

from ops.drift.aws import (
    Compare,
    Fetch,
    Live,
    Reader,
    Scope,
    as_json,
    as_policy,
    as_text,
    by,
    handler,
    name_of,
    presence,
)
from ops.drift.model import Diff
from ops.drift.state import StateResource

_LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
_DELIVERY = "aws:cloudwatch/logDelivery:LogDelivery"
_DESTINATION = "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination"
_SOURCE = "aws:cloudwatch/logDeliverySource:LogDeliverySource"
_SECRET = "aws:secretsmanager/secret:Secret"  # noqa: S105 (a type name)
_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
_COMPOSITE = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
_DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
_EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
_EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
_TOPIC = "aws:sns/topic:Topic"
_QUEUE = "aws:sqs/queue:Queue"
_QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"


def _sorted(value: object) -> list[str]:
    return sorted(str(v) for v in value) if isinstance(value, list) else []


@handler(_LOG_GROUP)(
    lambda r, region, _: by(
        "logGroupName", r.items(_LOG_GROUP, "logs", region, "describe_log_groups", "logGroups")
    )
)
def compare_log_group(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()("retentionInDays", state.get("retentionInDays"), live.get("retentionInDays"))(
            "kmsKeyId", state.get("kmsKeyId") or None, live.get("kmsKeyId")
        )
    ).diffs


@handler(_DELIVERY)(
    lambda r, region, _: by(
        "id", r.items(_DELIVERY, "logs", region, "describe_deliveries", "deliveries")
    )
)
def compare_delivery(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()(
            "deliverySourceName", state.get("deliverySourceName"), live.get("deliverySourceName")
        )(
            "deliveryDestinationArn",
            state.get("deliveryDestinationArn"),
            live.get("deliveryDestinationArn"),
        )
    ).diffs


@handler(_DESTINATION, live_id=lambda r: str(r.get("name") or r.id))(
    lambda r, region, _: by(
        "name",
        r.items(
            _DESTINATION, "logs", region, "describe_delivery_destinations", "deliveryDestinations"
        ),
    )
)
def compare_destination(state: StateResource, live: Live) -> list[Diff]:
    expected = state.get("deliveryDestinationConfiguration") or {}
    return (
        Compare()(
            "deliveryDestinationConfiguration.destinationResourceArn",
            expected.get("destinationResourceArn") if isinstance(expected, dict) else None,
            (live.get("deliveryDestinationConfiguration") or {}).get("destinationResourceArn"),
        )("outputFormat", state.get("outputFormat"), live.get("outputFormat"))
    ).diffs


@handler(_SOURCE, live_id=lambda r: str(r.get("name") or r.id))(
    lambda r, region, _: by(
        "name", r.items(_SOURCE, "logs", region, "describe_delivery_sources", "deliverySources")
    )
)
def compare_source(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()(
            "resourceArn",
            state.get("resourceArn"),
            live.get("resourceArns"),
            lambda v: _sorted(v if isinstance(v, list) else [v]),
        )("logType", state.get("logType"), live.get("logType"))
    ).diffs


@handler(_SECRET)(
    lambda r, region, _: by(
        "ARN", r.items(_SECRET, "secretsmanager", region, "list_secrets", "SecretList")
    )
)
def compare_secret(state: StateResource, live: Live) -> list[Diff]:
    # Metadata only: the value is never read.
    return (
        Compare()("name", state.get("name"), live.get("Name"))(
            "description", state.get("description"), live.get("Description")
        )("kmsKeyId", state.get("kmsKeyId") or None, live.get("KmsKeyId"))
    ).diffs


_SCALING_ACTION = re.compile(
    r":scalingPolicy:[^:]+:resource/[^/]+/(?P<resource>.+?):policyName/(?P<policy>[^:/]+)"
)


def acts_for_scaling(alarm: Live, scope: Scope) -> bool:
    """An alarm AWS made for one of the stack's target-tracking policies: every action
    is that policy (``...:scalingPolicy:<id>:resource/ecs/service/<c>/<s>:policyName/<n>``)."""
    actions = alarm.get("AlarmActions") or []
    matches = [_SCALING_ACTION.search(str(a)) for a in actions]
    return bool(actions) and all(
        m is not None and (m["resource"], m["policy"]) in scope.scaling_policies for m in matches
    )


def _alarms_in_scope(live: dict[str, Live], scope: Scope, known: set[str]) -> list[tuple[str, str]]:
    def dimensions(alarm: Live) -> set[str]:
        values = {d.get("Value") for d in alarm.get("Dimensions", [])}
        for query in alarm.get("Metrics", []):
            values |= {
                d.get("Value")
                for d in ((query.get("MetricStat") or {}).get("Metric") or {}).get("Dimensions", [])
            }
        return {v for v in values if v}

    return [
        (name, f"alarm on {', '.join(sorted(dimensions(alarm) & scope.alarm_dimension_values))}")
        for name, alarm in live.items()
        if name not in known
        and dimensions(alarm) & scope.alarm_dimension_values
        and not acts_for_scaling(alarm, scope)
    ]


def _actions(state: StateResource, live: Live, compare: Compare) -> Compare:
    """What an alarm does, in full: actions on each state, and whether they run (an
    alarm with ``ActionsEnabled`` false never notifies)."""
    return compare("actionsEnabled", state.get("actionsEnabled"), live.get("ActionsEnabled"))(
        "alarmActions", state.get("alarmActions"), live.get("AlarmActions"), _sorted
    )("okActions", state.get("okActions"), live.get("OKActions"), _sorted)(
        "insufficientDataActions",
        state.get("insufficientDataActions"),
        live.get("InsufficientDataActions"),
        _sorted,
    )


@handler(_ALARM, unmanaged=_alarms_in_scope, live_id=lambda r: str(r.get("name") or r.id))(
    lambda r, region, _: by(
        "AlarmName",
        r.items(
            _ALARM,
            "cloudwatch",
            region,
            "describe_alarms",
            "MetricAlarms",
            AlarmTypes=["MetricAlarm"],
        ),
    )
)
def compare_alarm(state: StateResource, live: Live) -> list[Diff]:
    compare = Compare()("threshold", state.get("threshold"), live.get("Threshold"), float)(
        "comparisonOperator", state.get("comparisonOperator"), live.get("ComparisonOperator")
    )("evaluationPeriods", state.get("evaluationPeriods"), live.get("EvaluationPeriods"), int)(
        "treatMissingData", state.get("treatMissingData"), live.get("TreatMissingData")
    )
    return _actions(state, live, compare).diffs


@handler(_COMPOSITE, live_id=lambda r: str(r.get("alarmName") or r.id))(
    lambda r, region, _: by(
        "AlarmName",
        r.items(
            _COMPOSITE,
            "cloudwatch",
            region,
            "describe_alarms",
            "CompositeAlarms",
            AlarmTypes=["CompositeAlarm"],
        ),
    )
)
def compare_composite(state: StateResource, live: Live) -> list[Diff]:
    compare = Compare()("alarmRule", state.get("alarmRule"), live.get("AlarmRule"))
    return _actions(state, live, compare).diffs


presence(
    _DASHBOARD,
    lambda r, region, _: by(
        "DashboardName",
        r.items(_DASHBOARD, "cloudwatch", region, "list_dashboards", "DashboardEntries"),
    ),
    live_id=lambda r: str(r.get("dashboardName") or r.id),
    why="a view: its body decides nothing, and reading it costs a call per dashboard",
)


@handler(_EVENT_RULE, live_id=lambda r: str(r.get("name") or r.id))(
    lambda r, region, _: by("Name", r.items(_EVENT_RULE, "events", region, "list_rules", "Rules"))
)
def compare_event_rule(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()("eventPattern", state.get("eventPattern"), live.get("EventPattern"), as_json)(
            "scheduleExpression", state.get("scheduleExpression"), live.get("ScheduleExpression")
        )("state", state.get("state"), live.get("State"))
    ).diffs


def _fetch_targets(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    found: dict[str, Live] = {}
    for rule in sorted({str(x.get("rule")) for x in resources if x.get("rule")}):
        try:  # targets are listed per rule only
            targets = r.items(
                _EVENT_TARGET, "events", region, "list_targets_by_rule", "Targets", Rule=rule
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            continue
        found |= {f"{rule}|{t['Id']}": t for t in targets}
    return found


def _targets_in_scope(
    live: dict[str, Live], scope: Scope, known: set[str]
) -> list[tuple[str, str]]:
    # Every rule listed is the stack's: any target on it the state lacks is not ours.
    return [
        (key, f"target {t.get('Arn')} on rule {key.split('|')[0]}")
        for key, t in live.items()
        if key not in known
    ]


@handler(
    _EVENT_TARGET,
    unmanaged=_targets_in_scope,
    live_id=lambda r: f"{r.get('rule')}|{r.get('targetId')}",
)(_fetch_targets)
def compare_event_target(state: StateResource, live: Live) -> list[Diff]:
    dead_letter = state.get("deadLetterConfig") or {}
    retry = state.get("retryPolicy") or {}
    return (
        Compare()("arn", state.get("arn"), live.get("Arn"))(
            "deadLetterConfig.arn",
            dead_letter.get("arn") if isinstance(dead_letter, dict) else None,
            (live.get("DeadLetterConfig") or {}).get("Arn"),
        )(
            "retryPolicy.maximumRetryAttempts",
            retry.get("maximumRetryAttempts") if isinstance(retry, dict) else None,
            (live.get("RetryPolicy") or {}).get("MaximumRetryAttempts"),
        )
    ).diffs


def _fetch_topics(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    listed = {t["TopicArn"] for t in r.items(_TOPIC, "sns", region, "list_topics", "Topics")}
    found: dict[str, Live] = {}
    for resource in resources:  # no batch read of topic attributes exists
        arn = str(resource.get("arn") or resource.id)
        if arn in listed:
            found[arn] = r.call(_TOPIC, "sns", region, "get_topic_attributes", TopicArn=arn)[
                "Attributes"
            ]
    return found


@handler(_TOPIC, live_id=lambda r: str(r.get("arn") or r.id))(_fetch_topics)
def compare_topic(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()(
            "kmsMasterKeyId",
            state.get("kmsMasterKeyId"),
            live.get("KmsMasterKeyId"),
            lambda v: name_of(str(v)),
        )("policy", state.get("policy"), live.get("Policy"), as_policy)
    ).diffs


def _fetch_queues(type_: str) -> Fetch:
    def fetch(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
        listed = set(r.items(type_, "sqs", region, "list_queues", "QueueUrls"))
        found: dict[str, Live] = {}
        for url in sorted({str(x.get("queueUrl") or x.id) for x in resources} & listed):
            # No batch read of queue attributes exists: one call per queue.
            found[url] = r.call(
                type_, "sqs", region, "get_queue_attributes", QueueUrl=url, AttributeNames=["All"]
            ).get("Attributes", {})
        return found

    return fetch


@handler(_QUEUE, live_id=lambda r: str(r.get("url") or r.id))(_fetch_queues(_QUEUE))
def compare_queue(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()(
            "sqsManagedSseEnabled",
            state.get("sqsManagedSseEnabled"),
            live.get("SqsManagedSseEnabled"),
            as_text,
        )("kmsMasterKeyId", state.get("kmsMasterKeyId"), live.get("KmsMasterKeyId"))(
            "messageRetentionSeconds",
            state.get("messageRetentionSeconds"),
            live.get("MessageRetentionPeriod"),
            as_text,
        )
    ).diffs


@handler(_QUEUE_POLICY, live_id=lambda r: str(r.get("queueUrl") or r.id))(
    _fetch_queues(_QUEUE_POLICY)
)
def compare_queue_policy(state: StateResource, live: Live) -> list[Diff]:
    return Compare()("policy", state.get("policy"), live.get("Policy"), as_policy).diffs
