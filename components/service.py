"""FargateService: cluster, task definition, roles, logs, service, autoscaling, deployments."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Required, TypedDict

import pulumi
import pulumi_aws as aws

from components.iam import service_assume_role_policy
from components.tagging import component_tags

DeploymentStrategy = Literal["ROLLING", "BLUE_GREEN", "CANARY", "LINEAR"]

ECS_LB_INFRASTRUCTURE_POLICY = (
    "arn:aws:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers"
)
"""What ECS needs to shift listener-rule weights in native blue/green deployments."""

TMP_VOLUME = "tmp"


def execution_role_policy(
    log_group_arn: str, secret_arns: Sequence[str], repository_arn: str | None
) -> str:
    """The execution role: pull from exactly one repository, write exactly one log group,
    read exactly the service's secrets."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{log_group_arn}:*",
        }
    ]
    if repository_arn is not None:
        statements += [
            # GetAuthorizationToken has no resource-level permissions: "*" is the only
            # resource it accepts.
            {
                "Sid": "EcrLogin",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            },
            {
                "Sid": "EcrPull",
                "Effect": "Allow",
                "Action": [
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                "Resource": repository_arn,
            },
        ]
    if secret_arns:
        statements.append(
            {
                "Sid": "Secrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": sorted(secret_arns),
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def task_role_policy(statements: Sequence[Mapping[str, Sequence[str]]]) -> str:
    """The application's own permissions, exactly as configured."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": sorted(s["actions"]),
                    "Resource": sorted(s["resources"]),
                }
                for s in statements
            ],
        },
        sort_keys=True,
    )


def task_trust_policy(account_id: str, region: str) -> str:
    """ecs-tasks may assume the role only for this account's tasks (confused deputy)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account_id},
                        "ArnLike": {"aws:SourceArn": f"arn:aws:ecs:{region}:{account_id}:*"},
                    },
                }
            ],
        },
        sort_keys=True,
    )


def default_health_command(port: int, path: str) -> list[str]:
    """A container health check that needs only the Python the image already has."""
    probe = (
        f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=3)"
    )
    return ["CMD", "python", "-c", probe]


def container_definitions(
    *,
    name: str,
    image: str,
    port: int,
    user: str,
    region: str,
    log_group: str,
    environment: Mapping[str, str],
    secrets: Mapping[str, str],
    health_command: Sequence[str],
) -> str:
    """The one container: non-root, read-only root filesystem with a writable /tmp,
    logs to CloudWatch, secrets by ARN (never values), a health check."""
    container = {
        "name": name,
        "image": image,
        "essential": True,
        "user": user,
        "privileged": False,
        "readonlyRootFilesystem": True,
        "portMappings": [{"containerPort": port, "hostPort": port, "protocol": "tcp"}],
        "environment": [
            {"name": key, "value": value} for key, value in sorted(environment.items())
        ],
        "secrets": [{"name": key, "valueFrom": arn} for key, arn in sorted(secrets.items())],
        "mountPoints": [{"sourceVolume": TMP_VOLUME, "containerPath": "/tmp", "readOnly": False}],  # noqa: S108
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group,
                "awslogs-region": region,
                "awslogs-stream-prefix": name,
            },
        },
        "healthCheck": {
            "command": list(health_command),
            "interval": 15,
            "timeout": 5,
            "retries": 3,
            "startPeriod": 20,
        },
        "linuxParameters": {"initProcessEnabled": True},
    }
    return json.dumps([container], sort_keys=True)


class AutoscalingArgs(TypedDict, total=False):
    """Target-tracking autoscaling of the service."""

    min_count: int
    """Default 2."""
    max_count: int
    """Default 6."""
    cpu_target_percent: int
    """Default 60."""
    requests_per_target: int
    """ALB requests per task per minute. Default 1000."""
    request_count_label: pulumi.Input[str]
    """``<alb arn suffix>/<target group arn suffix>``: enables request-count scaling."""
    scale_in_cooldown_seconds: int
    """Default 300."""
    scale_out_cooldown_seconds: int
    """Default 60."""


class DeploymentArgs(TypedDict, total=False):
    """ECS-native deployment strategy."""

    strategy: DeploymentStrategy
    """Default ``ROLLING``."""
    bake_time_minutes: int
    """Not ROLLING: minutes both revisions stay after the shift. Default 5."""
    canary_percent: float
    """CANARY. Default 10."""
    canary_bake_time_minutes: int
    """CANARY. Default 5."""
    linear_step_percent: float
    """LINEAR. Default 25."""
    linear_step_bake_time_minutes: int
    """LINEAR. Default 2."""
    alarm_names: list[str]
    """Alarms that roll a deployment back. Default none."""
    alternate_target_group_arn: pulumi.Input[str]
    """Not ROLLING: the second target group."""
    production_listener_rule_arn: pulumi.Input[str]
    """Not ROLLING: the listener rule whose weights ECS shifts."""


class FargateServiceArgs(TypedDict, total=False):
    """Arguments of ``FargateService``."""

    cluster_name: Required[str]
    """ECS cluster name."""
    service_name: Required[str]
    """ECS service name, also the container's name."""
    image: Required[pulumi.Input[str]]
    """Image to run, by digest."""
    repository_arn: pulumi.Input[str]
    """ECR repository of the image: the execution role may pull from it only. Default
    none (a public image needs no pull permission)."""
    vpc_id: Required[pulumi.Input[str]]
    """The network's VPC."""
    subnet_ids: Required[pulumi.Input[list[str]]]
    """Private subnets for the tasks."""
    load_balancer_security_group_id: Required[pulumi.Input[str]]
    """The only source the tasks accept traffic from."""
    target_group_arn: Required[pulumi.Input[str]]
    """Production target group."""
    listener_rule: pulumi.Resource
    """The listener rule forwarding to the target group. The service is created after it:
    ECS rejects a service whose target group has no load balancer yet ("The target
    group ... does not have an associated load balancer"). Default none."""
    container_port: int
    """Default 8000."""
    cpu: int
    """Task CPU units. Default 512."""
    memory: int
    """Task memory, MiB. Default 1024."""
    cpu_architecture: Literal["X86_64", "ARM64"]
    """Default ``X86_64``."""
    user: str
    """Non-root UID the container runs as. Default ``10001``."""
    environment: Mapping[str, str]
    """Plain environment variables. Default none."""
    secrets: Mapping[str, pulumi.Input[str]]
    """Secret environment variables: each stored in Secrets Manager and injected by ARN."""
    health_check_path: str
    """Path of the default container health check. Default ``/health``."""
    health_check_command: list[str]
    """Container health check command. Default a Python probe of ``health_check_path``."""
    health_check_grace_period_seconds: int
    """Default 30."""
    log_retention_days: int
    """Default 365."""
    desired_count: int
    """Tasks at creation. Default 2."""
    fargate_weight: int
    """Default 1."""
    fargate_spot_weight: int
    """Default 0."""
    fargate_base: int
    """Default 1."""
    container_insights: Literal["enabled", "enhanced"]
    """Default ``enabled``."""
    task_role_statements: list[dict[str, list[str]]]
    """``{"actions": [...], "resources": [...]}`` granted to the application. Default none."""
    autoscaling: AutoscalingArgs
    """Target tracking; omit to run a fixed ``desired_count``."""
    deployment: DeploymentArgs
    """Default ROLLING with circuit breaker rollback."""
    protect: bool
    """Protect the log group and secrets from deletion. Default False."""


class FargateService(pulumi.ComponentResource):
    """The API on Fargate: private subnets, no public IP, only the ALB may connect.

    Satisfies FSBP ECS.2 (no public IP), ECS.4 (not privileged), ECS.5 (read-only root
    filesystem), ECS.8 (secrets from Secrets Manager, never plain env vars), ECS.9 (log
    configuration), ECS.10 (``LATEST`` platform), ECS.12 (Container Insights).
    """

    cluster: aws.ecs.Cluster
    """The ECS cluster."""
    task_definition: aws.ecs.TaskDefinition
    """The task definition."""
    service: aws.ecs.Service
    """The ECS service."""
    security_group: aws.ec2.SecurityGroup
    """The tasks' security group."""
    execution_role: aws.iam.Role
    """Role ECS uses to pull, log and fetch secrets."""
    task_role: aws.iam.Role
    """Role the application runs as."""
    infrastructure_role: aws.iam.Role | None
    """Role ECS uses to shift traffic in non-ROLLING deployments."""
    log_group: aws.cloudwatch.LogGroup
    """The container's log group."""
    secrets: dict[str, aws.secretsmanager.Secret]
    """The service's secrets by environment variable name."""
    cluster_name: str
    """The cluster's name."""
    service_name: str
    """The service's name."""

    def __init__(
        self, name: str, args: FargateServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("trading-infra:service:FargateService", name, {}, opts)
        deployment = args.get("deployment", {})
        strategy: DeploymentStrategy = deployment.get("strategy", "ROLLING")
        alternate_target_group_arn = deployment.get("alternate_target_group_arn")
        production_listener_rule_arn = deployment.get("production_listener_rule_arn")
        traffic_shift: tuple[pulumi.Input[str], pulumi.Input[str]] | None = None
        if strategy != "ROLLING":
            if alternate_target_group_arn is None or production_listener_rule_arn is None:
                raise ValueError(
                    f"FargateService {name}: the {strategy} strategy needs "
                    "`alternate_target_group_arn` and `production_listener_rule_arn`."
                )
            traffic_shift = (alternate_target_group_arn, production_listener_rule_arn)
        tags = component_tags("service")
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.get("protect", False))
        self.cluster_name = args["cluster_name"]
        self.service_name = args["service_name"]
        port = args.get("container_port", 8000)
        identity = aws.get_caller_identity(opts=pulumi.InvokeOptions(parent=self))
        region = aws.get_region(opts=pulumi.InvokeOptions(parent=self)).region

        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=self.cluster_name,
            settings=[
                aws.ecs.ClusterSettingArgs(
                    name="containerInsights", value=args.get("container_insights", "enabled")
                )
            ],
            tags=tags,
            opts=child,
        )
        strategies = [
            ("FARGATE", args.get("fargate_weight", 1), args.get("fargate_base", 1)),
            ("FARGATE_SPOT", args.get("fargate_spot_weight", 0), 0),
        ]
        capacity = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity",
            cluster_name=self.cluster.name,
            capacity_providers=["FARGATE", "FARGATE_SPOT"],
            default_capacity_provider_strategies=[
                aws.ecs.ClusterCapacityProvidersDefaultCapacityProviderStrategyArgs(
                    capacity_provider=provider, weight=weight, base=base
                )
                for provider, weight, base in strategies
                if weight > 0
            ],
            opts=child,
        )

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/ecs/{self.cluster_name}/{self.service_name}",
            retention_in_days=args.get("log_retention_days", 365),
            tags=tags,
            opts=stateful,
        )

        self.secrets = {}
        for key, value in sorted(args.get("secrets", {}).items()):
            secret = aws.secretsmanager.Secret(
                f"{name}-secret-{key.lower().replace('_', '-')}",
                name=f"{self.cluster_name}/{self.service_name}/{key}",
                description=f"{key} of the {self.service_name} service",
                recovery_window_in_days=7,
                tags=tags,
                opts=stateful,
            )
            aws.secretsmanager.SecretVersion(
                f"{name}-secret-{key.lower().replace('_', '-')}-value",
                secret_id=secret.id,
                secret_string=pulumi.Output.secret(value),
                opts=child,
            )
            self.secrets[key] = secret

        trust = task_trust_policy(identity.account_id, region)
        self.execution_role = aws.iam.Role(
            f"{name}-execution-role",
            assume_role_policy=trust,
            description=f"ECS pulls, logs and reads secrets for {self.service_name}",
            tags=tags,
            opts=child,
        )
        repository_arn = args.get("repository_arn")
        # The service waits for every policy of the roles it uses: tasks started before
        # the execution role's policy exists cannot pull or log, and the pulumi-aws
        # aws.ecs.Service docs advise depending on the role policies.
        role_policies: list[pulumi.Resource] = []
        role_policies.append(
            aws.iam.RolePolicy(
                f"{name}-execution-policy",
                role=self.execution_role.id,
                policy=pulumi.Output.all(
                    self.log_group.arn,
                    pulumi.Output.all(*[s.arn for s in self.secrets.values()]),
                    repository_arn,
                ).apply(lambda v: execution_role_policy(v[0], v[1], v[2])),
                opts=child,
            )
        )
        self.task_role = aws.iam.Role(
            f"{name}-task-role",
            assume_role_policy=trust,
            description=f"What the {self.service_name} application may call",
            tags=tags,
            opts=child,
        )
        statements = args.get("task_role_statements", [])
        if statements:
            role_policies.append(
                aws.iam.RolePolicy(
                    f"{name}-task-policy",
                    role=self.task_role.id,
                    policy=task_role_policy(statements),
                    opts=child,
                )
            )

        health_command = args.get("health_check_command") or default_health_command(
            port, args.get("health_check_path", "/health")
        )
        definitions = pulumi.Output.all(
            args["image"],
            self.log_group.name,
            pulumi.Output.all(*[s.arn for s in self.secrets.values()]),
        ).apply(
            lambda v: container_definitions(
                name=self.service_name,
                image=v[0],
                port=port,
                user=args.get("user", "10001"),
                region=region,
                log_group=v[1],
                environment=args.get("environment", {}),
                secrets=dict(zip(self.secrets, v[2], strict=True)),
                health_command=health_command,
            )
        )
        self.task_definition = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=f"{self.cluster_name}-{self.service_name}",
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(args.get("cpu", 512)),
            memory=str(args.get("memory", 1024)),
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                operating_system_family="LINUX",
                cpu_architecture=args.get("cpu_architecture", "X86_64"),
            ),
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.task_role.arn,
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=TMP_VOLUME)],
            container_definitions=definitions,
            tags=tags,
            opts=child,
        )

        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args["vpc_id"],
            description=f"{self.service_name} tasks: from the load balancer only",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp",
                    from_port=port,
                    to_port=port,
                    security_groups=[args["load_balancer_security_group_id"]],
                    description="From the load balancer",
                )
            ],
            # Egress stays open to HTTPS: the exchanges' APIs are on the internet.
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr_blocks=["0.0.0.0/0"],
                    description="HTTPS to AWS APIs and the exchanges",
                )
            ],
            tags={**tags, "Name": f"{name}-tasks"},
            opts=child,
        )

        self.infrastructure_role = None
        load_balancer = aws.ecs.ServiceLoadBalancerArgs(
            target_group_arn=args["target_group_arn"],
            container_name=self.service_name,
            container_port=port,
        )
        if traffic_shift is not None:
            self.infrastructure_role = aws.iam.Role(
                f"{name}-infrastructure-role",
                assume_role_policy=service_assume_role_policy(
                    "ecs.amazonaws.com", identity.account_id
                ),
                description="ECS shifts listener-rule weights during deployments",
                tags=tags,
                opts=child,
            )
            role_policies.append(
                aws.iam.RolePolicyAttachment(
                    f"{name}-infrastructure-policy",
                    role=self.infrastructure_role.name,
                    policy_arn=ECS_LB_INFRASTRUCTURE_POLICY,
                    opts=child,
                )
            )
            load_balancer = aws.ecs.ServiceLoadBalancerArgs(
                target_group_arn=args["target_group_arn"],
                container_name=self.service_name,
                container_port=port,
                advanced_configuration=aws.ecs.ServiceLoadBalancerAdvancedConfigurationArgs(
                    alternate_target_group_arn=traffic_shift[0],
                    production_listener_rule=traffic_shift[1],
                    role_arn=self.infrastructure_role.arn,
                ),
            )

        alarm_names = deployment.get("alarm_names", [])
        autoscaling = args.get("autoscaling")
        ignored = []
        # With autoscaling the scaler owns the task count: a deploy must not reset it to
        # the configured count in the middle of a traffic peak.
        if autoscaling is not None:
            ignored.append("desiredCount")
        # After a successful blue/green-style deployment ECS swaps which target group
        # is live; Pulumi must not swap it back (as the rule's actions are ignored).
        if traffic_shift is not None:
            ignored.append("loadBalancers")
        listener_rule = args.get("listener_rule")
        timeout = f"{service_timeout_minutes(strategy, deployment)}m"
        self.service = aws.ecs.Service(
            f"{name}-service",
            name=self.service_name,
            cluster=self.cluster.arn,
            task_definition=self.task_definition.arn,
            desired_count=args.get("desired_count", 2),
            platform_version="LATEST",
            capacity_provider_strategies=[
                aws.ecs.ServiceCapacityProviderStrategyArgs(
                    capacity_provider=provider, weight=weight, base=base
                )
                for provider, weight, base in strategies
                if weight > 0
            ],
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=args["subnet_ids"],
                security_groups=[self.security_group.id],
                assign_public_ip=False,
            ),
            load_balancers=[load_balancer],
            health_check_grace_period_seconds=args.get("health_check_grace_period_seconds", 30),
            deployment_controller=aws.ecs.ServiceDeploymentControllerArgs(type="ECS"),
            deployment_configuration=_deployment_configuration(strategy, deployment),
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
                enable=True, rollback=True
            ),
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            alarms=(
                aws.ecs.ServiceAlarmsArgs(alarm_names=alarm_names, enable=True, rollback=True)
                if alarm_names
                else None
            ),
            enable_execute_command=False,
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            # The capacity-provider strategy cannot change without a new deployment
            # (pulumi-aws: "Updating this argument requires force_new_deployment =
            # true"); every update of the service starts one.
            force_new_deployment=True,
            # `pulumi up` waits for the deployment to finish: a deployment ECS rolls
            # back (circuit breaker, alarms) fails the update instead of passing.
            wait_for_steady_state=True,
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[
                    capacity,
                    *role_policies,
                    *([listener_rule] if listener_rule is not None else []),
                ],
                ignore_changes=ignored or None,
                custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
            ),
        )

        if autoscaling is not None:
            self._autoscale(name, autoscaling, tags)

        self.register_outputs(
            {"cluster_name": self.cluster_name, "service_name": self.service_name}
        )

    def _autoscale(self, name: str, scaling: AutoscalingArgs, tags: dict[str, str]) -> None:
        child = pulumi.ResourceOptions(parent=self)
        target = aws.appautoscaling.Target(
            f"{name}-scaling-target",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", self.cluster.name, "/", self.service.name),
            min_capacity=scaling.get("min_count", 2),
            max_capacity=scaling.get("max_count", 6),
            tags=tags,
            opts=child,
        )
        metrics: list[tuple[str, str, float, pulumi.Input[str] | None]] = [
            ("cpu", "ECSServiceAverageCPUUtilization", scaling.get("cpu_target_percent", 60), None)
        ]
        if label := scaling.get("request_count_label"):
            metrics.append(
                (
                    "requests",
                    "ALBRequestCountPerTarget",
                    scaling.get("requests_per_target", 1000),
                    label,
                )
            )
        for short, metric, value, label in metrics:
            aws.appautoscaling.Policy(
                f"{name}-scale-{short}",
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                    target_value=value,
                    predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                        predefined_metric_type=metric, resource_label=label
                    ),
                    scale_in_cooldown=scaling.get("scale_in_cooldown_seconds", 300),
                    scale_out_cooldown=scaling.get("scale_out_cooldown_seconds", 60),
                ),
                opts=child,
            )


SERVICE_WAIT_MARGIN_MINUTES = 20
"""The provider's own create/update timeout for a service: tasks starting and passing
health checks, before any bake time."""


def service_timeout_minutes(strategy: DeploymentStrategy, deployment: DeploymentArgs) -> int:
    """How long ``pulumi up`` waits for a deployment to reach a steady state: the
    strategy's bake times plus the provider's default margin."""
    bake = deployment.get("bake_time_minutes", 5)
    if strategy == "CANARY":
        baking = deployment.get("canary_bake_time_minutes", 5) + bake
    elif strategy == "LINEAR":
        steps = math.ceil(100 / deployment.get("linear_step_percent", 25.0))
        baking = steps * deployment.get("linear_step_bake_time_minutes", 2) + bake
    elif strategy == "BLUE_GREEN":
        baking = bake
    else:
        baking = 0
    return SERVICE_WAIT_MARGIN_MINUTES + baking


def _deployment_configuration(
    strategy: DeploymentStrategy, deployment: DeploymentArgs
) -> aws.ecs.ServiceDeploymentConfigurationArgs:
    if strategy == "ROLLING":
        return aws.ecs.ServiceDeploymentConfigurationArgs(strategy="ROLLING")
    bake = str(deployment.get("bake_time_minutes", 5))
    if strategy == "CANARY":
        return aws.ecs.ServiceDeploymentConfigurationArgs(
            strategy="CANARY",
            bake_time_in_minutes=bake,
            canary_configuration=aws.ecs.ServiceDeploymentConfigurationCanaryConfigurationArgs(
                canary_percent=deployment.get("canary_percent", 10.0),
                canary_bake_time_in_minutes=str(deployment.get("canary_bake_time_minutes", 5)),
            ),
        )
    if strategy == "LINEAR":
        return aws.ecs.ServiceDeploymentConfigurationArgs(
            strategy="LINEAR",
            bake_time_in_minutes=bake,
            linear_configuration=aws.ecs.ServiceDeploymentConfigurationLinearConfigurationArgs(
                step_percent=deployment.get("linear_step_percent", 25.0),
                step_bake_time_in_minutes=str(deployment.get("linear_step_bake_time_minutes", 2)),
            ),
        )
    return aws.ecs.ServiceDeploymentConfigurationArgs(
        strategy="BLUE_GREEN", bake_time_in_minutes=bake
    )
