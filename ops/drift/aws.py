"""AWS drift: read every resource type of the state with batched, paginated calls and
compare the attributes that matter, normalised.

One handler per Pulumi type: ``fetch`` lists the live resources of a region in as few
calls as the API allows (one paginated describe, or one per parent where the API has no
other way, such as listener rules per listener), ``compare`` returns the attribute diffs,
and ``unmanaged`` picks live resources inside the stack's VPCs, load balancers or
listeners that the state does not know. A call that fails (after botocore's retries)
marks that type's resources ``unknown``: the scan goes on, and never reports a false
``ok``.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import boto3.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ops.drift.model import Diff, Finding
from ops.drift.state import SECRET, StackState, StateResource

Live = dict[str, Any]
ClientFactory = Callable[[str, str], Any]


def default_client_factory(max_attempts: int = 5) -> ClientFactory:
    """boto3 clients with adaptive retries (client-side rate limiting on throttles)."""
    config = Config(retries={"mode": "adaptive", "max_attempts": max_attempts})
    session = boto3.session.Session()
    return lambda service, region: session.client(service, region_name=region, config=config)


class NotAnAwsAnswerError(BotoCoreError):
    """A 2xx response without AWS's request id: a proxy's or captive portal's page, not
    an API answer. botocore parses such a body into an empty result, which would read as
    "nothing there" (every resource missing); the scan marks the type unknown instead."""

    fmt = "{operation}: the response is not an AWS API answer (no request id)"


def _answer(operation: str, response: Any) -> Any:
    metadata = response.get("ResponseMetadata") if isinstance(response, dict) else None
    if not isinstance(metadata, dict) or not metadata.get("RequestId"):
        raise NotAnAwsAnswerError(operation=operation)
    return response


class Reader:
    """Makes the scan's AWS calls, one client per service and region, counting calls per
    resource type (what the benchmark reports)."""

    def __init__(self, clients: ClientFactory) -> None:
        self._factory = clients
        self._clients: dict[tuple[str, str], Any] = {}
        self.calls: Counter[str] = Counter()

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self._factory(service, region)
        return self._clients[key]

    def items(
        self, type_: str, service: str, region: str, operation: str, key: str, **kwargs: Any
    ) -> list[Any]:
        """Every item of a (paginated) list/describe call; ``key`` may be a dotted path
        (``DistributionList.Items``)."""
        client = self.client(service, region)

        def extract(page: Any) -> list[Any]:
            for part in key.split("."):
                page = (page or {}).get(part)
            return list(page or [])

        if client.can_paginate(operation):
            found: list[Any] = []
            for page in client.get_paginator(operation).paginate(**kwargs):
                self.calls[type_] += 1
                found += extract(_answer(operation, page))
            return found
        self.calls[type_] += 1
        return extract(_answer(operation, getattr(client, operation)(**kwargs)))

    def call(self, type_: str, service: str, region: str, operation: str, **kwargs: Any) -> Any:
        self.calls[type_] += 1
        return _answer(operation, getattr(self.client(service, region), operation)(**kwargs))


@dataclass
class Scope:
    """What belongs to the stack, to tell its unmanaged neighbours apart."""

    vpc_ids: set[str] = field(default_factory=set)
    load_balancer_arns: set[str] = field(default_factory=set)
    listener_arns: set[str] = field(default_factory=set)
    alarm_dimension_values: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, state: StackState) -> Scope:
        scope = cls()
        for resource in state.resources:
            if resource.type == "aws:ec2/vpc:Vpc":
                scope.vpc_ids.add(resource.id)
            elif resource.type == "aws:lb/loadBalancer:LoadBalancer":
                scope.load_balancer_arns.add(resource.id)
                if suffix := resource.get("arnSuffix"):
                    scope.alarm_dimension_values.add(suffix)
            elif resource.type == "aws:lb/listener:Listener":
                scope.listener_arns.add(resource.id)
            elif resource.type == "aws:lb/targetGroup:TargetGroup":
                if suffix := resource.get("arnSuffix"):
                    scope.alarm_dimension_values.add(suffix)
            elif resource.type == "aws:ecs/cluster:Cluster":
                scope.alarm_dimension_values.add(str(resource.get("name", "")))
        return scope


# --- normalisation --------------------------------------------------------------------


def as_json(value: Any) -> Any:
    """A policy or pattern document as data, whatever its encoding."""
    if isinstance(value, str):
        try:
            return json.loads(unquote(value) if value.startswith("%7B") else value)
        except json.JSONDecodeError:
            return value
    return value


_ACCOUNT_ID = re.compile(r"^\d{12}$")


def _as_list(value: Any) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    return sorted({json.dumps(v, sort_keys=True) for v in values}, key=str)


def _principal(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    normal = {}
    for kind, members in value.items():
        listed = [json.loads(m) for m in _as_list(members)]
        if kind == "AWS":
            # IAM stores an account id as that account's root ARN.
            listed = sorted(
                f"arn:aws:iam::{m}:root" if isinstance(m, str) and _ACCOUNT_ID.match(m) else m
                for m in listed
            )
        normal[kind] = listed
    return normal


def as_policy(value: Any) -> Any:
    """An IAM policy document by meaning, the way the AWS provider compares them: one
    statement or a list, a string or a one-item list, statements in any order, an account
    id or its root ARN are each the same policy."""
    document = as_json(value)
    if not isinstance(document, dict) or "Statement" not in document:
        return document
    statements = document["Statement"]
    normal = []
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict):
            normal.append(statement)
            continue
        item = dict(statement)
        for key in ("Action", "NotAction", "Resource", "NotResource"):
            if key in item:
                item[key] = [json.loads(v) for v in _as_list(item[key])]
        for key in ("Principal", "NotPrincipal"):
            if key in item:
                item[key] = _principal(item[key])
        if isinstance(item.get("Condition"), dict):
            item["Condition"] = {
                operator: {k: [json.loads(v) for v in _as_list(vs)] for k, vs in entries.items()}
                if isinstance(entries, dict)
                else entries
                for operator, entries in item["Condition"].items()
            }
        normal.append(item)
    return {**document, "Statement": sorted(normal, key=lambda s: json.dumps(s, sort_keys=True))}


def tags(value: Any) -> dict[str, str]:
    """``[{"Key": k, "Value": v}]`` or a mapping -> a mapping."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return {
        str(t.get("Key", t.get("key"))): str(t.get("Value", t.get("value"))) for t in value or []
    }


def name_of(arn_or_name: str) -> str:
    return arn_or_name.rsplit("/", 1)[-1].rsplit(":", 1)[-1]


class Compare:
    """Collects diffs; skips attributes the state does not know or keeps secret."""

    def __init__(self) -> None:
        self.diffs: list[Diff] = []

    def __call__(
        self,
        attribute: str,
        expected: Any,
        actual: Any,
        normalize: Callable[[Any], Any] = lambda v: v,
    ) -> Compare:
        if expected is None or expected == SECRET:
            return self
        if normalize(expected) != normalize(actual):
            self.diffs.append(Diff(attribute, expected, actual))
        return self


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


# --- handlers -------------------------------------------------------------------------

Fetch = Callable[[Reader, str, Sequence[StateResource]], dict[str, Live]]
CompareFn = Callable[[StateResource, Live], list[Diff]]
Unmanaged = Callable[[dict[str, Live], Scope, set[str]], list[tuple[str, str]]]


@dataclass(frozen=True)
class Handler:
    type: str
    fetch: Fetch
    compare: CompareFn
    unmanaged: Unmanaged | None = None
    global_region: str | None = None
    """Global services (IAM, CloudFront) are read once, in this region."""


HANDLERS: dict[str, Handler] = {}


def handler(
    type_: str, *, unmanaged: Unmanaged | None = None, global_region: str | None = None
) -> Callable[[Fetch], Callable[[CompareFn], CompareFn]]:
    """Register ``fetch`` then ``compare`` for a type (two stacked decorators)."""

    def with_fetch(fetch: Fetch) -> Callable[[CompareFn], CompareFn]:
        def with_compare(compare: CompareFn) -> CompareFn:
            HANDLERS[type_] = Handler(type_, fetch, compare, unmanaged, global_region)
            return compare

        return with_compare

    return with_fetch


def by(key: str, items: Iterable[Live]) -> dict[str, Live]:
    return {str(item[key]): item for item in items}


# EC2 ----------------------------------------------------------------------------------


def _ec2(type_: str, operation: str, key: str, id_key: str) -> Fetch:
    return lambda r, region, _: by(id_key, r.items(type_, "ec2", region, operation, key))


@handler("aws:ec2/vpc:Vpc")(_ec2("aws:ec2/vpc:Vpc", "describe_vpcs", "Vpcs", "VpcId"))
def compare_vpc(state: StateResource, live: Live) -> list[Diff]:
    return Compare()("cidrBlock", state.get("cidrBlock"), live.get("CidrBlock")).diffs


@handler("aws:ec2/subnet:Subnet")(
    _ec2("aws:ec2/subnet:Subnet", "describe_subnets", "Subnets", "SubnetId")
)
def compare_subnet(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()("cidrBlock", state.get("cidrBlock"), live.get("CidrBlock"))(
            "availabilityZone", state.get("availabilityZone"), live.get("AvailabilityZone")
        )("mapPublicIpOnLaunch", state.get("mapPublicIpOnLaunch"), live.get("MapPublicIpOnLaunch"))(
            "vpcId", state.get("vpcId"), live.get("VpcId")
        )
    ).diffs


@handler("aws:ec2/internetGateway:InternetGateway")(
    _ec2(
        "aws:ec2/internetGateway:InternetGateway",
        "describe_internet_gateways",
        "InternetGateways",
        "InternetGatewayId",
    )
)
def compare_igw(state: StateResource, live: Live) -> list[Diff]:
    attached = [a.get("VpcId") for a in live.get("Attachments", [])]
    return Compare()("vpcId", state.get("vpcId"), attached[0] if attached else None).diffs


@handler("aws:ec2/natGateway:NatGateway")(
    lambda r, region, _: {
        gid: g
        for gid, g in by(
            "NatGatewayId",
            r.items(
                "aws:ec2/natGateway:NatGateway",
                "ec2",
                region,
                "describe_nat_gateways",
                "NatGateways",
            ),
        ).items()
        if g.get("State") not in ("deleted", "deleting")
    }
)
def compare_nat(state: StateResource, live: Live) -> list[Diff]:
    return Compare()("subnetId", state.get("subnetId"), live.get("SubnetId")).diffs


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


@handler("aws:ec2/routeTable:RouteTable")(
    _ec2("aws:ec2/routeTable:RouteTable", "describe_route_tables", "RouteTables", "RouteTableId")
)
def compare_route_table(state: StateResource, live: Live) -> list[Diff]:
    expected = _routes(state.get("routes") or [], aws_shape=False)
    actual = _routes(live.get("Routes", []), aws_shape=True)
    # Gateway endpoints add prefix-list routes of their own; only CIDR routes are ours.
    actual = [(d, t) for d, t in actual if not d.startswith("pl-")]
    return Compare()("routes", expected, actual).diffs


def _groups_in_scope(live: dict[str, Live], scope: Scope, known: set[str]) -> list[tuple[str, str]]:
    return [
        (gid, f"security group {g.get('GroupName')} in {g.get('VpcId')}")
        for gid, g in live.items()
        if g.get("VpcId") in scope.vpc_ids and gid not in known and g.get("GroupName") != "default"
    ]


_SG = "aws:ec2/securityGroup:SecurityGroup"


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


_DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"


@handler(_DEFAULT_SG)(_ec2(_DEFAULT_SG, "describe_security_groups", "SecurityGroups", "GroupId"))
def compare_default_security_group(state: StateResource, live: Live) -> list[Diff]:
    # EC2.2: the default group must stay empty.
    return (
        Compare()("ingress", [], _rules(live.get("IpPermissions", []), aws_shape=True))(
            "egress", [], _rules(live.get("IpPermissionsEgress", []), aws_shape=True)
        )
    ).diffs


@handler("aws:ec2/flowLog:FlowLog")(
    _ec2("aws:ec2/flowLog:FlowLog", "describe_flow_logs", "FlowLogs", "FlowLogId")
)
def compare_flow_log(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()("trafficType", state.get("trafficType"), live.get("TrafficType"))(
            "logDestination",
            state.get("logDestination"),
            live.get("LogDestination") or live.get("LogGroupName"),
            lambda v: name_of(str(v)).removeprefix("log-group:"),
        )("vpcId", state.get("vpcId"), live.get("ResourceId"))
    ).diffs


# ELBv2 --------------------------------------------------------------------------------

_LB = "aws:lb/loadBalancer:LoadBalancer"
_LISTENER = "aws:lb/listener:Listener"
_RULE = "aws:lb/listenerRule:ListenerRule"
_TG = "aws:lb/targetGroup:TargetGroup"


@handler(_LB)(
    lambda r, region, _: by(
        "LoadBalancerArn", r.items(_LB, "elbv2", region, "describe_load_balancers", "LoadBalancers")
    )
)
def compare_load_balancer(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()("internal", state.get("internal"), live.get("Scheme") == "internal")(
            "securityGroups",
            state.get("securityGroups"),
            live.get("SecurityGroups"),
            lambda v: sorted(v or []),
        )(
            "subnets",
            state.get("subnets"),
            [z.get("SubnetId") for z in live.get("AvailabilityZones", [])],
            lambda v: sorted(v or []),
        )
    ).diffs


def _fetch_listeners(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    arns = sorted({str(x.get("loadBalancerArn")) for x in resources if x.get("loadBalancerArn")})
    found: dict[str, Live] = {}
    for arn in arns:  # the API lists listeners per load balancer only
        try:
            found |= by(
                "ListenerArn",
                r.items(
                    _LISTENER,
                    "elbv2",
                    region,
                    "describe_listeners",
                    "Listeners",
                    LoadBalancerArn=arn,
                ),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "LoadBalancerNotFound":
                raise
    return found


@handler(_LISTENER)(_fetch_listeners)
def compare_listener(state: StateResource, live: Live) -> list[Diff]:
    expected_actions = [a.get("type") for a in state.get("defaultActions") or []]
    return (
        Compare()("port", state.get("port"), live.get("Port"), int)(
            "protocol", state.get("protocol"), live.get("Protocol")
        )(
            "defaultActions",
            expected_actions,
            [a.get("Type") for a in live.get("DefaultActions", [])],
        )("sslPolicy", state.get("sslPolicy"), live.get("SslPolicy"))
    ).diffs


def _fetch_rules(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    listeners = sorted({str(x.get("listenerArn")) for x in resources if x.get("listenerArn")})
    found: dict[str, Live] = {}
    for arn in listeners:  # rules are listed per listener only
        try:
            rules = r.items(_RULE, "elbv2", region, "describe_rules", "Rules", ListenerArn=arn)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ListenerNotFound":
                raise
            continue
        found |= {
            rule["RuleArn"]: {**rule, "ListenerArn": arn}
            for rule in rules
            if not rule.get("IsDefault")
        }
    return found


def _rules_in_scope(live: dict[str, Live], scope: Scope, known: set[str]) -> list[tuple[str, str]]:
    return [
        (arn, f"listener rule priority {rule.get('Priority')} on {name_of(rule['ListenerArn'])}")
        for arn, rule in live.items()
        if rule.get("ListenerArn") in scope.listener_arns and arn not in known
    ]


@handler(_RULE, unmanaged=_rules_in_scope)(_fetch_rules)
def compare_listener_rule(state: StateResource, live: Live) -> list[Diff]:
    def forwarded(actions: Iterable[Live], aws_shape: bool) -> list[str]:
        arns = []
        for action in actions:
            if aws_shape:
                groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
                arns += [g["TargetGroupArn"] for g in groups] or [action.get("TargetGroupArn")]
            else:
                groups = (action.get("forward") or {}).get("targetGroups") or []
                arns += [g["arn"] for g in groups] or [action.get("targetGroupArn")]
        return sorted(a for a in arns if a)

    actions = state.get("actions")
    return (
        Compare()("priority", state.get("priority"), live.get("Priority"), lambda v: int(float(v)))(
            "targetGroups",
            None if actions == SECRET else forwarded(actions or [], aws_shape=False),
            forwarded(live.get("Actions", []), aws_shape=True),
        )
    ).diffs


def _target_groups_in_scope(
    live: dict[str, Live], scope: Scope, known: set[str]
) -> list[tuple[str, str]]:
    return [
        (arn, f"target group {tg.get('TargetGroupName')}")
        for arn, tg in live.items()
        if arn not in known
        and (
            tg.get("VpcId") in scope.vpc_ids
            or scope.load_balancer_arns & set(tg.get("LoadBalancerArns", []))
        )
    ]


@handler(_TG, unmanaged=_target_groups_in_scope)(
    lambda r, region, _: by(
        "TargetGroupArn", r.items(_TG, "elbv2", region, "describe_target_groups", "TargetGroups")
    )
)
def compare_target_group(state: StateResource, live: Live) -> list[Diff]:
    check = state.get("healthCheck") or {}
    return (
        Compare()("port", state.get("port"), live.get("Port"), int)(
            "protocol", state.get("protocol"), live.get("Protocol")
        )("targetType", state.get("targetType"), live.get("TargetType"))(
            "healthCheck.path", check.get("path"), live.get("HealthCheckPath")
        )("vpcId", state.get("vpcId"), live.get("VpcId"))
    ).diffs


# ECS ----------------------------------------------------------------------------------

_CLUSTER = "aws:ecs/cluster:Cluster"
_SERVICE = "aws:ecs/service:Service"
_TASK = "aws:ecs/taskDefinition:TaskDefinition"


def _fetch_clusters(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    arns = r.items(_CLUSTER, "ecs", region, "list_clusters", "clusterArns")
    found: dict[str, Live] = {}
    for start in range(0, len(arns), 100):  # describe takes 100 clusters at a time
        described = r.call(
            _CLUSTER,
            "ecs",
            region,
            "describe_clusters",
            clusters=arns[start : start + 100],
            include=["SETTINGS"],
        )
        found |= {c["clusterArn"]: c for c in described["clusters"] if c.get("status") == "ACTIVE"}
    return found


@handler(_CLUSTER)(_fetch_clusters)
def compare_cluster(state: StateResource, live: Live) -> list[Diff]:
    expected = {s["name"]: s["value"] for s in state.get("settings") or []}
    actual = {s["name"]: s["value"] for s in live.get("settings", [])}
    return Compare()("settings", expected, {k: actual.get(k) for k in expected}).diffs


def _fetch_services(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    by_cluster: dict[str, list[str]] = defaultdict(list)
    for resource in resources:
        by_cluster[str(resource.get("cluster"))].append(resource.id)
    found: dict[str, Live] = {}
    for cluster, arns in sorted(by_cluster.items()):
        for start in range(0, len(arns), 10):  # describe takes 10 services at a time
            described = r.call(
                _SERVICE,
                "ecs",
                region,
                "describe_services",
                cluster=cluster,
                services=arns[start : start + 10],
            )
            found |= {
                s["serviceArn"]: s for s in described["services"] if s.get("status") != "INACTIVE"
            }
    return found


@handler(_SERVICE)(_fetch_services)
def compare_service(state: StateResource, live: Live) -> list[Diff]:
    network = (live.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
    expected_network = state.get("networkConfiguration") or {}
    return (
        Compare()("desiredCount", state.get("desiredCount"), live.get("desiredCount"), int)(
            "taskDefinition", state.get("taskDefinition"), live.get("taskDefinition")
        )("platformVersion", state.get("platformVersion"), live.get("platformVersion"))(
            "networkConfiguration.assignPublicIp",
            expected_network.get("assignPublicIp") if isinstance(expected_network, dict) else None,
            network.get("assignPublicIp") == "ENABLED",
        )
    ).diffs


@handler(_TASK)(
    lambda r, region, _: {
        arn: {"taskDefinitionArn": arn}
        for arn in r.items(
            _TASK, "ecs", region, "list_task_definitions", "taskDefinitionArns", status="ACTIVE"
        )
    }
)
def compare_task_definition(state: StateResource, live: Live) -> list[Diff]:
    return []  # presence is the check: a deregistered revision is `missing`


# ECR ----------------------------------------------------------------------------------

_REPO = "aws:ecr/repository:Repository"
_LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"


@handler(_REPO)(
    lambda r, region, _: by(
        "repositoryName", r.items(_REPO, "ecr", region, "describe_repositories", "repositories")
    )
)
def compare_repository(state: StateResource, live: Live) -> list[Diff]:
    scanning = state.get("imageScanningConfiguration") or {}
    return (
        Compare()(
            "imageTagMutability", state.get("imageTagMutability"), live.get("imageTagMutability")
        )(
            "imageScanningConfiguration.scanOnPush",
            scanning.get("scanOnPush") if isinstance(scanning, dict) else None,
            (live.get("imageScanningConfiguration") or {}).get("scanOnPush"),
        )
    ).diffs


def _fetch_lifecycle(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    found: dict[str, Live] = {}
    for resource in resources:  # one policy per repository; no batch read exists
        try:
            found[resource.id] = r.call(
                _LIFECYCLE, "ecr", region, "get_lifecycle_policy", repositoryName=resource.id
            )
        except ClientError as error:
            if error.response["Error"]["Code"] not in (
                "LifecyclePolicyNotFoundException",
                "RepositoryNotFoundException",
            ):
                raise
    return found


@handler(_LIFECYCLE)(_fetch_lifecycle)
def compare_lifecycle(state: StateResource, live: Live) -> list[Diff]:
    return Compare()("policy", state.get("policy"), live.get("lifecyclePolicyText"), as_json).diffs


# IAM (global) -------------------------------------------------------------------------

_ROLE = "aws:iam/role:Role"
_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"


def _authorization(type_: str) -> Fetch:
    def fetch(r: Reader, region: str, _: Sequence[StateResource]) -> dict[str, Live]:
        roles = r.items(
            type_,
            "iam",
            region,
            "get_account_authorization_details",
            "RoleDetailList",
            Filter=["Role"],
        )
        if type_ == _ROLE:
            return by("RoleName", roles)
        if type_ == _ROLE_POLICY:
            return {
                f"{role['RoleName']}:{policy['PolicyName']}": policy
                for role in roles
                for policy in role.get("RolePolicyList", [])
            }
        return {
            f"{role['RoleName']}|{policy['PolicyArn']}": policy
            for role in roles
            for policy in role.get("AttachedManagedPolicies", [])
        }

    return fetch


@handler(_ROLE, global_region="us-east-1")(_authorization(_ROLE))
def compare_role(state: StateResource, live: Live) -> list[Diff]:
    return Compare()(
        "assumeRolePolicy",
        state.get("assumeRolePolicy"),
        live.get("AssumeRolePolicyDocument"),
        as_policy,
    ).diffs


@handler(_ROLE_POLICY, global_region="us-east-1")(_authorization(_ROLE_POLICY))
def compare_role_policy(state: StateResource, live: Live) -> list[Diff]:
    return Compare()("policy", state.get("policy"), live.get("PolicyDocument"), as_policy).diffs


@handler(_ATTACHMENT, global_region="us-east-1")(_authorization(_ATTACHMENT))
def compare_attachment(state: StateResource, live: Live) -> list[Diff]:
    return []


# Logs, Secrets Manager, CloudWatch, EventBridge, Lambda -------------------------------

_LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


@handler(_LOG_GROUP)(
    lambda r, region, _: by(
        "logGroupName", r.items(_LOG_GROUP, "logs", region, "describe_log_groups", "logGroups")
    )
)
def compare_log_group(state: StateResource, live: Live) -> list[Diff]:
    return Compare()(
        "retentionInDays", state.get("retentionInDays"), live.get("retentionInDays")
    ).diffs


_SECRETS_MANAGER = "aws:secretsmanager/secret:Secret"


@handler(_SECRETS_MANAGER)(
    lambda r, region, _: by(
        "ARN", r.items(_SECRETS_MANAGER, "secretsmanager", region, "list_secrets", "SecretList")
    )
)
def compare_secret(state: StateResource, live: Live) -> list[Diff]:
    # Metadata only: the value is never read.
    return (
        Compare()("name", state.get("name"), live.get("Name"))(
            "description", state.get("description"), live.get("Description")
        )
    ).diffs


_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
_COMPOSITE = "aws:cloudwatch/compositeAlarm:CompositeAlarm"


def _alarms_in_scope(live: dict[str, Live], scope: Scope, known: set[str]) -> list[tuple[str, str]]:
    def dimensions(alarm: Live) -> set[str]:
        values = {d.get("Value") for d in alarm.get("Dimensions", [])}
        for query in alarm.get("Metrics", []):
            values |= {
                d.get("Value")
                for d in ((query.get("MetricStat") or {}).get("Metric") or {}).get("Dimensions", [])
            }
        return {v for v in values if v}

    return [
        (name, f"alarm on {', '.join(sorted(dimensions(alarm) & scope.alarm_dimension_values))}")
        for name, alarm in live.items()
        if name not in known and dimensions(alarm) & scope.alarm_dimension_values
    ]


@handler(_ALARM, unmanaged=_alarms_in_scope)(
    lambda r, region, _: by(
        "AlarmName",
        r.items(
            _ALARM,
            "cloudwatch",
            region,
            "describe_alarms",
            "MetricAlarms",
            AlarmTypes=["MetricAlarm"],
        ),
    )
)
def compare_alarm(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()("threshold", state.get("threshold"), live.get("Threshold"), float)(
            "comparisonOperator", state.get("comparisonOperator"), live.get("ComparisonOperator")
        )("evaluationPeriods", state.get("evaluationPeriods"), live.get("EvaluationPeriods"), int)(
            "alarmActions",
            state.get("alarmActions"),
            live.get("AlarmActions"),
            lambda v: sorted(v or []),
        )
    ).diffs


@handler(_COMPOSITE)(
    lambda r, region, _: by(
        "AlarmName",
        r.items(
            _COMPOSITE,
            "cloudwatch",
            region,
            "describe_alarms",
            "CompositeAlarms",
            AlarmTypes=["CompositeAlarm"],
        ),
    )
)
def compare_composite(state: StateResource, live: Live) -> list[Diff]:
    return Compare()("alarmRule", state.get("alarmRule"), live.get("AlarmRule")).diffs


_RULE_EVENTS = "aws:cloudwatch/eventRule:EventRule"


@handler(_RULE_EVENTS)(
    lambda r, region, _: by("Name", r.items(_RULE_EVENTS, "events", region, "list_rules", "Rules"))
)
def compare_event_rule(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()("eventPattern", state.get("eventPattern"), live.get("EventPattern"), as_json)(
            "scheduleExpression", state.get("scheduleExpression"), live.get("ScheduleExpression")
        )
    ).diffs


_FUNCTION = "aws:lambda/function:Function"


@handler(_FUNCTION)(
    lambda r, region, _: by(
        "FunctionName", r.items(_FUNCTION, "lambda", region, "list_functions", "Functions")
    )
)
def compare_function(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()(
            "sourceCodeHash",
            state.get("sourceCodeHash") or state.get("codeSha256"),
            live.get("CodeSha256"),
        )("runtime", state.get("runtime"), live.get("Runtime"))(
            "handler", state.get("handler"), live.get("Handler")
        )("timeout", state.get("timeout"), live.get("Timeout"), int)(
            "memorySize", state.get("memorySize"), live.get("MemorySize"), int
        )("role", state.get("role"), live.get("Role"))
    ).diffs


# CloudFront (global) ------------------------------------------------------------------

_DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
_CF_FUNCTION = "aws:cloudfront/function:Function"
_KVS = "aws:cloudfront/keyValueStore:KeyValueStore"


@handler(_DISTRIBUTION, global_region="us-east-1")(
    lambda r, region, _: by(
        "Id",
        r.items(
            _DISTRIBUTION, "cloudfront", region, "list_distributions", "DistributionList.Items"
        ),
    )
)
def compare_distribution(state: StateResource, live: Live) -> list[Diff]:
    origins = state.get("origins")
    return (
        Compare()("enabled", state.get("enabled"), live.get("Enabled"))(
            "origins",
            None if origins == SECRET else sorted(o.get("originId") for o in origins or []),
            sorted(o.get("Id") for o in (live.get("Origins") or {}).get("Items", [])),
        )(
            "defaultCacheBehavior.viewerProtocolPolicy",
            (state.get("defaultCacheBehavior") or {}).get("viewerProtocolPolicy"),
            (live.get("DefaultCacheBehavior") or {}).get("ViewerProtocolPolicy"),
        )
    ).diffs


@handler(_CF_FUNCTION, global_region="us-east-1")(
    lambda r, region, _: by(
        "Name", r.items(_CF_FUNCTION, "cloudfront", region, "list_functions", "FunctionList.Items")
    )
)
def compare_cloudfront_function(state: StateResource, live: Live) -> list[Diff]:
    config = live.get("FunctionConfig") or {}
    return Compare()("runtime", state.get("runtime"), config.get("Runtime")).diffs


@handler(_KVS, global_region="us-east-1")(
    lambda r, region, _: by(
        "Name",
        r.items(_KVS, "cloudfront", region, "list_key_value_stores", "KeyValueStoreList.Items"),
    )
)
def compare_key_value_store(state: StateResource, live: Live) -> list[Diff]:
    return Compare()("arn", state.get("arn"), live.get("ARN")).diffs


# --- the scan -------------------------------------------------------------------------

_SCALABLE_TARGET = "aws:appautoscaling/target:Target"


@handler(_SCALABLE_TARGET)(
    lambda r, region, _: by(
        "ResourceId",
        r.items(
            _SCALABLE_TARGET,
            "application-autoscaling",
            region,
            "describe_scalable_targets",
            "ScalableTargets",
            ServiceNamespace="ecs",
        ),
    )
)
def compare_scalable_target(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()("minCapacity", state.get("minCapacity"), live.get("MinCapacity"), int)(
            "maxCapacity", state.get("maxCapacity"), live.get("MaxCapacity"), int
        )
    ).diffs


def scaling_ranges(state: StackState) -> dict[str, tuple[int, int]]:
    """``service/<cluster>/<service>`` -> the min and max its scalable target allows."""
    return {
        str(t.get("resourceId")): (int(t.get("minCapacity") or 0), int(t.get("maxCapacity") or 0))
        for t in state.of_type(_SCALABLE_TARGET)
        if t.get("serviceNamespace") == "ecs"
    }


def honour_scaling(
    service: StateResource, diffs: list[Diff], ranges: dict[str, tuple[int, int]]
) -> list[Diff]:
    """A scaled service's desiredCount belongs to its scaler (the program ignores its
    changes): a count within the target's min..max is not drift, one outside it is."""
    key = f"service/{name_of(str(service.get('cluster') or ''))}/{service.get('name')}"
    if key not in ranges:
        return diffs
    low, high = ranges[key]
    kept = []
    for diff in diffs:
        if diff.attribute == "desiredCount":
            if low <= int(diff.actual) <= high:
                continue
            diff = Diff("desiredCount", f"{low}..{high} (autoscaled)", diff.actual)
        kept.append(diff)
    return kept


LIVE_ID_OF: dict[str, Callable[[StateResource], str]] = {
    _ATTACHMENT: lambda r: f"{r.get('role')}|{r.get('policyArn')}",
    _TASK: lambda r: str(r.get("arn") or r.id),
    _ROLE_POLICY: lambda r: r.id if ":" in r.id else f"{r.get('role')}:{r.get('name')}",
    _CF_FUNCTION: lambda r: str(r.get("name") or r.id),
    _KVS: lambda r: str(r.get("name") or r.id),
    _SCALABLE_TARGET: lambda r: str(r.get("resourceId") or r.id),
}
"""Where the live listing is keyed differently from the Pulumi id."""


def scan_aws(
    state: StackState, reader: Reader, regions: Sequence[str] | None = None
) -> tuple[list[Finding], list[str]]:
    """Findings for every AWS resource the handlers know, plus the unmanaged ones in the
    stack's scope; and the types nothing reads."""
    scope = Scope.of(state)
    ranges = scaling_ranges(state)
    findings: list[Finding] = []
    unchecked: list[str] = []
    groups: dict[tuple[str, str], list[StateResource]] = defaultdict(list)
    for resource in state.resources:
        if not resource.type.startswith("aws:"):
            continue
        spec = HANDLERS.get(resource.type)
        if spec is None:
            unchecked.append(resource.type)
            continue
        region = spec.global_region or state.regions.get(resource.urn)
        if region is None or (regions and not spec.global_region and region not in regions):
            continue
        groups[(resource.type, region)].append(resource)
    for (type_, region), resources in sorted(groups.items()):
        spec = HANDLERS[type_]
        try:
            live = spec.fetch(reader, region, resources)
        except (ClientError, BotoCoreError) as error:
            findings += [
                Finding(
                    "unknown",
                    type_,
                    r.id,
                    urn=r.urn,
                    region=region,
                    error=f"could not read: {error}",
                )
                for r in resources
            ]
            continue
        known = set()
        for resource in resources:
            live_id = LIVE_ID_OF.get(type_, lambda r: r.id)(resource)
            known.add(live_id)
            record = live.get(live_id)
            if record is None:
                findings.append(
                    Finding("missing", type_, resource.id, urn=resource.urn, region=region)
                )
                continue
            diffs = spec.compare(resource, record)
            if type_ == _SERVICE:
                diffs = honour_scaling(resource, diffs, ranges)
            status = "changed" if diffs else "ok"
            findings.append(
                Finding(status, type_, resource.id, urn=resource.urn, region=region, diffs=diffs)
            )
        if spec.unmanaged is not None:
            findings += [
                Finding("unmanaged", type_, live_id, region=region, detail=detail)
                for live_id, detail in spec.unmanaged(live, scope, known)
            ]
    return findings, unchecked
