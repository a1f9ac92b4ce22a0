"""``ops diff``: golden cases on small plan documents, and two real plans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ops.__main__ import main
from ops.diff import COMMENT_LIMIT, diff_plans, render_markdown, render_text
from ops.plan import plan_config, plan_document
from tests.support import committed_config, with_section

STACK = "urn:pulumi:sg::trading-infra::pulumi:pulumi:Stack::trading-infra-sg"


def resource(resource_name: str, type_: str = "aws:ec2/vpc:Vpc", **inputs: Any) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:sg::trading-infra::{type_}::{resource_name}",
        "type": type_,
        "name": resource_name,
        "parent": STACK,
        "protect": False,
        "inputs": inputs,
    }


def document(*resources: dict[str, Any], outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"stack": "sg", "resources": list(resources), "outputs": outputs or {}}


BASE = document(
    resource("vpc", cidrBlock="10.10.0.0/16"),
    resource("old-bucket", "aws:s3/bucket:Bucket", bucket="logs"),
    resource(
        "role",
        "aws:iam/role:Role",
        assumeRolePolicy=json.dumps({"Statement": [{"Action": "sts:AssumeRole"}]}),
    ),
    resource("secret", "aws:secretsmanager/secretVersion:SecretVersion", secretString="[secret]"),
    resource("thing", "aws:sqs/queue:Queue", delaySeconds=0),
    outputs={"vpcId": "vpc-1"},
)
HEAD = document(
    resource("vpc", cidrBlock="10.30.0.0/16"),
    resource("new-topic", "aws:sns/topic:Topic", name="alarms"),
    resource(
        "role",
        "aws:iam/role:Role",
        assumeRolePolicy=json.dumps({"Statement": [{"Action": "sts:TagSession"}]}),
    ),
    resource("secret", "aws:secretsmanager/secretVersion:SecretVersion", secretString="[secret]"),
    resource("thing", "aws:sns/topic:Topic", name="thing"),
    outputs={"vpcId": "vpc-2"},
)


def test_text_diff_golden() -> None:
    assert render_text(diff_plans(BASE, HEAD)) == (
        "Stack sg: 1 to add, 2 to update, 1 to replace, 1 to remove\n"
        "  +- aws:sns/topic:Topic  thing (was aws:sqs/queue:Queue)\n"
        "  -  aws:s3/bucket:Bucket  old-bucket\n"
        "  +  aws:sns/topic:Topic  new-topic\n"
        "  ~  aws:ec2/vpc:Vpc  vpc\n"
        "       cidrBlock: 10.10.0.0/16 -> 10.30.0.0/16\n"
        "  ~  aws:iam/role:Role  role\n"
        "       assumeRolePolicy.Statement[0].Action: sts:AssumeRole -> sts:TagSession\n"
        "  outputs:\n"
        "       vpcId: vpc-1 -> vpc-2\n"
    )


def test_an_unchanged_secret_is_not_a_change_and_a_changed_one_stays_masked() -> None:
    assert all(r.name != "secret" for r in diff_plans(BASE, HEAD).resources)
    before = document(resource("cfg", "aws:ssm/parameter:Parameter", value="plain"))
    after = document(resource("cfg", "aws:ssm/parameter:Parameter", value="[secret]"))
    (change,) = diff_plans(before, after).resources[0].changes
    assert (change.path, change.before, change.after) == ("value", "[secret]", "[secret]")
    assert "plain" not in render_text(diff_plans(before, after))


def test_protect_changes_are_shown() -> None:
    after = document({**BASE["resources"][0], "protect": True})
    (r,) = diff_plans(document(BASE["resources"][0]), after).resources
    assert [(c.path, c.before, c.after) for c in r.changes] == [("(protect)", False, True)]


def test_markdown_has_a_summary_per_type_and_details_per_resource() -> None:
    markdown = render_markdown(diff_plans(BASE, HEAD))
    assert markdown.startswith("### `ops plan` diff for stack `sg`")
    assert "**1** to add · **2** to update · **1** to replace · **1** to remove" in markdown
    assert "| `aws:sns/topic:Topic` | 1 | 0 | 1 | 0 |" in markdown
    assert (
        "<code>+-</code> <code>aws:sns/topic:Topic</code> thing (was `aws:sqs/queue:Queue`)"
        in markdown
    )
    assert "| `cidrBlock` | `10.10.0.0/16` | `10.30.0.0/16` |" in markdown


def test_no_changes_says_so() -> None:
    assert render_markdown(diff_plans(BASE, BASE)).endswith("No changes.\n")


def test_markdown_is_trimmed_under_the_comment_limit_with_a_note() -> None:
    many_before = document(
        *(resource(f"vpc-{n:04d}", cidrBlock="10.0.0.0/16") for n in range(3000))
    )
    many_after = document(*(resource(f"vpc-{n:04d}", cidrBlock="10.1.0.0/16") for n in range(3000)))
    markdown = render_markdown(diff_plans(many_before, many_after))
    assert len(markdown) <= COMMENT_LIMIT
    assert "more entries not shown" in markdown
    assert "GitHub's 65,536-character limit" in markdown
    shown = markdown.count("<details>")
    assert 0 < shown < 3000
    assert f"{3000 - shown} more entries not shown" in markdown


def test_real_plans_show_exactly_the_config_change() -> None:
    base = plan_document(plan_config("eu", committed_config("eu")))
    changed = with_section(committed_config("eu"), "service", desiredCount=2)
    head = plan_document(plan_config("eu", changed))
    (r,) = diff_plans(base, head).resources
    assert (r.name, r.action, [(c.path, c.before, c.after) for c in r.changes]) == (
        "api-service",
        "update",
        [("desiredCount", 1, 2)],
    )


def test_cli_reads_two_plan_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "base.json").write_text(json.dumps(BASE))
    (tmp_path / "head.json").write_text(json.dumps(HEAD))
    assert (
        main(
            [
                "diff",
                str(tmp_path / "base.json"),
                str(tmp_path / "head.json"),
                "--format",
                "markdown",
            ]
        )
        == 0
    )
    assert "to replace" in capsys.readouterr().out
    assert main(["diff", str(tmp_path / "missing.json"), str(tmp_path / "head.json")]) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (json.dumps({"version": 3, "deployment": {"resources": []}}), "a `pulumi stack export`"),
        ("[]", "a JSON list without a `resources` list"),
        ("Stack sg: 148 resources\n├─ aws:ec2/vpc:Vpc network", "not JSON (a text plan?)"),
        (json.dumps({"resources": []}), "names no `stack`"),
        (json.dumps({"stack": "sg", "resources": [{"urn": "u"}]}), "resources[0] lacks type"),
    ],
)
def test_a_file_that_is_not_a_plan_gets_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    (tmp_path / "base.json").write_text(json.dumps(BASE))
    (tmp_path / "head.json").write_text(content)
    assert main(["diff", str(tmp_path / "base.json"), str(tmp_path / "head.json")]) == 1
    error = capsys.readouterr().err
    assert message in error and "python -m ops plan STACK --json" in error
    assert "Traceback" not in error


def test_plans_of_two_stacks_are_refused_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "base.json").write_text(json.dumps(BASE))
    (tmp_path / "head.json").write_text(json.dumps({**HEAD, "stack": "eu"}))
    files = [str(tmp_path / "base.json"), str(tmp_path / "head.json")]
    assert main(["diff", *files]) == 1
    assert "different stacks ('sg' and 'eu')" in capsys.readouterr().err
    assert main(["diff", *files, "--allow-stack-mismatch"]) == 0
