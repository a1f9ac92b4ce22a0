"""Drift of the sg stack built in moto's server: each hand-made change is reported
precisely, and nothing else."""

from __future__ import annotations

import copy
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from ops.drift.aws import as_policy
from ops.drift.ignore import apply_ignore, generate_ignore, parse_ignore
from ops.drift.render import render_json, render_markdown, render_table
from ops.drift.scan import scan
from tests.drift.conftest import World, build_world, client_factory, drifted
from tests.drift.moto_deploy import lambda_zip

SG = "ap-southeast-1"


@pytest.fixture(scope="module")
def world(moto_url: str) -> World:
    return build_world(moto_url, "sg")


def test_a_clean_stack_has_no_findings_and_exits_0(world: World) -> None:
    report = world.scan()
    assert drifted(report) == []
    assert report.exit_code() == 0
    assert report.coverage == 1.0
    assert len(report.findings) > 120
    # Every resource has a handler; the one type checked for presence only says so.
    assert {f.type for f in report.present_only} == {
        "aws:cloudwatch/dashboard:Dashboard",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    }
    assert {f.status for f in report.findings} == {"ok"}


def ingress_22_from_anywhere() -> list[dict[str, Any]]:
    return [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    ]


def test_a_hand_added_security_group_rule_is_named(world: World) -> None:
    ec2 = world.clients("ec2", SG)
    group = world.resource("alb-sg")["id"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=ingress_22_from_anywhere())
    try:
        report = world.scan()
        assert drifted(report) == [("changed", "aws:ec2/securityGroup:SecurityGroup", "alb-sg")]
        (finding,) = report.of("changed")
        (diff,) = finding.diffs
        assert diff.attribute == "ingress"
        assert ["tcp", [22, 22], "0.0.0.0/0"] in json.loads(json.dumps(diff.actual))
        assert report.exit_code() == 2
    finally:
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=ingress_22_from_anywhere())
    assert drifted(world.scan()) == []


def test_a_count_within_the_scalers_range_is_not_drift_and_below_it_is(world: World) -> None:
    """The program ignores desiredCount changes of an autoscaled service (the scaler
    owns it): 5 within the target's 2..8 is no drift; 0 below its minimum is."""
    ecs = world.clients("ecs", SG)
    service = world.resource("api-service")
    cluster = service["inputs"]["cluster"]
    try:
        ecs.update_service(cluster=cluster, service=service["id"], desiredCount=5)
        assert drifted(world.scan()) == []
        ecs.update_service(cluster=cluster, service=service["id"], desiredCount=0)
        report = world.scan()
        assert drifted(report) == [("changed", "aws:ecs/service:Service", "api-service")]
        (diff,) = report.of("changed")[0].diffs
        assert (diff.attribute, diff.expected, diff.actual) == (
            "desiredCount",
            "2..8 (autoscaled)",
            0,
        )
    finally:
        ecs.update_service(cluster=cluster, service=service["id"], desiredCount=2)


def test_a_changed_scalable_target_is_named(world: World) -> None:
    scaling = world.clients("application-autoscaling", SG)
    target = world.resource("api-scaling-target")["inputs"]
    common = {
        "ServiceNamespace": "ecs",
        "ResourceId": target["resourceId"],
        "ScalableDimension": target["scalableDimension"],
    }
    scaling.register_scalable_target(**common, MinCapacity=0, MaxCapacity=8)
    try:
        report = world.scan()
        assert drifted(report) == [
            ("changed", "aws:appautoscaling/target:Target", "api-scaling-target")
        ]
        assert [d.attribute for d in report.of("changed")[0].diffs] == ["minCapacity"]
    finally:
        scaling.register_scalable_target(**common, MinCapacity=2, MaxCapacity=8)


def test_a_replaced_task_definition_is_reported_on_the_service(world: World) -> None:
    ecs = world.clients("ecs", SG)
    service = world.resource("api-service")
    task = world.resource("api-task")
    described = ecs.describe_task_definition(taskDefinition=task["outputs"]["arn"])[
        "taskDefinition"
    ]
    replacement = ecs.register_task_definition(
        family=described["family"],
        containerDefinitions=[{**described["containerDefinitions"][0], "image": "nginx:1.27"}],
        cpu=described["cpu"],
        memory=described["memory"],
        networkMode=described["networkMode"],
        requiresCompatibilities=described["requiresCompatibilities"],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(
        cluster=service["inputs"]["cluster"], service=service["id"], taskDefinition=replacement
    )
    try:
        report = world.scan()
        assert drifted(report) == [("changed", "aws:ecs/service:Service", "api-service")]
        (diff,) = report.of("changed")[0].diffs
        assert diff.attribute == "taskDefinition"
        assert (diff.expected, diff.actual) == (task["outputs"]["arn"], replacement)
    finally:
        ecs.update_service(
            cluster=service["inputs"]["cluster"],
            service=service["id"],
            taskDefinition=task["outputs"]["arn"],
        )
        ecs.deregister_task_definition(taskDefinition=replacement)


def test_changed_function_code_is_reported(world: World) -> None:
    function = world.resource("failover-sg-function")
    name = function["id"]
    client = world.clients("lambda", SG)
    original = lambda_zip(f"# {name}\ndef handler(event, context):\n    return None\n")
    client.update_function_code(
        FunctionName=name, ZipFile=lambda_zip("def handler(e, c):\n    return 'patched'\n")
    )
    try:
        report = world.scan()
        assert drifted(report) == [
            ("changed", "aws:lambda/function:Function", "failover-sg-function")
        ]
        assert [d.attribute for d in report.of("changed")[0].diffs] == ["sourceCodeHash"]
    finally:
        client.update_function_code(FunctionName=name, ZipFile=original)
    assert drifted(world.scan()) == []


def test_a_changed_log_retention_is_reported(world: World) -> None:
    logs = world.clients("logs", SG)
    group = world.resource("api-logs")["id"]
    logs.put_retention_policy(logGroupName=group, retentionInDays=30)
    try:
        report = world.scan()
        assert drifted(report) == [("changed", "aws:cloudwatch/logGroup:LogGroup", "api-logs")]
        (diff,) = report.of("changed")[0].diffs
        assert (diff.attribute, int(diff.expected), diff.actual) == ("retentionInDays", 365, 30)
    finally:
        logs.put_retention_policy(logGroupName=group, retentionInDays=365)


def test_an_extra_security_group_in_the_vpc_is_unmanaged(world: World) -> None:
    ec2 = world.clients("ec2", SG)
    vpc = world.resource("network-vpc")["id"]
    extra = ec2.create_security_group(GroupName="hand-made", Description="by hand", VpcId=vpc)[
        "GroupId"
    ]
    other_vpc = ec2.create_vpc(CidrBlock="172.31.0.0/16")["Vpc"]["VpcId"]
    elsewhere = ec2.create_security_group(GroupName="not-ours", Description="x", VpcId=other_vpc)[
        "GroupId"
    ]
    try:
        report = world.scan()
        unmanaged = report.of("unmanaged")
        assert [(f.type, f.id) for f in unmanaged] == [
            ("aws:ec2/securityGroup:SecurityGroup", extra)
        ]
        assert "hand-made" in (unmanaged[0].detail or "")
        assert drifted(report) == [
            ("unmanaged", "aws:ec2/securityGroup:SecurityGroup", "unmanaged")
        ]
        assert report.coverage < 1.0
    finally:
        ec2.delete_security_group(GroupId=extra)
        ec2.delete_security_group(GroupId=elsewhere)
        ec2.delete_vpc(VpcId=other_vpc)


class _Body:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def test_a_throttled_service_marks_its_resources_unknown_and_exits_1(
    moto_url: str, world: World
) -> None:
    # ECS answers every call with throttling; one attempt, since botocore's own retries
    # would only add back-off time. Every other service is the world's.
    ecs_clients = client_factory(moto_url, max_attempts=1)
    body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()

    def throttle(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(
            request.url, 400, {"x-amzn-errortype": "ThrottlingException"}, _Body(body)
        )

    def factory(name: str, region: str) -> Any:
        if name != "ecs":
            return world.clients(name, region)
        client = ecs_clients(name, region)
        client.meta.events.register_first("before-send", throttle, unique_id="throttle")
        return client

    report, _ = scan("sg", world.state, clients=factory)
    unknown = report.of("unknown")
    assert {f.type for f in unknown} == {
        "aws:ecs/cluster:Cluster",
        "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders",
        "aws:ecs/service:Service",
        "aws:ecs/taskDefinition:TaskDefinition",
    }
    assert all("Throttling" in (f.error or "") for f in unknown)
    assert [s for s, _, _ in drifted(report)] == ["unknown"] * len(unknown)
    assert report.exit_code() == 1


def test_the_ignore_file_suppresses_exactly_what_it_names(world: World) -> None:
    ecs = world.clients("ecs", SG)
    logs = world.clients("logs", SG)
    service = world.resource("api-service")
    ecs.update_service(cluster=service["inputs"]["cluster"], service=service["id"], desiredCount=0)
    logs.put_retention_policy(logGroupName=world.resource("api-logs")["id"], retentionInDays=30)
    try:
        report = world.scan()
        assert len(drifted(report)) == 2
        rules = parse_ignore(
            "# scaled to zero for tonight's maintenance\naws:ecs/service:Service#desiredCount\n"
        )
        filtered = apply_ignore(report, rules)
        assert drifted(filtered) == [("changed", "aws:cloudwatch/logGroup:LogGroup", "api-logs")]
        negated = parse_ignore("*api-logs*\n!*api-logs*\n")
        assert len(drifted(apply_ignore(report, negated))) == 2
        generated = parse_ignore(generate_ignore(report))
        assert drifted(apply_ignore(report, generated)) == []
    finally:
        ecs.update_service(
            cluster=service["inputs"]["cluster"], service=service["id"], desiredCount=2
        )
        logs.put_retention_policy(
            logGroupName=world.resource("api-logs")["id"], retentionInDays=365
        )


def test_every_format_renders_the_findings(world: World) -> None:
    logs = world.clients("logs", SG)
    logs.put_retention_policy(logGroupName=world.resource("api-logs")["id"], retentionInDays=30)
    try:
        report = world.scan()
    finally:
        logs.put_retention_policy(
            logGroupName=world.resource("api-logs")["id"], retentionInDays=365
        )
    document = json.loads(render_json(report))
    assert document["exit_code"] == 2
    assert document["counts"]["changed"] == 1
    (changed,) = [f for f in document["findings"] if f["status"] == "changed"]
    assert changed["diffs"] == [{"attribute": "retentionInDays", "expected": 365, "actual": 30}]
    table = render_table(report)
    assert "retentionInDays: 365 -> 30" in table and "coverage 100.0%" in table
    markdown = render_markdown(report)
    assert markdown.startswith("## Drift in stack `sg`")
    assert "| changed | `aws:cloudwatch/logGroup:LogGroup` |" in markdown


class _PortalPage(http.server.BaseHTTPRequestHandler):
    """What a captive portal or a misconfigured proxy answers: HTTP 200, an HTML page."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<html><body><h1>Sign in to continue</h1></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_an_html_page_with_http_200_is_unknown_never_missing(world: World) -> None:
    """botocore parses such a page into an empty answer (XML for EC2, JSON for ECS), which
    read as 'every resource missing' before; without AWS's request id it is no answer."""
    portal = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PortalPage)
    threading.Thread(target=portal.serve_forever, daemon=True).start()
    try:
        page = client_factory(f"http://127.0.0.1:{portal.server_address[1]}", max_attempts=1)

        def factory(name: str, region: str) -> Any:
            return page(name, region) if name in ("ec2", "ecs") else world.clients(name, region)

        report, _ = scan("sg", world.state, clients=factory)
    finally:
        portal.shutdown()
        portal.server_close()
    statuses = {
        f.type: f.status for f in report.findings if f.type.startswith(("aws:ec2/", "aws:ecs/"))
    }
    assert statuses and set(statuses.values()) == {"unknown"}
    assert not report.of("missing")
    assert all("not an AWS API answer" in (f.error or "") for f in report.of("unknown"))
    assert report.exit_code() == 1


# --- the six comparisons a review found untested ---------------------------------------
# Each scenario changes one compared attribute (live in moto where AWS allows the change,
# else in the state, which the comparison sees the same way) and expects a finding that
# names it. Made always-equal one at a time, each comparison fails its scenario.


def _live_change(world: World, name: str) -> Callable[[], None]:
    ec2, elbv2, cloudwatch = (world.clients(s, SG) for s in ("ec2", "elbv2", "cloudwatch"))
    resource = world.resource(name)
    if name == "network-public-0":
        ec2.modify_subnet_attribute(SubnetId=resource["id"], MapPublicIpOnLaunch={"Value": True})
        return lambda: ec2.modify_subnet_attribute(
            SubnetId=resource["id"], MapPublicIpOnLaunch={"Value": False}
        )
    if name == "alb-tg":
        elbv2.modify_target_group(TargetGroupArn=resource["id"], HealthCheckPath="/elsewhere")
        path = resource["inputs"]["healthCheck"]["path"]
        return lambda: elbv2.modify_target_group(
            TargetGroupArn=resource["id"], HealthCheckPath=path
        )
    if name == "network-default-sg":
        ec2.authorize_security_group_ingress(
            GroupId=resource["id"], IpPermissions=ingress_22_from_anywhere()
        )
        return lambda: ec2.revoke_security_group_ingress(
            GroupId=resource["id"], IpPermissions=ingress_22_from_anywhere()
        )
    if name == "monitoring-cpu":
        (alarm,) = cloudwatch.describe_alarms(AlarmNames=[resource["id"]])["MetricAlarms"]
        keys = (
            "AlarmName",
            "MetricName",
            "Namespace",
            "Statistic",
            "Period",
            "EvaluationPeriods",
            "ComparisonOperator",
            "Dimensions",
            "AlarmActions",
            "OKActions",
            "TreatMissingData",
        )
        kept = {k: alarm[k] for k in keys if k in alarm}
        cloudwatch.put_metric_alarm(**kept, Threshold=alarm["Threshold"] + 7)
        return lambda: cloudwatch.put_metric_alarm(**kept, Threshold=alarm["Threshold"])
    raise AssertionError(name)


def _state_change(world: World, name: str, key: str, value: Any) -> str:
    checkpoint = copy.deepcopy(world.checkpoint)
    for resource in checkpoint["deployment"]["resources"]:
        if resource["urn"].endswith(f"::{name}"):
            resource["inputs"][key] = value
            resource["outputs"][key] = value
    return json.dumps(checkpoint)


@pytest.mark.parametrize(
    ("name", "type_", "attribute"),
    [
        ("network-public-0", "aws:ec2/subnet:Subnet", "mapPublicIpOnLaunch"),
        ("alb-tg", "aws:lb/targetGroup:TargetGroup", "healthCheck.path"),
        ("network-default-sg", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "ingress"),
        ("monitoring-cpu", "aws:cloudwatch/metricAlarm:MetricAlarm", "threshold"),
    ],
)
def test_a_live_change_of_a_compared_attribute_is_named(
    world: World, name: str, type_: str, attribute: str
) -> None:
    undo = _live_change(world, name)
    try:
        report = world.scan()
    finally:
        undo()
    assert drifted(report) == [("changed", type_, name)]
    assert attribute in [d.attribute for d in report.of("changed")[0].diffs]
    assert drifted(world.scan()) == []


@pytest.mark.parametrize(
    ("name", "type_", "key", "value", "attribute"),
    [
        ("network-vpc", "aws:ec2/vpc:Vpc", "cidrBlock", "10.99.0.0/16", "cidrBlock"),
        ("alb-alb", "aws:lb/loadBalancer:LoadBalancer", "internal", False, "internal"),
    ],
)
def test_a_compared_attribute_aws_cannot_change_is_named_from_the_state(
    world: World, name: str, type_: str, key: str, value: Any, attribute: str
) -> None:
    report, _ = scan("sg", _state_change(world, name, key, value), clients=world.clients)
    assert drifted(report) == [("changed", type_, name)]
    assert attribute in [d.attribute for d in report.of("changed")[0].diffs]


# --- IAM policy documents compare by meaning --------------------------------------------


def test_policy_documents_compare_by_meaning_as_the_provider_does() -> None:
    state = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": ["arn:b", "arn:a"]},
            {"Effect": "Allow", "Principal": {"AWS": "123456789012"}, "Action": "sts:AssumeRole"},
        ],
    }
    live = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["arn:aws:iam::123456789012:root"]},
                "Action": ["sts:AssumeRole"],
            },
            {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": ["arn:a", "arn:b"]},
        ],
    }
    assert as_policy(json.dumps(state)) == as_policy(live)
    widened = copy.deepcopy(live)
    widened["Statement"][1]["Action"] = ["logs:*"]
    assert as_policy(json.dumps(state)) != as_policy(widened)
    single = {"Version": "2012-10-17", "Statement": state["Statement"][0]}
    assert as_policy(single)["Statement"] == [as_policy(state)["Statement"][0]]


def test_an_equivalent_live_role_policy_is_clean_and_a_widened_one_is_named(
    world: World,
) -> None:
    iam = world.clients("iam", "us-east-1")
    resource = world.resource("network-flow-logs-policy")
    role, name = resource["id"].split(":", 1)
    original = json.loads(resource["inputs"]["policy"])
    statements = original["Statement"]
    # The same policy, spelled differently: statements reversed, every list reversed and
    # one-item lists as strings, a lone statement as an object rather than a list.
    listed = statements if isinstance(statements, list) else [statements]
    respelled_statements = [
        {
            k: (v[0] if len(v) == 1 else list(reversed(v))) if isinstance(v, list) else v
            for k, v in statement.items()
        }
        for statement in reversed(listed)
    ]
    respelled = {
        **original,
        "Statement": respelled_statements[0]
        if len(respelled_statements) == 1
        else respelled_statements,
    }
    assert respelled != original
    iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(respelled))
    try:
        assert drifted(world.scan()) == []
        widened = copy.deepcopy(original)
        first = (
            widened["Statement"][0]
            if isinstance(widened["Statement"], list)
            else widened["Statement"]
        )
        first["Action"] = "*"
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(widened))
        report = world.scan()
        assert drifted(report) == [
            ("changed", "aws:iam/rolePolicy:RolePolicy", "network-flow-logs-policy")
        ]
        assert [d.attribute for d in report.of("changed")[0].diffs] == ["policy"]
    finally:
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(original))
