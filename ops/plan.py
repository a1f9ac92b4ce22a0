"""``python -m ops plan STACK [--json]``: the stack's resources, offline."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ops.runtime import (
    MOCK_ORGANIZATION,
    SECRET_PLACEHOLDER,
    Plan,
    PlanMocks,
    PlannedResource,
    run_mocked,
)
from ops.stackfiles import StackFileError, read_project, read_stack_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SOURCES = ("stacks", "components", "ops", "app")
"""What a plan is made from, besides the stack files and the installed Pulumi packages."""
OUTPUTS_CACHE = Path("build") / "plan-outputs"
"""Where a stack's planned outputs are kept for the StackReferences of other plans."""


def source_key(stack: str, root: Path = PROJECT_ROOT) -> str:
    """A digest of everything a stack's plan depends on: the program's sources, the
    project and stack files, and the Pulumi packages' versions. A change to any of them
    is a new key, so a cached output is never stale."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    files = [root / "Pulumi.yaml", root / f"Pulumi.{stack}.yaml"]
    for top in SOURCES:
        files += sorted(
            p for p in (root / top).rglob("*") if p.is_file() and "__pycache__" not in p.parts
        )
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"(absent)")
        digest.update(b"\0")
    for package in ("pulumi", "pulumi-aws", "pulumi-docker", "pulumi-command"):
        digest.update(f"{package}=={version(package)}\0".encode())
    return digest.hexdigest()[:32]


def _cache_path(stack: str, root: Path) -> Path:
    return root / OUTPUTS_CACHE / f"{stack}-{source_key(stack, root)}.json"


def save_outputs(plan: Plan, root: Path = PROJECT_ROOT) -> None:
    """Keep ``plan``'s outputs for the plans that reference its stack (best effort: a
    read-only checkout plans all the same, only slower)."""
    path = _cache_path(plan.stack, root)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for old in path.parent.glob(f"{plan.stack}-*.json"):
            old.unlink(missing_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(plan.outputs, sort_keys=True))
        temporary.replace(path)
    except OSError:
        pass


def planned_outputs(stack: str, root: Path = PROJECT_ROOT) -> Mapping[str, Any]:
    """``stack``'s planned outputs: kept from its last plan of the same sources, else
    planned now (and kept). ``ops plan sg`` then costs sg's own resources only."""
    try:
        return json.loads(_cache_path(stack, root).read_text())
    except (OSError, ValueError):
        pass
    plan = plan_stack(stack, root)
    save_outputs(plan, root)
    return plan.outputs


def plan_stack(stack: str, root: Path = PROJECT_ROOT) -> Plan:
    """Run the program for ``stack`` with its own config file under the mock runtime."""
    config = read_stack_config(root, stack)
    return plan_config(stack, config.values, config.secret_keys, root)


def plan_config(
    stack: str,
    values: Mapping[str, str],
    secret_keys: Sequence[str] = (),
    root: Path = PROJECT_ROOT,
    stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
    mocks_for: Callable[[str, Mapping[str, Mapping[str, Any]] | None], PlanMocks] | None = None,
) -> Plan:
    """Run the program as ``stack`` with the given engine-style config.

    A StackReference to another stack of this project is answered with that stack's own
    planned outputs (unless ``stack_outputs`` gives them), so the edge is planned against
    the fallback's real output shape. Raises ``ConfigError`` when the config is invalid.
    """
    import stacks
    from stacks.config import PROJECT, REQUIRED_SECRETS, local_stack_regions, parse_stack_config

    # Required secrets are never committed: plan with a placeholder in their place.
    role = values.get(f"{PROJECT}:role", "")
    missing = [
        f"{PROJECT}:{key}"
        for key in REQUIRED_SECRETS.get(role, ())
        if f"{PROJECT}:{key}" not in values
    ]
    values = {**values, **dict.fromkeys(missing, SECRET_PLACEHOLDER)}
    secret_keys = [*secret_keys, *missing]
    typed = parse_stack_config(values, stack, secret_keys, stack_regions=local_stack_regions(root))
    references: dict[str, Mapping[str, Any]] = dict(stack_outputs or {})
    edge = getattr(typed, "edge", None)
    project = read_project(root)["name"]
    fallback = edge.fallback_stack if edge is not None else None
    reference = f"{MOCK_ORGANIZATION}/{project}/{fallback}"
    if fallback is not None and reference not in references:
        if not (root / f"Pulumi.{fallback}.yaml").is_file():
            raise StackFileError(
                f"edge.fallbackStack {fallback!r} has no local "
                f"Pulumi.{fallback}.yaml to plan it from"
            )
        references[reference] = planned_outputs(fallback, root)
    plan = run_mocked(
        stacks.main,
        project=project,
        stack=stack,
        config=values,
        secret_keys=list(secret_keys),
        cwd=root,
        stack_outputs=references,
        mocks_for=mocks_for,
    )
    plan.placeholders = missing
    return plan


def _options(resource: PlannedResource) -> dict[str, Any]:
    """The resource options that change how a deploy treats the resource."""
    options: dict[str, Any] = {}
    if resource.ignore_changes:
        options["ignoreChanges"] = list(resource.ignore_changes)
    if resource.replace_on_changes:
        options["replaceOnChanges"] = list(resource.replace_on_changes)
    if resource.delete_before_replace:
        options["deleteBeforeReplace"] = True
    if resource.custom_timeouts:
        options["customTimeouts"] = resource.custom_timeouts
    return options


def plan_document(plan: Plan) -> dict[str, Any]:
    """The stable JSON form: resources sorted by URN, inputs as the engine got them."""
    resources = sorted(plan.resources, key=lambda r: r.urn)
    return {
        "stack": plan.stack,
        "resources": [
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "parent": r.parent,
                "protect": r.protect,
                "inputs": r.inputs,
                **({"options": options} if (options := _options(r)) else {}),
            }
            for r in resources
        ],
        "outputs": plan.outputs,
    }


def render_json(plan: Plan) -> str:
    return json.dumps(plan_document(plan), indent=2, sort_keys=True)


def _tree_lines(plan: Plan) -> list[str]:
    children: dict[str | None, list[PlannedResource]] = {}
    urns = {r.urn for r in plan.resources}
    for resource in plan.resources:
        parent = resource.parent if resource.parent in urns else None
        children.setdefault(parent, []).append(resource)

    lines: list[str] = []

    def walk(parent: str | None, prefix: str) -> None:
        kids = sorted(children.get(parent, []), key=lambda r: (r.type, r.name))
        for index, resource in enumerate(kids):
            last = index == len(kids) - 1
            marks = " [protected]" if resource.protect else ""
            lines.append(
                f"{prefix}{'└─ ' if last else '├─ '}{resource.type}  {resource.name}{marks}"
            )
            walk(resource.urn, prefix + ("   " if last else "│  "))

    walk(None, "")
    return lines


def counts_by_component(plan: Plan) -> dict[str, int]:
    """Resources under each top-level component (itself included), by component name;
    resources registered outside any component count under the stack's name."""
    by_urn = {r.urn: r for r in plan.resources}

    def top(resource: PlannedResource) -> PlannedResource:
        while resource.parent in by_urn:
            resource = by_urn[resource.parent]
        return resource

    counts: Counter[str] = Counter()
    for resource in plan.resources:
        root = top(resource)
        counts[root.name if not root.custom else plan.stack] += 1
    return dict(sorted(counts.items()))


def _edge_lines(outputs: dict[str, Any]) -> list[str]:
    """The edge's routing summary, from the primary stack's outputs."""
    from stacks import outputs as keys

    if keys.ROUTING_TABLE not in outputs:
        return []
    regions: list[str] = outputs[keys.EDGE_REGIONS]
    table: dict[str, str] = outputs[keys.ROUTING_TABLE]
    if len(regions) > 1:
        origins = f"{regions[0]} (primary), " + ", ".join(f"{r} (fallback)" for r in regions[1:])
    else:
        origins = f"{regions[0]} only: no fallback stack referenced, nothing to fail over to"
    lines = ["", "Edge:", f"  origins: {origins}"]
    for region in regions:
        countries = sorted(
            key.split(":", 1)[1]
            for key, value in table.items()
            if key.startswith("country:") and value == region
        )
        lines.append(f"  {region} <- {' '.join(countries) or '(no country routed)'}")
    drained = ", ".join(json.loads(table["drained"])) or "none"
    lines.append(f"  default: {table['default']}; drained: {drained}")
    lines.append(
        f"  GET failover worst case: {outputs[keys.GET_FAILOVER_SECONDS]} s "
        "(connection attempts x connection timeout to the dead region)"
    )
    budget = outputs.get(keys.FAILOVER_BUDGET)
    if budget is None:
        lines.append("  failover: off (failover.enabled is false): only GETs fail over")
    else:
        lines.append(
            f"  failover budget, every method: {budget['all_methods_seconds']} s = alarm "
            f"{budget['alarm_seconds']} s + EventBridge {budget['eventbridge_seconds']} s + "
            f"Lambda {budget['lambda_seconds']} s + KeyValueStore propagation "
            f"{budget['propagation_seconds']} s"
        )
        lines.append(f"  failover budget, GET per request: {budget['get_seconds']} s")
    return lines


def _chain(plan: Plan, parent: PlannedResource) -> list[list[str]]:
    """The component's children in dependency order, as steps of names that can run
    together (each step depends only on earlier ones)."""
    children = plan.children_of(parent)
    urns = {child.urn for child in children}
    waiting = {c.urn: {d for d in c.dependencies if d in urns} for c in children}
    names = {c.urn: c.name.removeprefix(f"{parent.name}-") for c in children}
    steps: list[list[str]] = []
    done: set[str] = set()
    while len(done) < len(children):
        ready = sorted(urn for urn, deps in waiting.items() if urn not in done and deps <= done)
        if not ready:
            raise ValueError(f"{parent.name}: dependency cycle among {sorted(waiting)}")
        steps.append(sorted(names[urn] for urn in ready))
        done |= set(ready)
    return steps


def _fleet_lines(plan: Plan, base: Mapping[str, Any] | None = None) -> list[str]:
    """Each VPS with its deployment chain, the rollout and the WireGuard mesh."""
    from stacks import outputs as keys

    hosts: dict[str, dict[str, Any]] = plan.outputs.get(keys.FLEET_HOSTS, {})
    if not hosts:
        return []
    lines = ["", f"Fleet (mesh {plan.outputs[keys.MESH_CIDR]}):"]
    for name, host in sorted(hosts.items()):
        component = plan.named(name)
        chain = " -> ".join(", ".join(step) for step in _chain(plan, component))
        lines.append(
            f"  {name} ({host['role']}) ssh {host['address']}:{host['sshPort']}, "
            f"wg {host['wireguardAddress']}"
        )
        lines.append(f"    {chain}")
    lines += _rollout_lines(plan, base)
    lines.append("  mesh: every host peers with every other, AllowedIPs = the peer's /32:")
    for name in sorted(hosts):
        peers = ", ".join(
            f"{other} {hosts[other]['wireguardAddress']}/32"
            for other in sorted(hosts)
            if other != name
        )
        lines.append(f"    {name} <-> {peers}")
    return lines


def _short_image(image: str) -> str:
    """``ghcr.io/org/name:1.1.0@sha256:<64 hex>`` -> ``name:1.1.0@sha256:<12 hex>``."""
    reference, _, digest = image.partition("@sha256:")
    return f"{reference.rsplit('/', 1)[-1]}@sha256:{digest[:12]}"


def host_changes(base: Mapping[str, Any], head: Mapping[str, Any], host: str) -> list[str]:
    """The steps of VPS ``host`` whose inputs differ between two plan documents (added
    or removed steps too). Secret inputs are ``[secret]`` in both, so a change of the
    .env alone does not show."""
    from components.vps import VPS_HOST_TYPE

    def steps(document: Mapping[str, Any]) -> dict[str, Any]:
        return {
            r["name"].removeprefix(f"{host}-"): r["inputs"]
            for r in document["resources"]
            if (r.get("parent") or "").endswith(f"{VPS_HOST_TYPE}::{host}")
        }

    before, after = steps(base), steps(head)
    return sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )


def _rollout_lines(plan: Plan, base: Mapping[str, Any] | None) -> list[str]:
    """The rollout order, what each host changes against ``base`` (a plan document),
    and the images that are not the same on every host that runs them."""
    from stacks import outputs as keys

    order: list[str] = plan.outputs.get(keys.FLEET_ROLLOUT, [])
    if not order:
        return []
    head = plan_document(plan)
    lines = ["  rollout, one host at a time, each once the previous host's health check passed:"]
    for position, name in enumerate(order, start=1):
        label = f"    {position}. {name}{' (canary)' if position == 1 and len(order) > 1 else ''}"
        if base is not None:
            changed = host_changes(base, head, name)
            label += f": changes {', '.join(changed)}" if changed else ": unchanged"
        lines.append(label)
    images: dict[str, dict[str, str]] = plan.outputs.get(keys.FLEET_IMAGES, {})
    by_key: dict[str, dict[str, str]] = {}
    for host in order:
        for key, image in images.get(host, {}).items():
            by_key.setdefault(key, {})[host] = image
    mixed = {key: hosts for key, hosts in by_key.items() if len(set(hosts.values())) > 1}
    if mixed:
        lines.append("  images not the same on every host that runs them:")
        lines += [
            f"    {key}: " + ", ".join(f"{h} {_short_image(i)}" for h, i in hosts.items())
            for key, hosts in sorted(mixed.items())
        ]
    return lines


def render_text(plan: Plan, base: Mapping[str, Any] | None = None) -> str:
    """The plan for people; ``base``: an earlier ``--json`` plan of the stack, against
    which the fleet's rollout says which hosts change."""
    counts = Counter(r.type for r in plan.resources)
    width = max(len(t) for t in counts) if counts else 0
    per_component = ", ".join(f"{name} {n}" for name, n in counts_by_component(plan).items())
    sections = [
        f"Stack {plan.stack}: {len(plan.resources)} resources ({per_component})",
        "",
        *_tree_lines(plan),
        "",
        "Resources by type:",
        *(f"  {type_:<{width}}  {count:>3}" for type_, count in sorted(counts.items())),
        "",
        "Outputs:",
        *(f"  {key}: {json.dumps(value)}" for key, value in sorted(plan.outputs.items())),
        *_edge_lines(plan.outputs),
        *_fleet_lines(plan, base),
    ]
    if plan.placeholders:
        sections.insert(
            1, f"(planned with [secret] placeholders for unset {', '.join(plan.placeholders)})"
        )
    return "\n".join(sections)
