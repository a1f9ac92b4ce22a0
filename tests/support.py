"""Helpers shared by the tests: run components and stacks under the plan mocks."""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import keyword
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from ops.plan import plan_config, plan_stack
from ops.runtime import MOCK_ORGANIZATION, Plan, PlannedResource, run_mocked
from ops.stackfiles import read_stack_config
from stacks.config import PROJECT, REQUIRED_SECRETS, ConfigError, parse_stack_config

ROOT = Path(__file__).resolve().parent.parent


def run_component(program: Callable[[], None], region: str = "ap-southeast-1") -> Plan:
    """Run ``program`` (which creates components) as a throwaway stack in ``region``."""
    return run_mocked(
        program, project=PROJECT, stack="test", config={"aws:region": region}, cwd=ROOT
    )


M = TypeVar("M", bound=BaseModel)


def split_settings(model: type[M], overrides: dict[str, Any]) -> tuple[M, dict]:
    """A component's keyword overrides, parted into its settings model and its wiring."""
    settings = {key: value for key, value in overrides.items() if key in model.model_fields}
    wiring = {key: value for key, value in overrides.items() if key not in settings}
    return model.model_validate(settings), wiring


def committed_config(stack: str) -> dict[str, str]:
    """The committed stack's config, as the engine would hand it to the program."""
    return dict(read_stack_config(ROOT, stack).values)


def with_section(raw: dict[str, str], section: str, **changes: Any) -> dict[str, str]:
    """A copy of ``raw`` whose object-valued ``section`` has ``changes`` merged in;
    a change to ``None`` removes that key."""
    key = f"{PROJECT}:{section}"
    value = json.loads(raw.get(key, "{}"))
    value.update(changes)
    value = {k: v for k, v in value.items() if v is not None}
    return {**raw, key: json.dumps(value)}


FLEET_SECRETS = {f"{PROJECT}:{key}": "placeholder" for key in REQUIRED_SECRETS["vps-fleet"]}
"""The vps stack's required secrets, each a placeholder: what a fleet config test adds."""


def fleet_config_problems(
    raw: dict[str, str], secret_keys: tuple[str, ...] = (), check_artifacts: bool = False
) -> list[str]:
    """Every problem the vps stack's config ``raw`` (with FLEET_SECRETS added) is
    refused for; fails when it is accepted."""
    keys = [*FLEET_SECRETS, *secret_keys]
    with pytest.raises(ConfigError) as caught:
        parse_stack_config({**FLEET_SECRETS, **raw}, "vps", keys, check_artifacts=check_artifacts)
    return caught.value.problems


FALLBACK_STACK = f"{MOCK_ORGANIZATION}/{PROJECT}/eu"
"""The committed sg stack's reference to eu."""


@cache
def _planned(stack: str) -> Plan:
    return plan_stack(stack)


def committed_plan(stack: str) -> Plan:
    """The committed ``stack``'s plan, planned once per test process (a plan costs
    seconds; dozens of tests read one). A copy each time, so no test sees another's
    edits."""
    return copy.deepcopy(_planned(stack))


def committed_eu_outputs() -> dict[str, Any]:
    """The eu stack's planned outputs: what sg's StackReference reads."""
    return committed_plan("eu").outputs


def plan_sg(
    raw: dict[str, str],
    secret_keys: list[str] | None = None,
    fallback_outputs: dict[str, Any] | None = None,
) -> Plan:
    """Plan ``raw`` as the sg stack, its fallback reference answered by ``fallback_outputs``
    (default: the committed eu stack's outputs, planned once per test session)."""
    outputs = fallback_outputs if fallback_outputs is not None else committed_eu_outputs()
    return plan_config("sg", raw, secret_keys or [], stack_outputs={FALLBACK_STACK: outputs})


@cache
def aws_class(type_token: str) -> type:
    """``aws:ec2/vpc:Vpc`` -> ``pulumi_aws.ec2.Vpc``."""
    _, module_path, class_name = type_token.split(":")
    module = module_path.split("/")[0]
    # Python keywords get a trailing underscore (aws:lambda/... -> pulumi_aws.lambda_).
    module = f"{module}_" if keyword.iskeyword(module) else module
    package = importlib.import_module("pulumi_aws" if module == "index" else f"pulumi_aws.{module}")
    return getattr(package, class_name)


def is_taggable(resource: PlannedResource) -> bool:
    """Whether the resource's pulumi-aws class accepts ``tags``."""
    if not resource.type.startswith("aws:"):
        return False
    cls = aws_class(resource.type)
    return "tags" in inspect.signature(cls._internal_init).parameters  # type: ignore[attr-defined]


def ingress_cidrs(resource: PlannedResource) -> list[str]:
    """Every IPv4/IPv6 CIDR a security group (inline rules) admits."""
    cidrs: list[str] = []
    for rule in resource.inputs.get("ingress", []):
        cidrs += rule.get("cidrBlocks", []) + rule.get("ipv6CidrBlocks", [])
    return cidrs
