"""The fallback's planned outputs are kept for the StackReference of the primary's plan:
``ops plan sg`` then costs sg's own resources, never a stale eu."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ops.plan
from ops.plan import plan_config, planned_outputs, render_json, save_outputs, source_key
from ops.runtime import MOCK_ORGANIZATION, Plan
from ops.stackfiles import read_stack_config
from stacks.config import PROJECT
from tests.support import ROOT, committed_eu_outputs


def _tree(root: Path) -> Path:
    for path, text in {
        "Pulumi.yaml": "name: trading-infra\n",
        "Pulumi.eu.yaml": "config: {}\n",
        "stacks/regional.py": "A = 1\n",
        "components/edge/geo_router.js": "function handler() {}\n",
        "tests/test_x.py": "pass\n",
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    for top in ("ops", "app"):
        (root / top).mkdir(exist_ok=True)
    return root


@pytest.mark.parametrize(
    ("path", "changes_the_key"),
    [
        ("stacks/regional.py", True),
        ("components/edge/geo_router.js", True),
        ("Pulumi.eu.yaml", True),
        ("Pulumi.yaml", True),
        ("tests/test_x.py", False),
    ],
)
def test_the_key_changes_with_whatever_the_plan_is_made_of(
    tmp_path: Path, path: str, changes_the_key: bool
) -> None:
    root = _tree(tmp_path)
    before = source_key("eu", root)
    (root / path).write_text((root / path).read_text() + "# edited\n")
    assert (source_key("eu", root) != before) is changes_the_key


def test_outputs_are_planned_once_then_read_and_replanned_when_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path)
    planned: list[str] = []

    def plan_stack(stack: str, root: Path) -> Plan:
        planned.append(stack)
        return Plan(project=PROJECT, stack=stack, outputs={"albDnsName": f"alb-{len(planned)}"})

    monkeypatch.setattr(ops.plan, "plan_stack", plan_stack)
    assert planned_outputs("eu", root) == {"albDnsName": "alb-1"}
    assert planned_outputs("eu", root) == {"albDnsName": "alb-1"}
    assert planned == ["eu"]
    (cached,) = (root / ops.plan.OUTPUTS_CACHE).glob("eu-*.json")
    cached.write_text("{not json")
    assert planned_outputs("eu", root) == {"albDnsName": "alb-2"}
    # A new key replaces the old file: one file per stack, never a pile.
    (root / "stacks/regional.py").write_text("A = 2\n")
    assert planned_outputs("eu", root) == {"albDnsName": "alb-3"}
    assert len(list((root / ops.plan.OUTPUTS_CACHE).glob("eu-*.json"))) == 1


def test_a_read_only_checkout_plans_all_the_same(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "build").write_text("a file where the cache directory would be")
    save_outputs(Plan(project=PROJECT, stack="eu", outputs={"a": 1}), root)  # no error


def test_sg_planned_against_kept_outputs_is_byte_identical() -> None:
    """The outputs go through JSON in the cache: the sg plan must not notice."""
    config = read_stack_config(ROOT, "sg")
    reference = f"{MOCK_ORGANIZATION}/{PROJECT}/eu"
    fresh = committed_eu_outputs()
    kept = json.loads(json.dumps(fresh, sort_keys=True))
    plans = [
        plan_config("sg", config.values, config.secret_keys, stack_outputs={reference: o})
        for o in (fresh, kept)
    ]
    assert render_json(plans[0]) == render_json(plans[1])
