"""Handlers of the types moto cannot hold (tests/drift/moto_deploy.NOT_IN_MOTO), run
against botocore's Stubber: the real clients, requests checked against each API's
model and responses in its documented shape. Each is clean on the live twin of its
state, names a changed attribute, and reports a deleted resource missing; the calls
it makes are the drift role's."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ops.drift.aws import Reader, scan_aws
from ops.drift.permissions import DRIFT_ACTIONS, iam_action
from ops.drift.state import parse_state

ROUTES = "arn:aws:cloudfront::123456789012:key-value-store/0a1b2c3d-routes"
ALB = "arn:aws:elasticloadbalancing:ap-southeast-1:123456789012:loadbalancer/app/alb/0123"
TOPIC = "arn:aws:sns:ap-southeast-1:123456789012:alarms"
ROUTER = "arn:aws:cloudfront::123456789012:function/geo-router"
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/c"


def _state(type_: str, id_: str, outputs: dict[str, Any], region: str) -> str:
    provider = "urn:pulumi:sg::trading-infra::pulumi:providers:aws::aws"
    return json.dumps(
        {
            "deployment": {
                "resources": [
                    {"urn": provider, "id": "p", "type": "pulumi:providers:aws",
                     "custom": True, "inputs": {"region": region}},
                    {"urn": f"urn:pulumi:sg::trading-infra::{type_}::it", "id": id_,
                     "type": type_, "custom": True, "inputs": outputs, "outputs": outputs,
                     "provider": f"{provider}::p"},
                ]
            }
        }
    )  # fmt: skip


def _distribution(**changes: Any) -> dict[str, Any]:
    summary = {
        "Id": "E2EDGE", "ARN": "arn:aws:cloudfront::123456789012:distribution/E2EDGE",
        "Status": "Deployed", "LastModifiedTime": "2026-11-01T00:00:00Z",
        "DomainName": "d111111abcdef8.cloudfront.net",
        "Aliases": {"Quantity": 1, "Items": ["api.trading.example.com"]},
        "Origins": {"Quantity": 1, "Items": [{"Id": "sg", "DomainName": "origin-sg.example.com"}]},
        "DefaultCacheBehavior": {
            "TargetOriginId": "sg", "ViewerProtocolPolicy": "redirect-to-https",
            "ResponseHeadersPolicyId": "hdrs",
            "FunctionAssociations": {"Quantity": 1, "Items": [
                {"FunctionARN": ROUTER, "EventType": "viewer-request"}]},
        },
        "CacheBehaviors": {"Quantity": 0}, "CustomErrorResponses": {"Quantity": 0},
        "Comment": "", "PriceClass": "PriceClass_All", "Enabled": True,
        "ViewerCertificate": {"ACMCertificateArn": CERT,
                              "MinimumProtocolVersion": "TLSv1.2_2021"},
        "Restrictions": {"GeoRestriction": {"RestrictionType": "none", "Quantity": 0}},
        "WebACLId": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/acl/1",
        "HttpVersion": "http2and3", "IsIPV6Enabled": True, "Staging": False,
    }  # fmt: skip
    return {**summary, **changes}


def _headers(max_age: int) -> dict[str, Any]:
    return {
        "Type": "custom",
        "ResponseHeadersPolicy": {
            "Id": "hdrs",
            "LastModifiedTime": "2026-11-01T00:00:00Z",
            "ResponseHeadersPolicyConfig": {
                "Name": "security",
                "SecurityHeadersConfig": {
                    "StrictTransportSecurity": {
                        "Override": True, "AccessControlMaxAgeSec": max_age,
                        "IncludeSubdomains": True, "Preload": True},
                    "FrameOptions": {"Override": True, "FrameOption": "DENY"},
                    "ReferrerPolicy": {"Override": True,
                                       "ReferrerPolicy": "strict-origin-when-cross-origin"},
                    "ContentTypeOptions": {"Override": True},
                },
            },
        },
    }  # fmt: skip


def _vpc_origin(arn: str) -> dict[str, Any]:
    return {
        "Id": "vo_1", "Name": "origin-sg", "Status": "Deployed",
        "CreatedTime": "2026-11-01T00:00:00Z", "LastModifiedTime": "2026-11-01T00:00:00Z",
        "Arn": "arn:aws:cloudfront::123456789012:vpcorigin/vo_1", "OriginEndpointArn": arn,
    }  # fmt: skip


def _composite(actions_enabled: bool) -> dict[str, Any]:
    return {
        "AlarmName": "cannot-serve", "AlarmRule": 'ALARM("a") OR ALARM("b")',
        "ActionsEnabled": actions_enabled, "AlarmActions": [TOPIC], "OKActions": [TOPIC],
        "InsufficientDataActions": [],
    }  # fmt: skip


CASES = {
    "distribution": (
        "aws:cloudfront/distribution:Distribution", "E2EDGE", "us-east-1",
        {"enabled": True, "origins": [{"originId": "sg"}], "aliases": ["api.trading.example.com"],
         "webAclId": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/acl/1",
         "defaultCacheBehavior": {"viewerProtocolPolicy": "redirect-to-https",
                                  "responseHeadersPolicyId": "hdrs",
                                  "functionAssociations": [
                                      {"eventType": "viewer-request", "functionArn": ROUTER}]},
         "viewerCertificate": {"acmCertificateArn": CERT,
                               "minimumProtocolVersion": "TLSv1.2_2021"}},
        ("cloudfront", "list_distributions", {}),
        lambda items: {"DistributionList": {"Marker": "", "MaxItems": 100, "IsTruncated": False,
                                            "Quantity": len(items), "Items": items}},
        [_distribution()],
        [_distribution(WebACLId="")],
        "webAclId",
    ),
    "key": (
        "aws:cloudfront/keyvaluestoreKey:KeyvaluestoreKey", f"{ROUTES},country:US", "us-east-1",
        {"keyValueStoreArn": ROUTES, "key": "country:US", "value": "sg"},
        ("cloudfront-keyvaluestore", "list_keys", {"KvsARN": ROUTES}),
        lambda items: {"Items": items},
        [{"Key": "country:US", "Value": "sg"}, {"Key": "health:sg", "Value": "unhealthy"}],
        [{"Key": "country:US", "Value": "eu"}],
        "value",
    ),
    "headers": (
        "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy", "hdrs", "us-east-1",
        {"securityHeadersConfig": {
            "strictTransportSecurity": {"accessControlMaxAgeSec": 63072000,
                                        "includeSubdomains": True, "preload": True},
            "frameOptions": {"frameOption": "DENY"},
            "referrerPolicy": {"referrerPolicy": "strict-origin-when-cross-origin"},
            "contentTypeOptions": {"override": True}}},
        ("cloudfront", "list_response_headers_policies", {"Type": "custom"}),
        lambda items: {"ResponseHeadersPolicyList": {"MaxItems": 100, "Quantity": len(items),
                                                     "Items": items}},
        [_headers(63072000)],
        [_headers(0)],
        "securityHeadersConfig",
    ),
    "vpc-origin": (
        "aws:cloudfront/vpcOrigin:VpcOrigin", "vo_1", "us-east-1",
        {"vpcOriginEndpointConfig": {"arn": ALB, "name": "origin-sg"}},
        ("cloudfront", "list_vpc_origins", {}),
        lambda items: {"VpcOriginList": {"Marker": "", "MaxItems": 100, "IsTruncated": False,
                                         "Quantity": len(items), "Items": items}},
        [_vpc_origin(ALB)],
        [_vpc_origin(ALB.replace("alb/0123", "other/4567"))],
        "vpcOriginEndpointConfig.arn",
    ),
    "composite": (
        "aws:cloudwatch/compositeAlarm:CompositeAlarm", "cannot-serve", "ap-southeast-1",
        {"alarmName": "cannot-serve", "alarmRule": 'ALARM("a") OR ALARM("b")',
         "actionsEnabled": True, "alarmActions": [TOPIC], "okActions": [TOPIC]},
        ("cloudwatch", "describe_alarms", {"AlarmTypes": ["CompositeAlarm"]}),
        lambda items: {"CompositeAlarms": items, "MetricAlarms": []},
        [_composite(True)],
        [_composite(False)],
        "actionsEnabled",
    ),
}  # fmt: skip


def _scan(case: tuple, items: list[Any]) -> tuple[list[Any], set[str]]:
    type_, id_, region, outputs, (service, operation, params), wrap, *_ = case
    client = boto3.client(
        service, region_name=region, aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    response = {**wrap(items), "ResponseMetadata": {"RequestId": "req-1", "HTTPStatusCode": 200}}
    stubber.add_response(operation, response, params)
    calls: set[str] = set()
    signing = str(client.meta.service_model.signing_name)
    client.meta.events.register(
        "before-call", lambda model, **_: calls.add(iam_action(signing, model.name))
    )
    # The stack's state has no default tags: no tag scan, only this type's read.
    state = parse_state(_state(type_, id_, outputs, region))
    with stubber:
        findings = scan_aws(state, Reader(lambda _s, _r: client))
        stubber.assert_no_pending_responses()
    return [f for f in findings if f.urn], calls


@pytest.mark.parametrize("name", sorted(CASES))
def test_clean_changed_and_missing_as_aws_documents_them(name: str) -> None:
    case = CASES[name]
    clean, changed, attribute = case[6], case[7], case[8]
    (finding,), calls = _scan(case, clean)
    assert (finding.status, finding.diffs) == ("ok", [])
    assert calls <= set(DRIFT_ACTIONS)
    (finding,), _ = _scan(case, changed)
    assert finding.status == "changed"
    assert [d.attribute for d in finding.diffs] == [attribute]
    (finding,), _ = _scan(case, [])
    assert finding.status == "missing"


def test_a_health_key_changed_by_the_failover_is_not_drift() -> None:
    """The program ignores changes to health:<region> values: so does drift."""
    case = CASES["key"]
    health = (
        case[0], f"{ROUTES},health:sg", case[2],
        {"keyValueStoreArn": ROUTES, "key": "health:sg", "value": "healthy"}, *case[4:],
    )  # fmt: skip
    (finding,), _ = _scan(health, [{"Key": "health:sg", "Value": "unhealthy"}])
    assert (finding.status, finding.diffs) == ("ok", [])
