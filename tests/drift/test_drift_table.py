"""Table-driven drift tests of the sg stack built in moto: every (type, attribute) a
handler compares has a scenario that changes it and expects a finding naming it;
every type has a deletion scenario expecting ``missing``.

Completeness is enforced, not hoped for: a clean scan records each (type, attribute)
compared (``Compare.seen``), and the table must hold a scenario for every one of them;
a new comparison without a scenario fails ``test_every_compared_attribute_has_a_scenario``.

A scenario changes the attribute either live in moto (the security-relevant ones, and
any AWS lets an operator change in place) or, where AWS cannot change it in place (a
VPC's CIDR, a subnet's zone) or moto cannot, in the state: either way the comparison
sees two different values. Made always-equal one at a time, each comparison fails its
own scenario (checked by hand for every row, see the commit that added this file).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import ops.drift.handlers  # noqa: F401 (registers the handlers)
from ops.drift import aws
from ops.drift.aws import HANDLERS, Compare
from ops.drift.scan import scan
from ops.drift.state import parse_state
from tests.drift.conftest import World, build_world

SG = "ap-southeast-1"


@pytest.fixture(scope="module")
def world(moto_url: str) -> World:
    return build_world(moto_url, "sg")


def _only(world: World, type_: str, edit: Callable[[dict[str, Any]], bool]) -> tuple[str, str]:
    """The checkpoint with the providers and the resources of one type only (a scan of
    one type is fast), the first of them that ``edit`` can change changed; and its URN."""
    # Through JSON, as a real checkpoint is: no nested value shared by inputs and outputs.
    checkpoint = json.loads(json.dumps(world.checkpoint))
    resources = checkpoint["deployment"]["resources"]
    kept = [r for r in resources if r["type"].startswith("pulumi:") or r["type"] == type_]
    edited = next(r for r in kept if r["type"] == type_ and edit(r))
    checkpoint["deployment"]["resources"] = kept
    return json.dumps(checkpoint), edited["urn"]


def _compared(world: World) -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for type_, spec in HANDLERS.items():
        if spec.compare is None:
            continue
        Compare.seen = set()
        try:
            state = parse_state(world.state)
            for resource in state.of_type(type_):
                live = spec.fetch(aws.Reader(world.clients), _region(world, type_), [resource])
                record = live.get(spec.live_id(resource))
                if record is not None:
                    spec.compare(resource, record)
            pairs |= {(type_, attribute) for attribute in Compare.seen}
        finally:
            Compare.seen = None
    return pairs


def _region(world: World, type_: str) -> str:
    spec = HANDLERS[type_]
    if spec.global_region:
        return spec.global_region
    state = parse_state(world.state)
    resource = state.of_type(type_)[0]
    return (spec.region_of(resource) if spec.region_of else None) or state.regions[resource.urn]


# --- state-side changes: every compared attribute -------------------------------------


def _perturb(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 7
    if isinstance(value, str):
        return value + "-changed"
    if isinstance(value, list):
        return [*value, "extra"] if not value or not isinstance(value[0], dict) else value[:-1]
    if isinstance(value, dict):
        return {**value, "changed": True}
    raise AssertionError(f"cannot perturb {value!r}")


STATE_PATHS: dict[tuple[str, str], tuple[str | int, ...]] = {
    ("docker:index/image:Image", "imageName.tag"): ("imageName",),
    ("aws:s3/bucketServerSideEncryptionConfiguration:"
     "BucketServerSideEncryptionConfiguration", "rules.sseAlgorithm"): (
        "rules", 0, "applyServerSideEncryptionByDefault", "sseAlgorithm"),
    ("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders",
     "defaultCapacityProviderStrategies"): ("defaultCapacityProviderStrategies", 0, "weight"),
    ("aws:ecr/repository:Repository", "imageScanningConfiguration.scanOnPush"): (
        "imageScanningConfiguration", "scanOnPush"),
    ("aws:ecs/service:Service", "networkConfiguration.assignPublicIp"): (
        "networkConfiguration", "assignPublicIp"),
    ("aws:ecs/service:Service", "networkConfiguration.securityGroups"): (
        "networkConfiguration", "securityGroups"),
    ("aws:ecs/service:Service", "networkConfiguration.subnets"): (
        "networkConfiguration", "subnets"),
    ("aws:lb/loadBalancer:LoadBalancer", "accessLogs"): ("accessLogs", "prefix"),
    ("aws:lb/listener:Listener", "defaultActions"): (
        "defaultActions", 0, "fixedResponse", "statusCode"),
    ("aws:lb/listenerRule:ListenerRule", "actions"): (
        "actions", 0, "forward", "targetGroups", 0, "arn"),
    ("aws:lb/listenerRule:ListenerRule", "conditions"): (
        "conditions", 0, "pathPattern", "values", 0),
    ("aws:lambda/function:Function", "tracingConfig.mode"): ("tracingConfig", "mode"),
    ("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "rule.objectOwnership"): (
        "rule", "objectOwnership"),
    ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "rules"): (
        "rules", 0, "expiration", "days"),
    ("aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination",
     "deliveryDestinationConfiguration.destinationResourceArn"): (
        "deliveryDestinationConfiguration", "destinationResourceArn"),
    ("aws:cloudwatch/eventTarget:EventTarget", "deadLetterConfig.arn"): (
        "deadLetterConfig", "arn"),
    ("aws:cloudwatch/eventTarget:EventTarget", "retryPolicy.maximumRetryAttempts"): (
        "retryPolicy", "maximumRetryAttempts"),
    ("aws:appautoscaling/policy:Policy", "targetTrackingScalingPolicyConfiguration.targetValue"): (
        "targetTrackingScalingPolicyConfiguration", "targetValue"),
    ("aws:appautoscaling/policy:Policy",
     "targetTrackingScalingPolicyConfiguration.predefinedMetricType"): (
        "targetTrackingScalingPolicyConfiguration", "predefinedMetricSpecification",
        "predefinedMetricType"),
    ("aws:lb/targetGroup:TargetGroup", "healthCheck.path"): ("healthCheck", "path"),
    ("aws:lb/targetGroup:TargetGroup", "healthCheck.matcher"): ("healthCheck", "matcher"),
    ("aws:wafv2/webAcl:WebAcl", "defaultAction"): ("defaultAction",),
    ("aws:wafv2/webAcl:WebAcl", "rules"): ("ruleJson",),
    ("aws:route53/record:Record", "aliases.name"): ("aliases", 0, "name"),
    ("aws:ecr/repository:Repository", "encryptionConfigurations.encryptionType"): (
        "encryptionConfigurations", 0, "encryptionType"),
    ("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "ingress"): (),
    ("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "egress"): (),
    ("aws:kms/key:Key", "keyState"): (),
    ("aws:acm/certificateValidation:CertificateValidation", "status"): (),
}  # fmt: skip
"""Where an attribute's state value lives, when not at its own dotted name. An empty
path: the expected value is not the state's (EC2.2's empty default group, an enabled
key, an issued certificate); those are changed live only."""


def _set(document: dict[str, Any], path: tuple[Any, ...], perturb: Callable[[Any], Any]) -> bool:
    parent: Any = document
    for step in path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return False
    try:
        parent[path[-1]] = perturb(parent[path[-1]])
    except (KeyError, IndexError, TypeError):
        return False
    return True


def _waf_rules(value: Any) -> Any:
    rules = json.loads(value)
    rules[0]["Action"] = {"Count": {}}
    return json.dumps(rules)


def _swap(old: str, new: str) -> Callable[[str], str]:
    return lambda document: document.replace(old, new)


SPECIAL: dict[tuple[str, str], Callable[[Any], Any]] = {
    ("aws:wafv2/webAcl:WebAcl", "rules"): _waf_rules,
    ("aws:wafv2/webAcl:WebAcl", "defaultAction"): lambda _: {"block": {}},
    ("aws:ec2/securityGroup:SecurityGroup", "ingress"): lambda rules: [
        *rules,
        {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]},
    ],
    ("aws:ec2/securityGroup:SecurityGroup", "egress"): lambda rules: [
        *rules,
        {"protocol": "tcp", "fromPort": 25, "toPort": 25, "cidrBlocks": ["0.0.0.0/0"]},
    ],
    ("aws:ec2/routeTable:RouteTable", "routes"): lambda routes: [
        *routes,
        {"cidrBlock": "10.250.0.0/16", "gatewayId": "igw-elsewhere"},
    ],
    ("aws:lb/listener:Listener", "port"): lambda port: int(port) + 1,
    ("aws:iam/role:Role", "assumeRolePolicy"): _swap("sts:AssumeRole", "sts:TagSession"),
    ("aws:iam/rolePolicy:RolePolicy", "policy"): _swap('"Effect": "Allow"', '"Effect": "Deny"'),
    ("aws:kms/key:Key", "policy"): _swap('"Effect": "Allow"', '"Effect": "Deny"'),
    ("aws:sqs/queuePolicy:QueuePolicy", "policy"): _swap('"Effect": "Allow"', '"Effect": "Deny"'),
    ("aws:s3/bucketPolicy:BucketPolicy", "policy"): _swap('"Effect": "Deny"', '"Effect": "Allow"'),
    ("aws:ecr/lifecyclePolicy:LifecyclePolicy", "policy"): _swap(
        "imageCountMoreThan", "sinceImagePushed"),
    ("aws:ecs/cluster:Cluster", "settings"): lambda s: [{**s[0], "value": "disabled"}, *s[1:]],
    ("aws:cloudwatch/eventRule:EventRule", "eventPattern"): lambda p: json.dumps(
        {**json.loads(p), "account": ["000000000000"]}
    ),
}  # fmt: skip
"""Changes that must stay well-formed (a policy that still parses, a rule list)."""


def state_scenarios(
    world: World, paths: dict[tuple[str, str], tuple[Any, ...]] = STATE_PATHS
) -> Iterator[tuple[str, str, tuple[Any, ...]]]:
    for type_, attribute in sorted(_compared(world)):
        path = paths.get((type_, attribute), tuple(attribute.split(".")))
        if path:
            yield type_, attribute, path


def state_change_failures(
    world: World, paths: dict[tuple[str, str], tuple[Any, ...]] = STATE_PATHS
) -> tuple[list[Any], int]:
    """Each compared attribute changed in the state, one at a time: the scenarios whose
    finding does not name it, and how many ran."""
    failures: list[Any] = []
    count = 0
    for type_, attribute, path in state_scenarios(world, paths):
        perturb = SPECIAL.get((type_, attribute), _perturb)

        def edit(
            resource: dict[str, Any], path: tuple[Any, ...] = path, perturb: Any = perturb
        ) -> bool:
            changed = [_set(resource[part], path, perturb) for part in ("inputs", "outputs")]
            return any(changed)

        try:
            state, urn = _only(world, type_, edit)
        except StopIteration:
            failures.append((type_, attribute, "no resource has this path"))
            continue
        report, _ = scan(world.stack, state, clients=world.clients)
        named = [d.attribute for f in report.of("changed") if f.urn == urn for d in f.diffs]
        count += 1
        if attribute not in named:
            failures.append((type_, attribute, named))
    return failures, count


def deletion_failures(world: World) -> list[Any]:
    """Each type's first resource renamed away in the state: the types not ``missing``."""
    state = parse_state(world.state)
    failures = []
    for type_ in sorted({r.type for r in state.resources if r.type in HANDLERS}):
        resource = state.of_type(type_)[0]
        live_id = HANDLERS[type_].live_id(resource)

        def gone(document: dict[str, Any], live_id: str = live_id, urn: str = resource.urn) -> bool:
            """Rename whatever the live key is made of: the state now names a resource
            that does not exist (as after a console deletion)."""
            if document["urn"] != urn:
                return False
            document["id"] = f"{document['id']}-gone"
            for part in ("inputs", "outputs"):
                for key, value in list(document[part].items()):
                    if (
                        isinstance(value, str)
                        and len(value) > 3
                        and (value in live_id or live_id in value)
                    ):
                        document[part][key] = f"{value}-gone"
            return document["urn"] == urn

        state_text, _ = _only(world, type_, gone)
        report, _ = scan(world.stack, state_text, clients=world.clients)
        statuses = {f.urn: f.status for f in report.findings if f.urn}
        if statuses.get(resource.urn) != "missing":
            failures.append(
                (type_, [(f.status, f.error) for f in report.findings if f.urn == resource.urn])
            )
    return failures


Change = Callable[[World], Callable[[], None]]
"""A change an operator could make in the console; returns its undo."""


def live_registry() -> tuple[dict[tuple[str, str], Change], Callable[[str, str], Any]]:
    """A table of live changes, (type, attribute) -> change, and its decorator."""
    table: dict[tuple[str, str], Change] = {}

    def live(type_: str, attribute: str) -> Callable[[Change], Change]:
        def register(change: Change) -> Change:
            table[(type_, attribute)] = change
            return change

        return register

    return table, live


def live_change_report(world: World, change: Change) -> Any:
    """The scan with ``change`` made, after checking the scan with it undone is clean."""
    undo = change(world)
    try:
        report = world.scan()
    finally:
        undo()
    after = world.scan()
    assert [(f.type, f.diffs) for f in after.findings if f.status != "ok"] == []
    return report


LIVE, live = live_registry()


def test_every_compared_attribute_has_a_scenario(world: World) -> None:
    compared = _compared(world)
    assert len(compared) > 80  # every type's comparisons were reached
    without = {
        pair for pair in compared if STATE_PATHS.get(pair, ("x",)) == () and pair not in LIVE
    }
    assert without == set(), "comparisons no scenario changes"


def test_each_compared_attribute_changed_in_the_state_is_named(world: World) -> None:
    failures, count = state_change_failures(world)
    assert failures == [], "\n".join(map(str, failures))
    assert count > 80


def test_every_type_deleted_is_missing(world: World) -> None:
    assert deletion_failures(world) == []


# --- live changes: what an operator changes in the console ----------------------------


def _resource(world: World, type_: str) -> dict[str, Any]:
    return next(r for r in world.checkpoint["deployment"]["resources"] if r["type"] == type_)


def _permissions(port: int) -> list[dict[str, Any]]:
    return [
        {
            "IpProtocol": "tcp",
            "FromPort": port,
            "ToPort": port,
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
        }
    ]


@live("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "ingress")
def _default_ingress(world: World) -> Callable[[], None]:
    ec2, group = (
        world.clients("ec2", SG),
        _resource(world, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")["id"],
    )
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=_permissions(22))
    return lambda: ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=_permissions(22))


@live("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "egress")
def _default_egress(world: World) -> Callable[[], None]:
    ec2, group = (
        world.clients("ec2", SG),
        _resource(world, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")["id"],
    )
    ec2.authorize_security_group_egress(GroupId=group, IpPermissions=_permissions(443))
    return lambda: ec2.revoke_security_group_egress(GroupId=group, IpPermissions=_permissions(443))


@live("aws:kms/key:Key", "keyState")
def _key_deletion(world: World) -> Callable[[], None]:
    key = _resource(world, "aws:kms/key:Key")
    kms = world.clients("kms", world_region(world, key))
    kms.schedule_key_deletion(KeyId=key["id"], PendingWindowInDays=7)

    def undo() -> None:
        kms.cancel_key_deletion(KeyId=key["id"])
        kms.enable_key(KeyId=key["id"])

    return undo


@live("aws:kms/key:Key", "enableKeyRotation")
def _key_rotation(world: World) -> Callable[[], None]:
    key = _resource(world, "aws:kms/key:Key")
    kms = world.clients("kms", world_region(world, key))
    kms.disable_key_rotation(KeyId=key["id"])
    return lambda: kms.enable_key_rotation(KeyId=key["id"])


@live("aws:acm/certificateValidation:CertificateValidation", "status")
def _certificate_revoked(world: World) -> Callable[[], None]:
    """A validated certificate no longer issued: moto's certificate objects are in this
    process (ThreadedMotoServer), so the status is set where ACM keeps it."""
    from moto.acm.models import acm_backends

    validation = _resource(world, "aws:acm/certificateValidation:CertificateValidation")
    arn = validation["outputs"]["certificateArn"]
    region = arn.split(":")[3]
    certificate = acm_backends["123456789012"][region]._certificates[arn]
    certificate.status = "REVOKED"

    def undo() -> None:
        certificate.status = "ISSUED"

    return undo


@live("aws:lb/listener:Listener", "defaultActions")
def _listener_200(world: World) -> Callable[[], None]:
    """The issue's example: the fixed 403 for requests without a route turned into 200."""
    listener = _resource(world, "aws:lb/listener:Listener")
    elbv2 = world.clients("elbv2", SG)
    (before,) = elbv2.describe_listeners(ListenerArns=[listener["id"]])["Listeners"]
    opened = [
        {**a, "FixedResponseConfig": {**a["FixedResponseConfig"], "StatusCode": "200"}}
        for a in before["DefaultActions"]
    ]
    elbv2.modify_listener(ListenerArn=listener["id"], DefaultActions=opened)
    return lambda: elbv2.modify_listener(
        ListenerArn=listener["id"], DefaultActions=before["DefaultActions"]
    )


@live("aws:lb/loadBalancer:LoadBalancer", "enableDeletionProtection")
def _deletion_protection_off(world: World) -> Callable[[], None]:
    return _lb_attribute(world, "deletion_protection.enabled", "false")


@live("aws:lb/loadBalancer:LoadBalancer", "accessLogs")
def _access_logs_off(world: World) -> Callable[[], None]:
    return _lb_attribute(world, "access_logs.s3.enabled", "false")


def _lb_attribute(world: World, key: str, value: str) -> Callable[[], None]:
    arn = _resource(world, "aws:lb/loadBalancer:LoadBalancer")["id"]
    elbv2 = world.clients("elbv2", SG)
    before = {
        a["Key"]: a["Value"]
        for a in elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    }
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=arn, Attributes=[{"Key": key, "Value": value}]
    )
    return lambda: elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=arn, Attributes=[{"Key": key, "Value": before[key]}]
    )


@live("aws:cloudwatch/metricAlarm:MetricAlarm", "actionsEnabled")
def _alarm_muted(world: World) -> Callable[[], None]:
    alarm = _resource(world, "aws:cloudwatch/metricAlarm:MetricAlarm")
    cloudwatch = world.clients("cloudwatch", world_region(world, alarm))
    cloudwatch.disable_alarm_actions(AlarmNames=[alarm["id"]])
    return lambda: cloudwatch.enable_alarm_actions(AlarmNames=[alarm["id"]])


@live("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "blockPublicPolicy")
def _public_policy_allowed(world: World) -> Callable[[], None]:
    block = _resource(world, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    s3 = world.clients("s3", world_region(world, block))
    keys = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    s3.put_public_access_block(
        Bucket=block["id"],
        PublicAccessBlockConfiguration={k: k != "BlockPublicPolicy" for k in keys},
    )
    return lambda: s3.put_public_access_block(
        Bucket=block["id"], PublicAccessBlockConfiguration=dict.fromkeys(keys, True)
    )


@live("aws:sqs/queue:Queue", "sqsManagedSseEnabled")
def _queue_unencrypted(world: World) -> Callable[[], None]:
    queue = _resource(world, "aws:sqs/queue:Queue")
    sqs = world.clients("sqs", world_region(world, queue))
    before = sqs.get_queue_attributes(QueueUrl=queue["id"], AttributeNames=["Policy"])
    sqs.set_queue_attributes(QueueUrl=queue["id"], Attributes={"SqsManagedSseEnabled": "false"})
    # moto drops the queue's policy on any attribute change: put it back too.
    return lambda: sqs.set_queue_attributes(
        QueueUrl=queue["id"],
        Attributes={"SqsManagedSseEnabled": "true", **before.get("Attributes", {})},
    )


def world_region(world: World, resource: dict[str, Any]) -> str:
    return parse_state(world.state).regions[resource["urn"]]


@pytest.mark.parametrize("pair", sorted(LIVE), ids=lambda p: f"{p[0].rsplit(':', 1)[1]}.{p[1]}")
def test_a_live_change_is_named(world: World, pair: tuple[str, str]) -> None:
    type_, attribute = pair
    report = live_change_report(world, LIVE[pair])
    changed = [(f.type, d.attribute) for f in report.of("changed") for d in f.diffs]
    assert (type_, attribute) in changed
    assert {f.status for f in report.findings} <= {"ok", "changed"}
