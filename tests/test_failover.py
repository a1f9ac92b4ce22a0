"""RegionFailover: budget and policies (pure), the component (mocked), the stack wiring,
and the Lambda layer build (real pip)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.failover import (
    CHILD_ALARMS,
    EVENTBRIDGE_DELIVERY_SECONDS,
    KVS_PROPAGATION_SECONDS,
    LAMBDA_SOURCE,
    FailoverSettings,
    RegionFailover,
    alarm_event_pattern,
    composite_rule,
    dead_letter_queue_policy,
    failover_budget,
    lambda_policy,
)
from ops.layer import build_layer
from ops.runtime import Plan
from stacks import outputs
from stacks.config import ConfigError, parse_stack_config
from tests.support import (
    committed_config,
    is_taggable,
    plan_sg,
    run_component,
    split_settings,
    with_section,
)

KVS = "arn:aws:cloudfront::123456789012:key-value-store/0d6ba4d4"
ALARM_ARN = "arn:aws:cloudwatch:ap-southeast-1:123456789012:alarm:trading-infra-sg-cannot-serve"


def failover_plan(**overrides) -> Plan:
    settings, wiring = split_settings(FailoverSettings, overrides)
    wiring = {
        "region": "sg",
        "name_prefix": "trading-infra-sg",
        "key_value_store_arn": KVS,
        "load_balancer_arn_suffix": "app/alb/1",
        "target_group_arn_suffixes": ["targetgroup/tg/2", "targetgroup/tg-alt/3"],
        "alarm_topic_arn": "arn:aws:sns:ap-southeast-1:123456789012:alarms",
        **wiring,
    }
    return run_component(lambda: RegionFailover("failover", settings, **wiring) and None)


# --- pure functions ------------------------------------------------------------------


def test_budget_sums_alarm_eventbridge_lambda_and_propagation() -> None:
    budget = failover_budget(60, 1, 10, get_failover_seconds=3)
    assert budget.alarm_seconds == 60
    assert (
        budget.all_methods_seconds
        == 60 + EVENTBRIDGE_DELIVERY_SECONDS + 10 + KVS_PROPAGATION_SECONDS
    )
    assert budget.get_seconds == 3


@pytest.mark.parametrize(("period", "periods", "timeout"), [(60, 2, 10), (300, 1, 5), (60, 1, 60)])
def test_budget_follows_each_config_key(period: int, periods: int, timeout: int) -> None:
    base = failover_budget(60, 1, 10, 3).all_methods_seconds
    changed = failover_budget(period, periods, timeout, 3).all_methods_seconds
    assert changed - base == (period * periods - 60) + (timeout - 10)


def test_composite_rule_fires_on_any_child() -> None:
    assert composite_rule(["a", "b", "c"]) == 'ALARM("a") OR ALARM("b") OR ALARM("c")'


def test_event_pattern_matches_only_that_alarm() -> None:
    pattern = json.loads(alarm_event_pattern(ALARM_ARN))
    assert pattern == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "resources": [ALARM_ARN],
    }


def test_lambda_policy_is_scoped_to_exact_arns() -> None:
    log_group = "arn:aws:logs:ap-southeast-1:123456789012:log-group:/aws/lambda/f"
    queue = "arn:aws:sqs:ap-southeast-1:123456789012:dlq"
    statements = {
        s["Sid"]: s
        for s in json.loads(lambda_policy(KVS, ALARM_ARN, log_group, queue))["Statement"]
    }
    assert statements["HealthKey"]["Resource"] == KVS
    assert statements["HealthKey"]["Action"] == [
        "cloudfront-keyvaluestore:DescribeKeyValueStore",
        "cloudfront-keyvaluestore:GetKey",
        "cloudfront-keyvaluestore:PutKey",
    ]
    assert statements["AlarmState"]["Resource"] == ALARM_ARN
    assert statements["Logs"]["Resource"] == f"{log_group}:*"
    assert statements["DeadLetters"]["Resource"] == queue
    # X-Ray's two write actions take no resource (the only "*"), and nothing else rides
    # along with them.
    tracing = statements.pop("Tracing")
    assert tracing["Action"] == ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    assert tracing["Resource"] == "*"
    assert "*" not in json.dumps([s["Resource"] for s in statements.values()]).replace(":*", "")


def test_dead_letter_queue_accepts_only_the_failover_rules() -> None:
    statement = json.loads(dead_letter_queue_policy("arn:q", ["arn:rule-b", "arn:rule-a"]))[
        "Statement"
    ][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": ["arn:rule-a", "arn:rule-b"]}}


# --- the component -------------------------------------------------------------------


def test_fast_child_alarms_and_a_composite_over_them() -> None:
    plan = failover_plan(period_seconds=60, evaluation_periods=2)
    children = {
        a.inputs["name"]: a.inputs for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    }
    names = [f"trading-infra-sg-failover-{short}" for short in CHILD_ALARMS]
    for name in names:
        assert children[name]["evaluationPeriods"] == 2
        assert children[name]["datapointsToAlarm"] == 2
    composite = plan.one("aws:cloudwatch/compositeAlarm:CompositeAlarm").inputs
    assert composite["alarmName"] == "trading-infra-sg-cannot-serve"
    assert composite["alarmRule"] == composite_rule(names)
    healthy = children["trading-infra-sg-failover-no-healthy-hosts"]
    assert {q["id"] for q in healthy["metricQueries"]} == {"m0", "m1", "total"}


def test_a_missing_host_count_datapoint_never_flips_the_region() -> None:
    """Right after a deploy a target group may not have reported yet: that period must
    leave the failover alarm INSUFFICIENT_DATA, not ALARM. A period counts as "no
    healthy host" only when a group reported and the sum is below 1: the groups are
    summed with SUM([...]) (no datapoint where none reported), not FILL(..., 0)."""
    plan = failover_plan()
    children = {
        a.inputs["name"]: a.inputs for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    }
    healthy = children["trading-infra-sg-failover-no-healthy-hosts"]
    assert healthy["treatMissingData"] == "missing"
    queries = {q["id"]: q for q in healthy["metricQueries"]}
    assert queries["total"]["expression"] == "SUM([m0, m1])"
    assert (healthy["comparisonOperator"], healthy["threshold"]) == ("LessThanThreshold", 1)


def test_rule_matches_only_the_composite_alarm_and_a_schedule_checks_recovery() -> None:
    plan = failover_plan()
    composite = plan.one("aws:cloudwatch/compositeAlarm:CompositeAlarm")
    rules = {r.name: r.inputs for r in plan.of_type("aws:cloudwatch/eventRule:EventRule")}
    assert json.loads(rules["failover-alarm-changes"]["eventPattern"]) == json.loads(
        alarm_event_pattern(composite.outputs["arn"])
    )
    assert rules["failover-recovery-check"]["scheduleExpression"] == "rate(1 minute)"
    function = plan.one("aws:lambda/function:Function")
    targets = plan.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert {t.inputs["arn"] for t in targets} == {function.outputs["arn"]}
    permissions = plan.of_type("aws:lambda/permission:Permission")
    assert {p.inputs["principal"] for p in permissions} == {"events.amazonaws.com"}
    assert len(permissions) == 2


def test_function_has_least_privilege_and_its_settings() -> None:
    plan = failover_plan(recovery_periods=4, period_seconds=60, lambda_timeout_seconds=12)
    function = plan.one("aws:lambda/function:Function").inputs
    assert function["runtime"] == "python3.12"
    assert function["architectures"] == ["arm64"]
    assert function["handler"] == "handler.handler"
    assert function["timeout"] == 12
    assert "reservedConcurrentExecutions" not in function
    (role,) = plan.of_type("aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    variables = function["environment"]["variables"]
    assert variables == {
        "KVS_ARN": KVS,
        "REGION_ID": "sg",
        "ALARM_NAME": "trading-infra-sg-cannot-serve",
        "RECOVERY_SECONDS": "240",
    }
    code = function["code"]["assetArchive"]["handler.py"]
    assert code["fileAsset"].endswith("failover_lambda/handler.py")
    assert code["sha256"] is not None
    assert function["layers"] == [plan.one("aws:lambda/layerVersion:LayerVersion").outputs["arn"]]
    policy = json.loads(plan.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    resources = {s["Sid"]: s["Resource"] for s in policy["Statement"]}
    assert resources["HealthKey"] == KVS
    assert (
        resources["AlarmState"]
        == plan.one("aws:cloudwatch/compositeAlarm:CompositeAlarm").outputs["arn"]
    )


def test_failures_land_in_an_encrypted_dead_letter_queue() -> None:
    plan = failover_plan()
    queue = plan.one("aws:sqs/queue:Queue")
    assert queue.inputs["sqsManagedSseEnabled"] is True
    function = plan.one("aws:lambda/function:Function").inputs
    assert function["deadLetterConfig"] == {"targetArn": queue.outputs["arn"]}
    for target in plan.of_type("aws:cloudwatch/eventTarget:EventTarget"):
        assert target.inputs["deadLetterConfig"] == {"arn": queue.outputs["arn"]}
        assert target.inputs["retryPolicy"]["maximumRetryAttempts"] == 3


def test_function_errors_and_dead_letters_raise_alarms() -> None:
    plan = failover_plan()
    alarms = {
        a.inputs["name"]: a.inputs for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    }
    errors = alarms["trading-infra-sg-failover-function-errors"]
    assert (errors["namespace"], errors["metricName"]) == ("AWS/Lambda", "Errors")
    assert errors["dimensions"] == {"FunctionName": "trading-infra-sg-failover"}
    assert errors["alarmActions"] == ["arn:aws:sns:ap-southeast-1:123456789012:alarms"]
    dead = alarms["trading-infra-sg-failover-dead-letters"]
    assert dead["metricName"] == "ApproximateNumberOfMessagesVisible"


def test_log_group_has_retention_and_follows_protect() -> None:
    plan = failover_plan(protect=True, log_retention_days=90)
    group = plan.one("aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["name"] == "/aws/lambda/trading-infra-sg-failover"
    assert group.inputs["retentionInDays"] == 90
    assert group.protect is True


def test_children_are_parented_and_tagged() -> None:
    plan = failover_plan()
    component = plan.one("trading-infra:failover:RegionFailover")
    children = [r for r in plan.resources if r is not component]
    assert {r.parent for r in children} == {component.urn}
    assert all(r.tag("component") == "failover" for r in children if is_taggable(r))


def test_lambda_source_imports_nothing_from_pulumi() -> None:
    source = LAMBDA_SOURCE.read_text()
    assert "pulumi" not in source.replace("Pulumi", "")


# --- the primary stack ---------------------------------------------------------------


def test_sg_wires_failover_for_both_regions_into_the_one_store() -> None:
    plan = plan_sg(committed_config("sg"))
    store = plan.one("aws:cloudfront/keyValueStore:KeyValueStore").outputs["arn"]
    functions = {
        f.inputs["environment"]["variables"]["REGION_ID"]: f
        for f in plan.of_type("aws:lambda/function:Function")
    }
    assert set(functions) == {"sg", "eu"}
    assert {f.inputs["environment"]["variables"]["KVS_ARN"] for f in functions.values()} == {store}
    eu_alarm = next(
        a.inputs
        for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.inputs["name"] == "trading-infra-eu-failover-elb-5xx"
    )
    # eu's alarms watch eu's ALB, read from the eu stack's outputs.
    assert eu_alarm["dimensions"] == {"LoadBalancer": "app/alb-alb/0123456789abcdef"}


def test_committed_budget_meets_the_targets() -> None:
    budget = plan_sg(committed_config("sg")).outputs[outputs.FAILOVER_BUDGET]
    assert budget["all_methods_seconds"] <= 120
    assert budget["get_seconds"] <= 6


def test_failover_can_be_turned_off() -> None:
    plan = plan_sg(with_section(committed_config("sg"), "failover", enabled=False))
    assert plan.of_type("aws:lambda/function:Function") == []
    assert outputs.FAILOVER_BUDGET not in plan.outputs


def test_failover_config_on_the_fallback_is_rejected() -> None:
    raw = {**committed_config("eu"), "trading-infra:failover": json.dumps({"enabled": True})}
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw, "eu")
    assert caught.value.problems == [
        "trading-infra:failover: is set but role is 'fallback'; failover is wired by the "
        "primary stack, which owns the edge. Remove it"
    ]


# --- the Lambda layer ----------------------------------------------------------------


def test_layer_build_installs_awscrt_for_lambda_arm64(tmp_path: Path) -> None:
    target = tmp_path / "layer"
    command = build_layer(target)
    assert "manylinux2014_aarch64" in command and "3.12" in command
    (library,) = (target / "python").glob("_awscrt*.so")
    header = library.read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    assert int.from_bytes(header[18:20], "little") == 0xB7  # EM_AARCH64
    pinned = (LAMBDA_SOURCE.parent / "requirements.txt").read_text().split("awscrt==")[1].split()[0]
    assert (target / "python" / f"awscrt-{pinned}.dist-info").is_dir()
