"""Drift at scale: 1,000 resources of 10 types in moto's server, scanned once.

Prints the API calls made per type, the wall time, and calls per resource. The target:
calls <= types x pages (batched, paginated reads; no call per resource).

    python benchmarks/drift_scale.py [--per-type 100]

Starts moto on 127.0.0.1 itself and stops it when done; sends nothing elsewhere.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ops.drift.aws import TAGGED, Reader, scan_aws
from ops.drift.state import parse_state

REGION = "eu-central-1"
PROVIDER = "urn:pulumi:bench::trading-infra::pulumi:providers:aws::aws::provider-id"


def resource(type_: str, name: str, id_: str, outputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:bench::trading-infra::{type_}::{name}",
        "custom": True,
        "type": type_,
        "id": id_,
        "inputs": outputs,
        "outputs": outputs,
        "provider": PROVIDER,
    }


def build(clients: Any, per_type: int) -> list[dict[str, Any]]:
    ec2, logs, iam = clients("ec2"), clients("logs"), clients("iam")
    secrets, cloudwatch, events = (
        clients("secretsmanager"),
        clients("cloudwatch"),
        clients("events"),
    )
    ecr, elbv2, ecs = clients("ecr"), clients("elbv2"), clients("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    found: list[dict[str, Any]] = []
    for n in range(per_type):
        name = f"bench-{n:04d}"
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24")["Subnet"]["SubnetId"]
        found.append(
            resource(
                "aws:ec2/subnet:Subnet", name, subnet, {"cidrBlock": f"10.0.{n}.0/24", "vpcId": vpc}
            )
        )
        group = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
        # A new group's default egress rule, as the state of a group that keeps it.
        egress = [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]
        found.append(
            resource(
                "aws:ec2/securityGroup:SecurityGroup", name, group, {"vpcId": vpc, "egress": egress}
            )
        )
        logs.create_log_group(logGroupName=name)
        logs.put_retention_policy(logGroupName=name, retentionInDays=30)
        found.append(
            resource("aws:cloudwatch/logGroup:LogGroup", name, name, {"retentionInDays": 30})
        )
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
        found.append(resource("aws:iam/role:Role", name, name, {"assumeRolePolicy": trust}))
        arn = secrets.create_secret(Name=name, Description=name)["ARN"]
        found.append(
            resource(
                "aws:secretsmanager/secret:Secret", name, arn, {"name": name, "description": name}
            )
        )
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="CPUUtilization",
            Namespace="AWS/ECS",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=1,
            Threshold=80.0,
            ComparisonOperator="GreaterThanThreshold",
        )
        found.append(
            resource(
                "aws:cloudwatch/metricAlarm:MetricAlarm",
                name,
                name,
                {
                    "threshold": 80.0,
                    "comparisonOperator": "GreaterThanThreshold",
                    "evaluationPeriods": 1,
                },
            )
        )
        events.put_rule(Name=name, ScheduleExpression="rate(1 hour)")
        found.append(
            resource(
                "aws:cloudwatch/eventRule:EventRule",
                name,
                name,
                {"scheduleExpression": "rate(1 hour)"},
            )
        )
        ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
        found.append(
            resource(
                "aws:ecr/repository:Repository", name, name, {"imageTagMutability": "IMMUTABLE"}
            )
        )
        tg = elbv2.create_target_group(
            Name=name, Protocol="HTTP", Port=8000, VpcId=vpc, TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
        found.append(
            resource(
                "aws:lb/targetGroup:TargetGroup",
                name,
                tg,
                {"port": 8000, "protocol": "HTTP", "targetType": "ip", "vpcId": vpc},
            )
        )
        cluster = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
        found.append(resource("aws:ecs/cluster:Cluster", name, cluster, {"name": name}))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--per-type", type=int, default=100, help="resources of each type (max 250)"
    )
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    config = Config(retries={"mode": "standard", "max_attempts": 3})
    cache: dict[tuple[str, str], Any] = {}

    def clients(service: str, region: str = REGION) -> Any:
        if (service, region) not in cache:
            cache[(service, region)] = boto3.client(
                service,
                region_name=region,
                endpoint_url=f"http://{host}:{port}",
                config=config,
                aws_access_key_id="bench",
                aws_secret_access_key="bench",  # noqa: S106 (moto's fake credentials)
            )
        return cache[(service, region)]

    try:
        built = time.perf_counter()
        resources = build(clients, args.per_type)
        built = time.perf_counter() - built
        export = {
            "version": 3,
            "deployment": {
                "resources": [
                    {
                        "urn": PROVIDER.rsplit("::", 1)[0],
                        "id": "provider-id",
                        "type": "pulumi:providers:aws",
                        "custom": True,
                        "inputs": {
                            "region": REGION,
                            "defaultTags": json.dumps({"tags": {"stack": "bench"}}),
                        },
                    },
                    *resources,
                ]
            },
        }
        state = parse_state(json.dumps(export))
        reader = Reader(clients)
        started = time.perf_counter()
        findings = scan_aws(state, reader)
        elapsed = time.perf_counter() - started
    finally:
        server.stop()

    types = sorted({r["type"] for r in resources})
    total = sum(reader.calls.values())
    print(
        f"state: {len(resources)} resources of {len(types)} types (built in moto in {built:.1f} s)"
    )
    print(f"{'type':<40} {'resources':>9} {'calls (= pages)':>16}")
    for type_ in types:
        count = sum(1 for r in resources if r["type"] == type_)
        print(f"{type_:<40} {count:>9} {reader.calls[type_]:>16}")
    print(f"{'the tag scan (every taggable type)':<40} {'':>9} {reader.calls[TAGGED]:>16}")
    statuses = {
        s: sum(1 for f in findings if f.status == s)
        for s in ("ok", "changed", "missing", "unmanaged", "unknown")
    }
    print(f"findings: {statuses}")
    print(
        f"API calls: {total} for {len(resources)} resources = "
        f"{total / len(resources):.3f} calls/resource"
    )
    print(f"wall time of the scan: {elapsed:.2f} s")
    per_resource = [
        t for t in types if reader.calls[t] >= sum(1 for r in resources if r["type"] == t) > 1
    ]
    print("per-resource calls: " + (", ".join(per_resource) if per_resource else "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
