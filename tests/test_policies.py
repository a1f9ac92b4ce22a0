"""``ops check`` over committed and broken plans, and the Pulumi policy pack wrapping the
same rules."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    StackValidationArgs,
)

from components.vps import BOOTSTRAP, step_name
from ops.__main__ import main
from ops.check import check_plan, render
from policies import rules
from policies.rules import RULES
from tests.support import ROOT, committed_plan
from tests.test_security_baseline import BREAKS, REMOVE, broken, plans


@pytest.mark.parametrize("stack", ["sg", "eu", "vps"])
def test_ops_check_passes_every_committed_stack(
    stack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", stack]) == 0
    out = capsys.readouterr().out
    assert f"stack {stack}: {len(RULES)} rules: {len(RULES)} passed, 0 failed" in out


def test_ops_check_fails_a_broken_plan_naming_urn_and_control() -> None:
    plan_name, name, mutation = BREAKS["ecs-read-only-root"]
    result = check_plan(broken(plans()[plan_name], name, mutation))
    assert result.exit_code == 1
    assert result.failed_rules == {"ecs-read-only-root"}
    text = render("sg", result)
    assert "MANDATORY ECS.5" in text and "::api-task" in text
    assert "1 failed (mandatory, 1 violations)" in text


def test_advisory_findings_do_not_fail_the_check() -> None:
    plan_name, name, mutation = BREAKS["log-retention"]
    result = check_plan(broken(plans()[plan_name], name, mutation))
    assert result.exit_code == 0
    assert result.advisory_rules == {"log-retention"}
    assert "ADVISORY  CloudWatch.16" in render("eu", result)


def load_pack() -> dict[str, Any]:
    return runpy.run_path(str(ROOT / "policies" / "__main__.py"), run_name="policy_pack")


def policy_args(plan_name: str, mutate: tuple[str, Any] | None = None) -> StackValidationArgs:
    plan = plans()[plan_name]
    if mutate is not None:
        plan = broken(plan, *mutate)
    resources = []
    by_urn: dict[str, PolicyResource] = {}
    for resource in plan.resources:
        timeouts = resource.custom_timeouts
        options = PolicyResourceOptions(
            protect=resource.protect,
            ignore_changes=list(resource.ignore_changes),
            delete_before_replace=resource.delete_before_replace,
            aliases=[],
            additional_secret_outputs=[],
            custom_timeouts=PolicyCustomTimeouts(
                timeouts.get("create", 0), timeouts.get("update", 0), timeouts.get("delete", 0)
            ),
        )
        policy_resource = PolicyResource(
            resource_type=resource.type,
            props=resource.revealed,
            urn=resource.urn,
            name=resource.name,
            opts=options,
            provider=None,
            parent=by_urn.get(resource.parent or ""),
            dependencies=[by_urn[d] for d in resource.dependencies if d in by_urn],
            property_dependencies={},
        )
        by_urn[resource.urn] = policy_resource
        resources.append(policy_resource)
    return StackValidationArgs(resources=resources)


def run_pack(args: StackValidationArgs) -> list[tuple[str, str, str | None]]:
    found: list[tuple[str, str, str | None]] = []
    for policy in load_pack()["policies"]():
        policy.validate(
            args, lambda message, urn=None, p=policy: found.append((p.name, message, urn))
        )
    return found


def test_the_pack_has_one_policy_per_rule_at_its_level() -> None:
    policies = load_pack()["policies"]()
    assert [p.name for p in policies] == [r.name for r in RULES]
    levels = {p.name: p.enforcement_level for p in policies}
    assert levels["ecs-read-only-root"] == EnforcementLevel.MANDATORY
    assert levels["log-retention"] == EnforcementLevel.ADVISORY
    assert all(p.description.startswith(r.control) for p, r in zip(policies, RULES, strict=True))


def test_the_pack_passes_sg_and_reports_a_broken_resource() -> None:
    assert run_pack(policy_args("sg")) == []
    plan_name, name, mutation = BREAKS["alb-drop-invalid-headers"]
    assert mutation != REMOVE
    (violation,) = run_pack(policy_args(plan_name, (name, mutation)))
    assert violation[0] == "alb-drop-invalid-headers"
    assert violation[1].startswith("[ELB.4]")
    assert str(violation[2]).endswith("::alb-alb")


def test_the_pack_sees_resource_options_and_dependencies() -> None:
    """The deployability rules read options through the pack too: an ECS service that no
    longer waits for its listener rule fails there as in ops check."""
    plan = broken(plans()["eu"], *BREAKS["ecs-service-waits-for-listener-and-roles"][1:])
    assert run_pack(policy_args("eu")) == []
    (service,) = [r for r in plan.resources if r.name == "api-service"]
    resources = []
    for resource in policy_args("eu").resources:
        if resource.name == "api-service":
            resource.dependencies = [
                d for d in resource.dependencies if d.urn in service.dependencies
            ]
        resources.append(resource)
    found = run_pack(StackValidationArgs(resources=resources))
    assert [(name, urn) for name, _, urn in found] == [
        ("ecs-service-waits-for-listener-and-roles", service.urn)
    ]


def test_the_pack_declares_its_runtime() -> None:
    manifest = (ROOT / "policies" / "PulumiPolicy.yaml").read_text()
    assert "runtime: python" in manifest
    assert "pulumi-policy" in (ROOT / "policies" / "requirements.txt").read_text()
    assert Path(ROOT / "policies" / "rules.py").read_text().count("import pulumi") == 0


def test_plan_of_vps_is_checked_with_secret_connections_revealed() -> None:
    plan = committed_plan("vps")
    (bootstrap,) = [r for r in plan.resources if r.name == "cdmx-bootstrap"]
    assert bootstrap.inputs["connection"] == "[secret]"
    assert check_plan(plan).exit_code == 0


def test_the_pack_names_the_bootstrap_step_as_the_component_does() -> None:
    """The pack spells the name out (it imports only the standard library); a rename in
    the component must fail here, not leave TI.VPS.2 matching nothing."""
    assert step_name("", BOOTSTRAP) == rules.BOOTSTRAP_SUFFIX
    bootstraps = [
        r.urn
        for r in committed_plan("vps").resources
        if r.type == "command:remote:Command" and r.urn.endswith(rules.BOOTSTRAP_SUFFIX)
    ]
    assert len(bootstraps) == 3
