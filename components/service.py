"""FargateService: cluster, task definition, roles, logs, service, autoscaling, deployments.

Longer than the ~500 lines aimed at, on purpose: the settings models, the pure policy
and container documents and the constructor's named steps (``_cluster`` ...
``_autoscale``) describe one ECS service, and every part is read with the others.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator, model_validator

from components.iam import service_assume_role_policy
from components.settings import Settings, retention
from components.tagging import component_tags

DeploymentStrategy = Literal["ROLLING", "BLUE_GREEN", "CANARY", "LINEAR"]

ECS_LB_INFRASTRUCTURE_POLICY = (
    "arn:aws:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers"
)
"""What ECS needs to shift listener-rule weights in native blue/green deployments."""

TMP_VOLUME = "tmp"

FARGATE_MEMORY_MIB: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}
"""Memory (MiB) that each Fargate task CPU size (units) accepts."""

FORBIDDEN_ENVIRONMENT = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ECS_ENGINE_AUTH_DATA"}
)
"""Credentials that must never be plain environment variables (FSBP ECS.8)."""

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""An environment variable's name."""

CLUSTER_ARN = r"^arn:aws[\w-]*:ecs:[a-z0-9-]+:\d{12}:cluster/[A-Za-z0-9_-]{1,255}$"
"""An ECS cluster ARN (the long format, which carries the cluster's name)."""


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


class AutoscalingSettings(Settings):
    """``trading-infra:service.autoscaling``: target tracking on CPU and requests."""

    enabled: bool = True
    """Scale the service; the desired count is then left to the scaler. Default true."""
    min_count: Annotated[int, Field(ge=0, le=1000)] = 2
    """Fewest tasks. Default 2 (one per AZ survives a task loss)."""
    max_count: Annotated[int, Field(ge=1, le=1000)] = 6
    """Most tasks. Default 6."""
    cpu_target_percent: Annotated[int, Field(ge=10, le=90)] = 60
    """Average CPU to hold. Default 60."""
    requests_per_target: Annotated[int, Field(ge=1)] = 1000
    """ALB requests per task per minute to hold. Default 1000."""
    scale_in_cooldown_seconds: Annotated[int, Field(ge=0)] = 300
    """Seconds between scale-ins. Default 300."""
    scale_out_cooldown_seconds: Annotated[int, Field(ge=0)] = 60
    """Seconds between scale-outs. Default 60."""

    @model_validator(mode="after")
    def _bounds_ordered(self) -> AutoscalingSettings:
        if self.min_count > self.max_count:
            raise ValueError(f"minCount {self.min_count} is greater than maxCount {self.max_count}")
        return self


class DeploymentSettings(Settings):
    """``trading-infra:service.deployment``: ECS-native deployment strategy."""

    strategy: DeploymentStrategy = "ROLLING"
    """``ROLLING``, ``BLUE_GREEN``, ``CANARY`` or ``LINEAR``. Default ``ROLLING``."""
    bake_time_minutes: Annotated[int, Field(ge=0, le=1440)] = 5
    """Minutes both revisions run after the shift before the old one stops (not
    ROLLING). Default 5."""
    canary_percent: float = 10.0
    """CANARY: share of traffic sent to the new revision first, in (0, 100). Default 10."""
    canary_bake_time_minutes: Annotated[int, Field(ge=0, le=1440)] = 5
    """CANARY: minutes at ``canaryPercent`` before the rest moves. Default 5."""
    linear_step_percent: Annotated[float, Field(ge=3, le=100)] = 25.0
    """LINEAR: share moved per step, 3 to 100. Default 25."""
    linear_step_bake_time_minutes: Annotated[int, Field(ge=0, le=1440)] = 2
    """LINEAR: minutes between steps. Default 2."""
    alarm_rollback: bool = True
    """Roll back when a deployment alarm fires (target 5xx, ELB 5xx). Default true."""

    @field_validator("canary_percent")
    @classmethod
    def _canary_inside(cls, value: float) -> float:
        if not 0 < value < 100:
            raise ValueError(f"{value} is outside (0, 100); the canary is a share of traffic")
        return value


class TaskRoleStatement(Settings):
    """An IAM statement granted to the application (the task role)."""

    actions: Annotated[list[str], Field(min_length=1)]
    """IAM actions, e.g. ``s3:GetObject``."""
    resources: Annotated[list[str], Field(min_length=1)]
    """Resource ARNs."""

    @model_validator(mode="after")
    def _not_admin(self) -> TaskRoleStatement:
        if "*" in self.actions and "*" in self.resources:
            raise ValueError("grants every action on every resource; name the actions and ARNs")
        return self


class ServiceSettings(Settings):
    """``trading-infra:service``: the Fargate service running the API."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")] = "trading-api"
    """ECS service and container name. Default ``trading-api``."""
    cpu: int = 512
    """Task CPU units (256, 512, 1024, 2048, 4096, 8192, 16384). Default 512."""
    memory: int = 1024
    """Task memory in MiB, valid for ``cpu``. Default 1024."""
    container_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    """Port the container listens on. Default 8000."""
    desired_count: Annotated[int, Field(ge=0, le=1000)] = 2
    """Tasks at creation; with autoscaling, the scaler owns it afterwards. Default 2."""
    fargate_weight: Annotated[int, Field(ge=0, le=1000)] = 1
    """Capacity provider weight of FARGATE. Default 1."""
    fargate_spot_weight: Annotated[int, Field(ge=0, le=1000)] = 0
    """Capacity provider weight of FARGATE_SPOT. Default 0 (no Spot)."""
    fargate_base: Annotated[int, Field(ge=0, le=100000)] = 1
    """Tasks always placed on FARGATE before weights apply. Default 1."""
    environment: dict[Annotated[str, Field(pattern=ENV_NAME)], str] = Field(default_factory=dict)
    """Plain environment variables (never secrets: see ``serviceSecrets``)."""
    log_retention_days: int = 365
    """Retention of the service's log group. Default 365."""
    user: str = "10001"
    """UID (or UID:GID) the container runs as; never root. Default ``10001``."""
    health_check_grace_period_seconds: Annotated[int, Field(ge=0, le=2147483647)] = 30
    """Seconds a new task's failed load-balancer checks are ignored. Default 30."""
    container_insights: Literal["enabled", "enhanced"] = "enabled"
    """Container Insights level of the cluster (FSBP ECS.12). Default ``enabled``."""
    task_role_statements: list[TaskRoleStatement] = Field(default_factory=list)
    """What the application may call in AWS. Default nothing."""
    autoscaling: AutoscalingSettings = Field(default_factory=AutoscalingSettings)
    """Target-tracking autoscaling."""
    deployment: DeploymentSettings = Field(default_factory=DeploymentSettings)
    """Deployment strategy and rollback."""
    cluster_arn: Annotated[str, Field(pattern=CLUSTER_ARN)] | None = None
    """An existing ECS cluster (its ARN) to run the service in, instead of one the
    component creates. It must offer the ``FARGATE`` capacity provider (and
    ``FARGATE_SPOT`` with ``fargateSpotWeight``); its settings, Container Insights
    (FSBP ECS.12) among them, are its owner's. Default: a cluster made here."""

    @property
    def existing_cluster_name(self) -> str | None:
        """The brought cluster's name (the last part of its ARN), if one was brought."""
        return None if self.cluster_arn is None else self.cluster_arn.rsplit("/", 1)[1]

    @field_validator("cpu")
    @classmethod
    def _cpu_is_a_fargate_size(cls, value: int) -> int:
        if value not in FARGATE_MEMORY_MIB:
            sizes = ", ".join(str(cpu) for cpu in FARGATE_MEMORY_MIB)
            raise ValueError(f"{value} is not a Fargate CPU size; use one of {sizes}")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention_is_valid(cls, value: int) -> int:
        return retention(value)

    @field_validator("user")
    @classmethod
    def _not_root(cls, value: str) -> str:
        if value.split(":")[0] in {"root", "0", ""}:
            raise ValueError(f"{value!r} runs as root; give a non-zero UID such as 10001")
        return value

    @field_validator("environment")
    @classmethod
    def _no_credentials(cls, value: dict[str, str]) -> dict[str, str]:
        leaked = sorted(FORBIDDEN_ENVIRONMENT & set(value))
        if leaked:
            raise ValueError(
                f"{', '.join(leaked)} must not be plain environment variables; use a task "
                "role, or serviceSecrets for other credentials"
            )
        return value

    @model_validator(mode="after")
    def _sizes_and_counts(self) -> ServiceSettings:
        allowed = FARGATE_MEMORY_MIB[self.cpu]
        if self.memory not in allowed:
            raise ValueError(
                f"memory {self.memory} is not valid with cpu {self.cpu}; cpu {self.cpu} "
                f"allows {allowed[0]} to {allowed[-1]} MiB: {', '.join(map(str, allowed))}"
            )
        scaling = self.autoscaling
        if scaling.enabled and not scaling.min_count <= self.desired_count <= scaling.max_count:
            raise ValueError(
                f"desiredCount {self.desired_count} is outside autoscaling "
                f"[{scaling.min_count}, {scaling.max_count}]"
            )
        if self.fargate_weight + self.fargate_spot_weight == 0:
            raise ValueError("fargateWeight and fargateSpotWeight are both 0; one must be positive")
        return self


class FargateService(pulumi.ComponentResource):
    """The API on Fargate: private subnets, no public IP, only the ALB may connect.

    Satisfies FSBP ECS.2 (no public IP), ECS.4 (not privileged), ECS.5 (read-only root
    filesystem), ECS.8 (secrets from Secrets Manager, never plain env vars), ECS.9 (log
    configuration), ECS.10 (``LATEST`` platform), ECS.12 (Container Insights).
    """

    cluster: aws.ecs.Cluster | None
    """The ECS cluster, when the component made it (no ``cluster_arn``)."""
    cluster_arn: pulumi.Output[str]
    """The ARN of the cluster the service runs in, made here or brought."""
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
        self,
        name: str,
        settings: ServiceSettings,
        *,
        cluster_name: str,
        image: pulumi.Input[str],
        vpc_id: pulumi.Input[str],
        subnet_ids: pulumi.Input[list[str]],
        load_balancer_security_group_ids: pulumi.Input[list[str]],
        target_group_arn: pulumi.Input[str],
        listener_rule: pulumi.Resource | None = None,
        repository_arn: pulumi.Input[str] | None = None,
        secrets: Mapping[str, pulumi.Input[str]] | None = None,
        health_check_path: str = "/health",
        cpu_architecture: Literal["X86_64", "ARM64"] = "X86_64",
        alternate_target_group_arn: pulumi.Input[str] | None = None,
        production_listener_rule_arn: pulumi.Input[str] | None = None,
        rollback_alarm_names: Sequence[str] = (),
        request_count_label: pulumi.Input[str] | None = None,
        protect: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """Wiring, apart from the settings:

        - ``cluster_name``: the cluster to create (ignored with ``cluster_arn``).
        - ``image`` (by digest) and ``repository_arn`` (the only repository the
          execution role may pull from; none for a public image).
        - ``vpc_id``, ``subnet_ids`` (private), ``load_balancer_security_group_ids``
          (the only source the tasks admit) and ``target_group_arn``.
        - ``listener_rule``: the rule forwarding to the target group. The service is
          created after it: ECS rejects a service whose target group has no load
          balancer yet ("The target group ... does not have an associated load
          balancer").
        - ``secrets``: secret environment variables, each stored in Secrets Manager
          and injected by ARN.
        - ``health_check_path``: probed by the container's health check.
        - ``cpu_architecture``: the image's.
        - ``alternate_target_group_arn`` and ``production_listener_rule_arn``: needed
          by every strategy but ROLLING (the rule whose weights ECS shifts).
        - ``rollback_alarm_names``: alarms that roll a deployment back, when the
          deployment's ``alarmRollback`` is on.
        - ``request_count_label``: ``<alb arn suffix>/<target group arn suffix>``;
          adds request-count scaling when autoscaling is on.
        - ``protect``: protect the log group and secrets from deletion.
        """
        super().__init__("trading-infra:service:FargateService", name, {}, opts)
        strategy = settings.deployment.strategy
        traffic_shift: tuple[pulumi.Input[str], pulumi.Input[str]] | None = None
        if strategy != "ROLLING":
            if alternate_target_group_arn is None or production_listener_rule_arn is None:
                raise ValueError(
                    f"FargateService {name}: the {strategy} strategy needs "
                    "`alternate_target_group_arn` and `production_listener_rule_arn`."
                )
            traffic_shift = (alternate_target_group_arn, production_listener_rule_arn)
        self._resource_name = name
        self._settings = settings
        self._tags = component_tags("service")
        self.cluster_name = settings.existing_cluster_name or cluster_name
        self.service_name = settings.name
        self._identity = aws.get_caller_identity(opts=pulumi.InvokeOptions(parent=self))
        self._region = aws.get_region(opts=pulumi.InvokeOptions(parent=self)).region

        capacity = self._cluster()
        self._logs_and_secrets(secrets or {}, protect)
        role_policies = self._roles(repository_arn)
        self._task(image, health_check_path, cpu_architecture)
        self._security_group(vpc_id, load_balancer_security_group_ids)
        role_policies += self._traffic_shift_role(traffic_shift)
        self._service(
            subnet_ids,
            self._load_balancer(target_group_arn, traffic_shift),
            depends_on=[
                *capacity,
                *role_policies,
                *([listener_rule] if listener_rule is not None else []),
            ],
            alarm_names=list(rollback_alarm_names) if settings.deployment.alarm_rollback else [],
        )
        if settings.autoscaling.enabled:
            self._autoscale(request_count_label)

        self.register_outputs(
            {"cluster_name": self.cluster_name, "service_name": self.service_name}
        )

    @property
    def _strategies(self) -> list[tuple[str, int, int]]:
        """The capacity-provider strategy: (provider, weight, base), weights above 0."""
        settings = self._settings
        strategies = [
            ("FARGATE", settings.fargate_weight, settings.fargate_base),
            ("FARGATE_SPOT", settings.fargate_spot_weight, 0),
        ]
        return [(provider, weight, base) for provider, weight, base in strategies if weight > 0]

    def _cluster(self) -> list[pulumi.Resource]:
        """The cluster and its capacity providers, unless one was brought; what the
        service must wait for."""
        name, child = self._resource_name, pulumi.ResourceOptions(parent=self)
        if self._settings.cluster_arn is not None:
            self.cluster = None
            self.cluster_arn = pulumi.Output.from_input(self._settings.cluster_arn)
            return []
        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=self.cluster_name,
            settings=[
                aws.ecs.ClusterSettingArgs(
                    name="containerInsights", value=self._settings.container_insights
                )
            ],
            tags=self._tags,
            opts=child,
        )
        self.cluster_arn = self.cluster.arn
        capacity = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity",
            cluster_name=self.cluster.name,
            capacity_providers=["FARGATE", "FARGATE_SPOT"],
            default_capacity_provider_strategies=[
                aws.ecs.ClusterCapacityProvidersDefaultCapacityProviderStrategyArgs(
                    capacity_provider=provider, weight=weight, base=base
                )
                for provider, weight, base in self._strategies
            ],
            opts=child,
        )
        return [capacity]

    def _logs_and_secrets(self, secrets: Mapping[str, pulumi.Input[str]], protect: bool) -> None:
        name, tags = self._resource_name, self._tags
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=protect)
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/ecs/{self.cluster_name}/{self.service_name}",
            retention_in_days=self._settings.log_retention_days,
            tags=tags,
            opts=stateful,
        )
        self.secrets = {}
        for key, value in sorted(secrets.items()):
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

    def _roles(self, repository_arn: pulumi.Input[str] | None) -> list[pulumi.Resource]:
        """The execution and task roles; returns their policies, which the service waits
        for: tasks started before the execution role's policy exists cannot pull or log,
        and the pulumi-aws aws.ecs.Service docs advise depending on the role policies."""
        name, tags = self._resource_name, self._tags
        child = pulumi.ResourceOptions(parent=self)
        trust = task_trust_policy(self._identity.account_id, self._region)
        self.execution_role = aws.iam.Role(
            f"{name}-execution-role",
            assume_role_policy=trust,
            description=f"ECS pulls, logs and reads secrets for {self.service_name}",
            tags=tags,
            opts=child,
        )
        role_policies: list[pulumi.Resource] = [
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
        ]
        self.task_role = aws.iam.Role(
            f"{name}-task-role",
            assume_role_policy=trust,
            description=f"What the {self.service_name} application may call",
            tags=tags,
            opts=child,
        )
        statements = self._settings.task_role_statements
        if statements:
            role_policies.append(
                aws.iam.RolePolicy(
                    f"{name}-task-policy",
                    role=self.task_role.id,
                    policy=task_role_policy(
                        [{"actions": s.actions, "resources": s.resources} for s in statements]
                    ),
                    opts=child,
                )
            )
        return role_policies

    def _task(
        self,
        image: pulumi.Input[str],
        health_check_path: str,
        cpu_architecture: Literal["X86_64", "ARM64"],
    ) -> None:
        settings, port = self._settings, self._settings.container_port
        environment = {"AWS_REGION": self._region, "PORT": str(port), **settings.environment}
        health_command = default_health_command(port, health_check_path)
        definitions = pulumi.Output.all(
            image,
            self.log_group.name,
            pulumi.Output.all(*[s.arn for s in self.secrets.values()]),
        ).apply(
            lambda v: container_definitions(
                name=self.service_name,
                image=v[0],
                port=port,
                user=settings.user,
                region=self._region,
                log_group=v[1],
                environment=environment,
                secrets=dict(zip(self.secrets, v[2], strict=True)),
                health_command=health_command,
            )
        )
        self.task_definition = aws.ecs.TaskDefinition(
            f"{self._resource_name}-task",
            family=f"{self.cluster_name}-{self.service_name}",
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(settings.cpu),
            memory=str(settings.memory),
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                operating_system_family="LINUX", cpu_architecture=cpu_architecture
            ),
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.task_role.arn,
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=TMP_VOLUME)],
            container_definitions=definitions,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _security_group(
        self, vpc_id: pulumi.Input[str], load_balancer_security_group_ids: pulumi.Input[list[str]]
    ) -> None:
        port = self._settings.container_port
        self.security_group = aws.ec2.SecurityGroup(
            f"{self._resource_name}-sg",
            vpc_id=vpc_id,
            description=f"{self.service_name} tasks: from the load balancer only",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp",
                    from_port=port,
                    to_port=port,
                    security_groups=load_balancer_security_group_ids,
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
            tags={**self._tags, "Name": f"{self._resource_name}-tasks"},
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _traffic_shift_role(
        self, traffic_shift: tuple[pulumi.Input[str], pulumi.Input[str]] | None
    ) -> list[pulumi.Resource]:
        """The role ECS shifts listener-rule weights with, for every strategy but
        ROLLING; returns its policy attachment, which the service waits for."""
        self.infrastructure_role = None
        if traffic_shift is None:
            return []
        name, child = self._resource_name, pulumi.ResourceOptions(parent=self)
        self.infrastructure_role = aws.iam.Role(
            f"{name}-infrastructure-role",
            assume_role_policy=service_assume_role_policy(
                "ecs.amazonaws.com", self._identity.account_id
            ),
            description="ECS shifts listener-rule weights during deployments",
            tags=self._tags,
            opts=child,
        )
        return [
            aws.iam.RolePolicyAttachment(
                f"{name}-infrastructure-policy",
                role=self.infrastructure_role.name,
                policy_arn=ECS_LB_INFRASTRUCTURE_POLICY,
                opts=child,
            )
        ]

    def _load_balancer(
        self,
        target_group_arn: pulumi.Input[str],
        traffic_shift: tuple[pulumi.Input[str], pulumi.Input[str]] | None,
    ) -> aws.ecs.ServiceLoadBalancerArgs:
        advanced = None
        if traffic_shift is not None:
            assert self.infrastructure_role is not None
            advanced = aws.ecs.ServiceLoadBalancerAdvancedConfigurationArgs(
                alternate_target_group_arn=traffic_shift[0],
                production_listener_rule=traffic_shift[1],
                role_arn=self.infrastructure_role.arn,
            )
        return aws.ecs.ServiceLoadBalancerArgs(
            target_group_arn=target_group_arn,
            container_name=self.service_name,
            container_port=self._settings.container_port,
            advanced_configuration=advanced,
        )

    def _service(
        self,
        subnet_ids: pulumi.Input[list[str]],
        load_balancer: aws.ecs.ServiceLoadBalancerArgs,
        *,
        depends_on: list[pulumi.Resource],
        alarm_names: list[str],
    ) -> None:
        settings = self._settings
        deployment = settings.deployment
        ignored = []
        # With autoscaling the scaler owns the task count: a deploy must not reset it to
        # the configured count in the middle of a traffic peak.
        if settings.autoscaling.enabled:
            ignored.append("desiredCount")
        # After a successful blue/green-style deployment ECS swaps which target group
        # is live; Pulumi must not swap it back (as the rule's actions are ignored).
        if deployment.strategy != "ROLLING":
            ignored.append("loadBalancers")
        timeout = f"{service_timeout_minutes(deployment)}m"
        self.service = aws.ecs.Service(
            f"{self._resource_name}-service",
            name=self.service_name,
            cluster=self.cluster_arn,
            task_definition=self.task_definition.arn,
            desired_count=settings.desired_count,
            platform_version="LATEST",
            capacity_provider_strategies=[
                aws.ecs.ServiceCapacityProviderStrategyArgs(
                    capacity_provider=provider, weight=weight, base=base
                )
                for provider, weight, base in self._strategies
            ],
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=subnet_ids,
                security_groups=[self.security_group.id],
                assign_public_ip=False,
            ),
            load_balancers=[load_balancer],
            health_check_grace_period_seconds=settings.health_check_grace_period_seconds,
            deployment_controller=aws.ecs.ServiceDeploymentControllerArgs(type="ECS"),
            deployment_configuration=_deployment_configuration(deployment),
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
            tags=self._tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=depends_on,
                ignore_changes=ignored or None,
                custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
            ),
        )

    def _autoscale(self, request_count_label: pulumi.Input[str] | None) -> None:
        name, scaling = self._resource_name, self._settings.autoscaling
        child = pulumi.ResourceOptions(parent=self)
        cluster = self.cluster.name if self.cluster is not None else self.cluster_name
        target = aws.appautoscaling.Target(
            f"{name}-scaling-target",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", cluster, "/", self.service.name),
            min_capacity=scaling.min_count,
            max_capacity=scaling.max_count,
            tags=self._tags,
            opts=child,
        )
        metrics: list[tuple[str, str, float, pulumi.Input[str] | None]] = [
            ("cpu", "ECSServiceAverageCPUUtilization", scaling.cpu_target_percent, None)
        ]
        if request_count_label is not None:
            metrics.append(
                (
                    "requests",
                    "ALBRequestCountPerTarget",
                    scaling.requests_per_target,
                    request_count_label,
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
                    scale_in_cooldown=scaling.scale_in_cooldown_seconds,
                    scale_out_cooldown=scaling.scale_out_cooldown_seconds,
                ),
                opts=child,
            )


SERVICE_WAIT_MARGIN_MINUTES = 20
"""The provider's own create/update timeout for a service: tasks starting and passing
health checks, before any bake time."""


def service_timeout_minutes(deployment: DeploymentSettings) -> int:
    """How long ``pulumi up`` waits for a deployment to reach a steady state: the
    strategy's bake times plus the provider's default margin."""
    bake = deployment.bake_time_minutes
    if deployment.strategy == "CANARY":
        baking = deployment.canary_bake_time_minutes + bake
    elif deployment.strategy == "LINEAR":
        steps = math.ceil(100 / deployment.linear_step_percent)
        baking = steps * deployment.linear_step_bake_time_minutes + bake
    elif deployment.strategy == "BLUE_GREEN":
        baking = bake
    else:
        baking = 0
    return SERVICE_WAIT_MARGIN_MINUTES + baking


def _deployment_configuration(
    deployment: DeploymentSettings,
) -> aws.ecs.ServiceDeploymentConfigurationArgs:
    strategy = deployment.strategy
    if strategy == "ROLLING":
        return aws.ecs.ServiceDeploymentConfigurationArgs(strategy="ROLLING")
    bake = str(deployment.bake_time_minutes)
    if strategy == "CANARY":
        return aws.ecs.ServiceDeploymentConfigurationArgs(
            strategy="CANARY",
            bake_time_in_minutes=bake,
            canary_configuration=aws.ecs.ServiceDeploymentConfigurationCanaryConfigurationArgs(
                canary_percent=deployment.canary_percent,
                canary_bake_time_in_minutes=str(deployment.canary_bake_time_minutes),
            ),
        )
    if strategy == "LINEAR":
        return aws.ecs.ServiceDeploymentConfigurationArgs(
            strategy="LINEAR",
            bake_time_in_minutes=bake,
            linear_configuration=aws.ecs.ServiceDeploymentConfigurationLinearConfigurationArgs(
                step_percent=deployment.linear_step_percent,
                step_bake_time_in_minutes=str(deployment.linear_step_bake_time_minutes),
            ),
        )
    return aws.ecs.ServiceDeploymentConfigurationArgs(
        strategy="BLUE_GREEN", bake_time_in_minutes=bake
    )
