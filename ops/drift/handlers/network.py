"""VPC, subnets, gateways, addresses, route tables and their associations, endpoints,
security groups and flow logs: one paginated ``Describe*`` per type and region."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ops.drift.aws import (
    Compare,
    Fetch,
    Live,
    Reader,
    Scope,
    as_policy,
    by,
    handler,
    name_of,
    unordered,
)
from ops.drift.model import Diff
from ops.drift.state import StateResource


def _ec2(type_: str, operation: str, key: str, id_key: str) -> Fetch:
    return lambda r, region, _: by(id_key, r.items(type_, "ec2", region, operation, key))


def _in_vpcs(what: str, name_key: str) -> Any:
    """Live resources of the stack's VPCs that the state does not know."""

    def unmanaged(live: dict[str, Live], scope: Scope, known: set[str]) -> list[tuple[str, str]]:
        return [
            (live_id, f"{what} {item.get(name_key) or live_id} in {item.get('VpcId')}")
            for live_id, item in live.items()
            if item.get("VpcId") in scope.vpc_ids and live_id not in known
        ]

    return unmanaged


_VPC = "aws:ec2/vpc:Vpc"
_SUBNET = "aws:ec2/subnet:Subnet"
_IGW = "aws:ec2/internetGateway:InternetGateway"
_NAT = "aws:ec2/natGateway:NatGateway"
_EIP = "aws:ec2/eip:Eip"
_ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
_ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
_SG = "aws:ec2/securityGroup:SecurityGroup"
_DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
_FLOW_LOG = "aws:ec2/flowLog:FlowLog"


@handler(_VPC)(_ec2(_VPC, "describe_vpcs", "Vpcs", "VpcId"))
def compare_vpc(state: StateResource, live: Live) -> list[Diff]:
    return Compare()("cidrBlock", state.get("cidrBlock"), live.get("CidrBlock")).diffs


@handler(_SUBNET, unmanaged=_in_vpcs("subnet", "CidrBlock"))(
    _ec2(_SUBNET, "describe_subnets", "Subnets", "SubnetId")
)
def compare_subnet(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()("cidrBlock", state.get("cidrBlock"), live.get("CidrBlock"))(
            "availabilityZone", state.get("availabilityZone"), live.get("AvailabilityZone")
        )("mapPublicIpOnLaunch", state.get("mapPublicIpOnLaunch"), live.get("MapPublicIpOnLaunch"))(
            "vpcId", state.get("vpcId"), live.get("VpcId")
        )
    ).diffs


def _igws_in_scope(live: dict[str, Live], scope: Scope, known: set[str]) -> list[tuple[str, str]]:
    return [
        (gid, f"internet gateway attached to {vpc}")
        for gid, g in live.items()
        for vpc in [a.get("VpcId") for a in g.get("Attachments", [])]
        if vpc in scope.vpc_ids and gid not in known
    ]


@handler(_IGW, unmanaged=_igws_in_scope)(
    _ec2(_IGW, "describe_internet_gateways", "InternetGateways", "InternetGatewayId")
)
def compare_igw(state: StateResource, live: Live) -> list[Diff]:
    attached = [a.get("VpcId") for a in live.get("Attachments", [])]
    return Compare()("vpcId", state.get("vpcId"), attached[0] if attached else None).diffs


@handler(_NAT, unmanaged=_in_vpcs("NAT gateway", "SubnetId"))(
    lambda r, region, _: {
        gid: g
        for gid, g in by(
            "NatGatewayId", r.items(_NAT, "ec2", region, "describe_nat_gateways", "NatGateways")
        ).items()
        if g.get("State") not in ("deleted", "deleting")
    }
)
def compare_nat(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()("subnetId", state.get("subnetId"), live.get("SubnetId"))(
            "allocationId",
            state.get("allocationId"),
            [a.get("AllocationId") for a in live.get("NatGatewayAddresses", [])],
            lambda v: sorted(v) if isinstance(v, list) else [v],
        )
    ).diffs


@handler(_EIP)(_ec2(_EIP, "describe_addresses", "Addresses", "AllocationId"))
def compare_eip(state: StateResource, live: Live) -> list[Diff]:
    return Compare()("domain", state.get("domain"), live.get("Domain")).diffs


def _routes(routes: Iterable[Live], aws_shape: bool) -> list[tuple[str, str]]:
    found = []
    for route in routes:
        if aws_shape:
            if route.get("GatewayId") == "local" or route.get("Origin") == "CreateRouteTable":
                continue
            destination = (
                route.get("DestinationCidrBlock") or route.get("DestinationPrefixListId") or ""
            )
            target = (
                route.get("GatewayId")
                or route.get("NatGatewayId")
                or route.get("VpcEndpointId")
                or ""
            )
        else:
            destination = route.get("cidrBlock") or route.get("destinationPrefixListId") or ""
            target = (
                route.get("gatewayId")
                or route.get("natGatewayId")
                or route.get("vpcEndpointId")
                or ""
            )
        found.append((destination, target))
    return sorted(found)


def _is_main(table: Live) -> bool:
    return any(a.get("Main") for a in table.get("Associations", []))


def _tables_in_scope(live: dict[str, Live], scope: Scope, known: set[str]) -> list[tuple[str, str]]:
    # A VPC's main route table is AWS's own (created with the VPC), not unmanaged.
    return [
        (tid, f"route table in {t.get('VpcId')}")
        for tid, t in live.items()
        if t.get("VpcId") in scope.vpc_ids and tid not in known and not _is_main(t)
    ]


@handler(_ROUTE_TABLE, unmanaged=_tables_in_scope)(
    _ec2(_ROUTE_TABLE, "describe_route_tables", "RouteTables", "RouteTableId")
)
def compare_route_table(state: StateResource, live: Live) -> list[Diff]:
    expected = _routes(state.get("routes") or [], aws_shape=False)
    actual = _routes(live.get("Routes", []), aws_shape=True)
    # Gateway endpoints add prefix-list routes of their own; only CIDR routes are ours.
    actual = [(d, t) for d, t in actual if not d.startswith("pl-")]
    return Compare()("routes", expected, actual).diffs


def _fetch_associations(r: Reader, region: str, _: Sequence[StateResource]) -> dict[str, Live]:
    tables = r.items(_ASSOCIATION, "ec2", region, "describe_route_tables", "RouteTables")
    return {
        str(a["RouteTableAssociationId"]): {**a, "VpcId": t.get("VpcId")}
        for t in tables
        for a in t.get("Associations", [])
        if not a.get("Main")
    }


def _associations_in_scope(
    live: dict[str, Live], scope: Scope, known: set[str]
) -> list[tuple[str, str]]:
    return [
        (aid, f"{a.get('SubnetId') or a.get('GatewayId')} associated with {a['RouteTableId']}")
        for aid, a in live.items()
        if a.get("RouteTableId") in scope.route_table_ids and aid not in known
    ]


@handler(_ASSOCIATION, unmanaged=_associations_in_scope)(_fetch_associations)
def compare_association(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()("routeTableId", state.get("routeTableId"), live.get("RouteTableId"))(
            "subnetId", state.get("subnetId"), live.get("SubnetId")
        )("gatewayId", state.get("gatewayId"), live.get("GatewayId"))
    ).diffs


@handler(_ENDPOINT, unmanaged=_in_vpcs("VPC endpoint", "ServiceName"))(
    lambda r, region, _: {
        eid: e
        for eid, e in by(
            "VpcEndpointId",
            r.items(_ENDPOINT, "ec2", region, "describe_vpc_endpoints", "VpcEndpoints"),
        ).items()
        if str(e.get("State", "")).lower() not in ("deleted", "deleting")
    }
)
def compare_endpoint(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()("serviceName", state.get("serviceName"), live.get("ServiceName"))(
            "vpcEndpointType",
            state.get("vpcEndpointType"),
            live.get("VpcEndpointType"),
            lambda v: str(v).lower(),
        )("privateDnsEnabled", state.get("privateDnsEnabled"), live.get("PrivateDnsEnabled"))(
            "subnetIds", state.get("subnetIds"), live.get("SubnetIds"), unordered
        )(
            "securityGroupIds",
            state.get("securityGroupIds"),
            [g.get("GroupId") for g in live.get("Groups", [])],
            unordered,
        )("routeTableIds", state.get("routeTableIds"), live.get("RouteTableIds"), unordered)(
            "policy", state.get("policy"), live.get("PolicyDocument"), as_policy
        )
    ).diffs


def _rules(rules: Iterable[dict[str, Any]], aws_shape: bool) -> list[tuple]:
    """Security group rules as a sorted list of comparable tuples, from either shape."""
    normalized = []
    for rule in rules:
        if aws_shape:
            protocol = rule.get("IpProtocol")
            sources = (
                [r["CidrIp"] for r in rule.get("IpRanges", [])]
                + [r["CidrIpv6"] for r in rule.get("Ipv6Ranges", [])]
                + [p["PrefixListId"] for p in rule.get("PrefixListIds", [])]
                + [g["GroupId"] for g in rule.get("UserIdGroupPairs", [])]
            )
            ports = (rule.get("FromPort", 0), rule.get("ToPort", 0))
        else:
            protocol = str(rule.get("protocol"))
            sources = (
                list(rule.get("cidrBlocks") or [])
                + list(rule.get("ipv6CidrBlocks") or [])
                + list(rule.get("prefixListIds") or [])
                + list(rule.get("securityGroups") or [])
            )
            ports = (int(rule.get("fromPort", 0)), int(rule.get("toPort", 0)))
        protocol = "-1" if protocol in ("-1", "all") else protocol
        for source in sources:
            normalized.append((protocol, ports, source))
    return sorted(normalized)


def _groups_in_scope(live: dict[str, Live], scope: Scope, known: set[str]) -> list[tuple[str, str]]:
    return [
        (gid, f"security group {g.get('GroupName')} in {g.get('VpcId')}")
        for gid, g in live.items()
        if g.get("VpcId") in scope.vpc_ids and gid not in known and g.get("GroupName") != "default"
    ]


@handler(_SG, unmanaged=_groups_in_scope)(
    _ec2(_SG, "describe_security_groups", "SecurityGroups", "GroupId")
)
def compare_security_group(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()(
            "ingress",
            _rules(state.get("ingress") or [], aws_shape=False),
            _rules(live.get("IpPermissions", []), aws_shape=True),
        )(
            "egress",
            _rules(state.get("egress") or [], aws_shape=False),
            _rules(live.get("IpPermissionsEgress", []), aws_shape=True),
        )
    ).diffs


@handler(_DEFAULT_SG)(_ec2(_DEFAULT_SG, "describe_security_groups", "SecurityGroups", "GroupId"))
def compare_default_security_group(state: StateResource, live: Live) -> list[Diff]:
    # EC2.2: the default group must stay empty.
    return (
        Compare()("ingress", [], _rules(live.get("IpPermissions", []), aws_shape=True))(
            "egress", [], _rules(live.get("IpPermissionsEgress", []), aws_shape=True)
        )
    ).diffs


@handler(_FLOW_LOG)(_ec2(_FLOW_LOG, "describe_flow_logs", "FlowLogs", "FlowLogId"))
def compare_flow_log(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()("trafficType", state.get("trafficType"), live.get("TrafficType"))(
            "logDestination",
            state.get("logDestination"),
            live.get("LogDestination") or live.get("LogGroupName"),
            lambda v: name_of(str(v)).removeprefix("log-group:"),
        )("vpcId", state.get("vpcId"), live.get("ResourceId"))
    ).diffs
