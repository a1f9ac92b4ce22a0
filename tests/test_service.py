"""FargateService: task hardening, roles, secrets, deployments, autoscaling."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from components.service import (
    ECS_LB_INFRASTRUCTURE_POLICY,
    FargateService,
    ServiceSettings,
    execution_role_policy,
    task_role_policy,
    task_trust_policy,
)
from ops.runtime import SECRET_PLACEHOLDER, Plan
from tests.support import ingress_cidrs, is_taggable, run_component, split_settings

IMAGE = "123456789012.dkr.ecr.ap-southeast-1.amazonaws.com/trading-api@sha256:" + "a" * 64
REPO = "arn:aws:ecr:ap-southeast-1:123456789012:repository/trading-api"
LOG_GROUP = "arn:aws:logs:ap-southeast-1:123456789012:log-group:/ecs/c/s"


def service_plan(**overrides) -> Plan:
    settings, wiring = split_settings(ServiceSettings, {"name": "api", **overrides})
    return run_component(
        lambda: (
            FargateService(
                "svc",
                settings,
                **{
                    "cluster_name": "trading",
                    "image": IMAGE,
                    "repository_arn": REPO,
                    "vpc_id": "vpc-1",
                    "subnet_ids": ["subnet-a", "subnet-b"],
                    "load_balancer_security_group_ids": ["sg-alb"],
                    "target_group_arn": "arn:tg-blue",
                    **wiring,
                },
            )
            and None
        )
    )


def container(plan: Plan) -> dict:
    task = plan.one("aws:ecs/taskDefinition:TaskDefinition")
    (definition,) = json.loads(task.inputs["containerDefinitions"])
    return definition


def shifting(strategy: str, **deployment) -> Plan:
    return service_plan(
        deployment={"strategy": strategy, **deployment},
        alternate_target_group_arn="arn:tg-green",
        production_listener_rule_arn="arn:rule",
    )


# --- pure policy documents -------------------------------------------------------------


def test_execution_policy_grants_exactly_the_service_resources() -> None:
    secrets = ["arn:secret:b", "arn:secret:a"]
    statements = {
        s["Sid"]: s
        for s in json.loads(execution_role_policy(LOG_GROUP, secrets, REPO))["Statement"]
    }
    assert statements["Logs"]["Resource"] == f"{LOG_GROUP}:*"
    assert statements["EcrPull"]["Resource"] == REPO
    assert statements["Secrets"]["Resource"] == ["arn:secret:a", "arn:secret:b"]
    assert statements["Secrets"]["Action"] == "secretsmanager:GetSecretValue"
    # The one "*" is the ECR login, which has no resource-level permissions.
    starred = [s["Sid"] for s in statements.values() if s["Resource"] == "*"]
    assert starred == ["EcrLogin"]


def test_execution_policy_without_secrets_or_ecr_grants_only_logs() -> None:
    statements = json.loads(execution_role_policy(LOG_GROUP, [], None))["Statement"]
    assert [s["Sid"] for s in statements] == ["Logs"]


def test_task_policy_is_what_was_configured() -> None:
    policy = json.loads(
        task_role_policy([{"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::b/*"]}])
    )
    assert policy["Statement"] == [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"]}
    ]


def test_trust_policy_is_scoped_to_the_account() -> None:
    statement = json.loads(task_trust_policy("111122223333", "eu-central-1"))["Statement"][0]
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": "111122223333"}
    assert statement["Condition"]["ArnLike"] == {
        "aws:SourceArn": "arn:aws:ecs:eu-central-1:111122223333:*"
    }


# --- the task ------------------------------------------------------------------------


def test_container_is_hardened() -> None:
    definition = container(service_plan())
    assert definition["image"] == IMAGE
    assert definition["user"] == "10001"
    assert definition["privileged"] is False
    assert definition["readonlyRootFilesystem"] is True
    assert definition["mountPoints"] == [
        {"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}
    ]
    assert definition["portMappings"] == [
        {"containerPort": 8000, "hostPort": 8000, "protocol": "tcp"}
    ]


def test_container_logs_to_its_retained_log_group_and_checks_health() -> None:
    plan = service_plan(log_retention_days=90, health_check_path="/ready")
    definition = container(plan)
    options = definition["logConfiguration"]["options"]
    assert definition["logConfiguration"]["logDriver"] == "awslogs"
    assert options["awslogs-group"] == "/ecs/trading/api"
    assert options["awslogs-region"] == "ap-southeast-1"
    group = plan.one("aws:cloudwatch/logGroup:LogGroup").inputs
    assert (group["name"], group["retentionInDays"]) == ("/ecs/trading/api", 90)
    command = definition["healthCheck"]["command"]
    assert command[0] == "CMD"
    assert "http://127.0.0.1:8000/ready" in command[-1]


def test_task_definition_is_fargate_awsvpc_with_a_tmp_volume() -> None:
    task = (
        service_plan(cpu=1024, memory=2048, cpu_architecture="ARM64")
        .one("aws:ecs/taskDefinition:TaskDefinition")
        .inputs
    )
    assert task["requiresCompatibilities"] == ["FARGATE"]
    assert task["networkMode"] == "awsvpc"
    assert (task["cpu"], task["memory"]) == ("1024", "2048")
    assert task["runtimePlatform"] == {"operatingSystemFamily": "LINUX", "cpuArchitecture": "ARM64"}
    assert task["volumes"] == [{"name": "tmp"}]


def test_secrets_go_to_secrets_manager_and_reach_the_container_by_arn() -> None:
    plan = service_plan(
        secrets={"BINANCE_API_KEY": "k-123", "BINANCE_API_SECRET": "s-456"},
        environment={"LOG_LEVEL": "info"},
    )
    stored = {s.inputs["name"]: s for s in plan.of_type("aws:secretsmanager/secret:Secret")}
    assert set(stored) == {"trading/api/BINANCE_API_KEY", "trading/api/BINANCE_API_SECRET"}
    versions = plan.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert {v.inputs["secretString"] for v in versions} == {SECRET_PLACEHOLDER}
    assert {v.revealed["secretString"] for v in versions} == {"k-123", "s-456"}
    definition = container(plan)
    assert {s["name"] for s in definition["secrets"]} == {"BINANCE_API_KEY", "BINANCE_API_SECRET"}
    assert all(s["valueFrom"].startswith("arn:aws:secretsmanager:") for s in definition["secrets"])
    assert definition["environment"] == [
        {"name": "AWS_REGION", "value": "ap-southeast-1"},
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "PORT", "value": "8000"},
    ]
    assert "k-123" not in json.dumps(definition)


def test_execution_role_reads_exactly_the_service_secrets() -> None:
    plan = service_plan(secrets={"A_KEY": "a", "B_KEY": "b"})
    policy = json.loads(plan.named("svc-execution-policy").inputs["policy"])
    (secrets,) = [s for s in policy["Statement"] if s["Sid"] == "Secrets"]
    arns = sorted(s.outputs["arn"] for s in plan.of_type("aws:secretsmanager/secret:Secret"))
    assert len(arns) == 2
    assert secrets["Resource"] == arns


def test_task_role_has_no_policy_unless_configured() -> None:
    assert [p.name for p in service_plan().of_type("aws:iam/rolePolicy:RolePolicy")] == [
        "svc-execution-policy"
    ]
    granted = service_plan(
        task_role_statements=[{"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::b/*"]}]
    )
    assert json.loads(granted.named("svc-task-policy").inputs["policy"])["Statement"][0][
        "Action"
    ] == ["s3:GetObject"]


# --- the service ---------------------------------------------------------------------


def test_service_runs_private_without_public_ip_on_latest_platform() -> None:
    svc = service_plan().one("aws:ecs/service:Service").inputs
    assert svc["networkConfiguration"] == {
        "subnets": ["subnet-a", "subnet-b"],
        "securityGroups": ["svc-sg-id"],
        "assignPublicIp": False,
    }
    assert svc["platformVersion"] == "LATEST"
    assert svc["enableExecuteCommand"] is False
    assert svc["loadBalancers"] == [
        {"targetGroupArn": "arn:tg-blue", "containerName": "api", "containerPort": 8000}
    ]


def test_tasks_admit_only_the_load_balancer() -> None:
    group = service_plan().one("aws:ec2/securityGroup:SecurityGroup")
    assert ingress_cidrs(group) == []
    (rule,) = group.inputs["ingress"]
    assert (rule["fromPort"], rule["toPort"], rule["securityGroups"]) == (8000, 8000, ["sg-alb"])


def test_cluster_has_container_insights_and_the_capacity_strategy() -> None:
    plan = service_plan(fargate_weight=1, fargate_spot_weight=3, fargate_base=1)
    cluster = plan.one("aws:ecs/cluster:Cluster").inputs
    assert cluster["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    strategy = plan.one("aws:ecs/service:Service").inputs["capacityProviderStrategies"]
    assert strategy == [
        {"capacityProvider": "FARGATE", "weight": 1, "base": 1},
        {"capacityProvider": "FARGATE_SPOT", "weight": 3, "base": 0},
    ]
    capacity = plan.one("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders").inputs
    assert capacity["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]


def test_rolling_keeps_full_capacity_and_rolls_back() -> None:
    svc = service_plan(rollback_alarm_names=["a-5xx"]).one("aws:ecs/service:Service").inputs
    assert svc["deploymentConfiguration"] == {"strategy": "ROLLING"}
    assert svc["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert (svc["deploymentMinimumHealthyPercent"], svc["deploymentMaximumPercent"]) == (100, 200)
    assert svc["alarms"] == {"alarmNames": ["a-5xx"], "enable": True, "rollback": True}
    assert svc["deploymentController"] == {"type": "ECS"}


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("BLUE_GREEN", {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": "5"}),
        (
            "CANARY",
            {
                "strategy": "CANARY",
                "bakeTimeInMinutes": "5",
                "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": "5"},
            },
        ),
        (
            "LINEAR",
            {
                "strategy": "LINEAR",
                "bakeTimeInMinutes": "5",
                "linearConfiguration": {"stepPercent": 25.0, "stepBakeTimeInMinutes": "2"},
            },
        ),
    ],
)
def test_traffic_shifting_strategies_get_their_resources(strategy: str, expected: dict) -> None:
    plan = shifting(strategy)
    svc = plan.one("aws:ecs/service:Service").inputs
    assert svc["deploymentConfiguration"] == expected
    (lb,) = svc["loadBalancers"]
    advanced = lb["advancedConfiguration"]
    assert advanced["alternateTargetGroupArn"] == "arn:tg-green"
    assert advanced["productionListenerRule"] == "arn:rule"
    role = plan.named("svc-infrastructure-role")
    assert advanced["roleArn"] == role.outputs["arn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "ecs.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    attachment = plan.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment").inputs
    assert attachment["policyArn"] == ECS_LB_INFRASTRUCTURE_POLICY


def test_canary_percent_and_bake_times_follow_the_args() -> None:
    svc = shifting("CANARY", canary_percent=20.0, canary_bake_time_minutes=3, bake_time_minutes=1)
    config = svc.one("aws:ecs/service:Service").inputs["deploymentConfiguration"]
    assert config["canaryConfiguration"] == {"canaryPercent": 20.0, "canaryBakeTimeInMinutes": "3"}
    assert config["bakeTimeInMinutes"] == "1"


def test_alarm_rollback_off_leaves_the_alarms_out() -> None:
    plan = service_plan(rollback_alarm_names=["a-5xx"], deployment={"alarm_rollback": False})
    assert "alarms" not in plan.one("aws:ecs/service:Service").inputs


def test_rolling_creates_no_infrastructure_role() -> None:
    plan = service_plan()
    assert plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []
    assert (
        "advancedConfiguration"
        not in plan.one("aws:ecs/service:Service").inputs["loadBalancers"][0]
    )


def test_shifting_strategy_without_its_inputs_is_refused() -> None:
    with pytest.raises(ValueError, match="the CANARY strategy needs"):
        service_plan(deployment={"strategy": "CANARY"})


def test_autoscaling_tracks_cpu_and_requests_and_leaves_the_count_alone() -> None:
    plan = service_plan(
        desired_count=3,
        autoscaling={
            "min_count": 2,
            "max_count": 9,
            "cpu_target_percent": 55,
            "requests_per_target": 800,
        },
        request_count_label="app/alb/1/targetgroup/tg/2",
    )
    service = plan.one("aws:ecs/service:Service")
    assert service.inputs["desiredCount"] == 3
    assert service.ignore_changes == ("desiredCount",)
    target = plan.one("aws:appautoscaling/target:Target").inputs
    assert (target["minCapacity"], target["maxCapacity"]) == (2, 9)
    assert target["resourceId"] == "service/trading/api"
    assert target["scalableDimension"] == "ecs:service:DesiredCount"
    policies = {
        p.inputs["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"][
            "predefinedMetricType"
        ]: p.inputs["targetTrackingScalingPolicyConfiguration"]
        for p in plan.of_type("aws:appautoscaling/policy:Policy")
    }
    assert policies["ECSServiceAverageCPUUtilization"]["targetValue"] == 55
    requests = policies["ALBRequestCountPerTarget"]
    assert requests["targetValue"] == 800
    assert (
        requests["predefinedMetricSpecification"]["resourceLabel"] == "app/alb/1/targetgroup/tg/2"
    )


def test_without_autoscaling_pulumi_owns_the_desired_count() -> None:
    plan = service_plan(desired_count=4, autoscaling={"enabled": False})
    assert plan.one("aws:ecs/service:Service").ignore_changes == ()
    assert plan.of_type("aws:appautoscaling/target:Target") == []


CLUSTER_ARN = "arn:aws:ecs:ap-southeast-1:111122223333:cluster/shared-prod"


def test_a_brought_cluster_runs_the_service_and_none_is_made() -> None:
    plan = service_plan(cluster_arn=CLUSTER_ARN, request_count_label="app/alb/1/targetgroup/tg/2")
    assert plan.of_type("aws:ecs/cluster:Cluster") == []
    assert plan.of_type("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders") == []
    service = plan.one("aws:ecs/service:Service")
    assert service.inputs["cluster"] == CLUSTER_ARN
    # Names that carry the cluster follow the brought one, not the wiring's default.
    assert plan.one("aws:cloudwatch/logGroup:LogGroup").inputs["name"] == "/ecs/shared-prod/api"
    target = plan.one("aws:appautoscaling/target:Target").inputs
    assert target["resourceId"] == "service/shared-prod/api"
    family = plan.one("aws:ecs/taskDefinition:TaskDefinition").inputs["family"]
    assert family == "shared-prod-api"


@pytest.mark.parametrize(
    "arn",
    [
        "shared-prod",
        "arn:aws:ecs:ap-southeast-1:111122223333:service/shared-prod/api",
        "arn:aws:ecs:ap-southeast-1:111122223333:cluster/",
    ],
)
def test_a_brought_cluster_is_a_cluster_arn(arn: str) -> None:
    with pytest.raises(ValidationError, match="cluster_arn"):
        ServiceSettings(cluster_arn=arn)


@pytest.mark.parametrize("protect", [True, False])
def test_protect_covers_log_group_and_secrets(protect: bool) -> None:
    plan = service_plan(protect=protect, secrets={"A_KEY": "a"})
    assert plan.one("aws:cloudwatch/logGroup:LogGroup").protect is protect
    assert plan.one("aws:secretsmanager/secret:Secret").protect is protect
    assert plan.one("aws:ecs/service:Service").protect is False


def test_children_are_parented_and_tagged() -> None:
    plan = service_plan(
        deployment={"strategy": "BLUE_GREEN"},
        alternate_target_group_arn="arn:tg-green",
        production_listener_rule_arn="arn:rule",
        rollback_alarm_names=["x"],
    )
    component = plan.one("trading-infra:service:FargateService")
    children = [r for r in plan.resources if r is not component]
    assert {r.parent for r in children} == {component.urn}
    assert all(r.tag("component") == "service" for r in children if is_taggable(r))
