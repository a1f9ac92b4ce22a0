"""AWS drift: the scan's core. Reads every resource type of the state with batched,
paginated calls and compares what matters, normalised; the per-type handlers live in
``ops.drift.handlers`` (one module per service family).

A handler has a ``fetch`` (the live resources of a region in as few calls as the API
allows: one paginated list, or one per parent where the API has no other way, such as
listener rules per listener), an optional ``compare`` (the attribute diffs; without one
the resource is checked for presence only, "present (attributes not compared)"), and an
optional ``unmanaged`` (live resources inside the stack's VPCs, clusters, load
balancers or listeners that the state does not know). On top, one Resource Groups
Tagging API scan per region finds anything else carrying the stack's default tags.

A call that fails (after botocore's retries), or answers without AWS's request id, marks
that type's resources ``unknown``; a type no handler reads is ``unknown`` too. The scan
goes on, and never reports a false ``ok``.

A little over the ~500 lines aimed at: the batching, pagination, fault marking and
the type registry are one scan loop.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import boto3.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ops.drift.model import Diff, Finding
from ops.drift.state import SECRET, StackState, StateResource

Live = dict[str, Any]
ClientFactory = Callable[[str, str], Any]


def default_client_factory(max_attempts: int = 5) -> ClientFactory:
    """boto3 clients with adaptive retries (client-side rate limiting on throttles)."""
    config = Config(retries={"mode": "adaptive", "max_attempts": max_attempts})
    session = boto3.session.Session()
    return lambda service, region: session.client(service, region_name=region, config=config)


class NotAnAwsAnswerError(BotoCoreError):
    """A 2xx response without AWS's request id: a proxy's or captive portal's page, not
    an API answer. botocore parses such a body into an empty result, which would read as
    "nothing there" (every resource missing); the scan marks the type unknown instead."""

    fmt = "{operation}: the response is not an AWS API answer (no request id)"


def _answer(operation: str, response: Any) -> Any:
    metadata = response.get("ResponseMetadata") if isinstance(response, dict) else None
    if not isinstance(metadata, dict) or not metadata.get("RequestId"):
        raise NotAnAwsAnswerError(operation=operation)
    return response


class Reader:
    """Makes the scan's AWS calls, one client per service and region, counting calls per
    resource type (what the benchmark reports)."""

    def __init__(self, clients: ClientFactory) -> None:
        self._factory = clients
        self._clients: dict[tuple[str, str], Any] = {}
        self.calls: Counter[str] = Counter()

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self._factory(service, region)
        return self._clients[key]

    def items(
        self, type_: str, service: str, region: str, operation: str, key: str, **kwargs: Any
    ) -> list[Any]:
        """Every item of a (paginated) list/describe call; ``key`` may be a dotted path
        (``DistributionList.Items``)."""
        client = self.client(service, region)

        def extract(page: Any) -> list[Any]:
            for part in key.split("."):
                page = (page or {}).get(part)
            return list(page or [])

        if client.can_paginate(operation):
            found: list[Any] = []
            for page in client.get_paginator(operation).paginate(**kwargs):
                self.calls[type_] += 1
                found += extract(_answer(operation, page))
            return found
        self.calls[type_] += 1
        return extract(_answer(operation, getattr(client, operation)(**kwargs)))

    def call(self, type_: str, service: str, region: str, operation: str, **kwargs: Any) -> Any:
        self.calls[type_] += 1
        return _answer(operation, getattr(self.client(service, region), operation)(**kwargs))


@dataclass
class Scope:
    """What belongs to the stack, to tell its unmanaged neighbours apart."""

    vpc_ids: set[str] = field(default_factory=set)
    cluster_arns: set[str] = field(default_factory=set)
    load_balancer_arns: set[str] = field(default_factory=set)
    listener_arns: set[str] = field(default_factory=set)
    route_table_ids: set[str] = field(default_factory=set)
    alarm_dimension_values: set[str] = field(default_factory=set)
    scaling_policies: set[tuple[str, str]] = field(default_factory=set)
    """(resource id, policy name) of the stack's scaling policies: the alarms AWS makes
    for a target-tracking policy act on it and belong to it."""
    identifiers: set[str] = field(default_factory=set)
    """Every id, ARN and name the state holds: what the tag scan counts as managed."""
    stack_tags: dict[str, str] = field(default_factory=dict)
    """The tags the stack's providers put on everything (``stack``, ``project``)."""

    @classmethod
    def of(cls, state: StackState) -> Scope:
        scope = cls(stack_tags=dict(state.stack_tags))
        for resource in state.resources:
            scope.identifiers |= {
                str(v)
                for v in (resource.id, resource.get("arn"), resource.get("name"))
                if v and v != SECRET
            }
            if resource.type == "aws:ec2/vpc:Vpc":
                scope.vpc_ids.add(resource.id)
            elif resource.type == "aws:ecs/cluster:Cluster":
                scope.cluster_arns.add(str(resource.get("arn") or resource.id))
                scope.alarm_dimension_values.add(str(resource.get("name", "")))
            elif resource.type == "aws:ec2/routeTable:RouteTable":
                scope.route_table_ids.add(resource.id)
            elif resource.type == "aws:lb/loadBalancer:LoadBalancer":
                scope.load_balancer_arns.add(resource.id)
                if suffix := resource.get("arnSuffix"):
                    scope.alarm_dimension_values.add(suffix)
            elif resource.type == "aws:lb/listener:Listener":
                scope.listener_arns.add(resource.id)
            elif resource.type == "aws:lb/targetGroup:TargetGroup":
                if suffix := resource.get("arnSuffix"):
                    scope.alarm_dimension_values.add(suffix)
            elif resource.type == "aws:appautoscaling/policy:Policy":
                scope.scaling_policies.add(
                    (str(resource.get("resourceId")), str(resource.get("name") or resource.id))
                )
        return scope


# --- normalisation --------------------------------------------------------------------


def as_json(value: Any) -> Any:
    """A policy or pattern document as data, whatever its encoding."""
    if isinstance(value, str):
        try:
            return json.loads(unquote(value) if value.startswith("%7B") else value)
        except json.JSONDecodeError:
            return value
    return value


_ACCOUNT_ID = re.compile(r"^\d{12}$")


def _as_list(value: Any) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    return sorted({json.dumps(v, sort_keys=True) for v in values}, key=str)


def _principal(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    normal = {}
    for kind, members in value.items():
        listed = [json.loads(m) for m in _as_list(members)]
        if kind == "AWS":
            # IAM stores an account id as that account's root ARN.
            listed = sorted(
                f"arn:aws:iam::{m}:root" if isinstance(m, str) and _ACCOUNT_ID.match(m) else m
                for m in listed
            )
        normal[kind] = listed
    return normal


def as_policy(value: Any) -> Any:
    """An IAM policy document by meaning, the way the AWS provider compares them: one
    statement or a list, a string or a one-item list, statements in any order, an account
    id or its root ARN are each the same policy."""
    document = as_json(value)
    if not isinstance(document, dict) or "Statement" not in document:
        return document
    statements = document["Statement"]
    normal = []
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict):
            normal.append(statement)
            continue
        item = dict(statement)
        for key in ("Action", "NotAction", "Resource", "NotResource"):
            if key in item:
                item[key] = [json.loads(v) for v in _as_list(item[key])]
        for key in ("Principal", "NotPrincipal"):
            if key in item:
                item[key] = _principal(item[key])
        if isinstance(item.get("Condition"), dict):
            item["Condition"] = {
                operator: {k: [json.loads(v) for v in _as_list(vs)] for k, vs in entries.items()}
                if isinstance(entries, dict)
                else entries
                for operator, entries in item["Condition"].items()
            }
        normal.append(item)
    return {**document, "Statement": sorted(normal, key=lambda s: json.dumps(s, sort_keys=True))}


def tags(value: Any) -> dict[str, str]:
    """``[{"Key": k, "Value": v}]`` or a mapping -> a mapping."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return {
        str(t.get("Key", t.get("key"))): str(t.get("Value", t.get("value"))) for t in value or []
    }


def unordered(value: Any) -> list[Any]:
    """A list whose order AWS does not keep (subnets, groups, ARNs), for comparison."""
    return sorted(value or [])


def as_text(value: Any) -> str:
    """A value as the APIs that answer in strings write it (``true``, ``60``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def name_of(arn_or_name: str) -> str:
    return arn_or_name.rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def _unchanged(value: Any) -> Any:
    return value


class Compare:
    """Collects diffs; skips attributes the state does not know or keeps secret.

    ``seen`` records every attribute compared (type, attribute) while a test asks it
    to: how the suite proves each comparison has a scenario that changes it."""

    seen: set[str] | None = None

    def __init__(self) -> None:
        self.diffs: list[Diff] = []

    def __call__(
        self,
        attribute: str,
        expected: Any,
        actual: Any,
        normalize: Callable[[Any], Any] = _unchanged,
    ) -> Compare:
        if expected is None or expected == SECRET:
            return self
        if Compare.seen is not None:
            Compare.seen.add(attribute)
        if normalize(expected) != normalize(actual):
            self.diffs.append(Diff(attribute, expected, actual))
        return self


# --- handlers -------------------------------------------------------------------------

Fetch = Callable[["Reader", str, Sequence[StateResource]], dict[str, Live]]
CompareFn = Callable[[StateResource, Live], list[Diff]]
Unmanaged = Callable[[dict[str, Live], Scope, set[str]], list[tuple[str, str]]]
LiveId = Callable[[StateResource], str]


def _own_id(resource: StateResource) -> str:
    return resource.id


@dataclass(frozen=True)
class Handler:
    type: str
    fetch: Fetch
    compare: CompareFn | None
    """None: the type is checked for presence only ("present, attributes not compared")."""
    unmanaged: Unmanaged | None = None
    global_region: str | None = None
    """Global services (IAM, CloudFront, Route 53, S3's bucket list) are read once, here."""
    live_id: LiveId = _own_id
    """The key of the resource in ``fetch``'s answer, where it is not the Pulumi id."""
    why: str = ""
    """For presence-only types: why the attributes are not compared (the README table)."""
    region_of: Callable[[StateResource], str | None] | None = None
    """For resources of a non-AWS provider (an image pushed to ECR): where they live."""


HANDLERS: dict[str, Handler] = {}


def handler(
    type_: str,
    *,
    unmanaged: Unmanaged | None = None,
    global_region: str | None = None,
    live_id: LiveId = _own_id,
    region_of: Callable[[StateResource], str | None] | None = None,
) -> Callable[[Fetch], Callable[[CompareFn], CompareFn]]:
    """Register ``fetch`` then ``compare`` for a type (two stacked decorators)."""

    def with_fetch(fetch: Fetch) -> Callable[[CompareFn], CompareFn]:
        def with_compare(compare: CompareFn) -> CompareFn:
            HANDLERS[type_] = Handler(
                type_, fetch, compare, unmanaged, global_region, live_id, region_of=region_of
            )
            return compare

        return with_compare

    return with_fetch


def presence(
    type_: str,
    fetch: Fetch,
    *,
    why: str,
    unmanaged: Unmanaged | None = None,
    global_region: str | None = None,
    live_id: LiveId = _own_id,
) -> None:
    """Register a type checked for presence only, saying why."""
    HANDLERS[type_] = Handler(type_, fetch, None, unmanaged, global_region, live_id, why)


def by(key: str, items: Iterable[Live]) -> dict[str, Live]:
    return {str(item[key]): item for item in items}


def absent_on(codes: Iterable[str], read: Callable[[], Any]) -> Any:
    """``read()``, or None when AWS answers one of ``codes`` (the thing is not there)."""
    try:
        return read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in set(codes):
            return None
        raise


Refine = Callable[[StateResource, list[Diff], StackState], list[Diff]]
REFINE: dict[str, Refine] = {}
"""Per type, a second look at the diffs with the whole state at hand (a scaled
service's desiredCount is judged against its scalable target)."""


# --- the scan -------------------------------------------------------------------------

NOT_CHECKED = "not checked: "
"""How the error of an ``unknown`` the scan could not even try begins (a type without
handler, a resource without region): what the provider's refresh may still read."""

NOT_LIVE = ("pulumi:", "command:")
"""Types that are no AWS resource: Pulumi's own, and the VPS steps the VPS scan reads."""


def scan_aws(
    state: StackState, reader: Reader, regions: Sequence[str] | None = None
) -> list[Finding]:
    """A finding for every resource of the state (``unknown`` where no handler reads its
    type), the unmanaged ones in the stack's scope, and whatever else carries the
    stack's tags."""
    import ops.drift.handlers  # noqa: F401 (registers the handlers)

    scope = Scope.of(state)
    findings: list[Finding] = []
    groups: dict[tuple[str, str], list[StateResource]] = defaultdict(list)
    for resource in state.resources:
        if resource.type.startswith(NOT_LIVE):
            continue
        spec = HANDLERS.get(resource.type)
        region = (spec and spec.global_region) or state.regions.get(resource.urn)
        if spec and spec.region_of:
            region = spec.region_of(resource)
        if regions and region not in regions and not (spec and spec.global_region):
            continue
        if spec is None or region is None:
            findings.append(
                Finding(
                    "unknown",
                    resource.type,
                    resource.id,
                    urn=resource.urn,
                    region=region,
                    error=NOT_CHECKED
                    + (
                        "no drift handler reads this type"
                        if spec is None
                        else "the state names no region for it"
                    ),
                )
            )
            continue
        groups[(resource.type, region)].append(resource)
    for (type_, region), resources in sorted(groups.items()):
        findings += _scan_type(HANDLERS[type_], region, resources, reader, scope, state)
    findings += scan_tagged(state, reader, scope, findings, regions)
    return findings


def _scan_type(
    spec: Handler,
    region: str,
    resources: list[StateResource],
    reader: Reader,
    scope: Scope,
    state: StackState,
) -> list[Finding]:
    try:
        live = spec.fetch(reader, region, resources)
    except (ClientError, BotoCoreError) as error:
        return [
            Finding(
                "unknown",
                spec.type,
                r.id,
                urn=r.urn,
                region=region,
                error=f"could not read: {error}",
            )
            for r in resources
        ]
    findings: list[Finding] = []
    known = set()
    for resource in resources:
        live_id = spec.live_id(resource)
        known.add(live_id)
        record = live.get(live_id)
        if record is None:
            findings.append(
                Finding("missing", spec.type, resource.id, urn=resource.urn, region=region)
            )
            continue
        diffs = spec.compare(resource, record) if spec.compare else []
        if refine := REFINE.get(spec.type):
            diffs = refine(resource, diffs, state)
        findings.append(
            Finding(
                "changed" if diffs else "ok",
                spec.type,
                resource.id,
                urn=resource.urn,
                region=region,
                diffs=diffs,
                compared=spec.compare is not None,
            )
        )
    if spec.unmanaged is not None:
        findings += [
            Finding("unmanaged", spec.type, live_id, region=region, detail=detail)
            for live_id, detail in spec.unmanaged(live, scope, known)
        ]
    return findings


# --- whatever else carries the stack's tags -------------------------------------------

TAGGED = "tagged"
"""The call-count key of the Resource Groups Tagging API scan."""


def arn_names(arn: str) -> set[str]:
    """The names an ARN may go by in a state: the ARN, its resource part, and each
    path suffix of it (``service/cluster/name`` -> ``cluster/name``, ``name``)."""
    arn = arn.removesuffix(":*")
    resource = arn.split(":", 5)[-1] if arn.count(":") >= 5 else arn
    names = {arn, resource, resource.rsplit(":", 1)[-1]}
    parts = resource.split("/")
    names |= {"/".join(parts[i:]) for i in range(len(parts))}
    return {n for n in names if n}


OWNED_BY_PARENT = re.compile(r"^arn:[^:]+:ecs:[^:]*:[^:]*:(task/|task-definition/)")
"""ECS tasks (run by the stack's services) and earlier revisions of its task
definitions (Pulumi deregisters them; their tags stay) belong to a managed parent."""


def _owned(arn: str, scope: Scope) -> bool:
    if not OWNED_BY_PARENT.match(arn):
        return False
    resource = arn.split(":", 5)[-1]
    kind, _, rest = resource.partition("/")
    if kind == "task":
        cluster = rest.split("/", 1)[0]
        return any(name_of(c) == cluster for c in scope.cluster_arns)
    family = rest.split(":", 1)[0]
    return any(
        i.split(":", 5)[-1].startswith(f"task-definition/{family}:") or i == family
        for i in scope.identifiers
    )


def scan_tagged(
    state: StackState,
    reader: Reader,
    scope: Scope,
    findings: list[Finding],
    regions: Sequence[str] | None = None,
) -> list[Finding]:
    """One Resource Groups Tagging API scan per region and provider: every live
    resource carrying a provider's default tags that the state does not hold (and no
    handler already reported) is ``unmanaged``, whatever its type."""
    reported = {f.id for f in findings if f.status == "unmanaged"}
    found: list[Finding] = []
    for region, stack_tags in sorted(state.tag_scopes):
        if regions and region not in regions and region != "us-east-1":
            continue
        filters = [{"Key": key, "Values": [value]} for key, value in sorted(stack_tags)]
        try:
            items = reader.items(
                TAGGED,
                "resourcegroupstaggingapi",
                region,
                "get_resources",
                "ResourceTagMappingList",
                TagFilters=filters,
            )
        except (ClientError, BotoCoreError) as error:
            found.append(
                Finding(
                    "unknown",
                    TAGGED,
                    region,
                    region=region,
                    error=f"could not list the resources tagged for the stack: {error}",
                )
            )
            continue
        for item in items:
            arn = str(item.get("ResourceARN", ""))
            names = arn_names(arn)
            if names & (scope.identifiers | reported) or _owned(arn, scope):
                continue
            reported.add(arn)
            kind = ":".join([*arn.split(":")[2:3], arn.split(":", 5)[-1].split("/")[0]])
            found.append(
                Finding(
                    "unmanaged",
                    f"tagged:{kind}",
                    arn,
                    region=region,
                    detail=f"carries the stack's tags ({', '.join(k for k, _ in stack_tags)}) "
                    "but is not in the state",
                )
            )
    return found
