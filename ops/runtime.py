"""Run the program (or any part of it) under Pulumi's mock runtime and record what it
registers: no Pulumi CLI, no provider plugins, no cloud account.

``ops plan``, ``ops check`` and the unit tests all go through ``run_mocked``, so what
the tests assert is exactly what the plan shows.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks, rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.rpc_manager import RPCManager
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

MOCK_ACCOUNT = "123456789012"
MOCK_ORGANIZATION = "organization"
"""The organization plans run in: a self-managed backend's."""
SECRET_PLACEHOLDER = "[secret]"  # noqa: S105 (a display marker, not a credential)
"""What a secret value is shown as in a plan."""

_SECRET_SIG = rpc._special_sig_key
_SECRET_VALUE = rpc._special_secret_sig


@dataclass(frozen=True)
class PlannedResource:
    """One resource registration, as the engine would receive it."""

    urn: str
    type: str
    name: str
    parent: str | None
    inputs: dict[str, Any]
    custom: bool
    protect: bool
    provider: str | None
    id: str | None = None
    """The id the mocks gave the resource (custom resources only)."""
    ignore_changes: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    """URNs the resource waits for: ``depends_on`` and the resources its inputs read."""
    replace_on_changes: tuple[str, ...] = ()
    delete_before_replace: bool = False
    custom_timeouts: dict[str, float] = field(default_factory=dict)
    """``create`` / ``update`` / ``delete`` -> seconds, where the program set one."""
    outputs: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """What the mocks answered (ids, ARNs): lets tests follow references by value."""
    revealed: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """``inputs`` with secret values in clear, for tests; never printed."""

    def tag(self, key: str) -> str | None:
        tags = self.inputs.get("tags") or {}
        return tags.get(key) if isinstance(tags, dict) else None


@dataclass
class Plan:
    """Everything one mocked run registered, in registration order."""

    project: str
    stack: str
    resources: list[PlannedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    placeholders: list[str] = field(default_factory=list)
    """Required secret keys the stack file does not set, planned as ``[secret]``."""

    def of_type(self, type_: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> PlannedResource:
        found = self.of_type(type_)
        if len(found) != 1:
            raise AssertionError(f"expected one {type_}, found {len(found)}")
        return found[0]

    def named(self, name: str) -> PlannedResource:
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise KeyError(name)

    def children_of(self, parent: PlannedResource) -> list[PlannedResource]:
        return [r for r in self.resources if r.parent == parent.urn]


def _asset(value: pulumi.Asset | pulumi.Archive) -> dict[str, Any]:
    """Assets and archives as data: a file's path and content hash (so a code change
    shows in a plan diff), an archive's members."""
    if isinstance(value, pulumi.FileAsset):
        path = Path(str(value.path))
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        return {"fileAsset": str(value.path), "sha256": digest}
    if isinstance(value, pulumi.StringAsset):
        return {"stringAsset": hashlib.sha256(str(value.text).encode()).hexdigest()}
    if isinstance(value, pulumi.FileArchive):
        return {"fileArchive": str(value.path)}
    if isinstance(value, pulumi.AssetArchive):
        return {"assetArchive": {name: _asset(item) for name, item in sorted(value.assets.items())}}
    return {"asset": type(value).__name__}


def _normalize(value: Any, reveal: bool = False) -> Any:
    """Engine values as plan data: secrets masked (or revealed), assets and archives as
    data, whole numbers as integers."""
    if isinstance(value, (pulumi.Asset, pulumi.Archive)):
        return _asset(value)
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) == _SECRET_VALUE:
            return _normalize(value["value"], reveal) if reveal else SECRET_PLACEHOLDER
        return {key: _normalize(item, reveal) for key, item in value.items()}
    if isinstance(value, list):
        return [_normalize(item, reveal) for item in value]
    if isinstance(value, float) and value.is_integer():
        # The engine's wire format has one number type; plans show whole numbers as such.
        return int(value)
    return value


_NAMED_TYPES = frozenset(
    {
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:ecs/cluster:Cluster",
        "aws:ecs/service:Service",
        "aws:iam/role:Role",
        "aws:sns/topic:Topic",
    }
)
"""Types whose ``name`` output AWS fills in when the program does not set one."""


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}


def duration_seconds(text: str) -> float:
    """A Pulumi custom timeout (``"30m"``, ``"1h30m"``, ``"90s"``) in seconds."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _timeouts(request: Any) -> dict[str, float]:
    if not request.HasField("customTimeouts"):
        return {}
    timeouts = request.customTimeouts
    return {
        name: duration_seconds(value)
        for name in ("create", "update", "delete")
        if (value := getattr(timeouts, name))
    }


def _service_of(type_: str) -> str:
    """``aws:ec2/vpc:Vpc`` -> ``ec2``."""
    return type_.split(":")[1].split("/")[0]


class PlanMocks(pulumi.runtime.Mocks):
    """Deterministic stand-ins for what AWS and Docker would return.

    Ids and ARNs derive from resource names, so two runs of the same program give the
    same plan. The region of a resource is its provider's, else the stack's.
    """

    def __init__(
        self,
        default_region: str,
        stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.default_region = default_region
        self.provider_regions: dict[str, str] = {}
        self.stack_outputs = dict(stack_outputs or {})

    def _region(self, provider_ref: str | None) -> str:
        if provider_ref:
            return self.provider_regions.get(provider_ref.rsplit("::", 1)[-1], self.default_region)
        return self.default_region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        resource_id = f"{args.name}-id"
        state = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            return self._stack_reference(args.resource_id or args.name)
        if args.typ == "pulumi:providers:aws":
            self.provider_regions[resource_id] = str(args.inputs.get("region"))
            return resource_id, state
        region = self._region(args.provider)
        if args.typ.startswith("aws:"):
            kind = args.typ.rsplit(":", 1)[-1].lower()
            state.setdefault(
                "arn",
                f"arn:aws:{_service_of(args.typ)}:{region}:{MOCK_ACCOUNT}:{kind}/{args.name}",
            )
        if args.typ == "aws:ecr/repository:Repository":
            repository = state.get("name", args.name)
            state["repositoryUrl"] = f"{MOCK_ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{repository}"
            state["registryId"] = MOCK_ACCOUNT
        elif args.typ == "aws:lb/loadBalancer:LoadBalancer":
            scheme = "internal-" if args.inputs.get("internal") else ""
            state["arnSuffix"] = f"app/{args.name}/0123456789abcdef"
            state["dnsName"] = f"{scheme}{args.name}-1234567890.{region}.elb.amazonaws.com"
            state["zoneId"] = "ZMOCKELBZONE0"
        elif args.typ == "aws:lb/targetGroup:TargetGroup":
            state["arnSuffix"] = f"targetgroup/{args.name}/0123456789abcdef"
        elif args.typ == "aws:cloudfront/keyValueStore:KeyValueStore":
            state["arn"] = f"arn:aws:cloudfront::{MOCK_ACCOUNT}:key-value-store/{args.name}-0000"
        elif args.typ == "aws:cloudfront/distribution:Distribution":
            state["domainName"] = "d111111abcdef8.cloudfront.net"
            state["arn"] = f"arn:aws:cloudfront::{MOCK_ACCOUNT}:distribution/E{args.name.upper()}"
        elif args.typ == "aws:s3/bucket:Bucket":
            # A prefixed name gets a suffix, as S3 names are global.
            state.setdefault("bucket", f"{state.get('bucketPrefix', args.name)}0123456789")
            state["arn"] = f"arn:aws:s3:::{state['bucket']}"
            state["hostedZoneId"] = "Z2FDTNDATAQYW2"
        elif args.typ == "aws:acm/certificate:Certificate":
            domain = str(args.inputs["domainName"])
            state["domainValidationOptions"] = [
                {
                    "domainName": domain,
                    "resourceRecordName": f"_0123.{domain}.",
                    "resourceRecordType": "CNAME",
                    "resourceRecordValue": "_4567.acm-validations.aws.",
                }
            ]
        elif args.typ == "aws:iam/accessKey:AccessKey":
            # An access key id is AKIA and 16 characters; its secret is only in state.
            resource_id = "AKIA" + hashlib.sha256(args.name.encode()).hexdigest()[:16].upper()
            state["secret"] = f"mock-secret-of-{args.name}"
        elif args.typ == "aws:route53/record:Record":
            state["fqdn"] = str(args.inputs["name"]).rstrip(".")
        elif args.typ == "command:remote:Command":
            # What the host would print: a WireGuard public key for the key generator
            # (32 bytes, base64, derived from the name), an ILP auth line for the ILP
            # key generator (its host's name, then two 32-byte base64url halves of a
            # stand-in point), nothing for other commands.
            # Imported here: only a fleet plan has commands (and has imported it already).
            from components.vps import ILP_KEY, WIREGUARD_KEY, step_name

            stdout = ""
            digest = hashlib.sha256(args.name.encode()).digest()
            if args.name.endswith(step_name("", WIREGUARD_KEY)):
                stdout = base64.b64encode(digest).decode()
            elif args.name.endswith(step_name("", ILP_KEY)):
                half = base64.urlsafe_b64encode(digest).decode().rstrip("=")
                host = args.name.removesuffix(step_name("", ILP_KEY))
                stdout = f"{host} ec-p-256-sha256 {half} {half[::-1]}"
            state |= {"stdout": stdout, "stderr": ""}
        elif args.typ in _NAMED_TYPES:
            state.setdefault("name", args.name)
        elif args.typ == "docker:index/image:Image":
            image_name = str(args.inputs["imageName"])
            repository = image_name.rsplit(":", 1)[0]
            digest = hashlib.sha256(image_name.encode()).hexdigest()
            state["repoDigest"] = f"{repository}@sha256:{digest}"
        return resource_id, state

    def _stack_reference(self, name: str) -> tuple[str, dict]:
        if name not in self.stack_outputs:
            raise KeyError(f"the plan mocks have no outputs for StackReference {name!r}")
        return name, {
            "name": name,
            "outputs": dict(self.stack_outputs[name]),
            "secretOutputNames": [],
        }

    def existing_listener(self, arn: str) -> dict[str, Any]:
        """An existing ALB listener (``loadBalancer.listenerArn``), as AWS would describe
        it: HTTPS on 443. Tests override it to see the other answers."""
        prefix, _, path = arn.partition(":listener/")
        balancer = path.rsplit("/", 1)[0]
        return {
            "arn": arn,
            "id": arn,
            "loadBalancerArn": f"{prefix}:loadbalancer/{balancer}",
            "port": 443,
            "protocol": "HTTPS",
        }

    def existing_load_balancer(self, arn: str) -> dict[str, Any]:
        """That listener's ALB: internal, in the stack's VPC (the mock id of the network's
        VPC), with one security group of its own."""
        suffix = arn.partition(":loadbalancer/")[2]
        name = suffix.split("/")[1]
        region = arn.split(":")[3]
        return {
            "arn": arn,
            "id": arn,
            "arnSuffix": suffix,
            "dnsName": f"internal-{name}-1234567890.{region}.elb.amazonaws.com",
            "zoneId": "ZMOCKELBZONE0",
            "internal": True,
            "loadBalancerType": "application",
            "securityGroups": [f"sg-{name}"],
            "vpcId": "network-vpc-id",
        }

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]]]:
        region = self._region(args.provider)
        answers: dict[str, Callable[[], dict[str, Any]]] = {
            "aws:index/getAvailabilityZones:getAvailabilityZones": lambda: {
                "names": [f"{region}{letter}" for letter in "abc"],
                "zoneIds": [f"{region}-az{number}" for number in (1, 2, 3)],
                "state": "available",
                "id": region,
            },
            "aws:index/getRegion:getRegion": lambda: {"region": region, "id": region},
            "aws:ec2/getManagedPrefixList:getManagedPrefixList": lambda: {
                "id": f"pl-{region}-cloudfront",
                "name": args.args.get("name"),
                "addressFamily": "IPv4",
            },
            "aws:index/getCallerIdentity:getCallerIdentity": lambda: {
                "accountId": MOCK_ACCOUNT,
                "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:root",
            },
            "aws:ecr/getAuthorizationToken:getAuthorizationToken": lambda: {
                "userName": "AWS",
                "password": "mock-ecr-password",
            },
            "aws:lb/getListener:getListener": lambda: self.existing_listener(str(args.args["arn"])),
            "aws:lb/getLoadBalancer:getLoadBalancer": lambda: self.existing_load_balancer(
                str(args.args["arn"])
            ),
        }
        if args.token not in answers:
            raise NotImplementedError(f"the plan mocks do not answer {args.token}")
        return answers[args.token](), []


class _RecordingMonitor(mocks.MockMonitor):
    """The mock monitor, also keeping each registration's parent, options and inputs."""

    def __init__(self, plan_mocks: PlanMocks, plan: Plan) -> None:
        super().__init__(plan_mocks)
        self.plan = plan

    def ReadResource(self, request):  # noqa: N802 (gRPC method name)
        response = super().ReadResource(request)
        self.plan.resources.append(
            PlannedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                inputs={},
                custom=True,
                protect=False,
                provider=request.provider or None,
                id=request.id or None,
                outputs=_normalize(rpc.deserialize_properties(response.properties)),
            )
        )
        return response

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = rpc.deserialize_properties(request.object)
            self.plan.resources.append(
                PlannedResource(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent or None,
                    inputs=_normalize(inputs),
                    custom=bool(request.custom),
                    protect=bool(request.protect),
                    provider=request.provider or None,
                    id=response.id or None,
                    ignore_changes=tuple(request.ignoreChanges),
                    dependencies=tuple(request.dependencies),
                    replace_on_changes=tuple(request.replaceOnChanges),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    custom_timeouts=_timeouts(request),
                    outputs=_normalize(rpc.deserialize_properties(response.object)),
                    revealed=_normalize(inputs, reveal=True),
                )
            )
        return response


def _plan_mocks(region: str, stack_outputs: Mapping[str, Mapping[str, Any]] | None) -> PlanMocks:
    return PlanMocks(default_region=region, stack_outputs=stack_outputs)


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_mocked(
    program: Callable[[], None],
    *,
    project: str,
    stack: str,
    config: Mapping[str, str] | None = None,
    secret_keys: list[str] | None = None,
    cwd: Path | None = None,
    plan: Plan | None = None,
    stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
    mocks_for: Callable[[str, Mapping[str, Mapping[str, Any]] | None], PlanMocks] | None = None,
) -> Plan:
    """Run ``program`` as stack ``stack`` with ``config`` and return what it registered.

    Each run gets a fresh context, so runs in one process never see each other's
    resources, config or stack. Exceptions from the program (config errors included)
    propagate unchanged; pass ``plan`` to see what was registered before one was raised.
    ``stack_outputs`` answers StackReferences: fully qualified stack name -> outputs.
    ``mocks_for(region, stack_outputs)`` replaces the plan mocks (the remote rehearsal
    passes mocks that carry out the commands).
    """
    plan = plan if plan is not None else Plan(project=project, stack=stack)
    all_config = dict(config or {})

    def run() -> None:
        # The runtime's task and RPC bookkeeping defaults to objects shared by every
        # context; give this run its own, so a run that failed leaves nothing behind.
        # (The attributes are context properties, which pyright cannot see through.)
        runtime_settings.SETTINGS.outputs = set()  # pyright: ignore[reportAttributeAccessIssue]
        runtime_settings.SETTINGS.rpc_manager = RPCManager()  # pyright: ignore[reportAttributeAccessIssue]
        set_all_config(all_config, secret_keys or [])
        region = all_config.get("aws:region", "us-east-1")
        plan_mocks = (mocks_for or _plan_mocks)(region, stack_outputs)
        monitor = _RecordingMonitor(plan_mocks, plan)
        mocks.set_mocks(
            plan_mocks,
            project=project,
            stack=stack,
            preview=False,
            monitor=monitor,
            organization=MOCK_ORGANIZATION,
        )
        try:
            _sync_await(run_pulumi_func(program))
        except BaseException:
            leftovers: set = runtime_settings.SETTINGS.outputs  # pyright: ignore[reportAttributeAccessIssue]
            for task in leftovers:
                task.cancel()
            raise
        root = runtime_settings.get_root_resource()
        exported: dict[str, Any] = getattr(root, "outputs", {})
        plan.outputs = _sync_await(_resolve_outputs(exported))

    with _working_directory(cwd or Path.cwd()):
        contextvars.Context().run(run)
    return plan


async def _resolve_outputs(exported: Mapping[str, Any]) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for key, value in exported.items():
        output = pulumi.Output.from_input(value)
        resolved[key] = SECRET_PLACEHOLDER if await output.is_secret() else await output.future()
    return resolved
