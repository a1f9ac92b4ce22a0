"""``python -m ops drift`` end to end: boto3 pointed at moto with AWS_ENDPOINT_URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.__main__ import main
from tests.drift.conftest import World, build_world

EU = "eu-central-1"


@pytest.fixture
def world(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return build_world(moto_url, "eu")


def test_clean_exits_0_and_drift_exits_2(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "eu.json"
    state.write_text(world.state)
    ignore = str(tmp_path / ".driftignore")
    assert main(["drift", "eu", "--state", str(state), "--format", "json", "--ignore", ignore]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["ok"] > 30
    world.clients("logs", EU).put_retention_policy(
        logGroupName=world.resource("api-logs")["id"], retentionInDays=7
    )
    assert (
        main(["drift", "eu", "--state", str(state), "--format", "markdown", "--ignore", ignore])
        == 2
    )
    assert "| changed | `aws:cloudwatch/logGroup:LogGroup` |" in capsys.readouterr().out


def test_generate_ignore_then_scan_clean(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "eu.json"
    state.write_text(world.state)
    ignore = tmp_path / ".driftignore"
    world.clients("logs", EU).put_retention_policy(
        logGroupName=world.resource("api-logs")["id"], retentionInDays=7
    )
    assert (
        main(["drift", "eu", "--state", str(state), "--ignore", str(ignore), "--generate-ignore"])
        == 0
    )
    assert "#retentionInDays" in ignore.read_text()
    assert main(["drift", "eu", "--state", str(state), "--ignore", str(ignore)]) == 0
    table = capsys.readouterr().out
    assert "0 changed" in table


def test_an_unreadable_state_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "broken.json"
    state.write_text("{not json")
    assert main(["drift", "eu", "--state", str(state)]) == 1
    assert "not a `pulumi stack export` document" in capsys.readouterr().err


def test_without_state_or_pulumi_cli_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["drift", "eu"]) == 1
    assert "no --state given and no `pulumi` on PATH" in capsys.readouterr().err


def test_a_state_of_another_stack_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = {
        "version": 3,
        "deployment": {
            "resources": [
                {
                    "urn": "urn:pulumi:sg::trading-infra::pulumi:pulumi:Stack::trading-infra-sg",
                    "type": "pulumi:pulumi:Stack",
                    "custom": False,
                }
            ]
        },
    }
    (tmp_path / "state.json").write_text(json.dumps(state))
    assert main(["drift", "eu", "--state", str(tmp_path / "state.json")]) == 1
    error = capsys.readouterr().err
    assert "the state is stack 'sg''s, not 'eu''s" in error and "Traceback" not in error
