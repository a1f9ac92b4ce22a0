"""The IAM permissions of the nightly drift job, written once and tested against what
really runs: no ``ReadOnlyAccess``, which also reads S3 objects, log events, image layers
and secret values.

- ``DRIFT_ACTIONS``: every call ``ops drift`` makes, exactly (``tests/drift`` records the
  calls of a full scan of the sg and eu stacks in moto and compares).
- ``refresh_policy``: the reads ``pulumi preview --refresh`` needs, per service of the
  stack's resource types (the provider reads each resource with its Describe/Get/List
  calls), with the data-plane reads denied explicitly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

DRIFT_ACTIONS = (
    "application-autoscaling:DescribeScalableTargets",
    "cloudfront:ListFunctions",
    "cloudfront:ListKeyValueStores",
    "cloudwatch:DescribeAlarms",
    "ec2:DescribeFlowLogs",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeNatGateways",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
    "ecr:DescribeRepositories",
    "ecr:GetLifecyclePolicy",
    "ecs:DescribeClusters",
    "ecs:DescribeServices",
    "ecs:ListClusters",
    "ecs:ListTaskDefinitions",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "events:ListRules",
    "iam:GetAccountAuthorizationDetails",
    "lambda:ListFunctions",
    "logs:DescribeLogGroups",
)
"""What ``ops drift`` calls. These List/Describe actions take no resource ARN (Service
Authorization Reference), so the statement's resource is ``*``."""

SERVICES = {
    "acm": ("acm",),
    "appautoscaling": ("application-autoscaling",),
    "cloudfront": ("cloudfront", "cloudfront-keyvaluestore"),
    "cloudwatch": ("cloudwatch", "logs", "events"),
    "ec2": ("ec2",),
    "ecr": ("ecr",),
    "ecs": ("ecs",),
    "iam": ("iam",),
    "kms": ("kms",),
    "lambda": ("lambda",),
    "lb": ("elasticloadbalancing",),
    "route53": ("route53",),
    "s3": ("s3",),
    "secretsmanager": ("secretsmanager",),
    "sns": ("sns",),
    "sqs": ("sqs",),
    "wafv2": ("wafv2",),
}
"""pulumi-aws module -> the IAM service prefixes its resources are read through."""

DATA_READS = (
    "s3:GetObject",
    "s3:GetObjectVersion",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
    "logs:StartQuery",
    "logs:GetQueryResults",
    "logs:StartLiveTail",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:GetAuthorizationToken",
    "secretsmanager:GetSecretValue",
    "kms:Decrypt",
    "sqs:ReceiveMessage",
    "wafv2:GetSampledRequests",
)
"""Reads of data, not configuration: denied whatever the allow statements say. Left
allowed, because the provider reads the resource with it: ``lambda:GetFunction``, whose
answer links to the function's code (this repository's own handler)."""


def drift_policy() -> dict[str, Any]:
    """The drift role's permissions: ``ops drift``'s calls and nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OpsDriftReads",
                "Effect": "Allow",
                "Action": list(DRIFT_ACTIONS),
                "Resource": "*",
            }
        ],
    }


def modules_of(types: Iterable[str]) -> list[str]:
    """``aws:ec2/vpc:Vpc`` -> ``ec2``, for every AWS type."""
    return sorted({t.split(":")[1].split("/")[0] for t in types if t.startswith("aws:")})


def refresh_policy(types: Iterable[str]) -> dict[str, Any]:
    """The refresh role's permissions for a stack of resource ``types``: configuration
    reads of their services, data reads denied. A module missing from ``SERVICES`` is an
    error, so a new resource type cannot go unread by accident."""
    prefixes = sorted({p for module in modules_of(types) for p in SERVICES[module]})
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConfigurationReads",
                "Effect": "Allow",
                "Action": [
                    f"{p}:{verb}*" for p in prefixes for verb in ("Describe", "Get", "List")
                ],
                "Resource": "*",
            },
            {
                "Sid": "NoDataReads",
                "Effect": "Deny",
                "Action": list(DATA_READS),
                "Resource": "*",
            },
        ],
    }


def render(policy: dict[str, Any]) -> str:
    return json.dumps(policy, indent=2) + "\n"
