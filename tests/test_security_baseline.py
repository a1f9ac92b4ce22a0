"""The policy rules (policies/rules.py) on whole stack plans.

Every rule holds on the committed stacks and on variants (public origin protection,
each deployment strategy), and every rule is shown to catch a deliberately broken
resource: the same rules the policy pack and ``ops check`` run.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest

from ops.check import subjects_of
from ops.plan import plan_config
from ops.runtime import Plan, PlannedResource
from policies.rules import RULES, Rule
from tests.support import committed_config, committed_plan, plan_sg, with_section

SECRET_KEYS = ["trading-infra:originSecret"]
BY_NAME: dict[str, Rule] = {r.name: r for r in RULES}


def variant(stack: str, **sections: dict) -> dict[str, str]:
    raw = committed_config(stack)
    for section, changes in sections.items():
        raw = with_section(raw, section, **changes)
    raw["trading-infra:originSecret"] = "from-config"
    return raw


def public(stack: str, region: str) -> dict[str, str]:
    return variant(
        stack,
        loadBalancer={
            "originProtection": "public",
            "createCertificate": None,
            "hostedZoneId": None,
            "certificateArn": f"arn:aws:acm:{region}:111122223333:certificate/abc",
            "originDomainName": f"origin-{stack}.example.com",
        },
    )


@cache
def plans() -> dict[str, Plan]:
    eu_public = plan_config("eu", public("eu", "eu-central-1"), SECRET_KEYS)
    return {
        "sg": committed_plan("sg"),
        "eu": committed_plan("eu"),
        "vps": committed_plan("vps"),
        "eu-public": eu_public,
        "sg-public": plan_sg(
            public("sg", "ap-southeast-1"), SECRET_KEYS, fallback_outputs=eu_public.outputs
        ),
        "sg-blue-green": plan_sg(
            variant("sg", service={"deployment": {"strategy": "BLUE_GREEN"}}), SECRET_KEYS
        ),
        "sg-linear": plan_sg(
            variant("sg", service={"deployment": {"strategy": "LINEAR"}}), SECRET_KEYS
        ),
    }


@pytest.mark.parametrize("rule_name", sorted(BY_NAME))
@pytest.mark.parametrize(
    "plan_name", ["sg", "eu", "vps", "eu-public", "sg-public", "sg-blue-green", "sg-linear"]
)
def test_rule_holds(rule_name: str, plan_name: str) -> None:
    assert BY_NAME[rule_name].run(subjects_of(plans()[plan_name])) == []


Mutation = Callable[[dict[str, Any]], None]


def set_container(key: str, value: object) -> Mutation:
    def mutate(props: dict[str, Any]) -> None:
        definitions = json.loads(props["containerDefinitions"])
        if value is None:
            definitions[0].pop(key)
        else:
            definitions[0][key] = value
        props["containerDefinitions"] = json.dumps(definitions)

    return mutate


def world_ssh(props: dict[str, Any]) -> None:
    props["ingress"].append(
        {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}
    )


REMOVE = "remove"


@dataclass(frozen=True)
class OnResource:
    """A mutation of the planned resource itself (its options), not of its inputs."""

    change: Callable[[PlannedResource], PlannedResource]


def without_dependency_on(*names: str) -> OnResource:
    def change(resource: PlannedResource) -> PlannedResource:
        kept = tuple(d for d in resource.dependencies if d.rsplit("::", 1)[-1] not in names)
        assert kept != resource.dependencies, names
        return dataclasses.replace(resource, dependencies=kept)

    return OnResource(change)


def with_options(**changes: Any) -> OnResource:
    return OnResource(lambda resource: dataclasses.replace(resource, **changes))


def no_trust_condition(props: dict[str, Any]) -> None:
    document = json.loads(props["assumeRolePolicy"])
    document["Statement"][0].pop("Condition")
    props["assumeRolePolicy"] = json.dumps(document)


def cloudfront_on_port_80_too(props: dict[str, Any]) -> None:
    (rule,) = props["ingress"]
    props["ingress"].append({**rule, "fromPort": 80, "toPort": 80})


# rule -> (plan, resource type or name, mutation or REMOVE)
BREAKS: dict[str, tuple[str, str, Mutation | OnResource | str]] = {
    "cloudfront-waf": ("sg", "edge-distribution", lambda p: p.pop("webAclId")),
    "cloudfront-https-end-to-end": (
        "sg",
        "edge-vpc-origin-eu",
        lambda p: p["vpcOriginEndpointConfig"].update(originProtocolPolicy="http-only"),
    ),
    "lambda-tracing": ("sg", "failover-sg-function", lambda p: p.pop("tracingConfig")),
    "cloudfront-access-logs": ("sg", "edge-delivery-source", REMOVE),
    "alb-access-logs": ("eu", "alb-alb", lambda p: p.update(accessLogs={"enabled": False})),
    "sns-topic-key-usable-by-cloudwatch": (
        "sg",
        "monitoring-alarms",
        lambda p: p.update(kmsMasterKeyId="alias/aws/sns"),
    ),
    "sg-prefix-list-weight": ("sg-public", "alb-sg", cloudfront_on_port_80_too),
    "lambda-no-reserved-concurrency": (
        "sg",
        "failover-sg-function",
        lambda p: p.update(reservedConcurrentExecutions=1),
    ),
    "ecs-service-waits-for-listener-and-roles": (
        "eu",
        "api-service",
        without_dependency_on("alb-production-rule"),
    ),
    "ecs-traffic-shift-owns-target-groups": (
        "sg",
        "api-service",
        lambda p: p.update(waitForSteadyState=False),
    ),
    "ecs-traffic-shift-ignores-load-balancers": (
        "sg",
        "api-service",
        with_options(ignore_changes=("desiredCount",)),
    ),
    "vpc-origin-replaced-not-updated": (
        "sg",
        "edge-vpc-origin-eu",
        with_options(replace_on_changes=()),
    ),
    "trust-policy-source-conditions": ("sg", "failover-sg-role", no_trust_condition),
    "sg-world-ingress-https-only": ("sg", "alb-sg", world_ssh),
    "sg-no-high-risk-ports": ("eu", "api-sg", world_ssh),
    "default-sg-empty": (
        "sg",
        "network-default-sg",
        lambda p: p.update(ingress=[{"protocol": "-1"}]),
    ),
    "subnet-no-public-ip": ("sg", "network-public-0", lambda p: p.update(mapPublicIpOnLaunch=True)),
    "vpc-flow-logs": ("eu", "network-flow-log", REMOVE),
    "alb-drop-invalid-headers": (
        "sg",
        "alb-alb",
        lambda p: p.update(dropInvalidHeaderFields=False),
    ),
    "alb-desync-mitigation": ("sg", "alb-alb", lambda p: p.update(desyncMitigationMode="monitor")),
    "alb-deletion-protection": (
        "eu",
        "alb-alb",
        lambda p: p.update(enableDeletionProtection=False),
    ),
    "public-listeners-https": (
        "sg-public",
        "alb-listener",
        lambda p: p.update(protocol="HTTP", port=80),
    ),
    "listener-tls-policy": (
        "sg-public",
        "alb-listener",
        lambda p: p.update(sslPolicy="ELBSecurityPolicy-2016-08"),
    ),
    "ecs-no-public-ip": (
        "sg",
        "api-service",
        lambda p: p["networkConfiguration"].update(assignPublicIp=True),
    ),
    "ecs-latest-platform": ("sg", "api-service", lambda p: p.update(platformVersion="1.3.0")),
    "ecs-container-insights": ("eu", "api-cluster", lambda p: p.update(settings=[])),
    "ecs-not-privileged": ("sg", "api-task", set_container("privileged", True)),
    "ecs-read-only-root": ("sg", "api-task", set_container("readonlyRootFilesystem", False)),
    "ecs-logging": ("sg", "api-task", set_container("logConfiguration", None)),
    "ecs-non-root": ("sg", "api-task", set_container("user", "0")),
    "ecs-no-secrets-in-environment": (
        "sg",
        "api-task",
        set_container("environment", [{"name": "BINANCE_API_SECRET", "value": "x"}]),
    ),
    "ecr-scan-on-push": (
        "sg",
        "registry-repo",
        lambda p: p.update(imageScanningConfiguration={"scanOnPush": False}),
    ),
    "ecr-immutable-tags": ("eu", "registry-repo", lambda p: p.update(imageTagMutability="MUTABLE")),
    "ecr-lifecycle-policy": ("sg", "registry-lifecycle", REMOVE),
    "cloudfront-viewer-https": (
        "sg",
        "edge-distribution",
        lambda p: p["orderedCacheBehaviors"][0].update(viewerProtocolPolicy="allow-all"),
    ),
    "cloudfront-viewer-tls": (
        "sg",
        "edge-distribution",
        lambda p: p.update(
            viewerCertificate={
                "acmCertificateArn": "arn:x",
                "sslSupportMethod": "sni-only",
                "minimumProtocolVersion": "TLSv1",
            }
        ),
    ),
    "cloudfront-origin-tls": (
        "sg-public",
        "edge-distribution",
        lambda p: p["origins"][1]["customOriginConfig"].update(
            originSslProtocols=["TLSv1", "TLSv1.2"]
        ),
    ),
    "cloudfront-vpc-origin-tls": (
        "sg",
        "edge-vpc-origin-eu",
        lambda p: p["vpcOriginEndpointConfig"]["originSslProtocols"].update(
            items=["TLSv1.1", "TLSv1.2"]
        ),
    ),
    "cloudfront-function-runtime": (
        "sg",
        "edge-router",
        lambda p: p.update(runtime="cloudfront-js-1.0"),
    ),
    "log-retention": ("eu", "api-logs", lambda p: p.pop("retentionInDays")),
    "iam-no-admin-policy": (
        "sg",
        "api-execution-policy",
        lambda p: p.update(
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                }
            )
        ),
    ),
    "vps-host-key-pinned": ("vps", "chicago-health", lambda p: p["connection"].pop("hostKey")),
    "vps-admin-cidr-not-world": (
        "vps",
        "nj-bootstrap",
        # The internet in two halves: neither is /0, together they are.
        lambda p: p.update(
            create=p["create"]
            .replace("from 198.51.100.0/24 to any port 22", "from 0.0.0.0/1 to any port 22")
            .replace("from 198.51.100.5 to any port 22", "from 128.0.0.0/1 to any port 22")
        ),
    ),
}


def broken(plan: Plan, name: str, mutation: Mutation | OnResource | str) -> Plan:
    copied = copy.deepcopy(plan)
    (target,) = [r for r in copied.resources if r.name == name]
    if mutation == REMOVE:
        copied.resources.remove(target)
    elif isinstance(mutation, OnResource):
        copied.resources[copied.resources.index(target)] = mutation.change(target)
    else:
        assert callable(mutation)
        mutation(target.revealed)
    return copied


def test_the_jump_host_key_is_pinned_too() -> None:
    rule = BY_NAME["vps-host-key-pinned"]
    vps = broken(plans()["vps"], "cdmx-env-file", lambda p: p["connection"]["proxy"].pop("hostKey"))
    assert [v.message for v in rule.run(subjects_of(vps))] == [
        "connection.proxy (the jump host) has no hostKey"
    ]


def test_half_the_internet_is_not_flagged() -> None:
    rule = BY_NAME["vps-admin-cidr-not-world"]
    half = broken(
        plans()["vps"],
        "nj-bootstrap",
        lambda p: p.update(create=p["create"].replace("198.51.100.0/24", "0.0.0.0/1")),
    )
    assert rule.run(subjects_of(half)) == []


def test_every_rule_has_a_broken_fixture() -> None:
    assert set(BREAKS) == set(BY_NAME)


@pytest.mark.parametrize("rule_name", sorted(BREAKS))
def test_rule_catches_a_broken_resource(rule_name: str) -> None:
    plan_name, name, mutation = BREAKS[rule_name]
    violations = BY_NAME[rule_name].run(subjects_of(broken(plans()[plan_name], name, mutation)))
    assert violations, rule_name
    if mutation != REMOVE:
        assert {v.urn.rsplit("::", 1)[1] for v in violations} == {name}


def test_rules_name_their_controls_and_levels() -> None:
    assert {r.enforcement for r in RULES} == {"mandatory", "advisory"}
    advisory = sorted(r.name for r in RULES if r.enforcement == "advisory")
    assert advisory == ["alb-deletion-protection", "log-retention"]
    assert all(r.control and r.description.endswith(".") for r in RULES)


def test_public_variant_really_is_public_with_https() -> None:
    plan = plans()["sg-public"]
    assert any(not r.inputs["internal"] for r in plan.of_type("aws:lb/loadBalancer:LoadBalancer"))
    protocols = sorted(
        listener.inputs["protocol"] for listener in plan.of_type("aws:lb/listener:Listener")
    )
    assert protocols == ["HTTPS"]
    (dist,) = plan.of_type("aws:cloudfront/distribution:Distribution")
    configs = [o["customOriginConfig"] for o in dist.revealed["origins"]]
    assert [c["originProtocolPolicy"] for c in configs] == ["https-only", "https-only"]
    assert [c["originSslProtocols"] for c in configs] == [["TLSv1.2"], ["TLSv1.2"]]


# --- the old blind spots: each passed before the rule was fixed -------------------------


def test_a_vpc_whose_default_group_is_not_adopted_fails_ec2_2() -> None:
    """AWS's default group allows all traffic between its members until adopted and
    emptied; a plan that simply left out the DefaultSecurityGroup used to pass."""
    plan = broken(plans()["sg"], "network-default-sg", REMOVE)
    messages = [v.message for v in BY_NAME["default-sg-empty"].run(subjects_of(plan))]
    assert messages == ["no DefaultSecurityGroup adopts this VPC's default group"]


def world_on_port_80(props: dict[str, Any]) -> None:
    props["ingress"] = [
        *props.get("ingress", []),
        {"protocol": "tcp", "fromPort": 80, "toPort": 80, "cidrBlocks": ["0.0.0.0/0"]},
    ]


def test_port_80_open_to_the_world_passes_only_beside_a_redirect_to_https() -> None:
    rule = BY_NAME["sg-world-ingress-https-only"]
    # Port 80 opened beside a listener that does not redirect it (the ALB's listener
    # forwards, through its production rule). The "443 and its 80 redirect" exemption
    # used to let this through.
    forwarding = broken(plans()["sg"], "alb-sg", world_on_port_80)
    assert [v.message for v in rule.run(subjects_of(forwarding))] == [
        "ingress 80-80 from 0.0.0.0/0: port 80 is open to the internet but no listener "
        "next to it only redirects 80 to HTTPS"
    ]

    def redirecting(props: dict[str, Any]) -> None:
        props["port"] = 80
        props["protocol"] = "HTTP"
        props["defaultActions"] = [
            {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443"}}
        ]

    redirected = broken(forwarding, "alb-listener", redirecting)
    assert rule.run(subjects_of(redirected)) == []


def test_production_on_the_default_certificate_fails_cloudfront_7() -> None:
    """With the default *.cloudfront.net certificate CloudFront admits TLSv1 (API
    Reference, ViewerCertificate); the rule used to skip such distributions."""

    def default_certificate(props: dict[str, Any]) -> None:
        props["viewerCertificate"] = {"cloudfrontDefaultCertificate": True}

    plan = broken(plans()["sg"], "edge-distribution", default_certificate)
    messages = [v.message for v in BY_NAME["cloudfront-viewer-tls"].run(subjects_of(plan))]
    assert messages == [
        "production on the default *.cloudfront.net certificate, which admits TLSv1; set "
        "edge.customDomain"
    ]


def test_the_production_rules_hold_back_outside_production() -> None:
    raw = {**committed_config("sg"), "trading-infra:production": "false"}
    raw = with_section(raw, "edge", customDomain=None, waf=None, accessLogs=None)
    plan = plan_sg(raw)
    assert not any(r.protect for r in plan.resources)
    for name in (
        "cloudfront-viewer-tls",
        "cloudfront-waf",
        "cloudfront-access-logs",
        "alb-access-logs",
    ):
        assert BY_NAME[name].run(subjects_of(plan)) == [], name
