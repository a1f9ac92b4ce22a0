"""Rollouts of the fleet: one host at a time in ``fleet.rolloutOrder``, each host's
services updated only once the previous host's health check passed, and per-host image
overrides for a canary. Asserted on the plan's dependencies and inputs; the rehearsal
(tests/rehearsal) runs a failing canary over real SSH."""

from __future__ import annotations

import dataclasses
import itertools
import json
from functools import cache
from typing import Any

import yaml

from components.compose import ROLES, ilp_auth_file, render_compose
from components.settings import camel
from components.vps import (
    COMPOSE_FILE,
    COMPOSE_UP,
    ENV_FILE,
    HEALTH,
    WIREGUARD,
    sha256,
    step_name,
)
from ops.plan import host_changes, plan_config, plan_document, render_text
from ops.runtime import Plan
from stacks import outputs
from stacks.config import FleetStackConfig, parse_stack_config
from stacks.fleet import services_of
from tests.support import FLEET_SECRETS, committed_config, committed_plan, fleet_config_problems

VPS = committed_config("vps")
FLEET: dict[str, Any] = json.loads(VPS["trading-infra:fleet"])
CANARY_IMAGE = "ghcr.io/trading-platform/trading-service:1.1.0@sha256:" + "ab" * 32
GATED = (COMPOSE_FILE, ENV_FILE, COMPOSE_UP)
"""The steps of a host that wait for the previous host's health check."""


def with_fleet(**changes: Any) -> dict[str, str]:
    fleet = {**FLEET, **changes}
    return {**VPS, "trading-infra:fleet": json.dumps({k: v for k, v in fleet.items() if v})}


def with_images(host: str, images: dict[str, str], **changes: Any) -> dict[str, str]:
    hosts = [dict(h, images=images) if h["name"] == host else h for h in FLEET["hosts"]]
    return with_fleet(hosts=hosts, **changes)


problems = fleet_config_problems


def parsed(raw: dict[str, str]) -> FleetStackConfig:
    config = parse_stack_config({**FLEET_SECRETS, **raw}, "vps", list(FLEET_SECRETS))
    assert isinstance(config, FleetStackConfig)
    return config


@cache
def _plan(raw_json: str) -> Plan:
    return plan_config("vps", json.loads(raw_json))


def plan_of(raw: dict[str, str]) -> Plan:
    return _plan(json.dumps(raw, sort_keys=True))


def gate_of(plan: Plan, host: str) -> set[str]:
    """The health steps of other hosts that ``host``'s gated steps wait for."""
    healths = {r.urn: r.name for r in plan.resources if r.name.endswith(f"-{HEALTH}")}
    own = plan.named(step_name(host, HEALTH)).urn
    found = set()
    for step in GATED:
        found |= {
            healths[d] for d in plan.named(step_name(host, step)).dependencies if d in healths
        }
    return found - {healths[own]}


# --- config --------------------------------------------------------------------------


def test_the_committed_fleet_rolls_out_chicago_first_and_the_hub_last() -> None:
    plan = committed_plan("vps")
    assert plan.outputs[outputs.FLEET_ROLLOUT] == ["chicago", "nj", "cdmx"]


def test_without_a_rollout_order_the_hosts_roll_out_in_their_listed_order() -> None:
    config = parsed(with_fleet(rolloutOrder=None))
    assert [h.name for h in config.fleet.rollout] == [h["name"] for h in FLEET["hosts"]]


def test_a_bad_rollout_order_is_rejected_naming_every_problem_at_once() -> None:
    found = problems(with_fleet(rolloutOrder=["chicago", "chicago", "london"]))
    assert sorted(found) == [
        "trading-infra:fleet.rolloutOrder: 'chicago' is listed 2 times; list every host once",
        "trading-infra:fleet.rolloutOrder: 'london' is not a host; use the names of hosts "
        "(cdmx, chicago, nj)",
        "trading-infra:fleet.rolloutOrder: cdmx, nj missing; list every host once, the canary "
        "first (or remove rolloutOrder to deploy in the order of hosts)",
    ]


def test_an_image_override_must_be_an_image_the_hosts_role_runs() -> None:
    found = problems(
        with_images(
            "chicago",
            {
                "grafana": "grafana/grafana:11.5.0@sha256:" + "0" * 64,
                "tradingServices": CANARY_IMAGE,
            },
        )
    )
    assert sorted(found) == [
        "trading-infra:fleet.hosts[1].images.grafana: host chicago (futures) does not run it; "
        "its images are tradingService, marketData, redis, nodeExporter",
        "trading-infra:fleet.hosts[1].images.tradingServices: not an image of fleet.images; "
        "use one of tradingService, marketData, redis, nodeExporter",
    ]


def test_an_image_override_must_be_pinned_by_digest() -> None:
    (found,) = problems(
        with_images("chicago", {"marketData": "ghcr.io/trading-platform/market-data:1.1.0"})
    )
    assert found.startswith("trading-infra:fleet.hosts[1].images.marketData: ")
    assert "is not pinned by digest" in found


def test_a_host_runs_the_fleets_images_with_its_own_over_them() -> None:
    config = parsed(with_images("chicago", {"tradingService": CANARY_IMAGE}))
    fleet = config.fleet
    by_name = {h.name: h for h in fleet.hosts}
    chicago, nj = fleet.images_of(by_name["chicago"]), fleet.images_of(by_name["nj"])
    assert chicago["trading_service"] == CANARY_IMAGE
    assert nj["trading_service"] == fleet.images.trading_service != CANARY_IMAGE
    assert chicago["market_data"] == nj["market_data"] == fleet.images.market_data
    for host in fleet.hosts:
        assert tuple(fleet.images_of(host)) == ROLES[host.role].images


def test_each_roles_images_are_exactly_those_its_compose_file_runs() -> None:
    """``ROLES[role].images`` decides which overrides a host may have: it must be what
    the role's compose file runs."""
    config = parsed(VPS)
    keys = list(config.fleet.images.model_dump())
    images = {key: f"example/{key}:1@sha256:{index:064x}" for index, key in enumerate(keys)}
    services = dataclasses.replace(services_of(config), images=images)
    writers = ilp_auth_file([f"chicago ec-p-256-sha256 {'A' * 43} {'B' * 43}"])
    for role, spec in ROLES.items():
        text = render_compose(role, "10.99.0.9", services, writers)
        used = {service["image"] for service in yaml.safe_load(text)["services"].values()}
        assert used == {images[key] for key in spec.images}, role


# --- the plan ------------------------------------------------------------------------


def test_each_hosts_services_wait_for_the_previous_hosts_health_check() -> None:
    plan = committed_plan("vps")
    order = plan.outputs[outputs.FLEET_ROLLOUT]
    assert gate_of(plan, order[0]) == set()
    for previous, host in itertools.pairwise(order):
        for step in GATED:
            assert plan.named(step_name(previous, HEALTH)).urn in (
                plan.named(step_name(host, step)).dependencies
            ), f"{host}-{step} does not wait for {previous}'s health check"
        # Only the previous one: the chain, not a fan-in.
        assert gate_of(plan, host) == {step_name(previous, HEALTH)}


def test_the_mesh_is_not_held_back_by_the_rollout() -> None:
    plan = committed_plan("vps")
    healths = {r.urn for r in plan.resources if r.name.endswith(f"-{HEALTH}")}
    for host in plan.outputs[outputs.FLEET_ROLLOUT]:
        assert not healths & set(plan.named(step_name(host, WIREGUARD)).dependencies)


def test_the_order_follows_the_config() -> None:
    plan = plan_of(with_fleet(rolloutOrder=["cdmx", "nj", "chicago"]))
    assert gate_of(plan, "cdmx") == set()
    assert gate_of(plan, "nj") == {"cdmx-health"}
    assert gate_of(plan, "chicago") == {"nj-health"}


def compose_images(raw: dict[str, str], plan: Plan, host: str) -> dict[str, str]:
    """The images of the compose file ``plan`` copies to execution ``host`` (the plan
    holds its digest: the file is rendered here and held to it)."""
    config = parsed(raw)
    spec = next(h for h in config.fleet.hosts if h.name == host)
    own = dataclasses.replace(services_of(config), images=config.fleet.images_of(spec))
    text = render_compose(spec.role, spec.wireguard_address, own)
    planned = plan.named(step_name(host, COMPOSE_FILE)).inputs["source"]["stringAsset"]
    assert planned == sha256(text), f"{host}: the plan copies another compose file"
    services = yaml.safe_load(text)["services"]
    return {name: service["image"] for name, service in services.items()}


def test_a_canary_override_changes_that_hosts_compose_file_alone() -> None:
    base = committed_plan("vps")
    raw = with_images("chicago", {"tradingService": CANARY_IMAGE})
    canary = plan_of(raw)
    assert compose_images(raw, canary, "chicago")["trading-service"] == CANARY_IMAGE
    assert compose_images(raw, canary, "nj")["trading-service"] != CANARY_IMAGE
    before, after = plan_document(base), plan_document(canary)
    assert host_changes(before, after, "chicago") == [COMPOSE_FILE]
    assert host_changes(before, after, "nj") == host_changes(before, after, "cdmx") == []
    assert canary.outputs[outputs.FLEET_IMAGES]["chicago"][camel("trading_service")] == (
        CANARY_IMAGE
    )


def test_widening_the_release_leaves_the_canary_unchanged() -> None:
    """After the canary, the release goes fleet-wide and the override is removed: the
    canary already runs it, so only the others change."""
    canary = plan_of(with_images("chicago", {"tradingService": CANARY_IMAGE}))
    widened = plan_of(with_fleet(images={**FLEET["images"], "tradingService": CANARY_IMAGE}))
    before, after = plan_document(canary), plan_document(widened)
    assert host_changes(before, after, "chicago") == []
    assert host_changes(before, after, "nj") == [COMPOSE_FILE]
    assert host_changes(before, after, "cdmx") == []


def test_ops_plan_shows_the_order_what_changes_and_the_mixed_versions() -> None:
    base = plan_document(committed_plan("vps"))
    canary = plan_of(with_images("chicago", {"tradingService": CANARY_IMAGE}))
    text = render_text(canary, base)
    lines = text.splitlines()
    start = lines.index(
        "  rollout, one host at a time, each once the previous host's health check passed:"
    )
    assert lines[start + 1 : start + 6] == [
        "    1. chicago (canary): changes compose-file",
        "    2. nj: unchanged",
        "    3. cdmx: unchanged",
        "  images not the same on every host that runs them:",
        "    tradingService: chicago trading-service:1.1.0@sha256:abababababab, "
        "nj trading-service:1.0.0@sha256:dc4265f4992f",
    ]
    # Without a base: the order alone, and no mixed versions on the committed fleet.
    plain = render_text(committed_plan("vps")).splitlines()
    start = plain.index(lines[start])
    assert plain[start + 1 : start + 4] == ["    1. chicago (canary)", "    2. nj", "    3. cdmx"]
    assert "  images not the same on every host that runs them:" not in plain
