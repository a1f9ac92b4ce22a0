"""EdgeFirewall: the AWS WAF web ACL in front of the CloudFront edge.

CLOUDFRONT-scope web ACLs live in us-east-1 (WAF Developer Guide, "Regional and global
resources"), so the component takes a us-east-1 provider. Rules, in order:

1. a rate limit per client IP on the order paths (stricter), then on everything;
2. AWS's managed groups: IP reputation, known bad inputs, the core rule set.

``mode: count`` makes every rule count instead of block (the managed groups' override
action, the rate rules' action), for a rollout that watches the counts first. Requests
are logged to a CloudWatch log group whose name starts with ``aws-waf-logs-`` (a WAF
requirement), with the Authorization and Cookie headers redacted.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator

from components.settings import Settings, retention
from components.tagging import component_tags

MANAGED_RULE_GROUPS = (
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesCommonRuleSet",
)
"""AWS's managed rule groups, in evaluation order (cheapest first)."""
REDACTED_HEADERS = ("authorization", "cookie")


class WafSettings(Settings):
    """``trading-infra:edge.waf``: the web ACL the stack creates for the edge."""

    enabled: bool | None = None
    """Create and attach the web ACL. Default: on when ``production`` is true."""
    mode: Literal["block", "count"] = "block"
    """``count``: every rule only counts (metrics and sampled requests show what would be
    blocked), for the first days on a live stack; then ``block``. Default ``block``."""
    rate_limit: Annotated[int, Field(ge=10, le=2_000_000_000)] = 2000
    """Requests one client IP may make per evaluation window. Default 2000."""
    evaluation_window_seconds: Literal[60, 120, 300, 600] = 300
    """The rate rules' window. Default 300."""
    order_rate_limit: Annotated[int, Field(ge=10, le=2_000_000_000)] | None = 300
    """A stricter limit per client IP on ``orderPaths``; none for no such rule. Default
    300."""
    order_paths: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: ["/api/orders"]
    )
    """Path prefixes the order limit applies to. Default ``/api/orders``."""
    log_retention_days: int = 365
    """Retention of the WAF log group. Default 365."""

    @field_validator("order_paths")
    @classmethod
    def _paths(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value.startswith("/") or any(c in value for c in " *?#"):
                raise ValueError(f"{value!r} is not a path prefix (starts with /, no wildcards)")
        return values

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return retention(value)


def _visibility(metric: str) -> dict[str, Any]:
    return {
        "CloudWatchMetricsEnabled": True,
        "MetricName": metric,
        "SampledRequestsEnabled": True,
    }


def _starts_with(path: str) -> dict[str, Any]:
    return {
        "ByteMatchStatement": {
            "FieldToMatch": {"UriPath": {}},
            "PositionalConstraint": "STARTS_WITH",
            "SearchString": path,
            "TextTransformations": [{"Priority": 0, "Type": "NONE"}],
        }
    }


def web_acl_rules(prefix: str, settings: WafSettings) -> list[dict[str, Any]]:
    """The web ACL's rules in the WAF API's JSON (``rule_json``)."""
    counting = settings.mode == "count"
    action = {"Count": {}} if counting else {"Block": {}}
    rules: list[dict[str, Any]] = []
    if settings.order_rate_limit is not None:
        paths = [_starts_with(path) for path in settings.order_paths]
        scope = paths[0] if len(paths) == 1 else {"OrStatement": {"Statements": paths}}
        rules.append(
            {
                "Name": "rate-limit-orders",
                "Statement": {
                    "RateBasedStatement": {
                        "Limit": settings.order_rate_limit,
                        "AggregateKeyType": "IP",
                        "EvaluationWindowSec": settings.evaluation_window_seconds,
                        "ScopeDownStatement": scope,
                    }
                },
                "Action": action,
            }
        )
    rules.append(
        {
            "Name": "rate-limit",
            "Statement": {
                "RateBasedStatement": {
                    "Limit": settings.rate_limit,
                    "AggregateKeyType": "IP",
                    "EvaluationWindowSec": settings.evaluation_window_seconds,
                }
            },
            "Action": action,
        }
    )
    for group in MANAGED_RULE_GROUPS:
        rules.append(
            {
                "Name": group,
                "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": group}},
                "OverrideAction": {"Count": {}} if counting else {"None": {}},
            }
        )
    for priority, rule in enumerate(rules):
        rule["Priority"] = priority
        rule["VisibilityConfig"] = _visibility(f"{prefix}-{rule['Name']}")
    return rules


class EdgeFirewall(pulumi.ComponentResource):
    """A CLOUDFRONT-scope web ACL and its request log."""

    web_acl: aws.wafv2.WebAcl
    arn: pulumi.Output[str]
    """The web ACL's ARN, for the distribution's ``web_acl_id``."""
    log_group: aws.cloudwatch.LogGroup

    def __init__(
        self,
        name: str,
        settings: WafSettings,
        *,
        prefix: str,
        provider: aws.Provider,
        protect_logs: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``protect_logs``: the request log cannot be deleted by Pulumi (production)."""
        super().__init__("trading-infra:edge:EdgeFirewall", name, {}, opts)
        us_east_1 = pulumi.ResourceOptions(parent=self, provider=provider)
        tags = component_tags("waf")
        self.web_acl = aws.wafv2.WebAcl(
            f"{name}-acl",
            name=prefix,
            scope="CLOUDFRONT",
            description=f"{prefix}: rate limits and AWS managed rules ({settings.mode})",
            default_action=aws.wafv2.WebAclDefaultActionArgs(
                allow=aws.wafv2.WebAclDefaultActionAllowArgs()
            ),
            rule_json=json.dumps(web_acl_rules(prefix, settings), sort_keys=True),
            visibility_config=aws.wafv2.WebAclVisibilityConfigArgs(
                cloudwatch_metrics_enabled=True,
                metric_name=prefix,
                sampled_requests_enabled=True,
            ),
            tags=tags,
            opts=us_east_1,
        )
        self.arn = self.web_acl.arn
        # WAF accepts only log groups named aws-waf-logs-* (WAF Developer Guide,
        # "Sending web ACL traffic logs to an Amazon CloudWatch Logs log group").
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-log",
            name=f"aws-waf-logs-{prefix}",
            retention_in_days=settings.log_retention_days,
            tags=tags,
            opts=pulumi.ResourceOptions.merge(
                us_east_1, pulumi.ResourceOptions(protect=protect_logs)
            ),
        )
        aws.wafv2.WebAclLoggingConfiguration(
            f"{name}-logging",
            resource_arn=self.web_acl.arn,
            log_destination_configs=[self.log_group.arn],
            redacted_fields=[
                aws.wafv2.WebAclLoggingConfigurationRedactedFieldArgs(
                    single_header=aws.wafv2.WebAclLoggingConfigurationRedactedFieldSingleHeaderArgs(
                        name=header
                    )
                )
                for header in REDACTED_HEADERS
            ],
            opts=us_east_1,
        )
        self.register_outputs({"arn": self.arn})
