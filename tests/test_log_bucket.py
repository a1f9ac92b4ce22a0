"""Access logs: the ALB's and CloudFront's, into stack-owned buckets by default in
production. The bucket settings the plan renders are applied to moto's S3 over HTTP
and read back; the writer statements are the ones AWS documents per region."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.log_bucket import ELB_LOG_DELIVERY, bucket_policy, elb_principal
from ops.plan import plan_config
from ops.runtime import MOCK_ACCOUNT, Plan
from tests.drift.conftest import client_factory, reset
from tests.support import committed_config, plan_sg, with_section

SECRET_KEYS = ["trading-infra:originSecret"]


def statements(policy: str) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(policy)["Statement"]}


def test_elb_writes_as_its_regional_account_or_as_the_service_in_newer_regions() -> None:
    # ELB User Guide, "Enable access logs for your Application Load Balancer", step 2.
    assert elb_principal("ap-southeast-1") == {"AWS": "arn:aws:iam::114774131450:root"}
    assert elb_principal("eu-central-1") == {"AWS": "arn:aws:iam::054676820928:root"}
    assert elb_principal("ap-southeast-5") == {"Service": ELB_LOG_DELIVERY}
    policy = statements(bucket_policy("arn:aws:s3:::b", "elb", "eu-central-1", "111122223333"))
    assert policy["ElbAccessLogs"]["Resource"] == "arn:aws:s3:::b/AWSLogs/111122223333/*"
    assert policy["TlsOnly"]["Effect"] == "Deny"
    assert policy["TlsOnly"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_vended_logs_are_limited_to_this_accounts_delivery_sources() -> None:
    policy = statements(
        bucket_policy("arn:aws:s3:::b", "cloudwatch-logs", "us-east-1", "111122223333")
    )
    write = policy["VendedLogsWrite"]
    assert write["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert write["Condition"]["StringEquals"]["aws:SourceAccount"] == "111122223333"
    assert write["Condition"]["ArnLike"]["aws:SourceArn"].startswith(
        "arn:aws:logs:us-east-1:111122223333:delivery-source:"
    )
    assert "ElbAccessLogs" not in policy


@pytest.fixture(scope="module")
def production_sg() -> Plan:
    return plan_sg(committed_config("sg"))


def children(plan: Plan, component: str) -> dict[str, dict[str, Any]]:
    return {
        r.name.removeprefix(f"{component}-"): r.revealed
        for r in plan.resources
        if r.parent and r.parent.endswith(f"LogBucket::{component}")
    }


def apply_to_moto(url: str, parts: dict[str, dict[str, Any]], region: str) -> Any:
    """Create the bucket with exactly the rendered settings, through S3's API."""
    s3 = client_factory(url)("s3", region)
    name = "rendered-log-bucket"
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    block = parts["public-access"]
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": block["blockPublicAcls"],
            "IgnorePublicAcls": block["ignorePublicAcls"],
            "BlockPublicPolicy": block["blockPublicPolicy"],
            "RestrictPublicBuckets": block["restrictPublicBuckets"],
        },
    )
    s3.put_bucket_ownership_controls(
        Bucket=name,
        OwnershipControls={
            "Rules": [{"ObjectOwnership": parts["ownership"]["rule"]["objectOwnership"]}]
        },
    )
    rule = parts["encryption"]["rules"][0]["applyServerSideEncryptionByDefault"]
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": rule["sseAlgorithm"]}}
            ]
        },
    )
    lifecycle = parts["lifecycle"]["rules"][0]
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": lifecycle["id"],
                    "Status": lifecycle["status"],
                    "Filter": {"Prefix": lifecycle["filter"]["prefix"]},
                    "Expiration": {"Days": lifecycle["expiration"]["days"]},
                    "AbortIncompleteMultipartUpload": {
                        "DaysAfterInitiation": lifecycle["abortIncompleteMultipartUpload"][
                            "daysAfterInitiation"
                        ]
                    },
                }
            ]
        },
    )
    s3.put_bucket_policy(Bucket=name, Policy=parts["policy"]["policy"])
    return s3, name


@pytest.mark.parametrize(
    ("component", "region"), [("alb-logs", "ap-southeast-1"), ("edge-logs", "us-east-1")]
)
def test_the_rendered_bucket_settings_hold_in_s3(
    moto_url: str,
    production_sg: Plan,
    component: str,
    region: str,
) -> None:
    reset(moto_url)
    parts = children(production_sg, component)
    s3, name = apply_to_moto(moto_url, parts, region)
    block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    ownership = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    encryption = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
    assert rule["Expiration"]["Days"] == 90 and rule["Status"] == "Enabled"
    policy = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])
    sids = {s["Sid"] for s in policy["Statement"]}
    assert "TlsOnly" in sids
    assert ("ElbAccessLogs" in sids) == (component == "alb-logs")
    # Every grant is tied to this account: its log path, or its own delivery sources.
    for grant in (s for s in policy["Statement"] if s["Effect"] == "Allow"):
        tied = f"/AWSLogs/{MOCK_ACCOUNT}/" in str(grant["Resource"]) or (
            grant.get("Condition", {}).get("StringEquals", {}).get("aws:SourceAccount")
            == MOCK_ACCOUNT
        )
        assert tied, grant


def test_production_logs_the_alb_and_the_edge_into_their_buckets(production_sg: Plan) -> None:
    alb = production_sg.named("alb-alb").revealed["accessLogs"]
    assert alb["enabled"] is True and alb["bucket"].startswith("trading-infra-sg-alb-logs-")
    source = production_sg.named("edge-delivery-source")
    assert source.revealed["logType"] == "ACCESS_LOGS"
    assert source.revealed["resourceArn"] == production_sg.named("edge-distribution").outputs["arn"]
    destination = production_sg.named("edge-delivery-destination").revealed
    bucket = production_sg.named("edge-logs-bucket")
    assert (
        destination["deliveryDestinationConfiguration"]["destinationResourceArn"]
        == (bucket.outputs["arn"])
    )
    us_east_1 = production_sg.named("aws-us-east-1").urn
    for name in ("edge-delivery-source", "edge-logs-bucket"):
        assert str(production_sg.named(name).provider).startswith(us_east_1), name
    assert bucket.protect and production_sg.named("alb-logs-bucket").protect


def test_without_production_nothing_is_logged_unless_asked() -> None:
    raw = {**committed_config("sg"), "trading-infra:production": "false"}
    plan = plan_sg(raw)
    assert not [r for r in plan.resources if r.type == "aws:s3/bucket:Bucket"]
    assert not plan.named("alb-alb").revealed.get("accessLogs")
    asked = plan_sg(with_section(raw, "loadBalancer", accessLogs={"enabled": True}))
    assert [r.name for r in asked.resources if r.type == "aws:s3/bucket:Bucket"] == [
        "alb-logs-bucket"
    ]


def test_an_existing_bucket_is_written_to_instead() -> None:
    raw = with_section(committed_config("eu"), "loadBalancer", accessLogs={"bucket": "team-logs"})
    plan = plan_config("eu", raw, SECRET_KEYS)
    assert plan.named("alb-alb").revealed["accessLogs"]["bucket"] == "team-logs"
    assert not [r for r in plan.resources if r.type == "aws:s3/bucket:Bucket"]
    edge = plan_sg(
        with_section(committed_config("sg"), "edge", accessLogs={"bucket": "edge-logs-x"})
    )
    destination = edge.named("edge-delivery-destination").revealed
    assert destination["deliveryDestinationConfiguration"]["destinationResourceArn"] == (
        "arn:aws:s3:::edge-logs-x"
    )
    assert "edge-logs-bucket" not in {r.name for r in edge.resources}


def test_the_rendered_log_delivery_is_accepted_by_cloudwatch_logs(
    moto_url: str,
    production_sg: Plan,
) -> None:
    """The delivery source, destination and delivery as rendered, through CloudWatch
    Logs' API (moto over HTTP, botocore's request validation)."""
    reset(moto_url)
    logs = client_factory(moto_url)("logs", "us-east-1")
    source = production_sg.named("edge-delivery-source").revealed
    destination = production_sg.named("edge-delivery-destination").revealed
    logs.put_delivery_source(
        name=source["name"], resourceArn=source["resourceArn"], logType=source["logType"]
    )
    created = logs.put_delivery_destination(
        name=destination["name"],
        outputFormat=destination["outputFormat"],
        deliveryDestinationConfiguration={
            "destinationResourceArn": destination["deliveryDestinationConfiguration"][
                "destinationResourceArn"
            ]
        },
    )["deliveryDestination"]
    delivery = logs.create_delivery(
        deliverySourceName=source["name"], deliveryDestinationArn=created["arn"]
    )["delivery"]
    read = logs.get_delivery(id=delivery["id"])["delivery"]
    assert read["deliverySourceName"] == source["name"]
    assert read["deliveryDestinationArn"] == created["arn"]
    assert logs.get_delivery_source(name=source["name"])["deliverySource"]["logType"] == (
        "ACCESS_LOGS"
    )
