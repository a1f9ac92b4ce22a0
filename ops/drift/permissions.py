"""The IAM permissions of the nightly drift job, written once and tested against what
really runs: no ``ReadOnlyAccess``, which also reads S3 objects, log events, image layers
and secret values.

- ``DRIFT_ACTIONS``: every call ``ops drift`` makes, exactly (``tests/drift`` records the
  calls of a full scan of the sg, eu and vps stacks in moto and compares).
- ``refresh_policy``: the reads ``pulumi preview --refresh`` needs, per service of the
  stack's resource types (the provider reads each resource with its Describe/Get/List
  calls), with the data-plane reads denied explicitly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

DRIFT_ACTIONS = (
    "acm:ListCertificates",
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:DescribeScalingPolicies",
    "cloudfront-keyvaluestore:ListKeys",
    "cloudfront:GetFunction",
    "cloudfront:ListDistributions",
    "cloudfront:ListFunctions",
    "cloudfront:ListKeyValueStores",
    "cloudfront:ListResponseHeadersPolicies",
    "cloudfront:ListVpcOrigins",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:ListDashboards",
    "ec2:DescribeAddresses",
    "ec2:DescribeFlowLogs",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeNatGateways",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeVpcs",
    "ecr:DescribeRepositories",
    "ecr:GetLifecyclePolicy",
    "ecr:ListImages",
    "ecs:DescribeClusters",
    "ecs:DescribeServices",
    "ecs:ListClusters",
    "ecs:ListServices",
    "ecs:ListTaskDefinitions",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "events:ListRules",
    "events:ListTargetsByRule",
    "iam:GetAccountAuthorizationDetails",
    "iam:ListAccessKeys",
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListKeys",
    "lambda:GetPolicy",
    "lambda:ListFunctions",
    "lambda:ListLayerVersions",
    "logs:DescribeDeliveries",
    "logs:DescribeDeliveryDestinations",
    "logs:DescribeDeliverySources",
    "logs:DescribeLogGroups",
    "route53:ListResourceRecordSets",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketVersioning",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:ListAllMyBuckets",
    "sns:GetTopicAttributes",
    "sns:ListTopics",
    "sqs:GetQueueAttributes",
    "sqs:ListQueues",
    "tag:GetResources",
    "wafv2:GetWebACL",
    "wafv2:ListLoggingConfigurations",
    "wafv2:ListWebACLs",
)
"""What ``ops drift`` calls, as IAM actions. The statement's resource is ``*``: the List
actions take no resource ARN, and the per-resource reads are of the stack's own
resources, whose ARNs the role cannot know before the stack exists."""

IAM_ACTION_OF = {
    "s3:ListBuckets": "s3:ListAllMyBuckets",
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "s3:GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "s3:GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
}
"""API operations whose IAM action has another name (Service Authorization Reference,
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html)."""

IAM_PREFIX_OF = {"monitoring": "cloudwatch", "tagging": "tag"}
"""Signing names that are not the IAM prefix (CloudWatch, Resource Groups Tagging)."""


def iam_action(signing_name: str, operation: str) -> str:
    """The IAM action a call of ``operation`` needs."""
    action = f"{IAM_PREFIX_OF.get(signing_name, signing_name)}:{operation}"
    return IAM_ACTION_OF.get(action, action)


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
