"""ECS clusters, capacity providers, services, task definitions; ECR repositories,
lifecycle policies and the pushed image; Application Auto Scaling targets and
policies."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

from botocore.exceptions import ClientError

from ops.drift.aws import (
    REFINE,
    Compare,
    Live,
    Reader,
    Scope,
    absent_on,
    as_json,
    by,
    handler,
    name_of,
    unordered,
)
from ops.drift.model import Diff
from ops.drift.state import StackState, StateResource

_CLUSTER = "aws:ecs/cluster:Cluster"
_CAPACITY = "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders"
_SERVICE = "aws:ecs/service:Service"
_TASK = "aws:ecs/taskDefinition:TaskDefinition"
_REPO = "aws:ecr/repository:Repository"
_LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
_IMAGE = "docker:index/image:Image"
_SCALABLE_TARGET = "aws:appautoscaling/target:Target"
_SCALING_POLICY = "aws:appautoscaling/policy:Policy"


def _describe_clusters(type_: str, r: Reader, region: str) -> dict[str, Live]:
    arns = r.items(type_, "ecs", region, "list_clusters", "clusterArns")
    found: dict[str, Live] = {}
    for start in range(0, len(arns), 100):  # describe takes 100 clusters at a time
        described = r.call(
            type_,
            "ecs",
            region,
            "describe_clusters",
            clusters=arns[start : start + 100],
            include=["SETTINGS"],
        )
        found |= {c["clusterArn"]: c for c in described["clusters"] if c.get("status") == "ACTIVE"}
    return found


@handler(_CLUSTER)(lambda r, region, _: _describe_clusters(_CLUSTER, r, region))
def compare_cluster(state: StateResource, live: Live) -> list[Diff]:
    expected = {s["name"]: s["value"] for s in state.get("settings") or []}
    actual = {s["name"]: s["value"] for s in live.get("settings", [])}
    return Compare()("settings", expected, {k: actual.get(k) for k in expected}).diffs


def _strategy(items: object, aws_shape: bool) -> list[tuple[str, int, int]]:
    keys = ("capacityProvider", "base", "weight")
    return sorted(
        (str(i.get(keys[0])), int(i.get(keys[1]) or 0), int(i.get(keys[2]) or 0))
        for i in (items if isinstance(items, list) else [])
        if isinstance(i, dict)
    )


@handler(_CAPACITY, live_id=lambda r: str(r.get("clusterName") or r.id))(
    lambda r, region, _: {
        c["clusterName"]: c for c in _describe_clusters(_CAPACITY, r, region).values()
    }
)
def compare_capacity(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()(
            "capacityProviders",
            state.get("capacityProviders"),
            live.get("capacityProviders"),
            unordered,
        )(
            "defaultCapacityProviderStrategies",
            state.get("defaultCapacityProviderStrategies"),
            live.get("defaultCapacityProviderStrategy"),
            lambda v: _strategy(v, aws_shape=False),
        )
    ).diffs


def _fetch_services(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    clusters = sorted({str(resource.get("cluster")) for resource in resources})
    found: dict[str, Live] = {}
    for cluster in clusters:
        # One list per cluster names every service in it, the unmanaged ones too; all
        # are described ten at a time (a service being deleted is listed while it
        # drains: its status tells it apart).
        listed = r.items(_SERVICE, "ecs", region, "list_services", "serviceArns", cluster=cluster)
        for start in range(0, len(listed), 10):
            described = r.call(
                _SERVICE,
                "ecs",
                region,
                "describe_services",
                cluster=cluster,
                services=listed[start : start + 10],
            )
            found |= {
                s["serviceArn"]: s
                for s in described["services"]
                if s.get("status") not in ("INACTIVE", "DRAINING")
            }
    return found


def _services_in_scope(
    live: dict[str, Live], scope: Scope, known: set[str]
) -> list[tuple[str, str]]:
    return [
        (arn, f"ECS service {name_of(arn)} in cluster {name_of(str(s.get('clusterArn')))}")
        for arn, s in live.items()
        if arn not in known
    ]


@handler(_SERVICE, unmanaged=_services_in_scope)(_fetch_services)
def compare_service(state: StateResource, live: Live) -> list[Diff]:
    network = (live.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
    expected_network = state.get("networkConfiguration") or {}
    if not isinstance(expected_network, dict):
        expected_network = {}
    return (
        Compare()("desiredCount", state.get("desiredCount"), live.get("desiredCount"), int)(
            "taskDefinition", state.get("taskDefinition"), live.get("taskDefinition")
        )("platformVersion", state.get("platformVersion"), live.get("platformVersion"))(
            "networkConfiguration.assignPublicIp",
            expected_network.get("assignPublicIp"),
            network.get("assignPublicIp") == "ENABLED",
        )(
            "networkConfiguration.securityGroups",
            expected_network.get("securityGroups"),
            network.get("securityGroups"),
            unordered,
        )(
            "networkConfiguration.subnets",
            expected_network.get("subnets"),
            network.get("subnets"),
            unordered,
        )
    ).diffs


def scaling_ranges(state: StackState) -> dict[str, tuple[int, int]]:
    """``service/<cluster>/<service>`` -> the min and max its scalable target allows."""
    return {
        str(t.get("resourceId")): (int(t.get("minCapacity") or 0), int(t.get("maxCapacity") or 0))
        for t in state.of_type(_SCALABLE_TARGET)
        if t.get("serviceNamespace") == "ecs"
    }


def honour_scaling(service: StateResource, diffs: list[Diff], state: StackState) -> list[Diff]:
    """A scaled service's desiredCount belongs to its scaler (the program ignores its
    changes): a count within the target's min..max is not drift, one outside it is."""
    ranges = scaling_ranges(state)
    key = f"service/{name_of(str(service.get('cluster') or ''))}/{service.get('name')}"
    if key not in ranges:
        return diffs
    low, high = ranges[key]
    kept = []
    for diff in diffs:
        if diff.attribute == "desiredCount":
            if low <= int(diff.actual) <= high:
                continue
            diff = Diff("desiredCount", f"{low}..{high} (autoscaled)", diff.actual)
        kept.append(diff)
    return kept


REFINE[_SERVICE] = honour_scaling


@handler(_TASK, live_id=lambda r: str(r.get("arn") or r.id))(
    lambda r, region, _: {
        arn: {"taskDefinitionArn": arn}
        for arn in r.items(
            _TASK, "ecs", region, "list_task_definitions", "taskDefinitionArns", status="ACTIVE"
        )
    }
)
def compare_task_definition(state: StateResource, live: Live) -> list[Diff]:
    # A revision is immutable: present and ACTIVE is all there is to check; a changed
    # definition is a new revision, reported on the service that runs it.
    return []


@handler(_REPO)(
    lambda r, region, _: by(
        "repositoryName", r.items(_REPO, "ecr", region, "describe_repositories", "repositories")
    )
)
def compare_repository(state: StateResource, live: Live) -> list[Diff]:
    scanning = state.get("imageScanningConfiguration") or {}
    encryption = state.get("encryptionConfigurations") or []
    return (
        Compare()(
            "imageTagMutability", state.get("imageTagMutability"), live.get("imageTagMutability")
        )(
            "imageScanningConfiguration.scanOnPush",
            scanning.get("scanOnPush") if isinstance(scanning, dict) else None,
            (live.get("imageScanningConfiguration") or {}).get("scanOnPush"),
        )(
            "encryptionConfigurations.encryptionType",
            encryption[0].get("encryptionType") if encryption else None,
            (live.get("encryptionConfiguration") or {}).get("encryptionType"),
        )
    ).diffs


def _fetch_lifecycle(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    found: dict[str, Live] = {}
    for resource in resources:  # one policy per repository; no batch read exists
        try:
            found[resource.id] = r.call(
                _LIFECYCLE, "ecr", region, "get_lifecycle_policy", repositoryName=resource.id
            )
        except ClientError as error:
            if error.response["Error"]["Code"] not in (
                "LifecyclePolicyNotFoundException",
                "RepositoryNotFoundException",
            ):
                raise
    return found


@handler(_LIFECYCLE)(_fetch_lifecycle)
def compare_lifecycle(state: StateResource, live: Live) -> list[Diff]:
    return Compare()("policy", state.get("policy"), live.get("lifecyclePolicyText"), as_json).diffs


_ECR_HOST = re.compile(
    r"^\d{12}\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repo>[^@:]+)"
)


def _image_parts(resource: StateResource) -> tuple[str, str, str] | None:
    """(region, repository, digest) of an image pushed to ECR, from its repoDigest."""
    match = _ECR_HOST.match(str(resource.get("repoDigest") or ""))
    digest = str(resource.get("repoDigest") or "").partition("@")[2]
    return (match["region"], match["repo"], digest) if match and digest else None


def _fetch_images(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    found: dict[str, Live] = defaultdict(lambda: {"tags": []})
    repositories = {p[1] for x in resources if (p := _image_parts(x)) and p[0] == region}
    for repository in sorted(repositories):  # one paginated list per repository
        images = absent_on(
            ["RepositoryNotFoundException"],
            lambda repository=repository: r.items(
                _IMAGE, "ecr", region, "list_images", "imageIds", repositoryName=repository
            ),
        )
        for image in images or []:
            record = found[f"{repository}@{image['imageDigest']}"]
            if image.get("imageTag"):
                record["tags"].append(image["imageTag"])
    return dict(found)


@handler(
    _IMAGE,
    live_id=lambda r: "@".join(p[1:]) if (p := _image_parts(r)) else f"{r.id} (not in ECR)",
    region_of=lambda r: p[0] if (p := _image_parts(r)) else None,
)(_fetch_images)
def compare_image(state: StateResource, live: Live) -> list[Diff]:
    # The pushed tag still names the pushed digest (tags are immutable, so a moved tag
    # means the repository's setting was changed too).
    tag = str(state.get("imageName") or "").rpartition(":")[2] or None
    tags = sorted(live.get("tags") or [])
    return Compare()("imageName.tag", tag, tag if tag in tags else tags).diffs


@handler(_SCALABLE_TARGET, live_id=lambda r: str(r.get("resourceId") or r.id))(
    lambda r, region, _: by(
        "ResourceId",
        r.items(
            _SCALABLE_TARGET,
            "application-autoscaling",
            region,
            "describe_scalable_targets",
            "ScalableTargets",
            ServiceNamespace="ecs",
        ),
    )
)
def compare_scalable_target(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()("minCapacity", state.get("minCapacity"), live.get("MinCapacity"), int)(
            "maxCapacity", state.get("maxCapacity"), live.get("MaxCapacity"), int
        )
    ).diffs


@handler(_SCALING_POLICY, live_id=lambda r: f"{r.get('resourceId')}|{r.get('name') or r.id}")(
    lambda r, region, _: {
        f"{p['ResourceId']}|{p['PolicyName']}": p
        for p in r.items(
            _SCALING_POLICY,
            "application-autoscaling",
            region,
            "describe_scaling_policies",
            "ScalingPolicies",
            ServiceNamespace="ecs",
        )
    }
)
def compare_scaling_policy(state: StateResource, live: Live) -> list[Diff]:
    expected = state.get("targetTrackingScalingPolicyConfiguration") or {}
    actual = live.get("TargetTrackingScalingPolicyConfiguration") or {}
    metric = (
        (expected.get("predefinedMetricSpecification") or {}) if isinstance(expected, dict) else {}
    )
    return (
        Compare()("policyType", state.get("policyType"), live.get("PolicyType"))(
            "targetTrackingScalingPolicyConfiguration.targetValue",
            expected.get("targetValue") if isinstance(expected, dict) else None,
            actual.get("TargetValue"),
            float,
        )(
            "targetTrackingScalingPolicyConfiguration.predefinedMetricType",
            metric.get("predefinedMetricType"),
            (actual.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType"),
        )(
            "targetTrackingScalingPolicyConfiguration.disableScaleIn",
            expected.get("disableScaleIn") if isinstance(expected, dict) else None,
            bool(actual.get("DisableScaleIn")),
        )
    ).diffs
