"""Build a stack's plan in moto's server and write the checkpoint Pulumi would have.

The test double of `pulumi up`: every planned resource of a type drift reads is created
through boto3 (real HTTP, real botocore) and recorded in Pulumi's export format with its
real id and outputs. Mock ids and ARNs in the plan's inputs are translated to the real
ones as resources come into existence, in registration (dependency) order.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

from ops.runtime import Plan, PlannedResource

Clients = Callable[[str, str], Any]
ACCOUNT = "123456789012"


def lambda_zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("handler.py", date_time=(2026, 1, 1, 0, 0, 0))
        archive.writestr(info, source)
    return buffer.getvalue()


class Deployer:
    def __init__(self, plan: Plan, clients: Clients) -> None:
        self.plan = plan
        self.clients = clients
        self.real: dict[str, str] = {}
        self.checkpoint: list[dict[str, Any]] = []
        self.regions: dict[str, str] = {}
        for resource in plan.resources:
            if resource.type == "pulumi:providers:aws":
                self.regions[f"{resource.urn}::{resource.id}"] = str(resource.inputs["region"])

    # --- translation ----------------------------------------------------------------

    def map(self, mock: Any, real: str) -> None:
        if isinstance(mock, str) and mock:
            self.real[mock] = real

    def t(self, value: Any) -> Any:
        if isinstance(value, str):
            if value in self.real:
                return self.real[value]
            for mock in sorted((m for m in self.real if m in value), key=len, reverse=True):
                value = value.replace(mock, self.real[mock])
            return value
        if isinstance(value, list):
            return [self.t(v) for v in value]
        if isinstance(value, dict):
            return {k: self.t(v) for k, v in value.items()}
        return value

    # --- the run --------------------------------------------------------------------

    def deploy(self) -> dict[str, Any]:
        for resource in self.plan.resources:
            if resource.type == "pulumi:providers:aws":
                self.checkpoint.append(
                    {
                        "urn": resource.urn,
                        "custom": True,
                        "id": resource.id,
                        "type": resource.type,
                        "inputs": resource.inputs,
                        "outputs": resource.inputs,
                    }
                )
                continue
            create = CREATORS.get(resource.type)
            region = self.regions.get(resource.provider or "")
            if create is None or region is None:
                continue
            inputs = self.t(resource.revealed)
            real_id, outputs = create(self, resource, inputs, region)
            self.map(resource.id, real_id)
            for key in ("arn", "arnSuffix", "name", "repositoryUrl", "dnsName"):
                if key in resource.outputs and key in outputs:
                    self.map(resource.outputs[key], str(outputs[key]))
            self.checkpoint.append(
                {
                    "urn": resource.urn,
                    "custom": True,
                    "id": real_id,
                    "type": resource.type,
                    "inputs": inputs,
                    "outputs": {**inputs, **outputs},
                    "parent": resource.parent,
                    "provider": resource.provider,
                }
            )
        stack = {
            "urn": (
                f"urn:pulumi:{self.plan.stack}::{self.plan.project}::pulumi:pulumi:Stack::"
                f"{self.plan.project}-{self.plan.stack}"
            ),
            "custom": False,
            "type": "pulumi:pulumi:Stack",
            "outputs": self.t(self.plan.outputs),
        }
        return {
            "version": 3,
            "deployment": {"manifest": {}, "resources": [stack, *self.checkpoint]},
        }


def _vpc(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    vpc = d.clients("ec2", region).create_vpc(CidrBlock=i["cidrBlock"])["Vpc"]["VpcId"]
    return vpc, {"id": vpc}


def _default_sg(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    ec2 = d.clients("ec2", region)
    (group,) = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [i["vpcId"]]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )["SecurityGroups"]
    if group["IpPermissions"]:
        ec2.revoke_security_group_ingress(
            GroupId=group["GroupId"], IpPermissions=group["IpPermissions"]
        )
    if group["IpPermissionsEgress"]:
        ec2.revoke_security_group_egress(
            GroupId=group["GroupId"], IpPermissions=group["IpPermissionsEgress"]
        )
    return group["GroupId"], {}


def _igw(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    ec2 = d.clients("ec2", region)
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=i["vpcId"])
    return igw, {}


def _subnet(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    subnet = d.clients("ec2", region).create_subnet(
        VpcId=i["vpcId"], CidrBlock=i["cidrBlock"], AvailabilityZone=i["availabilityZone"]
    )["Subnet"]["SubnetId"]
    return subnet, {}


def _eip(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    return d.clients("ec2", region).allocate_address(Domain="vpc")["AllocationId"], {}


def _nat(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    nat = d.clients("ec2", region).create_nat_gateway(
        SubnetId=i["subnetId"], AllocationId=i["allocationId"]
    )
    return nat["NatGateway"]["NatGatewayId"], {}


def _route_table(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    ec2 = d.clients("ec2", region)
    table = ec2.create_route_table(VpcId=i["vpcId"])["RouteTable"]["RouteTableId"]
    for route in i.get("routes", []):
        target = (
            {"GatewayId": route["gatewayId"]}
            if "gatewayId" in route
            else {"NatGatewayId": route["natGatewayId"]}
        )
        ec2.create_route(RouteTableId=table, DestinationCidrBlock=route["cidrBlock"], **target)
    return table, {}


def _permissions(rules: list[dict]) -> list[dict]:
    permissions = []
    for rule in rules:
        permissions.append(
            {
                "IpProtocol": str(rule["protocol"]),
                "FromPort": int(rule["fromPort"]),
                "ToPort": int(rule["toPort"]),
                "IpRanges": [{"CidrIp": c} for c in rule.get("cidrBlocks", [])],
                "Ipv6Ranges": [{"CidrIpv6": c} for c in rule.get("ipv6CidrBlocks", [])],
                "PrefixListIds": [{"PrefixListId": p} for p in rule.get("prefixListIds", [])],
                "UserIdGroupPairs": [{"GroupId": g} for g in rule.get("securityGroups", [])],
            }
        )
    return permissions


def _security_group(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    ec2 = d.clients("ec2", region)
    group = ec2.create_security_group(
        GroupName=r.name, Description=i.get("description", r.name), VpcId=i["vpcId"]
    )
    gid = group["GroupId"]
    default_egress = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0][
        "IpPermissionsEgress"
    ]
    if default_egress:
        ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=default_egress)
    if i.get("ingress"):
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=_permissions(i["ingress"]))
    if i.get("egress"):
        ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=_permissions(i["egress"]))
    return gid, {}


def _flow_log(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    created = d.clients("ec2", region).create_flow_logs(
        ResourceIds=[i["vpcId"]],
        ResourceType="VPC",
        TrafficType=i["trafficType"],
        LogDestinationType="cloud-watch-logs",
        LogGroupName=i["logDestination"].rsplit(":", 1)[-1]
        if ":log-group:" in i["logDestination"]
        else i["logDestination"],
        DeliverLogsPermissionArn=i["iamRoleArn"],
    )
    return created["FlowLogIds"][0], {}


def _log_group(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    logs = d.clients("logs", region)
    name = i.get("name") or r.name
    logs.create_log_group(logGroupName=name)
    logs.put_retention_policy(logGroupName=name, retentionInDays=int(i["retentionInDays"]))
    return name, {"name": name, "arn": f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{name}"}


def _role(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    name = r.name[:64]
    role = d.clients("iam", "us-east-1").create_role(
        RoleName=name, AssumeRolePolicyDocument=i["assumeRolePolicy"]
    )
    return name, {"name": name, "arn": role["Role"]["Arn"]}


def _role_policy(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    d.clients("iam", "us-east-1").put_role_policy(
        RoleName=i["role"], PolicyName=r.name, PolicyDocument=i["policy"]
    )
    return f"{i['role']}:{r.name}", {"name": r.name}


def _repository(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    repo = d.clients("ecr", region).create_repository(
        repositoryName=i["name"],
        imageTagMutability=i["imageTagMutability"],
        imageScanningConfiguration={"scanOnPush": i["imageScanningConfiguration"]["scanOnPush"]},
    )["repository"]
    return i["name"], {
        "arn": repo["repositoryArn"],
        "repositoryUrl": repo["repositoryUri"],
        "name": i["name"],
    }


def _lifecycle(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    d.clients("ecr", region).put_lifecycle_policy(
        repositoryName=i["repository"], lifecyclePolicyText=i["policy"]
    )
    return i["repository"], {}


def _short(name: str) -> str:
    return name[-32:].strip("-")


def _load_balancer(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    lb = d.clients("elbv2", region).create_load_balancer(
        Name=_short(r.name),
        Subnets=i["subnets"],
        SecurityGroups=i["securityGroups"],
        Scheme="internal" if i.get("internal") else "internet-facing",
        Type="application",
    )["LoadBalancers"][0]
    arn = lb["LoadBalancerArn"]
    return arn, {"arn": arn, "arnSuffix": arn.split(":loadbalancer/")[1], "dnsName": lb["DNSName"]}


def _target_group(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    tg = d.clients("elbv2", region).create_target_group(
        Name=_short(r.name),
        Protocol=i["protocol"],
        Port=int(i["port"]),
        VpcId=i["vpcId"],
        TargetType=i["targetType"],
        HealthCheckPath=i["healthCheck"]["path"],
    )["TargetGroups"][0]
    arn = tg["TargetGroupArn"]
    return arn, {"arn": arn, "arnSuffix": arn.rsplit(":", 1)[1]}


def _scalable_target(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    d.clients("application-autoscaling", region).register_scalable_target(
        ServiceNamespace=i["serviceNamespace"],
        ResourceId=i["resourceId"],
        ScalableDimension=i["scalableDimension"],
        MinCapacity=int(i["minCapacity"]),
        MaxCapacity=int(i["maxCapacity"]),
    )
    return i["resourceId"], {}


def _certificate(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    arn = d.clients("acm", region).request_certificate(
        DomainName=i["domainName"], ValidationMethod="DNS"
    )["CertificateArn"]
    return arn, {"arn": arn}


def _listener(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    action = i["defaultActions"][0]
    tls: dict[str, Any] = {}
    if i.get("certificateArn"):
        tls = {
            "Certificates": [{"CertificateArn": i["certificateArn"]}],
            "SslPolicy": i["sslPolicy"],
        }
    listener = d.clients("elbv2", region).create_listener(
        LoadBalancerArn=i["loadBalancerArn"],
        Protocol=i["protocol"],
        Port=int(i["port"]),
        **tls,
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {
                    "StatusCode": action["fixedResponse"]["statusCode"],
                    "ContentType": action["fixedResponse"]["contentType"],
                },
            }
        ],
    )["Listeners"][0]
    return listener["ListenerArn"], {"arn": listener["ListenerArn"]}


def _listener_rule(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    groups = i["actions"][0]["forward"]["targetGroups"]
    rule = d.clients("elbv2", region).create_rule(
        ListenerArn=i["listenerArn"],
        Priority=int(i["priority"]),
        Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
        Actions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": g["arn"], "Weight": int(g["weight"])} for g in groups
                    ]
                },
            }
        ],
    )["Rules"][0]
    return rule["RuleArn"], {"arn": rule["RuleArn"]}


def _cluster(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    cluster = d.clients("ecs", region).create_cluster(
        clusterName=i["name"], settings=i["settings"]
    )["cluster"]
    return cluster["clusterArn"], {"arn": cluster["clusterArn"], "name": i["name"]}


def _task_definition(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    task = d.clients("ecs", region).register_task_definition(
        family=i["family"],
        containerDefinitions=json.loads(i["containerDefinitions"]),
        cpu=i["cpu"],
        memory=i["memory"],
        networkMode=i["networkMode"],
        requiresCompatibilities=i["requiresCompatibilities"],
        executionRoleArn=i["executionRoleArn"],
        taskRoleArn=i["taskRoleArn"],
        volumes=i.get("volumes", []),
    )["taskDefinition"]
    arn = task["taskDefinitionArn"]
    # Pulumi's id of a task definition is its family; the revision is in `arn`.
    return i["family"], {"arn": arn}


def _service(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    network = i["networkConfiguration"]
    service = d.clients("ecs", region).create_service(
        cluster=i["cluster"],
        serviceName=i["name"],
        taskDefinition=i["taskDefinition"],
        desiredCount=int(i["desiredCount"]),
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": network["subnets"],
                "securityGroups": network["securityGroups"],
                "assignPublicIp": "ENABLED" if network.get("assignPublicIp") else "DISABLED",
            }
        },
        platformVersion=i.get("platformVersion", "LATEST"),
    )["service"]
    return service["serviceArn"], {}


def _secret(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    secret = d.clients("secretsmanager", region).create_secret(
        Name=i["name"], Description=i.get("description", "")
    )
    return secret["ARN"], {"arn": secret["ARN"]}


def _metric_alarm(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    args: dict[str, Any] = {
        "AlarmName": i["name"],
        "ComparisonOperator": i["comparisonOperator"],
        "EvaluationPeriods": int(i["evaluationPeriods"]),
        "Threshold": float(i["threshold"]),
        "AlarmActions": i.get("alarmActions", []),
        "OKActions": i.get("okActions", []),
        "TreatMissingData": i.get("treatMissingData", "missing"),
    }
    if "metricQueries" in i:
        args["Metrics"] = [
            {
                "Id": q["id"],
                **(
                    {
                        "MetricStat": {
                            "Metric": {
                                "Namespace": q["metric"]["namespace"],
                                "MetricName": q["metric"]["metricName"],
                                "Dimensions": [
                                    {"Name": k, "Value": v}
                                    for k, v in q["metric"]["dimensions"].items()
                                ],
                            },
                            "Period": int(q["metric"]["period"]),
                            "Stat": q["metric"]["stat"],
                        }
                    }
                    if "metric" in q
                    else {"Expression": q["expression"]}
                ),
                "ReturnData": bool(q.get("returnData", False)),
            }
            for q in i["metricQueries"]
        ]
    else:
        args |= {
            "Namespace": i["namespace"],
            "MetricName": i["metricName"],
            "Period": int(i["period"]),
            "Dimensions": [{"Name": k, "Value": v} for k, v in i.get("dimensions", {}).items()],
        }
        if "extendedStatistic" in i:
            args["ExtendedStatistic"] = i["extendedStatistic"]
        else:
            args["Statistic"] = i["statistic"]
    d.clients("cloudwatch", region).put_metric_alarm(**args)
    return i["name"], {"name": i["name"]}


def _event_rule(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    args = {"Name": r.name, "Description": i.get("description", "")}
    if "eventPattern" in i:
        args["EventPattern"] = i["eventPattern"]
    else:
        args["ScheduleExpression"] = i["scheduleExpression"]
    arn = d.clients("events", region).put_rule(**args)["RuleArn"]
    return r.name, {"arn": arn, "name": r.name}


def _function(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    source = f"# {i['name']}\ndef handler(event, context):\n    return None\n"
    created = d.clients("lambda", region).create_function(
        FunctionName=i["name"],
        Runtime=i["runtime"],
        Role=i["role"],
        Handler=i["handler"],
        Code={"ZipFile": lambda_zip(source)},
        Timeout=int(i["timeout"]),
        MemorySize=int(i["memorySize"]),
    )
    return i["name"], {"arn": created["FunctionArn"], "sourceCodeHash": created["CodeSha256"]}


def _cloudfront_function(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    created = d.clients("cloudfront", "us-east-1").create_function(
        Name=i["name"],
        FunctionConfig={"Comment": i.get("comment", ""), "Runtime": i["runtime"]},
        FunctionCode=i["code"].encode(),
    )
    return i["name"], {"arn": created["FunctionSummary"]["FunctionMetadata"]["FunctionARN"]}


def _key_value_store(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    store = d.clients("cloudfront", "us-east-1").create_key_value_store(Name=i["name"])[
        "KeyValueStore"
    ]
    return i["name"], {"arn": store["ARN"]}


CREATORS: dict[str, Callable[[Deployer, PlannedResource, dict, str], tuple[str, dict]]] = {
    "aws:ec2/vpc:Vpc": _vpc,
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": _default_sg,
    "aws:ec2/internetGateway:InternetGateway": _igw,
    "aws:ec2/subnet:Subnet": _subnet,
    "aws:ec2/eip:Eip": _eip,
    "aws:ec2/natGateway:NatGateway": _nat,
    "aws:ec2/routeTable:RouteTable": _route_table,
    "aws:ec2/securityGroup:SecurityGroup": _security_group,
    "aws:ec2/flowLog:FlowLog": _flow_log,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:iam/role:Role": _role,
    "aws:iam/rolePolicy:RolePolicy": _role_policy,
    "aws:ecr/repository:Repository": _repository,
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": _lifecycle,
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:lb/targetGroup:TargetGroup": _target_group,
    "aws:acm/certificate:Certificate": _certificate,
    "aws:appautoscaling/target:Target": _scalable_target,
    "aws:lb/listener:Listener": _listener,
    "aws:lb/listenerRule:ListenerRule": _listener_rule,
    "aws:ecs/cluster:Cluster": _cluster,
    "aws:ecs/taskDefinition:TaskDefinition": _task_definition,
    "aws:ecs/service:Service": _service,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _metric_alarm,
    "aws:cloudwatch/eventRule:EventRule": _event_rule,
    "aws:lambda/function:Function": _function,
    "aws:cloudfront/function:Function": _cloudfront_function,
    "aws:cloudfront/keyValueStore:KeyValueStore": _key_value_store,
}


def deploy(plan: Plan, clients: Clients) -> dict[str, Any]:
    """The checkpoint (``pulumi stack export`` document) of ``plan`` built in moto."""
    return Deployer(plan, clients).deploy()
