"""GeoEdge: the function's rendering (pure), and the distribution under the mocks."""

from __future__ import annotations

import json
import re
import subprocess

import pulumi_aws as aws
import pytest

from components.edge import (
    ALL_VIEWER_AND_CLOUDFRONT_POLICY,
    CACHING_DISABLED_POLICY,
    FUNCTION_SIZE_LIMIT,
    FUNCTION_SOURCE,
    CustomDomainSettings,
    EdgeOrigin,
    GeoEdge,
    GeoEdgeSettings,
    get_failover_worst_case_seconds,
    kvs_id_from_arn,
    render_function,
    routing_table,
)
from ops.runtime import SECRET_PLACEHOLDER, Plan
from stacks import outputs
from tests.support import (
    committed_config,
    committed_eu_outputs,
    is_taggable,
    plan_sg,
    run_component,
    split_settings,
    with_section,
)

SG_ALB = "arn:aws:elasticloadbalancing:ap-southeast-1:123456789012:loadbalancer/app/sg/1"
EU_ALB = "arn:aws:elasticloadbalancing:eu-central-1:123456789012:loadbalancer/app/eu/2"


def origin(region: str, alb: str, **overrides) -> EdgeOrigin:
    defaults = EdgeOrigin(
        region=region,
        protection="vpc-origin",
        alb_arn=alb,
        domain_name=f"internal-{region}.elb.amazonaws.com",
        protocol="HTTP",
        port=80,
    )
    return EdgeOrigin(**{**defaults, **overrides})


def edge_plan(**overrides) -> Plan:
    settings, wiring = split_settings(
        GeoEdgeSettings,
        {"default_region": "sg", "routes": {"US": "sg", "IN": "sg", "DE": "eu"}, **overrides},
    )
    wiring = {
        "resource_prefix": "trading-infra-sg",
        "origins": [origin("sg", SG_ALB), origin("eu", EU_ALB)],
        **wiring,
    }
    return run_component(lambda: GeoEdge("edge", settings, **wiring) and None)


def distribution(plan: Plan) -> dict:
    return plan.one("aws:cloudfront/distribution:Distribution").inputs


# --- pure functions ------------------------------------------------------------------


def test_render_replaces_only_the_settings_line() -> None:
    source = FUNCTION_SOURCE.read_text()
    rendered = render_function(source, "kvs-1", ["sg", "eu"])
    assert 'const SETTINGS = {"kvsId": "kvs-1", "regions": ["sg", "eu"]};' in rendered
    before = [line for line in source.splitlines() if not line.startswith("const SETTINGS")]
    after = [line for line in rendered.splitlines() if not line.startswith("const SETTINGS")]
    assert before == after
    assert rendered.startswith("import cf from 'cloudfront';")


def test_render_refuses_a_source_without_one_settings_line() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        render_function("function handler(e) { return e.request; }", "k", ["sg"])


def test_rendered_function_is_well_under_10_kb() -> None:
    rendered = render_function(FUNCTION_SOURCE.read_text(), "0" * 36, ["sg", "eu"])
    assert len(rendered.encode()) < FUNCTION_SIZE_LIMIT // 2


def test_render_refuses_more_than_10_kb() -> None:
    source = "const SETTINGS = {};\n" + "// padding\n" * 1000
    with pytest.raises(ValueError, match="exceeds"):
        render_function(source, "k", ["sg"])


def test_routing_table_holds_routes_default_and_drained() -> None:
    assert routing_table({"US": "sg", "DE": "eu"}, "sg", ["eu"]) == {
        "country:DE": "eu",
        "country:US": "sg",
        "default": "sg",
        "drained": '["eu"]',
    }


@pytest.mark.parametrize(("attempts", "timeout", "expected"), [(1, 3, 3), (3, 10, 30), (2, 1, 2)])
def test_get_failover_worst_case(attempts: int, timeout: int, expected: int) -> None:
    assert get_failover_worst_case_seconds(attempts, timeout) == expected


def test_kvs_id_is_the_last_arn_segment() -> None:
    arn = "arn:aws:cloudfront::123456789012:key-value-store/0d6ba4d4-5a0e-4c1e-9e8a-2f6f1c0d9a11"
    assert kvs_id_from_arn(arn) == "0d6ba4d4-5a0e-4c1e-9e8a-2f6f1c0d9a11"


# --- the component -------------------------------------------------------------------


def test_one_origin_per_region_through_vpc_origins() -> None:
    plan = edge_plan()
    origins = {o["originId"]: o for o in distribution(plan)["origins"]}
    assert list(origins) == ["sg", "eu"]
    vpc_origins = {
        v.inputs["vpcOriginEndpointConfig"]["arn"]: v
        for v in plan.of_type("aws:cloudfront/vpcOrigin:VpcOrigin")
    }
    assert set(vpc_origins) == {SG_ALB, EU_ALB}
    for region, alb in (("sg", SG_ALB), ("eu", EU_ALB)):
        config = vpc_origins[alb].inputs["vpcOriginEndpointConfig"]
        assert config["originProtocolPolicy"] == "http-only"
        assert config["name"].startswith(f"trading-infra-sg-{region}-")
        assert origins[region]["vpcOriginConfig"]["vpcOriginId"] == vpc_origins[alb].id
        assert (origins[region]["connectionAttempts"], origins[region]["connectionTimeout"]) == (
            1,
            3,
        )
        assert origins[region]["vpcOriginConfig"]["originReadTimeout"] == 30


def test_a_vpc_origin_endpoint_change_replaces_it_first_under_a_new_name() -> None:
    """CloudFront refuses updates to a VPC origin in use (409): any endpoint change must
    replace it, create-before-delete, and the new one needs a name of its own."""
    before = edge_plan().named("edge-vpc-origin-eu")
    moved = edge_plan(
        origins=[origin("sg", SG_ALB), origin("eu", EU_ALB.replace("/2", "/3"))]
    ).named("edge-vpc-origin-eu")
    assert before.replace_on_changes == ("vpcOriginEndpointConfig",)
    assert before.delete_before_replace is False
    assert before.custom_timeouts == {"create": 1800, "update": 1800, "delete": 1800}
    names = {r.inputs["vpcOriginEndpointConfig"]["name"] for r in (before, moved)}
    assert len(names) == 2
    assert edge_plan().named("edge-vpc-origin-eu").inputs == before.inputs  # stable


def test_https_listener_means_https_only_to_the_origin() -> None:
    plan = edge_plan(origins=[origin("sg", SG_ALB, protocol="HTTPS", port=443)], routes={})
    config = plan.one("aws:cloudfront/vpcOrigin:VpcOrigin").inputs["vpcOriginEndpointConfig"]
    assert config["originProtocolPolicy"] == "https-only"
    assert config["httpsPort"] == 443
    assert config["originSslProtocols"] == {"items": ["TLSv1.2"], "quantity": 1}


def test_public_origins_send_the_secret_header_over_https() -> None:
    plan = edge_plan(
        origins=[
            origin(
                "sg", SG_ALB, protection="public", protocol="HTTPS", port=443, origin_secret="s3"
            )
        ],
        routes={},
    )
    assert plan.of_type("aws:cloudfront/vpcOrigin:VpcOrigin") == []
    (sg,) = plan.one("aws:cloudfront/distribution:Distribution").revealed["origins"]
    assert sg["customHeaders"] == [{"name": "X-Origin-Verify", "value": "s3"}]
    assert sg["customOriginConfig"]["originProtocolPolicy"] == "https-only"
    assert sg["customOriginConfig"]["originSslProtocols"] == ["TLSv1.2"]
    assert distribution(plan)["origins"] == SECRET_PLACEHOLDER


def test_behaviours_disable_caching_forward_the_country_and_redirect_to_https() -> None:
    plan = edge_plan()
    dist = distribution(plan)
    default = dist["defaultCacheBehavior"]
    (api,) = dist["orderedCacheBehaviors"]
    assert api["pathPattern"] == "/api/*"
    function = plan.one("aws:cloudfront/function:Function")
    headers = plan.one("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy")
    for behaviour in (default, api):
        assert behaviour["targetOriginId"] == "sg"
        assert sorted(behaviour["allowedMethods"]) == sorted(
            ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
        )
        assert behaviour["viewerProtocolPolicy"] == "redirect-to-https"
        assert behaviour["cachePolicyId"] == CACHING_DISABLED_POLICY
        assert behaviour["originRequestPolicyId"] == ALL_VIEWER_AND_CLOUDFRONT_POLICY
        assert behaviour["responseHeadersPolicyId"] == headers.id
        assert behaviour["functionAssociations"] == [
            {"eventType": "viewer-request", "functionArn": function.outputs["arn"]}
        ]


def test_security_headers_policy() -> None:
    config = (
        edge_plan()
        .one("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy")
        .inputs["securityHeadersConfig"]
    )
    hsts = config["strictTransportSecurity"]
    assert hsts["accessControlMaxAgeSec"] >= 31536000
    assert hsts["includeSubdomains"] is True
    assert config["contentTypeOptions"] == {"override": True}
    assert config["frameOptions"]["frameOption"] == "DENY"
    assert config["referrerPolicy"]["referrerPolicy"] == "strict-origin-when-cross-origin"


def test_custom_origin_request_policy_forwards_the_viewer_country() -> None:
    plan = edge_plan(origin_request_policy="custom", forwarded_headers=["Authorization-Token"])
    policy = plan.one("aws:cloudfront/originRequestPolicy:OriginRequestPolicy")
    assert policy.inputs["headersConfig"]["headers"]["items"] == [
        "Authorization-Token",
        "CloudFront-Viewer-Country",
    ]
    assert distribution(plan)["defaultCacheBehavior"]["originRequestPolicyId"] == policy.id


def test_function_is_published_on_cloudfront_js_2_with_its_store() -> None:
    plan = edge_plan()
    function = plan.one("aws:cloudfront/function:Function").inputs
    store = plan.one("aws:cloudfront/keyValueStore:KeyValueStore")
    assert function["runtime"] == "cloudfront-js-2.0"
    assert function["publish"] is True
    assert function["keyValueStoreAssociations"] == [store.outputs["arn"]]
    settings = re.search(r"^const SETTINGS = (.*);$", function["code"], re.MULTILINE)
    assert settings is not None
    assert json.loads(settings.group(1)) == {
        "kvsId": kvs_id_from_arn(store.outputs["arn"]),
        "regions": ["sg", "eu"],
    }


def test_store_keys_equal_the_routing_table_and_health_keys_start_healthy() -> None:
    plan = edge_plan(drained_regions=["eu"])
    keys = {
        k.inputs["key"]: k for k in plan.of_type("aws:cloudfront/keyvaluestoreKey:KeyvaluestoreKey")
    }
    owned = {key: k.inputs["value"] for key, k in keys.items() if not key.startswith("health:")}
    assert owned == routing_table({"US": "sg", "IN": "sg", "DE": "eu"}, "sg", ["eu"])
    for region in ("sg", "eu"):
        health = keys[f"health:{region}"]
        assert health.inputs["value"] == "healthy"
        assert health.ignore_changes == ("value",)
    assert all(k.ignore_changes == () for key, k in keys.items() if not key.startswith("health:"))


def test_default_certificate_without_a_custom_domain() -> None:
    dist = distribution(edge_plan())
    assert dist["viewerCertificate"] == {"cloudfrontDefaultCertificate": True}
    assert "aliases" not in dist


def test_existing_certificate_for_a_custom_domain() -> None:
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    dist = distribution(
        edge_plan(custom_domain={"name": "api.example.com", "certificate_arn": cert})
    )
    assert dist["aliases"] == ["api.example.com"]
    assert dist["viewerCertificate"] == {
        "acmCertificateArn": cert,
        "sslSupportMethod": "sni-only",
        "minimumProtocolVersion": "TLSv1.2_2021",
    }


def test_created_certificate_lives_in_us_east_1_and_is_validated_by_dns() -> None:
    def program() -> None:
        us_east_1 = aws.Provider("aws-us-east-1", region="us-east-1")
        GeoEdge(
            "edge",
            GeoEdgeSettings(
                default_region="sg",
                custom_domain=CustomDomainSettings(
                    name="api.example.com", create_certificate=True, hosted_zone_id="Z123"
                ),
            ),
            resource_prefix="trading-infra-sg",
            origins=[origin("sg", SG_ALB)],
            certificate_provider=us_east_1,
        )

    plan = run_component(program)
    provider = plan.named("aws-us-east-1")
    certificate = plan.one("aws:acm/certificate:Certificate")
    validation = plan.one("aws:acm/certificateValidation:CertificateValidation")
    for resource in (certificate, validation):
        assert resource.provider is not None and resource.provider.startswith(provider.urn)
    assert certificate.inputs["validationMethod"] == "DNS"
    records = {r.inputs["type"]: r.inputs for r in plan.of_type("aws:route53/record:Record")}
    assert records["CNAME"]["name"] == "_0123.api.example.com."
    assert records["A"]["aliases"][0]["zoneId"] == "Z2FDTNDATAQYW2"
    assert "AAAA" in records
    dist = distribution(plan)
    assert dist["viewerCertificate"]["acmCertificateArn"] == certificate.outputs["arn"]


def test_custom_domain_without_a_certificate_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="needs `certificate_provider`"):
        edge_plan(
            custom_domain={
                "name": "api.example.com",
                "create_certificate": True,
                "hosted_zone_id": "Z123",
            }
        )


def test_a_brought_web_acl_and_a_made_one_are_not_both_attached() -> None:
    with pytest.raises(ValueError, match="attach one web ACL"):
        edge_plan(
            web_acl_arn="arn:aws:wafv2:us-east-1:123456789012:global/webacl/x/1",
            firewall_arn="arn:aws:wafv2:us-east-1:123456789012:global/webacl/made/2",
        )


def test_a_made_web_acl_is_attached_when_none_is_brought() -> None:
    made = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/made/2"
    assert distribution(edge_plan(firewall_arn=made))["webAclId"] == made


def test_routes_to_a_region_without_an_origin_are_refused() -> None:
    with pytest.raises(ValueError, match=r"without an origin: \['us'\]"):
        edge_plan(routes={"US": "us"})


def test_options_follow_the_args() -> None:
    dist = distribution(
        edge_plan(
            price_class="PriceClass_200",
            web_acl_arn="arn:aws:wafv2:us-east-1:123456789012:global/webacl/x/1",
        )
    )
    assert dist["priceClass"] == "PriceClass_200"
    assert dist["webAclId"].startswith("arn:aws:wafv2:us-east-1:")
    # Standard logging is v2, a delivery beside the distribution, never the legacy field.
    assert "loggingConfig" not in dist
    assert dist["isIpv6Enabled"] is True


def test_children_are_parented_and_tagged() -> None:
    plan = edge_plan()
    component = plan.one("trading-infra:edge:GeoEdge")
    children = [r for r in plan.resources if r is not component]
    assert {r.parent for r in children} == {component.urn}
    assert all(r.tag("component") == "edge" for r in children if is_taggable(r))


# --- the primary stack ---------------------------------------------------------------


def test_sg_edge_has_both_origins_from_the_stack_reference() -> None:
    plan = plan_sg(committed_config("sg"))
    reference = plan.one("pulumi:pulumi:StackReference")
    assert reference.name == "organization/trading-infra/eu"
    origins = [o["originId"] for o in distribution(plan)["origins"]]
    assert origins == ["sg", "eu"]
    arns = {
        v.inputs["vpcOriginEndpointConfig"]["arn"]
        for v in plan.of_type("aws:cloudfront/vpcOrigin:VpcOrigin")
    }
    assert arns == {
        plan.outputs[outputs.ALB_ARN],
        "arn:aws:lb:eu-central-1:123456789012:loadbalancer/alb-alb",
    }
    assert plan.outputs[outputs.EDGE_REGIONS] == ["sg", "eu"]


def test_without_a_fallback_reference_the_edge_has_one_origin() -> None:
    raw = with_section(committed_config("sg"), "edge", fallbackStack=None, routes={"US": "sg"})
    plan = plan_sg(raw)
    assert plan.of_type("pulumi:pulumi:StackReference") == []
    assert [o["originId"] for o in distribution(plan)["origins"]] == ["sg"]
    assert plan.outputs[outputs.EDGE_REGIONS] == ["sg"]


def test_committed_routes_reach_the_store() -> None:
    plan = plan_sg(committed_config("sg"))
    table = plan.outputs[outputs.ROUTING_TABLE]
    assert table["country:US"] == "sg" and table["country:IN"] == "sg"
    assert table["default"] == "sg"
    keys = {
        k.inputs["key"]: k.inputs["value"]
        for k in plan.of_type("aws:cloudfront/keyvaluestoreKey:KeyvaluestoreKey")
    }
    assert {k: v for k, v in keys.items() if not k.startswith("health:")} == table


def test_fallback_with_another_origin_protection_fails_the_plan() -> None:
    mismatched = {**committed_eu_outputs(), outputs.ORIGIN_PROTECTION: "public"}
    with pytest.raises(ValueError, match="protects its ALB with 'public', this stack with"):
        plan_sg(committed_config("sg"), fallback_outputs=mismatched)


def test_stack_export_of_the_get_budget_follows_the_timeouts() -> None:
    raw = with_section(
        committed_config("sg"),
        "edge",
        originTimeouts={"connectionAttempts": 2, "connectionTimeoutSeconds": 2},
    )
    assert plan_sg(raw).outputs[outputs.GET_FAILOVER_SECONDS] == 4


def test_the_published_function_routes_a_request_on_njs(tmp_path) -> None:
    """The code the sg plan publishes, byte for byte, loads and routes on njs (the engine
    family of cloudfront-js-2.0), with a stub ``cloudfront`` module and an empty store."""
    (function,) = plan_sg(committed_config("sg")).of_type("aws:cloudfront/function:Function")
    code = function.inputs["code"]
    assert code.startswith("import cf from 'cloudfront';\n")
    (tmp_path / "router.js").write_text(code + "\nexport default handler;\n")
    # njs resolves `import cf from 'cloudfront'` to a file named exactly `cloudfront`.
    (tmp_path / "cloudfront").write_text(
        "const calls = { selected: [], groups: [] };\n"
        "export default {\n"
        "    calls: calls,\n"
        "    kvs: function (id) { return { get: async function (key) {"
        " throw new Error('missing ' + key); } }; },\n"
        "    selectRequestOriginById: function (id) { calls.selected.push(id); },\n"
        "    createRequestOriginGroup: function (group) { calls.groups.push(group); },\n"
        "};\n"
    )
    (tmp_path / "main.mjs").write_text(
        "import cf from 'cloudfront';\n"
        "import handler from 'router.js';\n"
        "const event = { version: '1.0', context: { eventType: 'viewer-request' },"
        " viewer: { ip: '198.51.100.7' }, request: { method: 'GET', uri: '/api/x',"
        " querystring: {}, cookies: {}, headers: { 'cloudfront-viewer-country':"
        " { value: 'US' } } } };\n"
        "handler(event).then(function (request) { console.log(JSON.stringify({"
        " selected: cf.calls.selected, groups: cf.calls.groups,"
        " routed: request.headers['x-routed-region'] })); });\n"
    )
    result = subprocess.run(
        ["njs", "-t", "module", "-p", str(tmp_path), str(tmp_path / "main.mjs")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    routed = json.loads(result.stdout)
    assert routed["selected"] == ["sg"]
    assert routed["groups"][0]["originIds"] == [{"originId": "sg"}, {"originId": "eu"}]
    assert routed["routed"] == {"value": "sg", "multiValue": [{"value": "sg"}]}
