"""Application load balancers (and their attributes), listeners, listener rules and
target groups. Listeners and rules are listed per parent (the API has no other way);
attributes per load balancer (no batch read exists)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from ops.drift.aws import Compare, Live, Reader, Scope, as_text, by, handler, name_of, unordered
from ops.drift.model import Diff
from ops.drift.state import SECRET, StateResource

_LB = "aws:lb/loadBalancer:LoadBalancer"
_LISTENER = "aws:lb/listener:Listener"
_RULE = "aws:lb/listenerRule:ListenerRule"
_TG = "aws:lb/targetGroup:TargetGroup"

ATTRIBUTES = {
    # state input -> ELBv2 attribute key (values compared as ELBv2's strings)
    "enableDeletionProtection": "deletion_protection.enabled",
    "dropInvalidHeaderFields": "routing.http.drop_invalid_header_fields.enabled",
    "desyncMitigationMode": "routing.http.desync_mitigation_mode",
    "idleTimeout": "idle_timeout.timeout_seconds",
    "enableHttp2": "routing.http2.enabled",
}
"""The load balancer attributes drift compares: the security-relevant ones (ELB.6
deletion protection, ELB.4 invalid headers, ELB.12 desync mode, ELB.5 access logs)
and the two that change behaviour."""


def _fetch_load_balancers(
    r: Reader, region: str, resources: Sequence[StateResource]
) -> dict[str, Live]:
    found = by(
        "LoadBalancerArn", r.items(_LB, "elbv2", region, "describe_load_balancers", "LoadBalancers")
    )
    for resource in resources:  # attributes are read per load balancer only
        if resource.id in found:
            attributes = r.call(
                _LB,
                "elbv2",
                region,
                "describe_load_balancer_attributes",
                LoadBalancerArn=resource.id,
            )["Attributes"]
            found[resource.id]["Attributes"] = {a["Key"]: a["Value"] for a in attributes}
    return found


@handler(_LB)(_fetch_load_balancers)
def compare_load_balancer(state: StateResource, live: Live) -> list[Diff]:
    attributes = live.get("Attributes") or {}
    logs = state.get("accessLogs") or {}
    compare = Compare()("internal", state.get("internal"), live.get("Scheme") == "internal")(
        "securityGroups",
        state.get("securityGroups"),
        live.get("SecurityGroups"),
        unordered,
    )(
        "subnets",
        state.get("subnets"),
        [z.get("SubnetId") for z in live.get("AvailabilityZones", [])],
        unordered,
    )
    for key, attribute in ATTRIBUTES.items():
        compare(key, state.get(key), attributes.get(attribute), as_text)
    compare(
        "accessLogs",
        {
            "enabled": bool(logs.get("enabled")) and bool(logs.get("bucket")),
            "bucket": logs.get("bucket") or "",
            "prefix": logs.get("prefix") or "",
        }
        if isinstance(logs, dict)
        else None,
        {
            "enabled": attributes.get("access_logs.s3.enabled") == "true",
            "bucket": attributes.get("access_logs.s3.bucket") or "",
            "prefix": attributes.get("access_logs.s3.prefix") or "",
        },
    )
    return compare.diffs


def _listeners_in_scope(
    live: dict[str, Live], scope: Scope, known: set[str]
) -> list[tuple[str, str]]:
    return [
        (arn, f"listener :{item.get('Port')} on {name_of(str(item.get('LoadBalancerArn')))}")
        for arn, item in live.items()
        if item.get("LoadBalancerArn") in scope.load_balancer_arns and arn not in known
    ]


def _fetch_listeners(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    arns = sorted({str(x.get("loadBalancerArn")) for x in resources if x.get("loadBalancerArn")})
    found: dict[str, Live] = {}
    for arn in arns:  # the API lists listeners per load balancer only
        try:
            found |= by(
                "ListenerArn",
                r.items(
                    _LISTENER,
                    "elbv2",
                    region,
                    "describe_listeners",
                    "Listeners",
                    LoadBalancerArn=arn,
                ),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "LoadBalancerNotFound":
                raise
    return found


REDIRECT_DEFAULTS = {
    "protocol": "#{protocol}",
    "port": "#{port}",
    "host": "#{host}",
    "path": "/#{path}",
    "query": "#{query}",
}
"""What ELBv2 fills in for a redirect field left out (the provider's defaults too)."""


def actions(items: Iterable[Live] | None, aws_shape: bool) -> list[dict[str, Any]]:
    """Listener or rule actions by content, from either shape: what a request meets
    (a fixed response's status and body, a redirect's target, the target groups)."""
    found = []
    for action in items or []:
        if aws_shape:
            kind = action.get("Type")
            groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
            arns = [g["TargetGroupArn"] for g in groups] or [action.get("TargetGroupArn")]
            fixed = action.get("FixedResponseConfig")
            fixed = fixed and {
                "statusCode": fixed.get("StatusCode"),
                "contentType": fixed.get("ContentType"),
                "messageBody": fixed.get("MessageBody") or "",
            }
            redirect = action.get("RedirectConfig")
            redirect = redirect and {
                "statusCode": redirect.get("StatusCode"),
                **{
                    k: redirect.get(k[0].upper() + k[1:]) or d for k, d in REDIRECT_DEFAULTS.items()
                },
            }
        else:
            kind = action.get("type")
            groups = (action.get("forward") or {}).get("targetGroups") or []
            arns = [g["arn"] for g in groups] or [action.get("targetGroupArn")]
            fixed = action.get("fixedResponse")
            fixed = fixed and {
                "statusCode": fixed.get("statusCode"),
                "contentType": fixed.get("contentType"),
                "messageBody": fixed.get("messageBody") or "",
            }
            redirect = action.get("redirect")
            redirect = redirect and {
                "statusCode": redirect.get("statusCode"),
                **{k: str(redirect.get(k) or d) for k, d in REDIRECT_DEFAULTS.items()},
            }
        found.append(
            {
                "type": kind,
                "targetGroups": sorted(a for a in arns if a),
                "fixedResponse": fixed or None,
                "redirect": redirect or None,
            }
        )
    return found


@handler(_LISTENER, unmanaged=_listeners_in_scope)(_fetch_listeners)
def compare_listener(state: StateResource, live: Live) -> list[Diff]:
    expected = state.get("defaultActions")
    return (
        Compare()("port", state.get("port"), live.get("Port"), int)(
            "protocol", state.get("protocol"), live.get("Protocol")
        )(
            "defaultActions",
            None if expected == SECRET else actions(expected, aws_shape=False),
            actions(live.get("DefaultActions"), aws_shape=True),
        )("sslPolicy", state.get("sslPolicy"), live.get("SslPolicy"))(
            "certificateArn",
            state.get("certificateArn"),
            next(iter(c.get("CertificateArn") for c in live.get("Certificates") or []), None),
        )
    ).diffs


def _fetch_rules(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    listeners = sorted({str(x.get("listenerArn")) for x in resources if x.get("listenerArn")})
    found: dict[str, Live] = {}
    for arn in listeners:  # rules are listed per listener only
        try:
            rules = r.items(_RULE, "elbv2", region, "describe_rules", "Rules", ListenerArn=arn)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ListenerNotFound":
                raise
            continue
        found |= {
            rule["RuleArn"]: {**rule, "ListenerArn": arn}
            for rule in rules
            if not rule.get("IsDefault")
        }
    return found


def _rules_in_scope(live: dict[str, Live], scope: Scope, known: set[str]) -> list[tuple[str, str]]:
    return [
        (arn, f"listener rule priority {rule.get('Priority')} on {name_of(rule['ListenerArn'])}")
        for arn, rule in live.items()
        if rule.get("ListenerArn") in scope.listener_arns and arn not in known
    ]


def _conditions(items: Iterable[Live] | None, aws_shape: bool) -> list[Any]:
    found = []
    for condition in items or []:
        if aws_shape:
            field = condition.get("Field")
            config = condition.get(_CONDITION_CONFIG.get(str(field), ""), {}) or {}
            values = config.get("Values") or condition.get("Values") or []
            if field == "http-header":
                values = [config.get("HttpHeaderName"), *values]
        else:
            key = next((str(k) for k in condition if condition[k]), "")
            config = condition.get(key) or {}
            field = _CONDITION_FIELD.get(key, key)
            values = config.get("values") or []
            values = [SECRET] if values == SECRET or SECRET in values else list(values)
            if field == "http-header":
                values = [config.get("httpHeaderName"), *values]
        found.append((field, sorted(str(v) for v in values)))
    return sorted(found)


_CONDITION_CONFIG = {
    "path-pattern": "PathPatternConfig",
    "host-header": "HostHeaderConfig",
    "http-header": "HttpHeaderConfig",
    "http-request-method": "HttpRequestMethodConfig",
    "source-ip": "SourceIpConfig",
}
_CONDITION_FIELD = {
    "pathPattern": "path-pattern",
    "hostHeader": "host-header",
    "httpHeader": "http-header",
    "httpRequestMethod": "http-request-method",
    "sourceIp": "source-ip",
}


def _masked(expected: list[Any], actual: list[Any]) -> list[Any]:
    """The live conditions with the values the state keeps secret masked the same way:
    the header's name is compared, its secret value never read in clear."""
    secret = {(field, values[0]) for field, values in expected if SECRET in values}
    return sorted(
        (field, [values[0], SECRET])
        if (field, values[0] if values else None) in secret
        else (field, values)
        for field, values in actual
    )


@handler(_RULE, unmanaged=_rules_in_scope)(_fetch_rules)
def compare_listener_rule(state: StateResource, live: Live) -> list[Diff]:
    expected = state.get("actions")
    conditions = state.get("conditions")
    expected_conditions = None if conditions == SECRET else _conditions(conditions, aws_shape=False)
    return (
        Compare()("priority", state.get("priority"), live.get("Priority"), lambda v: int(float(v)))(
            "actions",
            None if expected == SECRET else actions(expected, aws_shape=False),
            actions(live.get("Actions"), aws_shape=True),
        )(
            # A header condition may carry the origin secret: never compared in clear.
            "conditions",
            expected_conditions,
            _masked(expected_conditions or [], _conditions(live.get("Conditions"), aws_shape=True)),
        )
    ).diffs


def _target_groups_in_scope(
    live: dict[str, Live], scope: Scope, known: set[str]
) -> list[tuple[str, str]]:
    return [
        (arn, f"target group {tg.get('TargetGroupName')}")
        for arn, tg in live.items()
        if arn not in known
        and (
            tg.get("VpcId") in scope.vpc_ids
            or scope.load_balancer_arns & set(tg.get("LoadBalancerArns", []))
        )
    ]


@handler(_TG, unmanaged=_target_groups_in_scope)(
    lambda r, region, _: by(
        "TargetGroupArn", r.items(_TG, "elbv2", region, "describe_target_groups", "TargetGroups")
    )
)
def compare_target_group(state: StateResource, live: Live) -> list[Diff]:
    check = state.get("healthCheck") or {}
    return (
        Compare()("port", state.get("port"), live.get("Port"), int)(
            "protocol", state.get("protocol"), live.get("Protocol")
        )("targetType", state.get("targetType"), live.get("TargetType"))(
            "healthCheck.path", check.get("path"), live.get("HealthCheckPath")
        )("healthCheck.matcher", check.get("matcher"), (live.get("Matcher") or {}).get("HttpCode"))(
            "vpcId", state.get("vpcId"), live.get("VpcId")
        )
    ).diffs
