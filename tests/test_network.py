"""Network: CIDR carving (pure) and the component's resources under the mocks."""

from __future__ import annotations

import ipaddress
import json
from itertools import combinations

import pytest

from components.network import (
    Network,
    NetworkSettings,
    SubnetCarvingError,
    carve_subnets,
    flow_log_policy,
)
from ops.runtime import Plan
from tests.support import ingress_cidrs, is_taggable, run_component

ALL_ENDPOINTS = ["s3", "ecr.api", "ecr.dkr", "logs", "secretsmanager"]


def network_plan(**overrides) -> Plan:
    protect = overrides.pop("protect", False)
    settings = NetworkSettings(cidr="10.10.0.0/16", **overrides)
    return run_component(lambda: Network("net", settings, protect=protect) and None)


# --- carve_subnets ------------------------------------------------------------------


@pytest.mark.parametrize("az_count", [2, 3])
def test_carved_subnets_are_disjoint_and_inside_the_vpc(az_count: int) -> None:
    vpc = ipaddress.IPv4Network("10.10.0.0/16")
    layout = carve_subnets(str(vpc), az_count, 20, 24)
    blocks = [ipaddress.IPv4Network(c) for pair in layout for c in (pair.private, pair.public)]
    assert len(layout) == az_count
    assert all(block.subnet_of(vpc) for block in blocks)
    assert not any(a.overlaps(b) for a, b in combinations(blocks, 2))
    assert {b.prefixlen for b in blocks[::2]} == {20}
    assert {b.prefixlen for b in blocks[1::2]} == {24}


def test_carving_is_deterministic_and_stable_when_an_az_is_added() -> None:
    two = carve_subnets("10.20.0.0/16", 2, 20, 24)
    three = carve_subnets("10.20.0.0/16", 3, 20, 24)
    assert [p.private for p in two] == ["10.20.0.0/20", "10.20.16.0/20"]
    assert [p.private for p in three[:2]] == [p.private for p in two]
    assert carve_subnets("10.20.0.0/16", 2, 20, 24) == two


def test_public_subnets_follow_the_private_ones() -> None:
    layout = carve_subnets("10.10.0.0/16", 3, 20, 24)
    assert [p.public for p in layout] == ["10.10.48.0/24", "10.10.49.0/24", "10.10.50.0/24"]


def test_carving_that_does_not_fit_raises() -> None:
    with pytest.raises(SubnetCarvingError, match=r"do not fit in 10\.0\.0\.0/24"):
        carve_subnets("10.0.0.0/24", 3, 26, 26)


@pytest.mark.parametrize(("private", "public"), [(16, 24), (20, 29)])
def test_subnet_prefix_out_of_range_raises(private: int, public: int) -> None:
    with pytest.raises(SubnetCarvingError, match="must be longer than the VPC's /16"):
        carve_subnets("10.0.0.0/16", 2, private, public)


def test_flow_log_policy_is_scoped_to_its_log_group() -> None:
    arn = "arn:aws:logs:ap-southeast-1:123456789012:log-group:flow"
    statement = json.loads(flow_log_policy(arn))["Statement"]
    assert len(statement) == 1
    assert statement[0]["Resource"] == [arn, f"{arn}:*"]
    assert "*" not in json.dumps(statement[0]["Action"])


# --- the component ------------------------------------------------------------------


def test_one_public_and_one_private_subnet_per_az() -> None:
    plan = network_plan(az_count=3)
    subnets = plan.of_type("aws:ec2/subnet:Subnet")
    tiers = sorted((s.inputs["tags"]["tier"], s.inputs["availabilityZone"]) for s in subnets)
    zones = ["ap-southeast-1a", "ap-southeast-1b", "ap-southeast-1c"]
    assert tiers == [("private", z) for z in zones] + [("public", z) for z in zones]
    layout = carve_subnets("10.10.0.0/16", 3, 20, 24)
    expected = {c for pair in layout for c in (pair.private, pair.public)}
    assert {s.inputs["cidrBlock"] for s in subnets} == expected


def test_no_subnet_assigns_public_ips() -> None:
    plan = network_plan()
    assert all(
        s.inputs["mapPublicIpOnLaunch"] is False for s in plan.of_type("aws:ec2/subnet:Subnet")
    )


def test_default_security_group_has_no_rules() -> None:
    default_sg = network_plan().one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default_sg.inputs["ingress"] == []
    assert default_sg.inputs["egress"] == []


def routes_of(plan: Plan, table_name: str) -> list[dict]:
    return plan.named(table_name).inputs.get("routes", [])


@pytest.mark.parametrize(("nat", "gateways"), [("none", 0), ("single", 1), ("per-az", 3)])
def test_nat_strategy_sets_gateways_and_private_routes(nat: str, gateways: int) -> None:
    plan = network_plan(nat=nat, az_count=3)
    nat_gateways = plan.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nat_gateways) == gateways
    assert len(plan.of_type("aws:ec2/eip:Eip")) == gateways
    targets = [
        [route.get("natGatewayId") for route in routes_of(plan, f"net-private-{i}-rt")]
        for i in range(3)
    ]
    if nat == "none":
        assert targets == [[], [], []]
    elif nat == "single":
        assert targets == [["net-nat-0-id"]] * 3
    else:
        assert targets == [["net-nat-0-id"], ["net-nat-1-id"], ["net-nat-2-id"]]
    public_subnet_ids = {f"net-public-{i}-id" for i in range(3)}
    assert {g.inputs["subnetId"] for g in nat_gateways} <= public_subnet_ids


def test_public_route_table_goes_to_the_internet_gateway() -> None:
    plan = network_plan()
    assert routes_of(plan, "net-public-rt") == [
        {"cidrBlock": "0.0.0.0/0", "gatewayId": "net-igw-id"}
    ]


def test_every_subnet_is_associated_with_its_route_table() -> None:
    plan = network_plan(az_count=2)
    pairs = {
        (a.inputs["subnetId"], a.inputs["routeTableId"])
        for a in plan.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    }
    assert pairs == {
        ("net-public-0-id", "net-public-rt-id"),
        ("net-public-1-id", "net-public-rt-id"),
        ("net-private-0-id", "net-private-0-rt-id"),
        ("net-private-1-id", "net-private-1-rt-id"),
    }


def test_flow_logs_capture_all_traffic_into_a_retained_log_group() -> None:
    plan = network_plan(flow_log_retention_days=90)
    flow_log = plan.one("aws:ec2/flowLog:FlowLog")
    group = plan.one("aws:cloudwatch/logGroup:LogGroup")
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["vpcId"] == "net-vpc-id"
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    assert flow_log.inputs["logDestination"].endswith(":loggroup/net-flow-logs")
    assert group.inputs["retentionInDays"] == 90
    role = plan.named("net-flow-logs-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    # Confused-deputy guard: this account's flow logs in this region only.
    assert trust["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": "arn:aws:ec2:ap-southeast-1:123456789012:vpc-flow-log/*"},
    }
    policy = json.loads(plan.named("net-flow-logs-policy").inputs["policy"])
    assert policy["Statement"][0]["Resource"][0] == flow_log.inputs["logDestination"]


def test_no_endpoints_by_default() -> None:
    plan = network_plan()
    assert plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") == []
    assert plan.of_type("aws:ec2/securityGroup:SecurityGroup") == []


def test_endpoints_let_private_subnets_reach_aws_without_nat() -> None:
    plan = network_plan(nat="none", endpoints=ALL_ENDPOINTS, az_count=2)
    endpoints = {
        e.inputs["serviceName"]: e.inputs for e in plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    }
    assert set(endpoints) == {f"com.amazonaws.ap-southeast-1.{s}" for s in ALL_ENDPOINTS}
    s3 = endpoints.pop("com.amazonaws.ap-southeast-1.s3")
    assert s3["vpcEndpointType"] == "Gateway"
    assert sorted(s3["routeTableIds"]) == ["net-private-0-rt-id", "net-private-1-rt-id"]
    for interface in endpoints.values():
        assert interface["vpcEndpointType"] == "Interface"
        assert interface["privateDnsEnabled"] is True
        assert interface["subnetIds"] == ["net-private-0-id", "net-private-1-id"]
        assert interface["securityGroupIds"] == ["net-endpoints-sg-id"]
    group = plan.one("aws:ec2/securityGroup:SecurityGroup")
    assert ingress_cidrs(group) == ["10.10.0.0/16"]
    assert [(r["fromPort"], r["toPort"]) for r in group.inputs["ingress"]] == [(443, 443)]


def test_children_are_parented_named_and_tagged() -> None:
    plan = network_plan(endpoints=ALL_ENDPOINTS)
    component = plan.one("trading-infra:network:Network")
    children = [r for r in plan.resources if r is not component]
    assert children and all(r.parent == component.urn for r in children)
    assert all(r.name.startswith("net-") for r in children)
    taggable = [r for r in children if is_taggable(r)]
    assert len(taggable) > 10
    assert all(r.tag("component") == "network" for r in taggable)


@pytest.mark.parametrize("protect", [True, False])
def test_protect_applies_to_the_flow_log_group(protect: bool) -> None:
    plan = network_plan(protect=protect)
    assert plan.one("aws:cloudwatch/logGroup:LogGroup").protect is protect
    assert plan.one("aws:ec2/vpc:Vpc").protect is False
