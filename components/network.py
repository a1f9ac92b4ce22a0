"""Network: a VPC with public and private subnets per AZ, NAT, flow logs and endpoints."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Annotated, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator, model_validator

from components.iam import service_assume_role_policy
from components.settings import Settings, retention
from components.tagging import component_tags

NatStrategy = Literal["none", "single", "per-az"]

GATEWAY_ENDPOINTS = frozenset({"s3"})
"""Endpoint services reached through route tables; every other one is an interface."""


class SubnetCarvingError(ValueError):
    """The requested subnets do not fit in the VPC range."""


@dataclass(frozen=True)
class SubnetPair:
    """The CIDRs of one availability zone's subnets."""

    private: str
    public: str


def carve_subnets(
    vpc_cidr: str, az_count: int, private_prefix: int, public_prefix: int
) -> list[SubnetPair]:
    """Carve one private and one public subnet per AZ out of ``vpc_cidr``.

    Private subnets (where tasks run, the larger ones) take the first blocks of the
    range; public subnets take the first free blocks after them. The layout depends on
    the arguments alone, so a plan is the same on every run and adding an AZ later
    appends subnets without moving the existing ones as long as the prefixes stay.
    """
    vpc = ipaddress.IPv4Network(vpc_cidr)
    for name, prefix in (
        ("privateSubnetPrefix", private_prefix),
        ("publicSubnetPrefix", public_prefix),
    ):
        if not vpc.prefixlen < prefix <= 28:
            raise SubnetCarvingError(
                f"{name} /{prefix} must be longer than the VPC's /{vpc.prefixlen} and at "
                "most /28 (the smallest subnet AWS allows)"
            )
    private = list(_first_blocks(vpc, private_prefix, az_count, taken=[]))
    public = list(_first_blocks(vpc, public_prefix, az_count, taken=private))
    if len(private) < az_count or len(public) < az_count:
        raise SubnetCarvingError(
            f"{az_count} private /{private_prefix} and {az_count} public /{public_prefix} "
            f"subnets do not fit in {vpc}; use a larger VPC range or longer subnet prefixes"
        )
    return [SubnetPair(str(a), str(b)) for a, b in zip(private, public, strict=True)]


def _first_blocks(
    vpc: ipaddress.IPv4Network,
    prefix: int,
    count: int,
    taken: list[ipaddress.IPv4Network],
):
    found = 0
    for block in vpc.subnets(new_prefix=prefix):
        if found == count:
            return
        if not any(block.overlaps(other) for other in taken):
            found += 1
            yield block


def flow_log_policy(log_group_arn: str) -> str:
    """The flow-log role's policy: write to exactly its own log group."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogStreams",
                    ],
                    "Resource": [log_group_arn, f"{log_group_arn}:*"],
                }
            ],
        },
        sort_keys=True,
    )


def private_cidr(value: str, *, min_prefix: int, max_prefix: int) -> str:
    """``value`` as a private IPv4 network of an allowed size, or a ValueError saying how
    to write one."""
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as error:
        raise ValueError(
            f"{value!r} is not an IPv4 network ({error}); write it as a.b.c.d/n"
        ) from None
    if not network.is_private:
        raise ValueError(
            f"{value} is not a private range; use one inside 10.0.0.0/8, "
            "172.16.0.0/12 or 192.168.0.0/16"
        )
    if not min_prefix <= network.prefixlen <= max_prefix:
        raise ValueError(
            f"{value} is a /{network.prefixlen}; choose a prefix from "
            f"/{min_prefix} to /{max_prefix}"
        )
    return str(network)


class NetworkSettings(Settings):
    """``trading-infra:network``: the region's VPC."""

    cidr: str
    """VPC CIDR: private, /16 to /24, disjoint from every ``peerCidrs`` entry. Required."""
    az_count: Annotated[int, Field(ge=2, le=3)] = 3
    """Availability zones to spread subnets over, 2 or 3. Default 3."""
    private_subnet_prefix: Annotated[int, Field(ge=17, le=28)] = 20
    """Prefix length of each private (task) subnet. Default 20 (4,096 addresses)."""
    public_subnet_prefix: Annotated[int, Field(ge=17, le=28)] = 24
    """Prefix length of each public (NAT/ALB) subnet. Default 24."""
    nat: NatStrategy = "single"
    """NAT strategy: ``none`` (VPC endpoints only), ``single`` (one NAT gateway, cheaper,
    one AZ's outage cuts egress) or ``per-az`` (one per AZ). Default ``single``."""
    flow_log_retention_days: int = 365
    """Retention of the VPC flow log group, a CloudWatch Logs value. Default 365."""
    endpoints: list[Literal["ecr.api", "ecr.dkr", "s3", "logs", "secretsmanager"]] = Field(
        default_factory=list
    )
    """VPC endpoints to create so tasks reach AWS APIs without NAT. Default none."""

    @field_validator("cidr")
    @classmethod
    def _cidr_is_private(cls, value: str) -> str:
        return private_cidr(value, min_prefix=16, max_prefix=24)

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention_is_valid(cls, value: int) -> int:
        return retention(value)

    @field_validator("endpoints")
    @classmethod
    def _endpoints_unique(cls, values: list[str]) -> list[str]:
        duplicates = sorted({value for value in values if values.count(value) > 1})
        if duplicates:
            raise ValueError(f"lists {', '.join(duplicates)} more than once; list each once")
        return values

    @model_validator(mode="after")
    def _layout_fits(self) -> NetworkSettings:
        try:
            carve_subnets(
                self.cidr, self.az_count, self.private_subnet_prefix, self.public_subnet_prefix
            )
        except SubnetCarvingError as error:
            raise ValueError(str(error)) from None
        return self


class Network(pulumi.ComponentResource):
    """A VPC laid out for private Fargate tasks behind a load balancer.

    One public and one private subnet per AZ; public subnets never assign public IPs
    (EC2.15); the default security group is emptied (EC2.2); all traffic is logged to
    CloudWatch (EC2.6). Private subnets reach the internet through the NAT strategy, or
    AWS APIs only through the configured VPC endpoints when ``nat`` is ``none``.
    """

    vpc: aws.ec2.Vpc
    """The VPC."""
    vpc_id: pulumi.Output[str]
    """The VPC id."""
    public_subnets: list[aws.ec2.Subnet]
    """Public subnets, one per AZ, in AZ order."""
    private_subnets: list[aws.ec2.Subnet]
    """Private subnets, one per AZ, in AZ order."""
    public_subnet_ids: pulumi.Output[list[str]]
    """Ids of the public subnets."""
    private_subnet_ids: pulumi.Output[list[str]]
    """Ids of the private subnets."""
    private_route_tables: list[aws.ec2.RouteTable]
    """One route table per private subnet, in AZ order."""
    nat_gateways: list[aws.ec2.NatGateway]
    """NAT gateways: none, one, or one per AZ."""
    flow_log_group: aws.cloudwatch.LogGroup
    """The log group receiving the VPC flow logs."""
    endpoint_security_group: aws.ec2.SecurityGroup | None
    """Security group of the interface endpoints (HTTPS from the VPC), if any."""
    availability_zones: list[str]
    """The AZ names used, in order."""

    def __init__(
        self,
        name: str,
        settings: NetworkSettings,
        *,
        protect: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``protect``: protect the stateful children (the flow log group) from deletion."""
        super().__init__("trading-infra:network:Network", name, {}, opts)
        az_count, nat = settings.az_count, settings.nat
        endpoints: list[str] = list(settings.endpoints)
        tags = component_tags("network")
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=protect)

        zones = aws.get_availability_zones(
            state="available", opts=pulumi.InvokeOptions(parent=self)
        )
        if len(zones.names) < az_count:
            raise ValueError(
                f"network {name}: the region has {len(zones.names)} available AZs, "
                f"{az_count} requested"
            )
        self.availability_zones = list(zones.names[:az_count])
        layout = carve_subnets(
            settings.cidr, az_count, settings.private_subnet_prefix, settings.public_subnet_prefix
        )

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=settings.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={**tags, "Name": f"{name}-vpc"},
            opts=child,
        )
        self.vpc_id = self.vpc.id

        # Adopting the default security group with no rules empties it (EC2.2), so
        # nothing launched without an explicit group gets the default allow-all.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=self.vpc.id,
            ingress=[],
            egress=[],
            tags={**tags, "Name": f"{name}-default-locked"},
            opts=child,
        )

        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags={**tags, "Name": f"{name}-igw"}, opts=child
        )
        public_table = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags={**tags, "Name": f"{name}-public"},
            opts=child,
        )

        self.public_subnets, self.private_subnets = [], []
        self.private_route_tables, self.nat_gateways = [], []
        for index, (zone, cidrs) in enumerate(zip(self.availability_zones, layout, strict=True)):
            public = aws.ec2.Subnet(
                f"{name}-public-{index}",
                vpc_id=self.vpc.id,
                cidr_block=cidrs.public,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={**tags, "Name": f"{name}-public-{zone}", "tier": "public"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{index}-rta",
                subnet_id=public.id,
                route_table_id=public_table.id,
                opts=child,
            )
            private = aws.ec2.Subnet(
                f"{name}-private-{index}",
                vpc_id=self.vpc.id,
                cidr_block=cidrs.private,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={**tags, "Name": f"{name}-private-{zone}", "tier": "private"},
                opts=child,
            )
            self.public_subnets.append(public)
            self.private_subnets.append(private)
            if nat == "per-az" or (nat == "single" and index == 0):
                eip = aws.ec2.Eip(
                    f"{name}-nat-{index}-eip",
                    domain="vpc",
                    tags={**tags, "Name": f"{name}-nat-{zone}"},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
                self.nat_gateways.append(
                    aws.ec2.NatGateway(
                        f"{name}-nat-{index}",
                        allocation_id=eip.id,
                        subnet_id=public.id,
                        tags={**tags, "Name": f"{name}-nat-{zone}"},
                        opts=child,
                    )
                )
            # One table per private subnet whatever the NAT strategy, so switching
            # strategies edits routes instead of re-associating subnets.
            routes = []
            if self.nat_gateways:
                gateway = self.nat_gateways[index if nat == "per-az" else 0]
                routes.append(
                    aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=gateway.id)
                )
            table = aws.ec2.RouteTable(
                f"{name}-private-{index}-rt",
                vpc_id=self.vpc.id,
                routes=routes,
                tags={**tags, "Name": f"{name}-private-{zone}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{index}-rta",
                subnet_id=private.id,
                route_table_id=table.id,
                opts=child,
            )
            self.private_route_tables.append(table)

        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in self.public_subnets])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in self.private_subnets])

        self.flow_log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            retention_in_days=settings.flow_log_retention_days,
            tags=tags,
            opts=stateful,
        )
        invoke = pulumi.InvokeOptions(parent=self)
        account_id = aws.get_caller_identity(opts=invoke).account_id
        region = aws.get_region(opts=invoke).region
        flow_log_role = aws.iam.Role(
            f"{name}-flow-logs-role",
            # The VPC User Guide's trust policy for flow logs: this account's flow logs only.
            assume_role_policy=service_assume_role_policy(
                "vpc-flow-logs.amazonaws.com",
                account_id,
                f"arn:aws:ec2:{region}:{account_id}:vpc-flow-log/*",
            ),
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-policy",
            role=flow_log_role.id,
            policy=self.flow_log_group.arn.apply(flow_log_policy),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=self.flow_log_group.arn,
            iam_role_arn=flow_log_role.arn,
            max_aggregation_interval=60,
            tags=tags,
            opts=child,
        )

        self.endpoint_security_group = None
        if endpoints:
            self._create_endpoints(name, endpoints, settings.cidr, tags)

        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
            }
        )

    def _create_endpoints(
        self, name: str, services: list[str], cidr: pulumi.Input[str], tags: dict[str, str]
    ) -> None:
        region = aws.get_region(opts=pulumi.InvokeOptions(parent=self)).region
        child = pulumi.ResourceOptions(parent=self)
        interfaces = [service for service in services if service not in GATEWAY_ENDPOINTS]
        if interfaces:
            self.endpoint_security_group = aws.ec2.SecurityGroup(
                f"{name}-endpoints-sg",
                vpc_id=self.vpc.id,
                description="HTTPS from inside the VPC to the interface endpoints",
                ingress=[
                    aws.ec2.SecurityGroupIngressArgs(
                        protocol="tcp",
                        from_port=443,
                        to_port=443,
                        cidr_blocks=[cidr],
                        description="HTTPS from the VPC",
                    )
                ],
                tags={**tags, "Name": f"{name}-endpoints"},
                opts=child,
            )
        for service in services:
            slug = service.replace(".", "-")
            if service in GATEWAY_ENDPOINTS:
                aws.ec2.VpcEndpoint(
                    f"{name}-{slug}-endpoint",
                    vpc_id=self.vpc.id,
                    service_name=f"com.amazonaws.{region}.{service}",
                    vpc_endpoint_type="Gateway",
                    route_table_ids=[table.id for table in self.private_route_tables],
                    tags={**tags, "Name": f"{name}-{slug}"},
                    opts=child,
                )
            else:
                assert self.endpoint_security_group is not None
                aws.ec2.VpcEndpoint(
                    f"{name}-{slug}-endpoint",
                    vpc_id=self.vpc.id,
                    service_name=f"com.amazonaws.{region}.{service}",
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[subnet.id for subnet in self.private_subnets],
                    security_group_ids=[self.endpoint_security_group.id],
                    tags={**tags, "Name": f"{name}-{slug}"},
                    opts=child,
                )
