"""LoadBalancer: origin protection modes, listeners, the production rule, target groups."""

from __future__ import annotations

import pytest

from components.load_balancer import (
    CLOUDFRONT_PREFIX_LIST,
    HealthCheckSettings,
    LoadBalancer,
    LoadBalancerSettings,
)
from ops.runtime import SECRET_PLACEHOLDER, Plan, PlanMocks, run_mocked
from stacks.config import PROJECT
from tests.support import ROOT, ingress_cidrs, is_taggable, run_component, split_settings

CERT = "arn:aws:acm:ap-southeast-1:111122223333:certificate/abc"
PREFIX_LIST = "pl-ap-southeast-1-cloudfront"


def lb_plan(**overrides) -> Plan:
    settings, wiring = split_settings(LoadBalancerSettings, overrides)
    return run_component(
        lambda: (
            LoadBalancer(
                "lb",
                settings,
                vpc_id="vpc-1",
                vpc_cidr="10.10.0.0/16",
                subnet_ids=["subnet-a", "subnet-b"],
                target_port=8000,
                **wiring,
            )
            and None
        )
    )


def public_plan(**overrides) -> Plan:
    return lb_plan(
        origin_protection="public", certificate_arn=CERT, origin_secret="s3cret", **overrides
    )


def listeners(plan: Plan) -> dict[int, dict]:
    return {lst.inputs["port"]: lst.inputs for lst in plan.of_type("aws:lb/listener:Listener")}


def test_vpc_origin_mode_is_an_internal_alb_on_http() -> None:
    plan = lb_plan()
    alb = plan.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert alb["internal"] is True
    assert alb["subnets"] == ["subnet-a", "subnet-b"]
    assert list(listeners(plan)) == [80]
    assert listeners(plan)[80]["protocol"] == "HTTP"


def test_vpc_origin_with_a_certificate_listens_on_https() -> None:
    plan = lb_plan(certificate_arn=CERT)
    listener = listeners(plan)[443]
    assert listener["protocol"] == "HTTPS"
    assert listener["certificateArn"] == CERT
    assert listener["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"


def test_alb_hardening_defaults() -> None:
    alb = lb_plan().one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert alb["dropInvalidHeaderFields"] is True
    assert alb["desyncMitigationMode"] == "defensive"
    assert alb["enableDeletionProtection"] is True
    assert alb["idleTimeout"] == 60
    assert "accessLogs" not in alb


def test_alb_options_follow_the_args() -> None:
    alb = (
        lb_plan(
            desync_mitigation_mode="strictest",
            deletion_protection=False,
            idle_timeout_seconds=30,
            access_logs_bucket="logs-bucket",
            access_logs_prefix="sg",
        )
        .one("aws:lb/loadBalancer:LoadBalancer")
        .inputs
    )
    assert alb["desyncMitigationMode"] == "strictest"
    assert alb["enableDeletionProtection"] is False
    assert alb["idleTimeout"] == 30
    assert alb["accessLogs"] == {"bucket": "logs-bucket", "prefix": "sg", "enabled": True}


@pytest.mark.parametrize("mode", ["vpc-origin", "public"])
def test_ingress_only_from_cloudfront_and_egress_only_to_the_vpc(mode: str) -> None:
    plan = public_plan() if mode == "public" else lb_plan()
    group = plan.one("aws:ec2/securityGroup:SecurityGroup").inputs
    assert ingress_cidrs(plan.one("aws:ec2/securityGroup:SecurityGroup")) == []
    assert {tuple(rule["prefixListIds"]) for rule in group["ingress"]} == {(PREFIX_LIST,)}
    # One rule only: each prefix-list reference weighs 55 of the group's 60 rules.
    ports = [rule["fromPort"] for rule in group["ingress"]]
    assert ports == ([443] if mode == "public" else [80])
    assert [(e["fromPort"], e["toPort"], e["cidrBlocks"]) for e in group["egress"]] == [
        (8000, 8000, ["10.10.0.0/16"])
    ]


def test_public_mode_listens_on_https_only_and_requires_the_secret_header() -> None:
    plan = public_plan()
    assert plan.one("aws:lb/loadBalancer:LoadBalancer").inputs["internal"] is False
    by_port = listeners(plan)
    assert list(by_port) == [443]
    assert by_port[443]["protocol"] == "HTTPS"
    rule = plan.one("aws:lb/listenerRule:ListenerRule")
    # The condition carries the secret, so the engine stores the whole list encrypted.
    assert rule.inputs["conditions"] == SECRET_PLACEHOLDER
    header = rule.revealed["conditions"][0]["httpHeader"]
    assert header == {"httpHeaderName": "X-Origin-Verify", "values": ["s3cret"]}


def test_requests_without_a_matching_rule_get_403() -> None:
    for plan in (lb_plan(), public_plan()):
        listener = plan.named("lb-listener").inputs
        action = listener["defaultActions"][0]
        assert action["type"] == "fixed-response"
        assert action["fixedResponse"]["statusCode"] == "403"


@pytest.mark.parametrize(
    "overrides",
    [{"origin_protection": "public"}, {"origin_protection": "public", "certificate_arn": CERT}],
)
def test_public_mode_without_certificate_or_secret_is_refused(overrides: dict) -> None:
    with pytest.raises(ValueError, match="needs `origin_secret`, and `certificate_arn`"):
        lb_plan(**overrides)


def test_target_group_is_ip_with_the_health_check_and_fast_deregistration() -> None:
    plan = lb_plan(
        health_check={"path": "/ready", "interval_seconds": 15, "healthy_threshold": 3},
        deregistration_delay_seconds=20,
    )
    group = plan.one("aws:lb/targetGroup:TargetGroup").inputs
    assert group["targetType"] == "ip"
    assert group["port"] == 8000
    assert group["deregistrationDelay"] == 20
    check = group["healthCheck"]
    assert (check["path"], check["interval"], check["healthyThreshold"]) == ("/ready", 15, 3)
    assert (check["timeout"], check["unhealthyThreshold"], check["matcher"]) == (5, 2, "200")


def test_rolling_has_one_target_group_and_pulumi_owns_the_rule() -> None:
    plan = lb_plan()
    assert len(plan.of_type("aws:lb/targetGroup:TargetGroup")) == 1
    rule = plan.one("aws:lb/listenerRule:ListenerRule")
    assert rule.ignore_changes == ()
    assert rule.inputs["actions"][0]["forward"]["targetGroups"] == [
        {"arn": "arn:aws:lb:ap-southeast-1:123456789012:targetgroup/lb-tg", "weight": 100}
    ]


def test_alternate_target_group_starts_at_weight_zero_and_ecs_owns_the_weights() -> None:
    plan = lb_plan(alternate_target_group=True)
    assert len(plan.of_type("aws:lb/targetGroup:TargetGroup")) == 2
    rule = plan.one("aws:lb/listenerRule:ListenerRule")
    weights = {
        g["arn"].rsplit("/", 1)[1]: g["weight"]
        for g in rule.inputs["actions"][0]["forward"]["targetGroups"]
    }
    assert weights == {"lb-tg": 100, "lb-tg-alt": 0}
    assert rule.ignore_changes == ("actions",)


def test_prefix_list_is_cloudfronts_origin_facing_list() -> None:
    assert CLOUDFRONT_PREFIX_LIST == "com.amazonaws.global.cloudfront.origin-facing"


def test_children_are_parented_and_tagged() -> None:
    plan = public_plan(alternate_target_group=True)
    component = plan.one("trading-infra:load_balancer:LoadBalancer")
    children = [r for r in plan.resources if r is not component]
    assert {r.parent for r in children} == {component.urn}
    assert all(r.tag("component") == "load_balancer" for r in children if is_taggable(r))


# --- bring your own listener --------------------------------------------------------------

LISTENER = (
    "arn:aws:elasticloadbalancing:ap-southeast-1:111122223333:listener/app/shared/"
    "50dc6c495c0c9188/f2f7dc8efc522ab2"
)
BALANCER = (
    "arn:aws:elasticloadbalancing:ap-southeast-1:111122223333:loadbalancer/app/shared/"
    "50dc6c495c0c9188"
)


class ExistingMocks(PlanMocks):
    """The plan mocks, with the existing listener and ALB described as ``changes`` say."""

    def __init__(self, listener: dict, balancer: dict) -> None:
        super().__init__("ap-southeast-1")
        self.listener, self.balancer = listener, balancer

    def existing_listener(self, arn: str) -> dict:
        return {**super().existing_listener(arn), **self.listener}

    def existing_load_balancer(self, arn: str) -> dict:
        return {**super().existing_load_balancer(arn), **self.balancer}


def existing_plan(
    *,
    listener: dict | None = None,
    balancer: dict | None = None,
    vpc_id: str = "network-vpc-id",
    plan: Plan | None = None,
    **overrides,
) -> Plan:
    settings, wiring = split_settings(LoadBalancerSettings, {"listener_arn": LISTENER, **overrides})
    mocks = ExistingMocks(listener or {}, balancer or {})
    return run_mocked(
        lambda: (
            LoadBalancer(
                "lb",
                settings,
                vpc_id=vpc_id,
                vpc_cidr="10.10.0.0/16",
                subnet_ids=["subnet-a"],
                target_port=8000,
                **wiring,
            )
            and None
        ),
        project=PROJECT,
        stack="test",
        config={"aws:region": "ap-southeast-1"},
        cwd=ROOT,
        plan=plan,
        mocks_for=lambda region, outputs: mocks,
    )


def test_an_existing_listener_gets_the_rule_and_target_groups_and_nothing_else() -> None:
    plan = existing_plan(alternate_target_group=True, production_rule_priority=120)
    types = {r.type for r in plan.resources if r.custom}
    assert types == {"aws:lb/targetGroup:TargetGroup", "aws:lb/listenerRule:ListenerRule"}
    rule = plan.one("aws:lb/listenerRule:ListenerRule").inputs
    assert rule["listenerArn"] == LISTENER
    assert rule["priority"] == 120
    for group in plan.of_type("aws:lb/targetGroup:TargetGroup"):
        assert group.inputs["vpcId"] == "network-vpc-id"


def test_the_lookups_answer_what_the_stack_wires() -> None:
    seen: dict = {}

    def program() -> None:
        settings = LoadBalancerSettings(listener_arn=LISTENER)
        lb = LoadBalancer(
            "lb", settings, vpc_id="network-vpc-id", vpc_cidr="10.10.0.0/16",
            subnet_ids=["subnet-a"], target_port=8000,
        )  # fmt: skip
        seen.update(protocol=lb.listener_protocol, port=lb.listener_port)
        lb.arn_suffix.apply(lambda v: seen.update(suffix=v))
        lb.dns_name.apply(lambda v: seen.update(dns=v))
        lb.security_group_ids.apply(lambda v: seen.update(groups=v))

    run_mocked(
        program, project=PROJECT, stack="test", config={"aws:region": "ap-southeast-1"},
        cwd=ROOT, mocks_for=lambda region, outputs: ExistingMocks(
            {"port": 8443}, {"securityGroups": ["sg-1", "sg-2"]}
        ),
    )  # fmt: skip
    assert seen == {
        "protocol": "HTTPS",
        "port": 8443,
        "suffix": BALANCER.partition(":loadbalancer/")[2],
        "dns": "internal-shared-1234567890.ap-southeast-1.elb.amazonaws.com",
        "groups": ["sg-1", "sg-2"],
    }


@pytest.mark.parametrize(
    ("mode", "listener", "balancer", "problem"),
    [
        ("vpc-origin", {}, {"internal": False}, "is internet-facing"),
        ("public", {"protocol": "HTTP"}, {}, "listens on HTTP"),
    ],
)
def test_an_existing_listener_that_cannot_serve_the_mode_is_refused(
    mode: str, listener: dict, balancer: dict, problem: str
) -> None:
    plan = Plan(project=PROJECT, stack="test")
    with pytest.raises(ValueError, match=problem):
        existing_plan(
            listener=listener, balancer=balancer, origin_protection=mode,
            origin_secret="s3cret", plan=plan,
        )  # fmt: skip
    assert not plan.of_type("aws:lb/listenerRule:ListenerRule")


def test_an_alb_in_another_vpc_gets_no_target_group() -> None:
    plan = Plan(project=PROJECT, stack="test")
    with pytest.raises(Exception, match="belongs to an ALB in network-vpc-id, not the stack"):
        existing_plan(vpc_id="vpc-elsewhere", plan=plan)
    assert not plan.of_type("aws:lb/targetGroup:TargetGroup")


def test_settings_of_the_balancer_are_refused_with_an_existing_listener() -> None:
    with pytest.raises(ValueError) as error:
        LoadBalancerSettings(listener_arn=LISTENER, ssl_policy="x", idle_timeout_seconds=30)
    assert "@sslPolicy: has no effect with listenerArn" in str(error.value)
    assert "@idleTimeoutSeconds: has no effect with listenerArn" in str(error.value)
    # Their defaults are fine; a network load balancer's listener is not an ALB's.
    LoadBalancerSettings(listener_arn=LISTENER, health_check=HealthCheckSettings(path="/ready"))
    with pytest.raises(ValueError, match="listener_arn"):
        LoadBalancerSettings(listener_arn=LISTENER.replace("listener/app/", "listener/net/"))
