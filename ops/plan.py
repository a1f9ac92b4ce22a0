"""``python -m ops plan STACK [--json]``: the stack's resources, offline."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from ops.runtime import Plan, PlannedResource, run_mocked
from ops.stackfiles import read_project, read_stack_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def plan_stack(stack: str, root: Path = PROJECT_ROOT) -> Plan:
    """Run the program for ``stack`` with its own config file under the mock runtime.

    Raises the program's ``ConfigError`` when the config is invalid.
    """
    import stacks

    config = read_stack_config(root, stack)
    return run_mocked(
        stacks.main,
        project=read_project(root)["name"],
        stack=stack,
        config=config.values,
        secret_keys=config.secret_keys,
        cwd=root,
    )


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


def render_text(plan: Plan) -> str:
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
    ]
    return "\n".join(sections)
