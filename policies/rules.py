"""The project's security baseline as pure rules over resources (type, properties, URN).

The same functions run in two places: the Pulumi policy pack (``policies/__main__.py``,
``pulumi preview --policy-pack policies``) and ``python -m ops check STACK`` over the
offline plan. Each rule names the AWS Foundational Security Best Practices control it
enforces (``TI.*`` marks this project's own rules). Mandatory rules guard security;
advisory ones cost and operations hygiene.

This module imports nothing but the standard library, so the policy pack can load it
without the program's dependencies.

One module, over 1,000 lines, on purpose: the policy pack loads it by path with only
the standard library, so the rules cannot be a package the pack would import.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Enforcement = Literal["mandatory", "advisory"]


@dataclass(frozen=True)
class Options:
    """The resource options a rule may need. ``replace_on_changes`` is None where it
    cannot be seen: pulumi-policy's PolicyResourceOptions does not carry it, so only
    ``ops check`` enforces the rules that read it."""

    dependencies: tuple[str, ...] = ()
    """URNs the resource waits for (``depends_on`` and the resources its inputs read)."""
    ignore_changes: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] | None = ()
    delete_before_replace: bool = False
    timeouts: Mapping[str, float] = field(default_factory=dict)
    """``create`` / ``update`` / ``delete`` -> seconds, where set."""
    protect: bool = False
    """Protected: the stack runs with ``production: true`` (its stateful resources are)."""


@dataclass(frozen=True)
class Subject:
    """A resource as a rule sees it."""

    type: str
    props: Mapping[str, Any]
    urn: str
    parent: str | None = None
    options: Options = field(default_factory=Options)


@dataclass(frozen=True)
class Violation:
    rule: str
    control: str
    enforcement: Enforcement
    urn: str
    message: str


@dataclass(frozen=True)
class Rule:
    """One rule: ``check`` looks at every subject at once and returns (urn, message)."""

    name: str
    control: str
    description: str
    enforcement: Enforcement
    check: Callable[[Sequence[Subject]], list[tuple[str, str]]]

    def run(self, subjects: Sequence[Subject]) -> list[Violation]:
        return [
            Violation(self.name, self.control, self.enforcement, urn, message)
            for urn, message in self.check(subjects)
        ]


RULES: list[Rule] = []

HIGH_RISK_PORTS = (
    20,
    21,
    22,
    23,
    25,
    110,
    135,
    143,
    445,
    1433,
    1434,
    3000,
    3306,
    3389,
    4333,
    5000,
    5432,
    5500,
    5601,
    6379,
    8080,
    8088,
    8888,
    9200,
    9300,
    27017,
)
"""Ports FSBP EC2.19 treats as high risk."""
RECOMMENDED_TLS_POLICIES = frozenset(
    {
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
        "ELBSecurityPolicy-TLS13-1-3-2021-06",
    }
)
MODERN_VIEWER_TLS = frozenset({"TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025"})
SECRET_NAME = re.compile(
    r"(SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE_KEY|API_KEY|ACCESS_KEY)", re.IGNORECASE
)


def rule(name: str, control: str, description: str, enforcement: Enforcement = "mandatory"):
    """Register a check over all subjects."""

    def register(check: Callable[[Sequence[Subject]], list[tuple[str, str]]]):
        RULES.append(Rule(name, control, description, enforcement, check))
        return check

    return register


def per_resource(
    type_: str, name: str, control: str, description: str, enforcement: Enforcement = "mandatory"
):
    """Register a check of one resource type: it returns messages for one resource."""

    def register(check: Callable[[Mapping[str, Any]], list[str]]):
        def over_all(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
            return [
                (s.urn, message) for s in subjects if s.type == type_ for message in check(s.props)
            ]

        RULES.append(Rule(name, control, description, enforcement, over_all))
        return check

    return register


def _world(cidrs: Iterable[str]) -> list[str]:
    found = []
    for cidr in cidrs or []:
        try:
            if ipaddress.ip_network(cidr, strict=False).prefixlen == 0:
                found.append(cidr)
        except ValueError:
            continue
    return found


def _world_ingress(props: Mapping[str, Any]) -> list[tuple[int, int, str]]:
    """(from, to, cidr) of every ingress rule open to the whole internet."""
    open_rules = []
    for ingress in props.get("ingress") or []:
        for cidr in _world(
            [*(ingress.get("cidrBlocks") or []), *(ingress.get("ipv6CidrBlocks") or [])]
        ):
            protocol = str(ingress.get("protocol"))
            low, high = (
                (0, 65535)
                if protocol in ("-1", "all")
                else (int(ingress.get("fromPort", 0)), int(ingress.get("toPort", 0)))
            )
            open_rules.append((low, high, cidr))
    return open_rules


def _containers(props: Mapping[str, Any]) -> list[dict[str, Any]]:
    definitions = props.get("containerDefinitions")
    if isinstance(definitions, str):
        try:
            return json.loads(definitions)
        except json.JSONDecodeError:
            return []
    return list(definitions or [])


# --- EC2 ------------------------------------------------------------------------------


def _redirects_to_https(listener: Mapping[str, Any]) -> bool:
    actions = listener.get("defaultActions") or []
    return bool(actions) and all(
        a.get("type") == "redirect"
        and str((a.get("redirect") or {}).get("protocol", "")).upper() == "HTTPS"
        for a in actions
    )


@rule(
    "sg-world-ingress-https-only",
    "EC2.18",
    "Security groups admit the whole internet only on HTTPS (443), and on 80 only where "
    "a listener next to them redirects 80 to HTTPS.",
)
def _sg_world(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    found = []
    for group in _siblings(subjects).values():
        on_80 = [
            s.props
            for s in group
            if s.type == "aws:lb/listener:Listener" and int(s.props.get("port") or 0) == 80
        ]
        redirect_only = bool(on_80) and all(_redirects_to_https(props) for props in on_80)
        for s in group:
            if s.type != "aws:ec2/securityGroup:SecurityGroup":
                continue
            for low, high, cidr in _world_ingress(s.props):
                if (low, high) == (443, 443):
                    continue
                if (low, high) == (80, 80) and redirect_only:
                    continue
                reason = (
                    "port 80 is open to the internet but no listener next to it only "
                    "redirects 80 to HTTPS"
                    if (low, high) == (80, 80)
                    else "only 443 (and 80 redirected to HTTPS) may be open to the internet"
                )
                found.append((s.urn, f"ingress {low}-{high} from {cidr}: {reason}"))
    return found


@per_resource(
    "aws:ec2/securityGroup:SecurityGroup",
    "sg-no-high-risk-ports",
    "EC2.19",
    "No high-risk port (SSH, RDP, databases, ...) open to the whole internet.",
)
def _sg_high_risk(props: Mapping[str, Any]) -> list[str]:
    return [
        f"port {port} open to {cidr}"
        for low, high, cidr in _world_ingress(props)
        for port in HIGH_RISK_PORTS
        if low <= port <= high
    ]


@rule(
    "default-sg-empty",
    "EC2.2",
    "Every VPC's default security group is adopted and allows no traffic.",
)
def _default_sg(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    found = []
    for group in _siblings(subjects).values():
        defaults = [
            s for s in group if s.type == "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
        ]
        found += [
            (s.urn, "the default security group has rules")
            for s in defaults
            if s.props.get("ingress") or s.props.get("egress")
        ]
        if not defaults:
            # Not adopted, AWS's default group keeps its allow-all rules (EC2.2 fails).
            found += [
                (s.urn, "no DefaultSecurityGroup adopts this VPC's default group")
                for s in group
                if s.type == "aws:ec2/vpc:Vpc"
            ]
    return found


@per_resource(
    "aws:ec2/subnet:Subnet",
    "subnet-no-public-ip",
    "EC2.15",
    "Subnets do not assign public IP addresses on launch.",
)
def _subnet(props: Mapping[str, Any]) -> list[str]:
    return ["mapPublicIpOnLaunch is true"] if props.get("mapPublicIpOnLaunch") else []


def _siblings(subjects: Sequence[Subject]) -> dict[str | None, list[Subject]]:
    groups: dict[str | None, list[Subject]] = defaultdict(list)
    for subject in subjects:
        groups[subject.parent].append(subject)
    return groups


@rule("vpc-flow-logs", "EC2.6", "Every VPC has flow logs.")
def _flow_logs(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    found = []
    for group in _siblings(subjects).values():
        logged = any(s.type == "aws:ec2/flowLog:FlowLog" for s in group)
        found += [
            (s.urn, "no flow log next to this VPC")
            for s in group
            if s.type == "aws:ec2/vpc:Vpc" and not logged
        ]
    return found


# --- ELB ------------------------------------------------------------------------------


@per_resource(
    "aws:lb/loadBalancer:LoadBalancer",
    "alb-drop-invalid-headers",
    "ELB.4",
    "Application load balancers drop invalid HTTP headers.",
)
def _drop_headers(props: Mapping[str, Any]) -> list[str]:
    return (
        []
        if props.get("dropInvalidHeaderFields") is True
        else ["dropInvalidHeaderFields is not true"]
    )


@per_resource(
    "aws:lb/loadBalancer:LoadBalancer",
    "alb-desync-mitigation",
    "ELB.12",
    "Load balancers mitigate HTTP desync in defensive or strictest mode.",
)
def _desync(props: Mapping[str, Any]) -> list[str]:
    mode = props.get("desyncMitigationMode", "defensive")
    return [] if mode in ("defensive", "strictest") else [f"desyncMitigationMode is {mode}"]


@per_resource(
    "aws:lb/loadBalancer:LoadBalancer",
    "alb-deletion-protection",
    "ELB.6",
    "Load balancers have deletion protection (turn it off only for throwaway stacks).",
    "advisory",
)
def _deletion(props: Mapping[str, Any]) -> list[str]:
    return [] if props.get("enableDeletionProtection") else ["deletion protection is off"]


@rule(
    "public-listeners-https",
    "ELB.1/ELB.18",
    "Internet-facing listeners speak HTTPS, or only redirect HTTP to it.",
)
def _public_listeners(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    found = []
    for group in _siblings(subjects).values():
        public = any(
            s.type == "aws:lb/loadBalancer:LoadBalancer" and s.props.get("internal") is False
            for s in group
        )
        if not public:
            continue
        for s in group:
            if s.type != "aws:lb/listener:Listener" or s.props.get("protocol") == "HTTPS":
                continue
            actions = [a.get("type") for a in s.props.get("defaultActions") or []]
            if actions != ["redirect"]:
                protocol = s.props.get("protocol")
                found.append(
                    (s.urn, f"{protocol} listener of a public ALB does more than redirect")
                )
    return found


@per_resource(
    "aws:lb/listener:Listener",
    "listener-tls-policy",
    "ELB.17",
    "HTTPS listeners use a recommended TLS 1.3/1.2 policy.",
)
def _tls_policy(props: Mapping[str, Any]) -> list[str]:
    if props.get("protocol") != "HTTPS" or props.get("sslPolicy") in RECOMMENDED_TLS_POLICIES:
        return []
    return [f"sslPolicy {props.get('sslPolicy')} is not a recommended policy"]


# --- ECS ------------------------------------------------------------------------------


@per_resource(
    "aws:ecs/service:Service", "ecs-no-public-ip", "ECS.2", "ECS services assign no public IP."
)
def _ecs_public_ip(props: Mapping[str, Any]) -> list[str]:
    network = props.get("networkConfiguration") or {}
    return ["assignPublicIp is true"] if network.get("assignPublicIp") else []


@per_resource(
    "aws:ecs/service:Service",
    "ecs-latest-platform",
    "ECS.10",
    "Fargate services run the LATEST platform.",
)
def _ecs_platform(props: Mapping[str, Any]) -> list[str]:
    version = props.get("platformVersion", "LATEST")
    return [] if version == "LATEST" else [f"platformVersion is {version}"]


@per_resource(
    "aws:ecs/cluster:Cluster",
    "ecs-container-insights",
    "ECS.12",
    "ECS clusters have Container Insights.",
)
def _insights(props: Mapping[str, Any]) -> list[str]:
    settings = {s.get("name"): s.get("value") for s in props.get("settings") or []}
    return (
        []
        if settings.get("containerInsights") in ("enabled", "enhanced")
        else ["Container Insights is off"]
    )


def _per_container(
    check: Callable[[dict[str, Any]], str | None],
) -> Callable[[Mapping[str, Any]], list[str]]:
    def over(props: Mapping[str, Any]) -> list[str]:
        return [f"{c.get('name')}: {message}" for c in _containers(props) if (message := check(c))]

    return over


per_resource(
    "aws:ecs/taskDefinition:TaskDefinition",
    "ecs-not-privileged",
    "ECS.4",
    "Containers are not privileged.",
)(_per_container(lambda c: "privileged" if c.get("privileged") else None))
per_resource(
    "aws:ecs/taskDefinition:TaskDefinition",
    "ecs-read-only-root",
    "ECS.5",
    "Containers have a read-only root filesystem.",
)(
    _per_container(
        lambda c: None if c.get("readonlyRootFilesystem") is True else "root filesystem is writable"
    )
)
per_resource(
    "aws:ecs/taskDefinition:TaskDefinition",
    "ecs-logging",
    "ECS.9",
    "Containers have a log configuration.",
)(_per_container(lambda c: None if c.get("logConfiguration") else "no logConfiguration"))
per_resource(
    "aws:ecs/taskDefinition:TaskDefinition",
    "ecs-non-root",
    "TI.ECS.1",
    "Containers run as a non-root user.",
)(
    _per_container(
        lambda c: (
            None
            if str(c.get("user", "root")).split(":")[0] not in ("root", "0", "")
            else "runs as root"
        )
    )
)
per_resource(
    "aws:ecs/taskDefinition:TaskDefinition",
    "ecs-no-secrets-in-environment",
    "ECS.8",
    "Secrets reach containers through `secrets`, never plain environment variables.",
)(
    _per_container(
        lambda c: next(
            (
                f"{e.get('name')} looks like a secret in environment"
                for e in c.get("environment") or []
                if SECRET_NAME.search(str(e.get("name")))
            ),
            None,
        )
    )
)


# --- ECR ------------------------------------------------------------------------------


@per_resource(
    "aws:ecr/repository:Repository",
    "ecr-scan-on-push",
    "ECR.1",
    "Repositories scan images on push.",
)
def _scan(props: Mapping[str, Any]) -> list[str]:
    config = props.get("imageScanningConfiguration") or {}
    return [] if config.get("scanOnPush") else ["scanOnPush is off"]


@per_resource(
    "aws:ecr/repository:Repository",
    "ecr-immutable-tags",
    "ECR.2",
    "Repositories have immutable tags.",
)
def _immutable(props: Mapping[str, Any]) -> list[str]:
    return [] if props.get("imageTagMutability") == "IMMUTABLE" else ["tags are mutable"]


@rule("ecr-lifecycle-policy", "ECR.3", "Every repository has a lifecycle policy.")
def _lifecycle(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    found = []
    for group in _siblings(subjects).values():
        has_policy = any(s.type == "aws:ecr/lifecyclePolicy:LifecyclePolicy" for s in group)
        found += [
            (s.urn, "no lifecycle policy")
            for s in group
            if s.type == "aws:ecr/repository:Repository" and not has_policy
        ]
    return found


# --- CloudFront -----------------------------------------------------------------------


def _behaviours(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [props.get("defaultCacheBehavior") or {}, *(props.get("orderedCacheBehaviors") or [])]


@per_resource(
    "aws:cloudfront/distribution:Distribution",
    "cloudfront-viewer-https",
    "CloudFront.3",
    "Viewers are redirected to HTTPS (or refused HTTP).",
)
def _viewer_https(props: Mapping[str, Any]) -> list[str]:
    return [
        f"{b.get('pathPattern', 'default')} behaviour allows {b.get('viewerProtocolPolicy')}"
        for b in _behaviours(props)
        if b.get("viewerProtocolPolicy") not in ("redirect-to-https", "https-only")
    ]


def _production(subjects: Sequence[Subject]) -> bool:
    """A production plan protects its stateful resources (``production: true``)."""
    return any(s.options.protect for s in subjects)


def _distributions(subjects: Sequence[Subject]) -> list[Subject]:
    return [s for s in subjects if s.type == "aws:cloudfront/distribution:Distribution"]


@rule(
    "cloudfront-viewer-tls",
    "CloudFront.7",
    "Viewers need TLSv1.2_2021 or newer over SNI; production serves a custom domain (on "
    "the default *.cloudfront.net certificate CloudFront accepts TLSv1).",
)
def _viewer_tls(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    found = []
    production = _production(subjects)
    for s in _distributions(subjects):
        certificate = s.props.get("viewerCertificate") or {}
        if certificate.get("cloudfrontDefaultCertificate"):
            # CloudFront API Reference, ViewerCertificate: with the default certificate
            # "CloudFront automatically sets the security policy to TLSv1".
            if production:
                found.append(
                    (
                        s.urn,
                        "production on the default *.cloudfront.net certificate, which admits "
                        "TLSv1; set edge.customDomain",
                    )
                )
            continue
        if certificate.get("minimumProtocolVersion") not in MODERN_VIEWER_TLS:
            found.append(
                (s.urn, f"minimumProtocolVersion {certificate.get('minimumProtocolVersion')}")
            )
        if certificate.get("sslSupportMethod") != "sni-only":
            found.append((s.urn, "not SNI-only"))
    return found


@rule(
    "cloudfront-https-end-to-end",
    "TI.CF.2",
    "With a custom domain, CloudFront reaches every VPC origin over HTTPS (plain HTTP "
    "inside the VPC only for stacks without a domain).",
)
def _https_end_to_end(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    custom = any(
        not (s.props.get("viewerCertificate") or {}).get("cloudfrontDefaultCertificate")
        for s in _distributions(subjects)
    )
    if not custom:
        return []
    found = []
    for s in subjects:
        if s.type != "aws:cloudfront/vpcOrigin:VpcOrigin":
            continue
        endpoint = s.props.get("vpcOriginEndpointConfig") or {}
        policy = endpoint.get("originProtocolPolicy")
        if policy != "https-only":
            found.append(
                (
                    s.urn,
                    f"originProtocolPolicy {policy}: give the ALB a certificate "
                    "(loadBalancer.createCertificate or certificateArn)",
                )
            )
    return found


@rule(
    "cloudfront-waf",
    "CloudFront.6",
    "In production the distribution has a WAF web ACL.",
)
def _cloudfront_waf(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    if not _production(subjects):
        return []
    return [
        (s.urn, "no web ACL (webAclId): set edge.waf or edge.webAclArn")
        for s in _distributions(subjects)
        if not s.props.get("webAclId")
    ]


@rule(
    "cloudfront-access-logs",
    "CloudFront.5",
    "In production the distribution's access logs are delivered (standard logging).",
)
def _cloudfront_logs(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    if not _production(subjects):
        return []
    # Standard logging v2: a delivery source of the distribution's ACCESS_LOGS (its
    # resourceArn is unknown until the distribution exists, in a first preview).
    delivered = any(
        s.type == "aws:cloudwatch/logDeliverySource:LogDeliverySource"
        and s.props.get("logType") == "ACCESS_LOGS"
        and ":distribution/" in str(s.props.get("resourceArn") or ":distribution/")
        for s in subjects
    )
    return [
        (s.urn, "no access logs: set edge.accessLogs (or leave it on: the production default)")
        for s in _distributions(subjects)
        if not delivered and not (s.props.get("loggingConfig") or {}).get("bucket")
    ]


@per_resource(
    "aws:lambda/function:Function",
    "lambda-tracing",
    "TI.LAMBDA.1",
    "Lambda functions trace actively with X-Ray.",
)
def _lambda_tracing(props: Mapping[str, Any]) -> list[str]:
    mode = (props.get("tracingConfig") or {}).get("mode", "PassThrough")
    return [] if mode == "Active" else [f"tracingConfig.mode is {mode}, not Active"]


@rule(
    "alb-access-logs",
    "ELB.5",
    "In production every load balancer writes access logs.",
)
def _alb_logs(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    if not _production(subjects):
        return []
    return [
        (s.urn, "no access logs: set loadBalancer.accessLogs (on by default in production)")
        for s in subjects
        if s.type == "aws:lb/loadBalancer:LoadBalancer"
        and not (s.props.get("accessLogs") or {}).get("enabled")
    ]


@per_resource(
    "aws:cloudfront/distribution:Distribution",
    "cloudfront-origin-tls",
    "CloudFront.9/CloudFront.10",
    "Custom origins are reached over HTTPS with TLS 1.2 only.",
)
def _origin_tls(props: Mapping[str, Any]) -> list[str]:
    problems = []
    for origin in props.get("origins") or []:
        custom = origin.get("customOriginConfig")
        if not custom:
            continue
        if custom.get("originProtocolPolicy") != "https-only":
            problems.append(
                f"origin {origin.get('originId')} uses {custom.get('originProtocolPolicy')}"
            )
        if set(custom.get("originSslProtocols") or []) - {"TLSv1.2"}:
            problems.append(
                f"origin {origin.get('originId')} allows {custom.get('originSslProtocols')}"
            )
    return problems


@per_resource(
    "aws:cloudfront/vpcOrigin:VpcOrigin",
    "cloudfront-vpc-origin-tls",
    "CloudFront.10",
    "VPC origins allow no TLS older than 1.2.",
)
def _vpc_origin_tls(props: Mapping[str, Any]) -> list[str]:
    items = ((props.get("vpcOriginEndpointConfig") or {}).get("originSslProtocols") or {}).get(
        "items"
    ) or []
    return [f"allows {items}"] if set(items) - {"TLSv1.2"} else []


@per_resource(
    "aws:cloudfront/function:Function",
    "cloudfront-function-runtime",
    "TI.CF.1",
    "CloudFront Functions run on cloudfront-js-2.0 (KeyValueStore, origin selection).",
)
def _function_runtime(props: Mapping[str, Any]) -> list[str]:
    return (
        [] if props.get("runtime") == "cloudfront-js-2.0" else [f"runtime {props.get('runtime')}"]
    )


# --- logs and IAM ---------------------------------------------------------------------


@per_resource(
    "aws:cloudwatch/logGroup:LogGroup",
    "log-retention",
    "CloudWatch.16",
    "Log groups keep logs for a set time (cost, and a known audit window).",
    "advisory",
)
def _retention(props: Mapping[str, Any]) -> list[str]:
    return [] if props.get("retentionInDays") else ["no retention set: logs are kept forever"]


def _star_star(document: Any) -> bool:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return False
    statements = (document or {}).get("Statement", []) if isinstance(document, dict) else []
    if isinstance(statements, dict):
        statements = [statements]
    for statement in statements:
        actions = statement.get("Action", [])
        resources = statement.get("Resource", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        if statement.get("Effect") == "Allow" and "*" in actions and "*" in resources:
            return True
    return False


@rule("iam-no-admin-policy", "IAM.1/IAM.21", "No policy allows every action on every resource.")
def _iam(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    found = []
    for s in subjects:
        documents = []
        if s.type in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
            documents.append(s.props.get("policy"))
        if s.type == "aws:iam/role:Role":
            documents += [p.get("policy") for p in s.props.get("inlinePolicies") or []]
        if any(_star_star(d) for d in documents):
            found.append((s.urn, 'a statement allows "*" on "*"'))
    return found


# --- VPS ------------------------------------------------------------------------------

_REMOTE = ("command:remote:Command", "command:remote:CopyToRemote")


@rule(
    "vps-host-key-pinned",
    "TI.VPS.1",
    "Every SSH connection pins the host key (no trust on first use).",
)
def _host_key(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    found = []
    for s in subjects:
        if s.type not in _REMOTE:
            continue
        connection = s.props.get("connection") or {}
        if not connection.get("hostKey"):
            found.append((s.urn, "connection has no hostKey"))
        if connection.get("proxy") and not connection["proxy"].get("hostKey"):
            found.append((s.urn, "connection.proxy (the jump host) has no hostKey"))
    return found


_SSH_RULE = re.compile(r"allow from (\S+) to any port (\d+) proto tcp comment 'ssh-admin'")
"""An SSH rule of the bootstrap's ufw rules file, spelled as ``ufw show added`` lists it
(components/vps.py ``ufw_rules``)."""


def _script(command: str) -> str:
    """The script a step runs: the ``-c`` argument of ``bash -c SCRIPT NAME``."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    return words[words.index("-c") + 1] if "-c" in words[:-1] else command


def _covers_world(cidrs: Iterable[str]) -> list[str]:
    """The families ``cidrs`` cover together, pieces included (``0.0.0.0/1`` +
    ``128.0.0.0/1`` is the internet). The pack cannot import the stack's config module,
    which checks the same at config time."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            continue
    covered = []
    for version, world in ((4, "0.0.0.0/0"), (6, "::/0")):
        family = [n for n in networks if n.version == version]
        if any(n.prefixlen == 0 for n in ipaddress.collapse_addresses(family)):  # type: ignore[arg-type]
            covered.append(world)
    return covered


BOOTSTRAP_SUFFIX = "-bootstrap"
"""How a VPS host's bootstrap step is named (``components.vps.step_name(host,
BOOTSTRAP)``). Spelt out, not imported: the pack loads nothing but the standard
library; ``tests/test_policies.py`` holds the two equal."""


@rule("vps-admin-cidr-not-world", "TI.VPS.2", "SSH is not open to the whole internet.")
def _admin_cidr(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    found = []
    for s in subjects:
        if s.type == "command:remote:Command" and s.urn.endswith(BOOTSTRAP_SUFFIX):
            by_port: dict[str, list[str]] = defaultdict(list)
            for cidr, port in _SSH_RULE.findall(_script(str(s.props.get("create", "")))):
                by_port[port].append(cidr)
            if not by_port:
                # A bootstrap whose rules this rule cannot read is not a passing one.
                found.append((s.urn, "no SSH rule found in the bootstrap's ufw rules"))
            for port, cidrs in sorted(by_port.items()):
                for world in _covers_world(cidrs):
                    found.append((s.urn, f"SSH (port {port}) open to {world}"))
    return found


# --- Deployability ----------------------------------------------------------------------
# Constraints AWS or a provider enforces only at deploy time, which Pulumi's mocks accept:
# each rule cites where the constraint is documented.

_SERVICE_ROLES = (
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
)
PREFIX_LIST_WEIGHT = 55
"""Rules one reference to the CloudFront origin-facing prefix list counts for (VPC User
Guide, "AWS-managed prefix list weight"); the only prefix list this program references."""
RULES_PER_SECURITY_GROUP = 60
"""The default quota of inbound (and of outbound) rules per security group."""


def _document(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, Mapping) else None


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _by_urn(subjects: Sequence[Subject]) -> dict[str, Subject]:
    return {s.urn: s for s in subjects}


@rule(
    "sns-topic-key-usable-by-cloudwatch",
    "TI.DEPLOY.1",
    "Alarm topics are encrypted with a key whose policy lets CloudWatch publish.",
)
def _topic_key(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    """CloudWatch alarms publish to an encrypted topic only when the key policy lets
    ``cloudwatch.amazonaws.com`` call kms:GenerateDataKey* and kms:Decrypt; the
    AWS-managed ``alias/aws/sns`` key's policy cannot be changed, so notifications are
    dropped silently (SNS Developer Guide, "Enabling compatibility between event
    sources from AWS services and encrypted topics")."""
    found = []
    urns = _by_urn(subjects)
    for s in subjects:
        if s.type != "aws:sns/topic:Topic" or not s.props.get("kmsMasterKeyId"):
            continue
        key_id = str(s.props["kmsMasterKeyId"])
        if key_id.startswith("alias/aws/"):
            found.append((s.urn, f"{key_id} is AWS-managed: CloudWatch cannot publish to it"))
            continue
        keys = [
            urns[d]
            for d in s.options.dependencies
            if d in urns and urns[d].type == "aws:kms/key:Key"
        ]
        if keys and not any(_cloudwatch_may_encrypt(k.props.get("policy")) for k in keys):
            found.append((s.urn, "the topic's key policy does not let CloudWatch encrypt"))
    return found


def _cloudwatch_may_encrypt(policy: Any) -> bool:
    document = _document(policy) or {}
    for statement in _as_list(document.get("Statement", [])):
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal") or {}
        services = _as_list(principal.get("Service", [])) if isinstance(principal, Mapping) else []
        actions = set(_as_list(statement.get("Action", [])))
        if "cloudwatch.amazonaws.com" in services and (
            "kms:*" in actions or {"kms:Decrypt", "kms:GenerateDataKey*"} <= actions
        ):
            return True
    return False


@per_resource(
    "aws:ec2/securityGroup:SecurityGroup",
    "sg-prefix-list-weight",
    "TI.DEPLOY.2",
    "A security group's rules, prefix lists weighed, fit the quota of 60 per direction.",
)
def _prefix_weight(props: Mapping[str, Any]) -> list[str]:
    """Each reference to a managed prefix list counts as its maximum entries (CloudFront
    origin-facing: 55) against the quota of 60 rules per group and direction; over it,
    AWS answers RulesPerSecurityGroupLimitExceeded (VPC User Guide, "AWS-managed prefix
    list weight"; Amazon VPC quotas)."""
    found = []
    for direction in ("ingress", "egress"):
        weight = 0
        for entry in props.get(direction) or []:
            weight += PREFIX_LIST_WEIGHT * len(entry.get("prefixListIds") or [])
            weight += len(entry.get("cidrBlocks") or []) + len(entry.get("ipv6CidrBlocks") or [])
            weight += len(entry.get("securityGroups") or []) + (1 if entry.get("self") else 0)
        if weight > RULES_PER_SECURITY_GROUP:
            found.append(
                f"{direction} weighs {weight} rules (a prefix-list reference counts "
                f"{PREFIX_LIST_WEIGHT}); the quota is {RULES_PER_SECURITY_GROUP}"
            )
    return found


@per_resource(
    "aws:lambda/function:Function",
    "lambda-no-reserved-concurrency",
    "TI.DEPLOY.3",
    "Functions reserve no concurrency (accounts at the minimum quota reject it).",
)
def _reserved(props: Mapping[str, Any]) -> list[str]:
    """Lambda keeps at least 10 unreserved concurrent executions; on an account whose
    quota is at the minimum (10, new accounts), any reservation fails with "decreases
    account's UnreservedConcurrentExecution below its minimum value of [10]" (Lambda
    Developer Guide, "Configuring reserved concurrency")."""
    reserved = props.get("reservedConcurrentExecutions")
    if isinstance(reserved, int | float) and reserved >= 1:
        return [f"reservedConcurrentExecutions is {reserved}"]
    return []


@rule(
    "ecs-service-waits-for-listener-and-roles",
    "TI.DEPLOY.4",
    "An ECS service depends on its listener rule and on the policies of its roles.",
)
def _service_dependencies(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    """ECS rejects a service whose target group has no load balancer yet ("The target
    group ... does not have an associated load balancer"), and the pulumi-aws
    aws.ecs.Service docs advise depending on the role policies (tasks cannot pull or
    log, deletes hang in DRAINING, without them). Checked on the dependency graph: the
    service must wait for every listener rule that forwards to its target groups and
    every policy of the roles it (or its task definition) uses."""
    urns = _by_urn(subjects)
    found = []
    for s in subjects:
        if s.type != "aws:ecs/service:Service":
            continue
        waits = set(s.options.dependencies)
        groups = {
            d for d in waits if d in urns and urns[d].type == "aws:lb/targetGroup:TargetGroup"
        }
        rules = [
            r.urn
            for r in subjects
            if r.type == "aws:lb/listenerRule:ListenerRule" and groups & set(r.options.dependencies)
        ]
        used = set(waits)
        for d in waits:
            if d in urns and urns[d].type == "aws:ecs/taskDefinition:TaskDefinition":
                used |= set(urns[d].options.dependencies)
        roles = {d for d in used if d in urns and urns[d].type == "aws:iam/role:Role"}
        policies = [
            p.urn
            for p in subjects
            if p.type in _SERVICE_ROLES and roles & set(p.options.dependencies)
        ]
        missing = sorted(u.rsplit("::", 1)[-1] for u in [*rules, *policies] if u not in waits)
        if missing:
            found.append((s.urn, f"does not wait for {', '.join(missing)}"))
    return found


def _shifts_traffic(service: Mapping[str, Any]) -> bool:
    """Whether an ECS service runs ECS-native blue/green, canary or linear deployments
    (a load balancer with an advanced configuration: the alternate target group)."""
    return any((b or {}).get("advancedConfiguration") for b in service.get("loadBalancers") or [])


@per_resource(
    "aws:ecs/service:Service",
    "ecs-traffic-shift-owns-target-groups",
    "TI.DEPLOY.5",
    "Blue/green-style services leave the live target group to ECS and wait for it.",
)
def _traffic_shift(props: Mapping[str, Any]) -> list[str]:
    """After a successful ECS-native blue/green, canary or linear deployment ECS swaps
    which target group is live; a provider that resets ``loadBalancers`` undoes it
    (hashicorp/terraform-provider-aws#45678). Without ``waitForSteadyState`` a
    deployment ECS rolls back reports success. Options are checked by the rule below;
    this one needs only the inputs."""
    if _shifts_traffic(props) and props.get("waitForSteadyState") is not True:
        return ["waitForSteadyState is not true: a rolled-back deployment would pass"]
    return []


@rule(
    "ecs-traffic-shift-ignores-load-balancers",
    "TI.DEPLOY.5",
    "Blue/green-style services ignore loadBalancers after creation.",
)
def _traffic_shift_ignored(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    """See ``ecs-traffic-shift-owns-target-groups``: the option half of the constraint."""
    found = []
    for s in subjects:
        if s.type != "aws:ecs/service:Service":
            continue
        if _shifts_traffic(s.props) and "loadBalancers" not in s.options.ignore_changes:
            found.append((s.urn, "loadBalancers is not ignored: Pulumi would undo ECS's swap"))
    return found


VPC_ORIGIN_CREATE_SECONDS = 1800


@rule(
    "vpc-origin-replaced-not-updated",
    "TI.DEPLOY.6",
    "VPC origins are replaced create-before-delete on endpoint changes, with 30 min to deploy.",
)
def _vpc_origin(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    """CloudFront answers 409 to UpdateVpcOrigin on a VPC origin a distribution uses
    (hashicorp/terraform-provider-aws#40905, aws-cdk#34629), so an endpoint change must
    replace it, the new one first; creating one takes ~15 min and can outlast the
    provider's default waiter (terraform-aws-modules/terraform-aws-cloudfront#163).
    pulumi-policy does not expose replaceOnChanges: the pack checks the rest."""
    found = []
    for s in subjects:
        if s.type != "aws:cloudfront/vpcOrigin:VpcOrigin":
            continue
        replace = s.options.replace_on_changes
        if replace is not None and not {"vpcOriginEndpointConfig", "*"} & set(replace):
            found.append((s.urn, "vpcOriginEndpointConfig changes would update it in place"))
        if s.options.delete_before_replace:
            found.append((s.urn, "deleteBeforeReplace: the distribution still uses it"))
        if s.options.timeouts.get("create", 0) < VPC_ORIGIN_CREATE_SECONDS:
            found.append((s.urn, "create timeout under 30 minutes"))
    return found


@rule(
    "trust-policy-source-conditions",
    "TI.DEPLOY.7",
    "Roles a service assumes carry aws:SourceAccount or aws:SourceArn conditions.",
)
def _trust_conditions(subjects: Sequence[Subject]) -> list[tuple[str, str]]:
    """The cross-service confused-deputy guard (IAM User Guide, "The confused deputy
    problem"): a trust policy for a service principal limits it to this account's
    resources with aws:SourceAccount and, where the service sends it, aws:SourceArn."""
    found = []
    for s in subjects:
        if s.type != "aws:iam/role:Role":
            continue
        document = _document(s.props.get("assumeRolePolicy"))
        if document is None:
            continue
        for statement in _as_list(document.get("Statement", [])):
            principal = (statement or {}).get("Principal") or {}
            if not isinstance(principal, Mapping) or "Service" not in principal:
                continue
            keys = {
                key
                for operator in ((statement.get("Condition") or {}).values())
                if isinstance(operator, Mapping)
                for key in operator
            }
            if not keys & {"aws:SourceAccount", "aws:SourceArn"}:
                found.append(
                    (s.urn, f"{principal['Service']} may assume it without a source condition")
                )
    return found


def evaluate(subjects: Sequence[Subject]) -> list[Violation]:
    """Every rule over every subject."""
    return [violation for r in RULES for violation in r.run(subjects)]
