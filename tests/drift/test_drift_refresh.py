"""The providers' view (``pulumi refresh --preview-only --json``) folded into the scan.

The CLI cannot run here, so its output is built to the documented shapes of the Pulumi
sources (pulumi/pulumi ``pkg/display/json.go``: ``PreviewDigest``, ``PreviewStep``,
``PropertyDiff``; ``pkg/backend/display/json.go``: ``ShowPreviewDigest``, which rewrites a
``refresh`` step to ``update`` with its ``detailedDiff`` when the provider read something
else, or to ``delete`` when the resource is gone; ``apitype.ResourceV3`` for
``oldState``/``newState``, secrets as ``"[secret]"``):

- ``digest(checkpoint, ...)`` makes one from a moto deployment's checkpoint, one step per
  resource as the CLI emits them (the root stack and the providers included);
- ``fixtures/refresh-preview.json`` is a whole document written by hand to those shapes
  (config, duration, changeSummary, a quoted path, a secret), over
  ``fixtures/refresh-state.json``.
"""

from __future__ import annotations

import copy
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from ops.__main__ import main
from ops.drift.model import Diff, Finding
from ops.drift.refresh import (
    RefreshError,
    fold,
    parse_path,
    parse_refresh,
    value_at,
)
from ops.drift.scan import scan
from ops.drift.state import parse_state
from tests.drift.conftest import World, build_world

FIXTURES = Path(__file__).parent / "fixtures"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SERVICE = "aws:ecs/service:Service"


@pytest.fixture(scope="module")
def world(moto_url: str) -> World:
    return build_world(moto_url, "eu")


def _set(properties: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = parse_path(path)
    target: Any = properties
    for part in parents:
        target = target[part]
    if value is None:
        del target[last]
    else:
        target[last] = value


def digest(
    checkpoint: dict[str, Any],
    updates: dict[str, dict[str, Any]] | None = None,
    deletes: tuple[str, ...] = (),
    diagnostics: tuple[dict[str, Any], ...] = (),
) -> str:
    """A refresh preview digest of ``checkpoint``: ``updates`` maps a URN to the paths the
    provider reads differently (and the live value; None: the property is gone);
    ``deletes`` are URNs the provider finds gone; every other resource is ``refresh``."""
    updates = updates or {}
    steps = []
    summary: dict[str, int] = {}
    for resource in checkpoint["deployment"]["resources"]:
        urn = resource["urn"]
        old = copy.deepcopy(resource)
        step: dict[str, Any] = {"op": "refresh", "urn": urn, "detailedDiff": None}
        if resource.get("provider"):
            step["provider"] = resource["provider"]
        if urn in deletes:
            step.update(op="delete", oldState=old)
        elif urn in updates:
            new = copy.deepcopy(resource)
            for path, value in updates[urn].items():
                _set(new["outputs"], path, value)
            step.update(
                op="update",
                oldState=old,
                newState=new,
                diffReasons=sorted({str(parse_path(p)[0]) for p in updates[urn]}),
                detailedDiff={p: {"kind": "update", "inputDiff": False} for p in updates[urn]},
            )
        else:
            step.update(oldState=old, newState=old)
        summary[step["op"]] = summary.get(step["op"], 0) + 1
        steps.append(step)
    return json.dumps(
        {
            "config": {"aws:region": "eu-central-1"},
            "steps": steps,
            "diagnostics": list(diagnostics),
            "duration": 41_000_000_000,
            "changeSummary": summary,
        }
    )


def _urn(world: World, type_: str) -> str:
    return next(r["urn"] for r in world.checkpoint["deployment"]["resources"] if r["type"] == type_)


def _finding(findings: list[Finding], urn: str) -> Finding:
    (found,) = [f for f in findings if f.urn == urn]
    return found


# --- the fold over a real scan of a moto deployment ---------------------------------


def test_a_clean_refresh_compares_every_type_and_keeps_the_scan_clean(world: World) -> None:
    alone = world.scan()
    assert alone.exit_code() == 0 and alone.present_only  # dashboards, attachments
    folded = world.scan(refresh=digest(world.checkpoint))
    assert folded.exit_code() == 0
    assert folded.present_only == []
    assert len(folded.findings) == len(alone.findings)


def test_a_type_no_handler_reads_is_unknown_alone_and_checked_by_the_provider(
    world: World,
) -> None:
    checkpoint = copy.deepcopy(world.checkpoint)
    urn = "urn:pulumi:eu::trading-infra::aws:appconfig/application:Application::catalog"
    checkpoint["deployment"]["resources"].append(
        {
            "urn": urn,
            "custom": True,
            "id": "abc1234",
            "type": "aws:appconfig/application:Application",
            "inputs": {"name": "catalog"},
            "outputs": {"name": "catalog", "description": "prices"},
        }
    )
    state = json.dumps(checkpoint)
    assert world.scan().exit_code() == 0
    report, _ = scan("eu", state, clients=world.clients)
    assert _finding(report.findings, urn).status == "unknown" and report.exit_code() == 1
    report, _ = scan("eu", state, clients=world.clients, refresh=digest(checkpoint))
    assert _finding(report.findings, urn).status == "ok" and report.exit_code() == 0
    changed = digest(checkpoint, updates={urn: {"description": "costs"}})
    report, _ = scan("eu", state, clients=world.clients, refresh=changed)
    assert _finding(report.findings, urn).diffs == [Diff("description", "prices", "costs")]
    assert report.exit_code() == 2


def test_what_only_the_provider_compares_is_changed_with_state_and_live_values(
    world: World,
) -> None:
    urn = _urn(world, DASHBOARD)
    body = world.resource(urn.rsplit("::", 1)[1])["outputs"]["dashboardBody"]
    changed = digest(world.checkpoint, updates={urn: {"dashboardBody": "{}"}})
    report = world.scan(refresh=changed)
    found = _finding(report.findings, urn)
    assert (found.status, found.compared) == ("changed", True)
    assert found.diffs == [Diff("dashboardBody", body, "{}")]
    assert report.exit_code() == 2


def test_gone_as_the_provider_reads_it_is_missing(world: World) -> None:
    urn = _urn(world, DASHBOARD)
    report = world.scan(refresh=digest(world.checkpoint, deletes=(urn,)))
    assert _finding(report.findings, urn).status == "missing"
    assert report.exit_code() == 2


def test_an_attribute_both_views_find_is_named_once(world: World) -> None:
    checkpoint = copy.deepcopy(world.checkpoint)
    group = next(r for r in checkpoint["deployment"]["resources"] if r["type"] == LOG_GROUP)
    live = group["outputs"]["retentionInDays"]
    group["inputs"]["retentionInDays"] = group["outputs"]["retentionInDays"] = live + 1
    refresh = digest(
        checkpoint, updates={group["urn"]: {"retentionInDays": live, "tags.Owner": "ops"}}
    )
    report, _ = scan("eu", json.dumps(checkpoint), clients=world.clients, refresh=refresh)
    diffs = _finding(report.findings, group["urn"]).diffs
    assert [d.attribute for d in diffs] == ["retentionInDays", "tags.Owner"]
    assert diffs[1] == Diff("tags.Owner", None, "ops")


def test_an_autoscaled_count_is_drift_only_outside_the_scalable_range(world: World) -> None:
    service = next(
        r
        for r in world.checkpoint["deployment"]["resources"]
        if r["type"] == SERVICE and "desiredCount" in r.get("ignoreChanges", [])
    )
    target = next(
        r["outputs"]
        for r in world.checkpoint["deployment"]["resources"]
        if r["type"] == "aws:appautoscaling/target:Target"
        and r["outputs"]["resourceId"].endswith("/" + service["outputs"]["name"])
    )
    low, high = target["minCapacity"], target["maxCapacity"]
    within = digest(world.checkpoint, updates={service["urn"]: {"desiredCount": high}})
    assert _finding(world.scan(refresh=within).findings, service["urn"]).status == "ok"
    below = digest(world.checkpoint, updates={service["urn"]: {"desiredCount": low - 1}})
    found = _finding(world.scan(refresh=below).findings, service["urn"])
    assert found.diffs == [Diff("desiredCount", f"{low}..{high} (autoscaled)", low - 1)]


def test_what_the_program_ignores_is_not_drift_and_the_rest_is(world: World) -> None:
    checkpoint = copy.deepcopy(world.checkpoint)
    group = next(r for r in checkpoint["deployment"]["resources"] if r["type"] == LOG_GROUP)
    group["ignoreChanges"] = ["tags"]
    state = json.dumps(checkpoint)
    ignored = digest(checkpoint, updates={group["urn"]: {'tags["cost.centre"]': "x"}})
    report, _ = scan("eu", state, clients=world.clients, refresh=ignored)
    assert _finding(report.findings, group["urn"]).status == "ok"
    both = digest(checkpoint, updates={group["urn"]: {"tags.Owner": "x", "kmsKeyId": "k"}})
    report, _ = scan("eu", state, clients=world.clients, refresh=both)
    assert [d.attribute for d in _finding(report.findings, group["urn"]).diffs] == ["kmsKeyId"]


def test_provider_errors_are_unknown_for_their_resource_or_the_run(world: World) -> None:
    urn = _urn(world, DASHBOARD)
    errors = (
        {"urn": urn, "message": "AccessDenied: GetDashboard", "severity": "error"},
        {"urn": urn, "message": "refreshing", "severity": "info"},
        {"message": "the aws plugin crashed", "severity": "error"},
    )
    report = world.scan(refresh=digest(world.checkpoint, diagnostics=errors))
    assert _finding(report.findings, urn).error == "provider: AccessDenied: GetDashboard"
    run = [f for f in report.findings if f.type == "pulumi:refresh"]
    assert [(f.status, f.error) for f in run] == [("unknown", "provider: the aws plugin crashed")]
    assert report.exit_code() == 1


# --- the fold's rules, on findings made by hand --------------------------------------


def _state(*urns: str, stack: str = "eu") -> Any:
    resources = [
        {"urn": u, "custom": True, "id": u[-1], "type": "aws:x/y:Y", "outputs": {"a": 1}}
        for u in urns
    ]
    return parse_state(json.dumps({"deployment": {"resources": resources}}))


def _view(*steps: dict[str, Any]) -> Any:
    return parse_refresh(json.dumps({"steps": list(steps)}))


def test_a_boto3_fault_or_miss_stands_whatever_the_provider_read() -> None:
    a, b = "urn:pulumi:eu::p::aws:x/y:Y::a", "urn:pulumi:eu::p::aws:x/y:Y::b"
    findings = [
        Finding("unknown", "aws:x/y:Y", "a", urn=a, error="could not read: Throttling"),
        Finding("missing", "aws:x/y:Y", "b", urn=b),
    ]
    folded = fold(
        findings, _view({"op": "refresh", "urn": a}, {"op": "refresh", "urn": b}), _state(a, b)
    )
    assert [(f.status, f.error) for f in folded] == [
        ("unknown", "could not read: Throttling"),
        ("missing", None),
    ]


def test_a_resource_the_scan_skips_is_added_from_the_provider_view() -> None:
    a = "urn:pulumi:eu::p::aws:x/y:Y::a"
    old = {"outputs": {"a": 1}}
    step = {
        "op": "update",
        "urn": a,
        "oldState": old,
        "newState": {"outputs": {"a": 2}},
        "detailedDiff": {"a": {"kind": "update", "inputDiff": False}},
    }
    (found,) = fold([], _view(step), _state(a))
    assert (found.status, found.diffs, found.urn) == ("changed", [Diff("a", 1, 2)], a)


def test_the_refresh_of_another_stack_is_refused() -> None:
    a = "urn:pulumi:sg::p::aws:x/y:Y::a"
    with pytest.raises(RefreshError, match=r"stack 'sg'.*'eu'"):
        fold([], _view({"op": "refresh", "urn": a}), _state("urn:pulumi:eu::p::aws:x/y:Y::a"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"version": 3, "deployment": {}}', "a `pulumi stack export`"),
        ("{}", "no steps, diagnostics or summary"),
        ('{"steps": [{"op": "same"}]}', "a step without a URN"),
        (
            '{"steps": [{"op": "create", "urn": "urn:pulumi:eu::p::t::n"}]}',
            "'create' step .*not a refresh preview",
        ),
    ],
)
def test_anything_but_a_refresh_digest_is_refused_naming_the_command(
    text: str, message: str
) -> None:
    with pytest.raises(RefreshError, match=message) as raised:
        parse_refresh(text)
    assert "create" in message or "pulumi refresh --preview-only --json" in str(raised.value)


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("a", ["a"]),
        ("a.b[0].c", ["a", "b", 0, "c"]),
        ('tags["cost.centre"]', ["tags", "cost.centre"]),
        ('["a.b"].c[12]', ["a.b", "c", 12]),
        ('x["say \\"hi\\""]', ["x", 'say "hi"']),
    ],
)
def test_property_paths(path: str, parts: list[str | int]) -> None:
    assert parse_path(path) == parts


def test_values_at_paths_and_absent_ones() -> None:
    properties = {"a": {"b": [{"c": 1}]}, "tags": {"x.y": "z"}}
    assert value_at(properties, "a.b[0].c") == 1
    assert value_at(properties, 'tags["x.y"]') == "z"
    assert value_at(properties, "a.b[3].c") is None
    assert value_at(properties, "a.b.c") is None


# --- a whole document written by hand -------------------------------------------------


def test_a_hand_written_digest_folds_as_documented() -> None:
    state = (FIXTURES / "refresh-state.json").read_text()
    refresh = (FIXTURES / "refresh-preview.json").read_text()
    view = parse_refresh(refresh)
    findings = fold([], view, parse_state(state))
    by_name = {f.urn.rsplit("::", 1)[1]: f for f in findings if f.urn}
    assert by_name["api-logs"].status == "ok"
    assert by_name["api-sg"].diffs == [
        Diff("ingress[0].cidrBlocks[0]", "10.0.0.0/16", "0.0.0.0/0"),
        Diff('tags["cost.centre"]', "trading", None),
    ]
    assert by_name["api-secret"].status == "missing"
    assert by_name["db-password"].diffs == [Diff("secretString", "[secret]", "[secret]")]
    assert {f.status for f in findings} == {"ok", "changed", "missing"}


# --- the command line ----------------------------------------------------------------


def test_the_cli_reads_a_refresh_file_and_refuses_a_wrong_one(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "eu.json"
    state.write_text(world.state)
    urn = _urn(world, DASHBOARD)
    refresh = tmp_path / "refresh.json"
    refresh.write_text(digest(world.checkpoint, deletes=(urn,)))
    args = ["drift", "eu", "--state", str(state), "--ignore", str(tmp_path / "none")]
    with pytest.MonkeyPatch.context() as env:
        refresh_args = [*args, "--refresh-json", str(refresh), "--format", "json"]
        assert _main_against(world, refresh_args, env) == 2
    assert json.loads(capsys.readouterr().out)["counts"]["missing"] == 1
    refresh.write_text(world.state)  # a stack export, not a digest
    with pytest.MonkeyPatch.context() as env:
        assert _main_against(world, [*args, "--refresh-json", str(refresh)], env) == 1
    err = capsys.readouterr().err
    assert "pulumi refresh --preview-only --json" in err and "Traceback" not in err


def test_refresh_runs_the_cli_with_the_documented_flags(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "eu.json"
    state.write_text(world.state)
    argv = tmp_path / "argv"
    (tmp_path / "digest.json").write_text(digest(world.checkpoint))
    pulumi = tmp_path / "bin" / "pulumi"
    pulumi.parent.mkdir()
    pulumi.write_text(f'#!/bin/sh\necho "$@" > {argv}\ncat {tmp_path / "digest.json"}\nexit 1\n')
    pulumi.chmod(pulumi.stat().st_mode | stat.S_IXUSR)
    args = ["drift", "eu", "--state", str(state), "--ignore", str(tmp_path / "none"), "--refresh"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PATH", f"{pulumi.parent}{os.pathsep}{os.environ['PATH']}")
        assert _main_against(world, args, env) == 0
    assert argv.read_text().split() == [
        "refresh",
        "--preview-only",
        "--json",
        "--non-interactive",
        "--run-program=false",
        "--stack",
        "eu",
    ]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PATH", "/nonexistent")
        assert main(args) == 1
    assert "--refresh needs the `pulumi` CLI on PATH" in capsys.readouterr().err


def _main_against(world: World, argv: list[str], env: pytest.MonkeyPatch) -> int:
    """``main`` with boto3 pointed at the world's moto server."""
    endpoint = world.clients("sts", "eu-central-1").meta.endpoint_url
    env.setenv("AWS_ENDPOINT_URL", endpoint)
    env.setenv("AWS_ACCESS_KEY_ID", "testing")
    env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return main(argv)
