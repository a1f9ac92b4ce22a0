"""LogBucket: a stack-owned S3 bucket that one AWS log writer delivers to, and the
access-log settings that create it.

Every bucket: public access blocked, objects owned by the bucket owner (no ACLs),
SSE-S3 (the writers here cannot use KMS keys: ELB access logs support SSE-S3 only, ELB
User Guide "Access log files"), TLS-only bucket policy, logs expired after
``expiration_days``. The writer's statement is the one its documentation gives:

- ``elb``: the regional Elastic Load Balancing account (regions before August 2022) or
  the ``logdelivery.elasticloadbalancing.amazonaws.com`` principal (ELB User Guide,
  "Enable access logs for your Application Load Balancer", step 2);
- ``cloudwatch-logs``: ``delivery.logs.amazonaws.com`` for vended logs such as
  CloudFront standard logging v2 (CloudWatch Logs User Guide, "Logs sent to Amazon S3"),
  limited to this account's delivery sources.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components.settings import Settings
from components.tagging import component_tags

ELB_ACCOUNTS = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-south-1": "718504428378",
    "ap-northeast-1": "582318560864",
    "ap-northeast-2": "600734575887",
    "ap-northeast-3": "383597477331",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-southeast-3": "589379963580",
    "ca-central-1": "985666609251",
    "eu-central-1": "054676820928",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-west-3": "009996457667",
    "eu-south-1": "635631232127",
    "eu-north-1": "897822967062",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
}
"""Elastic Load Balancing's account per region, for regions available before August
2022 (ELB User Guide, "Enable access logs", step 2); newer regions use the service
principal."""
ELB_LOG_DELIVERY = "logdelivery.elasticloadbalancing.amazonaws.com"
VENDED_LOG_DELIVERY = "delivery.logs.amazonaws.com"

Writer = Literal["elb", "cloudwatch-logs"]


class AccessLogSettings(Settings):
    """Access logs into a bucket the stack owns (or an existing one)."""

    enabled: bool | None = None
    """Write access logs. Default: on when ``production`` is true."""
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] | None = None
    """An existing bucket to write to instead of a stack-owned one (its policy must admit
    the writer). Default none."""
    expiration_days: Annotated[int, Field(ge=1, le=3650)] = 90
    """Days a stack-owned bucket keeps the logs. Default 90."""


def elb_principal(region: str) -> dict[str, str]:
    account = ELB_ACCOUNTS.get(region)
    if account is not None:
        return {"AWS": f"arn:aws:iam::{account}:root"}
    return {"Service": ELB_LOG_DELIVERY}


def bucket_policy(bucket_arn: str, writer: Writer, region: str, account: str) -> str:
    """TLS only, and the writer may put objects under ``AWSLogs/<account>/``."""
    objects = f"{bucket_arn}/AWSLogs/{account}/*"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "TlsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    if writer == "elb":
        statements.append(
            {
                "Sid": "ElbAccessLogs",
                "Effect": "Allow",
                "Principal": elb_principal(region),
                "Action": "s3:PutObject",
                "Resource": objects,
            }
        )
    else:
        statements += [
            {
                "Sid": "VendedLogsWrite",
                "Effect": "Allow",
                "Principal": {"Service": VENDED_LOG_DELIVERY},
                "Action": "s3:PutObject",
                "Resource": objects,
                "Condition": {
                    "StringEquals": {
                        "s3:x-amz-acl": "bucket-owner-full-control",
                        "aws:SourceAccount": account,
                    },
                    "ArnLike": {
                        "aws:SourceArn": f"arn:aws:logs:{region}:{account}:delivery-source:*"
                    },
                },
            },
            {
                "Sid": "VendedLogsCheck",
                "Effect": "Allow",
                "Principal": {"Service": VENDED_LOG_DELIVERY},
                "Action": "s3:GetBucketAcl",
                "Resource": bucket_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            },
        ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def private_bucket(name: str, bucket_id: pulumi.Input[str], opts: pulumi.ResourceOptions) -> None:
    """What every bucket of this program has: all four public-access blocks, objects
    owned by the bucket owner (ACLs off), SSE-S3 by default."""
    aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access",
        bucket=bucket_id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=opts,
    )
    aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket_id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=opts,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket_id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"
                )
            )
        ],
        opts=opts,
    )


class LogBucket(pulumi.ComponentResource):
    """A log bucket for one writer, in the region of the provider it is created with."""

    bucket: aws.s3.Bucket
    name: pulumi.Output[str]
    """The bucket's name, resolved once its policy is in place (writers check access
    when logging is turned on)."""
    arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        bucket_prefix: str,
        writer: Writer,
        region: str,
        expiration_days: int,
        protect: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("trading-infra:logs:LogBucket", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = component_tags("log_bucket")
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket_prefix=bucket_prefix,
            force_destroy=False,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        bucket_id = self.bucket.id
        private_bucket(name, bucket_id, child)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket_id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=expiration_days
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=1
                    ),
                )
            ],
            opts=child,
        )
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self)).account_id
        policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket_id,
            policy=pulumi.Output.all(self.bucket.arn, account).apply(
                lambda values: bucket_policy(values[0], writer, region, values[1])
            ),
            opts=child,
        )
        self.arn = pulumi.Output.all(self.bucket.arn, policy.id).apply(lambda values: values[0])
        self.name = pulumi.Output.all(self.bucket.bucket, policy.id).apply(lambda v: v[0])
        self.register_outputs({"name": self.name, "arn": self.arn})


class CloudFrontAccessLogs(pulumi.ComponentResource):
    """CloudFront standard logging (v2): the distribution is a CloudWatch Logs delivery
    source of ``ACCESS_LOGS``, delivered to an S3 bucket. CloudFront's delivery sources
    exist in us-east-1 only (CloudFront Developer Guide, "Configure standard logging
    (v2)"), so ``provider`` is the us-east-1 one."""

    source: aws.cloudwatch.LogDeliverySource

    def __init__(
        self,
        name: str,
        *,
        distribution_arn: pulumi.Input[str],
        bucket_arn: pulumi.Input[str],
        prefix: str,
        provider: aws.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("trading-infra:logs:CloudFrontAccessLogs", name, {}, opts)
        us_east_1 = pulumi.ResourceOptions(parent=self, provider=provider)
        tags = component_tags("log_bucket")
        self.source = aws.cloudwatch.LogDeliverySource(
            f"{name}-source",
            name=prefix,
            log_type="ACCESS_LOGS",
            resource_arn=distribution_arn,
            tags=tags,
            opts=us_east_1,
        )
        destination = aws.cloudwatch.LogDeliveryDestination(
            f"{name}-destination",
            name=prefix,
            output_format="json",
            delivery_destination_configuration=aws.cloudwatch.LogDeliveryDestinationDeliveryDestinationConfigurationArgs(
                destination_resource_arn=bucket_arn
            ),
            tags=tags,
            opts=us_east_1,
        )
        aws.cloudwatch.LogDelivery(
            f"{name}-delivery",
            delivery_source_name=self.source.name,
            delivery_destination_arn=destination.arn,
            tags=tags,
            opts=us_east_1,
        )
        self.register_outputs({})
