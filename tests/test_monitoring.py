"""Monitoring: alarms, thresholds, topic and dashboard."""

from __future__ import annotations

import json

import pulumi
import pytest
from pydantic import ValidationError

from components.monitoring import Monitoring, MonitoringSettings, dashboard_body
from ops.runtime import Plan
from tests.support import is_taggable, run_component

ALB = "app/alb/0123"
TG = "targetgroup/tg/4567"
TG_ALT = "targetgroup/tg-alt/89ab"


def monitoring_plan(**overrides) -> Plan:
    settings = MonitoringSettings(**overrides)

    def program() -> None:
        monitoring = Monitoring(
            "mon",
            settings,
            alarm_prefix="api-sg",
            load_balancer_arn_suffix=ALB,
            target_group_arn_suffixes=[TG, TG_ALT],
            cluster_name="trading-sg",
            service_name="api",
        )
        pulumi.export("deployment", monitoring.deployment_alarm_names)
        pulumi.export("names", monitoring.alarm_names)

    return run_component(program)


def alarms(plan: Plan) -> dict[str, dict]:
    return {
        a.inputs["name"]: a.inputs for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    }


def test_every_alarm_is_created_with_its_prefix() -> None:
    plan = monitoring_plan()
    assert set(alarms(plan)) == {
        f"api-sg-{short}"
        for short in (
            "target-5xx-rate",
            "elb-5xx",
            "p95-latency",
            "unhealthy-hosts",
            "no-healthy-hosts",
            "cpu",
            "memory",
        )
    }
    assert plan.outputs["names"]["no-healthy-hosts"] == "api-sg-no-healthy-hosts"


def test_deployments_roll_back_on_the_5xx_alarms() -> None:
    assert monitoring_plan().outputs["deployment"] == ["api-sg-target-5xx-rate", "api-sg-elb-5xx"]


def test_target_5xx_rate_is_metric_math_over_requests() -> None:
    alarm = alarms(monitoring_plan(target_5xx_rate_percent=2.5))["api-sg-target-5xx-rate"]
    assert alarm["threshold"] == 2.5
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    assert queries["rate"]["expression"] == "100 * FILL(errors, 0) / requests"
    assert queries["rate"]["returnData"] is True
    assert queries["errors"]["metric"]["metricName"] == "HTTPCode_Target_5XX_Count"
    assert queries["requests"]["metric"]["metricName"] == "RequestCount"
    assert queries["errors"]["metric"]["dimensions"] == {"LoadBalancer": ALB}
    assert "period" not in alarm


def test_thresholds_periods_and_dimensions_follow_the_args() -> None:
    found = alarms(
        monitoring_plan(
            elb_5xx_count=3,
            p95_response_seconds=0.5,
            cpu_percent=70,
            memory_percent=75,
            period_seconds=30,
            evaluation_periods=2,
        )
    )
    assert found["api-sg-elb-5xx"]["threshold"] == 3
    assert found["api-sg-p95-latency"]["threshold"] == 0.5
    assert found["api-sg-p95-latency"]["extendedStatistic"] == "p95"
    assert found["api-sg-cpu"]["threshold"] == 70
    assert found["api-sg-memory"]["threshold"] == 75
    assert found["api-sg-cpu"]["dimensions"] == {"ClusterName": "trading-sg", "ServiceName": "api"}
    for name, alarm in found.items():
        assert alarm["evaluationPeriods"] == 2, name
        if "metricQueries" not in alarm:
            assert alarm["period"] == 30, name


def test_no_healthy_hosts_sums_every_target_group_and_counts_silence_as_failure() -> None:
    alarm = alarms(monitoring_plan())["api-sg-no-healthy-hosts"]
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    assert queries["total"]["expression"] == "FILL(m0, 0) + FILL(m1, 0)"
    assert queries["m0"]["metric"]["metricName"] == "HealthyHostCount"
    assert queries["m0"]["metric"]["dimensions"] == {"LoadBalancer": ALB, "TargetGroup": TG}
    assert queries["m1"]["metric"]["dimensions"] == {"LoadBalancer": ALB, "TargetGroup": TG_ALT}
    assert (alarm["comparisonOperator"], alarm["threshold"]) == ("LessThanThreshold", 1)
    assert alarm["treatMissingData"] == "breaching"


def test_unhealthy_hosts_also_sums_every_target_group() -> None:
    alarm = alarms(monitoring_plan())["api-sg-unhealthy-hosts"]
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    assert queries["total"]["expression"] == "FILL(m0, 0) + FILL(m1, 0)"
    assert queries["m1"]["metric"]["metricName"] == "UnHealthyHostCount"


def test_alarms_notify_an_encrypted_topic_and_its_subscribers() -> None:
    plan = monitoring_plan(alarm_emails=["ops@example.com", "oncall@example.com"])
    topic = plan.one("aws:sns/topic:Topic")
    key = plan.one("aws:kms/key:Key")
    # Its own key, not alias/aws/sns: CloudWatch cannot publish under the AWS-managed key.
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    subscriptions = plan.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert sorted(s.inputs["endpoint"] for s in subscriptions) == [
        "oncall@example.com",
        "ops@example.com",
    ]
    assert {s.inputs["protocol"] for s in subscriptions} == {"email"}
    for alarm in alarms(plan).values():
        assert alarm["alarmActions"] == [topic.outputs["arn"]]
        assert alarm["okActions"] == [topic.outputs["arn"]]


def test_a_brought_key_encrypts_the_topic_and_none_is_made() -> None:
    brought = "arn:aws:kms:ap-southeast-1:111122223333:key/0d1e2f30-aaaa-bbbb-cccc-0123456789ab"
    plan = monitoring_plan(topic_kms_key_arn=brought)
    assert plan.one("aws:sns/topic:Topic").inputs["kmsMasterKeyId"] == brought
    assert plan.of_type("aws:kms/key:Key") == []
    assert plan.of_type("aws:kms/alias:Alias") == []


@pytest.mark.parametrize(
    "arn",
    [
        "alias/aws/sns",
        "arn:aws:kms:ap-southeast-1:111122223333:alias/alarms",
        "0d1e2f30-aaaa-bbbb-cccc-0123456789ab",
    ],
)
def test_a_brought_key_is_a_key_arn_not_an_alias_or_id(arn: str) -> None:
    with pytest.raises(ValidationError, match="topic_kms_key_arn"):
        MonitoringSettings(topic_kms_key_arn=arn)


def test_the_topic_key_lets_cloudwatch_alarms_of_this_account_and_region_publish() -> None:
    key = monitoring_plan().one("aws:kms/key:Key").inputs
    assert key["enableKeyRotation"] is True
    statements = {s["Sid"]: s for s in json.loads(key["policy"])["Statement"]}
    cloudwatch = statements["CloudWatchAlarmsPublish"]
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert cloudwatch["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:ap-southeast-1:123456789012:alarm:*"},
    }
    assert statements["AccountAdministers"]["Principal"] == {
        "AWS": "arn:aws:iam::123456789012:root"
    }


def test_dashboard_body_shows_each_metric_in_the_region() -> None:
    body = json.loads(dashboard_body("eu-central-1", ALB, [TG, TG_ALT], "trading-eu", "api"))
    metrics = [m for w in body["widgets"] for m in w["properties"]["metrics"]]
    names = {m[1] for m in metrics}
    assert names == {
        "RequestCount",
        "HTTPCode_Target_5XX_Count",
        "HTTPCode_ELB_5XX_Count",
        "TargetResponseTime",
        "HealthyHostCount",
        "UnHealthyHostCount",
        "CPUUtilization",
        "MemoryUtilization",
    }
    assert {w["properties"]["region"] for w in body["widgets"]} == {"eu-central-1"}
    assert [
        "AWS/ECS",
        "CPUUtilization",
        "ClusterName",
        "trading-eu",
        "ServiceName",
        "api",
    ] in metrics


def test_dashboard_is_created_with_the_stack_names() -> None:
    plan = monitoring_plan()
    dashboard = plan.one("aws:cloudwatch/dashboard:Dashboard").inputs
    assert dashboard["dashboardName"] == "api-sg"
    assert dashboard["dashboardBody"] == dashboard_body(
        "ap-southeast-1", ALB, [TG, TG_ALT], "trading-sg", "api"
    )


def test_children_are_parented_and_tagged() -> None:
    plan = monitoring_plan(alarm_emails=["ops@example.com"])
    component = plan.one("trading-infra:monitoring:Monitoring")
    children = [r for r in plan.resources if r is not component]
    assert {r.parent for r in children} == {component.urn}
    assert all(r.tag("component") == "monitoring" for r in children if is_taggable(r))
