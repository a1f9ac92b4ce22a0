"""The edge's web ACL: its rules are a valid WAF API request (botocore's wafv2 model,
the schema the real CreateWebACL call is checked against), count and block modes do
what they say, and the stacks attach it by default in production only."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from components.waf import MANAGED_RULE_GROUPS, WafSettings, web_acl_rules
from ops.plan import plan_config
from ops.runtime import Plan
from stacks.config import ConfigError, parse_stack_config
from tests.support import committed_config, plan_sg, with_section

SECRET_KEYS = ["trading-infra:originSecret"]


def create_web_acl_problems(rules: list[dict[str, Any]]) -> str:
    """What botocore's parameter validation (the service model's types, enums, ranges)
    says of a CreateWebACL call with ``rules``: empty when valid."""
    model = botocore.session.get_session().get_service_model("wafv2")
    shape = model.operation_model("CreateWebACL").input_shape
    request = {
        "Name": "trading-infra-sg",
        "Scope": "CLOUDFRONT",
        "DefaultAction": {"Allow": {}},
        "Rules": rules,
        "VisibilityConfig": {
            "SampledRequestsEnabled": True,
            "CloudWatchMetricsEnabled": True,
            "MetricName": "trading-infra-sg",
        },
    }
    report = ParamValidator().validate(request, shape)
    return report.generate_report() if report.has_errors() else ""


@pytest.mark.parametrize("mode", ["block", "count"])
def test_rules_are_a_valid_create_web_acl_request(mode: str) -> None:
    settings = WafSettings(mode=mode, order_paths=["/api/orders", "/api/v1/orders"])  # type: ignore[arg-type]
    assert create_web_acl_problems(web_acl_rules("trading-infra-sg", settings)) == ""


def test_the_validation_can_fail() -> None:
    rules = web_acl_rules("p", WafSettings())
    rules[0]["Statement"]["RateBasedStatement"]["AggregateKeyType"] = 3
    del rules[1]["VisibilityConfig"]
    problems = create_web_acl_problems(rules)
    assert "AggregateKeyType" in problems and "VisibilityConfig" in problems


def by_name(rules: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {rule["Name"]: rule for rule in rules}


def test_block_mode_blocks_and_count_mode_only_counts() -> None:
    blocking = by_name(web_acl_rules("p", WafSettings()))
    counting = by_name(web_acl_rules("p", WafSettings(mode="count")))
    for name in ("rate-limit", "rate-limit-orders"):
        assert blocking[name]["Action"] == {"Block": {}}
        assert counting[name]["Action"] == {"Count": {}}
    for group in MANAGED_RULE_GROUPS:
        assert blocking[group]["OverrideAction"] == {"None": {}}
        assert counting[group]["OverrideAction"] == {"Count": {}}


def test_the_order_limit_is_stricter_scoped_to_the_order_paths_and_evaluated_first() -> None:
    rules = web_acl_rules("p", WafSettings(rate_limit=2000, order_rate_limit=100))
    orders, general = rules[0], rules[1]
    assert orders["Name"] == "rate-limit-orders" and general["Name"] == "rate-limit"
    statement = orders["Statement"]["RateBasedStatement"]
    assert statement["Limit"] == 100 and statement["AggregateKeyType"] == "IP"
    match = statement["ScopeDownStatement"]["ByteMatchStatement"]
    assert (match["SearchString"], match["PositionalConstraint"]) == ("/api/orders", "STARTS_WITH")
    assert [r["Priority"] for r in rules] == list(range(len(rules)))
    assert "rate-limit-orders" not in by_name(
        web_acl_rules("p", WafSettings(order_rate_limit=None))
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rateLimit": 5}, "greater than or equal to 10"),
        ({"orderPaths": ["api/orders"]}, "is not a path prefix"),
        ({"evaluationWindowSeconds": 30}, "Input should be 60, 120, 300 or 600"),
        ({"logRetentionDays": 42}, "is not a CloudWatch Logs retention"),
    ],
)
def test_bad_settings_are_refused_at_their_key(changes: dict[str, Any], message: str) -> None:
    raw = with_section(committed_config("sg"), "edge", waf=changes)
    raw["trading-infra:originSecret"] = "s"
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw, "sg", SECRET_KEYS)
    (problem,) = caught.value.problems
    assert problem.startswith(f"trading-infra:edge.waf.{next(iter(changes))}: ")
    assert message in problem


def distribution(plan: Plan) -> dict[str, Any]:
    return plan.named("edge-distribution").revealed


def test_production_attaches_a_new_web_acl_created_in_us_east_1() -> None:
    plan = plan_sg(committed_config("sg"))
    acl = plan.named("waf-acl")
    assert acl.revealed["scope"] == "CLOUDFRONT"
    assert distribution(plan)["webAclId"] == acl.outputs["arn"]
    provider = plan.named("aws-us-east-1")
    assert provider.revealed["region"] == "us-east-1"
    for name in ("waf-acl", "waf-log", "waf-logging"):
        assert str(plan.named(name).provider).startswith(provider.urn + "::"), name
    assert plan.named("waf-log").revealed["name"].startswith("aws-waf-logs-")
    logging = plan.named("waf-logging").revealed
    redacted = {f["singleHeader"]["name"] for f in logging["redactedFields"]}
    assert redacted == {"authorization", "cookie"}
    rules = json.loads(acl.revealed["ruleJson"])
    assert {r["Name"] for r in rules} >= {"rate-limit", *MANAGED_RULE_GROUPS}


def test_without_production_there_is_no_web_acl_unless_asked() -> None:
    raw = {**committed_config("sg"), "trading-infra:production": "false"}
    plan = plan_sg(raw)
    assert "webAclId" not in distribution(plan) or not distribution(plan)["webAclId"]
    assert not [r for r in plan.resources if r.type.startswith("aws:wafv2")]
    asked = plan_sg(with_section(raw, "edge", waf={"enabled": True}))
    assert [r.name for r in asked.resources if r.type == "aws:wafv2/webAcl:WebAcl"] == ["waf-acl"]


def test_an_existing_web_acl_is_attached_instead() -> None:
    arn = "arn:aws:wafv2:us-east-1:111122223333:global/webacl/shared/abc"
    plan = plan_sg(with_section(committed_config("sg"), "edge", webAclArn=arn))
    assert distribution(plan)["webAclId"] == arn
    assert not [r for r in plan.resources if r.type.startswith("aws:wafv2")]
    raw = with_section(committed_config("sg"), "edge", webAclArn=arn, waf={"enabled": True})
    raw["trading-infra:originSecret"] = "s"
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw, "sg", SECRET_KEYS)
    assert caught.value.problems == [
        "trading-infra:edge.waf.enabled: edge.webAclArn attaches an existing web ACL; remove "
        "one of the two"
    ]


def test_the_eu_stack_has_no_edge_and_no_web_acl() -> None:
    plan = plan_config("eu", committed_config("eu"), SECRET_KEYS)
    assert not [r for r in plan.resources if r.type.startswith("aws:wafv2")]


def test_the_logging_configuration_is_a_valid_request() -> None:
    """The rendered WebAclLoggingConfiguration as WAF's PutLoggingConfiguration request,
    checked against botocore's wafv2 model; the log group name has WAF's required
    prefix (WAF Developer Guide, CloudWatch Logs destinations: aws-waf-logs-)."""
    plan = plan_sg(committed_config("sg"))
    rendered = plan.named("waf-logging").revealed
    log_group = plan.named("waf-log")
    assert log_group.revealed["name"].startswith("aws-waf-logs-")
    request = {
        "LoggingConfiguration": {
            "ResourceArn": plan.named("waf-acl").outputs["arn"],
            "LogDestinationConfigs": [log_group.outputs["arn"]],
            "RedactedFields": [
                {"SingleHeader": {"Name": f["singleHeader"]["name"]}}
                for f in rendered["redactedFields"]
            ],
        }
    }
    model = botocore.session.get_session().get_service_model("wafv2")
    shape = model.operation_model("PutLoggingConfiguration").input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
