"""The sg and eu stacks, built from their committed config files under the mocks."""

from __future__ import annotations

import json

import pytest

from ops.plan import plan_config
from ops.runtime import Plan, PlannedResource
from stacks import outputs
from stacks.config import MODELS, ConfigError
from tests.support import committed_config, committed_plan, is_taggable, plan_sg, with_section

STACKS = {"sg": "ap-southeast-1", "eu": "eu-central-1"}


def run_stack(raw: dict[str, str], secret_keys: list[str] | None = None) -> Plan:
    if "trading-infra:edge" in raw:
        return plan_sg(raw, secret_keys)
    return plan_config("eu", raw, secret_keys or [])


def test_every_role_has_a_committed_stack_that_plans() -> None:
    roles = {
        committed_plan(stack).outputs.get(outputs.REGION, "fleet") for stack in ("sg", "eu", "vps")
    }
    assert roles == {"ap-southeast-1", "eu-central-1", "fleet"}
    assert set(MODELS) == {"primary", "fallback", "vps-fleet"}


@pytest.mark.parametrize(("stack", "region"), STACKS.items())
def test_one_explicit_provider_with_default_tags(stack: str, region: str) -> None:
    provider = committed_plan(stack).named(f"aws-{region}")
    assert provider.inputs["region"] == region
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert tags == {
        "project": "trading-infra",
        "stack": stack,
        "region": region,
        "managed-by": "pulumi",
    }


def provider_of(resource: PlannedResource) -> str:
    assert resource.provider, f"{resource.name} uses a default provider"
    return resource.provider.split("::")[-2]


@pytest.mark.parametrize(("stack", "region"), STACKS.items())
def test_every_aws_resource_goes_through_an_explicit_provider(stack: str, region: str) -> None:
    plan = committed_plan(stack)
    under_eu_failover = {
        r.urn for r in plan.resources if r.parent and "RegionFailover::failover-eu" in r.parent
    }
    # CloudFront's global resources (the web ACL, its log, the access-log delivery and
    # its bucket, the viewer certificate) live in us-east-1.
    in_us_east_1 = (
        "EdgeFirewall::waf",
        "CloudFrontAccessLogs::edge-delivery",
        "::edge-logs",
        "DnsValidatedCertificate::edge-certificate",
    )
    global_edge = {
        r.urn
        for r in plan.resources
        if r.parent and any(r.parent.endswith(owner) for owner in in_us_east_1)
    }
    aws_resources = [r for r in plan.resources if r.type.startswith("aws:")]
    assert aws_resources
    for resource in aws_resources:
        # sg wires eu's failover into eu's own region, through a provider for it.
        expected = "aws-eu" if resource.urn in under_eu_failover else f"aws-{region}"
        if resource.urn in global_edge:
            expected = "aws-us-east-1"
        assert provider_of(resource) == expected, resource.name
    if stack == "sg":
        assert len(under_eu_failover) > 10
        eu = plan.named("aws-eu")
        assert eu.inputs["region"] == "eu-central-1"
        assert json.loads(eu.inputs["defaultTags"])["tags"]["region"] == "eu-central-1"


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_resource_names_its_component(stack: str) -> None:
    plan = committed_plan(stack)
    taggable = [r for r in plan.resources if is_taggable(r)]
    assert len(taggable) > 10
    components = {"network", "registry", "load_balancer", "service", "monitoring", "log_bucket"}
    if stack == "sg":
        components |= {"edge", "failover", "waf"}
    assert [r.name for r in taggable if r.tag("component") not in components] == []
    assert {r.tag("component") for r in taggable} == components


EDGE_OUTPUTS = {
    outputs.DISTRIBUTION_ID,
    outputs.EDGE_DOMAIN_NAME,
    outputs.KEY_VALUE_STORE_ARN,
    outputs.EDGE_REGIONS,
    outputs.ROUTING_TABLE,
    outputs.GET_FAILOVER_SECONDS,
    outputs.FAILOVER_BUDGET,
}


@pytest.mark.parametrize("stack", STACKS)
def test_outputs_use_the_shared_keys(stack: str) -> None:
    plan = committed_plan(stack)
    keys = {v for k, v in vars(outputs).items() if k.isupper()}
    # The origin secret only exists in `public` mode; the edge only in the primary.
    fleet = {
        outputs.FLEET_HOSTS,
        outputs.FLEET_JUMP_HOST,
        outputs.MESH_CIDR,
        outputs.WIREGUARD_PUBLIC_KEYS,
        outputs.FLEET_ENV_DIGESTS,
        outputs.BACKUP_BUCKET,
        outputs.BACKUP_REGION,
        outputs.BACKUP_RPO_MINUTES,
        outputs.FLEET_ROLLOUT,
        outputs.FLEET_IMAGES,
    }
    regional = keys - EDGE_OUTPUTS - fleet - {outputs.ORIGIN_SECRET}
    assert set(plan.outputs) == (regional | EDGE_OUTPUTS if stack == "sg" else regional)
    assert plan.outputs[outputs.REGION] == STACKS[stack]
    assert plan.outputs[outputs.IMAGE_REF].split("@")[1].startswith("sha256:")


def test_regions_get_their_own_network_layout() -> None:
    sg, eu = committed_plan("sg"), committed_plan("eu")
    assert sg.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"] == "10.10.0.0/16"
    assert eu.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"] == "10.20.0.0/16"
    assert len(sg.of_type("aws:ec2/natGateway:NatGateway")) == 3
    assert len(eu.of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert {s.inputs["availabilityZone"] for s in eu.of_type("aws:ec2/subnet:Subnet")} == {
        "eu-central-1a",
        "eu-central-1b",
    }


STATEFUL = {
    "aws:ecr/repository:Repository",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:secretsmanager/secret:Secret",
    "aws:s3/bucket:Bucket",
}


@pytest.mark.parametrize("production", [True, False])
def test_production_protects_stateful_resources(production: bool) -> None:
    raw = {
        **committed_config("sg"),
        "trading-infra:production": json.dumps(production),
        "trading-infra:serviceSecrets": json.dumps({"BINANCE_API_KEY": "k"}),
    }
    plan = run_stack(raw, secret_keys=["trading-infra:serviceSecrets"])
    stateful = [r for r in plan.resources if r.type in STATEFUL]
    # Flow logs, the service, the two failover functions' log groups, and in production
    # (where WAF and access logs are on by default) the web ACL's request log and the
    # ALB's and CloudFront's access-log buckets.
    assert sorted(r.type.rsplit(":", 1)[1] for r in stateful) == sorted(
        [
            *["LogGroup"] * (5 if production else 4),
            *(["Bucket", "Bucket"] if production else []),
            "Repository",
            "Secret",
        ]
    )
    assert all(r.protect is production for r in stateful)
    assert not any(r.protect for r in plan.resources if r.type not in STATEFUL)


def test_prebuilt_image_is_exported_as_configured() -> None:
    uri = "111122223333.dkr.ecr.ap-southeast-1.amazonaws.com/api@sha256:" + "cd" * 32
    raw = with_section(committed_config("sg"), "registry", build=None, imageUri=uri)
    plan = run_stack(raw)
    assert plan.outputs[outputs.IMAGE_REF] == uri
    assert plan.of_type("docker:index/image:Image") == []


def test_no_security_group_admits_the_internet() -> None:
    for stack in STACKS:
        for group in committed_plan(stack).of_type("aws:ec2/securityGroup:SecurityGroup"):
            for rule in group.inputs.get("ingress", []):
                assert "0.0.0.0/0" not in rule.get("cidrBlocks", [])
                assert "::/0" not in rule.get("ipv6CidrBlocks", [])


def test_committed_strategies_produce_their_resources() -> None:
    sg, eu = committed_plan("sg"), committed_plan("eu")
    # sg deploys CANARY: two target groups, ECS owns the rule weights, and request
    # scaling is off because the live target group changes with every deployment.
    assert len(sg.of_type("aws:lb/targetGroup:TargetGroup")) == 2
    assert sg.one("aws:lb/listenerRule:ListenerRule").ignore_changes == ("actions",)
    assert len(sg.of_type("aws:appautoscaling/policy:Policy")) == 1
    canary = sg.one("aws:ecs/service:Service").inputs["deploymentConfiguration"]
    assert canary["strategy"] == "CANARY"
    # eu deploys ROLLING: one target group, CPU and request-count scaling.
    assert len(eu.of_type("aws:lb/targetGroup:TargetGroup")) == 1
    label = {
        p.inputs["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"].get(
            "resourceLabel"
        )
        for p in eu.of_type("aws:appautoscaling/policy:Policy")
    }
    assert label == {None, "app/alb-alb/0123456789abcdef/targetgroup/alb-tg/0123456789abcdef"}


@pytest.mark.parametrize("stack", STACKS)
def test_service_is_wired_to_the_load_balancer_and_alarms(stack: str) -> None:
    plan = committed_plan(stack)
    service = plan.one("aws:ecs/service:Service")
    alb_sg = plan.named("alb-sg")
    task_sg = plan.named("api-sg")
    assert task_sg.inputs["ingress"][0]["securityGroups"] == [alb_sg.id]
    assert (
        service.inputs["loadBalancers"][0]["targetGroupArn"] == plan.named("alb-tg").outputs["arn"]
    )
    assert service.inputs["alarms"]["alarmNames"] == [
        f"trading-api-{stack}-target-5xx-rate",
        f"trading-api-{stack}-elb-5xx",
    ]
    # Autoscaled everywhere; sg (CANARY) also leaves the live target group to ECS.
    blue_green = stack == "sg"
    assert service.ignore_changes == (
        ("desiredCount", "loadBalancers") if blue_green else ("desiredCount",)
    )
    # Created after its listener rule (ECS rejects a target group without a load
    # balancer) and after every policy of the roles it uses.
    needed = ["alb-production-rule", "api-execution-policy"]
    if blue_green:
        needed.append("api-infrastructure-policy")
    for name in needed:
        assert plan.named(name).urn in service.dependencies, name
    assert service.inputs["waitForSteadyState"] is True
    assert service.inputs["forceNewDeployment"] is True
    # vpc-origin: the ALB is internal, in the private subnets.
    private = sorted(
        str(s.id)
        for s in plan.of_type("aws:ec2/subnet:Subnet")
        if s.inputs["tags"]["tier"] == "private"
    )
    assert sorted(plan.one("aws:lb/loadBalancer:LoadBalancer").inputs["subnets"]) == private


def test_region_reaches_the_container_environment() -> None:
    for stack, region in STACKS.items():
        task = committed_plan(stack).one("aws:ecs/taskDefinition:TaskDefinition")
        (container,) = json.loads(task.inputs["containerDefinitions"])
        environment = {e["name"]: e["value"] for e in container["environment"]}
        assert environment["AWS_REGION"] == region
        assert environment["PORT"] == "8000"


def test_service_secrets_become_secrets_manager_entries_the_role_can_read() -> None:
    raw = {
        **committed_config("eu"),
        "trading-infra:serviceSecrets": json.dumps(
            {"BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s"}
        ),
    }
    plan = run_stack(raw, secret_keys=["trading-infra:serviceSecrets"])
    arns = sorted(s.outputs["arn"] for s in plan.of_type("aws:secretsmanager/secret:Secret"))
    policy = json.loads(plan.named("api-execution-policy").inputs["policy"])
    (statement,) = [s for s in policy["Statement"] if s["Sid"] == "Secrets"]
    assert statement["Resource"] == arns and len(arns) == 2


def test_a_stack_runs_on_a_brought_cluster_and_key() -> None:
    """``service.clusterArn`` and ``monitoring.topicKmsKeyArn`` reach the components, and
    everything named after the cluster (alarms, dashboard) follows the brought one."""
    cluster = "arn:aws:ecs:eu-central-1:111122223333:cluster/shared-prod"
    key = "arn:aws:kms:eu-central-1:111122223333:key/0d1e2f30-aaaa-bbbb-cccc-0123456789ab"
    raw = with_section(committed_config("eu"), "service", clusterArn=cluster)
    plan = run_stack(with_section(raw, "monitoring", topicKmsKeyArn=key))
    assert plan.of_type("aws:ecs/cluster:Cluster") == []
    assert plan.of_type("aws:kms/key:Key") == []
    assert plan.one("aws:ecs/service:Service").inputs["cluster"] == cluster
    assert plan.one("aws:sns/topic:Topic").inputs["kmsMasterKeyId"] == key
    cpu = plan.named("monitoring-cpu").inputs
    assert cpu["dimensions"]["ClusterName"] == "shared-prod"
    assert plan.outputs[outputs.CLUSTER_NAME] == "shared-prod"


# --- bring your own listener ------------------------------------------------------------

SHARED_LISTENER = (
    "arn:aws:elasticloadbalancing:eu-central-1:111122223333:listener/app/shared/"
    "50dc6c495c0c9188/f2f7dc8efc522ab2"
)


def on_shared_listener(**changes: object) -> dict[str, str]:
    """The committed eu config, its service put on an existing (plan-mocked: internal,
    HTTPS, in the stack's VPC) listener instead of an ALB of its own."""
    raw = committed_config("eu")
    load_balancer = {
        "originProtection": "vpc-origin",
        "originDomainName": "origin-eu.trading.example.com",
        "listenerArn": SHARED_LISTENER,
        "productionRulePriority": 300,
        **changes,
    }
    load_balancer = {key: value for key, value in load_balancer.items() if value is not None}
    return {**raw, "trading-infra:loadBalancer": json.dumps(load_balancer)}


def test_a_stack_on_an_existing_listener_creates_no_alb_and_admits_its_groups() -> None:
    plan = run_stack(on_shared_listener())
    created = {r.type for r in plan.resources}
    assert not created & {
        "aws:lb/loadBalancer:LoadBalancer",
        "aws:lb/listener:Listener",
        "aws:acm/certificate:Certificate",
    }
    assert not [r for r in plan.resources if r.name.startswith("alb-logs")]
    rule = plan.one("aws:lb/listenerRule:ListenerRule").inputs
    assert (rule["listenerArn"], rule["priority"]) == (SHARED_LISTENER, 300)
    (ingress,) = plan.named("api-sg").inputs["ingress"]
    assert ingress["securityGroups"] == ["sg-shared"]
    assert plan.outputs[outputs.ALB_SECURITY_GROUP_ID] == "sg-shared"
    assert plan.outputs[outputs.ORIGIN_PROTOCOL] == "HTTPS"
    assert plan.outputs[outputs.ALB_ARN_SUFFIX] == "app/shared/50dc6c495c0c9188"


def test_an_existing_https_listener_needs_the_origin_hostname() -> None:
    with pytest.raises(ValueError, match=r"loadBalancer\.originDomainName: the listener"):
        run_stack(on_shared_listener(originDomainName=None))


def test_what_an_existing_listener_brings_cannot_be_configured_too() -> None:
    raw = on_shared_listener(
        createCertificate=True, hostedZoneId="Z0ZONE", accessLogs={"enabled": True}
    )
    with pytest.raises(ConfigError) as caught:
        run_stack(raw)
    found = "\n".join(caught.value.problems)
    for key in ("createCertificate", "hostedZoneId", "accessLogs"):
        assert f"trading-infra:loadBalancer.{key}: has no effect with listenerArn" in found
