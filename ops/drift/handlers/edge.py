"""The edge: CloudFront distribution, function (its code too), KeyValueStore and its
keys, response headers policy, VPC origins; WAF web ACL and its logging; ACM
certificates and their validation; Route 53 records."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from components.edge import HEALTH_KEY_PREFIX
from ops.drift.aws import Compare, Live, Reader, absent_on, as_json, by, handler, name_of, unordered
from ops.drift.model import Diff
from ops.drift.state import SECRET, StateResource

_DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
_CF_FUNCTION = "aws:cloudfront/function:Function"
_KVS = "aws:cloudfront/keyValueStore:KeyValueStore"
_KVS_KEY = "aws:cloudfront/keyvaluestoreKey:KeyvaluestoreKey"
_HEADERS = "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy"
_VPC_ORIGIN = "aws:cloudfront/vpcOrigin:VpcOrigin"
_WEB_ACL = "aws:wafv2/webAcl:WebAcl"
_WAF_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
_CERTIFICATE = "aws:acm/certificate:Certificate"
_VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
_RECORD = "aws:route53/record:Record"
GLOBAL = "us-east-1"


def _items(value: Any) -> list[Any]:
    """CloudFront's ``{"Quantity": n, "Items": [...]}`` lists."""
    return list((value or {}).get("Items") or []) if isinstance(value, dict) else []


def _state_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@handler(_DISTRIBUTION, global_region=GLOBAL)(
    lambda r, region, _: by(
        "Id",
        r.items(
            _DISTRIBUTION, "cloudfront", region, "list_distributions", "DistributionList.Items"
        ),
    )
)
def compare_distribution(state: StateResource, live: Live) -> list[Diff]:
    origins = state.get("origins")
    behaviour = _state_dict(state.get("defaultCacheBehavior"))
    live_behaviour = live.get("DefaultCacheBehavior") or {}
    certificate = _state_dict(state.get("viewerCertificate"))
    live_certificate = live.get("ViewerCertificate") or {}
    return (
        Compare()("enabled", state.get("enabled"), live.get("Enabled"))(
            "origins",
            None if origins == SECRET else sorted(o.get("originId") for o in origins or []),
            sorted(o.get("Id") for o in _items(live.get("Origins"))),
        )(
            "defaultCacheBehavior.viewerProtocolPolicy",
            behaviour.get("viewerProtocolPolicy"),
            live_behaviour.get("ViewerProtocolPolicy"),
        )(
            "defaultCacheBehavior.functionAssociations",
            behaviour.get("functionAssociations"),
            [
                {"eventType": f.get("EventType"), "functionArn": f.get("FunctionARN")}
                for f in _items(live_behaviour.get("FunctionAssociations"))
            ],
            lambda v: sorted((f.get("eventType"), f.get("functionArn")) for f in v or []),
        )(
            "defaultCacheBehavior.responseHeadersPolicyId",
            behaviour.get("responseHeadersPolicyId"),
            live_behaviour.get("ResponseHeadersPolicyId"),
        )("webAclId", state.get("webAclId") or None, live.get("WebACLId"))(
            "aliases",
            state.get("aliases") or None,
            _items(live.get("Aliases")),
            unordered,
        )(
            "viewerCertificate.minimumProtocolVersion",
            None
            if certificate.get("cloudfrontDefaultCertificate")
            else certificate.get("minimumProtocolVersion"),
            live_certificate.get("MinimumProtocolVersion"),
        )(
            "viewerCertificate.acmCertificateArn",
            certificate.get("acmCertificateArn"),
            live_certificate.get("ACMCertificateArn"),
        )
    ).diffs


def digest(code: Any) -> str:
    """A function's code as its SHA-256 (what a diff shows: the code may be long)."""
    data = code if isinstance(code, bytes) else str(code).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _fetch_functions(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    listed = by(
        "Name", r.items(_CF_FUNCTION, "cloudfront", region, "list_functions", "FunctionList.Items")
    )
    for resource in resources:
        name = str(resource.get("name") or resource.id)
        if name in listed:
            # The code is only in GetFunction: one call per function of the state.
            answer = r.call(
                _CF_FUNCTION, "cloudfront", region, "get_function", Name=name, Stage="LIVE"
            )
            body = answer["FunctionCode"]
            listed[name]["Code"] = body.read() if hasattr(body, "read") else body
    return listed


@handler(_CF_FUNCTION, global_region=GLOBAL, live_id=lambda r: str(r.get("name") or r.id))(
    _fetch_functions
)
def compare_cloudfront_function(state: StateResource, live: Live) -> list[Diff]:
    config = live.get("FunctionConfig") or {}
    code = state.get("code")
    return (
        Compare()("runtime", state.get("runtime"), config.get("Runtime"))(
            "code", None if code in (None, SECRET) else digest(code), digest(live.get("Code", b""))
        )(
            "keyValueStoreAssociations",
            state.get("keyValueStoreAssociations"),
            [a.get("KeyValueStoreARN") for a in _items(config.get("KeyValueStoreAssociations"))],
            unordered,
        )
    ).diffs


@handler(_KVS, global_region=GLOBAL, live_id=lambda r: str(r.get("name") or r.id))(
    lambda r, region, _: by(
        "Name",
        r.items(_KVS, "cloudfront", region, "list_key_value_stores", "KeyValueStoreList.Items"),
    )
)
def compare_key_value_store(state: StateResource, live: Live) -> list[Diff]:
    return Compare()("arn", state.get("arn"), live.get("ARN"))(
        "comment", state.get("comment"), live.get("Comment")
    ).diffs


def _fetch_keys(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    found: dict[str, Live] = {}
    stores = sorted(
        {str(x.get("keyValueStoreArn")) for x in resources if x.get("keyValueStoreArn")}
    )
    for store in stores:  # keys are listed per store (the KeyValueStore API, SigV4A)
        for item in r.items(
            _KVS_KEY, "cloudfront-keyvaluestore", region, "list_keys", "Items", KvsARN=store
        ):
            found[f"{store}|{item['Key']}"] = item
    return found


@handler(
    _KVS_KEY,
    global_region=GLOBAL,
    live_id=lambda r: f"{r.get('keyValueStoreArn')}|{r.get('key')}",
)(_fetch_keys)
def compare_key(state: StateResource, live: Live) -> list[Diff]:
    # The program ignores changes to the health keys' values (the failover automation
    # owns them, components/edge.py): only the routing keys' values are Pulumi's.
    if str(state.get("key", "")).startswith(HEALTH_KEY_PREFIX):
        return []
    return Compare()("value", state.get("value"), live.get("Value")).diffs


def _headers(config: dict[str, Any], aws_shape: bool) -> dict[str, Any]:
    """The security headers a viewer gets, from either shape."""

    def pick(value: Any, key: str) -> Any:
        return _state_dict(value).get(key if not aws_shape else key[0].upper() + key[1:])

    security = pick(config, "securityHeadersConfig") or {}
    hsts = pick(security, "strictTransportSecurity") or {}
    return {
        "hsts.maxAge": pick(hsts, "accessControlMaxAgeSec"),
        "hsts.includeSubdomains": bool(pick(hsts, "includeSubdomains")),
        "hsts.preload": bool(pick(hsts, "preload")),
        "frameOptions": pick(pick(security, "frameOptions") or {}, "frameOption"),
        "referrerPolicy": pick(pick(security, "referrerPolicy") or {}, "referrerPolicy"),
        "contentTypeOptions": bool(pick(security, "contentTypeOptions")),
    }


@handler(_HEADERS, global_region=GLOBAL)(
    lambda r, region, _: {
        item["ResponseHeadersPolicy"]["Id"]: item["ResponseHeadersPolicy"]
        for item in r.items(
            _HEADERS,
            "cloudfront",
            region,
            "list_response_headers_policies",
            "ResponseHeadersPolicyList.Items",
            Type="custom",
        )
    }
)
def compare_headers(state: StateResource, live: Live) -> list[Diff]:
    return Compare()(
        "securityHeadersConfig",
        _headers({"securityHeadersConfig": state.get("securityHeadersConfig")}, aws_shape=False)
        if state.get("securityHeadersConfig")
        else None,
        _headers(live.get("ResponseHeadersPolicyConfig") or {}, aws_shape=True),
    ).diffs


@handler(_VPC_ORIGIN, global_region=GLOBAL)(
    lambda r, region, _: by(
        "Id", r.items(_VPC_ORIGIN, "cloudfront", region, "list_vpc_origins", "VpcOriginList.Items")
    )
)
def compare_vpc_origin(state: StateResource, live: Live) -> list[Diff]:
    endpoint = _state_dict(state.get("vpcOriginEndpointConfig"))
    return Compare()(
        "vpcOriginEndpointConfig.arn", endpoint.get("arn"), live.get("OriginEndpointArn")
    )("vpcOriginEndpointConfig.name", endpoint.get("name"), live.get("Name")).diffs


def _rule_summary(rules: Any) -> list[dict[str, Any]]:
    """What each WAF rule does: its action (or override), the statement's kind, and the
    numbers and groups that decide it (a rate limit, a managed group)."""
    found = []
    for rule in rules if isinstance(rules, list) else []:
        statement = rule.get("Statement") or {}
        kind = next(iter(statement), None)
        body = statement.get(kind) or {} if kind else {}
        found.append(
            {
                "name": rule.get("Name"),
                "priority": rule.get("Priority"),
                "action": next(iter(rule.get("Action") or {}), None),
                "override": next(iter(rule.get("OverrideAction") or {}), None),
                "statement": kind,
                "limit": body.get("Limit"),
                "group": body.get("Name"),
            }
        )
    return sorted(found, key=lambda r: (r["priority"] or 0, str(r["name"])))


def _fetch_web_acls(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    listed = by(
        "Id", r.items(_WEB_ACL, "wafv2", region, "list_web_acls", "WebACLs", Scope="CLOUDFRONT")
    )
    for resource in resources:
        summary = listed.get(resource.id)
        if summary:  # the rules are only in GetWebACL: one call per web ACL of the state
            listed[resource.id] = r.call(
                _WEB_ACL,
                "wafv2",
                region,
                "get_web_acl",
                Name=summary["Name"],
                Id=resource.id,
                Scope="CLOUDFRONT",
            )["WebACL"]
    return listed


@handler(_WEB_ACL, global_region=GLOBAL)(_fetch_web_acls)
def compare_web_acl(state: StateResource, live: Live) -> list[Diff]:
    rules = state.get("ruleJson")
    default = _state_dict(state.get("defaultAction"))
    return (
        Compare()(
            "rules",
            None if rules in (None, SECRET) else _rule_summary(as_json(rules)),
            _rule_summary(live.get("Rules")),
        )(
            "defaultAction",
            next((k for k in default if default[k] is not None), None),
            next(iter(live.get("DefaultAction") or {}), None),
            lambda v: str(v).lower(),
        )
    ).diffs


@handler(_WAF_LOGGING, global_region=GLOBAL, live_id=lambda r: str(r.get("resourceArn") or r.id))(
    lambda r, region, _: by(
        "ResourceArn",
        r.items(
            _WAF_LOGGING,
            "wafv2",
            region,
            "list_logging_configurations",
            "LoggingConfigurations",
            Scope="CLOUDFRONT",
        ),
    )
)
def compare_waf_logging(state: StateResource, live: Live) -> list[Diff]:
    def redacted(items: Any, aws_shape: bool) -> list[str]:
        key, name = ("SingleHeader", "Name") if aws_shape else ("singleHeader", "name")
        return sorted(
            str((i.get(key) or {}).get(name, json.dumps(i, sort_keys=True))).lower()
            for i in items or []
        )

    return (
        Compare()(
            "logDestinationConfigs",
            state.get("logDestinationConfigs"),
            live.get("LogDestinationConfigs"),
            lambda v: sorted(str(a).removesuffix(":*") for a in v or []),
        )(
            "redactedFields",
            None
            if state.get("redactedFields") is None
            else redacted(state.get("redactedFields"), False),
            redacted(live.get("RedactedFields"), True),
        )
    ).diffs


KEY_TYPES = [
    "RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096",
    "EC_prime256v1", "EC_secp384r1", "EC_secp521r1",
]  # fmt: skip
"""ListCertificates leaves out every key type but RSA_2048 unless asked for them
(https://docs.aws.amazon.com/acm/latest/APIReference/API_ListCertificates.html)."""


def _certificates(type_: str) -> Any:
    return lambda r, region, _: by(
        "CertificateArn",
        r.items(
            type_,
            "acm",
            region,
            "list_certificates",
            "CertificateSummaryList",
            Includes={"keyTypes": KEY_TYPES},
        ),
    )


@handler(_CERTIFICATE, live_id=lambda r: str(r.get("arn") or r.id))(_certificates(_CERTIFICATE))
def compare_certificate(state: StateResource, live: Live) -> list[Diff]:
    return Compare()("domainName", state.get("domainName"), live.get("DomainName")).diffs


@handler(_VALIDATION, live_id=lambda r: str(r.get("certificateArn") or r.id))(
    _certificates(_VALIDATION)
)
def compare_validation(state: StateResource, live: Live) -> list[Diff]:
    # What the validation resource stands for: the certificate is issued (not expired,
    # revoked or stuck pending because its DNS record went away).
    return Compare()("status", "ISSUED", live.get("Status")).diffs


def _record_key(zone: str, name: str, type_: str, set_identifier: str | None) -> str:
    key = f"{name_of(zone)}_{name.rstrip('.').lower()}_{type_}"
    return f"{key}_{set_identifier}" if set_identifier else key


def _fetch_records(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    found: dict[str, Live] = {}
    for zone in sorted({str(x.get("zoneId")) for x in resources if x.get("zoneId")}):
        # A zone that is gone took its records with it: they are missing.
        records = absent_on(
            ["NoSuchHostedZone"],
            lambda zone=zone: r.items(
                _RECORD,
                "route53",
                region,
                "list_resource_record_sets",
                "ResourceRecordSets",
                HostedZoneId=zone,
            ),
        )
        found |= {
            _record_key(zone, s["Name"], s["Type"], s.get("SetIdentifier")): s
            for s in records or []
        }
    return found


@handler(
    _RECORD,
    global_region=GLOBAL,
    live_id=lambda r: _record_key(
        str(r.get("zoneId")), str(r.get("name")), str(r.get("type")), r.get("setIdentifier")
    ),
)(_fetch_records)
def compare_record(state: StateResource, live: Live) -> list[Diff]:
    aliases = state.get("aliases") or []
    alias = live.get("AliasTarget") or {}
    return (
        Compare()(
            "records",
            state.get("records"),
            [v.get("Value") for v in live.get("ResourceRecords") or []],
            lambda v: sorted(str(x).rstrip(".").lower() for x in v or []),
        )("ttl", state.get("ttl"), live.get("TTL"), lambda v: None if v is None else int(v))(
            "aliases.name",
            aliases[0].get("name") if aliases else None,
            alias.get("DNSName"),
            lambda v: str(v).rstrip(".").lower(),
        )
    ).diffs
