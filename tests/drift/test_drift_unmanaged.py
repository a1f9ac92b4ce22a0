"""Unmanaged resources of every kind the stack creates: for each unmanaged check, a
resource made by hand in the stack's scope (or with its tags) is reported, with no
other finding; and what AWS makes for the stack itself is not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.drift.conftest import World, build_world

SG = "ap-southeast-1"


@pytest.fixture(scope="module")
def world(moto_url: str) -> World:
    return build_world(moto_url, "sg")


def _of(world: World, type_: str) -> dict[str, Any]:
    """The first resource of the type in the stack's own region (or a global one)."""
    resources = [r for r in world.checkpoint["deployment"]["resources"] if r["type"] == type_]
    return next((r for r in resources if SG in str(r.get("provider"))), resources[0])


def _vpc(world: World) -> str:
    return _of(world, "aws:ec2/vpc:Vpc")["id"]


def _cidr(world: World, third: int) -> str:
    """A /24 of the stack's VPC that its subnets do not use."""
    first, second = _of(world, "aws:ec2/vpc:Vpc")["inputs"]["cidrBlock"].split(".")[:2]
    return f"{first}.{second}.{third}.0/24"


def extra_subnet(world: World) -> Callable[[], None]:
    ec2 = world.clients("ec2", SG)
    subnet = ec2.create_subnet(VpcId=_vpc(world), CidrBlock=_cidr(world, 250))["Subnet"]["SubnetId"]
    return lambda: ec2.delete_subnet(SubnetId=subnet)


def extra_route_table(world: World) -> Callable[[], None]:
    ec2 = world.clients("ec2", SG)
    table = ec2.create_route_table(VpcId=_vpc(world))["RouteTable"]["RouteTableId"]
    return lambda: ec2.delete_route_table(RouteTableId=table)


def extra_association(world: World) -> Callable[[], None]:
    """A private subnet put on the public route table by hand."""
    ec2 = world.clients("ec2", SG)
    public = next(
        r["id"] for r in world.checkpoint["deployment"]["resources"]
        if r["urn"].endswith("::network-public-rt")
    )  # fmt: skip
    subnet = ec2.create_subnet(VpcId=_vpc(world), CidrBlock=_cidr(world, 251))["Subnet"]["SubnetId"]
    association = ec2.associate_route_table(RouteTableId=public, SubnetId=subnet)["AssociationId"]

    def undo() -> None:
        ec2.disassociate_route_table(AssociationId=association)
        ec2.delete_subnet(SubnetId=subnet)

    return undo


def extra_endpoint(world: World) -> Callable[[], None]:
    ec2 = world.clients("ec2", SG)
    endpoint = ec2.create_vpc_endpoint(
        VpcId=_vpc(world), ServiceName=f"com.amazonaws.{SG}.sqs", VpcEndpointType="Gateway"
    )["VpcEndpoint"]["VpcEndpointId"]
    return lambda: ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint])


def extra_listener(world: World) -> Callable[[], None]:
    elbv2 = world.clients("elbv2", SG)
    alb = _of(world, "aws:lb/loadBalancer:LoadBalancer")["id"]
    listener = elbv2.create_listener(
        LoadBalancerArn=alb,
        Protocol="HTTP",
        Port=8080,
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "200", "ContentType": "text/plain"},
            }
        ],
    )["Listeners"][0]["ListenerArn"]
    return lambda: elbv2.delete_listener(ListenerArn=listener)


def extra_service(world: World) -> Callable[[], None]:
    ecs = world.clients("ecs", SG)
    service = _of(world, "aws:ecs/service:Service")
    created = ecs.create_service(
        cluster=service["inputs"]["cluster"],
        serviceName="debug-by-hand",
        taskDefinition=service["inputs"]["taskDefinition"],
        desiredCount=0,
    )["service"]["serviceArn"]
    return lambda: ecs.delete_service(
        cluster=service["inputs"]["cluster"], service=created, force=True
    )


def extra_role(world: World) -> Callable[[], None]:
    iam = world.clients("iam", "us-east-1")
    role = _of(world, "aws:iam/role:Role")
    tags = iam.list_role_tags(RoleName=role["id"])["Tags"]
    iam.create_role(
        RoleName="copied-by-hand",
        AssumeRolePolicyDocument=role["inputs"]["assumeRolePolicy"],
        Tags=tags,
    )
    return lambda: iam.delete_role(RoleName="copied-by-hand")


def extra_tagged_topic(world: World) -> Callable[[], None]:
    """Any other type carrying the stack's tags: the Resource Groups Tagging API scan."""
    sns = world.clients("sns", SG)
    arn = sns.create_topic(
        Name="made-by-hand",
        Tags=[{"Key": "project", "Value": "trading-infra"}, {"Key": "stack", "Value": "sg"},
              {"Key": "region", "Value": SG}, {"Key": "managed-by", "Value": "pulumi"}],
    )["TopicArn"]  # fmt: skip
    return lambda: sns.delete_topic(TopicArn=arn)


def extra_event_target(world: World) -> Callable[[], None]:
    rule = _of(world, "aws:cloudwatch/eventTarget:EventTarget")
    region = SG
    events = world.clients("events", region)
    arn = f"arn:aws:sns:{region}:123456789012:elsewhere"
    events.put_targets(Rule=rule["outputs"]["rule"], Targets=[{"Id": "by-hand", "Arn": arn}])
    return lambda: events.remove_targets(Rule=rule["outputs"]["rule"], Ids=["by-hand"])


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (extra_subnet, "aws:ec2/subnet:Subnet"),
        (extra_route_table, "aws:ec2/routeTable:RouteTable"),
        (extra_association, "aws:ec2/routeTableAssociation:RouteTableAssociation"),
        (extra_endpoint, "aws:ec2/vpcEndpoint:VpcEndpoint"),
        (extra_listener, "aws:lb/listener:Listener"),
        (extra_service, "aws:ecs/service:Service"),
        (extra_role, "aws:iam/role:Role"),
        (extra_tagged_topic, "tagged:sns:made-by-hand"),
        (extra_event_target, "aws:cloudwatch/eventTarget:EventTarget"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_a_hand_made_resource_in_the_stacks_scope_is_unmanaged(
    world: World, make: Callable[[World], Callable[[], None]], kind: str
) -> None:
    undo = make(world)
    try:
        report = world.scan()
    finally:
        undo()
    unmanaged = [f.type for f in report.of("unmanaged")]
    assert kind in unmanaged
    # Subnets made for an association are unmanaged too; nothing else is reported.
    assert {f.status for f in report.findings} <= {"ok", "unmanaged"}
    assert [(f.status, f.type, f.id) for f in world.scan().findings if f.status != "ok"] == []


def test_the_alarms_aws_makes_for_the_target_tracking_policy_are_not_unmanaged(
    world: World,
) -> None:
    cloudwatch = world.clients("cloudwatch", SG)
    made = [
        a["AlarmName"]
        for a in cloudwatch.describe_alarms(AlarmNamePrefix="TargetTracking-")["MetricAlarms"]
    ]
    assert len(made) >= 2  # moto makes them as AWS does, on PutScalingPolicy
    assert world.scan().of("unmanaged") == []
