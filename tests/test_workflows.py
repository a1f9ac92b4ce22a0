"""The GitHub workflows: schema-valid (check-jsonschema's built-in GitHub workflow
schema), and the promises they make: deploy order, OIDC only, least permissions,
concurrency, forks never touch secrets, pinned actions, shell that passes ShellCheck."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops.drift.refresh import REFRESH_COMMAND
from tests.support import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = sorted(p.name for p in WORKFLOWS.glob("*.yml"))
BIN = Path(sys.executable).parent


@cache
def workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(name: str) -> dict[str, Any]:
    """The ``on:`` block (YAML 1.1 reads the bare key ``on`` as true)."""
    document: dict[Any, Any] = workflow(name)
    return document[True]


def jobs(name: str) -> dict[str, dict[str, Any]]:
    return workflow(name)["jobs"]


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def test_the_expected_workflows_exist() -> None:
    assert NAMES == [
        "ci.yml",
        "deploy.yml",
        "drift.yml",
        "preview-comment.yml",
        "preview.yml",
        "restore-drill.yml",
    ]


def test_every_workflow_passes_the_github_workflow_schema() -> None:
    result = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *(str(WORKFLOWS / n) for n in NAMES),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_does_reject_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps: not-a-list\n"
    )
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0


def test_deploy_runs_eu_then_sg_then_vps_each_in_its_environment() -> None:
    deploy = jobs("deploy.yml")
    assert "needs" not in deploy["eu"]
    assert deploy["sg"]["needs"] == "eu"
    assert deploy["vps"]["needs"] == "sg"
    for stack, job in deploy.items():
        assert job["environment"] == f"production-{stack}"
        assert job["concurrency"] == {"group": f"deploy-{stack}", "cancel-in-progress": False}
        (up,) = [s for s in steps(job) if s.get("uses", "").startswith("pulumi/actions@")]
        assert up["with"]["command"] == "up"
        assert up["with"]["stack-name"].endswith(f"/{stack}")
    on = triggers("deploy.yml")
    assert on["push"]["branches"] == ["main"] and "workflow_dispatch" in on


@pytest.mark.parametrize("name", NAMES)
def test_aws_access_is_oidc_only(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    assert "aws-access-key-id" not in text and "aws-secret-access-key" not in text
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    for job in jobs(name).values():
        for step in steps(job):
            if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@"):
                assert step["with"]["role-to-assume"].startswith("${{ vars.")
                assert job["permissions"].get("id-token") == "write"


@pytest.mark.parametrize("name", NAMES)
def test_permissions_are_least_and_explicit_per_job(name: str) -> None:
    assert workflow(name)["permissions"] == {}
    for job_name, job in jobs(name).items():
        permissions = job["permissions"]
        assert isinstance(permissions, dict), f"{name}:{job_name} permissions must be a mapping"
        assert "write-all" not in str(permissions)
        assert set(permissions.values()) <= {"read", "write"}
        writes = {scope for scope, level in permissions.items() if level == "write"}
        allowed = {"id-token", "pull-requests", "issues"}
        assert writes <= allowed, f"{name}:{job_name} writes {writes - allowed}"


def test_previews_and_deploys_never_overlap_on_a_stack() -> None:
    for job in jobs("preview.yml").values():
        group = job["concurrency"]["group"]
        assert "github.event.pull_request.number" in group and "matrix.stack" in group
    assert {job["concurrency"]["group"] for job in jobs("drift.yml").values()} == {
        "drift-${{ matrix.stack }}"
    }


PRODUCTION_SECRETS = ("secrets.PULUMI_ACCESS_TOKEN", "secrets.VPS_DRIFT_KEY")
GATED = {"production-eu", "production-sg", "production-vps", "drift"}
"""Environments with required reviewers and a main-only deployment-branch policy
(docs/ci-cd.md): the only places production secrets live."""


def test_pull_requests_run_their_code_with_no_secret_and_no_write() -> None:
    """Unreviewed code gets no production secret: a same-repo PR runs exactly as a
    fork's, offline (a Pulumi token that can preview can decrypt)."""
    on = triggers("preview.yml")
    assert set(on) == {"pull_request"}  # never pull_request_target
    text = (WORKFLOWS / "preview.yml").read_text()
    assert "secrets." not in text.split("jobs:", 1)[1]
    for job in jobs("preview.yml").values():
        assert job["permissions"] == {"contents": "read"}
        assert "if" not in job  # every PR, whatever its origin
        assert not any(s.get("uses", "").startswith("pulumi/actions@") for s in steps(job))
        runs = "\n".join(s.get("run", "") for s in steps(job))
        assert "ops plan" in runs and "ops diff" not in runs  # rendering is not trusted here


@pytest.mark.parametrize("name", NAMES)
def test_production_secrets_live_only_in_gated_environments(name: str) -> None:
    for job_name, job in jobs(name).items():
        if any(secret in yaml.safe_dump(job) for secret in PRODUCTION_SECRETS):
            assert job.get("environment") in GATED, f"{name}:{job_name}"
            assert not set(triggers(name)) & {"pull_request", "pull_request_target"}, name


def test_the_comment_path_trusts_nothing_the_pull_request_produced() -> None:
    comment = jobs("preview-comment.yml")["comment"]
    assert comment["permissions"] == {
        "actions": "read",
        "contents": "read",
        "pull-requests": "write",
    }
    (checkout,) = [s for s in steps(comment) if s.get("uses", "").startswith("actions/checkout@")]
    assert "ref" not in checkout.get("with", {})  # the default branch's code, not the PR's
    render = next(s["run"] for s in steps(comment) if "ops diff" in s.get("run", ""))
    assert "for stack in eu sg vps" in render and "--format markdown" in render
    script = next(
        s for s in steps(comment) if s.get("uses", "").startswith("actions/github-script@")
    )["with"]["script"]
    # The PR comes from the run's head commit and repository, not from the artifact.
    assert "run.head_sha" in script and "head.full_name" in script
    assert "pr-number" not in script and "readdirSync" not in script
    # Only this workflow's own comments are edited.
    assert "github-actions[bot]" in script
    assert "for (const stack of ['eu', 'sg', 'vps'])" in script


def test_drift_runs_nightly_and_manages_one_issue_per_stack() -> None:
    on = triggers("drift.yml")
    assert on["schedule"][0]["cron"] and "workflow_dispatch" in on
    drift = jobs("drift.yml")
    assert set(drift) == {"aws", "vps"}
    for job in drift.values():
        runs = "\n".join(s.get("run", "") for s in steps(job))
        assert "pulumi stack export" in runs and "python -m ops drift" in runs
        assert "--show-secrets" not in runs  # the export keeps secrets encrypted
        # The providers' view is folded in: the CLI runs exactly what ops drift documents
        # (ops.drift.refresh.REFRESH_COMMAND) and ops drift reads its output.
        (refresh,) = [s for s in steps(job) if "pulumi refresh" in s.get("run", "")]
        assert " ".join(refresh["run"].replace("\\\n", " ").split()).startswith(
            " ".join(("pulumi", *REFRESH_COMMAND))
        )
        assert "> refresh.json" in refresh["run"]
        assert re.search(r"python -m ops drift [^\n]*\\\n\s*--refresh-json refresh.json", runs)
        assert not [s for s in steps(job) if s.get("with", {}).get("command") == "preview"]
        script = next(
            s for s in steps(job) if s.get("uses", "").startswith("actions/github-script@")
        )["with"]["script"]
        assert "labels: ['drift']" in script and "state: 'closed'" in script
    # The refresh runs under the refresh role, the scan under the drift role: in the
    # vps job too, whose stack holds the backup bucket and the hosts' backup users.
    for job in drift.values():
        names = [s.get("name", "") for s in steps(job)]
        refresh_role = names.index("AWS credentials (OIDC, the refresh role)")
        drift_role = names.index("AWS credentials (OIDC, the drift role's reads only)")
        assert refresh_role < names.index("pulumi refresh --preview-only --json") < drift_role
        assert drift_role < next(i for i, n in enumerate(names) if n.startswith("ops drift"))
        assert job["permissions"]["id-token"] == "write"


def test_the_restore_drill_runs_monthly_on_every_host_and_manages_one_issue() -> None:
    on = triggers("restore-drill.yml")
    *_, day, month, weekday = on["schedule"][0]["cron"].split()
    assert day.isdigit() and (month, weekday) == ("*", "*")  # once a month
    assert "workflow_dispatch" in on
    (job,) = jobs("restore-drill.yml").values()
    assert job["environment"] == "drift"
    assert "id-token" not in job["permissions"]  # the hosts restore with their own keys
    runs = "\n".join(s.get("run", "") for s in steps(job))
    assert "pulumi stack export --stack" in runs and "--show-secrets" not in runs
    drill = next(s for s in steps(job) if "ops restore-drill" in s.get("run", ""))
    command = " ".join(drill["run"].replace("\\\n", " ").split())
    assert "python -m ops restore-drill vps --every-host --state state.json" in command
    assert '--ssh-key "$RUNNER_TEMP/vps-key"' in command and "--format markdown" in command
    assert 'echo "exit=$?"' in drill["run"]
    script = next(s for s in steps(job) if s.get("uses", "").startswith("actions/github-script@"))[
        "with"
    ]["script"]
    assert "labels: ['restore-drill']" in script and "state: 'closed'" in script
    assert "exit !== 0" in script and "core.setFailed" in script


@pytest.mark.parametrize("name", NAMES)
def test_actions_are_pinned_to_a_full_commit_sha_with_its_version(name: str) -> None:
    for line in (WORKFLOWS / name).read_text().splitlines():
        if re.match(r"\s*(- )?uses:", line):
            assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line.strip()


@pytest.mark.parametrize("name", NAMES)
def test_checkouts_keep_no_credentials(name: str) -> None:
    for job in jobs(name).values():
        for step in steps(job):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, name


def test_dependabot_keeps_the_pinned_actions_current() -> None:
    config = ROOT / ".github" / "dependabot.yml"
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ecosystems = {u["package-ecosystem"] for u in yaml.safe_load(config.read_text())["updates"]}
    assert "github-actions" in ecosystems


@pytest.mark.parametrize("name", NAMES)
def test_secrets_arrive_only_through_the_secrets_context(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    for line in text.splitlines():
        if re.search(r"(TOKEN|KEY|PASSWORD):", line) and "${{" not in line:
            pytest.fail(f"{name}: a credential-looking value not from a context: {line.strip()}")


def shell_blocks() -> list[tuple[str, str, str]]:
    found = []
    for name in NAMES:
        for job_name, job in jobs(name).items():
            for index, step in enumerate(steps(job)):
                if "run" in step:
                    found.append((f"{name}:{job_name}:{index}", step["run"], name))
    return found


@pytest.mark.parametrize(
    ("where", "script", "name"), shell_blocks(), ids=[w for w, _, _ in shell_blocks()]
)
def test_run_blocks_pass_shellcheck(where: str, script: str, name: str) -> None:
    # GitHub expressions are substituted before the shell runs; stand in a word for them.
    bash = "#!/usr/bin/env bash\n" + re.sub(r"\$\{\{[^}]*\}\}", "expr", script)
    result = subprocess.run(
        [str(BIN / "shellcheck"), "--shell=bash", "-"],
        input=bash,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"{where}\n{result.stdout}"


def eval_condition(condition: str, matrix: dict[str, str]) -> bool:
    """The few ``if:`` forms the workflows use on the matrix: ``matrix.stack == 'x'``,
    ``!=``, ``&&``."""
    clauses = [c.strip() for c in condition.split("&&") if c.strip()]
    for clause in clauses:
        match = re.fullmatch(r"matrix\.(\w[\w-]*) (==|!=) '([^']*)'", clause)
        if match is None:
            return True  # not about the matrix: assume it can run
        key, operator, value = match.groups()
        if (matrix.get(key) == value) != (operator == "=="):
            return False
    return True


def _touches_sg(job: dict[str, Any], step: dict[str, Any]) -> bool:
    stack_name = str(step.get("with", {}).get("stack-name", ""))
    if stack_name.endswith("/sg"):
        return True
    if "matrix.stack" in stack_name:
        include = job.get("strategy", {}).get("matrix", {}).get("include", [])
        return any(entry.get("stack") == "sg" for entry in include)
    return False


def test_every_job_that_previews_or_deploys_sg_builds_the_lambda_layer_first() -> None:
    """The sg program packages build/lambda-layer (pulumi.FileArchive): a preview or up
    of sg without `make lambda-layer` before it fails, and the drift workflow would
    then report changes every night. (The drift workflow's refresh runs no program:
    ``--run-program=false``, asserted in the drift workflow's test.)"""
    checked = 0
    for name in NAMES:
        for job_name, job in jobs(name).items():
            job_steps = steps(job)
            for index, step in enumerate(job_steps):
                uses = str(step.get("uses", ""))
                command = step.get("with", {}).get("command")
                if not uses.startswith("pulumi/actions") or command not in ("preview", "up"):
                    continue
                if not _touches_sg(job, step):
                    continue
                checked += 1
                builds = [
                    s
                    for s in job_steps[:index]
                    if "make lambda-layer" in str(s.get("run", ""))
                    and eval_condition(str(s.get("if", "")), {"stack": "sg"})
                ]
                assert builds, f"{name}: job {job_name} runs pulumi {command} on sg first"
    assert checked >= 1  # deploy's up at least
