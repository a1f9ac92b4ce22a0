"""``python -m ops plan``: config loading, text and JSON rendering, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ops.__main__ import main
from ops.plan import plan_stack, render_json
from ops.runtime import SECRET_PLACEHOLDER
from ops.stackfiles import StackFileError, read_stack_config
from tests.support import ROOT


def test_json_plan_is_stable_across_runs() -> None:
    assert render_json(plan_stack("sg")) == render_json(plan_stack("sg"))


def test_json_plan_has_the_documented_shape() -> None:
    document = json.loads(render_json(plan_stack("eu")))
    assert set(document) == {"stack", "resources", "outputs"}
    assert document["stack"] == "eu"
    urns = [r["urn"] for r in document["resources"]]
    assert urns == sorted(urns)
    for resource in document["resources"]:
        assert {"urn", "type", "name", "parent", "protect", "inputs"} <= set(resource)
        assert set(resource) - {"urn", "type", "name", "parent", "protect", "inputs"} <= {"options"}
    service = next(r for r in document["resources"] if r["type"] == "aws:ecs/service:Service")
    assert service["options"]["ignoreChanges"] == ["desiredCount"]
    assert service["options"]["customTimeouts"] == {"create": 1200, "update": 1200}
    vpc = next(r for r in document["resources"] if r["type"] == "aws:ec2/vpc:Vpc")
    assert vpc["inputs"]["cidrBlock"] == "10.20.0.0/16"
    assert vpc["parent"].endswith("trading-infra:network:Network::network")


def test_cli_prints_json_that_parses() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ops", "plan", "eu", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(result.stdout)["stack"] == "eu"


def test_text_plan_shows_tree_counts_and_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "sg"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Stack sg: ")
    assert "├─ trading-infra:network:Network  network" in out
    assert "│  ├─ aws:ec2/vpc:Vpc  network-vpc" in out
    assert "aws:ecr/repository:Repository  registry-repo [protected]" in out
    assert "  aws:ec2/subnet:Subnet" in out and "6\n" in out
    assert 'vpcId: "network-vpc-id"' in out


def write_project(tmp_path: Path, stack_yaml: str) -> Path:
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.bad.yaml").write_text(stack_yaml)
    return tmp_path


def test_config_errors_exit_1_with_every_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(
        tmp_path,
        "config:\n"
        "  aws:region: us-east-1\n"
        "  trading-infra:role: primary\n"
        "  trading-infra:network:\n"
        "    cidr: 10.10.0.0/16\n"
        "    azCount: '3'\n",
    )
    monkeypatch.setattr("ops.__main__.plan_stack", lambda stack: plan_stack(stack, root))
    assert main(["plan", "bad"]) == 1
    err = capsys.readouterr().err
    assert "stack 'bad' has 2 config error(s)" in err
    assert "aws:region: us-east-1 is not in" in err
    assert "trading-infra:network.azCount: Input should be a valid integer" in err


def test_unknown_stack_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "nope"]) == 1
    assert "no Pulumi.nope.yaml; known stacks: eu, sg" in capsys.readouterr().err


def test_stack_file_problems_are_named_all_at_once(tmp_path: Path) -> None:
    """A plain value beside encrypted ones (the engine marks the whole key secret, so
    only the file shows it) and a key YAML reads as a boolean (``NO:`` is false)."""
    root = write_project(
        tmp_path,
        "config:\n"
        "  role: primary\n"
        "  trading-infra:serviceSecrets:\n"
        "    API_KEY:\n"
        "      secure: AAABADQXFlU=\n"
        "    API_SECRET: hunter2\n"
        "  trading-infra:edge:\n"
        "    routes:\n"
        "      NO: eu\n",
    )
    with pytest.raises(StackFileError) as raised:
        read_stack_config(root, "bad")
    message = str(raised.value)
    assert "trading-infra:serviceSecrets.API_SECRET: stored in plain text" in message
    assert "--path 'serviceSecrets.API_SECRET'" in message
    assert "trading-infra:edge.routes: key False is not a string" in message
    assert "'NO': eu" in message
    assert "API_KEY" not in message


def test_stack_file_values_reach_the_program_as_the_cli_sends_them(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        "config:\n"
        "  role: primary\n"
        "  trading-infra:production: true\n"
        "  trading-infra:token:\n"
        "    secure: AAABADQXFlU=\n"
        "  trading-infra:nested:\n"
        "    key:\n"
        "      secure: AAABAD==\n",
    )
    config = read_stack_config(root, "bad")
    assert config.values["trading-infra:role"] == "primary"
    assert config.values["trading-infra:production"] == "true"
    assert config.values["trading-infra:token"] == SECRET_PLACEHOLDER
    assert json.loads(config.values["trading-infra:nested"]) == {"key": SECRET_PLACEHOLDER}
    assert config.secret_keys == ["trading-infra:nested", "trading-infra:token"]
    # Project-level defaults from Pulumi.yaml apply when the stack does not set a key.
    bare = write_project(tmp_path, "config:\n  role: fallback\n")
    assert read_stack_config(bare, "bad").values["trading-infra:production"] == "false"
