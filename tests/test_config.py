"""Stack config validation: every bad input named by key, all at once, before any resource."""

from __future__ import annotations

import json
from collections.abc import Collection

import pytest

import stacks
from ops.plan import plan_config
from ops.runtime import Plan, run_mocked
from stacks.config import ConfigError, RegionalStackConfig, parse_stack_config
from tests.support import ROOT, committed_config, with_section

SG = committed_config("sg")


def parse_regional(
    raw: dict[str, str], stack: str, secret_keys: Collection[str] = ()
) -> RegionalStackConfig:
    config = parse_stack_config(raw, stack, secret_keys)
    assert isinstance(config, RegionalStackConfig)
    return config


def problems(raw: dict[str, str], secret_keys: list[str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_regional(raw, "sg", secret_keys or [])
    return caught.value.problems


def only_problem(raw: dict[str, str]) -> str:
    found = problems(raw)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("stack", ["sg", "eu"])
def test_committed_stacks_are_valid(stack: str) -> None:
    config = parse_regional(committed_config(stack), stack)
    assert config.region in config.exchange_access_regions


def test_committed_vpc_ranges_are_disjoint_and_declared_as_peers() -> None:
    sg = parse_regional(committed_config("sg"), "sg").network
    eu = parse_regional(committed_config("eu"), "eu").network
    assert eu.cidr in sg.peer_cidrs
    assert sg.cidr in eu.peer_cidrs


def test_values_come_through_typed() -> None:
    config = parse_regional(SG, "sg")
    assert config.production is True
    assert config.network.az_count == 3
    assert config.network.nat == "per-az"
    assert config.registry.image_build is not None


def test_region_outside_the_exchange_allow_list_is_rejected() -> None:
    message = only_problem({**SG, "aws:region": "us-east-1"})
    assert message.startswith("aws:region: us-east-1 is not in trading-infra:exchangeAccessRegions")
    assert "Binance" in message


def test_the_allow_list_itself_is_configurable() -> None:
    raw = {
        **SG,
        "aws:region": "us-east-1",
        "trading-infra:exchangeAccessRegions": json.dumps(["us-east-1"]),
    }
    assert parse_regional(raw, "sg").region == "us-east-1"


@pytest.mark.parametrize(
    ("cidr", "expected"),
    [
        ("8.8.0.0/16", "is not a private range"),
        ("10.0.0.0/8", "is a /8; choose a prefix from /16 to /24"),
        ("10.0.0.0/25", "is a /25; choose a prefix from /16 to /24"),
        ("10.0.0.1/16", "is not an IPv4 network"),
        ("banana", "is not an IPv4 network"),
    ],
)
def test_bad_vpc_cidr_is_rejected(cidr: str, expected: str) -> None:
    message = only_problem(with_section(SG, "network", cidr=cidr, peerCidrs=[]))
    assert message.startswith("trading-infra:network.cidr: ")
    assert expected in message


def test_subnets_that_do_not_fit_are_rejected() -> None:
    raw = with_section(SG, "network", cidr="10.10.0.0/21", privateSubnetPrefix=22, peerCidrs=[])
    message = only_problem(raw)
    assert message.startswith("trading-infra:network: ")
    assert "3 private /22 and 3 public /24 subnets do not fit in 10.10.0.0/21" in message


def test_subnet_prefix_not_longer_than_the_vpc_is_rejected() -> None:
    raw = with_section(SG, "network", cidr="10.10.0.0/22", peerCidrs=[])
    message = only_problem(raw)
    assert "privateSubnetPrefix /20 must be longer than the VPC's /22" in message


def test_overlap_with_the_other_region_is_rejected() -> None:
    message = only_problem(with_section(SG, "network", cidr="10.20.0.0/16"))
    assert message.startswith("trading-infra:network: ")
    assert "overlaps peer network 10.20.0.0/16" in message


@pytest.mark.parametrize("az_count", [1, 4])
def test_az_count_outside_two_to_three_is_rejected(az_count: int) -> None:
    message = only_problem(with_section(SG, "network", azCount=az_count))
    assert message.startswith("trading-infra:network.azCount: ")


def test_unknown_top_level_key_suggests_the_nearest() -> None:
    raw = {**SG, "trading-infra:netwrk": "{}"}
    assert only_problem(raw) == (
        "trading-infra:netwrk: unknown key; did you mean 'trading-infra:network'?"
    )


def test_unknown_nested_key_suggests_the_nearest() -> None:
    raw = with_section(SG, "network", natt="single")
    assert only_problem(raw) == "trading-infra:network.natt: unknown key; did you mean 'nat'?"


def test_string_where_a_number_is_expected_is_rejected() -> None:
    message = only_problem(with_section(SG, "network", azCount="3"))
    assert message.startswith("trading-infra:network.azCount: Input should be a valid integer")
    assert "(got '3')" in message


def test_unknown_nat_strategy_lists_the_choices() -> None:
    message = only_problem(with_section(SG, "network", nat="double"))
    assert "'none', 'single' or 'per-az'" in message


def test_other_namespaces_pass_through() -> None:
    config = parse_regional({**SG, "aws:profile": "trading"}, "sg")
    assert config.region == "ap-southeast-1"


def test_missing_role_and_network_are_named() -> None:
    raw = {k: v for k, v in SG.items() if k not in ("trading-infra:role", "trading-infra:network")}
    found = problems(raw)
    assert found == [
        "trading-infra:role: not set; set one of primary, fallback, vps-fleet in Pulumi.sg.yaml"
    ]


def test_registry_build_and_image_uri_are_exclusive() -> None:
    digest = "1" * 64
    raw = with_section(SG, "registry", imageUri=f"example.org/api@sha256:{digest}")
    message = only_problem(raw)
    assert message.startswith("trading-infra:registry: build and imageUri are both set")


def test_image_uri_must_be_pinned_by_digest() -> None:
    raw = with_section(SG, "registry", build=None, imageUri="example.org/api:latest")
    assert only_problem(raw).startswith("trading-infra:registry.imageUri: ")


def test_build_context_must_exist() -> None:
    raw = with_section(SG, "registry", build={"context": "no-such-dir"})
    message = only_problem(raw)
    assert message.startswith("trading-infra:registry.build: context 'no-such-dir'")


def test_all_errors_are_reported_at_once() -> None:
    raw = with_section(
        {**SG, "aws:region": "us-east-1", "trading-infra:prodution": "true"},
        "network",
        cidr="8.8.0.0/16",
        azCount=5,
    )
    found = problems(raw)
    keys = sorted(p.split(": ", 1)[0] for p in found)
    assert keys == [
        "aws:region",
        "trading-infra:network.azCount",
        "trading-infra:network.cidr",
        "trading-infra:prodution",
    ]


def test_invalid_config_registers_no_resource() -> None:
    recorded = Plan(project="trading-infra", stack="bad")
    with pytest.raises(ConfigError):
        run_mocked(
            stacks.main,
            project="trading-infra",
            stack="bad",
            config={**SG, "aws:region": "us-east-1"},
            cwd=ROOT,
            plan=recorded,
        )
    assert recorded.resources == []


def test_valid_config_registers_resources_through_the_same_path() -> None:
    recorded = plan_config("sg", SG)
    assert len(recorded.resources) > 10


def test_config_error_is_a_pulumi_run_error() -> None:
    import pulumi

    assert issubclass(ConfigError, pulumi.RunError)


# --- regional service sections -------------------------------------------------------


def service(**changes) -> dict[str, str]:
    return with_section(SG, "service", **changes)


def test_invalid_cpu_memory_pair_names_the_allowed_values() -> None:
    message = only_problem(service(cpu=512, memory=512))
    assert message.startswith("trading-infra:service: memory 512 is not valid with cpu 512")
    assert "allows 1024 to 4096 MiB: 1024, 2048, 3072, 4096" in message


def test_unknown_cpu_size_is_rejected() -> None:
    message = only_problem(service(cpu=300))
    assert message.startswith("trading-infra:service.cpu: 300 is not a Fargate CPU size")


def test_autoscaling_min_above_max_is_rejected() -> None:
    message = only_problem(service(autoscaling={"minCount": 5, "maxCount": 3}, desiredCount=4))
    assert message == "trading-infra:service.autoscaling: minCount 5 is greater than maxCount 3"


def test_desired_count_outside_the_scaling_range_is_rejected() -> None:
    message = only_problem(service(desiredCount=20))
    assert message == "trading-infra:service: desiredCount 20 is outside autoscaling [2, 8]"


def test_desired_count_is_free_without_autoscaling() -> None:
    raw = service(desiredCount=20, autoscaling={"enabled": False})
    assert parse_regional(raw, "sg").service.desired_count == 20


def test_health_check_path_needs_a_leading_slash() -> None:
    raw = with_section(SG, "loadBalancer", healthCheck={"path": "health"})
    message = only_problem(raw)
    assert message.startswith("trading-infra:loadBalancer.healthCheck.path: 'health' must start")
    assert "'/health'" in message


def test_unknown_deployment_strategy_lists_the_choices() -> None:
    message = only_problem(service(deployment={"strategy": "RED_BLACK"}))
    assert message.startswith("trading-infra:service.deployment.strategy: ")
    assert "'ROLLING', 'BLUE_GREEN', 'CANARY' or 'LINEAR'" in message


@pytest.mark.parametrize("percent", [0, 100, -5, 150])
def test_canary_percent_outside_zero_to_hundred_is_rejected(percent: float) -> None:
    message = only_problem(service(deployment={"strategy": "CANARY", "canaryPercent": percent}))
    assert message.startswith("trading-infra:service.deployment.canaryPercent: ")
    assert "outside (0, 100)" in message


def test_public_origin_protection_without_certificate_is_rejected() -> None:
    raw = {
        **with_section(SG, "loadBalancer", originProtection="public"),
        "trading-infra:originSecret": "x",
    }
    found = problems(raw, secret_keys=["trading-infra:originSecret"])
    assert len(found) == 1
    assert found[0].startswith("trading-infra:loadBalancer: originProtection 'public' needs")


def test_public_origin_protection_without_origin_secret_is_rejected() -> None:
    raw = with_section(
        SG,
        "loadBalancer",
        originProtection="public",
        certificateArn="arn:aws:acm:ap-southeast-1:111122223333:certificate/x",
        originDomainName="origin-sg.example.com",
        createCertificate=None,
        hostedZoneId=None,
    )
    message = only_problem(raw)
    assert "trading-infra:originSecret is not set" in message
    assert "pulumi config set --secret originSecret" in message


@pytest.mark.parametrize("port", [0, 65536])
def test_port_outside_1_to_65535_is_rejected(port: int) -> None:
    message = only_problem(service(containerPort=port))
    assert message.startswith("trading-infra:service.containerPort: ")


def test_plain_text_secrets_are_rejected() -> None:
    raw = {**SG, "trading-infra:serviceSecrets": json.dumps({"BINANCE_API_KEY": "k"})}
    message = only_problem(raw)
    assert message.startswith("trading-infra:serviceSecrets: is stored in plain text")
    config = parse_regional(raw, "sg", secret_keys={"trading-infra:serviceSecrets"})
    assert config.service_secrets == {"BINANCE_API_KEY": "k"}


def test_root_user_and_credentials_in_environment_are_rejected() -> None:
    found = problems(service(user="0", environment={"AWS_SECRET_ACCESS_KEY": "x"}))
    assert any(p.startswith("trading-infra:service.user: '0' runs as root") for p in found)
    assert any(
        p.startswith("trading-infra:service.environment: AWS_SECRET_ACCESS_KEY must not be")
        for p in found
    )


def test_task_role_statement_granting_everything_is_rejected() -> None:
    raw = service(taskRoleStatements=[{"actions": ["*"], "resources": ["*"]}])
    assert "grants every action on every resource" in only_problem(raw)


def test_health_check_timeout_must_be_below_interval() -> None:
    raw = with_section(SG, "loadBalancer", healthCheck={"intervalSeconds": 5, "timeoutSeconds": 5})
    assert "timeoutSeconds 5 must be less than intervalSeconds 5" in only_problem(raw)


# --- edge ----------------------------------------------------------------------------


def edge(**changes) -> dict[str, str]:
    return with_section(SG, "edge", **changes)


def test_committed_edge_names_both_regions() -> None:
    config = parse_regional(SG, "sg")
    assert config.edge is not None
    assert config.edge.fallback_region == "eu"
    assert config.edge.routes["US"] == "sg" and config.edge.routes["IN"] == "sg"


@pytest.mark.parametrize(
    ("code", "hint"), [("UK", "UK (did you mean GB?)"), ("usa", "usa"), ("XX", "XX")]
)
def test_country_codes_must_be_iso_alpha_2(code: str, hint: str) -> None:
    message = only_problem(edge(routes={code: "sg"}))
    assert message.startswith(f"trading-infra:edge.routes: {hint}: not ISO 3166-1 alpha-2")


def test_route_to_a_region_that_is_not_an_origin_is_rejected() -> None:
    message = only_problem(edge(routes={"US": "us", "DE": "eu"}))
    assert message == (
        "trading-infra:edge: routes.US 'us': not one of the edge's origins (sg, eu); "
        "route to this stack's name or to the fallbackStack's"
    )


def test_routes_to_the_fallback_need_a_fallback_stack() -> None:
    message = only_problem(edge(fallbackStack=None))
    assert "routes.CH 'eu'" in message and "(sg)" in message


def test_default_region_is_required() -> None:
    assert only_problem(edge(defaultRegion=None)) == (
        "trading-infra:edge.defaultRegion: required but not set; set it in the stack's "
        "Pulumi.<stack>.yaml"
    )


def test_custom_domain_without_a_certificate_setting_is_rejected() -> None:
    message = only_problem(edge(customDomain={"name": "api.example.com"}))
    assert message.startswith(
        "trading-infra:edge.customDomain: needs exactly one certificate setting"
    )


def test_created_certificate_needs_a_hosted_zone() -> None:
    message = only_problem(
        edge(customDomain={"name": "api.example.com", "createCertificate": True})
    )
    assert "createCertificate needs hostedZoneId" in message


def test_custom_domain_certificate_must_be_in_us_east_1() -> None:
    cert = "arn:aws:acm:ap-southeast-1:123456789012:certificate/x"
    message = only_problem(edge(customDomain={"name": "api.example.com", "certificateArn": cert}))
    assert message.startswith("trading-infra:edge.customDomain.certificateArn: ")


def test_unknown_price_class_is_rejected() -> None:
    message = only_problem(edge(priceClass="PriceClass_Cheap"))
    assert message.startswith("trading-infra:edge.priceClass: ")
    assert "'PriceClass_All', 'PriceClass_200' or 'PriceClass_100'" in message


def test_primary_needs_an_edge_and_fallback_must_not_have_one() -> None:
    without = {k: v for k, v in SG.items() if k != "trading-infra:edge"}
    assert only_problem(without).startswith(
        "trading-infra: role 'primary' needs trading-infra:edge"
    )
    eu = committed_config("eu")
    with_edge = {**eu, "trading-infra:edge": SG["trading-infra:edge"]}
    with pytest.raises(ConfigError) as caught:
        parse_regional(with_edge, "eu")
    assert caught.value.problems == [
        "trading-infra:edge: is set but role is 'fallback'; only the primary stack has an "
        "edge. Remove it"
    ]


def test_https_origin_needs_its_domain_name() -> None:
    raw = with_section(
        SG,
        "loadBalancer",
        certificateArn="arn:aws:acm:ap-southeast-1:111122223333:certificate/x",
        createCertificate=None,
        hostedZoneId=None,
        originDomainName=None,
    )
    assert only_problem(raw).startswith(
        "trading-infra:loadBalancer.originDomainName: a certificate needs it"
    )


def test_a_created_alb_certificate_needs_its_zone_and_excludes_an_arn() -> None:
    no_zone = with_section(SG, "loadBalancer", hostedZoneId=None)
    assert only_problem(no_zone).startswith("trading-infra:loadBalancer.hostedZoneId: ")
    both = with_section(
        SG, "loadBalancer", certificateArn="arn:aws:acm:ap-southeast-1:111122223333:certificate/x"
    )
    assert only_problem(both) == (
        "trading-infra:loadBalancer.createCertificate: certificateArn is set too; keep one of "
        "the two"
    )


def test_fallback_stack_is_a_stack_name_resolved_in_the_deploying_organization() -> None:
    message = only_problem(edge(fallbackStack="organization/trading-infra/eu"))
    assert message.startswith("trading-infra:edge.fallbackStack: ")
    assert "give the stack name only (e.g. 'eu')" in message
    assert "is not a stack name" in only_problem(edge(fallbackStack="EU Frankfurt"))
    assert "is this stack" in only_problem(edge(fallbackStack="sg", routes={}))


def test_a_fallback_in_the_primary_region_is_rejected() -> None:
    regions = {"sg": "ap-southeast-1", "eu": "ap-southeast-1"}
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(SG, "sg", stack_regions=regions)
    (message,) = raised.value.problems
    assert message.startswith("trading-infra:edge.fallbackStack: stack 'eu' is in ")
    assert "Deploy the fallback to another region" in message
    parse_stack_config(SG, "sg", stack_regions={"eu": "eu-central-1"})


def test_a_route_key_yaml_read_as_a_boolean_gets_a_hint_to_quote_it() -> None:
    message = only_problem(edge(routes={"false": "eu", "US": "sg"}))
    assert "did you mean 'NO' (Norway), quoted" in message


def test_a_real_deploy_needs_the_lambda_layer_built(tmp_path) -> None:
    missing = str(tmp_path / "no-layer")
    raw = with_section(SG, "failover", layerPath=missing)
    parse_stack_config(raw, "sg")  # offline plans package nothing
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(raw, "sg", check_artifacts=True)
    (message,) = raised.value.problems
    assert message.startswith("trading-infra:failover.layerPath: ")
    assert "`make lambda-layer`" in message
    (tmp_path / "no-layer").mkdir()
    parse_stack_config(raw, "sg", check_artifacts=True)
