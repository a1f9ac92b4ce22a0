"""AWS Foundational Security Best Practices controls, checked on whole stack plans.

Each control is a function from a plan to its violations. Every control runs on the
committed stacks and on variants (public origin protection, each deployment
strategy), and is shown to catch a deliberately broken resource.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache

import pytest

from ops.plan import plan_config, plan_stack
from ops.runtime import Plan, PlannedResource
from tests.support import committed_config, plan_sg, with_section

RECOMMENDED_TLS_POLICIES = {
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
}


def containers(plan: Plan) -> list[dict]:
    return [
        c
        for task in plan.of_type("aws:ecs/taskDefinition:TaskDefinition")
        for c in json.loads(task.inputs["containerDefinitions"])
    ]


def names(resources: list[PlannedResource]) -> list[str]:
    return [r.name for r in resources]


def is_public(plan: Plan) -> bool:
    return any(not lb.inputs["internal"] for lb in plan.of_type("aws:lb/loadBalancer:LoadBalancer"))


def ecs_2(plan: Plan) -> list[str]:
    return names(
        [
            s
            for s in plan.of_type("aws:ecs/service:Service")
            if s.inputs["networkConfiguration"].get("assignPublicIp") is not False
        ]
    )


def ecs_4(plan: Plan) -> list[str]:
    return [c["name"] for c in containers(plan) if c.get("privileged") is not False]


def ecs_5(plan: Plan) -> list[str]:
    return [c["name"] for c in containers(plan) if c.get("readonlyRootFilesystem") is not True]


def ecs_8(plan: Plan) -> list[str]:
    forbidden = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ECS_ENGINE_AUTH_DATA"}
    return [
        c["name"] for c in containers(plan) if forbidden & {e["name"] for e in c["environment"]}
    ]


def ecs_9(plan: Plan) -> list[str]:
    return [c["name"] for c in containers(plan) if "logConfiguration" not in c]


def ecs_10(plan: Plan) -> list[str]:
    return names(
        [
            s
            for s in plan.of_type("aws:ecs/service:Service")
            if s.inputs["platformVersion"] != "LATEST"
        ]
    )


def ecs_12(plan: Plan) -> list[str]:
    return names(
        [
            c
            for c in plan.of_type("aws:ecs/cluster:Cluster")
            if not any(
                s["name"] == "containerInsights" and s["value"] in {"enabled", "enhanced"}
                for s in c.inputs.get("settings", [])
            )
        ]
    )


def non_root(plan: Plan) -> list[str]:
    return [
        c["name"] for c in containers(plan) if c.get("user", "root").split(":")[0] in {"root", "0"}
    ]


def elb_1(plan: Plan) -> list[str]:
    if not is_public(plan):
        return []
    return names(
        [
            listener
            for listener in plan.of_type("aws:lb/listener:Listener")
            if listener.inputs["protocol"] == "HTTP"
            and listener.inputs["defaultActions"][0]["type"] != "redirect"
        ]
    )


def elb_4(plan: Plan) -> list[str]:
    return names(
        [
            lb
            for lb in plan.of_type("aws:lb/loadBalancer:LoadBalancer")
            if lb.inputs.get("dropInvalidHeaderFields") is not True
        ]
    )


def elb_12(plan: Plan) -> list[str]:
    return names(
        [
            lb
            for lb in plan.of_type("aws:lb/loadBalancer:LoadBalancer")
            if lb.inputs.get("desyncMitigationMode") not in {"defensive", "strictest"}
        ]
    )


def elb_13(plan: Plan) -> list[str]:
    return names(
        [
            lb
            for lb in plan.of_type("aws:lb/loadBalancer:LoadBalancer")
            if len(lb.inputs["subnets"]) < 2
        ]
    )


def elb_17(plan: Plan) -> list[str]:
    return names(
        [
            listener
            for listener in plan.of_type("aws:lb/listener:Listener")
            if listener.inputs["protocol"] == "HTTPS"
            and listener.inputs.get("sslPolicy") not in RECOMMENDED_TLS_POLICIES
        ]
    )


def elb_18(plan: Plan) -> list[str]:
    if not is_public(plan):
        return []
    return names(
        [
            listener
            for listener in plan.of_type("aws:lb/listener:Listener")
            if listener.inputs["protocol"] != "HTTPS"
            and listener.inputs["defaultActions"][0]["type"] != "redirect"
        ]
    )


def ec2_18_19(plan: Plan) -> list[str]:
    open_groups = []
    for group in plan.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in group.inputs.get("ingress", []):
            if {"0.0.0.0/0", "::/0"} & {
                *rule.get("cidrBlocks", []),
                *rule.get("ipv6CidrBlocks", []),
            }:
                open_groups.append(group.name)
    return open_groups


def cloudfront_3(plan: Plan) -> list[str]:
    bad = []
    for dist in plan.of_type("aws:cloudfront/distribution:Distribution"):
        behaviours = [
            dist.inputs["defaultCacheBehavior"],
            *dist.inputs.get("orderedCacheBehaviors", []),
        ]
        if any(
            b["viewerProtocolPolicy"] not in {"redirect-to-https", "https-only"} for b in behaviours
        ):
            bad.append(dist.name)
    return bad


def cloudfront_10(plan: Plan) -> list[str]:
    deprecated = {"SSLv3", "TLSv1", "TLSv1.1"}
    bad = []
    for dist in plan.of_type("aws:cloudfront/distribution:Distribution"):
        for origin in dist.revealed["origins"]:
            protocols = origin.get("customOriginConfig", {}).get("originSslProtocols", [])
            if deprecated & set(protocols):
                bad.append(f"{dist.name}/{origin['originId']}")
    for vpc_origin in plan.of_type("aws:cloudfront/vpcOrigin:VpcOrigin"):
        items = vpc_origin.inputs["vpcOriginEndpointConfig"]["originSslProtocols"]["items"]
        if deprecated & set(items):
            bad.append(vpc_origin.name)
    return bad


def cloudfront_function_runtime(plan: Plan) -> list[str]:
    return names(
        [
            f
            for f in plan.of_type("aws:cloudfront/function:Function")
            if f.inputs["runtime"] != "cloudfront-js-2.0"
        ]
    )


CONTROLS: dict[str, Callable[[Plan], list[str]]] = {
    "ECS.2": ecs_2,
    "ECS.4": ecs_4,
    "ECS.5": ecs_5,
    "ECS.8": ecs_8,
    "ECS.9": ecs_9,
    "ECS.10": ecs_10,
    "ECS.12": ecs_12,
    "non-root": non_root,
    "ELB.1": elb_1,
    "ELB.4": elb_4,
    "ELB.12": elb_12,
    "ELB.13": elb_13,
    "ELB.17": elb_17,
    "ELB.18": elb_18,
    "EC2.18/19": ec2_18_19,
    "CloudFront.3": cloudfront_3,
    "CloudFront.10": cloudfront_10,
    "CloudFront function runtime": cloudfront_function_runtime,
}


SECRET_KEYS = ["trading-infra:originSecret"]


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
            "certificateArn": f"arn:aws:acm:{region}:111122223333:certificate/abc",
            "originDomainName": f"origin-{stack}.example.com",
        },
    )


@cache
def plans() -> dict[str, Plan]:
    eu_public = plan_config("eu", public("eu", "eu-central-1"), SECRET_KEYS)
    return {
        "sg": plan_stack("sg"),
        "eu": committed_plan_eu(),
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


def committed_plan_eu() -> Plan:
    return plan_stack("eu")


@pytest.mark.parametrize("control", CONTROLS)
@pytest.mark.parametrize(
    "plan_name", ["sg", "eu", "eu-public", "sg-public", "sg-blue-green", "sg-linear"]
)
def test_control_holds(control: str, plan_name: str) -> None:
    assert CONTROLS[control](plans()[plan_name]) == []


def broken(plan: Plan, type_: str, mutate: Callable[[dict], None]) -> Plan:
    copied = copy.deepcopy(plan)
    target = copied.of_type(type_)[0]
    mutate(target.inputs)
    return copied


def set_container(key: str, value: object) -> Callable[[dict], None]:
    def mutate(inputs: dict) -> None:
        definitions = json.loads(inputs["containerDefinitions"])
        definitions[0][key] = value
        inputs["containerDefinitions"] = json.dumps(definitions)

    return mutate


BREAKS: dict[str, tuple[str, str, Callable[[dict], None]]] = {
    "ECS.2": (
        "sg",
        "aws:ecs/service:Service",
        lambda i: i["networkConfiguration"].update(assignPublicIp=True),
    ),
    "ECS.4": ("sg", "aws:ecs/taskDefinition:TaskDefinition", set_container("privileged", True)),
    "ECS.5": (
        "sg",
        "aws:ecs/taskDefinition:TaskDefinition",
        set_container("readonlyRootFilesystem", False),
    ),
    "ECS.8": (
        "sg",
        "aws:ecs/taskDefinition:TaskDefinition",
        set_container("environment", [{"name": "AWS_SECRET_ACCESS_KEY", "value": "x"}]),
    ),
    "ECS.9": (
        "sg",
        "aws:ecs/taskDefinition:TaskDefinition",
        lambda i: i.update(
            containerDefinitions=json.dumps(
                [
                    {k: v for k, v in c.items() if k != "logConfiguration"}
                    for c in json.loads(i["containerDefinitions"])
                ]
            )
        ),
    ),
    "ECS.10": ("sg", "aws:ecs/service:Service", lambda i: i.update(platformVersion="1.3.0")),
    "ECS.12": ("sg", "aws:ecs/cluster:Cluster", lambda i: i.update(settings=[])),
    "non-root": ("sg", "aws:ecs/taskDefinition:TaskDefinition", set_container("user", "0")),
    "ELB.1": (
        "sg-public",
        "aws:lb/listener:Listener",
        lambda i: i.update(protocol="HTTP", defaultActions=[{"type": "forward"}]),
    ),
    "ELB.4": (
        "sg",
        "aws:lb/loadBalancer:LoadBalancer",
        lambda i: i.update(dropInvalidHeaderFields=False),
    ),
    "ELB.12": (
        "sg",
        "aws:lb/loadBalancer:LoadBalancer",
        lambda i: i.update(desyncMitigationMode="monitor"),
    ),
    "ELB.13": ("sg", "aws:lb/loadBalancer:LoadBalancer", lambda i: i.update(subnets=["one"])),
    "ELB.17": (
        "sg-public",
        "aws:lb/listener:Listener",
        lambda i: i.update(protocol="HTTPS", sslPolicy="ELBSecurityPolicy-2016-08"),
    ),
    "ELB.18": (
        "sg-public",
        "aws:lb/listener:Listener",
        lambda i: i.update(protocol="HTTP", defaultActions=[{"type": "fixed-response"}]),
    ),
    "EC2.18/19": (
        "sg",
        "aws:ec2/securityGroup:SecurityGroup",
        lambda i: i["ingress"].append({"fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}),
    ),
    "CloudFront.3": (
        "sg",
        "aws:cloudfront/distribution:Distribution",
        lambda i: i["defaultCacheBehavior"].update(viewerProtocolPolicy="allow-all"),
    ),
    "CloudFront.10": (
        "sg",
        "aws:cloudfront/vpcOrigin:VpcOrigin",
        lambda i: i["vpcOriginEndpointConfig"]["originSslProtocols"].update(items=["TLSv1"]),
    ),
    "CloudFront function runtime": (
        "sg",
        "aws:cloudfront/function:Function",
        lambda i: i.update(runtime="cloudfront-js-1.0"),
    ),
}


@pytest.mark.parametrize("control", CONTROLS)
def test_control_catches_a_broken_resource(control: str) -> None:
    plan_name, type_, mutate = BREAKS[control]
    assert CONTROLS[control](broken(plans()[plan_name], type_, mutate)) != []


def test_public_variant_really_is_public_with_https() -> None:
    plan = plans()["sg-public"]
    assert is_public(plan)
    protocols = sorted(
        listener.inputs["protocol"] for listener in plan.of_type("aws:lb/listener:Listener")
    )
    assert protocols == ["HTTP", "HTTPS"]
    # ...and its edge reaches both public ALBs over HTTPS with TLS 1.2 only.
    (dist,) = plan.of_type("aws:cloudfront/distribution:Distribution")
    configs = [o["customOriginConfig"] for o in dist.revealed["origins"]]
    assert [c["originProtocolPolicy"] for c in configs] == ["https-only", "https-only"]
    assert [c["originSslProtocols"] for c in configs] == [["TLSv1.2"], ["TLSv1.2"]]
