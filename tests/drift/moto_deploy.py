"""Build a stack's plan in moto's server and write the checkpoint Pulumi would have.

The test double of `pulumi up`: every planned resource of a type drift reads is created
through boto3 (real HTTP, real botocore) and recorded in Pulumi's export format with its
real id and outputs. Mock ids and ARNs in the plan's inputs are translated to the real
ones as resources come into existence, in registration (dependency) order.
"""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from ops.runtime import Plan, PlannedResource

Clients = Callable[[str, str], Any]
ACCOUNT = "123456789012"
EC2_PREFIXES = {"vpc", "subnet", "igw", "nat", "rtb", "sg", "eipalloc", "vpce", "fl"}


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
        self.created: dict[tuple[str, str], str] = {}
        """(type, name) -> real id: mock ids repeat across types (an alarm and a queue
        may share a name)."""
        self.checkpoint: list[dict[str, Any]] = []
        self.regions: dict[str, str] = {}
        self.provider_tags: dict[str, dict[str, str]] = {}
        for resource in plan.resources:
            if resource.type == "pulumi:providers:aws":
                key = f"{resource.urn}::{resource.id}"
                self.regions[key] = str(resource.inputs["region"])
                tags = json.loads(str(resource.inputs.get("defaultTags") or "{}"))
                self.provider_tags[key] = tags.get("tags", {})

    def tags(self, resource: PlannedResource) -> dict[str, str]:
        """What the provider would tag the resource with: its default tags and its own."""
        own = resource.inputs.get("tags")
        return {
            **self.provider_tags.get(resource.provider or "", {}),
            **(own if isinstance(own, dict) else {}),
        }

    def tag(self, resource: PlannedResource, real_id: str, outputs: dict, region: str) -> None:
        """Tag the created resource as the provider's default tags would have."""
        tags = self.tags(resource)
        if not tags or resource.type.startswith("docker:"):
            return
        if real_id.split("-", 1)[0] in EC2_PREFIXES:
            self.clients("ec2", region).create_tags(
                Resources=[real_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
            )
        elif arn := outputs.get("arn"):
            service_region = "us-east-1" if ":cloudfront::" in arn else region
            # A type moto cannot tag this way stays untagged (and out of the tag scan).
            with contextlib.suppress(ClientError):
                self.clients("resourcegroupstaggingapi", service_region).tag_resources(
                    ResourceARNList=[arn], Tags=tags
                )

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
            if resource.type.startswith("docker:"):  # where the image is pushed
                region = str(resource.inputs.get("imageName", "")).split(".")[3]
            if create is None or region is None:
                continue
            inputs = self.t(resource.revealed)
            real_id, outputs = create(self, resource, inputs, region)
            self.tag(resource, real_id, outputs, region)
            self.created[(resource.type, resource.name)] = real_id
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
                    **(
                        {"ignoreChanges": list(resource.ignore_changes)}
                        if resource.ignore_changes
                        else {}
                    ),
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
        RoleName=name,
        AssumeRolePolicyDocument=i["assumeRolePolicy"],
        Tags=[{"Key": k, "Value": v} for k, v in d.tags(r).items()],
    )
    return name, {"name": name, "arn": role["Role"]["Arn"]}


def _role_policy(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    d.clients("iam", "us-east-1").put_role_policy(
        RoleName=i["role"], PolicyName=r.name, PolicyDocument=i["policy"]
    )
    return f"{i['role']}:{r.name}", {"name": r.name}


def _user(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    user = d.clients("iam", "us-east-1").create_user(
        UserName=i["name"],
        Path=i.get("path") or "/",
        Tags=[{"Key": k, "Value": v} for k, v in d.tags(r).items()],
    )["User"]
    return i["name"], {"name": i["name"], "arn": user["Arn"]}


def _user_policy(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    name = i.get("name") or r.name
    d.clients("iam", "us-east-1").put_user_policy(
        UserName=i["user"], PolicyName=name, PolicyDocument=i["policy"]
    )
    return f"{i['user']}:{name}", {"name": name}


def _access_key(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    key = d.clients("iam", "us-east-1").create_access_key(UserName=i["user"])["AccessKey"]
    return key["AccessKeyId"], {"status": key["Status"]}


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
    logs = i.get("accessLogs") or {}
    attributes = {
        "deletion_protection.enabled": i.get("enableDeletionProtection", False),
        "routing.http.drop_invalid_header_fields.enabled": i.get("dropInvalidHeaderFields", False),
        "routing.http.desync_mitigation_mode": i.get("desyncMitigationMode", "defensive"),
        "idle_timeout.timeout_seconds": i.get("idleTimeout", 60),
        "routing.http2.enabled": i.get("enableHttp2", True),
        "access_logs.s3.enabled": bool(logs.get("enabled")),
        "access_logs.s3.bucket": logs.get("bucket", ""),
        "access_logs.s3.prefix": logs.get("prefix", ""),
    }
    d.clients("elbv2", region).modify_load_balancer_attributes(
        LoadBalancerArn=arn,
        Attributes=[
            {"Key": k, "Value": str(v).lower() if isinstance(v, bool) else str(v)}
            for k, v in attributes.items()
        ],
    )
    return arn, {"arn": arn, "arnSuffix": arn.split(":loadbalancer/")[1], "dnsName": lb["DNSName"]}


def _target_group(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    tg = d.clients("elbv2", region).create_target_group(
        Name=_short(r.name),
        Protocol=i["protocol"],
        Port=int(i["port"]),
        VpcId=i["vpcId"],
        TargetType=i["targetType"],
        HealthCheckPath=i["healthCheck"]["path"],
        Matcher={"HttpCode": i["healthCheck"].get("matcher", "200")},
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


def aws_actions(actions: list[dict]) -> list[dict]:
    """Listener or rule actions from the provider's shape to ELBv2's."""
    found = []
    for action in actions:
        if action["type"] == "fixed-response":
            fixed = action["fixedResponse"]
            found.append(
                {
                    "Type": "fixed-response",
                    "FixedResponseConfig": {
                        "StatusCode": str(fixed["statusCode"]),
                        "ContentType": fixed["contentType"],
                        "MessageBody": fixed.get("messageBody", ""),
                    },
                }
            )
        elif action["type"] == "redirect":
            redirect = action["redirect"]
            found.append(
                {
                    "Type": "redirect",
                    "RedirectConfig": {
                        "Protocol": redirect.get("protocol", "#{protocol}"),
                        "Port": str(redirect.get("port", "#{port}")),
                        "StatusCode": redirect["statusCode"],
                    },
                }
            )
        else:
            groups = action["forward"]["targetGroups"]
            found.append(
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": g["arn"], "Weight": int(g["weight"])} for g in groups
                        ]
                    },
                }
            )
    return found


def aws_conditions(conditions: list[dict]) -> list[dict]:
    found = []
    for condition in conditions:
        if "pathPattern" in condition:
            values = condition["pathPattern"]["values"]
            found.append({"Field": "path-pattern", "PathPatternConfig": {"Values": values}})
        elif "httpHeader" in condition:
            header = condition["httpHeader"]
            found.append(
                {
                    "Field": "http-header",
                    "HttpHeaderConfig": {
                        "HttpHeaderName": header["httpHeaderName"],
                        "Values": header["values"],
                    },
                }
            )
    return found


def _listener(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
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
        DefaultActions=aws_actions(i["defaultActions"]),
    )["Listeners"][0]
    return listener["ListenerArn"], {"arn": listener["ListenerArn"]}


def _listener_rule(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    rule = d.clients("elbv2", region).create_rule(
        ListenerArn=i["listenerArn"],
        Priority=int(i["priority"]),
        Conditions=aws_conditions(i["conditions"]),
        Actions=aws_actions(i["actions"]),
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
        "InsufficientDataActions": i.get("insufficientDataActions", []),
        "ActionsEnabled": i.get("actionsEnabled", True),
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
    # What the provider reads back into the state, defaults included.
    return i["name"], {
        "name": i["name"],
        "actionsEnabled": args["ActionsEnabled"],
        "insufficientDataActions": args["InsufficientDataActions"],
    }


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
        TracingConfig={"Mode": (i.get("tracingConfig") or {}).get("mode", "PassThrough")},
        Layers=i.get("layers", []),
    )
    return i["name"], {"arn": created["FunctionArn"], "sourceCodeHash": created["CodeSha256"]}


def _cloudfront_function(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    created = d.clients("cloudfront", "us-east-1").create_function(
        Name=i["name"],
        FunctionConfig={
            "Comment": i.get("comment", ""),
            "Runtime": i["runtime"],
            "KeyValueStoreAssociations": {
                "Quantity": len(i.get("keyValueStoreAssociations", [])),
                "Items": [
                    {"KeyValueStoreARN": arn} for arn in i.get("keyValueStoreAssociations", [])
                ],
            },
        },
        FunctionCode=i["code"].encode(),
    )
    return i["name"], {"arn": created["FunctionSummary"]["FunctionMetadata"]["FunctionARN"]}


def _key_value_store(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    store = d.clients("cloudfront", "us-east-1").create_key_value_store(
        Name=i["name"], Comment=i.get("comment", "")
    )["KeyValueStore"]
    return i["name"], {"arn": store["ARN"]}


def _association(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    association = d.clients("ec2", region).associate_route_table(
        RouteTableId=i["routeTableId"], SubnetId=i["subnetId"]
    )["AssociationId"]
    return association, {}


def _endpoint(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    args: dict[str, Any] = {
        "VpcEndpointType": i.get("vpcEndpointType", "Gateway"),
        "VpcId": i["vpcId"],
        "ServiceName": i["serviceName"],
    }
    if args["VpcEndpointType"] == "Interface":
        args |= {
            "SubnetIds": i.get("subnetIds", []),
            "SecurityGroupIds": i.get("securityGroupIds", []),
            "PrivateDnsEnabled": bool(i.get("privateDnsEnabled")),
        }
    else:
        args["RouteTableIds"] = i.get("routeTableIds", [])
    endpoint = d.clients("ec2", region).create_vpc_endpoint(**args)["VpcEndpoint"]
    return endpoint["VpcEndpointId"], {}


def _capacity(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    d.clients("ecs", region).put_cluster_capacity_providers(
        cluster=i["clusterName"],
        capacityProviders=i["capacityProviders"],
        defaultCapacityProviderStrategy=[
            {"capacityProvider": s["capacityProvider"], "base": s["base"], "weight": s["weight"]}
            for s in i["defaultCapacityProviderStrategies"]
        ],
    )
    return i["clusterName"], {}


def _attachment(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    iam = d.clients("iam", "us-east-1")
    arn = i["policyArn"]
    try:
        iam.attach_role_policy(RoleName=i["role"], PolicyArn=arn)
    except iam.exceptions.NoSuchEntityException:
        # moto lacks the newer AWS-managed policies: attach a stand-in of the same name
        # and record its ARN, as the state would hold the one attached.
        arn = iam.create_policy(
            PolicyName=arn.rsplit("/", 1)[-1],
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "elasticloadbalancing:Describe*",
                            "Resource": "*",
                        }
                    ],
                }
            ),
        )["Policy"]["Arn"]
        iam.attach_role_policy(RoleName=i["role"], PolicyArn=arn)
    return f"{i['role']}-{r.name}", {"policyArn": arn}


def _kms_key(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    kms = d.clients("kms", region)
    key = kms.create_key(Policy=i["policy"], Description=i.get("description", ""))["KeyMetadata"]
    if i.get("enableKeyRotation"):
        kms.enable_key_rotation(KeyId=key["KeyId"])
    return key["KeyId"], {"arn": key["Arn"], "keyId": key["KeyId"]}


def _kms_alias(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    # The mocks give keys no keyId output, so the plan's targetKeyId is unknown; the
    # program names each alias after its key (`<key>-alias`).
    key = i.get("targetKeyId") or d.created[("aws:kms/key:Key", r.name.removesuffix("-alias"))]
    d.clients("kms", region).create_alias(AliasName=i["name"], TargetKeyId=key)
    return i["name"], {"targetKeyId": key}


def _layer(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    layer = d.clients("lambda", region).publish_layer_version(
        LayerName=i["layerName"],
        Description=i.get("description", ""),
        Content={"ZipFile": lambda_zip("# layer\n")},
        CompatibleRuntimes=i.get("compatibleRuntimes", []),
    )
    arn = layer["LayerVersionArn"]
    return arn, {"arn": arn, "layerVersionArn": arn}


def _permission(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    statement = r.name
    d.clients("lambda", region).add_permission(
        FunctionName=i["function"],
        StatementId=statement,
        Action=i["action"],
        Principal=i["principal"],
        SourceArn=i["sourceArn"],
    )
    return statement, {"statementId": statement}


def _event_target(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    # The plan's mocks give rules no name output, so the target's `rule` input is
    # unknown there; the program names each target after its rule (`<rule>-target`).
    rule = (
        i.get("rule")
        or d.created[("aws:cloudwatch/eventRule:EventRule", r.name.removesuffix("-target"))]
    )
    target = {
        "Id": r.name,
        "Arn": i["arn"],
        "RetryPolicy": {
            "MaximumRetryAttempts": int(i["retryPolicy"]["maximumRetryAttempts"]),
            "MaximumEventAgeInSeconds": int(i["retryPolicy"]["maximumEventAgeInSeconds"]),
        },
        "DeadLetterConfig": {"Arn": i["deadLetterConfig"]["arn"]},
    }
    d.clients("events", region).put_targets(Rule=rule, Targets=[target])
    return f"{rule}-{r.name}", {"rule": rule, "targetId": r.name}


def _dashboard(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    d.clients("cloudwatch", region).put_dashboard(
        DashboardName=i["dashboardName"], DashboardBody=i["dashboardBody"]
    )
    return i["dashboardName"], {}


def _topic(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    attributes = {"KmsMasterKeyId": i["kmsMasterKeyId"]} if i.get("kmsMasterKeyId") else {}
    arn = d.clients("sns", region).create_topic(Name=r.name, Attributes=attributes)["TopicArn"]
    return arn, {"arn": arn}


def _queue(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    sqs = d.clients("sqs", region)
    url = sqs.create_queue(
        QueueName=r.name,
        Attributes={
            "MessageRetentionPeriod": str(i["messageRetentionSeconds"]),
            "SqsManagedSseEnabled": str(bool(i.get("sqsManagedSseEnabled"))).lower(),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, {"arn": arn, "url": url}


def _queue_policy(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    # The mocks give queues no url output; the program names a policy `<queue>-policy`.
    url = i.get("queueUrl") or d.created[("aws:sqs/queue:Queue", r.name.removesuffix("-policy"))]
    d.clients("sqs", region).set_queue_attributes(QueueUrl=url, Attributes={"Policy": i["policy"]})
    return url, {"queueUrl": url}


def _delivery_source(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    source = d.clients("logs", region).put_delivery_source(
        name=i["name"], resourceArn=i["resourceArn"], logType=i["logType"]
    )["deliverySource"]
    return i["name"], {"arn": source["arn"]}


def _delivery_destination(
    d: Deployer, r: PlannedResource, i: dict, region: str
) -> tuple[str, dict]:
    destination = d.clients("logs", region).put_delivery_destination(
        name=i["name"],
        outputFormat=i["outputFormat"],
        deliveryDestinationConfiguration={
            "destinationResourceArn": i["deliveryDestinationConfiguration"][
                "destinationResourceArn"
            ]
        },
    )["deliveryDestination"]
    return i["name"], {"arn": destination["arn"]}


def _delivery(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    delivery = d.clients("logs", region).create_delivery(
        deliverySourceName=i["deliverySourceName"],
        deliveryDestinationArn=i["deliveryDestinationArn"],
    )["delivery"]
    return delivery["id"], {"arn": delivery["arn"]}


def _bucket(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    name = str(r.outputs.get("bucket") or i.get("bucket") or r.name)
    location = (
        {}
        if region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    lock = {"ObjectLockEnabledForBucket": True} if i.get("objectLockEnabled") else {}
    d.clients("s3", region).create_bucket(Bucket=name, **location, **lock)
    return name, {"bucket": name, "arn": f"arn:aws:s3:::{name}"}


def _bucket_setting(operation: str, build: Callable[[dict], dict]) -> Callable:
    def create(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
        getattr(d.clients("s3", region), operation)(Bucket=i["bucket"], **build(i))
        return i["bucket"], {}

    return create


def _lifecycle_rule(rule: dict) -> dict:
    built: dict[str, Any] = {
        "ID": rule["id"],
        "Status": rule["status"],
        "Filter": {"Prefix": (rule.get("filter") or {}).get("prefix", "")},
    }
    if expiration := rule.get("expiration"):
        built["Expiration"] = {"Days": int(expiration["days"])}
    if noncurrent := rule.get("noncurrentVersionExpiration"):
        built["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(noncurrent["noncurrentDays"])}
    if abort := rule.get("abortIncompleteMultipartUpload"):
        built["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(abort["daysAfterInitiation"])
        }
    return built


def _lifecycle_rules(i: dict) -> dict:
    return {"LifecycleConfiguration": {"Rules": [_lifecycle_rule(rule) for rule in i["rules"]]}}


def _web_acl(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    visibility = i["visibilityConfig"]
    created = d.clients("wafv2", "us-east-1").create_web_acl(
        Name=i["name"],
        Scope="CLOUDFRONT",
        DefaultAction={k.capitalize(): v for k, v in i["defaultAction"].items()},
        Rules=json.loads(i["ruleJson"]),
        VisibilityConfig={
            "SampledRequestsEnabled": visibility["sampledRequestsEnabled"],
            "CloudWatchMetricsEnabled": visibility["cloudwatchMetricsEnabled"],
            "MetricName": visibility["metricName"],
        },
    )["Summary"]
    return created["Id"], {"arn": created["ARN"]}


def _waf_logging(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    d.clients("wafv2", "us-east-1").put_logging_configuration(
        LoggingConfiguration={
            "ResourceArn": i["resourceArn"],
            "LogDestinationConfigs": i["logDestinationConfigs"],
            "RedactedFields": [
                {"SingleHeader": {"Name": f["singleHeader"]["name"]}} for f in i["redactedFields"]
            ],
        }
    )
    return i["resourceArn"], {}


def _validation(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    # Nothing to create: the resource waits for the certificate to be issued.
    return i["certificateArn"], {}


def _record(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    route53 = d.clients("route53", "us-east-1")
    zone = i["zoneId"]
    if zone not in d.real.values():  # the config's zone: create it once, under its name
        created = route53.create_hosted_zone(
            Name=i["name"].split(".", 2)[-1], CallerReference=zone
        )["HostedZone"]["Id"].rsplit("/", 1)[-1]
        d.map(zone, created)
        zone = created
    record = {"Name": i["name"], "Type": i["type"]}
    if i.get("aliases"):
        alias = i["aliases"][0]
        record["AliasTarget"] = {
            "HostedZoneId": alias["zoneId"],
            "DNSName": alias["name"],
            "EvaluateTargetHealth": bool(alias.get("evaluateTargetHealth")),
        }
    else:
        record |= {"TTL": int(i["ttl"]), "ResourceRecords": [{"Value": v} for v in i["records"]]}
    route53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}]},
    )
    return f"{zone}_{i['name']}_{i['type']}", {"zoneId": zone}


def _scaling_policy(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    config = i["targetTrackingScalingPolicyConfiguration"]
    policy = d.clients("application-autoscaling", region).put_scaling_policy(
        PolicyName=r.name,
        ServiceNamespace=i["serviceNamespace"],
        ResourceId=i["resourceId"],
        ScalableDimension=i["scalableDimension"],
        PolicyType=i["policyType"],
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": float(config["targetValue"]),
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": config["predefinedMetricSpecification"][
                    "predefinedMetricType"
                ]
            },
            "ScaleInCooldown": int(config["scaleInCooldown"]),
            "ScaleOutCooldown": int(config["scaleOutCooldown"]),
        },
    )
    return r.name, {"arn": policy["PolicyARN"], "name": r.name}


def _image(d: Deployer, r: PlannedResource, i: dict, region: str) -> tuple[str, dict]:
    name = i["imageName"]
    host_and_repo, _, tag = name.rpartition(":")
    repository = host_and_repo.split("/", 1)[1]
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"digest": f"sha256:{r.name}"},
        }
    )
    image = d.clients("ecr", region).put_image(
        repositoryName=repository, imageManifest=manifest, imageTag=tag
    )["image"]
    digest = f"{host_and_repo}@{image['imageId']['imageDigest']}"
    return f"{name}-{r.name}", {"repoDigest": digest}


NOT_IN_MOTO = (
    "aws:cloudfront/distribution:Distribution",
    "aws:cloudfront/keyvaluestoreKey:KeyvaluestoreKey",
    "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy",
    "aws:cloudfront/vpcOrigin:VpcOrigin",
    "aws:cloudwatch/compositeAlarm:CompositeAlarm",
)
"""Types moto cannot hold as the plan has them (no VPC origins, KeyValueStore keys,
response headers policies or composite alarms; distributions lose their function
associations): their handlers are tested against botocore's Stubber instead
(tests/drift/test_drift_stubbed.py), with responses in the APIs' documented shapes."""


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
    "aws:ec2/routeTableAssociation:RouteTableAssociation": _association,
    "aws:ec2/vpcEndpoint:VpcEndpoint": _endpoint,
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": _capacity,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": _attachment,
    "aws:kms/key:Key": _kms_key,
    "aws:kms/alias:Alias": _kms_alias,
    "aws:lambda/layerVersion:LayerVersion": _layer,
    "aws:lambda/permission:Permission": _permission,
    "aws:cloudwatch/eventTarget:EventTarget": _event_target,
    "aws:cloudwatch/dashboard:Dashboard": _dashboard,
    "aws:sns/topic:Topic": _topic,
    "aws:sqs/queue:Queue": _queue,
    "aws:sqs/queuePolicy:QueuePolicy": _queue_policy,
    "aws:cloudwatch/logDeliverySource:LogDeliverySource": _delivery_source,
    "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination": _delivery_destination,
    "aws:cloudwatch/logDelivery:LogDelivery": _delivery,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": _bucket_setting(
        "put_bucket_lifecycle_configuration", _lifecycle_rules
    ),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": _bucket_setting(
        "put_bucket_ownership_controls",
        lambda i: {
            "OwnershipControls": {"Rules": [{"ObjectOwnership": i["rule"]["objectOwnership"]}]}
        },
    ),
    "aws:s3/bucketPolicy:BucketPolicy": _bucket_setting(
        "put_bucket_policy", lambda i: {"Policy": i["policy"]}
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _bucket_setting(
        "put_public_access_block",
        lambda i: {
            "PublicAccessBlockConfiguration": {
                k[0].upper() + k[1:]: bool(i[k])
                for k in (
                    "blockPublicAcls",
                    "blockPublicPolicy",
                    "ignorePublicAcls",
                    "restrictPublicBuckets",
                )
            }
        },
    ),
    "aws:s3/bucketVersioning:BucketVersioning": _bucket_setting(
        "put_bucket_versioning",
        lambda i: {"VersioningConfiguration": {"Status": i["versioningConfiguration"]["status"]}},
    ),
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": _bucket_setting(
        "put_object_lock_configuration",
        lambda i: {
            "ObjectLockConfiguration": {
                "ObjectLockEnabled": i["objectLockEnabled"],
                "Rule": {
                    "DefaultRetention": {
                        "Mode": i["rule"]["defaultRetention"]["mode"],
                        "Days": int(i["rule"]["defaultRetention"]["days"]),
                    }
                },
            }
        },
    ),
    "aws:iam/user:User": _user,
    "aws:iam/userPolicy:UserPolicy": _user_policy,
    "aws:iam/accessKey:AccessKey": _access_key,
    "aws:s3/bucketServerSideEncryptionConfiguration:"
    "BucketServerSideEncryptionConfiguration": _bucket_setting(
        "put_bucket_encryption",
        lambda i: {
            "ServerSideEncryptionConfiguration": {
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": rule["applyServerSideEncryptionByDefault"][
                                "sseAlgorithm"
                            ]
                        }
                    }
                    for rule in i["rules"]
                ]
            }
        },
    ),
    "aws:wafv2/webAcl:WebAcl": _web_acl,
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": _waf_logging,
    "aws:acm/certificateValidation:CertificateValidation": _validation,
    "aws:route53/record:Record": _record,
    "aws:appautoscaling/policy:Policy": _scaling_policy,
    "docker:index/image:Image": _image,
}


def deploy(plan: Plan, clients: Clients) -> dict[str, Any]:
    """The checkpoint (``pulumi stack export`` document) of ``plan`` built in moto."""
    return Deployer(plan, clients).deploy()
